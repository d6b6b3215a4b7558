/* Unit tests for agent/keys.c: U/V halves, K derivation, /keys/verify. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "log.h"
#include "payload_crypto.h"
#include "../../agent/keys.h"
#include "../../agent/payload.h"

#define UUID "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"

static agent_payload_key g_pk;

typedef struct rec {
    int calls;
    uint8_t k[32];
    size_t klen;
    bool had_payload;
    uint8_t plain[256];
    size_t plain_len;
} rec;

/* The hook: record K and open the payload with it (as the payload step would). */
static void hook(void *ctx, const uint8_t *k, size_t klen, const uint8_t *payload, size_t n)
{
    rec *r = ctx;
    r->calls++;
    memcpy(r->k, k, klen);
    r->klen = klen;
    r->had_payload = payload != NULL;
    r->plain_len = 0;
    if (payload && qpay_open(k, klen, payload, n, r->plain, sizeof r->plain, &r->plain_len, NULL) < 0)
        r->plain_len = (size_t)-1;
}

/* A tenant-side pair: K, U, V plus the JSON bodies. */
typedef struct pair {
    qpay_keys ks;
    cJSON *ukey, *vkey;
} pair;

static cJSON *body_key(const uint8_t *half, size_t n)
{
    char *ek = qpay_rsa_encrypt_b64(g_pk.pem, g_pk.pem_len, half, n, NULL);
    assert_non_null(ek);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "encrypted_key", ek);
    free(ek);
    return o;
}

/* klen 16 or 32; uuid for the auth_tag; text = payload plaintext or NULL. */
static void make_pair(pair *p, size_t klen, const char *uuid, const char *text)
{
    memset(p, 0, sizeof(*p));
    if (klen == 32) {
        assert_int_equal(qpay_keys_new(&p->ks, NULL), 0);
    } else {
        qpay_random(p->ks.k, klen, NULL);
        qpay_random(p->ks.v, klen, NULL);
        qpay_xor(p->ks.k, p->ks.v, klen, p->ks.u);
        p->ks.len = klen;
    }
    p->ukey = body_key(p->ks.u, klen);
    char tag[QPAY_HMAC_HEX + 1];
    assert_int_equal(qpay_auth_tag(p->ks.k, klen, uuid, tag, NULL), 0);
    cJSON_AddStringToObject(p->ukey, "auth_tag", tag);
    if (text) {
        size_t n = strlen(text), sl;
        uint8_t sealed[512];
        assert_int_equal(qpay_seal(p->ks.k, klen, (const uint8_t *)text, n, sealed, sizeof sealed, &sl, NULL), 0);
        char *b = qb64_encode_alloc(sealed, sl);
        cJSON_AddStringToObject(p->ukey, "payload", b);
        free(b);
    }
    p->vkey = body_key(p->ks.v, klen);
}

static void free_pair(pair *p)
{
    cJSON_Delete(p->ukey);
    cJSON_Delete(p->vkey);
}

static agent_keys *new_ks(rec *r, size_t max_payload)
{
    qerr e;
    agent_keys *ks = agent_keys_new(&g_pk, UUID, max_payload, &e);
    assert_non_null(ks);
    if (r) {
        memset(r, 0, sizeof(*r));
        agent_keys_set_hook(ks, hook, r);
    }
    return ks;
}

static void assert_counts(agent_keys *ks, size_t nu, size_t nv)
{
    size_t u = 99, v = 99;
    agent_keys_counts(ks, &u, &v);
    assert_int_equal(u, nu);
    assert_int_equal(v, nv);
}

static void assert_verify_k(agent_keys *ks, const uint8_t *k, size_t klen)
{
    char got[QPAY_HMAC_HEX + 1], want[QPAY_HMAC_HEX + 1];
    qerr e;
    assert_int_equal(agent_keys_verify(ks, "abcDEF0123456789xyzQ", got, sizeof got, &e), 0);
    assert_int_equal(qpay_hmac_hex(k, klen, "abcDEF0123456789xyzQ", 20, want, NULL), 0);
    assert_string_equal(got, want);
}

static int setup(void **state)
{
    (void)state;
    qlog_use_stderr(false);
    return agent_payload_key_generate(&g_pk, NULL);
}

static int teardown(void **state)
{
    (void)state;
    agent_payload_key_free(&g_pk);
    return 0;
}

