/* Unit tests of verifier/registrar.c: the registrar routes on a loopback qhttp_server with a temp
 * SQLite store, driven with qhttp_client. Keys and certificates are made here with OpenSSL (EK and
 * AK public areas built by hand); the auth_tag is computed from the challenge key read back from
 * the store. The end-to-end case runs the agent's own registration client (agent_register)
 * against a private swtpm (skipped without swtpm): real EK (and EK certificate chained to
 * swtpm-localca when swtpm_setup and its CA are available), AK, ActivateCredential. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "swtpm_fixture.h"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

#include "../../agent/agent.h"
#include "../../agent/register.h"
#include "../../agent/tpm.h"
#include "../../verifier/registrar.h"
#include "../../verifier/store.h"
#include "b64.h"
#include "credential.h"
#include "http_client.h"
#include "http_server.h"
#include "log.h"

static char g_dir[64];
static char g_tcti[160];
static pid_t g_swtpm = -1;
static bool g_have_cert;          /* swtpm_setup made an EK certificate */
static vstore *g_store;
static qhttp_client *g_cli;

/* The server of the current test. */
static registrar_ctx g_ctx;
static qhttp_server *g_srv;
static char g_base[64];

/* The last answer. */
static char g_msg[QERR_MSG_MAX];
static cJSON *g_res;

/* Keys shared by the tests (software). */
static EVP_PKEY *g_ek_key, *g_ek2_key, *g_ak_key, *g_ak2_key, *g_ca_key, *g_ca2_key;
static char *g_ek, *g_ek2, *g_ak, *g_ak2;

/* ---- processes -------------------------------------------------------------------------------- */

static int run(char *const argv[])
{
    return swf_run(argv, NULL);
}

static void start_swtpm(void)
{
    g_have_cert = swf_setup_ek_cert(g_dir, "sha256", NULL);
    g_swtpm = swf_start(g_dir, g_tcti, sizeof g_tcti);
}

/* ---- keys and certificates -------------------------------------------------------------------- */

#define AK_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
                  TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)
#define EK_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
                  TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

static char *marshal_b64(const TPM2B_PUBLIC *p)
{
    uint8_t buf[sizeof(TPM2B_PUBLIC) + 8];
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(p, buf, sizeof buf, &off), 0);
    char *s = qb64_encode_alloc(buf, off);
    assert_non_null(s);
    return s;
}

/* base64 TPM2B_PUBLIC of an RSA-2048 key: an EK (AES-128-CFB, restricted decrypt) or a signing
 * key with the given attributes (RSASSA-SHA256). */
static char *rsa_public(EVP_PKEY *k, bool ek, TPMA_OBJECT attrs)
{
    TPM2B_PUBLIC pub;
    memset(&pub, 0, sizeof pub);
    TPMT_PUBLIC *p = &pub.publicArea;
    p->type = TPM2_ALG_RSA;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = attrs;
    if (ek) {
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
        p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    } else {
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
        p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    }
    p->parameters.rsaDetail.keyBits = 2048;
    BIGNUM *n = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(BN_bn2binpad(n, p->unique.rsa.buffer, 256), 256);
    p->unique.rsa.size = 256;
    BN_free(n);
    return marshal_b64(&pub);
}

/* base64 TPM2B_PUBLIC of an ECC P-256 EK (template L-2 shape). */
static char *ecc_ek_public(EVP_PKEY *k)
{
    TPM2B_PUBLIC pub;
    memset(&pub, 0, sizeof pub);
    TPMT_PUBLIC *p = &pub.publicArea;
    p->type = TPM2_ALG_ECC;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = EK_ATTRS;
    p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    p->parameters.eccDetail.symmetric.keyBits.aes = 128;
    p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    BIGNUM *x = NULL, *y = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    assert_int_equal(BN_bn2binpad(x, p->unique.ecc.x.buffer, 32), 32);
    assert_int_equal(BN_bn2binpad(y, p->unique.ecc.y.buffer, 32), 32);
    p->unique.ecc.x.size = p->unique.ecc.y.size = 32;
    BN_free(x);
    BN_free(y);
    return marshal_b64(&pub);
}

/* A certificate for subject's key, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *subject, EVP_PKEY *issuer_key, X509 *issuer, const char *cn, bool ca)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0x7fffffff) + 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm);
    assert_int_equal(X509_set_pubkey(x, subject), 1);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,keyEncipherment");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

static char *cert_der_b64(X509 *x)
{
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    char *s = qb64_encode_alloc(der, (size_t)n);
    OPENSSL_free(der);
    return s;
}

static char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- server and requests ---------------------------------------------------------------------- */

static void server_start(const char *cert_store, bool require_cert)
{
    g_ctx = (registrar_ctx){ .store = g_store, .tpm_cert_store = cert_store, .require_ek_cert = require_cert };
    qhttp_route routes[REGISTRAR_NUM_ROUTES];
    size_t n = registrar_routes(&g_ctx, routes, REGISTRAR_NUM_ROUTES);
    assert_int_equal(n, REGISTRAR_NUM_ROUTES);
    assert_int_equal(registrar_routes(&g_ctx, routes, REGISTRAR_NUM_ROUTES - 1), 0);
    qhttp_server_opts o = { .ip = "127.0.0.1", .max_body = REGISTRAR_MAX_BODY, .threads = 2, .log_module = "registrar" };
    qerr e = { 0 };
    g_srv = qhttp_server_start(&o, routes, n, &e);
    if (!g_srv)
        fail_msg("server: %s", e.msg);
    snprintf(g_base, sizeof g_base, "http://127.0.0.1:%u", qhttp_server_port(g_srv));
}

static void server_stop(void)
{
    qhttp_server_stop(g_srv);
    g_srv = NULL;
}

/* One request; returns the HTTP status; g_msg gets the status text, g_res the results. */
static long call(const char *method, const char *path, const char *body)
{
    char url[1400];
    snprintf(url, sizeof url, "%s%s", g_base, path);
    qhttp_result r;
    qerr e = { 0 };
    int rc = qhttp_request(g_cli, method, url, body, body ? strlen(body) : 0, &r, &e);
    if (rc < 0) {
        qhttp_result_free(&r);
        fail_msg("%s %s: %s", method, path, e.msg);
    }
    snprintf(g_msg, sizeof g_msg, "%s", r.status_text ? r.status_text : "");
    cJSON_Delete(g_res);
    g_res = r.results ? cJSON_Duplicate(r.results, 1) : NULL;
    long st = r.status;
    qhttp_result_free(&r);
    return st;
}

