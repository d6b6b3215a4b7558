/* test_verifier_api.c — the verifier REST API (verifier/api*.c) served on 127.0.0.1:0 over a
 * temporary SQLite store, without a poller, driven with http_client: agents (add, show, list,
 * bulk, delete, stop, reactivate), runtime policies (allowlists) with Keylime's codes and
 * messages, validation errors, 413, the AK taken from the registrar record, case-insensitive ids
 * shown as added.
 * Also the [verifier]/[registrar] configuration (verifier/vconfig.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../verifier/api.h"
#include "b64.h"
#include "config.h"
#include "http_client.h"
#include "http_server.h"
#include "../../verifier/store.h"
#include "../../verifier/vconfig.h"
#include "tls_ca.h"

#define DIGEST "aa5a3ab7a0d4e65e21fce6bb17fd6e7fc0e4d6c3b1b8a8f0e5d0d1c3b4a59687"

#define POLICY_OK                                                                                      \
    "{\"meta\": {\"version\": 1, \"generator\": 3}, \"release\": 0, \"digests\": {\"/usr/bin/a\": [\"" DIGEST \
    "\"]}, \"excludes\": [\"^/tmp/\"], \"keyrings\": {}, \"ima\": {\"ignored_keyrings\": [], "          \
    "\"log_hash_alg\": \"sha1\", \"dm_policy\": null}, \"ima-buf\": {}, \"verification-keys\": \"\"}"

#define POLICY_BAD_EXCLUDE                                                                             \
    "{\"meta\": {\"version\": 1, \"generator\": 3}, \"release\": 0, \"digests\": {}, "                 \
    "\"excludes\": [\"^/ok/\", \"/bad/([unclosed\"], \"keyrings\": {}, \"ima\": {\"ignored_keyrings\": [], " \
    "\"log_hash_alg\": \"sha1\", \"dm_policy\": null}, \"ima-buf\": {}, \"verification-keys\": \"\"}"

#define POLICY_BAD_DIGEST                                                                              \
    "{\"meta\": {\"version\": 1, \"generator\": 3}, \"release\": 0, \"digests\": {\"/a\": [\"xyz\"]}, "  \
    "\"excludes\": [], \"keyrings\": {}, \"ima\": {\"ignored_keyrings\": [], "                          \
    "\"log_hash_alg\": \"sha1\", \"dm_policy\": null}, \"ima-buf\": {}, \"verification-keys\": \"\"}"

typedef struct fx {
    char dir[64];
    vstore *store;
    vconfig cfg;
    vapi_ctx ctx;
    qhttp_server *srv;
    qhttp_client *cli;
    char base[64];
    qhttp_result res;
} fx;

/* A self-signed certificate PEM (an agent's mtls_cert), made once. */
static const char *agent_cert(void)
{
    static char *pem;
    if (!pem) {
        qerr e = {0};
        static const char *const names[] = {"127.0.0.1", NULL};
        qtls_cert_opts o = {.cn = "agent", .names = names, .eku = QTLS_EKU_SERVER | QTLS_EKU_CLIENT};
        EVP_PKEY *k = qtls_key_new(QTLS_KEY_EC_P256, &e);
        X509 *c = k ? qtls_make_cert(&o, k, NULL, NULL, &e) : NULL;
        pem = c ? qtls_cert_pem(c, NULL, &e) : NULL;
        X509_free(c);
        EVP_PKEY_free(k);
        if (!pem)
            fail_msg("agent certificate: %s", e.msg);
    }
    return pem;
}

/* mtls NULL: the agent's certificate. */
static void reg_put_mtls(vstore *s, const char *id, const char *aik, bool active, const char *mtls)
{
    char ek[] = "RUtfUFVC", ip[] = "127.0.0.1", key[] = "a2V5";
    vreg_agent a;
    memset(&a, 0, sizeof a);
    snprintf(a.agent_id, sizeof a.agent_id, "%s", id);
    a.ek_tpm = ek;
    a.aik_tpm = (char *)aik;
    a.mtls_cert = (char *)(mtls ? mtls : agent_cert());
    a.ip = ip;
    a.port = 9002;
    a.regcount = 1;
    a.active = active;
    a.key = key;
    qerr e = {0};
    if (vstore_reg_put(s, &a, &e) < 0)
        fail_msg("vstore_reg_put: %s", e.msg);
}

