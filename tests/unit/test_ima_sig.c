/* Unit tests for common/ima_sig.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ima_sig.h"
#include "b64.h"

/* Fixed vectors made with the openssl CLI: keyids from
 *   openssl rsa -pubin -RSAPublicKey_out -outform DER | sha1   → last 4 bytes
 *   openssl ec -pubin -conv_form uncompressed -outform DER | tail -c 65 | sha1 → last 4 bytes */
static const char RSA_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCnayUJ+eny8gyva+63k44f0SQc\n"
    "UqrLPy0UcB1qiZiQ3991S2V5Fo+sHJOEOCd5a6OTmHJrj/Aho63AHU9x8R2h1D1b\n"
    "CajSrAMNT1MfJ8SyWgTx/XZ6Xk/MFZE+8kJcSLcVsDwhM5JSt+OezxfQoouX7lAw\n"
    "PQcK9u/dtzYeqMpJBQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
#define RSA_PUB_KEYID 0xf41b26d7u

static const char EC_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETEf+JESJMnMt5lHDeutKWrtWoxOn\n"
    "FBWPRjRazo8/MywT0hedgV5a/9ydV09nMuYQRVIOAlwr0rWNJ3m56iIBdA==\n"
    "-----END PUBLIC KEY-----\n";
/* The same point, compressed: the keyid is over the uncompressed form all the same. */
static const char EC_PUB_COMPRESSED[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgACTEf+JESJMnMt5lHDeutKWrtWoxOn\n"
    "FBWPRjRazo8/Myw=\n"
    "-----END PUBLIC KEY-----\n";
#define EC_PUB_KEYID 0x169fcf10u

/* RSA_PUB in a certificate whose SubjectKeyIdentifier is 0102...0c deadbeef. */
static const char RSA_SKI_CERT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB9jCCAV+gAwIBAgIUO9o3nUyezmXe7WoKu47ToV9tNd4wDQYJKoZIhvcNAQEL\n"
    "BQAwDjEMMAoGA1UEAwwDc2tpMCAXDTI2MTEyNzE5NDkyOVoYDzIxMjYxMTAzMTk0\n"
    "OTI5WjAOMQwwCgYDVQQDDANza2kwgZ8wDQYJKoZIhvcNAQEBBQADgY0AMIGJAoGB\n"
    "AKdrJQn56fLyDK9r7reTjh/RJBxSqss/LRRwHWqJmJDf33VLZXkWj6wck4Q4J3lr\n"
    "o5OYcmuP8CGjrcAdT3HxHaHUPVsJqNKsAw1PUx8nxLJaBPH9dnpeT8wVkT7yQlxI\n"
    "txWwPCEzklK3457PF9Cii5fuUDA9Bwr27923Nh6oykkFAgMBAAGjTzBNMB8GA1Ud\n"
    "IwQYMBaAFMUAs0DQ3o46c/ykb4Fq4UL0GybXMA8GA1UdEwEB/wQFMAMBAf8wGQYD\n"
    "VR0OBBIEEAECAwQFBgcICQoLDN6tvu8wDQYJKoZIhvcNAQELBQADgYEAVolfXSwz\n"
    "OmYntCT8FR2pJDJ/BpMRQ8VyGXEwS8srS8qs4C2q2/kWZ7suc2hn4IWjND1UlANs\n"
    "tGYBwJPBuOVt8FFRDx01yrgh9mNS8otj46cXKpec7WN03y6qdcFyBUE2K5GhblhG\n"
    "Y3B2iTwkKmBtqJq0HMOLvB/iQaOuOxukC0U=\n"
    "-----END CERTIFICATE-----\n";

static const char ED25519_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAjFhDY30abkf9Iz9JBBce5tyEpHf+5r8XF85DSxwcxL4=\n"
    "-----END PUBLIC KEY-----\n";

typedef struct {
    EVP_PKEY *rsa, *ec;
} keys_t;

static int setup(void **state)
{
    keys_t *k = calloc(1, sizeof *k);
    if (!k)
        return -1;
    k->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    k->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!k->rsa || !k->ec)
        return -1;
    *state = k;
    return 0;
}

static int teardown(void **state)
{
    keys_t *k = *state;
    EVP_PKEY_free(k->rsa);
    EVP_PKEY_free(k->ec);
    free(k);
    return 0;
}

/* DER SubjectPublicKeyInfo of a key (malloc'd by OpenSSL). */
static int spki_der(EVP_PKEY *k, unsigned char **der)
{
    *der = NULL;
    int n = i2d_PUBKEY(k, der);
    assert_true(n > 0);
    return n;
}

/* keyidv2 computed independently: SHA-1 of the PKCS#1 ("type-specific") RSA public key, or
 * of the uncompressed EC point. */
