/* webapp_api.c — the JSON the page's scripts read: the session's CSRF token and the agents table
 * (the verifier's bulk status boiled down to the columns shown, with counts per state). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "webapp.h"

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

void wapp_h_api_session(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    wapp_session s;
    if (!wapp_check_read(w, r, &s))
        return;
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddStringToObject(o, "csrf", s.csrf) ||
              !cJSON_AddStringToObject(o, "verifier", w->c.cv_ip) ||
              !cJSON_AddNumberToObject(o, "verifier_port", (double)w->c.cv_port) ||
              !cJSON_AddNumberToObject(o, "max_upload", (double)(w->max_upload / 2)))) {
        cJSON_Delete(o);
        o = NULL;
    }
    OPENSSL_cleanse(&s, sizeof s);
    wapp_json(r, 200, o);
}

int wapp_fetch_agents(tcli_ctx *x, qhttp_result *out, qerr *err)
{
    char path[TCLI_ID_MAX + 64];
    snprintf(path, sizeof path, "/agents/?bulk=True&verifier=%s", x->c->cv_id);
    if (tcli_call(x, TSRV_VERIFIER, "GET", path, NULL, out, err) < 0)
        return -1;
    if (out->status != 200 || !cJSON_IsObject(out->results))
        return tcli_http_error(out, err, "the verifier at %s did not list its agents", x->where[TSRV_VERIFIER]);
    return 0;
}

/* One row of the table. */
static cJSON *agent_row(const cJSON *st)
{
    cJSON *a = cJSON_CreateObject();
    if (!a)
        return NULL;
    long state = (long)jnum(st, "operational_state", -1);
    const char *sname = jstr(st, "operational_state_name");
    const cJSON *fails = cJSON_GetObjectItemCaseSensitive(st, "failures");
    const char *ip = jstr(st, "ip");
    const char *pol = jstr(st, "runtime_policy_name");
    double port = jnum(st, "port", 0);
    cJSON *ok = cJSON_AddStringToObject(a, "id", st->string ? st->string : "");
    ok = ok ? cJSON_AddStringToObject(a, "ip", ip ? ip : "") : NULL;
    ok = ok ? cJSON_AddNumberToObject(a, "port", port) : NULL;
    ok = ok ? cJSON_AddNumberToObject(a, "state", (double)state) : NULL;
    ok = ok ? cJSON_AddStringToObject(a, "state_name", sname ? sname : tcli_state_name(state)) : NULL;
    ok = ok ? cJSON_AddStringToObject(a, "class", wapp_state_class(state)) : NULL;
    ok = ok ? cJSON_AddStringToObject(a, "attestation_status", jstr(st, "attestation_status") ?
                                      jstr(st, "attestation_status") : "") : NULL;
    ok = ok ? cJSON_AddNumberToObject(a, "last_attestation", jnum(st, "last_successful_attestation", 0)) : NULL;
    ok = ok ? cJSON_AddNumberToObject(a, "attestation_count", jnum(st, "attestation_count", 0)) : NULL;
    ok = ok ? cJSON_AddStringToObject(a, "policy", pol ? pol : "") : NULL;
    ok = ok ? cJSON_AddNumberToObject(a, "failures", cJSON_IsArray(fails) ? cJSON_GetArraySize(fails) : 0) : NULL;
    ok = ok ? cJSON_AddStringToObject(a, "last_event_id", jstr(st, "last_event_id") ? jstr(st, "last_event_id") : "")
            : NULL;
    if (!ok) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

void wapp_h_api_agents(qhttp_req *r, void *ctx)
{
    wapp *w = ctx;
    if (!wapp_check_read(w, r, NULL))
        return;
    tcli_ctx x;
    tcli_opts o;
    qerr e;
    qerr_clear(&e);
    qhttp_result res;
    memset(&res, 0, sizeof res);
    if (wapp_ctx_open(w, &x, &o, NULL, &e) < 0 || wapp_fetch_agents(&x, &res, &e) < 0) {
        qhttp_result_free(&res);
        wapp_ctx_close(&x);
        wapp_json_error(r, 502, e.msg);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(out, "agents");
    cJSON *counts = cJSON_AddObjectToObject(out, "counts");
    bool ok = out && list && counts && cJSON_AddNumberToObject(out, "time", (double)time(NULL)) &&
              cJSON_AddStringToObject(out, "verifier", x.where[TSRV_VERIFIER]);
    const cJSON *st;
    int n = 0;
    cJSON_ArrayForEach(st, res.results) {
        if (!ok || n++ >= WAPP_MAX_AGENTS)
            break;
        cJSON *row = agent_row(st);
        if (!row) {
            ok = false;
            break;
        }
        cJSON_AddItemToArray(list, row);
        const char *name = jstr(row, "state_name");
        cJSON *c = cJSON_GetObjectItemCaseSensitive(counts, name);
        if (c)
            cJSON_SetNumberValue(c, c->valuedouble + 1);
        else if (!cJSON_AddNumberToObject(counts, name, 1))
            ok = false;
    }
    qhttp_result_free(&res);
    wapp_ctx_close(&x);
    if (!ok) {
        cJSON_Delete(out);
        wapp_json_error(r, 500, "out of memory");
        return;
    }
    wapp_json(r, 200, out);
}