static void reg_put(vstore *s, const char *id, const char *aik, bool active)
{
    reg_put_mtls(s, id, aik, active, NULL);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_vapi.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[128];
    snprintf(path, sizeof path, "%s/v.sqlite", f->dir);
    qerr e = {0};
    f->store = vstore_open(path, &e);
    if (!f->store)
        fail_msg("vstore_open: %s", e.msg);
    const char *conf = "[verifier]\nmax_upload_size = 65536\nquote_interval = 0.5\n";
    qconfig *qc = qconfig_parse(conf, strlen(conf), "test.conf", &e);
    assert_non_null(qc);
    assert_int_equal(vconfig_load(qc, &f->cfg, &e), 0);
    qconfig_free(qc);
    f->ctx.store = f->store;
    f->ctx.poller = NULL;
    f->ctx.cfg = &f->cfg;
    qhttp_route routes[VAPI_MAX_ROUTES];
    size_t n = vapi_routes(&f->ctx, routes, VAPI_MAX_ROUTES);
    assert_true(n >= 12);
    qhttp_server_opts so = {.ip = "127.0.0.1", .port = 0, .max_body = (size_t)f->cfg.max_upload_size, .threads = 2};
    f->srv = qhttp_server_start(&so, routes, n, &e);
    if (!f->srv)
        fail_msg("server: %s", e.msg);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", qhttp_server_port(f->srv));
    f->cli = qhttp_client_new(NULL, &e);
    assert_non_null(f->cli);
    reg_put(f->store, "agent-1", "UkVHSVNUUkFSX0FL", true);
    reg_put(f->store, "agent-2", "QUsy", true);
    reg_put(f->store, "sleeper", "QUsz", false);
    reg_put_mtls(f->store, "plain", "QUs0", true, "disabled");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    qhttp_result_free(&f->res);
    qhttp_client_free(f->cli);
    qhttp_server_stop(f->srv);
    vstore_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* One request; returns the HTTP status (the answer stays in f->res). */
static long req(fx *f, const char *method, const char *path, const char *body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    qerr e = {0};
    qhttp_result_free(&f->res);
    if (qhttp_request(f->cli, method, url, body, body ? strlen(body) : 0, &f->res, &e) < 0)
        fail_msg("%s %s: %s", method, path, e.msg);
    return f->res.status;
}

static const char *status_text(fx *f)
{
    return f->res.status_text ? f->res.status_text : "";
}

static const cJSON *result(fx *f, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(f->res.results, key);
}

static char *b64(const char *s)
{
    char *o = qb64_encode_alloc((const uint8_t *)s, strlen(s));
    assert_non_null(o);
    return o;
}

/* The add body as the Keylime tenant sends it; policy (base64) and name may be NULL. */
static char *add_body(const char *policy_b64, const char *name, const char *ak, const char *drop)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNullToObject(o, "v");
    cJSON_AddStringToObject(o, "cloudagent_ip", "127.0.0.2");
    cJSON_AddNumberToObject(o, "cloudagent_port", 9102);
    cJSON_AddStringToObject(o, "verifier_ip", "127.0.0.1");
    cJSON_AddNumberToObject(o, "verifier_port", 8881);
    cJSON_AddStringToObject(o, "tpm_policy", "{\"mask\": \"0x400\"}");
    cJSON_AddStringToObject(o, "runtime_policy", policy_b64 ? policy_b64 : "");
    if (name)
        cJSON_AddStringToObject(o, "runtime_policy_name", name);
    else
        cJSON_AddNullToObject(o, "runtime_policy_name");
    cJSON_AddStringToObject(o, "runtime_policy_key", "");
    cJSON_AddNullToObject(o, "mb_policy");
    cJSON_AddStringToObject(o, "mb_policy_name", "");
    cJSON_AddStringToObject(o, "ima_sign_verification_keys", "");
    cJSON_AddStringToObject(o, "metadata", "{}");
    cJSON_AddStringToObject(o, "revocation_key", "");
    const char *h[] = {"sha256"}, *en[] = {"rsa"}, *sg[] = {"rsassa"};
    cJSON_AddItemToObject(o, "accept_tpm_hash_algs", cJSON_CreateStringArray(h, 1));
    cJSON_AddItemToObject(o, "accept_tpm_encryption_algs", cJSON_CreateStringArray(en, 1));
    cJSON_AddItemToObject(o, "accept_tpm_signing_algs", cJSON_CreateStringArray(sg, 1));
    if (ak)
        cJSON_AddStringToObject(o, "ak_tpm", ak);
    cJSON_AddStringToObject(o, "mtls_cert", "disabled");
    cJSON_AddStringToObject(o, "supported_version", "2.2");
    if (drop)
        cJSON_DeleteItemFromObjectCaseSensitive(o, drop);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    assert_non_null(s);
    return s;
}

static long add_agent(fx *f, const char *id, const char *policy_b64, const char *name, const char *ak)
{
    char *body = add_body(policy_b64, name, ak, NULL);
    char path[300];
    snprintf(path, sizeof path, "/v2.6/agents/%s", id);
    long st = req(f, "POST", path, body);
    free(body);
    return st;
}