static uint32_t expected_keyid(EVP_PKEY *k)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    unsigned char pt[133];
    if (EVP_PKEY_is_a(k, "RSA")) {
        OSSL_ENCODER_CTX *ctx = OSSL_ENCODER_CTX_new_for_pkey(k, EVP_PKEY_PUBLIC_KEY, "DER",
                                                              "type-specific", NULL);
        assert_non_null(ctx);
        assert_int_equal(OSSL_ENCODER_to_data(ctx, &buf, &n), 1);
        OSSL_ENCODER_CTX_free(ctx);
    } else {
        assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                         pt, sizeof pt, &n), 1);
        assert_int_equal(pt[0], 0x04);
    }
    unsigned char md[20];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(buf ? buf : pt, n, md, &mdlen, EVP_sha1(), NULL), 1);
    OPENSSL_free(buf);
    return (uint32_t)md[16] << 24 | (uint32_t)md[17] << 16 | (uint32_t)md[18] << 8 | md[19];
}

/* signature_v2_hdr over a prehashed digest. Returns the blob length. */
static size_t make_sig(EVP_PKEY *k, const EVP_MD *md, uint8_t algo, uint32_t keyid, uint8_t type,
                       const uint8_t *digest, size_t dlen, uint8_t *out, size_t cap)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    if (EVP_PKEY_is_a(k, "RSA"))
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, md), 1);
    size_t slen = cap - 9;
    assert_int_equal(EVP_PKEY_sign(ctx, out + 9, &slen, digest, dlen), 1);
    EVP_PKEY_CTX_free(ctx);
    out[0] = type;
    out[1] = 2;
    out[2] = algo;
    out[3] = (uint8_t)(keyid >> 24);
    out[4] = (uint8_t)(keyid >> 16);
    out[5] = (uint8_t)(keyid >> 8);
    out[6] = (uint8_t)keyid;
    out[7] = (uint8_t)(slen >> 8);
    out[8] = (uint8_t)slen;
    return slen + 9;
}

static void test_keyid_vectors(void **state)
{
    keys_t *k = *state;
    uint32_t id = 0;
    qerr e = { 0 };
    assert_int_equal(qkeyring_keyid((const uint8_t *)RSA_PUB, strlen(RSA_PUB), &id, &e), 0);
    assert_int_equal(id, RSA_PUB_KEYID);
    assert_int_equal(qkeyring_keyid((const uint8_t *)EC_PUB, strlen(EC_PUB), &id, &e), 0);
    assert_int_equal(id, EC_PUB_KEYID);
    assert_int_equal(qkeyring_keyid((const uint8_t *)EC_PUB_COMPRESSED, strlen(EC_PUB_COMPRESSED), &id, &e), 0);
    assert_int_equal(id, EC_PUB_KEYID);
    /* certificate with a SubjectKeyIdentifier: its last 4 bytes */
    assert_int_equal(qkeyring_keyid((const uint8_t *)RSA_SKI_CERT, strlen(RSA_SKI_CERT), &id, &e), 0);
    assert_int_equal(id, 0xdeadbeefu);
    /* generated keys, DER SPKI input, against the independent computation */
    EVP_PKEY *ks[] = { k->rsa, k->ec };
    for (size_t i = 0; i < 2; i++) {
        unsigned char *der = NULL;
        int n = spki_der(ks[i], &der);
        assert_int_equal(qkeyring_keyid(der, (size_t)n, &id, &e), 0);
        assert_int_equal(id, expected_keyid(ks[i]));
        OPENSSL_free(der);
    }
    assert_int_equal(qkeyring_keyid((const uint8_t *)ED25519_PUB, strlen(ED25519_PUB), &id, &e), -1);
    assert_string_equal(e.msg, "Unsupported key type");
    assert_int_equal(qkeyring_keyid((const uint8_t *)"junk", 4, &id, &e), -1);
}

static void test_is_key(void **state)
{
    (void)state;
    bool sup = false;
    assert_true(qkeyring_is_key((const uint8_t *)RSA_PUB, strlen(RSA_PUB), &sup));
    assert_true(sup);
    assert_true(qkeyring_is_key((const uint8_t *)RSA_SKI_CERT, strlen(RSA_SKI_CERT), &sup));
    assert_false(qkeyring_is_key((const uint8_t *)ED25519_PUB, strlen(ED25519_PUB), &sup));
    assert_false(sup);
    assert_false(qkeyring_is_key((const uint8_t *)"not a key at all", 16, &sup));
    assert_true(sup);
    assert_false(qkeyring_is_key(NULL, 0, &sup));
    assert_true(sup);
}

