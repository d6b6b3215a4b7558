/* api_agents.c — /v{v}/agents: list, status, add, delete, reactivate, stop (keylime-formats §5.2).
 * Agent ids are lower-cased by vapi_agent_id before anything else (the store's key); answers show
 * the id as added (display_id) or as the request spelled it (see api.h). */
#include "api_int.h"
#include "api_validate.h"
#include "tls_pin.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>

#include "b64.h"
#include "ima_sig.h"
#include "log.h"

#define MAX_FIELD      4096        /* ip, versions, names */
#define MAX_CERT       (64 * 1024) /* mtls_cert PEM */
#define DEFAULT_AGENT_API "2.1"    /* when the add request does not say: every 2.x agent has it */

/* ---- list / show ---------------------------------------------------------------------------- */

static int collect_id(void *ctx, const char *agent_id)
{
    return cJSON_AddItemToArray(ctx, cJSON_CreateString(agent_id)) ? 0 : 1;
}

static bool truthy_arg(const char *v)
{
    return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

void vapi_h_agent_list(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    qerr e = {0};
    if (vapi_check_version(r) < 0)
        return;
    /* One verifier per store: every agent carries this verifier's id. */
    const char *vid = qhttp_req_query(r, "verifier");
    bool mine = !vid || !*vid || strcmp(vid, c->cfg->verifier_id) == 0;
    cJSON *ids = cJSON_CreateArray();
    if (!ids) {
        qhttp_reply_error(r, 500, "Out of memory");
        return;
    }
    /* The list shows the ids as added; bulk reads each agent by its key and shows its display_id. */
    bool bulk = truthy_arg(qhttp_req_query(r, "bulk"));
    if (mine && (bulk ? vstore_agent_list(c->store, collect_id, ids, &e)
                      : vstore_agent_list_display(c->store, collect_id, ids, &e)) < 0) {
        cJSON_Delete(ids);
        vapi_store_error(r, "cannot list agents", &e);
        return;
    }
    cJSON *res = cJSON_CreateObject();
    if (!bulk) {
        /* Keylime's shape: a list of one-element lists. */
        cJSON *uuids = cJSON_AddArrayToObject(res, "uuids");
        for (cJSON *it = ids->child; it; it = it->next) {
            cJSON *one = cJSON_CreateArray();
            cJSON_AddItemToArray(one, cJSON_CreateString(it->valuestring));
            cJSON_AddItemToArray(uuids, one);
        }
        cJSON_Delete(ids);
        qhttp_reply(r, 200, res);
        return;
    }
    for (cJSON *it = ids->child; it; it = it->next) {
        vagent a;
        memset(&a, 0, sizeof a);
        int rc = vstore_agent_get(c->store, it->valuestring, &a, &e);
        if (rc == 0)
            continue;            /* deleted meanwhile */
        cJSON *st = rc > 0 ? vapi_status(c, &a, &e) : NULL;
        if (st)
            cJSON_AddItemToObject(res, a.display_id, st);
        if (rc > 0)
            vagent_free(&a);
        if (!st) {
            cJSON_Delete(ids);
            cJSON_Delete(res);
            vapi_store_error(r, "cannot read agent", &e);
            return;
        }
    }
    cJSON_Delete(ids);
    qhttp_reply(r, 200, res);
}

void vapi_h_agent_get(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    char id[VSTORE_ID_MAX];
    qerr e = {0};
    if (vapi_agent_id(r, id) < 0)
        return;
    vagent a;
    memset(&a, 0, sizeof a);
    int rc = vstore_agent_get(c->store, id, &a, &e);
    if (rc < 0) {
        vapi_store_error(r, "cannot read agent", &e);
        return;
    }
    if (rc == 0) {
        qhttp_reply_error(r, 404, "agent id not found");
        return;
    }
    cJSON *st = vapi_status(c, &a, &e);
    vagent_free(&a);
    if (!st) {
        vapi_store_error(r, "cannot read agent", &e);
        return;
    }
    qhttp_reply(r, 200, st);
}

/* ---- add ------------------------------------------------------------------------------------ */

/* Keys Keylime reads with [] (a KeyError → 400 "Exception error: 'key'"). accept_tpm_*_algs fall
 * back to the configuration and ak_tpm is taken from the registrar, so those are optional here. */
static const char *const required_keys[] = {
    "tpm_policy", "metadata", "ima_sign_verification_keys", "revocation_key", "mb_policy_name", "mb_policy",
};

/* A port given as a number or a numeric string; absent → def. */
static int get_port(qhttp_req *r, const cJSON *body, const char *key, long def, long *out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, key);
    *out = def;
    if (!m || cJSON_IsNull(m) || (cJSON_IsString(m) && !m->valuestring[0]))
        return 0;
    long v = -1;
    if (cJSON_IsNumber(m) && m->valuedouble >= 1 && m->valuedouble <= 65535 &&
        m->valuedouble == (double)(long)m->valuedouble) {
        v = (long)m->valuedouble;
    } else if (cJSON_IsString(m)) {
        char *end;
        errno = 0;
        v = strtol(m->valuestring, &end, 10);
        if (errno || *end || !isdigit((unsigned char)m->valuestring[0]))
            v = -1;
    }
    if (v < 1 || v > 65535) {
        qhttp_reply_error(r, 400, "%s must be a port number (1..65535)", key);
        return -1;
    }
    *out = v;
    return 0;
}

