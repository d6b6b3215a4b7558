/* api_mbpolicies.c — /v{v}/mbpolicies: named measured-boot reference states with Keylime's codes
 * and messages (POST/PUT 201, DELETE 204 with an empty body, 409 while in use, and — as Keylime
 * answers — 409 for a PUT of a name that does not exist), and the mb_policy / mb_policy_name
 * fields of an agent add. Every reference state is checked with qmb_ref_parse before it is
 * stored, so a bad one is refused with the reason instead of failing every attestation. */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mb_policy.h"

/* Version check, then {name} (printable ASCII without '/'). */
static int mb_name(qhttp_req *r, char name[VSTORE_ID_MAX])
{
    if (vapi_check_version(r) < 0)
        return -1;
    const char *n = qhttp_req_param(r, "name");
    if (!n || !*n || strlen(n) >= VSTORE_ID_MAX || !vapi_name_ok(n)) {
        qhttp_reply_error(r, 400, "Measured boot policy name must be 1 to %d printable ASCII characters without '/'",
                          VSTORE_ID_MAX - 1);
        return -1;
    }
    memcpy(name, n, strlen(n) + 1);
    return 0;
}

int vapi_mb_check(qhttp_req *r, const char *text)
{
    qerr e = {0};
    size_t len = strlen(text);
    if (len > QMB_MAX_REF_BYTES) {
        qhttp_reply_error(r, 400, "mb_policy is larger than %u bytes", QMB_MAX_REF_BYTES);
        return -1;
    }
    qmb_ref *ref = qmb_ref_parse(text, len, &e);
    if (!ref) {
        qhttp_reply_error(r, 400, "mb_policy is not a valid measured boot reference state: %s", e.msg);
        return -1;
    }
    qmb_ref_free(ref);
    return 0;
}

static int add_name(void *ctx, const char *name)
{
    return cJSON_AddItemToArray(ctx, cJSON_CreateString(name)) ? 0 : 1;
}

void vapi_h_mb_list(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    qerr e = {0};
    if (vapi_check_version(r) < 0)
        return;
    cJSON *res = cJSON_CreateObject();
    cJSON *names = cJSON_AddArrayToObject(res, "mbpolicy names");
    if (!names) {
        cJSON_Delete(res);
        qhttp_reply_error(r, 500, "Out of memory");
        return;
    }
    if (vstore_mbpolicy_list(c->store, add_name, names, &e) < 0) {
        cJSON_Delete(res);
        vapi_store_error(r, "Failed to get names of mbpolicies", &e);
        return;
    }
    qhttp_reply(r, 200, res);
}

void vapi_h_mb_get(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    char name[VSTORE_ID_MAX];
    qerr e = {0};
    if (mb_name(r, name) < 0)
        return;
    vmbpolicy p;
    int rc = vstore_mbpolicy_get(c->store, name, &p, &e);
    if (rc < 0) {
        vapi_store_error(r, "Failed to get mb_policy", &e);
        return;
    }
    if (rc == 0) {
        qhttp_reply_error(r, 404, "Measured boot policy %s not found", name);
        return;
    }
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "name", p.name);
    cJSON_AddStringToObject(res, "mb_policy", p.mb_policy);
    vmbpolicy_free(&p);
    qhttp_reply(r, 200, res);
}

/* POST (replace=false) and PUT (replace=true). The body is {"mb_policy": "<JSON text>"}; a JSON
 * object is accepted too. */