static char *policy_body(const char *policy_text, const char *tpm_policy)
{
    cJSON *o = cJSON_CreateObject();
    char *p = b64(policy_text);
    cJSON_AddStringToObject(o, "runtime_policy", p);
    free(p);
    if (tpm_policy)
        cJSON_AddStringToObject(o, "tpm_policy", tpm_policy);
    cJSON_AddStringToObject(o, "runtime_policy_key", "");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_pure_helpers(void **state)
{
    (void)state;
    char id[VSTORE_ID_MAX];
    qerr e = {0};
    assert_int_equal(vapi_normalise_id("D432FBB3-d2f1_X.y", id, &e), 0);
    assert_string_equal(id, "d432fbb3-d2f1_x.y");
    assert_int_equal(vapi_normalise_id("bad id", id, &e), -1);
    assert_string_equal(e.msg, "agent_id not valid");
    assert_int_equal(vapi_normalise_id("", id, &e), -1);
    assert_int_equal(vapi_normalise_id("a/b", id, &e), -1);
    char longid[VSTORE_ID_MAX + 1];
    memset(longid, 'a', VSTORE_ID_MAX);
    longid[VSTORE_ID_MAX] = '\0';
    assert_int_equal(vapi_normalise_id(longid, id, &e), -1);
    longid[VSTORE_ID_MAX - 1] = '\0';
    assert_int_equal(vapi_normalise_id(longid, id, &e), 0);
    assert_true(vapi_version_supported("2.6"));
    assert_true(vapi_version_supported("2.0"));
    assert_false(vapi_version_supported("3.0"));
    assert_false(vapi_version_supported("2.6x"));
    assert_false(vapi_version_supported(NULL));
}

static void test_version(void **state)
{
    fx *f = *state;
    assert_int_equal(req(f, "GET", "/version", NULL), 200);
    assert_string_equal(cJSON_GetStringValue(result(f, "current_version")), "2.6");
    const cJSON *sv = result(f, "supported_versions");
    assert_true(cJSON_IsArray(sv));
    bool has26 = false;
    for (const cJSON *it = sv->child; it; it = it->next)
        has26 |= strcmp(it->valuestring, "2.6") == 0;
    assert_true(has26);
    assert_int_equal(req(f, "GET", "/v9.9/agents/", NULL), 404);   /* Keylime's code */
    assert_string_equal(status_text(f), "API Version not supported");
    assert_int_equal(req(f, "GET", "/v2.6/agents/x", NULL), 404);
    assert_int_equal(req(f, "GET", "/v3.0/allowlists/", NULL), 404);
}

static void test_agent_lifecycle(void **state)
{
    fx *f = *state;
    /* Upper case in: found in any case, shown as added. The request's ak_tpm is ignored. */
    assert_int_equal(add_agent(f, "AGENT-1", NULL, NULL, "RVZJTF9BSw=="), 200);
    assert_int_equal(req(f, "GET", "/v2.6/agents/agent-1", NULL), 200);
    assert_int_equal((int)cJSON_GetNumberValue(result(f, "operational_state")), VSTATE_START);
    assert_string_equal(cJSON_GetStringValue(result(f, "operational_state_name")), "Start");
    assert_string_equal(cJSON_GetStringValue(result(f, "ip")), "127.0.0.2");
    assert_int_equal((int)cJSON_GetNumberValue(result(f, "port")), 9102);
    assert_int_equal((int)cJSON_GetNumberValue(result(f, "has_runtime_policy")), 0);
    assert_int_equal((int)cJSON_GetNumberValue(result(f, "has_mb_refstate")), 0);
    assert_string_equal(cJSON_GetStringValue(result(f, "attestation_status")), "PENDING");
    assert_string_equal(cJSON_GetStringValue(result(f, "attestation_period")), "0.5s");
    /* Keylime's meaning: five quote intervals. */
    assert_string_equal(cJSON_GetStringValue(result(f, "maximum_attestation_interval")), "2.5s");
    assert_string_equal(cJSON_GetStringValue(result(f, "verifier_id")), "default");
    assert_string_equal(cJSON_GetStringValue(result(f, "tpm_policy")), "{\"mask\": \"0x400\"}");
    assert_true(cJSON_IsNull(result(f, "severity_level")));
    assert_true(cJSON_IsNull(result(f, "last_event_id")));
    assert_true(cJSON_IsArray(result(f, "failures")));
    assert_int_equal(cJSON_GetArraySize(result(f, "failures")), 0);
    const cJSON *h = result(f, "accept_tpm_hash_algs");
    assert_true(cJSON_IsArray(h));
    assert_string_equal(cJSON_GetArrayItem(h, 0)->valuestring, "sha256");
    /* The upper-case id finds the same agent. */
    assert_int_equal(req(f, "GET", "/v2.6/agents/Agent-1", NULL), 200);

    vagent a;
    memset(&a, 0, sizeof a);
    qerr e = {0};
    assert_int_equal(vstore_agent_get(f->store, "agent-1", &a, &e), 1);
    assert_string_equal(a.ak_tpm, "UkVHSVNUUkFSX0FL");
    assert_string_equal(a.supported_version, "2.2");
    assert_true(a.policy_id > 0);
    assert_string_equal(a.agent_id, "agent-1");
    assert_string_equal(a.display_id, "AGENT-1");
    vagent_free(&a);
    /* The empty policy is stored under the agent id as added (Keylime's name for it). */
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/AGENT-1", NULL), 200);
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/agent-1", NULL), 404);

    assert_int_equal(add_agent(f, "agent-1", NULL, NULL, NULL), 409);   /* one agent whatever the case */
    assert_string_equal(status_text(f), "Agent of uuid agent-1 already exists. Please use delete or update.");

    assert_int_equal(req(f, "GET", "/v2.6/agents/", NULL), 200);
    const cJSON *u = result(f, "uuids");
    assert_int_equal(cJSON_GetArraySize(u), 1);
    assert_true(cJSON_IsArray(cJSON_GetArrayItem(u, 0)));
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(u, 0), 0)->valuestring, "AGENT-1");
    assert_int_equal(req(f, "GET", "/v2.6/agents/?verifier=other", NULL), 200);
    assert_int_equal(cJSON_GetArraySize(result(f, "uuids")), 0);
    assert_int_equal(req(f, "GET", "/v2.6/agents?bulk=True&verifier=default", NULL), 200);
    assert_true(cJSON_IsObject(result(f, "AGENT-1")));
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(result(f, "AGENT-1"), "operational_state")), 1);

    assert_int_equal(req(f, "PUT", "/v2.6/agents/agent-1/stop", NULL), 200);
    assert_int_equal(req(f, "GET", "/v2.6/agents/agent-1", NULL), 200);
    assert_int_equal((int)cJSON_GetNumberValue(result(f, "operational_state")), VSTATE_TENANT_FAILED);
    assert_string_equal(cJSON_GetStringValue(result(f, "attestation_status")), "FAIL");
    assert_int_equal(req(f, "PUT", "/v2.6/agents/AGENT-1/reactivate", NULL), 200);
    assert_int_equal(req(f, "GET", "/v2.6/agents/agent-1", NULL), 200);
    assert_int_equal((int)cJSON_GetNumberValue(result(f, "operational_state")), VSTATE_START);
    assert_int_equal(req(f, "PUT", "/v2.6/agents/nobody/stop", NULL), 404);
    assert_int_equal(req(f, "PUT", "/v2.6/agents/nobody/reactivate", NULL), 400);   /* Keylime's code */

    assert_int_equal(req(f, "DELETE", "/v2.6/agents/Agent-1", NULL), 200);
    assert_int_equal(req(f, "GET", "/v2.6/agents/agent-1", NULL), 404);
    assert_string_equal(status_text(f), "agent id not found");
    assert_int_equal(req(f, "DELETE", "/v2.6/agents/agent-1", NULL), 404);
    /* Its policy (named as the agent was added) went with it. */
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/AGENT-1", NULL), 404);
    /* And it can be added again. */
    assert_int_equal(add_agent(f, "agent-1", NULL, NULL, NULL), 200);
}