/* accept_tpm_*_algs: a list of strings (or a string holding one); absent → the configured
 * default. *out is malloc'd JSON array text. */
static int get_alg_list(qhttp_req *r, const cJSON *body, const char *key, const char *def, char **out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, key);
    *out = NULL;
    if (!m || cJSON_IsNull(m)) {
        *out = strdup(def);
        goto done;
    }
    cJSON *parsed = NULL;
    if (cJSON_IsString(m))
        m = parsed = cJSON_Parse(m->valuestring);
    qerr e = {0};
    bool ok = vapi_check_algs(key, m, &e) == 0;
    if (ok)
        *out = cJSON_PrintUnformatted(m);
    cJSON_Delete(parsed);
    if (!ok) {
        qhttp_reply_error(r, 400, "%s", e.msg);
        return -1;
    }
done:
    if (!*out) {
        qhttp_reply_error(r, 500, "Out of memory");
        return -1;
    }
    return 0;
}

/* supported_version "2.2" (a leading 'v' is dropped); absent → DEFAULT_AGENT_API. */
static int get_agent_version(qhttp_req *r, const cJSON *body, char **out)
{
    const char *v;
    if (vapi_opt_str(r, body, "supported_version", 16, &v) < 0)
        return -1;
    if (!v || !*v)
        v = DEFAULT_AGENT_API;
    if (*v == 'v')
        v++;
    const char *p = v;
    int dots = 0;
    for (; *p; p++) {
        if (*p == '.')
            dots++;
        else if (!isdigit((unsigned char)*p))
            break;
    }
    if (*p || dots != 1 || !isdigit((unsigned char)v[0]) || p[-1] == '.') {
        qhttp_reply_error(r, 400, "supported_version must look like \"2.2\"");
        return -1;
    }
    *out = strdup(v);
    if (!*out) {
        qhttp_reply_error(r, 500, "Out of memory");
        return -1;
    }
    return 0;
}

static int check_v(qhttp_req *r, const char *v)
{
    if (!v || !*v)
        return 0;
    uint8_t raw[64];
    long n = qb64_decode(v, strlen(v), raw, sizeof raw);
    OPENSSL_cleanse(raw, sizeof raw);
    if (n != 32 && n != 16) {
        qhttp_reply_error(r, 400, "v must be the base64 of a 32-byte (or 16-byte) key half");
        return -1;
    }
    return 0;
}

static int check_keyring(qhttp_req *r, const char *text)
{
    if (!text || !*text)
        return 0;
    qerr e = {0};
    qkeyring *k = qkeyring_from_json(text, strlen(text), &e);
    if (!k) {
        qhttp_reply_error(r, 400, "ima_sign_verification_keys is not a valid keyring: %s", e.msg);
        return -1;
    }
    qkeyring_free(k);
    return 0;
}