static const char *res_str(const char *k)
{
    const cJSON *v = g_res ? cJSON_GetObjectItemCaseSensitive(g_res, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *reg_body(const char *ek, const char *ekcert, const char *ak, const char *mtls, const char *ip, long port)
{
    cJSON *o = cJSON_CreateObject();
    if (ek)
        cJSON_AddStringToObject(o, "ek_tpm", ek);
    if (ekcert)
        cJSON_AddStringToObject(o, "ekcert", ekcert);
    else
        cJSON_AddNullToObject(o, "ekcert");
    if (ak)
        cJSON_AddStringToObject(o, "aik_tpm", ak);
    cJSON_AddStringToObject(o, "mtls_cert", mtls ? mtls : "disabled");
    if (ip)
        cJSON_AddStringToObject(o, "ip", ip);
    if (port)
        cJSON_AddNumberToObject(o, "port", (double)port);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static long do_register(const char *id, const char *ek, const char *ekcert, const char *ak)
{
    char path[512];
    snprintf(path, sizeof path, "/v2.6/agents/%s", id);
    char *b = reg_body(ek, ekcert, ak, NULL, "127.0.0.1", 9002);
    long st = call("POST", path, b);
    free(b);
    return st;
}

static long do_register_body(const char *id, const char *body)
{
    char path[512];
    snprintf(path, sizeof path, "/v2.6/agents/%s", id);
    return call("POST", path, body);
}

static void lower(const char *in, char *out)
{
    size_t i = 0;
    for (; in[i]; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
    out[i] = '\0';
}

/* Activate through method + /v2.6/agents/<id><suffix> with the auth_tag over id made from the
 * challenge key in the store (tag NULL) or with the given tag. */
static long do_activate(const char *id, const char *method, const char *suffix, const char *tag)
{
    char lid[VSTORE_ID_MAX], t[QCRED_AUTH_TAG_HEX + 1], path[512];
    lower(id, lid);
    if (!tag) {
        vreg_agent a;
        qerr e = { 0 };
        assert_int_equal(vstore_reg_get(g_store, lid, &a, &e), 1);
        const char *key = regpol_key(&a);     /* the pending challenge when there is one */
        assert_non_null(key);
        assert_int_equal(qcred_auth_tag(key, strlen(key), id, t, &e), 0);
        vreg_agent_free(&a);
        tag = t;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "auth_tag", tag);
    char *b = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    snprintf(path, sizeof path, "/v2.6/agents/%s%s", id, suffix);
    long st = call(method, path, b);
    free(b);
    return st;
}

static int reg_get(const char *id, vreg_agent *a)
{
    qerr e = { 0 };
    return vstore_reg_get(g_store, id, a, &e);
}

static bool has_uuid(const char *id)
{
    const cJSON *arr = g_res ? cJSON_GetObjectItemCaseSensitive(g_res, "uuids") : NULL, *it;
    cJSON_ArrayForEach(it, arr)
        if (cJSON_IsString(it) && strcmp(it->valuestring, id) == 0)
            return true;
    return false;
}

#define MSG_HAS(s) do { if (!strstr(g_msg, (s))) fail_msg("message '%s' lacks '%s'", g_msg, (s)); } while (0)

/* ---- setup ------------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    setenv("TSS2_LOG", "all+none", 0);
    qlog_use_stderr(getenv("QUINCE_TEST_VERBOSE") != NULL);
    strcpy(g_dir, "/tmp/quince-reg-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    char db[128];
    snprintf(db, sizeof db, "%s/db/reg.sqlite", g_dir);
    qerr e = { 0 };
    g_store = vstore_open(db, &e);
    if (!g_store) {
        fprintf(stderr, "store: %s\n", e.msg);
        return -1;
    }
    g_cli = qhttp_client_new(NULL, &e);
    g_ek_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    g_ek2_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    g_ak_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    g_ak2_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    g_ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    g_ca2_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!g_cli || !g_ek_key || !g_ek2_key || !g_ak_key || !g_ak2_key || !g_ca_key || !g_ca2_key)
        return -1;
    g_ek = rsa_public(g_ek_key, true, EK_ATTRS);
    g_ek2 = rsa_public(g_ek2_key, true, EK_ATTRS);
    g_ak = rsa_public(g_ak_key, false, AK_ATTRS);
    g_ak2 = rsa_public(g_ak2_key, false, AK_ATTRS);
    if (swf_in_path("swtpm"))
        start_swtpm();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    swf_stop(&g_swtpm);
    cJSON_Delete(g_res);
    free(g_ek);
    free(g_ek2);
    free(g_ak);
    free(g_ak2);
    EVP_PKEY_free(g_ek_key);
    EVP_PKEY_free(g_ek2_key);
    EVP_PKEY_free(g_ak_key);
    EVP_PKEY_free(g_ak2_key);
    EVP_PKEY_free(g_ca_key);
    EVP_PKEY_free(g_ca2_key);
    qhttp_client_free(g_cli);
    vstore_close(g_store);
    char *argv[] = { "rm", "-rf", g_dir, NULL };
    run(argv);
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    server_start(NULL, false);
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    server_stop();
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(call("GET", "/version", NULL), 200);
    assert_string_equal(res_str("current_version"), "2.6");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(g_res, "supported_versions");
    assert_int_equal(cJSON_GetArraySize(sv), 8);
    assert_string_equal(cJSON_GetArrayItem(sv, 0)->valuestring, "1.0");
    assert_string_equal(cJSON_GetArrayItem(sv, 7)->valuestring, "2.6");
    /* Unsupported versions, on every route shape: 404, as Keylime. */
    assert_int_equal(call("GET", "/v3.0/agents/", NULL), 404);
    assert_string_equal(g_msg, "API Version not supported");
    assert_int_equal(call("GET", "/v2.7/agents/abc", NULL), 404);
    assert_string_equal(g_msg, "API Version not supported");
    assert_int_equal(call("POST", "/vfoo/agents/abc", "{}"), 404);
    assert_string_equal(g_msg, "API Version not supported");
    assert_int_equal(call("PUT", "/v1/agents/abc/activate", "{}"), 404);
    assert_string_equal(g_msg, "API Version not supported");
    assert_int_equal(call("DELETE", "/v2.60/agents/abc", NULL), 404);
    /* Old versions are served. */
    assert_int_equal(call("GET", "/v1.0/agents/", NULL), 200);
    assert_int_equal(call("GET", "/v2.0/agents", NULL), 200);
}

static void test_flow(void **state)
{
    (void)state;
    const char *id = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
    char path[256];
    snprintf(path, sizeof path, "/v2.6/agents/%s", id);
    assert_int_equal(do_register(id, g_ek, NULL, g_ak), 200);
    /* The blob: tpm2-tools layout for an RSA-2048 EK and a 32-byte challenge. */
    const char *blob = res_str("blob");
    assert_non_null(blob);
    uint8_t raw[QCRED_BLOB_MAX];
    long bl = qb64_decode(blob, strlen(blob), raw, sizeof raw);
    assert_int_equal(bl, 336);
    assert_memory_equal(raw, "\xba\xdc\xc0\xde\x00\x00\x00\x01\x00\x44\x00\x20", 12);
    vreg_agent a;
    assert_int_equal(reg_get(id, &a), 1);
    assert_false(a.active);
    assert_int_equal(a.regcount, 1);
    assert_string_equal(a.ek_tpm, g_ek);
    assert_string_equal(a.aik_tpm, g_ak);
    assert_null(a.ekcert);
    assert_int_equal(strlen(a.key), 44);      /* base64 of 32 characters */
    vreg_agent_free(&a);

    /* Not shown before activation, but listed. */
    assert_int_equal(call("GET", path, NULL), 404);
    MSG_HAS("has not been activated");
    assert_int_equal(call("GET", "/v2.6/agents/", NULL), 200);
    assert_true(has_uuid(id));

    assert_int_equal(do_activate(id, "PUT", "/activate", NULL), 200);
    assert_int_equal(call("GET", path, NULL), 200);
    assert_string_equal(res_str("agent_id"), id);
    assert_string_equal(res_str("ek_tpm"), g_ek);
    assert_string_equal(res_str("aik_tpm"), g_ak);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(g_res, "ekcert")));
    assert_string_equal(res_str("mtls_cert"), "disabled");
    assert_string_equal(res_str("ip"), "127.0.0.1");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(g_res, "port")->valueint, 9002);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(g_res, "regcount")->valueint, 1);

    /* Re-registration with the same TPM: the active record stays in use (regcount 1) until the new
     * challenge is answered; then regcount 2. */
    assert_int_equal(do_register(id, g_ek, NULL, g_ak), 200);
    assert_int_equal(call("GET", path, NULL), 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(g_res, "regcount")->valueint, 1);
    assert_int_equal(do_activate(id, "PUT", "", NULL), 200);
    assert_int_equal(call("GET", path, NULL), 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(g_res, "regcount")->valueint, 2);
    /* POST .../activate (v3 style) works as well. */
    assert_int_equal(do_activate(id, "POST", "/activate", NULL), 200);

    assert_int_equal(call("DELETE", path, NULL), 200);
    assert_int_equal(call("GET", path, NULL), 404);
    MSG_HAS("not found");
    assert_int_equal(call("DELETE", path, NULL), 404);
    assert_string_equal(g_msg, "Agent with ID 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000' not found");
    assert_int_equal(call("GET", "/v2.6/agents", NULL), 200);
    assert_false(has_uuid(id));
}

