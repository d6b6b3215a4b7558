/* registrar_client.c — reading one agent record from an external registrar (registrar_client.h). */
#include "registrar_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "log.h"

#define LOGM        "verifier"
#define URL_MAX     2048
#define MINOR_MAX   6         /* the registrar API this verifier reads: 2.0 .. 2.6 */

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return 0;
    return (*out = strdup(s)) ? 0 : -1;
}

/* The newest 2.x in the registrar's supported_versions; 2.1 (logged) when it lists none. */
static int pick_version(qhttp_client *h, const vregc_opts *o, char ver[8], qerr *err)
{
    char url[URL_MAX];
    snprintf(url, sizeof url, "%s/version", o->url);
    qhttp_result r;
    if (qhttp_get(h, url, &r, err) < 0) {
        qhttp_result_free(&r);
        return qerr_prefix(err, "the registrar at %s cannot be reached", o->url);
    }
    int best = -1;
    const cJSON *list = r.status == 200 ? cJSON_GetObjectItemCaseSensitive(r.results, "supported_versions") : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const char *v = cJSON_IsString(it) ? it->valuestring : "";
        if (v[0] == '2' && v[1] == '.' && v[2] >= '0' && v[2] <= '0' + MINOR_MAX && !v[3] && v[2] - '0' > best)
            best = v[2] - '0';
    }
    if (cJSON_GetArraySize(list) > 0 && best < 0) {
        qhttp_result_free(&r);
        return qerr_set(err, "the registrar at %s speaks no API version 2.0 to 2.%d", o->url, MINOR_MAX);
    }
    if (best < 0) {
        char d[128];
        qlog(QLOG_WARNING, LOGM, "the registrar at %s lists no API versions (GET /version: %s); using 2.1", o->url,
             qhttp_result_describe(&r, d, sizeof d));
        best = 1;
    }
    ver[0] = '2';
    ver[1] = '.';
    ver[2] = (char)('0' + best);     /* 0..MINOR_MAX */
    ver[3] = '\0';
    qhttp_result_free(&r);
    return 0;
}

static int port_of(const cJSON *p)
{
    long v = 0;
    if (cJSON_IsNumber(p))
        v = (long)p->valuedouble;
    else if (cJSON_IsString(p))
        v = strtol(p->valuestring, NULL, 10);
    return v >= 1 && v <= 65535 ? (int)v : 0;
}

int vregc_get(const vregc_opts *o, const char *agent_id, vreg_agent *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    if (!o || !o->url || !agent_id || strlen(agent_id) >= sizeof out->agent_id)
        return qerr_set(err, "registrar lookup: bad argument");
    qhttp_client_opts ho = { .timeout_ms = o->timeout_ms, .max_response = VREGC_MAX_RESPONSE,
                             .ca_file = o->ca_file, .cert_file = o->cert_file, .key_file = o->key_file };
    qhttp_client *h = qhttp_client_new(&ho, err);
    if (!h)
        return -1;
    int rc = -1;
    char ver[8], url[URL_MAX];
    qhttp_result r;
    memset(&r, 0, sizeof r);
    if (pick_version(h, o, ver, err) < 0)
        goto out;
    snprintf(url, sizeof url, "%s/v%s/agents/%s", o->url, ver, agent_id);
    if (qhttp_get(h, url, &r, err) < 0) {
        qerr_prefix(err, "the registrar at %s cannot be reached", o->url);
        goto out;
    }
    if (r.status == 404) {
        rc = 0;
        goto out;
    }
    char d[QERR_MSG_MAX];
    if (r.status != 200 || !cJSON_IsObject(r.results)) {
        qerr_set(err, "the registrar at %s answered GET agent %s with %s", o->url, agent_id,
                 qhttp_result_describe(&r, d, sizeof d));
        goto out;
    }
    const char *aik = jstr(r.results, "aik_tpm");
    if (!aik || !*aik) {
        qerr_set(err, "the registrar at %s holds no AK (aik_tpm) for agent %s", o->url, agent_id);
        goto out;
    }
    snprintf(out->agent_id, sizeof out->agent_id, "%s", agent_id);
    if (dup_opt(aik, &out->aik_tpm) < 0 || dup_opt(jstr(r.results, "ek_tpm"), &out->ek_tpm) < 0 ||
        dup_opt(jstr(r.results, "ekcert"), &out->ekcert) < 0 ||
        dup_opt(jstr(r.results, "mtls_cert"), &out->mtls_cert) < 0 || dup_opt(jstr(r.results, "ip"), &out->ip) < 0) {
        vreg_agent_free(out);
        qerr_set(err, "out of memory");
        goto out;
    }
    out->port = port_of(cJSON_GetObjectItemCaseSensitive(r.results, "port"));
    const cJSON *rc_ = cJSON_GetObjectItemCaseSensitive(r.results, "regcount");
    out->regcount = cJSON_IsNumber(rc_) ? (long)rc_->valuedouble : 0;
    out->active = true;
    rc = 1;
out:
    qhttp_result_free(&r);
    qhttp_client_free(h);
    return rc;
}
