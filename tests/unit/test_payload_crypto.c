/* Unit tests for common/payload_crypto.c (with agent/payload_key.c for the RSA-OAEP round trip). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "b64.h"
#include "hex.h"
#include "payload_crypto.h"
#include "../../agent/payload_key.h"

#define UUID "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"

/* python3 -c 'import hmac,hashlib; print(hmac.new(bytes(range(32)),
 *   b"d432fbb3-d2f1-4a97-9ef7-75bd81c00000", hashlib.sha384).hexdigest())' */
static const char AUTH_TAG_VECTOR[] =
    "74216909e21c5a1a5fb9e0ad23881f6f1693d01b5469c4d12dfe4ea151ab3334690966790c8e3b4a358b1be3ca443e2d";

/* python3 cryptography (what Keylime uses): Cipher(AES(bytes(range(32))), GCM(bytes(range(100, 116))))
 * over b"Keylime payload\n"; printed as (iv + ct + tag).hex(). */
static const char GCM_VECTOR[] =
    "6465666768696a6b6c6d6e6f7071727393d63a3d8d7942f8c298d4e528b6886fa61f525863575af2affcd8f3fc29f656";

static void seq_key(uint8_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        k[i] = (uint8_t)i;
}

static void test_keys_new(void **state)
{
    (void)state;
    qpay_keys a, b;
    assert_int_equal(qpay_keys_new(&a, NULL), 0);
    assert_int_equal(qpay_keys_new(&b, NULL), 0);
    assert_int_equal(a.len, 32);
    uint8_t x[32];
    qpay_xor(a.u, a.v, 32, x);
    assert_memory_equal(x, a.k, 32);
    assert_memory_not_equal(a.k, b.k, 32);
    assert_memory_not_equal(a.v, b.v, 32);
    assert_true(qpay_key_len_ok(16));
    assert_true(qpay_key_len_ok(32));
    assert_false(qpay_key_len_ok(24));
    assert_false(qpay_key_len_ok(0));
    qpay_keys_clear(&a);
    assert_int_equal(a.len, 0);
}

static void roundtrip(size_t klen, size_t n)
{
    uint8_t k[32];
    seq_key(k, klen);
    uint8_t *in = malloc(n + 1), *sealed = malloc(n + 32), *out = malloc(n + 1);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    size_t sl = 0, ol = 0;
    qerr e;
    assert_int_equal(qpay_seal(k, klen, in, n, sealed, n + 32, &sl, &e), 0);
    assert_int_equal(sl, n + 32);
    assert_int_equal(qpay_open(k, klen, sealed, sl, out, n, &ol, &e), 0);
    assert_int_equal(ol, n);
    if (n)
        assert_memory_equal(in, out, n);
    free(in);
    free(sealed);
    free(out);
}

static void test_gcm_roundtrip(void **state)
{
    (void)state;
    roundtrip(32, 0);
    roundtrip(32, 1);
    roundtrip(32, 1000);
    roundtrip(32, (3u << 20) + 5);   /* more than one EVP chunk */
    roundtrip(16, 100);              /* AES-128-GCM for 16-byte keys */
    /* two seals of the same text differ (fresh IV) */
    uint8_t k[32], a[48], b[48];
    size_t la, lb;
    seq_key(k, 32);
    assert_int_equal(qpay_seal(k, 32, (const uint8_t *)"0123456789abcdef", 16, a, sizeof a, &la, NULL), 0);
    assert_int_equal(qpay_seal(k, 32, (const uint8_t *)"0123456789abcdef", 16, b, sizeof b, &lb, NULL), 0);
    assert_memory_not_equal(a, b, 48);
    qerr e;
    assert_int_equal(qpay_seal(k, 24, a, 1, b, sizeof b, &lb, &e), -1);
    assert_non_null(strstr(e.msg, "16 or 32"));
    assert_int_equal(qpay_seal(k, 32, a, 17, b, sizeof b, &lb, &e), -1);   /* no room */
}