static void test_case_normalised(void **state)
{
    (void)state;
    assert_int_equal(do_register("ABC-Agent_1.x", g_ek, NULL, g_ak), 200);
    vreg_agent a;
    assert_int_equal(reg_get("abc-agent_1.x", &a), 1);      /* keyed by the lower-case id */
    assert_string_equal(a.display_id, "ABC-Agent_1.x");    /* shown as registered */
    vreg_agent_free(&a);
    assert_int_equal(reg_get("ABC-Agent_1.x", &a), 0);
    /* The agent HMACs the id as it sent it. */
    assert_int_equal(do_activate("ABC-Agent_1.x", "PUT", "/activate", NULL), 200);
    assert_int_equal(call("GET", "/v2.6/agents/abc-AGENT_1.X", NULL), 200);
    assert_string_equal(res_str("agent_id"), "ABC-Agent_1.x");
    assert_int_equal(call("GET", "/v2.6/agents/", NULL), 200);
    assert_true(has_uuid("ABC-Agent_1.x"));
    assert_false(has_uuid("abc-agent_1.x"));
    /* Same agent under another spelling: same identity, so a re-registration (pending beside the
     * active record); the first registration's case stays. */
    assert_int_equal(do_register("abc-agent_1.X", g_ek, NULL, g_ak), 200);
    assert_int_equal(reg_get("abc-agent_1.x", &a), 1);
    assert_true(a.active);
    assert_int_equal(a.regcount, 1);
    assert_non_null(a.pending_key);
    assert_string_equal(a.display_id, "ABC-Agent_1.x");
    vreg_agent_free(&a);
    assert_int_equal(call("GET", "/v2.6/agents/", NULL), 200);
    assert_true(has_uuid("ABC-Agent_1.x"));
    assert_false(has_uuid("abc-agent_1.X"));
    assert_int_equal(call("DELETE", "/v2.6/agents/ABC-AGENT_1.X", NULL), 200);
    /* Messages echo the id as the request spelled it. */
    assert_int_equal(call("GET", "/v2.6/agents/ABC-AGENT_1.X", NULL), 404);
    assert_string_equal(g_msg, "Agent with ID 'ABC-AGENT_1.X' not found");
    assert_int_equal(call("DELETE", "/v2.6/agents/ABC-AGENT_1.X", NULL), 404);
    assert_string_equal(g_msg, "Agent with ID 'ABC-AGENT_1.X' not found");
}