static void test_add_key_forms(void **state)
{
    keys_t *k = *state;
    qerr e = { 0 };
    qkeyring *r = qkeyring_new();
    assert_non_null(r);
    assert_int_equal(qkeyring_add_key(r, (const uint8_t *)RSA_PUB, strlen(RSA_PUB), &e), 0);
    assert_int_equal(qkeyring_add_key(r, (const uint8_t *)EC_PUB, strlen(EC_PUB), &e), 0);
    assert_int_equal(qkeyring_add_key(r, (const uint8_t *)RSA_SKI_CERT, strlen(RSA_SKI_CERT), &e), 0);
    /* a DER private key and a PEM private key */
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(k->ec, &der);
    assert_true(n > 0);
    assert_int_equal(qkeyring_add_key(r, der, (size_t)n, &e), 0);
    OPENSSL_free(der);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, k->rsa, NULL, NULL, 0, NULL, NULL), 1);
    char *pem = NULL;
    long plen = BIO_get_mem_data(bio, &pem);
    assert_int_equal(qkeyring_add_key(r, (const uint8_t *)pem, (size_t)plen, &e), 0);
    BIO_free(bio);
    assert_int_equal(qkeyring_count(r), 5);
    assert_int_equal(qkeyring_add_key(r, (const uint8_t *)ED25519_PUB, strlen(ED25519_PUB), &e), -1);
    assert_string_equal(e.msg, "Unsupported key type");
    assert_int_equal(qkeyring_add_key(r, (const uint8_t *)"xx", 2, &e), -1);
    assert_int_equal(qkeyring_count(r), 5);
    qkeyring_free(r);
    qkeyring_free(NULL);
}

static void sign_and_verify(EVP_PKEY *key)
{
    qerr e = { 0 };
    qkeyring *r = qkeyring_new();
    unsigned char *der = NULL;
    int n = spki_der(key, &der);
    assert_int_equal(qkeyring_add_key(r, der, (size_t)n, &e), 0);
    OPENSSL_free(der);
    uint32_t keyid = expected_keyid(key);

    uint8_t digest[32];
    unsigned int dl = 0;
    EVP_Digest("file contents", 13, digest, &dl, EVP_sha256(), NULL);
    uint8_t sig[600];
    size_t sl = make_sig(key, EVP_sha256(), 4, keyid, 3, digest, 32, sig, sizeof sig);
    const qkeyring *rings[] = { NULL, r };

    assert_true(qkeyring_verify(rings, 2, sig, sl, "sha256", digest, 32));
    /* wrong digest */
    uint8_t other[32];
    memcpy(other, digest, 32);
    other[0] ^= 1;
    assert_false(qkeyring_verify(rings, 2, sig, sl, "sha256", other, 32));
    /* damaged signature */
    sig[sl - 1] ^= 0x55;
    assert_false(qkeyring_verify(rings, 2, sig, sl, "sha256", digest, 32));
    sig[sl - 1] ^= 0x55;
    /* the log's algorithm must match the header's */
    assert_false(qkeyring_verify(rings, 2, sig, sl, "sha1", digest, 20));
    assert_false(qkeyring_verify(rings, 2, sig, sl, "sha384", digest, 32));
    /* unknown keyid */
    sig[6] ^= 0xff;
    assert_false(qkeyring_verify(rings, 2, sig, sl, "sha256", digest, 32));
    sig[6] ^= 0xff;
    /* header checks: version, type, size */
    sig[1] = 1;
    assert_false(qkeyring_verify(rings, 2, sig, sl, "sha256", digest, 32));
    sig[1] = 2;
    sig[0] = 4;
    assert_false(qkeyring_verify(rings, 2, sig, sl, "sha256", digest, 32));
    sig[0] = 5;   /* EVM_XATTR_PORTABLE_DIGSIG is accepted */
    assert_true(qkeyring_verify(rings, 2, sig, sl, "sha256", digest, 32));
    assert_false(qkeyring_verify(rings, 2, sig, sl - 1, "sha256", digest, 32));
    assert_false(qkeyring_verify(rings, 2, sig, 8, "sha256", digest, 32));
    assert_false(qkeyring_verify(rings, 1, sig, sl, "sha256", digest, 32));   /* only NULL */
    assert_false(qkeyring_verify(NULL, 0, sig, sl, "sha256", digest, 32));

    /* header claims sha1 while signing sha256-sized data: mismatch with the log digest */
    sl = make_sig(key, EVP_sha256(), 2, keyid, 3, digest, 32, sig, sizeof sig);
    assert_false(qkeyring_verify(rings, 2, sig, sl, "sha256", digest, 32));

    /* sha1 file digest */
    uint8_t d1[20];
    EVP_Digest("x", 1, d1, &dl, EVP_sha1(), NULL);
    sl = make_sig(key, EVP_sha1(), 2, keyid, 3, d1, 20, sig, sizeof sig);
    assert_true(qkeyring_verify(rings, 2, sig, sl, "sha1", d1, 20));
    qkeyring_free(r);
}