/* The pinned certificate is the registrar's; an agent registered without one is refused unless
 * allow_agent_plain_http. */
static void test_add_mtls(void **state)
{
    fx *f = *state;
    assert_false(f->cfg.allow_agent_plain_http);
    assert_int_equal(add_agent(f, "plain", NULL, NULL, NULL), 400);
    assert_string_equal(status_text(f), "mTLS certificate for agent is required!");
    assert_int_equal(req(f, "GET", "/v2.6/agents/plain", NULL), 404);

    /* The request's mtls_cert ("disabled" in add_body) is ignored: the registrar's is stored. */
    assert_int_equal(add_agent(f, "agent-2", NULL, NULL, NULL), 200);
    qerr e = {0};
    vagent a;
    assert_int_equal(vstore_agent_get(f->store, "agent-2", &a, &e), 1);
    assert_string_equal(a.mtls_cert, agent_cert());
    vagent_free(&a);

    f->cfg.allow_agent_plain_http = true;
    assert_int_equal(add_agent(f, "plain", NULL, NULL, NULL), 200);
    assert_int_equal(vstore_agent_get(f->store, "plain", &a, &e), 1);
    assert_string_equal(a.mtls_cert, "disabled");
    vagent_free(&a);
}

static void test_add_errors(void **state)
{
    fx *f = *state;
    assert_int_equal(req(f, "POST", "/v2.6/agents/agent-1", NULL), 400);
    assert_string_equal(status_text(f), "Expected non zero content length");
    assert_int_equal(req(f, "POST", "/v2.6/agents/agent-1", "{\"tpm_policy\": "), 400);
    assert_non_null(strstr(status_text(f), "Invalid JSON"));
    assert_int_equal(req(f, "POST", "/v2.6/agents/agent-1", "[1, 2]"), 400);
    assert_string_equal(status_text(f), "Request body must be a JSON object");

    static const char *const required[] = {"tpm_policy", "metadata", "ima_sign_verification_keys",
                                           "revocation_key", "mb_policy_name", "mb_policy"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char *body = add_body(NULL, NULL, NULL, required[i]);
        assert_int_equal(req(f, "POST", "/v2.6/agents/agent-1", body), 400);
        char want[128];
        snprintf(want, sizeof want, "Exception error: '%s'", required[i]);
        assert_string_equal(status_text(f), want);
        free(body);
    }
    /* Optional keys may be missing: ak_tpm and the algorithm lists. */
    char *body = add_body(NULL, NULL, NULL, "accept_tpm_hash_algs");
    assert_int_equal(req(f, "POST", "/v2.6/agents/agent-2", body), 200);
    free(body);
    assert_int_equal(req(f, "GET", "/v2.6/agents/agent-2", NULL), 200);
    const cJSON *h = result(f, "accept_tpm_hash_algs");
    assert_int_equal(cJSON_GetArraySize(h), 3);
    assert_string_equal(cJSON_GetArrayItem(h, 0)->valuestring, "sha512");

    /* Wrong types and values. */
    const char *bad[][2] = {
        {"{\"cloudagent_port\": \"abc\"}", "cloudagent_port must be a port number (1..65535)"},
        {"{\"cloudagent_port\": 70000}", "cloudagent_port must be a port number (1..65535)"},
        {"{\"tpm_policy\": 5}", "tpm_policy must be a string holding a JSON object"},
        {"{\"tpm_policy\": \"[1]\"}", "tpm_policy must hold a JSON object"},
        {"{\"metadata\": \"not json\"}", "metadata must hold a JSON object"},
        {"{\"accept_tpm_hash_algs\": \"sha256\"}", "accept_tpm_hash_algs must be a list of 1 to 16 algorithm names"},
        {"{\"accept_tpm_signing_algs\": [1]}", "accept_tpm_signing_algs must be a list of algorithm names"},
        {"{\"v\": \"AAAA\"}", "v must be the base64 of a 32-byte (or 16-byte) key half"},
        {"{\"supported_version\": \"two\"}", "supported_version must look like \"2.2\""},
        {"{\"mb_policy\": \"{}\"}", "mb_policy is not a valid measured boot reference state: measured-boot "
                                      "reference state: scrtm_and_bios: expected a non-empty list"},
        {"{\"mb_policy\": 5}", "mb_policy must be a string holding a JSON object"},
        {"{\"ima_sign_verification_keys\": \"{]\"}", NULL},
        {"{\"runtime_policy\": \"e30=\", \"runtime_policy_key\": \"a2V5\"}", "Runtime policy is not signed!"},
        {"{\"runtime_policy_key\": 5}", "runtime_policy_key must be a string"},
        {"{\"cloudagent_ip\": 7}", "cloudagent_ip must be a string"},
        /* Issue 11, item 8: every field has a type, range and size check. */
        {"{\"cloudagent_ip\": \"127.0.0.1/evil#\"}", "cloudagent_ip must be an IP address or a host name"},
        {"{\"cloudagent_ip\": \"a@127.0.0.1\"}", "cloudagent_ip must be an IP address or a host name"},
        {"{\"cloudagent_ip\": \"127.0.0.1\\r\\nHost: x\"}", "cloudagent_ip must be an IP address or a host name"},
        {"{\"cloudagent_ip\": \"[::1]\"}", "cloudagent_ip must be an IP address or a host name"},
        {"{\"cloudagent_ip\": \"1.2.3.999\"}", "cloudagent_ip must be an IP address or a host name"},
        {"{\"verifier_ip\": \"x y\"}", "verifier_ip must be an IP address or a host name"},
        {"{\"cloudagent_port\": 0}", "cloudagent_port must be a port number (1..65535)"},
        {"{\"cloudagent_port\": 1e300}", "cloudagent_port must be a port number (1..65535)"},
        {"{\"cloudagent_port\": -1}", "cloudagent_port must be a port number (1..65535)"},
        {"{\"tpm_policy\": \"{\\\"99\\\": \\\"00\\\"}\"}", "Invalid tpm policy pcr number: 99 (PCRs are 0 to 23)"},
        {"{\"tpm_policy\": \"{\\\"-1\\\": \\\"00\\\"}\"}", "Invalid tpm policy pcr number: -1 (PCRs are 0 to 23)"},
        {"{\"tpm_policy\": \"{\\\"mask\\\": \\\"0x1000000\\\"}\"}", "tpm_policy: mask 0x1000000 selects PCRs above 23"},
        {"{\"tpm_policy\": \"{\\\"mask\\\": 1024}\"}", "tpm_policy: mask must be a string such as \"0x400\""},
        {"{\"tpm_policy\": \"{\\\"15\\\": \\\"xyz\\\"}\"}", NULL},
        {"{\"accept_tpm_hash_algs\": [\"md5\"]}",
         "accept_tpm_hash_algs: unknown algorithm 'md5' (known: sha1, sha256, sha384, sha512, sm3_256)"},
        {"{\"accept_tpm_encryption_algs\": [\"rsassa\"]}", NULL},
        {"{\"accept_tpm_signing_algs\": []}", "accept_tpm_signing_algs must be a list of 1 to 16 algorithm names"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *base = add_body(NULL, NULL, NULL, NULL);
        cJSON *o = cJSON_Parse(base), *patch = cJSON_Parse(bad[i][0]);
        free(base);
        assert_non_null(patch);
        for (cJSON *it = patch->child; it; it = it->next)
            cJSON_ReplaceItemInObjectCaseSensitive(o, it->string, cJSON_Duplicate(it, 1));
        char *s = cJSON_PrintUnformatted(o);
        long st = req(f, "POST", "/v2.6/agents/agent-1", s);
        if (st != 400)
            fail_msg("case %zu (%s): status %ld (%s)", i, bad[i][0], st, status_text(f));
        if (bad[i][1])
            assert_string_equal(status_text(f), bad[i][1]);
        free(s);
        cJSON_Delete(o);
        cJSON_Delete(patch);
    }
    /* A long algorithm list is refused (this server's max_upload_size is 64 KiB; a 100k-item list
     * and a 5 MB metadata are checked in test_api_validate). */
    {
        char *base = add_body(NULL, NULL, NULL, NULL);
        cJSON *o = cJSON_Parse(base);
        free(base);
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < 5000; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString("sha256"));
        cJSON_ReplaceItemInObjectCaseSensitive(o, "accept_tpm_hash_algs", arr);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        long st = req(f, "POST", "/v2.6/agents/agent-1", s);
        free(s);
        assert_int_equal(st, 400);
        assert_string_equal(status_text(f), "accept_tpm_hash_algs must be a list of 1 to 16 algorithm names");
    }
    assert_int_equal(req(f, "GET", "/v2.6/agents/agent-1", NULL), 404);
    body = add_body(NULL, NULL, NULL, NULL);
    cJSON *o = cJSON_Parse(body);
    free(body);
    cJSON_ReplaceItemInObjectCaseSensitive(o, "mb_policy_name", cJSON_CreateString("mb1"));
    body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    assert_int_equal(req(f, "POST", "/v2.6/agents/agent-1", body), 404);
    assert_string_equal(status_text(f), "Could not find mb_policy with name mb1!");
    free(body);

    /* Not registered, not active, bad id. */
    assert_int_equal(add_agent(f, "stranger", NULL, NULL, NULL), 404);
    assert_string_equal(status_text(f), "Agent stranger is not registered with the registrar");
    assert_int_equal(add_agent(f, "Sleeper", NULL, NULL, NULL), 400);
    assert_string_equal(status_text(f), "Agent Sleeper has not been activated at the registrar");
    assert_int_equal(add_agent(f, "bad$id", NULL, NULL, NULL), 400);
    assert_string_equal(status_text(f), "agent_id not valid");
    assert_int_equal(req(f, "POST", "/v2.1/agents/agent-1", "{}"), 400);
    assert_string_equal(status_text(f), "Exception error: 'tpm_policy'");
    /* No policy was left behind by the failed adds. */
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/", NULL), 200);
    const cJSON *names = result(f, "runtimepolicy names");
    assert_int_equal(cJSON_GetArraySize(names), 1);   /* agent-2's */
    assert_string_equal(cJSON_GetArrayItem(names, 0)->valuestring, "agent-2");
}

