/* Unit tests for tenant/payload.c, ending with a tenant → agent round trip through agent/keys.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ctype.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64.h"
#include "log.h"
#include "payload_crypto.h"
#include "../../agent/keys.h"
#include "../../tenant/payload.h"

#define UUID "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"

static char g_dir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p);
}

static const char *path_of(const char *name)
{
    static char p[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", g_dir, name);
    return p[i];
}

static void write_bytes(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(path_of(name), "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_size(const char *name, size_t n)
{
    char *buf = calloc(1, n ? n : 1);
    write_bytes(name, buf, n);
    free(buf);
}

/* Open p's payload with its K. */
static size_t open_payload(const tpayload *p, uint8_t *out, size_t cap)
{
    size_t sl = 0, ol = 0;
    uint8_t *sealed = qb64_decode_alloc(p->payload_b64, p->payload_b64_len, 1 << 22, &sl);
    assert_non_null(sealed);
    assert_int_equal(qpay_open(p->keys.k, p->keys.len, sealed, sl, out, cap, &ol, NULL), 0);
    free(sealed);
    return ol;
}

static int setup(void **state)
{
    (void)state;
    qlog_use_stderr(false);
    snprintf(g_dir, sizeof g_dir, "/tmp/quince-tpay-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(g_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_from_file(void **state)
{
    (void)state;
    write_bytes("f.txt", "the payload\n", 12);
    tpayload p;
    qerr e;
    assert_int_equal(tpayload_from_file(path_of("f.txt"), 0, &p, &e), 0);
    assert_int_equal(p.keys.len, 32);
    uint8_t x[32];
    qpay_xor(p.keys.u, p.keys.v, 32, x);
    assert_memory_equal(x, p.keys.k, 32);
    assert_int_equal(p.payload_b64_len, strlen(p.payload_b64));
    uint8_t out[64];
    assert_int_equal(open_payload(&p, out, sizeof out), 12);
    assert_memory_equal(out, "the payload\n", 12);
    char *v = tpayload_v_b64(&p);
    uint8_t vb[32];
    assert_int_equal(qb64_decode(v, strlen(v), vb, sizeof vb), 32);
    assert_memory_equal(vb, p.keys.v, 32);
    free(v);
    tpayload_free(&p);
    tpayload_free(&p);                        /* twice is fine */
    assert_null(p.payload_b64);
    /* empty file */
    write_bytes("empty", "", 0);
    assert_int_equal(tpayload_from_file(path_of("empty"), 0, &p, &e), 0);
    assert_int_equal(open_payload(&p, out, sizeof out), 0);
    tpayload_free(&p);
    /* missing file, directory */
    assert_int_equal(tpayload_from_file(path_of("nope"), 0, &p, &e), -1);
    assert_int_equal(e.code, 2);
    assert_int_equal(tpayload_from_file(g_dir, 0, &p, &e), -1);
    assert_non_null(strstr(e.msg, "not a regular file"));
}

static void test_size_limit(void **state)
{
    (void)state;
    tpayload p;
    qerr e;
    /* max 1048576 characters of base64 → at most 786400 bytes of file */
    write_size("fits", 786400);
    assert_int_equal(tpayload_from_file(path_of("fits"), 1048576, &p, &e), 0);
    assert_true(p.payload_b64_len <= 1048576);
    tpayload_free(&p);
    write_size("over", 786401);
    assert_int_equal(tpayload_from_file(path_of("over"), 1048576, &p, &e), -1);
    assert_int_equal(e.code, 2);
    assert_string_equal(e.msg, "payload size 1048580 exceeds max_payload_size (1048576 bytes)");
    assert_null(p.payload_b64);
    /* default limit (0) is the same */
    assert_int_equal(tpayload_from_file(path_of("over"), 0, &p, &e), -1);
    /* a small limit */
    write_bytes("small", "0123456789", 10);
    assert_int_equal(tpayload_from_file(path_of("small"), 56, &p, &e), 0);     /* 42 bytes → 56 */
    tpayload_free(&p);
    assert_int_equal(tpayload_from_file(path_of("small"), 55, &p, &e), -1);
    assert_non_null(strstr(e.msg, "exceeds max_payload_size (55 bytes)"));
}

static void test_keyfile_payload(void **state)
{
    (void)state;
    qpay_keys ks;
    assert_int_equal(qpay_keys_new(&ks, NULL), 0);
    unlink(path_of("k.txt"));
    assert_int_equal(qpay_keyfile_write(path_of("k.txt"), &ks, NULL), 0);
    uint8_t sealed[64];
    size_t sl;
    assert_int_equal(qpay_seal(ks.k, 32, (const uint8_t *)"premade", 7, sealed, sizeof sealed, &sl, NULL), 0);
    char *b64 = qb64_encode_alloc(sealed, sl);
    char text[128];
    snprintf(text, sizeof text, "%s\n", b64);
    write_bytes("p.b64", text, strlen(text));       /* user_data_encrypt's form + a newline */
    write_bytes("p.raw", sealed, sl);               /* raw iv || ct || tag */

    tpayload p;
    qerr e;
    uint8_t out[64];
    assert_int_equal(tpayload_from_keyfile(path_of("k.txt"), path_of("p.b64"), 0, &p, &e), 0);
    assert_string_equal(p.payload_b64, b64);
    assert_int_equal(open_payload(&p, out, sizeof out), 7);
    assert_memory_equal(p.keys.v, ks.v, 32);
    tpayload_free(&p);
    assert_int_equal(tpayload_from_keyfile(path_of("k.txt"), path_of("p.raw"), 0, &p, &e), 0);
    assert_string_equal(p.payload_b64, b64);
    tpayload_free(&p);
    assert_int_equal(tpayload_from_keyfile(path_of("k.txt"), NULL, 0, &p, &e), 0);   /* -k alone */
    assert_null(p.payload_b64);
    tpayload_free(&p);
    /* over the limit */
    assert_int_equal(tpayload_from_keyfile(path_of("k.txt"), path_of("p.b64"), 20, &p, &e), -1);
    assert_non_null(strstr(e.msg, "exceeds max_payload_size (20 bytes)"));
    /* a payload sealed with another K */
    qpay_keys other;
    assert_int_equal(qpay_keys_new(&other, NULL), 0);
    unlink(path_of("k2.txt"));
    assert_int_equal(qpay_keyfile_write(path_of("k2.txt"), &other, NULL), 0);
    assert_int_equal(tpayload_from_keyfile(path_of("k2.txt"), path_of("p.b64"), 0, &p, &e), -1);
    assert_int_equal(e.code, 2);
    assert_non_null(strstr(e.msg, "does not open with the key file's K"));
    assert_null(p.payload_b64);
    /* a bad key file */
    write_bytes("bad.txt", "AAAA\nBBBB\n", 10);
    assert_int_equal(tpayload_from_keyfile(path_of("bad.txt"), NULL, 0, &p, &e), -1);
    assert_int_equal(e.code, 2);
    assert_non_null(strstr(e.msg, "bad.txt"));
    write_bytes("empty.p", "", 0);
    assert_int_equal(tpayload_from_keyfile(path_of("k.txt"), path_of("empty.p"), 0, &p, &e), -1);
    assert_non_null(strstr(e.msg, "empty"));
    free(b64);
}

static void test_challenge(void **state)
{
    (void)state;
    char a[32], b[32];
    assert_int_equal(tpayload_challenge(a, sizeof a, NULL), 0);
    assert_int_equal(tpayload_challenge(b, sizeof b, NULL), 0);
    assert_int_equal(strlen(a), TPAYLOAD_CHALLENGE_LEN);
    for (size_t i = 0; a[i]; i++)
        assert_true(isalnum((unsigned char)a[i]));
    assert_string_not_equal(a, b);
    qerr e;
    assert_int_equal(tpayload_challenge(a, 20, &e), -1);
}

/* The whole exchange: tenant builds the bodies, the agent derives K, the tenant checks /verify. */
static void test_roundtrip_with_agent(void **state)
{
    (void)state;
    agent_payload_key pk;
    qerr e;
    assert_int_equal(agent_payload_key_generate(&pk, &e), 0);
    agent_keys *ks = agent_keys_new(&pk, UUID, 0, &e);
    assert_non_null(ks);

    write_bytes("rt.txt", "round trip", 10);
    tpayload p;
    assert_int_equal(tpayload_from_file(path_of("rt.txt"), 0, &p, &e), 0);
    cJSON *ukey = tpayload_ukey_body(&p, UUID, pk.pem, &e);
    assert_non_null(ukey);
    assert_string_equal(cJSON_GetObjectItem(ukey, "payload")->valuestring, p.payload_b64);
    assert_int_equal(strlen(cJSON_GetObjectItem(ukey, "auth_tag")->valuestring), 96);
    assert_int_equal(agent_keys_ukey(ks, ukey, &e), 0);

    /* the verifier's half */
    char *v = tpayload_v_b64(&p);
    uint8_t vb[32];
    assert_int_equal(qb64_decode(v, strlen(v), vb, sizeof vb), 32);
    char *ek = qpay_rsa_encrypt_b64(pk.pem, pk.pem_len, vb, 32, &e);
    cJSON *vkey = cJSON_CreateObject();
    cJSON_AddStringToObject(vkey, "encrypted_key", ek);

    char challenge[32], hex[QPAY_HMAC_HEX + 1];
    assert_int_equal(tpayload_challenge(challenge, sizeof challenge, &e), 0);
    assert_int_equal(agent_keys_verify(ks, challenge, hex, sizeof hex, &e), -1);    /* not yet */
    assert_int_equal(agent_keys_vkey(ks, vkey, &e), 0);
    assert_int_equal(agent_keys_verify(ks, challenge, hex, sizeof hex, &e), 0);
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "hmac", hex);
    assert_int_equal(tpayload_verify_reply(&p, challenge, res, &e), 0);
    /* a wrong hmac, a missing one, another challenge */
    assert_int_equal(tpayload_verify_reply(&p, "otherchallenge", res, &e), -1);
    assert_int_equal(e.code, 1);
    assert_non_null(strstr(e.msg, "did not prove"));
    cJSON_ReplaceItemInObject(res, "hmac", cJSON_CreateString("abcd"));
    assert_int_equal(tpayload_verify_reply(&p, challenge, res, &e), -1);
    cJSON_DeleteItemFromObject(res, "hmac");
    assert_int_equal(tpayload_verify_reply(&p, challenge, res, &e), -1);
    assert_non_null(strstr(e.msg, "no hmac"));

    /* a body for a bad public key */
    assert_null(tpayload_ukey_body(&p, UUID, "garbage", &e));
    assert_int_equal(e.code, 1);
    assert_null(tpayload_ukey_body(&p, UUID, NULL, &e));

    cJSON_Delete(res);
    cJSON_Delete(vkey);
    cJSON_Delete(ukey);
    free(ek);
    free(v);
    tpayload_free(&p);
    assert_null(tpayload_ukey_body(&p, UUID, pk.pem, &e));    /* freed: no key */
    agent_keys_free(ks);
    agent_payload_key_free(&pk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_file),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_keyfile_payload),
        cmocka_unit_test(test_challenge),
        cmocka_unit_test(test_roundtrip_with_agent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
