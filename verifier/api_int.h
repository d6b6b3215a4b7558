/* api_int.h — what the verifier API's files share (api.c, api_agents.c, api_status.c,
 * api_policies.c). Helpers that take a qhttp_req reply 400 (or 500) themselves and return -1 /
 * NULL on failure, so a handler just returns. */
#ifndef QUINCE_VERIFIER_API_INT_H
#define QUINCE_VERIFIER_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "api.h"

#define VAPI_LOG "verifier"

/* Keylime's EMPTY_RUNTIME_POLICY (json.dumps layout). */
#define VAPI_EMPTY_POLICY                                                                                   \
    "{\"meta\": {\"version\": 1, \"generator\": 1}, \"release\": 0, \"digests\": {}, \"excludes\": [], "     \
    "\"keyrings\": {}, \"ima\": {\"ignored_keyrings\": [], \"log_hash_alg\": \"sha1\", \"dm_policy\": null}, " \
    "\"ima-buf\": {}, \"verification-keys\": \"\"}"

/* The path's {ver} must be supported (404 "API Version not supported", as Keylime). */
int vapi_check_version(qhttp_req *r);
/* Version check, then the {id} parameter validated and lower-cased into id. */
int vapi_agent_id(qhttp_req *r, char id[VSTORE_ID_MAX]);
/* A runtime policy name: printable ASCII without '/', 1..VSTORE_ID_MAX-1 characters. */
bool vapi_name_ok(const char *name);
/* Version check, then the {name} parameter checked with vapi_name_ok. */
int vapi_policy_name(qhttp_req *r, char name[VSTORE_ID_MAX]);
/* The body as a JSON object: 400 "Expected non zero content length" when empty, 400 with the
 * parser's message when not JSON, 400 when not an object. */
const cJSON *vapi_body_object(qhttp_req *r);
/* A member that holds JSON object text (Keylime sends tpm_policy and metadata as JSON strings; an
 * object is accepted too). Absent or null → *out = NULL and 0 (or 400 "Exception error: 'key'"
 * when required). Returns 0 with a malloc'd text, or -1 after replying 400. */
int vapi_json_text(qhttp_req *r, const cJSON *body, const char *key, bool required, char **out);
/* A member that must be a string (or null/absent → *out = NULL). max bounds its length. */
int vapi_opt_str(qhttp_req *r, const cJSON *body, const char *key, size_t max, const char **out);
/* 500 with the store's message, logged. */
void vapi_store_error(qhttp_req *r, const char *what, const qerr *e);

/* A runtime policy from the wire: base64 → text, validated with qpolicy_from_json. */
typedef struct vapi_policy_in {
    char *text;            /* malloc'd, NUL-terminated */
    size_t len;
    char checksum[65];
    int generator;
    char *sign_key;        /* the base64 key a signed policy verified with (malloc'd), or NULL */
} vapi_policy_in;
/* Decode and validate b64 (NULL or "" → Keylime's empty policy), checking a DSSE signature with
 * key_b64 (the request's runtime_policy_key; may be NULL) as policy_signature.h says. Replies
 * 400/401 on error. text is what is stored (the envelope of a signed policy). */
int vapi_policy_decode(qhttp_req *r, const vapi_ctx *c, const char *b64, const char *key_b64, vapi_policy_in *out);
void vapi_policy_in_free(vapi_policy_in *p);
/* The request's runtime_policy_key (base64 text) into *key (NULL when absent or ""). */
int vapi_policy_key(qhttp_req *r, const cJSON *body, const char **key);

/* The registrar record of an agent: from the external registrar when [verifier] registrar_url
 * is set (registrar_client.h; asked for as the request spelled the id, asked), else from this
 * verifier's own store (by the key, id). 1 found, 0 unknown, -1 error. */
int vapi_registrar_get(const vapi_ctx *c, const char *id, const char *asked, vreg_agent *out, qerr *err);

/* The status object of one agent (keylime-formats §5.2 plus Quince's fields). */
cJSON *vapi_status(const vapi_ctx *c, const vagent *a, qerr *err);

/* Handlers. */
void vapi_h_agent_list(qhttp_req *r, void *ctx);
void vapi_h_agent_get(qhttp_req *r, void *ctx);
void vapi_h_agent_add(qhttp_req *r, void *ctx);
void vapi_h_agent_delete(qhttp_req *r, void *ctx);
void vapi_h_agent_reactivate(qhttp_req *r, void *ctx);
void vapi_h_agent_stop(qhttp_req *r, void *ctx);
void vapi_h_policy_list(qhttp_req *r, void *ctx);
void vapi_h_policy_get(qhttp_req *r, void *ctx);
void vapi_h_policy_post(qhttp_req *r, void *ctx);
void vapi_h_policy_put(qhttp_req *r, void *ctx);
void vapi_h_policy_delete(qhttp_req *r, void *ctx);
void vapi_h_mb_list(qhttp_req *r, void *ctx);
void vapi_h_mb_get(qhttp_req *r, void *ctx);
void vapi_h_mb_post(qhttp_req *r, void *ctx);
void vapi_h_mb_put(qhttp_req *r, void *ctx);
void vapi_h_mb_delete(qhttp_req *r, void *ctx);

/* api_mbpolicies.c: a reference state's text checked with qmb_ref_parse (400 with the reason). */
int vapi_mb_check(qhttp_req *r, const char *text);
/* The measured-boot reference of a new agent, by the runtime policy's naming rules: no name and
 * no mb_policy → none (*mb_id 0); a name → the stored one (404 if none); a policy → stored under
 * the name, or the agent id without one (409 if it exists). created names what was stored. */
int vapi_mb_resolve(qhttp_req *r, vapi_ctx *c, const cJSON *body, const char *id, long *mb_id,
                    char created[VSTORE_ID_MAX]);

#endif