static void test_ukey_then_vkey(void **state)
{
    (void)state;
    rec r;
    agent_keys *ks = new_ks(&r, 0);
    pair p;
    make_pair(&p, 32, UUID, "secret payload");
    qerr e;
    assert_int_equal(agent_keys_ukey(ks, p.ukey, &e), 0);
    assert_false(agent_keys_have_k(ks));
    assert_counts(ks, 1, 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(agent_keys_vkey(ks, p.vkey, &e), 0);
    assert_true(agent_keys_have_k(ks));
    assert_counts(ks, 0, 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.klen, 32);
    assert_memory_equal(r.k, p.ks.k, 32);
    assert_true(r.had_payload);
    assert_int_equal(r.plain_len, 14);
    assert_memory_equal(r.plain, "secret payload", 14);
    assert_verify_k(ks, p.ks.k, 32);
    free_pair(&p);
    agent_keys_free(ks);
}

static void test_vkey_then_ukey(void **state)
{
    (void)state;
    rec r;
    agent_keys *ks = new_ks(&r, 0);
    pair p;
    make_pair(&p, 32, UUID, NULL);
    qerr e;
    assert_int_equal(agent_keys_vkey(ks, p.vkey, &e), 0);
    assert_false(agent_keys_have_k(ks));
    assert_counts(ks, 0, 1);
    assert_int_equal(agent_keys_ukey(ks, p.ukey, &e), 0);
    assert_true(agent_keys_have_k(ks));
    assert_counts(ks, 0, 0);
    assert_int_equal(r.calls, 1);
    assert_false(r.had_payload);
    assert_verify_k(ks, p.ks.k, 32);
    free_pair(&p);
    agent_keys_free(ks);
}

static void test_key16(void **state)
{
    (void)state;
    rec r;
    agent_keys *ks = new_ks(&r, 0);
    pair p;
    make_pair(&p, 16, UUID, "sixteen");
    qerr e;
    assert_int_equal(agent_keys_ukey(ks, p.ukey, &e), 0);
    assert_int_equal(agent_keys_vkey(ks, p.vkey, &e), 0);
    assert_int_equal(r.klen, 16);
    assert_int_equal(r.plain_len, 7);
    assert_verify_k(ks, p.ks.k, 16);
    free_pair(&p);
    agent_keys_free(ks);
}

static void test_wrong_auth_tag(void **state)
{
    (void)state;
    rec r;
    agent_keys *ks = new_ks(&r, 0);
    pair p;
    make_pair(&p, 32, "some-other-agent", "x");     /* auth_tag for another uuid */
    qerr e;
    assert_int_equal(agent_keys_ukey(ks, p.ukey, &e), 0);
    assert_int_equal(agent_keys_vkey(ks, p.vkey, &e), 0);
    assert_false(agent_keys_have_k(ks));
    assert_int_equal(r.calls, 0);
    assert_counts(ks, 1, 1);
    /* a V that is not the right half never matches either */
    pair q;
    make_pair(&q, 32, UUID, NULL);
    assert_int_equal(agent_keys_ukey(ks, q.ukey, &e), 0);
    assert_int_equal(agent_keys_vkey(ks, p.vkey, &e), 0);    /* V of the other pair (already kept) */
    assert_false(agent_keys_have_k(ks));
    char hex[QPAY_HMAC_HEX + 1];
    assert_int_equal(agent_keys_verify(ks, "abc", hex, sizeof hex, &e), -1);
    assert_int_equal(e.code, 400);
    assert_string_equal(e.msg, "Bootstrap key not yet available.");
    free_pair(&p);
    free_pair(&q);
    agent_keys_free(ks);
}

static void expect_400(agent_keys *ks, bool ukey, cJSON *body, const char *needle)
{
    qerr e;
    memset(&e, 0, sizeof e);
    assert_int_equal(ukey ? agent_keys_ukey(ks, body, &e) : agent_keys_vkey(ks, body, &e), -1);
    assert_int_equal(e.code, 400);
    if (!strstr(e.msg, needle))
        fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static void test_bad_input(void **state)
{
    (void)state;
    agent_keys *ks = new_ks(NULL, 0);
    pair p;
    make_pair(&p, 32, UUID, "payload");
    expect_400(ks, true, NULL, "JSON object");
    cJSON *arr = cJSON_CreateArray();
    expect_400(ks, false, arr, "JSON object");
    cJSON_Delete(arr);

    cJSON *b = cJSON_Duplicate(p.ukey, 1);
    cJSON_ReplaceItemInObject(b, "encrypted_key", cJSON_CreateString("not*base64!"));
    expect_400(ks, true, b, "encrypted_key is not valid base64");
    cJSON_ReplaceItemInObject(b, "encrypted_key", cJSON_CreateString("AAAA"));
    expect_400(ks, true, b, "cannot be decrypted");
    cJSON_ReplaceItemInObject(b, "encrypted_key", cJSON_CreateNumber(5));
    expect_400(ks, true, b, "encrypted_key must be a string");
    cJSON_DeleteItemFromObject(b, "encrypted_key");
    expect_400(ks, true, b, "encrypted_key is required");
    cJSON_Delete(b);

    b = cJSON_Duplicate(p.ukey, 1);
    cJSON_ReplaceItemInObject(b, "auth_tag", cJSON_CreateString("xyz"));
    expect_400(ks, true, b, "auth_tag must be 96 hexadecimal");
    cJSON_ReplaceItemInObject(b, "auth_tag", cJSON_CreateString("abcd"));
    expect_400(ks, true, b, "auth_tag must be 96 hexadecimal");
    cJSON_DeleteItemFromObject(b, "auth_tag");
    expect_400(ks, true, b, "auth_tag is required");
    cJSON_Delete(b);

    b = cJSON_Duplicate(p.ukey, 1);
    cJSON_ReplaceItemInObject(b, "payload", cJSON_CreateString("a=b="));
    expect_400(ks, true, b, "payload is not valid base64");
    cJSON_ReplaceItemInObject(b, "payload", cJSON_CreateString("AAAAAAAA"));   /* 6 bytes */
    expect_400(ks, true, b, "too short");
    cJSON_ReplaceItemInObject(b, "payload", cJSON_CreateTrue());
    expect_400(ks, true, b, "payload must be a string");
    cJSON_Delete(b);

    b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "encrypted_key", "@@@@");
    expect_400(ks, false, b, "not valid base64");
    cJSON_Delete(b);
    assert_counts(ks, 0, 0);
    free_pair(&p);
    agent_keys_free(ks);
}

static void test_key_length(void **state)
{
    (void)state;
    agent_keys *ks = new_ks(NULL, 0);
    pair p;
    make_pair(&p, 32, UUID, NULL);
    uint8_t k24[24] = {1, 2, 3};
    cJSON *b = cJSON_Duplicate(p.ukey, 1);
    cJSON *v24 = body_key(k24, 24);
    cJSON_ReplaceItemInObject(b, "encrypted_key", cJSON_Duplicate(cJSON_GetObjectItem(v24, "encrypted_key"), 1));
    expect_400(ks, true, b, "has 24 bytes; it must be 16 or 32");
    expect_400(ks, false, v24, "has 24 bytes; it must be 16 or 32");
    cJSON *v0 = body_key(k24, 0);
    expect_400(ks, false, v0, "it must be 16 or 32");
    /* a U of 16 bytes and a V of 32 never combine */
    pair q;
    make_pair(&q, 16, UUID, NULL);
    qerr e;
    assert_int_equal(agent_keys_ukey(ks, q.ukey, &e), 0);
    assert_int_equal(agent_keys_vkey(ks, p.vkey, &e), 0);
    assert_false(agent_keys_have_k(ks));
    cJSON_Delete(b);
    cJSON_Delete(v24);
    cJSON_Delete(v0);
    free_pair(&p);
    free_pair(&q);
    agent_keys_free(ks);
}

static void test_payload_limit(void **state)
{
    (void)state;
    agent_keys *ks = new_ks(NULL, 100);      /* max_payload_size 100 characters of base64 */
    pair p;
    make_pair(&p, 32, UUID, "0123456789012345678901234567890123456789012345678901234567890123456789");
    expect_400(ks, true, p.ukey, "exceeds max_payload_size (100 bytes)");
    free_pair(&p);
    make_pair(&p, 32, UUID, "short enough");  /* 44 bytes sealed = 60 characters */
    qerr e;
    assert_int_equal(agent_keys_ukey(ks, p.ukey, &e), 0);
    free_pair(&p);
    agent_keys_free(ks);
}

/* Issue 11, item 6: AGENT_KEYS_MAX_U posts with random auth_tags cannot block a real delivery:
 * the oldest waiting U is evicted, never the new one refused. */
static void test_u_bound(void **state)
{
    (void)state;
    rec r;
    agent_keys *ks = new_ks(&r, 0);
    pair junk[AGENT_KEYS_MAX_U], real;
    qerr e;
    for (int i = 0; i < AGENT_KEYS_MAX_U; i++) {
        make_pair(&junk[i], 32, "someone-else", NULL);     /* a valid U, an auth_tag that never matches */
        assert_int_equal(agent_keys_ukey(ks, junk[i].ukey, &e), 0);
    }
    assert_counts(ks, AGENT_KEYS_MAX_U, 0);
    make_pair(&real, 32, UUID, "the real payload");
    assert_int_equal(agent_keys_ukey(ks, real.ukey, &e), 0);
    assert_counts(ks, AGENT_KEYS_MAX_U, 0);
    /* a resent U (same auth_tag) replaces its entry, nothing else goes */
    assert_int_equal(agent_keys_ukey(ks, junk[3].ukey, &e), 0);
    assert_counts(ks, AGENT_KEYS_MAX_U, 0);
    /* the verifier's V meets the real U: K and its payload */
    assert_int_equal(agent_keys_vkey(ks, real.vkey, &e), 0);
    assert_true(agent_keys_have_k(ks));
    assert_int_equal(r.calls, 1);
    assert_memory_equal(r.k, real.ks.k, 32);
    assert_true(r.had_payload);
    assert_verify_k(ks, real.ks.k, 32);
    assert_counts(ks, 1, 0);                  /* the resent junk entry is newer than the real U */
    /* the evicted junk U (entry 0) gets no K from its V */
    assert_int_equal(agent_keys_vkey(ks, junk[0].vkey, &e), 0);
    assert_int_equal(r.calls, 1);
    for (int i = 0; i < AGENT_KEYS_MAX_U; i++)
        free_pair(&junk[i]);
    free_pair(&real);
    agent_keys_free(ks);
}

static void test_v_bound(void **state)
{
    (void)state;
    agent_keys *ks = new_ks(NULL, 0);
    pair p[AGENT_KEYS_MAX_V + 1];
    qerr e;
    for (int i = 0; i <= AGENT_KEYS_MAX_V; i++) {
        make_pair(&p[i], 32, UUID, NULL);
        assert_int_equal(agent_keys_vkey(ks, p[i].vkey, &e), 0);
    }
    assert_counts(ks, 0, AGENT_KEYS_MAX_V);   /* the oldest V was dropped */
    assert_int_equal(agent_keys_vkey(ks, p[3].vkey, &e), 0);   /* a duplicate is not stored twice */
    assert_counts(ks, 0, AGENT_KEYS_MAX_V);
    assert_int_equal(agent_keys_ukey(ks, p[0].ukey, &e), 0);    /* its V is gone */
    assert_false(agent_keys_have_k(ks));
    assert_int_equal(agent_keys_ukey(ks, p[AGENT_KEYS_MAX_V].ukey, &e), 0);
    assert_true(agent_keys_have_k(ks));
    for (int i = 0; i <= AGENT_KEYS_MAX_V; i++)
        free_pair(&p[i]);
    agent_keys_free(ks);
}

static void test_verify(void **state)
{
    (void)state;
    agent_keys *ks = new_ks(NULL, 0);
    char hex[QPAY_HMAC_HEX + 1];
    qerr e;
    assert_int_equal(agent_keys_verify(ks, "abc123", hex, sizeof hex, &e), -1);
    assert_int_equal(e.code, 400);
    assert_string_equal(e.msg, "Bootstrap key not yet available.");
    pair p;
    make_pair(&p, 32, UUID, NULL);
    assert_int_equal(agent_keys_ukey(ks, p.ukey, &e), 0);
    assert_int_equal(agent_keys_vkey(ks, p.vkey, &e), 0);
    assert_int_equal(agent_keys_verify(ks, "", hex, sizeof hex, &e), -1);
    assert_int_equal(e.code, 400);
    assert_int_equal(agent_keys_verify(ks, NULL, hex, sizeof hex, &e), -1);
    assert_int_equal(agent_keys_verify(ks, "abc-def", hex, sizeof hex, &e), -1);
    assert_non_null(strstr(e.msg, "alphanumeric"));
    char longc[AGENT_KEYS_CHALLENGE_MAX + 2];
    memset(longc, 'a', sizeof longc - 1);
    longc[sizeof longc - 1] = '\0';
    assert_int_equal(agent_keys_verify(ks, longc, hex, sizeof hex, &e), -1);
    assert_non_null(strstr(e.msg, "too long"));
    longc[AGENT_KEYS_CHALLENGE_MAX] = '\0';
    assert_int_equal(agent_keys_verify(ks, longc, hex, sizeof hex, &e), 0);
    assert_int_equal(agent_keys_verify(ks, "abc", hex, 50, &e), -1);
    assert_verify_k(ks, p.ks.k, 32);
    free_pair(&p);
    agent_keys_free(ks);
}

/* -c update: a second (U, V) pair with a new payload; the newest matching pair wins. */
static void test_update(void **state)
{
    (void)state;
    rec r;
    agent_keys *ks = new_ks(&r, 0);
    pair p1, p2, p3;
    make_pair(&p1, 32, UUID, "first payload");
    make_pair(&p2, 32, UUID, "second payload");
    make_pair(&p3, 32, UUID, "third payload");
    qerr e;
    assert_int_equal(agent_keys_ukey(ks, p1.ukey, &e), 0);
    assert_int_equal(agent_keys_vkey(ks, p1.vkey, &e), 0);
    assert_int_equal(r.calls, 1);
    assert_memory_equal(r.plain, "first payload", 13);
    /* update: delete + add posts U2, then the verifier sends V2 */
    assert_int_equal(agent_keys_ukey(ks, p2.ukey, &e), 0);
    assert_verify_k(ks, p1.ks.k, 32);        /* K1 until V2 arrives */
    assert_int_equal(agent_keys_vkey(ks, p2.vkey, &e), 0);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.plain_len, 14);
    assert_memory_equal(r.plain, "second payload", 14);
    assert_verify_k(ks, p2.ks.k, 32);
    /* U2 again (a stale resend) and U3 wait; V3 matches the newest: U2 is dropped as older */
    assert_int_equal(agent_keys_ukey(ks, p2.ukey, &e), 0);
    assert_int_equal(agent_keys_ukey(ks, p3.ukey, &e), 0);
    assert_int_equal(agent_keys_vkey(ks, p3.vkey, &e), 0);
    assert_int_equal(r.calls, 3);
    assert_memory_equal(r.plain, "third payload", 13);
    assert_counts(ks, 0, 0);
    /* a late V2 changes nothing: K stays K3 */
    assert_int_equal(agent_keys_vkey(ks, p2.vkey, &e), 0);
    assert_int_equal(r.calls, 3);
    assert_verify_k(ks, p3.ks.k, 32);
    free_pair(&p1);
    free_pair(&p2);
    free_pair(&p3);
    agent_keys_free(ks);
}

