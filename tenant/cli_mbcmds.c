/* cli_mbcmds.c — measured-boot reference states in the keylime_tenant commands: --mb-policy
 * loading (checked locally with qmb_ref_parse, so a bad file fails before anything changes) and
 * the /mbpolicies commands (keylime-formats §5.2, §6): addmbpolicy (POST), updatembpolicy (PUT),
 * showmbpolicy (GET, prints the stored JSON), deletembpolicy (DELETE), listmbpolicy (GET
 * /mbpolicies/, one name per line). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "mb_policy.h"

int tcli_mb_load(const tcli_conf *c, char **out, qerr *err)
{
    *out = NULL;
    if (!c->mb_policy)
        return 0;
    qbuf b = {0};
    if (qbuf_read_file(&b, c->mb_policy, QMB_MAX_REF_BYTES) < 0) {
        int e = errno;
        qbuf_free(&b);
        return qerr_setc(err, TCLI_EUSAGE, "--mb-policy %s: %s", c->mb_policy,
                         e == EFBIG ? "larger than 4 MiB" : strerror(e));
    }
    char *text = qbuf_cstr(&b);
    if (!text) {
        qbuf_free(&b);
        return qerr_setc(err, TCLI_EFAIL, "out of memory");
    }
    qerr e = {0};
    qmb_ref *ref = qmb_ref_parse(text, b.len, &e);
    if (!ref) {
        qbuf_free(&b);
        return qerr_setc(err, TCLI_EUSAGE, "--mb-policy %s is not a measured boot reference state: %s", c->mb_policy,
                         e.msg);
    }
    qmb_ref_free(ref);
    *out = text;          /* the buffer's data, NUL-terminated: handed over */
    return 0;
}

static const tcli_named_kind KIND = {
    "measured boot policy", "measured boot policies", "/mbpolicies/", "mbpolicy names", "mb_policy",
};

static int upload(tcli_ctx *x, const char *method, const char *path, const char *name, qerr *err)
{
    bool add = strcmp(method, "POST") == 0;
    char *text = NULL;
    if (tcli_mb_load(x->c, &text, err) < 0)
        return -1;
    if (!text)
        return qerr_setc(err, TCLI_EUSAGE, "--mb-policy FILE is required to %s a measured boot policy",
                         add ? "add" : "update");
    cJSON *body = cJSON_CreateObject();
    if (!body || !cJSON_AddStringToObject(body, "mb_policy", text)) {
        cJSON_Delete(body);
        free(text);
        return qerr_setc(err, TCLI_EFAIL, "out of memory");
    }
    free(text);
    qhttp_result r;
    int rc = tcli_call(x, TSRV_VERIFIER, method, path, body, &r, err);
    cJSON_Delete(body);
    const char *where = x->where[TSRV_VERIFIER];
    if (rc == 0 && r.status != 201 && r.status != 200)
        rc = tcli_http_error(&r, err, "the verifier at %s did not %s measured boot policy %s", where,
                             add ? "add" : "update", name);
    else if (rc == 0)
        printf("measured boot policy %s %s the verifier at %s\n", name, add ? "added to" : "updated on", where);
    fflush(stdout);
    qhttp_result_free(&r);
    return rc;
}

int tcli_cmd_mb(tcli_ctx *x, qerr *err)
{
    if (x->o->cmd == TCMD_LISTMB)
        return tcli_named_list(x, &KIND, err);
    const char *name = x->o->mb_policy_name;
    if (!name)
        return qerr_setc(err, TCLI_EUSAGE, "--mb-policy-name is required for -c %s", x->o->command);
    char path[3 * TCLI_NAME_MAX + 32];
    if (tcli_named_path(&KIND, name, path, sizeof path, err) < 0)
        return -1;
    switch (x->o->cmd) {
    case TCMD_ADDMB:
        return upload(x, "POST", path, name, err);
    case TCMD_UPDATEMB:
        return upload(x, "PUT", path, name, err);
    case TCMD_SHOWMB:
        return tcli_named_show(x, &KIND, path, name, err);
    case TCMD_DELETEMB:
        return tcli_named_delete(x, &KIND, path, name, err);
    default:
        return qerr_setc(err, TCLI_EUSAGE, "not a measured boot policy command: %s", x->o->command);
    }
}