static void test_verify_rsa(void **state)
{
    keys_t *k = *state;
    sign_and_verify(k->rsa);
}

static void test_verify_ec(void **state)
{
    keys_t *k = *state;
    sign_and_verify(k->ec);
}

static char *keyring_json(EVP_PKEY *a, EVP_PKEY *b, uint32_t ida, uint32_t idb)
{
    unsigned char *d1 = NULL, *d2 = NULL;
    int n1 = spki_der(a, &d1), n2 = spki_der(b, &d2);
    char *b1 = qb64_encode_alloc(d1, (size_t)n1), *b2 = qb64_encode_alloc(d2, (size_t)n2);
    OPENSSL_free(d1);
    OPENSSL_free(d2);
    char *out = malloc(strlen(b1) + strlen(b2) + 128);
    sprintf(out, "{\"meta\": {\"version\": 1}, \"pubkeys\": [\"%s\", \"%s\"], \"keyids\": [%u, %u]}", b1, b2,
            ida, idb);
    free(b1);
    free(b2);
    return out;
}

static void test_keyring_json(void **state)
{
    keys_t *k = *state;
    qerr e = { 0 };
    uint32_t idr = expected_keyid(k->rsa), ide = expected_keyid(k->ec);
    char *j = keyring_json(k->rsa, k->ec, idr, ide);
    qkeyring *r = qkeyring_from_json(j, strlen(j), &e);
    assert_non_null(r);
    assert_int_equal(qkeyring_count(r), 2);

    uint8_t digest[32];
    unsigned int dl = 0;
    EVP_Digest("abc", 3, digest, &dl, EVP_sha256(), NULL);
    uint8_t sig[600];
    size_t sl = make_sig(k->ec, EVP_sha256(), 4, ide, 3, digest, 32, sig, sizeof sig);
    const qkeyring *rings[] = { r };
    assert_true(qkeyring_verify(rings, 1, sig, sl, "sha256", digest, 32));
    qkeyring_free(r);

    /* the same keyring as a JSON string holding the JSON (decoded twice) */
    size_t n = strlen(j);
    char *q = malloc(2 * n + 3);
    size_t o = 0;
    q[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (j[i] == '"')
            q[o++] = '\\';
        q[o++] = j[i];
    }
    q[o++] = '"';
    q[o] = '\0';
    r = qkeyring_from_json(q, o, &e);
    assert_non_null(r);
    assert_int_equal(qkeyring_count(r), 2);
    rings[0] = r;
    assert_true(qkeyring_verify(rings, 1, sig, sl, "sha256", digest, 32));
    qkeyring_free(r);
    free(q);

    /* the keyids listed are the ones used (as for certificates with an SKI) */
    char *j2 = keyring_json(k->rsa, k->ec, 1, 2);
    r = qkeyring_from_json(j2, strlen(j2), &e);
    assert_non_null(r);
    rings[0] = r;
    assert_false(qkeyring_verify(rings, 1, sig, sl, "sha256", digest, 32));
    sig[3] = 0; sig[4] = 0; sig[5] = 0; sig[6] = 2;
    assert_true(qkeyring_verify(rings, 1, sig, sl, "sha256", digest, 32));
    qkeyring_free(r);
    free(j2);
    free(j);

    /* empty → empty keyring; errors */
    r = qkeyring_from_json("", 0, &e);
    assert_non_null(r);
    assert_int_equal(qkeyring_count(r), 0);
    qkeyring_free(r);
    const char *bad[] = {
        "{", "[]", "{\"pubkeys\": []}", "{\"keyids\": []}", "{\"pubkeys\": [\"!!\"], \"keyids\": [1]}",
        "{\"pubkeys\": [\"AAAA\"], \"keyids\": [1]}", "{\"pubkeys\": [], \"keyids\": [-1]}",
        "{\"pubkeys\": [3], \"keyids\": []}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qerr_clear(&e);
        r = qkeyring_from_json(bad[i], strlen(bad[i]), &e);
        if (r)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(strstr(e.msg, "IMA keyring"));
    }
    /* an ed25519 key in a keyring is refused */
    char ed[] = "{\"pubkeys\": [\"MCowBQYDK2VwAyEAjFhDY30abkf9Iz9JBBce5tyEpHf+5r8XF85DSxwcxL4=\"], \"keyids\": [1]}";
    assert_null(qkeyring_from_json(ed, strlen(ed), &e));
    assert_non_null(strstr(e.msg, "Unsupported key type"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyid_vectors),
        cmocka_unit_test(test_is_key),
        cmocka_unit_test(test_add_key_forms),
        cmocka_unit_test(test_verify_rsa),
        cmocka_unit_test(test_verify_ec),
        cmocka_unit_test(test_keyring_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