static void test_changed_identity(void **state)
{
    (void)state;
    const char *id = "changing";
    assert_int_equal(do_register(id, g_ek, NULL, g_ak), 200);
    assert_int_equal(do_register(id, g_ek, NULL, g_ak2), 403);
    MSG_HAS("changed: aik_tpm)");
    assert_int_equal(do_register(id, g_ek2, NULL, g_ak), 403);
    MSG_HAS("changed: ek_tpm)");
    assert_int_equal(do_register(id, g_ek2, NULL, g_ak2), 403);
    MSG_HAS("changed: ek_tpm, aik_tpm)");
    /* Adding an EK certificate is a change too. */
    X509 *ca = make_cert(g_ca_key, g_ca_key, NULL, "Test EK CA", true);
    X509 *ekc = make_cert(g_ek_key, g_ca_key, ca, "ek", false);
    char *der = cert_der_b64(ekc);
    assert_int_equal(do_register(id, g_ek, der, g_ak), 403);
    MSG_HAS("changed: ekcert)");
    /* The record is untouched. */
    vreg_agent a;
    assert_int_equal(reg_get(id, &a), 1);
    assert_int_equal(a.regcount, 1);
    assert_string_equal(a.aik_tpm, g_ak);
    vreg_agent_free(&a);
    /* After a delete the new identity registers. */
    assert_int_equal(call("DELETE", "/v2.6/agents/changing", NULL), 200);
    assert_int_equal(do_register(id, g_ek2, NULL, g_ak2), 200);
    assert_int_equal(call("DELETE", "/v2.6/agents/changing", NULL), 200);
    free(der);
    X509_free(ekc);
    X509_free(ca);
}

static void test_bad_ak(void **state)
{
    (void)state;
    char *loose = rsa_public(g_ak_key, false, AK_ATTRS & ~TPMA_OBJECT_RESTRICTED);
    assert_int_equal(do_register("badak", g_ek, NULL, loose), 400);
    MSG_HAS("Could not register agent with invalid data: aik_tpm");
    MSG_HAS("restricted not set");
    free(loose);
    char *dec = rsa_public(g_ak_key, false, (AK_ATTRS & ~TPMA_OBJECT_FIXEDTPM) | TPMA_OBJECT_DECRYPT);
    assert_int_equal(do_register("badak", g_ek, NULL, dec), 400);
    MSG_HAS("fixedTPM not set");
    MSG_HAS("decrypt set");
    free(dec);
    /* An EK is no AK, an AK no EK. */
    assert_int_equal(do_register("badak", g_ek, NULL, g_ek), 400);
    MSG_HAS("aik_tpm");
    assert_int_equal(do_register("badak", g_ak, NULL, g_ak), 400);
    MSG_HAS("ek_tpm");
    MSG_HAS("restricted decryption");
    /* Missing, not base64, not a string, trailing bytes. */
    assert_int_equal(do_register("badak", g_ek, NULL, NULL), 400);
    MSG_HAS("aik_tpm is missing");
    assert_int_equal(do_register("badak", g_ek, NULL, "%%%"), 400);
    MSG_HAS("aik_tpm");
    assert_int_equal(do_register_body("badak", "{\"aik_tpm\": 5, \"ek_tpm\": null}"), 400);
    MSG_HAS("aik_tpm must be a base64 string");
    assert_int_equal(do_register("badak", NULL, NULL, g_ak), 400);
    MSG_HAS("ek_tpm is missing");
    vreg_agent a;
    assert_int_equal(reg_get("badak", &a), 0);
}

static void test_ekcert(void **state)
{
    (void)state;
    X509 *ca = make_cert(g_ca_key, g_ca_key, NULL, "Test EK CA", true);
    X509 *ca2 = make_cert(g_ca2_key, g_ca2_key, NULL, "Other CA", true);
    X509 *ekc = make_cert(g_ek_key, g_ca_key, ca, "ek", false);
    X509 *other = make_cert(g_ek2_key, g_ek2_key, NULL, "not the ek", false);   /* self-signed, another key */
    char *der = cert_der_b64(ekc), *pem = cert_pem(ekc), *other_der = cert_der_b64(other);
    char *ca_pem = cert_pem(ca), *ca2_pem = cert_pem(ca2);

    /* A certificate for another key. */
    assert_int_equal(do_register("ekc", g_ek, other_der, g_ak), 400);
    MSG_HAS("not the EK");
    assert_int_equal(do_register("ekc", g_ek, "bm90IGEgY2VydA==", g_ak), 400);
    MSG_HAS("ekcert is neither");

    /* base64 DER and PEM are accepted; the store keeps base64 DER; "" means none. */
    assert_int_equal(do_register("ekc", g_ek, der, g_ak), 200);
    vreg_agent a;
    assert_int_equal(reg_get("ekc", &a), 1);
    assert_string_equal(a.ekcert, der);
    vreg_agent_free(&a);
    assert_int_equal(do_register("ekc", g_ek, pem, g_ak), 200);
    assert_int_equal(do_activate("ekc", "PUT", "/activate", NULL), 200);
    assert_int_equal(call("GET", "/v2.6/agents/ekc", NULL), 200);
    assert_string_equal(res_str("ekcert"), der);
    assert_int_equal(call("DELETE", "/v2.6/agents/ekc", NULL), 200);
    assert_int_equal(do_register("ekc", g_ek, "", g_ak), 200);
    assert_int_equal(reg_get("ekc", &a), 1);
    assert_null(a.ekcert);
    vreg_agent_free(&a);
    assert_int_equal(call("DELETE", "/v2.6/agents/ekc", NULL), 200);

    /* tpm_cert_store: a file, a directory (PEM + DER + junk), another CA, a missing path. */
    char file[128], dir[128], p[160];
    snprintf(file, sizeof file, "%s/ca.pem", g_dir);
    write_text(file, ca_pem);
    snprintf(dir, sizeof dir, "%s/cadir", g_dir);
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/other.pem", dir);
    write_text(p, ca2_pem);
    snprintf(p, sizeof p, "%s/README", dir);
    write_text(p, "not a certificate\n");
    snprintf(p, sizeof p, "%s/ca.der", dir);
    uint8_t *cader = NULL;
    int cl = i2d_X509(ca, &cader);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(cader, 1, (size_t)cl, f), (size_t)cl);
    fclose(f);
    OPENSSL_free(cader);

    server_stop();
    server_start(file, true);
    assert_int_equal(do_register("ekc", g_ek, der, g_ak), 200);
    assert_int_equal(call("DELETE", "/v2.6/agents/ekc", NULL), 200);
    assert_int_equal(do_register("ekc", g_ek, NULL, g_ak), 400);
    MSG_HAS("ekcert is required");
    server_stop();
    server_start(dir, false);
    assert_int_equal(do_register("ekc", g_ek, pem, g_ak), 200);
    assert_int_equal(call("DELETE", "/v2.6/agents/ekc", NULL), 200);
    assert_int_equal(do_register("ekc", g_ek, NULL, g_ak), 200);     /* not required */
    assert_int_equal(call("DELETE", "/v2.6/agents/ekc", NULL), 200);
    server_stop();
    char file2[128];
    snprintf(file2, sizeof file2, "%s/ca2.pem", g_dir);
    write_text(file2, ca2_pem);
    server_start(file2, false);
    assert_int_equal(do_register("ekc", g_ek, der, g_ak), 400);
    MSG_HAS("does not chain");
    server_stop();
    snprintf(p, sizeof p, "%s/missing", g_dir);
    server_start(p, false);
    assert_int_equal(do_register("ekc", g_ek, der, g_ak), 500);
    server_stop();
    server_start(NULL, false);
    assert_int_equal(reg_get("ekc", &a), 0);

    free(der);
    free(pem);
    free(other_der);
    free(ca_pem);
    free(ca2_pem);
    X509_free(ekc);
    X509_free(other);
    X509_free(ca);
    X509_free(ca2);
}