typedef struct th_arg {
    agent_keys *ks;
    pair *p;
    int rc;
} th_arg;

static void *th_main(void *a)
{
    th_arg *t = a;
    qerr e;
    t->rc = agent_keys_ukey(t->ks, t->p->ukey, &e) | agent_keys_vkey(t->ks, t->p->vkey, &e);
    char hex[QPAY_HMAC_HEX + 1];
    t->rc |= agent_keys_verify(t->ks, "abc", hex, sizeof hex, &e);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    rec r;
    agent_keys *ks = new_ks(&r, 0);
    enum { N = 4 };
    pair p[N];
    th_arg a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        make_pair(&p[i], 32, UUID, "threaded");
        a[i] = (th_arg){ks, &p[i], -1};
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, th_main, &a[i]), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].rc, 0);
    }
    assert_true(agent_keys_have_k(ks));
    assert_true(r.calls >= 1 && r.calls <= N);
    assert_int_equal(r.plain_len, 8);
    for (int i = 0; i < N; i++)
        free_pair(&p[i]);
    agent_keys_free(ks);
}

static void test_new_args(void **state)
{
    (void)state;
    qerr e;
    assert_null(agent_keys_new(&g_pk, "", 0, &e));
    assert_null(agent_keys_new(NULL, UUID, 0, &e));
    agent_payload_key none = {0};
    assert_null(agent_keys_new(&none, UUID, 0, &e));
    agent_keys_free(NULL);
    /* the payload runner's hook fits the keys hook type */
    agent_keys_hook_fn f = agent_payload_on_key;
    assert_non_null(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ukey_then_vkey),
        cmocka_unit_test(test_vkey_then_ukey),
        cmocka_unit_test(test_key16),
        cmocka_unit_test(test_wrong_auth_tag),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_key_length),
        cmocka_unit_test(test_payload_limit),
        cmocka_unit_test(test_u_bound),
        cmocka_unit_test(test_v_bound),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_new_args),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