/* The runtime policy of a new agent (keylime-formats §5.2 naming rules):
 *   no name, no policy → the empty policy stored under the agent id;
 *   a name, no policy  → the stored policy of that name (404 if none);
 *   no name, a policy  → the policy stored under the agent id;
 *   a name and a policy → the policy stored under the name.
 * Storing never replaces an existing name (409). *created tells whether a name was stored. */
static int resolve_policy(qhttp_req *r, vapi_ctx *c, const cJSON *body, const char *id, long *policy_id,
                          char created[VSTORE_ID_MAX])
{
    const char *name, *b64, *key;
    qerr e = {0};
    created[0] = '\0';
    if (vapi_opt_str(r, body, "runtime_policy_name", VSTORE_ID_MAX - 1, &name) < 0 ||
        vapi_opt_str(r, body, "runtime_policy", SIZE_MAX, &b64) < 0 || vapi_policy_key(r, body, &key) < 0)
        return -1;
    if (name && !*name)
        name = NULL;
    if (name && !vapi_name_ok(name)) {
        qhttp_reply_error(r, 400, "runtime_policy_name must be printable ASCII without '/'");
        return -1;
    }
    if (name && (!b64 || !*b64)) {
        vpolicy p;
        memset(&p, 0, sizeof p);
        int rc = vstore_policy_get(c->store, name, &p, &e);
        if (rc < 0) {
            vapi_store_error(r, "cannot read runtime policy", &e);
            return -1;
        }
        if (rc == 0) {
            qhttp_reply_error(r, 404, "Could not find IMA policy with name %s!", name);
            return -1;
        }
        *policy_id = p.id;
        vpolicy_free(&p);
        return 0;
    }
    const char *store_name = name ? name : id;
    vapi_policy_in in;
    if (vapi_policy_decode(r, c, b64, key, &in) < 0)
        return -1;
    int rc = vstore_policy_put_signed(c->store, store_name, in.text, in.checksum, in.generator, NULL, in.sign_key,
                                      false, policy_id, &e);
    vapi_policy_in_free(&in);
    if (rc < 0) {
        vapi_store_error(r, "cannot store runtime policy", &e);
        return -1;
    }
    if (rc == 0) {
        qhttp_reply_error(r, 409,
                          "IMA policy with name %s already exists. Please use a different name or delete the "
                          "allowlist from the verifier.",
                          store_name);
        return -1;
    }
    snprintf(created, VSTORE_ID_MAX, "%s", store_name);
    return 0;
}