static void test_gcm_vector(void **state)
{
    (void)state;
    uint8_t k[32], sealed[64], out[64];
    seq_key(k, 32);
    long n = qhex_decode(GCM_VECTOR, strlen(GCM_VECTOR), sealed, sizeof sealed);
    assert_int_equal(n, 16 + 16 + 16);
    size_t ol = 0;
    assert_int_equal(qpay_open(k, 32, sealed, (size_t)n, out, sizeof out, &ol, NULL), 0);
    assert_int_equal(ol, 16);
    assert_memory_equal(out, "Keylime payload\n", 16);
}

static void test_gcm_tamper(void **state)
{
    (void)state;
    uint8_t k[32], sealed[64], out[64];
    seq_key(k, 32);
    size_t n = (size_t)qhex_decode(GCM_VECTOR, strlen(GCM_VECTOR), sealed, sizeof sealed);
    const size_t spots[] = {0, 15, 16, 31, 32, 47};   /* iv, ciphertext, tag */
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        uint8_t t[64];
        memcpy(t, sealed, n);
        t[spots[i]] ^= 0x01;
        memset(out, 0xAA, sizeof out);
        size_t ol = 99;
        qerr e;
        assert_int_equal(qpay_open(k, 32, t, n, out, sizeof out, &ol, &e), -1);
        assert_non_null(strstr(e.msg, "payload authentication failed"));
        assert_int_equal(ol, 99);
        for (size_t j = 0; j < 16; j++)      /* nothing of the plaintext left behind */
            assert_int_equal(out[j], 0);
    }
}

static void test_gcm_truncated_wrong_key(void **state)
{
    (void)state;
    uint8_t k[32], sealed[64], out[64];
    seq_key(k, 32);
    size_t n = (size_t)qhex_decode(GCM_VECTOR, strlen(GCM_VECTOR), sealed, sizeof sealed);
    size_t ol;
    qerr e;
    assert_int_equal(qpay_open(k, 32, sealed, n - 1, out, sizeof out, &ol, &e), -1);
    assert_non_null(strstr(e.msg, "payload authentication failed"));
    assert_int_equal(qpay_open(k, 32, sealed, 31, out, sizeof out, &ol, &e), -1);
    assert_non_null(strstr(e.msg, "truncated"));
    assert_int_equal(qpay_open(k, 32, sealed, 0, out, sizeof out, &ol, &e), -1);
    k[5] ^= 0x80;
    assert_int_equal(qpay_open(k, 32, sealed, n, out, sizeof out, &ol, &e), -1);
    assert_non_null(strstr(e.msg, "wrong key"));
    assert_int_equal(qpay_open(k, 16, sealed, n, out, sizeof out, &ol, &e), -1);   /* other key size */
    assert_int_equal(qpay_open(k, 20, sealed, n, out, sizeof out, &ol, &e), -1);
    assert_non_null(strstr(e.msg, "16 or 32"));
}

static void test_xor(void **state)
{
    (void)state;
    uint8_t a[4] = {0x0f, 0xf0, 0xaa, 0x00}, b[4] = {0xff, 0xff, 0x55, 0x00}, c[4];
    qpay_xor(a, b, 4, c);
    const uint8_t want[4] = {0xf0, 0x0f, 0xff, 0x00};
    assert_memory_equal(c, want, 4);
    qpay_xor(c, b, 4, c);              /* in place: back to a */
    assert_memory_equal(c, a, 4);
}