static void test_add_with_policies(void **state)
{
    fx *f = *state;
    char *p = b64(POLICY_OK);
    assert_int_equal(add_agent(f, "agent-1", p, "pol-a", NULL), 200);
    assert_int_equal(req(f, "GET", "/v2.6/agents/agent-1", NULL), 200);
    assert_int_equal((int)cJSON_GetNumberValue(result(f, "has_runtime_policy")), 1);
    assert_string_equal(cJSON_GetStringValue(result(f, "runtime_policy_name")), "pol-a");
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/pol-a", NULL), 200);
    assert_string_equal(cJSON_GetStringValue(result(f, "runtime_policy")), POLICY_OK);

    /* The policy is in use. */
    assert_int_equal(req(f, "DELETE", "/v2.6/allowlists/pol-a", NULL), 409);
    assert_string_equal(status_text(f), "Can't delete allowlist as it's currently in use by agent agent-1");

    /* Name and policy, but the name exists. */
    assert_int_equal(add_agent(f, "agent-2", p, "pol-a", NULL), 409);
    assert_string_equal(status_text(f), "IMA policy with name pol-a already exists. Please use a different name "
                                         "or delete the allowlist from the verifier.");
    /* A name and no policy: the stored one. */
    assert_int_equal(add_agent(f, "agent-2", NULL, "missing", NULL), 404);
    assert_string_equal(status_text(f), "Could not find IMA policy with name missing!");
    assert_int_equal(add_agent(f, "agent-2", NULL, "a/b", NULL), 400);
    assert_string_equal(status_text(f), "runtime_policy_name must be printable ASCII without '/'");
    assert_int_equal(add_agent(f, "agent-2", NULL, "pol-a", NULL), 200);
    assert_int_equal(req(f, "GET", "/v2.6/agents/agent-2", NULL), 200);
    assert_string_equal(cJSON_GetStringValue(result(f, "runtime_policy_name")), "pol-a");
    /* Deleting agent-1 keeps pol-a (not named after it; agent-2 uses it). */
    assert_int_equal(req(f, "DELETE", "/v2.6/agents/agent-1", NULL), 200);
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/pol-a", NULL), 200);
    assert_int_equal(req(f, "DELETE", "/v2.6/agents/agent-2", NULL), 200);
    assert_int_equal(req(f, "DELETE", "/v2.6/allowlists/pol-a", NULL), 204);

    /* No name, a policy: stored under the agent id. */
    assert_int_equal(add_agent(f, "agent-1", p, NULL, NULL), 200);
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/agent-1", NULL), 200);
    assert_string_equal(cJSON_GetStringValue(result(f, "runtime_policy")), POLICY_OK);
    free(p);

    /* Invalid policies. */
    char *bad = b64(POLICY_BAD_EXCLUDE);
    assert_int_equal(add_agent(f, "agent-2", bad, NULL, NULL), 400);
    const char *msg = status_text(f);
    assert_true(strncmp(msg, "Runtime policy is malformatted: ", 32) == 0);
    assert_non_null(strstr(msg, "excludes:2"));
    assert_non_null(strstr(msg, "/bad/([unclosed"));
    assert_non_null(strstr(msg, "missing terminating ]"));
    free(bad);
    bad = b64(POLICY_BAD_DIGEST);
    assert_int_equal(add_agent(f, "agent-2", bad, NULL, NULL), 400);
    assert_true(strncmp(status_text(f), "Runtime policy is malformatted: ", 32) == 0);
    free(bad);
    assert_int_equal(add_agent(f, "agent-2", "***", NULL, NULL), 400);
    assert_string_equal(status_text(f), "Runtime policy is malformatted: runtime_policy is not valid base64");
    assert_int_equal(req(f, "GET", "/v2.6/agents/agent-2", NULL), 404);
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/agent-2", NULL), 404);
}

