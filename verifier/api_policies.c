/* api_policies.c — /v{v}/allowlists: named runtime policies with Keylime's codes and messages
 * (keylime-formats §5.2): POST/PUT 201, DELETE 204 with an empty body, 409 while in use. */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

static int add_name(void *ctx, const char *name)
{
    return cJSON_AddItemToArray(ctx, cJSON_CreateString(name)) ? 0 : 1;
}

void vapi_h_policy_list(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    qerr e = {0};
    if (vapi_check_version(r) < 0)
        return;
    cJSON *res = cJSON_CreateObject();
    cJSON *names = cJSON_AddArrayToObject(res, "runtimepolicy names");
    if (!names) {
        cJSON_Delete(res);
        qhttp_reply_error(r, 500, "Out of memory");
        return;
    }
    if (vstore_policy_list(c->store, add_name, names, &e) < 0) {
        cJSON_Delete(res);
        vapi_store_error(r, "cannot list runtime policies", &e);
        return;
    }
    qhttp_reply(r, 200, res);
}

void vapi_h_policy_get(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    char name[VSTORE_ID_MAX];
    qerr e = {0};
    if (vapi_policy_name(r, name) < 0)
        return;
    vpolicy p;
    memset(&p, 0, sizeof p);
    int rc = vstore_policy_get(c->store, name, &p, &e);
    if (rc < 0) {
        vapi_store_error(r, "cannot read runtime policy", &e);
        return;
    }
    if (rc == 0) {
        qhttp_reply_error(r, 404, "Runtime policy %s not found", name);
        return;
    }
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "name", p.name);
    /* Keylime's key is spelled "tmp_policy" and is always null. */
    cJSON_AddNullToObject(res, "tmp_policy");
    cJSON_AddStringToObject(res, "runtime_policy", p.body ? p.body : "");
    vpolicy_free(&p);
    qhttp_reply(r, 200, res);
}

/* POST (replace=false) and PUT (replace=true). */
static void policy_store(qhttp_req *r, vapi_ctx *c, bool replace)
{
    char name[VSTORE_ID_MAX];
    qerr e = {0};
    if (vapi_policy_name(r, name) < 0)
        return;
    const cJSON *body = vapi_body_object(r);
    const char *key = NULL;
    if (!body || vapi_policy_key(r, body, &key) < 0)
        return;
    const char *b64;
    if (vapi_opt_str(r, body, "runtime_policy", SIZE_MAX, &b64) < 0)
        return;
    if (!b64 || !*b64) {
        qhttp_reply_error(r, 400, "Exception error: 'runtime_policy'");
        return;
    }
    char *tpm_policy = NULL;
    if (vapi_json_text(r, body, "tpm_policy", false, &tpm_policy) < 0)
        return;
    vapi_policy_in in;
    if (vapi_policy_decode(r, c, b64, key, &in) < 0) {
        free(tpm_policy);
        return;
    }
    long id = 0;
    int rc = vstore_policy_put_signed(c->store, name, in.text, in.checksum, in.generator, tpm_policy, in.sign_key,
                                      replace, &id, &e);
    vapi_policy_in_free(&in);
    free(tpm_policy);
    if (rc < 0) {
        vapi_store_error(r, "cannot store runtime policy", &e);
        return;
    }
    if (rc == 0) {
        if (replace)
            qhttp_reply_error(r, 404, "Runtime policy with name %s does not already exist, use POST to create", name);
        else
            qhttp_reply_error(r, 409, "Runtime policy with name %s already exists", name);
        return;
    }
    if (replace && c->poller)
        vpoller_policy_changed(c->poller, id);
    qlog(QLOG_INFO, VAPI_LOG, "runtime policy %s %s%s", name, replace ? "updated" : "added",
         key ? " (DSSE signature verified)" : "");
    qhttp_reply(r, 201, NULL);
}

void vapi_h_policy_post(qhttp_req *r, void *ctx)
{
    policy_store(r, ctx, false);
}

void vapi_h_policy_put(qhttp_req *r, void *ctx)
{
    policy_store(r, ctx, true);
}

void vapi_h_policy_delete(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    char name[VSTORE_ID_MAX];
    qerr e = {0};
    if (vapi_policy_name(r, name) < 0)
        return;
    int rc = vstore_policy_delete(c->store, name, &e);
    if (rc < 0) {
        if (e.code == 409)
            qhttp_reply_error(r, 409, "%s", e.msg);
        else
            vapi_store_error(r, "cannot delete runtime policy", &e);
        return;
    }
    if (rc == 0) {
        qhttp_reply_error(r, 404, "Runtime policy %s not found", name);
        return;
    }
    qlog(QLOG_INFO, VAPI_LOG, "runtime policy %s deleted", name);
    qhttp_reply_raw(r, 204, "application/json", NULL, 0);
}
