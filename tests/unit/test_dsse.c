/* Unit tests for common/dsse.c and common/policy_sig.c against the vectors of tests/data/dsse
 * (made from the DSSE specification with printf and the openssl command line; see gen.sh). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dsse.h"
#include "policy_sig.h"

static char *data_path(const char *name)
{
    static char p[4096];
    const char *root = getenv("QUINCE_ROOT");
    snprintf(p, sizeof p, "%s/tests/data/dsse/%s", root ? root : ".", name);
    return p;
}

static void slurp(const char *name, qbuf *b)
{
    qbuf_init(b, 0);
    assert_int_equal(qbuf_read_file(b, data_path(name), 1 << 20), 0);
    assert_non_null(qbuf_cstr(b));
}

static EVP_PKEY *pub(const char *name)
{
    qbuf b;
    slurp(name, &b);
    qerr e = {0};
    EVP_PKEY *k = qdsse_load_public(b.data, b.len, &e);
    qbuf_free(&b);
    assert_non_null(k);
    return k;
}

static int verify_file(const char *env_name, const char *key_name)
{
    qbuf b;
    slurp(env_name, &b);
    qdsse_env env;
    qerr e = {0};
    assert_int_equal(qdsse_parse((const char *)b.data, b.len, &env, &e), 0);
    EVP_PKEY *k = pub(key_name);
    int ok = qdsse_verify(&env, k, &e);
    EVP_PKEY_free(k);
    qdsse_env_clear(&env);
    qbuf_free(&b);
    return ok;
}

static void test_pae_matches_spec(void **state)
{
    (void)state;
    qbuf pol, want;
    slurp("policy.json", &pol);
    slurp("pae.bin", &want);
    size_t n = 0;
    uint8_t *pae = qdsse_pae(QDSSE_PAYLOAD_TYPE, pol.data, pol.len, &n);
    assert_non_null(pae);
    assert_int_equal(n, want.len);
    assert_memory_equal(pae, want.data, n);
    free(pae);
    /* the DSSE spec's own example */
    pae = qdsse_pae("http://example.com/HelloWorld", (const uint8_t *)"hello world", 11, &n);
    const char *ex = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
    assert_int_equal(n, strlen(ex));
    assert_memory_equal(pae, ex, n);
    free(pae);
    qbuf_free(&pol);
    qbuf_free(&want);
}

static void test_vectors(void **state)
{
    (void)state;
    assert_int_equal(verify_file("ec256.env", "ec256.pub"), 1);
    assert_int_equal(verify_file("ec384.env", "ec384.pub"), 1);
    assert_int_equal(verify_file("rsa.env", "rsa.pub"), 1);
    assert_int_equal(verify_file("ec256.env", "ec256.crt"), 1);     /* a certificate as the key */
    assert_int_equal(verify_file("ec256.env", "ec256.key"), 1);     /* a private key's public half */
    assert_int_equal(verify_file("hexpayload.env", "ec256.pub"), 1); /* Keylime's hex-first decode */
    assert_int_equal(verify_file("tampered.env", "ec256.pub"), 0);
    assert_int_equal(verify_file("wrongtype.env", "ec256.pub"), 0);
    assert_int_equal(verify_file("ec256.env", "other.pub"), 0);
    assert_int_equal(verify_file("ec256.env", "rsa.pub"), 0);
    assert_int_equal(verify_file("rsa.env", "ec256.pub"), 0);
}

static void test_payload_and_detection(void **state)
{
    (void)state;
    qbuf b, pol;
    slurp("ec256.env", &b);
    slurp("policy.json", &pol);
    assert_true(qdsse_is_envelope((const char *)b.data, b.len));
    assert_false(qdsse_is_envelope((const char *)pol.data, pol.len));
    assert_false(qdsse_is_envelope("{\"payload\": \"\"}", 15));
    assert_false(qdsse_is_envelope("not json", 8));
    qdsse_env env;
    qerr e = {0};
    assert_int_equal(qdsse_parse((const char *)b.data, b.len, &env, &e), 0);
    assert_string_equal(env.payload_type, QDSSE_PAYLOAD_TYPE);
    assert_int_equal(env.payload_len, pol.len);
    assert_memory_equal(env.payload, pol.data, pol.len);
    assert_int_equal(env.nsigs, 1);
    assert_int_equal(strlen(env.sigs[0].keyid), 64);
    qdsse_env_clear(&env);
    qbuf_free(&b);
    qbuf_free(&pol);
}

static void test_bad_envelopes(void **state)
{
    (void)state;
    static const char *bad[] = {
        "{\"payload\": \"e30=\", \"signatures\": []}",                         /* no payloadType */
        "{\"payload\": \"e30=\", \"payloadType\": 3, \"signatures\": []}",
        "{\"payload\": \"!!!\", \"payloadType\": \"t\", \"signatures\": []}",  /* not base64 */
        "{\"payload\": \"e30=\", \"payloadType\": \"t\"}",                       /* no signatures */
        "{\"payload\": \"e30=\", \"payloadType\": \"t\", \"signatures\": [1]}",
        "{\"payload\": \"e30=\", \"payloadType\": \"t\", \"signatures\": [{\"keyid\": \"k\"}]}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qdsse_env env;
        qerr e = {0};
        assert_int_equal(qdsse_parse(bad[i], strlen(bad[i]), &env, &e), -1);
        assert_true(e.msg[0] != '\0');
        qdsse_env_clear(&env);
    }
}