/* Everything of the add body except the policy, checked and copied into a (owned strings). */
static int read_agent_fields(qhttp_req *r, vapi_ctx *c, const cJSON *body, const vreg_agent *reg, vagent *a)
{
    const char *s;
    long port;
    if (vapi_json_text(r, body, "tpm_policy", true, &a->tpm_policy) < 0 ||
        vapi_json_text(r, body, "metadata", true, &a->meta_data) < 0)
        return -1;
    if (!a->meta_data && !(a->meta_data = strdup("{}")))
        goto oom;
    qerr ve = {0};
    if ((a->tpm_policy && vapi_check_tpm_policy(a->tpm_policy, &ve) < 0) ||
        vapi_check_metadata(a->meta_data, &ve) < 0) {
        qhttp_reply_error(r, 400, "%s", ve.msg);
        return -1;
    }
    if (vapi_opt_str(r, body, "ima_sign_verification_keys", VAPI_KEYS_MAX, &s) < 0 || check_keyring(r, s) < 0)
        return -1;
    if (s && *s && !(a->ima_sign_verification_keys = strdup(s)))
        goto oom;
    if (vapi_opt_str(r, body, "revocation_key", VAPI_TEXT_MAX, &s) < 0)
        return -1;

    if (vapi_opt_str(r, body, "v", 128, &s) < 0 || check_v(r, s) < 0)
        return -1;
    if (s && *s && !(a->v = strdup(s)))
        goto oom;

    if (vapi_opt_str(r, body, "cloudagent_ip", MAX_FIELD, &s) < 0)
        return -1;
    if (s && *s && vapi_check_host("cloudagent_ip", s, &ve) < 0) {
        qhttp_reply_error(r, 400, "%s", ve.msg);
        return -1;
    }
    if (!s || !*s)
        s = reg->ip;
    if (!s || !*s) {
        qhttp_reply_error(r, 400, "cloudagent_ip is required: the registrar has no address for agent %s",
                          a->display_id);
        return -1;
    }
    if (!(a->ip = strdup(s)))
        goto oom;
    if (get_port(r, body, "cloudagent_port", reg->port, &port) < 0)
        return -1;
    if (port <= 0) {
        qhttp_reply_error(r, 400, "cloudagent_port is required: the registrar has no port for agent %s",
                          a->display_id);
        return -1;
    }
    a->port = port;

    if (vapi_opt_str(r, body, "verifier_ip", MAX_FIELD, &s) < 0)
        return -1;
    if (s && *s && vapi_check_host("verifier_ip", s, &ve) < 0) {
        qhttp_reply_error(r, 400, "%s", ve.msg);
        return -1;
    }
    if (!(a->verifier_ip = strdup(s && *s ? s : c->cfg->ip)))
        goto oom;
    if (get_port(r, body, "verifier_port", c->cfg->port, &a->verifier_port) < 0)
        return -1;
    if (!(a->verifier_id = strdup(c->cfg->verifier_id)))
        goto oom;

    if (get_alg_list(r, body, "accept_tpm_hash_algs", c->cfg->accept_tpm_hash_algs, &a->accept_tpm_hash_algs) < 0 ||
        get_alg_list(r, body, "accept_tpm_encryption_algs", c->cfg->accept_tpm_encryption_algs,
                     &a->accept_tpm_encryption_algs) < 0 ||
        get_alg_list(r, body, "accept_tpm_signing_algs", c->cfg->accept_tpm_signing_algs,
                     &a->accept_tpm_signing_algs) < 0 ||
        get_agent_version(r, body, &a->supported_version) < 0)
        return -1;

    /* mtls_cert: always the certificate the agent registered (the one the verifier pins when it
     * polls); a different one in the request is ignored, since whoever sends the add request
     * must not choose whom the verifier trusts. */
    if (vapi_opt_str(r, body, "mtls_cert", MAX_CERT, &s) < 0)
        return -1;
    if (s && *s && (!reg->mtls_cert || strcmp(s, reg->mtls_cert) != 0))
        qlog(QLOG_WARNING, VAPI_LOG, "agent %s: mtls_cert in the add request differs from the registrar's; "
                                     "using the registrar's", a->agent_id);
    if (qtls_is_cert_pem(reg->mtls_cert)) {
        if (!(a->mtls_cert = strdup(reg->mtls_cert)))
            goto oom;
    } else if (c->cfg->allow_agent_plain_http) {
        qlog(QLOG_WARNING, VAPI_LOG, "agent %s registered without an mTLS certificate; it will be polled over "
                                     "plain HTTP (allow_agent_plain_http)", a->agent_id);
        if (!(a->mtls_cert = strdup("disabled")))
            goto oom;
    } else {
        qlog(QLOG_WARNING, VAPI_LOG, "agent %s refused: it registered without an mTLS certificate", a->agent_id);
        qhttp_reply_error(r, 400, "mTLS certificate for agent is required!");
        return -1;
    }

    /* The AK is the one the registrar bound to the EK, never the request's. */
    if (vapi_opt_str(r, body, "ak_tpm", VAPI_TEXT_MAX, &s) < 0)
        return -1;
    if (s && *s && strcmp(s, reg->aik_tpm) != 0)
        qlog(QLOG_WARNING, VAPI_LOG, "agent %s: ak_tpm in the add request differs from the registrar's; "
                                     "using the registrar's", a->agent_id);
    if (!(a->ak_tpm = strdup(reg->aik_tpm)))
        goto oom;
    return 0;
oom:
    qhttp_reply_error(r, 500, "Out of memory");
    return -1;
}

static void drop_created_policy(vapi_ctx *c, const char *name)
{
    qerr e = {0};
    if (name[0] && vstore_policy_delete(c->store, name, &e) < 0)
        qlog(QLOG_WARNING, VAPI_LOG, "cannot remove runtime policy %s: %s", name, e.msg);
}