static void test_allowlists(void **state)
{
    fx *f = *state;
    char *body = policy_body(POLICY_OK, "{\"mask\": \"0x400\"}");
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/", NULL), 200);
    assert_int_equal(cJSON_GetArraySize(result(f, "runtimepolicy names")), 0);
    assert_int_equal(req(f, "POST", "/v2.6/allowlists/p1", body), 201);
    assert_int_equal(req(f, "POST", "/v2.6/allowlists/p1", body), 409);
    assert_string_equal(status_text(f), "Runtime policy with name p1 already exists");
    assert_int_equal(req(f, "PUT", "/v2.6/allowlists/p1", body), 201);
    assert_int_equal(req(f, "PUT", "/v2.6/allowlists/p2", body), 404);
    assert_string_equal(status_text(f), "Runtime policy with name p2 does not already exist, use POST to create");
    assert_int_equal(req(f, "POST", "/v2.6/allowlists/p2", body), 201);
    free(body);

    assert_int_equal(req(f, "GET", "/v2.6/allowlists/p1", NULL), 200);
    assert_string_equal(cJSON_GetStringValue(result(f, "name")), "p1");
    assert_true(cJSON_IsNull(result(f, "tmp_policy")));
    assert_string_equal(cJSON_GetStringValue(result(f, "runtime_policy")), POLICY_OK);
    assert_int_equal(req(f, "GET", "/v2.6/allowlists", NULL), 200);
    const cJSON *names = result(f, "runtimepolicy names");
    assert_int_equal(cJSON_GetArraySize(names), 2);

    assert_int_equal(req(f, "DELETE", "/v2.6/allowlists/p1", NULL), 204);
    assert_int_equal((int)f->res.body_len, 0);
    assert_int_equal(req(f, "DELETE", "/v2.6/allowlists/p1", NULL), 404);
    assert_string_equal(status_text(f), "Runtime policy p1 not found");
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/p1", NULL), 404);
    assert_string_equal(status_text(f), "Runtime policy p1 not found");

    /* Errors. */
    assert_int_equal(req(f, "POST", "/v2.6/allowlists/p3", NULL), 400);
    assert_string_equal(status_text(f), "Expected non zero content length");
    assert_int_equal(req(f, "POST", "/v2.6/allowlists/p3", "{\"tpm_policy\": \"{}\"}"), 400);
    assert_string_equal(status_text(f), "Exception error: 'runtime_policy'");
    assert_int_equal(req(f, "POST", "/v2.6/allowlists/p3", "{\"runtime_policy\": 12}"), 400);
    assert_string_equal(status_text(f), "runtime_policy must be a string");
    body = policy_body(POLICY_BAD_EXCLUDE, NULL);
    assert_int_equal(req(f, "POST", "/v2.6/allowlists/p3", body), 400);
    assert_non_null(strstr(status_text(f), "excludes:2"));
    assert_non_null(strstr(status_text(f), "missing terminating ]"));
    free(body);
    body = policy_body("{\"meta\": {\"version\": 1}}", NULL);
    assert_int_equal(req(f, "PUT", "/v2.6/allowlists/p2", body), 400);
    assert_true(strncmp(status_text(f), "Runtime policy is malformatted: ", 32) == 0);
    free(body);
    body = policy_body(POLICY_OK, "not json");
    assert_int_equal(req(f, "POST", "/v2.6/allowlists/p3", body), 400);
    assert_string_equal(status_text(f), "tpm_policy must hold a JSON object");
    free(body);
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/p3", NULL), 404);
    assert_int_equal(req(f, "PATCH", "/v2.6/allowlists/p2", NULL), 405);
}