static void mb_store(qhttp_req *r, vapi_ctx *c, bool replace)
{
    char name[VSTORE_ID_MAX];
    qerr e = {0};
    if (mb_name(r, name) < 0)
        return;
    const cJSON *body = vapi_body_object(r);
    if (!body)
        return;
    char *text = NULL;
    if (vapi_json_text(r, body, "mb_policy", true, &text) < 0)
        return;
    if (vapi_mb_check(r, text) < 0) {
        free(text);
        return;
    }
    int rc = vstore_mbpolicy_put(c->store, name, text, replace, NULL, &e);
    free(text);
    if (rc < 0) {
        if (e.code == 400)
            qhttp_reply_error(r, 400, "%s", e.msg);
        else
            vapi_store_error(r, "cannot store measured boot policy", &e);
        return;
    }
    if (rc == 0) {
        qhttp_reply_error(r, 409, replace ? "Measured boot policy with name %s does not already exist"
                                          : "Measured boot policy with name %s already exists", name);
        return;
    }
    qlog(QLOG_INFO, VAPI_LOG, "measured boot policy %s %s%s", name, replace ? "updated" : "added",
         replace ? " (agents using it take it at their next add or reactivate)" : "");
    qhttp_reply(r, 201, NULL);
}

void vapi_h_mb_post(qhttp_req *r, void *ctx)
{
    mb_store(r, ctx, false);
}

void vapi_h_mb_put(qhttp_req *r, void *ctx)
{
    mb_store(r, ctx, true);
}

void vapi_h_mb_delete(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    char name[VSTORE_ID_MAX];
    qerr e = {0};
    if (mb_name(r, name) < 0)
        return;
    int rc = vstore_mbpolicy_delete(c->store, name, &e);
    if (rc < 0) {
        if (e.code == 409)
            qhttp_reply_error(r, 409, "%s", e.msg);
        else
            vapi_store_error(r, "cannot delete measured boot policy", &e);
        return;
    }
    if (rc == 0) {
        qhttp_reply_error(r, 404, "Measured boot policy %s not found", name);
        return;
    }
    qlog(QLOG_INFO, VAPI_LOG, "measured boot policy %s deleted", name);
    qhttp_reply_raw(r, 204, "application/json", NULL, 0);
}

int vapi_mb_resolve(qhttp_req *r, vapi_ctx *c, const cJSON *body, const char *id, long *mb_id,
                    char created[VSTORE_ID_MAX])
{
    const char *name;
    char *text = NULL;
    qerr e = {0};
    created[0] = '\0';
    *mb_id = 0;
    if (vapi_opt_str(r, body, "mb_policy_name", VSTORE_ID_MAX - 1, &name) < 0)
        return -1;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "mb_policy");
    if (m && cJSON_IsString(m) && !*m->valuestring)
        m = NULL;             /* Keylime's tenant sends "" for none */
    if (m && vapi_json_text(r, body, "mb_policy", false, &text) < 0)
        return -1;
    if (name && !*name)
        name = NULL;
    if (name && !vapi_name_ok(name)) {
        qhttp_reply_error(r, 400, "mb_policy_name must be printable ASCII without '/'");
        free(text);
        return -1;
    }
    if (!text) {
        if (!name)
            return 0;         /* no measured boot */
        vmbpolicy p;
        int rc = vstore_mbpolicy_get(c->store, name, &p, &e);
        if (rc < 0) {
            vapi_store_error(r, "cannot read measured boot policy", &e);
            return -1;
        }
        if (rc == 0) {
            qhttp_reply_error(r, 404, "Could not find mb_policy with name %s!", name);
            return -1;
        }
        *mb_id = p.id;
        vmbpolicy_free(&p);
        return 0;
    }
    if (vapi_mb_check(r, text) < 0) {
        free(text);
        return -1;
    }
    const char *store_name = name ? name : id;
    int rc = vstore_mbpolicy_put(c->store, store_name, text, false, mb_id, &e);
    free(text);
    if (rc < 0) {
        vapi_store_error(r, "cannot store measured boot policy", &e);
        return -1;
    }
    if (rc == 0) {
        qhttp_reply_error(r, 409, "mb_policy with name %s already exists. Please use a different name or delete "
                          "the mb_policy from the verifier.", store_name);
        return -1;
    }
    snprintf(created, VSTORE_ID_MAX, "%s", store_name);
    return 0;
}