static void test_auth_tag(void **state)
{
    (void)state;
    uint8_t k[32];
    seq_key(k, 32);
    char tag[QPAY_HMAC_HEX + 1];
    assert_int_equal(qpay_auth_tag(k, 32, UUID, tag, NULL), 0);
    assert_string_equal(tag, AUTH_TAG_VECTOR);
    qerr e;
    assert_int_equal(qpay_hmac_check_hex(k, 32, UUID, strlen(UUID), AUTH_TAG_VECTOR, 96, &e), 0);
    char upper[97];
    for (int i = 0; i < 97; i++)
        upper[i] = (char)((AUTH_TAG_VECTOR[i] >= 'a' && AUTH_TAG_VECTOR[i] <= 'f') ? AUTH_TAG_VECTOR[i] - 32
                                                                                   : AUTH_TAG_VECTOR[i]);
    assert_int_equal(qpay_hmac_check_hex(k, 32, UUID, strlen(UUID), upper, 96, &e), 0);
    assert_int_equal(qpay_hmac_check_hex(k, 32, "other", 5, AUTH_TAG_VECTOR, 96, &e), -1);
    assert_non_null(strstr(e.msg, "does not match"));
    assert_int_equal(qpay_hmac_check_hex(k, 32, UUID, strlen(UUID), AUTH_TAG_VECTOR, 94, &e), -1);
    assert_non_null(strstr(e.msg, "96 hexadecimal"));
    assert_int_equal(qpay_hmac_check_hex(k, 32, UUID, strlen(UUID), "zz", 2, &e), -1);
    uint8_t raw[48];
    qhex_decode(AUTH_TAG_VECTOR, 96, raw, sizeof raw);
    assert_true(qpay_hmac_check(k, 32, UUID, strlen(UUID), raw));
    raw[47] ^= 1;
    assert_false(qpay_hmac_check(k, 32, UUID, strlen(UUID), raw));
}

static void test_oaep_roundtrip(void **state)
{
    (void)state;
    agent_payload_key pk;
    qerr e;
    assert_int_equal(agent_payload_key_generate(&pk, &e), 0);
    uint8_t half[32], ct[QPAY_RSA_MAX], back[64];
    seq_key(half, 32);
    long n = qpay_rsa_encrypt(pk.pem, pk.pem_len, half, 32, ct, sizeof ct, &e);
    assert_int_equal(n, 256);
    assert_int_equal(agent_payload_key_decrypt(&pk, ct, (size_t)n, back, sizeof back, &e), 32);
    assert_memory_equal(back, half, 32);
    /* base64 variant decodes to a ciphertext that decrypts too */
    char *b64 = qpay_rsa_encrypt_b64(pk.pem, pk.pem_len, half, 16, &e);
    assert_non_null(b64);
    long cn = qb64_decode(b64, strlen(b64), ct, sizeof ct);
    assert_int_equal(cn, 256);
    assert_int_equal(agent_payload_key_decrypt(&pk, ct, (size_t)cn, back, sizeof back, &e), 16);
    assert_memory_equal(back, half, 16);
    free(b64);
    /* a tampered ciphertext does not decrypt */
    ct[10] ^= 1;
    assert_int_equal(agent_payload_key_decrypt(&pk, ct, (size_t)cn, back, sizeof back, &e), -1);
    /* bad keys */
    assert_int_equal(qpay_rsa_encrypt("not a pem", 9, half, 32, ct, sizeof ct, &e), -1);
    assert_non_null(strstr(e.msg, "not a PEM"));
    assert_int_equal(qpay_rsa_encrypt(pk.pem, pk.pem_len, half, 32, ct, 100, &e), -1);   /* no room */
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    assert_non_null(ec);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, ec);
    char *p;
    long pl = BIO_get_mem_data(b, &p);
    assert_int_equal(qpay_rsa_encrypt(p, (size_t)pl, half, 32, ct, sizeof ct, &e), -1);
    assert_non_null(strstr(e.msg, "not an RSA key"));
    BIO_free(b);
    EVP_PKEY_free(ec);
    agent_payload_key_free(&pk);
}