static void test_body_too_large(void **state)
{
    fx *f = *state;
    size_t n = 70000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"runtime_policy\": \"", 20);
    big[n - 2] = '"';
    big[n - 1] = '}';
    big[n] = '\0';
    assert_int_equal(req(f, "POST", "/v2.6/allowlists/big", big), 413);
    assert_int_equal(req(f, "POST", "/v2.6/agents/agent-1", big), 413);
    free(big);
    assert_int_equal(req(f, "GET", "/v2.6/allowlists/big", NULL), 404);
}

static void test_failures_in_status(void **state)
{
    fx *f = *state;
    assert_int_equal(add_agent(f, "agent-1", NULL, NULL, NULL), 200);
    char p1[] = "/usr/bin/evil", ev[] = "ima.validation.ima-ng.not_in_allowlist",
         rs[] = "File not found in allowlist: /usr/bin/evil", empty[] = "", ev2[] = "ima.pcr_mismatch",
         rs2[] = "replay never equals PCR 10";
    vfailure fl[2] = {{.entry = 17, .path = p1, .event_id = ev, .reason = rs, .time = 1},
                      {.entry = UINT64_MAX, .path = empty, .event_id = ev2, .reason = rs2, .time = 1}};
    qerr e = {0};
    assert_int_equal(vstore_failures_set(f->store, "agent-1", fl, 2, &e), 0);
    assert_true(vstore_set_state(f->store, "agent-1", VSTATE_FAILED, &e) >= 0);
    assert_int_equal(req(f, "GET", "/v2.6/agents/agent-1", NULL), 200);
    const cJSON *fs = result(f, "failures");
    assert_int_equal(cJSON_GetArraySize(fs), 2);
    const cJSON *f0 = cJSON_GetArrayItem(fs, 0), *f1 = cJSON_GetArrayItem(fs, 1);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(f0, "entry")), 17);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "path")), "/usr/bin/evil");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "event_id")), ev);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "reason")), rs);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(f1, "entry")));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(f1, "event_id")), ev2);
    assert_string_equal(cJSON_GetStringValue(result(f, "attestation_status")), "FAIL");
    assert_string_equal(cJSON_GetStringValue(result(f, "operational_state_name")), "Failed");
    /* Deleting the agent drops its failure records too. */
    assert_int_equal(req(f, "DELETE", "/v2.6/agents/agent-1", NULL), 200);
}

/* ---- configuration ------------------------------------------------------------------------ */

static int load(const char *text, vconfig *v, qerr *e)
{
    qconfig *qc = qconfig_parse(text, strlen(text), "t.conf", e);
    assert_non_null(qc);
    int rc = vconfig_load(qc, v, e);
    qconfig_free(qc);
    return rc;
}

static void test_config_defaults(void **state)
{
    (void)state;
    vconfig v;
    qerr e = {0};
    assert_int_equal(load("", &v, &e), 0);
    assert_string_equal(v.ip, "127.0.0.1");
    assert_int_equal(v.port, 8881);
    assert_string_equal(v.registrar_ip, "127.0.0.1");
    assert_int_equal(v.registrar_port, 8890);
    assert_int_equal(v.registrar_tls_port, 8891);
    assert_string_equal(v.tls_dir, "/var/lib/quince/tls");
    assert_string_equal(v.server_cert, "/var/lib/quince/tls/server-cert.pem");
    assert_string_equal(v.server_key, "/var/lib/quince/tls/server-key.pem");
    assert_string_equal(v.trusted_client_ca, "/var/lib/quince/tls/cacert.pem");
    assert_string_equal(v.client_cert, "/var/lib/quince/tls/client-cert.pem");
    assert_string_equal(v.client_key, "/var/lib/quince/tls/client-key.pem");
    assert_true(v.tls_generated);
    assert_false(v.insecure);
    assert_false(v.allow_agent_plain_http);
    assert_string_equal(v.database, "/var/lib/quince/verifier.sqlite");
    assert_true(v.quote_interval == 2.0);
    assert_int_equal(v.max_retries, 5);
    assert_true(v.retry_interval == 2.0);
    assert_true(v.exponential_backoff);
    assert_int_equal(v.max_upload_size, 104857600);
    assert_false(v.violations_fail);
    assert_int_equal(v.num_workers, 0);
    assert_string_equal(v.accept_tpm_hash_algs, "[\"sha512\",\"sha384\",\"sha256\"]");
    assert_string_equal(v.accept_tpm_encryption_algs, "[\"ecc\",\"rsa\"]");
    assert_string_equal(v.accept_tpm_signing_algs, "[\"ecschnorr\",\"rsassa\"]");
    assert_false(v.require_ek_cert);
    assert_string_equal(v.verifier_id, "default");
    assert_int_equal(v.log_level, QLOG_INFO);
    vpoller_opts po;
    vconfig_poller_opts(&v, &po);
    assert_string_equal(po.tls_cert_file, "/var/lib/quince/tls/client-cert.pem");
    assert_string_equal(po.tls_key_file, "/var/lib/quince/tls/client-key.pem");
    assert_false(po.allow_plain_http);
    assert_true(po.quote_interval == 2.0);
    assert_int_equal(po.request_timeout_ms, 30000);
    assert_string_equal(po.verifier_id, "default");
    assert_non_null(strstr(vconfig_help(), "accept_tpm_signing_algs"));
}