static void test_bad_input(void **state)
{
    (void)state;
    assert_int_equal(do_register_body("bad", "{not json"), 400);
    MSG_HAS("Could not register agent with invalid data: the body is not a JSON object");
    assert_int_equal(do_register_body("bad", "[1, 2]"), 400);
    MSG_HAS("not a JSON object");
    assert_int_equal(do_register_body("bad", ""), 400);
    /* Ids: characters outside [A-Za-z0-9_.-], too long. */
    char *b = reg_body(g_ek, NULL, g_ak, NULL, NULL, 0);
    assert_int_equal(do_register_body("a%20b", b), 400);
    MSG_HAS("agent id 'a b' is not valid");
    assert_int_equal(do_register_body("a$b", b), 400);
    char longid[300];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(do_register_body(longid, b), 400);
    MSG_HAS("is not valid");
    longid[255] = '\0';
    assert_int_equal(do_register_body(longid, b), 200);   /* 255 characters is the maximum */
    char path[320];
    snprintf(path, sizeof path, "/v2.6/agents/%s", longid);
    assert_int_equal(call("DELETE", path, NULL), 200);
    assert_int_equal(call("GET", "/v2.6/agents/a%0Ab", NULL), 400);
    MSG_HAS("'a?b'");
    assert_int_equal(call("DELETE", "/v2.6/agents/a:b", NULL), 400);
    assert_int_equal(call("PUT", "/v2.6/agents/a!b/activate", "{}"), 400);
    free(b);

    /* Contact fields. */
    b = reg_body(g_ek, NULL, g_ak, NULL, "127.0.0.1", 70000);
    assert_int_equal(do_register_body("bad", b), 400);
    MSG_HAS("port must be an integer");
    free(b);
    b = reg_body(g_ek, NULL, g_ak, NULL, "10.0.0.1; rm", 0);
    assert_int_equal(do_register_body("bad", b), 400);
    MSG_HAS("ip is not");
    free(b);
    b = reg_body(g_ek, NULL, g_ak, "-----BEGIN CERTIFICATE-----\nxx\n", NULL, 0);
    assert_int_equal(do_register_body("bad", b), 400);
    MSG_HAS("mtls_cert");
    free(b);
    vreg_agent a;
    assert_int_equal(reg_get("bad", &a), 0);

    /* Accepted variants: port as a string, no ip/port, a PEM mtls_cert, IPv6, no mtls_cert. */
    X509 *c = make_cert(g_ak_key, g_ak_key, NULL, "agent", false);
    char *pem = cert_pem(c);
    b = reg_body(g_ek, NULL, g_ak, pem, "fe80::1%eth0", 0);
    cJSON *o = cJSON_Parse(b);
    cJSON_AddStringToObject(o, "port", "8080");
    free(b);
    b = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    assert_int_equal(do_register_body("good", b), 200);
    assert_int_equal(reg_get("good", &a), 1);
    assert_int_equal(a.port, 8080);
    assert_string_equal(a.ip, "fe80::1%eth0");
    assert_string_equal(a.mtls_cert, pem);
    vreg_agent_free(&a);
    free(b);
    char *ekb = NULL;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ek_tpm", g_ek);
    cJSON_AddStringToObject(o, "aik_tpm", g_ak);
    ekb = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    assert_int_equal(do_register_body("good", ekb), 200);
    assert_int_equal(do_activate("good", "PUT", "/activate", NULL), 200);
    assert_int_equal(call("GET", "/v2.6/agents/good", NULL), 200);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(g_res, "port")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(g_res, "mtls_cert")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(g_res, "ip")));
    assert_int_equal(call("DELETE", "/v2.6/agents/good", NULL), 200);
    free(ekb);
    free(pem);
    X509_free(c);
}

static void test_ecc_ek(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    char *ek = ecc_ek_public(k);
    assert_int_equal(do_register("ecc-agent", ek, NULL, g_ak), 200);
    const char *blob = res_str("blob");
    uint8_t raw[QCRED_BLOB_MAX];
    long bl = qb64_decode(blob, strlen(blob), raw, sizeof raw);
    assert_int_equal(bl, 8 + 2 + 68 + 2 + 68);   /* secret = TPMS_ECC_POINT of P-256 */
    assert_int_equal(do_activate("ecc-agent", "PUT", "/activate", NULL), 200);
    assert_int_equal(call("DELETE", "/v2.6/agents/ecc-agent", NULL), 200);
    free(ek);
    EVP_PKEY_free(k);
}