static void sign_roundtrip(const char *key, const char *pubname, const char *cert)
{
    qbuf k, pol, c;
    slurp(key, &k);
    slurp("policy.json", &pol);
    if (cert)
        slurp(cert, &c);
    qerr e = {0};
    EVP_PKEY *priv = qdsse_load_private(k.data, k.len, &e);
    assert_non_null(priv);
    char *env = qdsse_sign(pol.data, pol.len, priv, cert ? (const char *)c.data : NULL, &e);
    assert_non_null(env);
    qpsig_result r;
    qbuf p;
    slurp(pubname, &p);
    assert_int_equal(qpsig_check(env, strlen(env), p.data, p.len, true, &r), 0);
    assert_true(r.is_signed);
    assert_int_equal(r.payload_len, pol.len);
    assert_memory_equal(r.payload, pol.data, pol.len);
    qpsig_result_clear(&r);
    if (!cert) {
        /* keyid = sha256 hex of the public PEM, as the generator computed it */
        qbuf want;
        slurp(strcmp(key, "ec256.key") == 0 ? "ec256.env" : "ec384.env", &want);
        if (strcmp(key, "rsa.key") != 0) {
            const char *a = strstr(env, "\"keyid\": \""), *b = strstr((const char *)want.data, "\"keyid\": \"");
            assert_non_null(a);
            assert_non_null(b);
            assert_memory_equal(a, b, 10 + 64);
        }
        qbuf_free(&want);
    }
    free(env);
    EVP_PKEY_free(priv);
    qbuf_free(&p);
    qbuf_free(&k);
    qbuf_free(&pol);
    if (cert)
        qbuf_free(&c);
}

static void test_sign(void **state)
{
    (void)state;
    sign_roundtrip("ec256.key", "ec256.pub", NULL);
    sign_roundtrip("ec384.key", "ec384.pub", NULL);
    sign_roundtrip("rsa.key", "rsa.pub", NULL);
    sign_roundtrip("ec256.key", "ec256.crt", "ec256.crt");
    /* a certificate of another key is refused */
    qbuf k, c;
    slurp("ec384.key", &k);
    slurp("ec256.crt", &c);
    qerr e = {0};
    EVP_PKEY *priv = qdsse_load_private(k.data, k.len, &e);
    assert_null(qdsse_sign((const uint8_t *)"{}", 2, priv, (const char *)c.data, &e));
    assert_non_null(strstr(e.msg, "does not match"));
    EVP_PKEY_free(priv);
    qbuf_free(&k);
    qbuf_free(&c);
}

static void test_keylime_codes(void **state)
{
    (void)state;
    qbuf env, pol, key, bad;
    slurp("ec256.env", &env);
    slurp("policy.json", &pol);
    slurp("ec256.pub", &key);
    slurp("tampered.env", &bad);
    qpsig_result r;
    /* unsigned, not required, no key: accepted as is */
    assert_int_equal(qpsig_check((const char *)pol.data, pol.len, NULL, 0, false, &r), 0);
    assert_false(r.is_signed);
    qpsig_result_clear(&r);
    /* unsigned, required: 400 */
    assert_int_equal(qpsig_check((const char *)pol.data, pol.len, NULL, 0, true, &r), 400);
    assert_string_equal(r.message, QPSIG_NOT_SIGNED);
    qpsig_result_clear(&r);
    /* unsigned with a key: 400 */
    assert_int_equal(qpsig_check((const char *)pol.data, pol.len, key.data, key.len, false, &r), 400);
    qpsig_result_clear(&r);
    /* signed, required, no key: 401 */
    assert_int_equal(qpsig_check((const char *)env.data, env.len, NULL, 0, true, &r), 401);
    assert_string_equal(r.message, QPSIG_NO_KEY);
    qpsig_result_clear(&r);
    /* signed, not required, no key: unwrapped, not verified */
    assert_int_equal(qpsig_check((const char *)env.data, env.len, NULL, 0, false, &r), 0);
    assert_false(r.is_signed);
    assert_int_equal(r.payload_len, pol.len);
    qpsig_result_clear(&r);
    /* bad signature: 401 */
    assert_int_equal(qpsig_check((const char *)bad.data, bad.len, key.data, key.len, true, &r), 401);
    assert_string_equal(r.message, QPSIG_BAD_SIG);
    qpsig_result_clear(&r);
    /* an unusable key: 400 */
    assert_int_equal(qpsig_check((const char *)env.data, env.len, (const uint8_t *)"junk", 4, true, &r), 400);
    qpsig_result_clear(&r);
    qbuf_free(&env);
    qbuf_free(&pol);
    qbuf_free(&key);
    qbuf_free(&bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pae_matches_spec), cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_payload_and_detection), cmocka_unit_test(test_bad_envelopes),
        cmocka_unit_test(test_sign), cmocka_unit_test(test_keylime_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