static void test_keyfile(void **state)
{
    (void)state;
    char dir[] = "/tmp/quince-pc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/keys.txt", dir);
    qpay_keys ks, back;
    assert_int_equal(qpay_keys_new(&ks, NULL), 0);
    assert_int_equal(qpay_keyfile_write(path, &ks, NULL), 0);
    qerr e;
    assert_int_equal(qpay_keyfile_write(path, &ks, &e), -1);         /* never overwrites */
    assert_int_equal(qpay_keyfile_read(path, &back, &e), 0);
    assert_int_equal(back.len, 32);
    assert_memory_equal(back.k, ks.k, 32);
    assert_memory_equal(back.u, ks.u, 32);
    assert_memory_equal(back.v, ks.v, 32);
    unlink(path);

    char bk[64], bu[64], bv[64], text[256];
    qb64_encode(ks.k, 32, bk, sizeof bk);
    qb64_encode(ks.u, 32, bu, sizeof bu);
    qb64_encode(ks.v, 32, bv, sizeof bv);
    /* U and V swapped (Keylime's user_data_encrypt order), CRLF and trailing blank lines */
    snprintf(text, sizeof text, "%s\r\n%s\r\n%s\r\n\n", bk, bv, bu);
    assert_int_equal(qpay_keyfile_parse(text, strlen(text), &back, &e), 0);
    assert_memory_equal(back.k, ks.k, 32);
    /* K is not U xor V (V given twice) */
    snprintf(text, sizeof text, "%s\n%s\n%s\n", bk, bv, bv);
    assert_int_equal(qpay_keyfile_parse(text, strlen(text), &back, &e), -1);
    assert_non_null(strstr(e.msg, "K is not U xor V"));
    assert_int_equal(back.len, 0);
    /* two lines only */
    snprintf(text, sizeof text, "%s\n%s\n", bk, bu);
    assert_int_equal(qpay_keyfile_parse(text, strlen(text), &back, &e), -1);
    assert_non_null(strstr(e.msg, "line 3 (V)"));
    /* bad base64 */
    snprintf(text, sizeof text, "%s\n%s\n%s!\n", bk, bu, bv);
    assert_int_equal(qpay_keyfile_parse(text, strlen(text), &back, &e), -1);
    assert_non_null(strstr(e.msg, "line 3 (V) is not base64"));
    /* a fourth line */
    snprintf(text, sizeof text, "%s\n%s\n%s\nextra\n", bk, bu, bv);
    assert_int_equal(qpay_keyfile_parse(text, strlen(text), &back, &e), -1);
    /* wrong lengths: 24-byte keys, and mixed 16/32 */
    uint8_t z24[24] = {0};
    char b24[64];
    qb64_encode(z24, 24, b24, sizeof b24);
    snprintf(text, sizeof text, "%s\n%s\n%s\n", b24, b24, b24);
    assert_int_equal(qpay_keyfile_parse(text, strlen(text), &back, &e), -1);
    assert_non_null(strstr(e.msg, "16 or 32"));
    char b16[64];
    qb64_encode(ks.k, 16, b16, sizeof b16);
    snprintf(text, sizeof text, "%s\n%s\n%s\n", b16, bu, bv);
    assert_int_equal(qpay_keyfile_parse(text, strlen(text), &back, &e), -1);
    /* 16-byte keys are fine */
    uint8_t k16[16], u16[16], v16[16];
    seq_key(k16, 16);
    memset(v16, 0x5a, 16);
    qpay_xor(k16, v16, 16, u16);
    char s1[32], s2[32], s3[32];
    qb64_encode(k16, 16, s1, sizeof s1);
    qb64_encode(u16, 16, s2, sizeof s2);
    qb64_encode(v16, 16, s3, sizeof s3);
    snprintf(text, sizeof text, "%s\n%s\n%s", s1, s2, s3);
    assert_int_equal(qpay_keyfile_parse(text, strlen(text), &back, &e), 0);
    assert_int_equal(back.len, 16);
    /* missing file */
    assert_int_equal(qpay_keyfile_read(path, &back, &e), -1);
    assert_non_null(strstr(e.msg, path));
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_new),
        cmocka_unit_test(test_gcm_roundtrip),
        cmocka_unit_test(test_gcm_vector),
        cmocka_unit_test(test_gcm_tamper),
        cmocka_unit_test(test_gcm_truncated_wrong_key),
        cmocka_unit_test(test_xor),
        cmocka_unit_test(test_auth_tag),
        cmocka_unit_test(test_oaep_roundtrip),
        cmocka_unit_test(test_keyfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