static void test_wrong_auth_tag(void **state)
{
    (void)state;
    const char *id = "tagged";
    assert_int_equal(do_register(id, g_ek, NULL, g_ak), 200);
    /* Missing or non-string tag: 400, the record stays. */
    assert_int_equal(call("PUT", "/v2.6/agents/tagged/activate", "{}"), 400);
    MSG_HAS("auth_tag");
    assert_int_equal(call("PUT", "/v2.6/agents/tagged/activate", "{\"auth_tag\": 1}"), 400);
    vreg_agent a;
    assert_int_equal(reg_get(id, &a), 1);
    vreg_agent_free(&a);
    /* A tag over another id (same key) is wrong: 400; the never-activated record survives
     * max_failed_activations - 1 wrong tags and is deleted at the last. */
    assert_int_equal(reg_get(id, &a), 1);
    char tag[QCRED_AUTH_TAG_HEX + 1];
    qerr e = { 0 };
    assert_int_equal(qcred_auth_tag(a.key, strlen(a.key), "tagged2", tag, &e), 0);
    vreg_agent_free(&a);
    char want[300];
    snprintf(want, sizeof want, "Auth tag '%s' for agent 'tagged' does not match expected value", tag);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(do_activate(id, "PUT", "/activate", tag), 400);
        MSG_HAS(want);
        MSG_HAS("stays until the limit");
        assert_int_equal(reg_get(id, &a), 1);
        assert_int_equal(a.failed_activations, i);
        vreg_agent_free(&a);
    }
    assert_int_equal(do_activate(id, "PUT", "/activate", tag), 400);
    MSG_HAS("never activated, is deleted");
    assert_int_equal(reg_get(id, &a), 0);
    /* Unknown agent: 404. */
    assert_int_equal(do_activate(id, "PUT", "/activate", tag), 404);
    MSG_HAS("Agent with ID 'tagged' not found");
    /* Garbage tags are echoed safely. */
    assert_int_equal(do_register(id, g_ek, NULL, g_ak), 200);
    assert_int_equal(do_activate(id, "PUT", "", "zz\n\x01"), 400);
    MSG_HAS("Auth tag 'zz?" "?' for agent 'tagged'");
    /* A right tag after wrong ones still activates, and resets the count. */
    assert_int_equal(do_activate(id, "PUT", "", NULL), 200);
    assert_int_equal(reg_get(id, &a), 1);
    assert_true(a.active);
    assert_int_equal(a.failed_activations, 0);
    vreg_agent_free(&a);
    assert_int_equal(call("DELETE", "/v2.6/agents/tagged", NULL), 200);
}

/* Issue 11, item 1: a wrong auth_tag on the plain port never deletes or changes an active
 * registration, so no second TPM can take over its uuid; item 2: a replayed registration (EK, AK
 * and EK certificate are public) changes nothing until its challenge is answered. */
static void test_active_identity_kept(void **state)
{
    (void)state;
    const char *id = "victim";
    g_ctx.plain_only = true;
    assert_int_equal(do_register(id, g_ek, NULL, g_ak), 200);
    assert_int_equal(do_activate(id, "PUT", "/activate", NULL), 200);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(do_activate(id, "PUT", "/activate", "00"), 400);
        MSG_HAS("The active registration is unchanged");
    }
    vreg_agent a;
    assert_int_equal(reg_get(id, &a), 1);
    assert_true(a.active);
    assert_int_equal(a.port, 9002);
    vreg_agent_free(&a);
    /* Another TPM under the uuid: refused, as the first EK stays bound. */
    assert_int_equal(do_register(id, g_ek2, NULL, g_ak2), 403);

    /* Replay the public registration with another certificate and port. */
    char *pem = NULL;
    {
        X509 *x = make_cert(g_ak2_key, g_ak2_key, NULL, "impostor", false);
        BIO *bio = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_X509(bio, x), 1);
        char *p = NULL;
        long n = BIO_get_mem_data(bio, &p);
        pem = strndup(p, (size_t)n);
        BIO_free(bio);
        X509_free(x);
    }
    char *b = reg_body(g_ek, NULL, g_ak, pem, "127.0.0.9", 6666);
    assert_int_equal(do_register_body(id, b), 200);
    free(b);
    g_ctx.plain_only = false;
    assert_int_equal(call("GET", "/v2.6/agents/victim", NULL), 200);
    assert_string_equal(res_str("mtls_cert"), "disabled");
    assert_string_equal(res_str("ip"), "127.0.0.1");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(g_res, "port")->valueint, 9002);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(g_res, "regcount")->valueint, 1);
    /* The replayer cannot answer the challenge: its pending data go after the failures, and the
     * active record is still the same. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(do_activate(id, "PUT", "/activate", "0123"), 400);
    MSG_HAS("pending re-registration is dropped");
    assert_int_equal(reg_get(id, &a), 1);
    assert_true(a.active);
    assert_null(a.pending_key);
    assert_string_equal(a.mtls_cert, "disabled");
    vreg_agent_free(&a);
    /* The real agent (it holds the EK) answers its new challenge: the new data apply. */
    b = reg_body(g_ek, NULL, g_ak, pem, "127.0.0.2", 7777);
    assert_int_equal(do_register_body(id, b), 200);
    free(b);
    assert_int_equal(do_activate(id, "PUT", "/activate", NULL), 200);
    assert_int_equal(call("GET", "/v2.6/agents/victim", NULL), 200);
    assert_string_equal(res_str("mtls_cert"), pem);
    assert_string_equal(res_str("ip"), "127.0.0.2");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(g_res, "port")->valueint, 7777);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(g_res, "regcount")->valueint, 2);
    free(pem);
    assert_int_equal(call("DELETE", "/v2.6/agents/victim", NULL), 200);
}

