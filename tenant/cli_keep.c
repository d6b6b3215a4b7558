/* cli_keep.c — no silent loss of checking: an add or update that would leave an agent with
 * nothing checked is refused unless --no-runtime-policy says so, and an update without a new
 * policy keeps the agent's current runtime policy and tpm_policy (read from the verifier before
 * the delete that an update is). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "cli.h"
#include "policy.h"

bool tcli_tpm_policy_empty(const tcli_conf *c)
{
    return c->tpm_mask == 0 && (!c->tpm_policy || cJSON_GetArraySize(c->tpm_policy) == 0);
}

int tcli_refuse_unchecked(const tcli_ctx *x, qerr *err)
{
    return qerr_setc(err, TCLI_EUSAGE,
                     "-c %s without a runtime policy, allowlist or tpm_policy would attest agent %s with nothing "
                     "checked: give --allowlist, --runtime-policy, --runtime-policy-name or --tpm_policy, or "
                     "--no-runtime-policy to attest it without IMA checks on purpose",
                     tcli_cmd_name(x->o->cmd), x->o->uuid);
}

void tcli_kept_free(tcli_kept *k)
{
    if (!k)
        return;
    free(k->b64);
    free(k->name);
    cJSON_Delete(k->tpm);
    memset(k, 0, sizeof *k);
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The agent's tpm_policy text without its mask (kept as a number, IMA's PCR 10 taken out: the
 * add puts it back when a runtime policy goes with it). */
static int keep_tpm(const char *text, tcli_kept *k, qerr *err)
{
    cJSON *t = text && *text ? cJSON_Parse(text) : NULL;
    if (!t || !cJSON_IsObject(t)) {
        cJSON_Delete(t);
        k->tpm = cJSON_CreateObject();
        return k->tpm ? 0 : qerr_setc(err, TCLI_EFAIL, "out of memory");
    }
    const char *mask = jstr(t, "mask");
    k->tpm_mask = mask ? (uint32_t)strtoul(mask, NULL, 16) & ~(1u << 10) : 0;
    cJSON_DeleteItemFromObjectCaseSensitive(t, "mask");
    k->tpm = t;
    return 0;
}

int tcli_kept_fetch(tcli_ctx *x, tcli_kept *k, qerr *err)
{
    memset(k, 0, sizeof *k);
    const char *id = x->o->uuid;
    char path[TCLI_ID_MAX + 16];
    snprintf(path, sizeof path, "/agents/%s", id);
    qhttp_result r;
    if (tcli_call(x, TSRV_VERIFIER, "GET", path, NULL, &r, err) < 0) {
        qhttp_result_free(&r);
        return -1;
    }
    if (r.status == 404) {              /* not there: nothing to keep */
        qhttp_result_free(&r);
        return 0;
    }
    if (r.status != 200) {
        tcli_http_error(&r, err, "cannot read agent %s's current policy from the verifier at %s", id,
                        x->where[TSRV_VERIFIER]);
        qhttp_result_free(&r);
        return -1;
    }
    k->found = true;
    const char *name = jstr(r.results, "runtime_policy_name");
    int rc = keep_tpm(jstr(r.results, "tpm_policy"), k, err);
    if (rc == 0 && name) {
        if (strcmp(name, id) != 0) {
            /* A policy stored under its own name outlives the agent: name it again. */
            k->name = strdup(name);
            rc = k->name ? 0 : qerr_setc(err, TCLI_EFAIL, "out of memory");
        } else {
            /* Stored under the agent's id, it goes with the delete: send its text again. */
            char ppath[TCLI_ID_MAX + 32];
            snprintf(ppath, sizeof ppath, "/allowlists/%s", name);
            qhttp_result pr;
            if (tcli_call(x, TSRV_VERIFIER, "GET", ppath, NULL, &pr, err) < 0) {
                rc = -1;
            } else if (pr.status != 200 || !jstr(pr.results, "runtime_policy")) {
                rc = tcli_http_error(&pr, err, "cannot read agent %s's runtime policy %s from the verifier at %s",
                                     id, name, x->where[TSRV_VERIFIER]);
            } else {
                /* The empty policy an add without one stores checks nothing: not worth keeping. */
                const char *text = jstr(pr.results, "runtime_policy");
                qerr pe = {0};
                qpolicy *pol = qpolicy_from_json(text, strlen(text), name, &pe);
                bool empty = !pol || qpolicy_count(pol, QPOL_DIGESTS) == 0;
                qpolicy_free(pol);
                if (!empty) {
                    k->b64 = qb64_encode_alloc((const uint8_t *)text, strlen(text));
                    k->json_len = strlen(text);
                    rc = k->b64 ? 0 : qerr_setc(err, TCLI_EFAIL, "out of memory");
                }
            }
            qhttp_result_free(&pr);
        }
    }
    qhttp_result_free(&r);
    if (rc < 0)
        tcli_kept_free(k);
    return rc;
}