static void drop_created_mb(vapi_ctx *c, const char *name)
{
    qerr e = {0};
    if (name[0] && vstore_mbpolicy_delete(c->store, name, &e) < 0)
        qlog(QLOG_WARNING, VAPI_LOG, "cannot remove measured boot policy %s: %s", name, e.msg);
}

void vapi_h_agent_add(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    char id[VSTORE_ID_MAX];
    qerr e = {0};
    if (vapi_agent_id(r, id) < 0)
        return;
    const char *asked = qhttp_req_param(r, "id");   /* valid: the display id, and what replies echo */
    const cJSON *body = vapi_body_object(r);
    if (!body)
        return;
    for (size_t i = 0; i < sizeof required_keys / sizeof required_keys[0]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(body, required_keys[i])) {
            qhttp_reply_error(r, 400, "Exception error: '%s'", required_keys[i]);
            return;
        }

    vreg_agent reg;
    memset(&reg, 0, sizeof reg);
    int rc = vapi_registrar_get(c, id, asked, &reg, &e);
    if (rc < 0 && c->cfg->registrar_url[0]) {
        qlog(QLOG_ERROR, VAPI_LOG, "agent %s not added: %s", id, e.msg);
        qhttp_reply_error(r, 502, "cannot read agent %s from the registrar: %s", asked, e.msg);
        return;
    }
    if (rc < 0) {
        vapi_store_error(r, "cannot read the registrar record", &e);
        return;
    }
    if (rc == 0) {
        qhttp_reply_error(r, 404, "Agent %s is not registered with the registrar", asked);
        return;
    }
    vagent a;
    memset(&a, 0, sizeof a);
    char created[VSTORE_ID_MAX] = "", mb_created[VSTORE_ID_MAX] = "";
    if (!reg.active) {
        qhttp_reply_error(r, 400, "Agent %s has not been activated at the registrar", asked);
        goto out;
    }
    if (!reg.aik_tpm || !*reg.aik_tpm) {
        qhttp_reply_error(r, 400, "The registrar holds no AK for agent %s", asked);
        goto out;
    }
    rc = vstore_agent_get(c->store, id, &a, &e);
    if (rc != 0) {
        if (rc > 0)
            qhttp_reply_error(r, 409, "Agent of uuid %s already exists. Please use delete or update.", asked);
        else
            vapi_store_error(r, "cannot read agent", &e);
        goto out;
    }
    memset(&a, 0, sizeof a);
    snprintf(a.agent_id, sizeof a.agent_id, "%s", id);
    snprintf(a.display_id, sizeof a.display_id, "%s", asked);
    if (read_agent_fields(r, c, body, &reg, &a) < 0 || resolve_policy(r, c, body, asked, &a.policy_id, created) < 0)
        goto out;
    if (vapi_mb_resolve(r, c, body, asked, &a.mb_policy_id, mb_created) < 0) {
        drop_created_policy(c, created);
        goto out;
    }

    vagent_state *st = &a.st;
    memcpy(st->agent_id, a.agent_id, sizeof st->agent_id);
    st->operational_state = VSTATE_START;
    st->pcr10_alg = QHASH_NONE;
    st->severity_level = -1;
    rc = vstore_agent_add(c->store, &a, &e);
    if (rc <= 0) {
        drop_created_policy(c, created);
        drop_created_mb(c, mb_created);
        if (rc == 0)
            qhttp_reply_error(r, 409, "Agent of uuid %s already exists. Please use delete or update.", asked);
        else
            vapi_store_error(r, "cannot store agent", &e);
        goto out;
    }
    if (c->poller)
        vpoller_agent_added(c->poller, id);
    qlog(QLOG_INFO, VAPI_LOG, "agent %s added (%s:%ld)%s, attestation starts", id, a.ip, a.port,
         a.mb_policy_id ? " with a measured boot reference state" : "");
    qhttp_reply(r, 200, NULL);
out:
    vagent_free(&a);
    vreg_agent_free(&reg);
}

/* ---- delete / reactivate / stop ------------------------------------------------------------- */

/* 1 if the agent exists (display, may be NULL, gets its id as added), 0 after replying 404, -1
 * after replying 500. */
