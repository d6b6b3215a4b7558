/* api.c — the verifier API's route table, /version and the helpers its handlers share; see api.h
 * and api_int.h. */
#include "api_int.h"
#include "policy_signature.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "log.h"
#include "policy.h"

static const char *const versions[] = {"2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"};
#define NVERSIONS (sizeof versions / sizeof versions[0])

#define RUNTIME_PREFIX "Runtime policy is malformatted: "

int vapi_version_supported(const char *ver)
{
    if (!ver)
        return 0;
    for (size_t i = 0; i < NVERSIONS; i++)
        if (strcmp(ver, versions[i]) == 0)
            return 1;
    return 0;
}

int vapi_normalise_id(const char *in, char out[VSTORE_ID_MAX], qerr *err)
{
    size_t n = in ? strlen(in) : 0;
    if (n == 0 || n >= VSTORE_ID_MAX)
        return qerr_setc(err, 400, "agent_id not valid");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-')
            return qerr_setc(err, 400, "agent_id not valid");
        out[i] = (char)tolower(ch);
    }
    out[n] = '\0';
    return 0;
}

int vapi_check_version(qhttp_req *r)
{
    if (!vapi_version_supported(qhttp_req_param(r, "ver"))) {
        qhttp_reply_error(r, 404, "API Version not supported");   /* Keylime's code */
        return -1;
    }
    return 0;
}

int vapi_agent_id(qhttp_req *r, char id[VSTORE_ID_MAX])
{
    qerr e;
    if (vapi_check_version(r) < 0)
        return -1;
    if (vapi_normalise_id(qhttp_req_param(r, "id"), id, &e) < 0) {
        qhttp_reply_error(r, 400, "%s", e.msg);
        return -1;
    }
    return 0;
}

int vapi_policy_name(qhttp_req *r, char name[VSTORE_ID_MAX])
{
    if (vapi_check_version(r) < 0)
        return -1;
    const char *n = qhttp_req_param(r, "name");
    size_t len = n ? strlen(n) : 0;
    if (len == 0 || len >= VSTORE_ID_MAX) {
        qhttp_reply_error(r, 400, "Runtime policy name must be 1 to %d characters", VSTORE_ID_MAX - 1);
        return -1;
    }
    if (!vapi_name_ok(n)) {
        qhttp_reply_error(r, 400, "Runtime policy name must be printable ASCII without '/'");
        return -1;
    }
    memcpy(name, n, len + 1);
    return 0;
}

bool vapi_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len >= VSTORE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)n[i] < 0x20 || (unsigned char)n[i] > 0x7e || n[i] == '/')
            return false;
    return true;
}

const cJSON *vapi_body_object(qhttp_req *r)
{
    size_t len = 0;
    qhttp_req_body(r, &len);
    if (len == 0) {
        qhttp_reply_error(r, 400, "Expected non zero content length");
        return NULL;
    }
    qerr e;
    const cJSON *j = qhttp_req_json(r, &e);
    if (!j) {
        qhttp_reply_error(r, 400, "Invalid JSON in request body: %s", e.msg);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        qhttp_reply_error(r, 400, "Request body must be a JSON object");
        return NULL;
    }
    return j;
}

int vapi_json_text(qhttp_req *r, const cJSON *body, const char *key, bool required, char **out)
{
    *out = NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!m) {
        if (required) {
            qhttp_reply_error(r, 400, "Exception error: '%s'", key);
            return -1;
        }
        return 0;
    }
    if (cJSON_IsNull(m) || (cJSON_IsString(m) && m->valuestring[0] == '\0'))
        return 0;
    if (cJSON_IsObject(m)) {
        *out = cJSON_PrintUnformatted(m);
    } else if (cJSON_IsString(m)) {
        cJSON *parsed = cJSON_Parse(m->valuestring);
        bool ok = cJSON_IsObject(parsed);
        cJSON_Delete(parsed);
        if (!ok) {
            qhttp_reply_error(r, 400, "%s must hold a JSON object", key);
            return -1;
        }
        *out = strdup(m->valuestring);
    } else {
        qhttp_reply_error(r, 400, "%s must be a string holding a JSON object", key);
        return -1;
    }
    if (!*out) {
        qhttp_reply_error(r, 500, "Out of memory");
        return -1;
    }
    return 0;
}

int vapi_opt_str(qhttp_req *r, const cJSON *body, const char *key, size_t max, const char **out)
{
    *out = NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!m || cJSON_IsNull(m))
        return 0;
    if (!cJSON_IsString(m)) {
        qhttp_reply_error(r, 400, "%s must be a string", key);
        return -1;
    }
    if (strlen(m->valuestring) > max) {
        qhttp_reply_error(r, 400, "%s is longer than %zu characters", key, max);
        return -1;
    }
    *out = m->valuestring;
    return 0;
}

void vapi_store_error(qhttp_req *r, const char *what, const qerr *e)
{
    qlog(QLOG_ERROR, VAPI_LOG, "%s: %s", what, e->msg);
    /* 503 when the database cannot be reached (store.h): the request may be retried. */
    qhttp_reply_error(r, e->code == 503 ? 503 : 500, "%s: %s", what, e->msg);
}