static void test_config_values(void **state)
{
    (void)state;
    vconfig v;
    qerr e = {0};
    assert_int_equal(load("[verifier]\nport = 9881\nquote_interval = 0.25\nima_violations = fail\n"
                          "accept_tpm_hash_algs = [\"sha256\", 'sha1']\naccept_tpm_signing_algs = ecdsa\n"
                          "log_level = warning\nnum_workers = 3\ndatabase = /tmp/x.sqlite\n"
                          "[registrar]\nport = 9890\nlog_level = debug\ntpm_cert_store = /etc/ca\n"
                          "require_ek_cert = yes\n",
                          &v, &e),
                     0);
    assert_int_equal(v.port, 9881);
    assert_true(v.quote_interval == 0.25);
    assert_true(v.violations_fail);
    assert_string_equal(v.accept_tpm_hash_algs, "[\"sha256\",\"sha1\"]");
    assert_string_equal(v.accept_tpm_signing_algs, "[\"ecdsa\"]");
    assert_int_equal(v.log_level, QLOG_DEBUG);
    assert_int_equal(v.num_workers, 3);
    assert_int_equal(v.registrar_port, 9890);
    assert_string_equal(v.tpm_cert_store, "/etc/ca");
    assert_true(v.require_ek_cert);

    /* TLS: operator files, insecure (implies allow_agent_plain_http unless said otherwise). */
    assert_int_equal(load("[verifier]\ntls_dir = /srv/tls\nserver_cert = /etc/s.pem\nserver_key = /etc/s.key\n"
                          "trusted_client_ca = /etc/ca.pem\nclient_cert = /etc/c.pem\nclient_key = /etc/c.key\n"
                          "insecure = yes\n[registrar]\ntls_port = 9891\n",
                          &v, &e),
                     0);
    assert_string_equal(v.server_cert, "/etc/s.pem");
    assert_string_equal(v.client_key, "/etc/c.key");
    assert_false(v.tls_generated);
    assert_true(v.insecure);
    assert_true(v.allow_agent_plain_http);
    assert_int_equal(v.registrar_tls_port, 9891);
    assert_int_equal(load("[verifier]\ntls_dir = /srv/tls\nclient_cert = /etc/c.pem\ninsecure = true\n"
                          "allow_agent_plain_http = false\n", &v, &e), 0);
    assert_string_equal(v.client_cert, "/etc/c.pem");
    assert_string_equal(v.client_key, "/srv/tls/client-key.pem");
    assert_true(v.tls_generated);
    assert_false(v.allow_agent_plain_http);
    assert_int_equal(load("[registrar]\nport = 9000\ntls_port = 9000\n", &v, &e), -1);
    assert_non_null(strstr(e.msg, "tls_port"));
    assert_int_equal(load("[verifier]\ntls_dir =\n", &v, &e), -1);
    assert_int_equal(load("[verifier]\ninsecure = perhaps\n", &v, &e), -1);

    assert_int_equal(load("[verifier]\nima_violations = maybe\n", &v, &e), -1);
    assert_non_null(strstr(e.msg, "ima_violations"));
    assert_int_equal(load("[verifier]\nport = 70000\n", &v, &e), -1);
    assert_non_null(strstr(e.msg, "port"));
    assert_int_equal(load("[verifier]\naccept_tpm_hash_algs = sha256, md5\n", &v, &e), -1);
    assert_string_equal(e.msg, "[verifier] accept_tpm_hash_algs: unknown algorithm 'md5'");
    assert_int_equal(load("[verifier]\naccept_tpm_hash_algs = [ ]\n", &v, &e), -1);
    assert_int_equal(load("[verifier]\nquote_interval = -1\n", &v, &e), -1);
    assert_int_equal(load("[verifier]\nlog_level = loud\n", &v, &e), -1);
    assert_int_equal(load("[verifier]\nverifier_id = a b\n", &v, &e), -1);
    assert_int_equal(load("[registrar]\nrequire_ek_cert = true\n", &v, &e), -1);
    assert_int_equal(load("[verifier]\nmax_upload_size = 10\n", &v, &e), -1);
    /* registrar_url: https only (http with insecure), no path; a trailing '/' is dropped. */
    assert_int_equal(load("[verifier]\nregistrar_url = http://10.0.0.1:8891\n", &v, &e), -1);
    assert_non_null(strstr(e.msg, "registrar_url"));
    assert_int_equal(load("[verifier]\nregistrar_url = https://10.0.0.1:8891/v2.1\n", &v, &e), -1);
    assert_int_equal(load("[verifier]\nregistrar_url = https://reg.example:8891/\n", &v, &e), 0);
    assert_string_equal(v.registrar_url, "https://reg.example:8891");
    assert_string_equal(v.registrar_ca_cert, v.trusted_client_ca);
    assert_int_equal(load("[verifier]\ninsecure = true\nregistrar_url = http://10.0.0.1:8890\n", &v, &e), 0);
}

/* Environment overrides would change the configuration under test. */
static void clear_env(void)
{
    extern char **environ;
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "QUINCE_VERIFIER_", 16) == 0 || strncmp(*e, "QUINCE_REGISTRAR_", 17) == 0) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
                unsetenv(name);
                again = true;
                break;
            }
    }
}

int main(void)
{
    clear_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pure_helpers),
        cmocka_unit_test_setup_teardown(test_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_mtls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_with_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowlists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_in_status, setup, teardown),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