static int agent_exists(qhttp_req *r, vapi_ctx *c, const char *id, char *display)
{
    vagent a;
    qerr e = {0};
    memset(&a, 0, sizeof a);
    int rc = vstore_agent_get(c->store, id, &a, &e);
    if (rc > 0 && display)
        memcpy(display, a.display_id, sizeof a.display_id);
    if (rc > 0)
        vagent_free(&a);
    else if (rc == 0)
        qhttp_reply_error(r, 404, "agent id not found");
    else
        vapi_store_error(r, "cannot read agent", &e);
    return rc;
}

/* Polling stops first; a round already in flight is given up to the request timeout to finish
 * (its result then lands on an agent that is being deleted, which the store ignores). */
static void wait_idle(vapi_ctx *c, const char *id)
{
    if (!c->poller)
        return;
    vpoller_agent_stopped(c->poller, id);
    if (!vpoller_agent_wait_idle(c->poller, id, c->cfg->request_timeout_ms))
        qlog(QLOG_WARNING, VAPI_LOG, "agent %s: deleting while a round is still in flight", id);
}

void vapi_h_agent_delete(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    char id[VSTORE_ID_MAX], display[VSTORE_ID_MAX];
    qerr e = {0};
    if (vapi_agent_id(r, id) < 0 || agent_exists(r, c, id, display) <= 0)
        return;
    wait_idle(c, id);
    int rc = vstore_agent_delete(c->store, id, &e);
    if (rc < 0) {
        vapi_store_error(r, "cannot delete agent", &e);
        return;
    }
    if (c->poller)
        vpoller_agent_removed(c->poller, id);
    if (rc == 0) {
        qhttp_reply_error(r, 404, "agent id not found");
        return;
    }
    /* As Keylime: the policies named after the agent (its id as added) go with it, unless another
     * agent uses them. */
    qerr pe = {0};
    if (vstore_policy_delete(c->store, display, &pe) < 0 && pe.code != 409)
        qlog(QLOG_WARNING, VAPI_LOG, "agent %s deleted, but not its runtime policy: %s", id, pe.msg);
    qerr me = {0};
    if (vstore_mbpolicy_delete(c->store, display, &me) < 0 && me.code != 409)
        qlog(QLOG_WARNING, VAPI_LOG, "agent %s deleted, but not its measured boot policy: %s", id, me.msg);
    qlog(QLOG_INFO, VAPI_LOG, "agent %s deleted", id);
    qhttp_reply(r, 200, NULL);
}

void vapi_h_agent_reactivate(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    char id[VSTORE_ID_MAX];
    qerr e = {0};
    if (vapi_agent_id(r, id) < 0)
        return;
    vagent a;
    memset(&a, 0, sizeof a);
    int rc = vstore_agent_get(c->store, id, &a, &e);
    if (rc > 0)
        vagent_free(&a);
    if (rc == 0) {
        qhttp_reply_error(r, 400, "agent id not found");   /* Keylime answers an unknown id here with 400 */
        return;
    }
    if (rc < 0) {
        vapi_store_error(r, "cannot read agent", &e);
        return;
    }
    if (vstore_set_state(c->store, id, VSTATE_START, &e) < 0) {
        vapi_store_error(r, "cannot reactivate agent", &e);
        return;
    }
    if (c->poller)
        vpoller_agent_reactivated(c->poller, id);
    qlog(QLOG_INFO, VAPI_LOG, "agent %s reactivated", id);
    qhttp_reply(r, 200, NULL);
}

void vapi_h_agent_stop(qhttp_req *r, void *ctx)
{
    vapi_ctx *c = ctx;
    char id[VSTORE_ID_MAX];
    qerr e = {0};
    if (vapi_agent_id(r, id) < 0 || agent_exists(r, c, id, NULL) <= 0)
        return;
    if (c->poller)
        vpoller_agent_stopped(c->poller, id);
    if (vstore_set_state(c->store, id, VSTATE_TENANT_FAILED, &e) < 0) {
        vapi_store_error(r, "cannot stop agent", &e);
        return;
    }
    qlog(QLOG_INFO, VAPI_LOG, "agent %s stopped by the tenant", id);
    qhttp_reply(r, 200, NULL);
}