/* Issue 11, item 4: pending registrations capped in number and age; registrations per address. */
static void test_pending_limits(void **state)
{
    (void)state;
    reg_limits lim = { .max_pending = 2, .pending_max_age = 600, .max_failed_activations = 3 };
    g_ctx.limits = &lim;
    assert_int_equal(do_register("p1", g_ek, NULL, g_ak), 200);
    assert_int_equal(do_register("p2", g_ek, NULL, g_ak), 200);
    assert_int_equal(do_register("p3", g_ek, NULL, g_ak), 503);
    MSG_HAS("Too many pending registrations (2)");
    vreg_agent a;
    assert_int_equal(reg_get("p3", &a), 0);
    /* Registering a pending id again does not add one. */
    assert_int_equal(do_register("p2", g_ek, NULL, g_ak), 200);
    /* Activation frees a place. */
    assert_int_equal(do_activate("p1", "PUT", "/activate", NULL), 200);
    assert_int_equal(do_register("p3", g_ek, NULL, g_ak), 200);
    /* Full (p2, p3 pending): refused. */
    assert_int_equal(do_register("p4", g_ek, NULL, g_ak), 503);
    /* p2 made older than pending_max_age: the next registration expires it, then fits. */
    qerr e = { 0 };
    assert_int_equal(reg_get("p2", &a), 1);
    a.registered_at -= 601;
    assert_int_equal(vstore_reg_put(g_store, &a, &e), 0);
    vreg_agent_free(&a);
    assert_int_equal(do_register("p4", g_ek, NULL, g_ak), 200);
    assert_int_equal(reg_get("p2", &a), 0);
    /* An active record's stale re-registration is cleared; its active data stay. */
    lim.max_pending = 10;
    assert_int_equal(do_register("p1", g_ek, NULL, g_ak), 200);
    assert_int_equal(reg_get("p1", &a), 1);
    assert_non_null(a.pending_key);
    a.registered_at -= 601;
    assert_int_equal(vstore_reg_put(g_store, &a, &e), 0);
    vreg_agent_free(&a);
    assert_int_equal(do_register("p5", g_ek, NULL, g_ak), 200);
    assert_int_equal(reg_get("p1", &a), 1);
    assert_true(a.active);
    assert_null(a.pending_key);
    assert_int_equal(a.port, 9002);
    vreg_agent_free(&a);
    /* Per-address rate: 3 a minute, the 4th is 429 (before the body is even read). */
    lim.max_pending = 0;
    g_ctx.rate = reg_rate_new(3);
    assert_non_null(g_ctx.rate);
    assert_int_equal(do_register("r1", g_ek, NULL, g_ak), 200);
    assert_int_equal(do_register("r2", g_ek, NULL, g_ak), 200);
    assert_int_equal(call("POST", "/v2.6/agents/r3", "{}"), 400);
    assert_int_equal(do_register("r4", g_ek, NULL, g_ak), 429);
    MSG_HAS("Too many registrations from 127.0.0.1");
    assert_int_equal(reg_get("r4", &a), 0);
    reg_rate_free(g_ctx.rate);
    g_ctx.rate = NULL;
    g_ctx.limits = NULL;
    const char *ids[] = { "p1", "p3", "p4", "p5", "r1", "r2" };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v2.6/agents/%s", ids[i]);
        assert_int_equal(call("DELETE", path, NULL), 200);
    }
}

/* The agent's own client (agent/register.c) with a real TPM against the registrar. */
static void test_agent_e2e(void **state)
{
    (void)state;
    if (g_swtpm <= 0)
        skip();
    /* The swtpm EK certificate chains to swtpm-localca's CA when both are present. */
    const char *root = "/var/lib/swtpm-localca/swtpm-localca-rootca-cert.pem";
    const char *issuer = "/var/lib/swtpm-localca/issuercert.pem";
    char dir[128] = "";
    if (g_have_cert && access(root, R_OK) == 0 && access(issuer, R_OK) == 0) {
        snprintf(dir, sizeof dir, "%s/swtpm-ca", g_dir);
        mkdir(dir, 0700);
        char *cp[] = { "cp", (char *)root, (char *)issuer, dir, NULL };
        assert_int_equal(run(cp), 0);
    }
    server_stop();
    server_start(dir[0] ? dir : NULL, dir[0] != 0);

    agent_ctx ag;
    memset(&ag, 0, sizeof ag);
    pthread_mutex_init(&ag.lock, NULL);
    snprintf(ag.uuid, sizeof ag.uuid, "%s", "E2E-Agent-0001");
    snprintf(ag.cfg.registrar_ip, sizeof ag.cfg.registrar_ip, "127.0.0.1");
    ag.cfg.registrar_port = qhttp_server_port(g_srv);
    snprintf(ag.cfg.contact_ip, sizeof ag.cfg.contact_ip, "127.0.0.1");
    ag.cfg.contact_port = 9002;
    ag.cfg.registrar_retry_ms = 10;
    ag.cfg.registrar_retry_max_ms = 10;
    ag.cfg.registrar_max_retries = 1;
    qtpm_opts o = { .tcti = g_tcti };
    qerr e = { 0 };
    ag.tpm = qtpm_new(&o, &e);
    assert_non_null(ag.tpm);
    char ak[128];
    snprintf(ak, sizeof ak, "%s/ak.tpm", g_dir);
    qtpm_ak_params ap = { .type = QTPM_KEY_RSA2048, .hash = QHASH_SHA256 };
    if (qtpm_ak_ensure(ag.tpm, ak, &ap, NULL, &e) < 0)
        fail_msg("AK: %s", e.msg);
    if (agent_register(&ag, &e) < 0)
        fail_msg("agent_register: %s", e.msg);
    assert_int_equal(call("GET", "/v2.6/agents/e2e-agent-0001", NULL), 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(g_res, "regcount")->valueint, 1);
    if (g_have_cert)
        assert_non_null(res_str("ekcert"));
    /* An agent restart registers again. */
    assert_int_equal(agent_register(&ag, &e), 0);
    assert_int_equal(call("GET", "/v2.6/agents/e2e-agent-0001", NULL), 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(g_res, "regcount")->valueint, 2);
    qtpm_free(ag.tpm);

    /* A new AK under the same uuid is refused (403), and the agent says why. */
    ag.tpm = qtpm_new(&o, &e);
    ap.type = QTPM_KEY_ECC_P256;
    snprintf(ak, sizeof ak, "%s/ak2.tpm", g_dir);
    assert_int_equal(qtpm_ak_ensure(ag.tpm, ak, &ap, NULL, &e), 0);
    assert_int_equal(agent_register(&ag, &e), -1);
    assert_non_null(strstr(e.msg, "403"));
    qtpm_free(ag.tpm);
    pthread_mutex_destroy(&ag.lock);
    assert_int_equal(call("DELETE", "/v2.6/agents/e2e-agent-0001", NULL), 200);
}