void vapi_policy_in_free(vapi_policy_in *p)
{
    free(p->text);
    free(p->sign_key);
    p->text = NULL;
    p->sign_key = NULL;
}

int vapi_policy_decode(qhttp_req *r, const vapi_ctx *c, const char *b64, const char *key_b64, vapi_policy_in *out)
{
    memset(out, 0, sizeof(*out));
    if (!b64 || !*b64) {
        out->text = strdup(VAPI_EMPTY_POLICY);
        out->len = out->text ? strlen(out->text) : 0;
    } else {
        size_t len = 0;
        uint8_t *raw = qb64_decode_alloc(b64, strlen(b64), (size_t)c->cfg->max_upload_size, &len);
        if (!raw) {
            qhttp_reply_error(r, 400, RUNTIME_PREFIX "runtime_policy is not valid base64");
            return -1;
        }
        out->text = malloc(len + 1);
        if (out->text) {
            memcpy(out->text, raw, len);
            out->text[len] = '\0';
            out->len = len;
        }
        free(raw);
        if (out->text && memchr(out->text, '\0', len)) {
            vapi_policy_in_free(out);
            qhttp_reply_error(r, 400, RUNTIME_PREFIX "the policy contains a NUL byte");
            return -1;
        }
    }
    if (!out->text) {
        qhttp_reply_error(r, 500, "Out of memory");
        return -1;
    }
    qerr e = {0};
    qpsig_result sig;
    int code = b64 && *b64 ? vpsig_check_upload(out->text, out->len, key_b64, c->cfg->require_policy_signatures, &sig)
                           : qpsig_check(out->text, out->len, NULL, 0, false, &sig);
    if (code != 0) {
        vapi_policy_in_free(out);
        qhttp_reply_error(r, code, "%s", sig.message);
        qpsig_result_clear(&sig);
        return -1;
    }
    if (sig.is_signed && !(out->sign_key = strdup(key_b64))) {
        qpsig_result_clear(&sig);
        vapi_policy_in_free(out);
        qhttp_reply_error(r, 500, "Out of memory");
        return -1;
    }
    qpolicy *p = qpolicy_from_json(sig.payload, sig.payload_len, "runtime_policy", &e);
    qpsig_result_clear(&sig);
    if (!p) {
        vapi_policy_in_free(out);
        if (strncmp(e.msg, RUNTIME_PREFIX, strlen(RUNTIME_PREFIX)) == 0)
            qhttp_reply_error(r, 400, "%s", e.msg);
        else
            qhttp_reply_error(r, 400, RUNTIME_PREFIX "%s", e.msg);
        return -1;
    }
    out->generator = qpolicy_generator(p);
    qpolicy_free(p);
    qpolicy_checksum(out->text, out->len, out->checksum);
    return 0;
}

int vapi_policy_key(qhttp_req *r, const cJSON *body, const char **key)
{
    if (vapi_opt_str(r, body, "runtime_policy_key", VPSIG_MAX_KEY_B64, key) < 0)
        return -1;
    if (*key && !**key)
        *key = NULL;
    return 0;
}

static void h_version(qhttp_req *r, void *ctx)
{
    (void)ctx;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "current_version", VAPI_CURRENT_VERSION);
    cJSON *arr = cJSON_AddArrayToObject(res, "supported_versions");
    for (size_t i = 0; i < NVERSIONS; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(versions[i]));
    qhttp_reply(r, 200, res);
}

size_t vapi_routes(vapi_ctx *c, qhttp_route *routes, size_t cap)
{
    const qhttp_route all[] = {
        {"GET", "/version", h_version, c},
        {"GET", "/v{ver}/agents", vapi_h_agent_list, c},
        {"GET", "/v{ver}/agents/{id}", vapi_h_agent_get, c},
        {"POST", "/v{ver}/agents/{id}", vapi_h_agent_add, c},
        {"DELETE", "/v{ver}/agents/{id}", vapi_h_agent_delete, c},
        {"PUT", "/v{ver}/agents/{id}/reactivate", vapi_h_agent_reactivate, c},
        {"PUT", "/v{ver}/agents/{id}/stop", vapi_h_agent_stop, c},
        {"GET", "/v{ver}/allowlists", vapi_h_policy_list, c},
        {"GET", "/v{ver}/allowlists/{name}", vapi_h_policy_get, c},
        {"POST", "/v{ver}/allowlists/{name}", vapi_h_policy_post, c},
        {"PUT", "/v{ver}/allowlists/{name}", vapi_h_policy_put, c},
        {"DELETE", "/v{ver}/allowlists/{name}", vapi_h_policy_delete, c},
        {"GET", "/v{ver}/mbpolicies", vapi_h_mb_list, c},
        {"GET", "/v{ver}/mbpolicies/{name}", vapi_h_mb_get, c},
        {"POST", "/v{ver}/mbpolicies/{name}", vapi_h_mb_post, c},
        {"PUT", "/v{ver}/mbpolicies/{name}", vapi_h_mb_put, c},
        {"DELETE", "/v{ver}/mbpolicies/{name}", vapi_h_mb_delete, c},
    };
    size_t n = sizeof(all) / sizeof(all[0]);
    if (n > cap)
        n = cap;
    memcpy(routes, all, n * sizeof(all[0]));
    return n;
}