/* A registration replayed between the agent's register and activate steps replaces the pending
 * challenge, so the agent's activation is refused (400). The agent registers again instead of
 * giving up, and the active record is unchanged meanwhile. The replay is simulated in a wrapper
 * of the activation handler that swaps the pending challenge once. */
static qhttp_handler_fn g_activate_fn;
static void *g_activate_ctx;
static int g_races;

static void h_racing_activate(qhttp_req *r, void *ctx)
{
    (void)ctx;
    if (g_races > 0) {
        g_races--;
        vreg_agent a;
        qerr e = { 0 };
        if (vstore_reg_get(g_store, "race-agent", &a, &e) == 1 && a.pending_key) {
            free(a.pending_key);
            a.pending_key = strdup("cmVwbGF5ZWQtY2hhbGxlbmdlLXJlcGxheWVkLWNoYWxsZW5nZQ==");
            vstore_reg_put(g_store, &a, &e);
        }
        vreg_agent_free(&a);
    }
    g_activate_fn(r, g_activate_ctx);
}

static void test_agent_activation_race(void **state)
{
    (void)state;
    if (g_swtpm <= 0)
        skip();
    server_stop();
    g_ctx = (registrar_ctx){ .store = g_store };
    qhttp_route routes[REGISTRAR_NUM_ROUTES];
    size_t n = registrar_routes(&g_ctx, routes, REGISTRAR_NUM_ROUTES);
    for (size_t i = 0; i < n; i++)
        if (strcmp(routes[i].method, "PUT") == 0 && strstr(routes[i].pattern, "/activate")) {
            g_activate_fn = routes[i].fn;
            g_activate_ctx = routes[i].ctx;
            routes[i].fn = h_racing_activate;
        }
    qhttp_server_opts o = { .ip = "127.0.0.1", .max_body = REGISTRAR_MAX_BODY, .threads = 2 };
    qerr e = { 0 };
    g_srv = qhttp_server_start(&o, routes, n, &e);
    assert_non_null(g_srv);
    snprintf(g_base, sizeof g_base, "http://127.0.0.1:%u", qhttp_server_port(g_srv));

    agent_ctx ag;
    memset(&ag, 0, sizeof ag);
    pthread_mutex_init(&ag.lock, NULL);
    snprintf(ag.uuid, sizeof ag.uuid, "%s", "race-agent");
    snprintf(ag.cfg.registrar_ip, sizeof ag.cfg.registrar_ip, "127.0.0.1");
    ag.cfg.registrar_port = qhttp_server_port(g_srv);
    snprintf(ag.cfg.contact_ip, sizeof ag.cfg.contact_ip, "127.0.0.1");
    ag.cfg.contact_port = 9002;
    ag.cfg.registrar_retry_ms = 10;
    ag.cfg.registrar_retry_max_ms = 10;
    ag.cfg.registrar_max_retries = 1;
    qtpm_opts to = { .tcti = g_tcti };
    ag.tpm = qtpm_new(&to, &e);
    assert_non_null(ag.tpm);
    char ak[128];
    snprintf(ak, sizeof ak, "%s/ak-race.tpm", g_dir);
    qtpm_ak_params ap = { .type = QTPM_KEY_RSA2048, .hash = QHASH_SHA256 };
    if (qtpm_ak_ensure(ag.tpm, ak, &ap, NULL, &e) < 0)
        fail_msg("AK: %s", e.msg);
    g_races = 0;
    if (agent_register(&ag, &e) < 0)
        fail_msg("agent_register: %s", e.msg);
    /* A restart whose first activation loses the race: the agent registers again and succeeds. */
    ag.cfg.contact_port = 9003;
    g_races = 1;
    if (agent_register(&ag, &e) < 0)
        fail_msg("agent_register after a replay: %s", e.msg);
    assert_int_equal(g_races, 0);
    vreg_agent a;
    assert_int_equal(reg_get("race-agent", &a), 1);
    assert_true(a.active);
    assert_int_equal(a.port, 9003);
    assert_int_equal(a.regcount, 2);
    assert_null(a.pending_key);
    vreg_agent_free(&a);
    qtpm_free(ag.tpm);
    pthread_mutex_destroy(&ag.lock);
    assert_int_equal(call("DELETE", "/v2.6/agents/race-agent", NULL), 200);
}

/* The plain-HTTP port serves only version, register and activate; show, list and delete are
 * refused there with a message naming the TLS port. */
static void test_plain_port(void **state)
{
    (void)state;
    g_ctx.plain_only = true;
    g_ctx.tls_port = 8891;
    assert_int_equal(call("GET", "/v2.6/agents", NULL), 403);
    assert_non_null(strstr(g_msg, "served only on the registrar's TLS port (8891)"));
    assert_int_equal(call("GET", "/v2.6/agents/someone", NULL), 403);
    assert_int_equal(call("DELETE", "/v2.6/agents/someone", NULL), 403);
    assert_non_null(strstr(g_msg, "Deleting an agent"));
    assert_int_equal(call("GET", "/version", NULL), 200);
    assert_int_equal(call("POST", "/v2.6/agents/someone", "{}"), 400);            /* register: served */
    assert_int_equal(call("PUT", "/v2.6/agents/someone/activate", "{\"auth_tag\": \"00\"}"), 404); /* activate */
    assert_int_equal(call("PUT", "/v2.6/agents/someone", "{\"auth_tag\": \"00\"}"), 404);
    g_ctx.plain_only = false;
    assert_int_equal(call("GET", "/v2.6/agents", NULL), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_version, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_plain_port, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_flow, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_case_normalised, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_changed_identity, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bad_ak, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_ekcert, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_ecc_ek, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_auth_tag, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_active_identity_kept, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_pending_limits, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_agent_e2e, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_agent_activation_race, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
