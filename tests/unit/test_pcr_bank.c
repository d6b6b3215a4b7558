/* test_pcr_bank.c — hash algorithm table, one-shot digests and PCR extend. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "pcr_bank.h"
#include "hex.h"

static void hexcheck(const uint8_t *got, size_t n, const char *want)
{
    char buf[2 * QHASH_MAX_SIZE + 1];
    qhex_encode(got, n, buf);
    assert_string_equal(buf, want);
}

static void test_names_sizes_ids(void **state)
{
    (void)state;
    static const char *names[] = { "sha1", "sha256", "sha384", "sha512" };
    static const size_t sizes[] = { 20, 32, 48, 64 };
    static const uint16_t ids[] = { 0x0004, 0x000B, 0x000C, 0x000D };
    for (int i = 0; i < QHASH_COUNT; i++) {
        qhash_alg a = QHASH_NONE;
        assert_string_equal(qhash_name((qhash_alg)i), names[i]);
        assert_int_equal(qhash_size((qhash_alg)i), sizes[i]);
        assert_int_equal(qhash_from_name(names[i], &a), 0);
        assert_int_equal(a, i);
        a = QHASH_NONE;
        assert_int_equal(qhash_from_size(sizes[i], &a), 0);
        assert_int_equal(a, i);
        assert_int_equal(qhash_tpm_id((qhash_alg)i), ids[i]);
        a = QHASH_NONE;
        assert_int_equal(qhash_from_tpm_id(ids[i], &a), 0);
        assert_int_equal(a, i);
        assert_non_null(qhash_md((qhash_alg)i));
    }
    qhash_alg a;
    assert_int_equal(qhash_from_name("SHA256", &a), -1);   /* exact lower-case only */
    assert_int_equal(qhash_from_name("sm3_256", &a), -1);
    assert_int_equal(qhash_from_name("", &a), -1);
    assert_int_equal(qhash_from_name(NULL, &a), -1);
    assert_int_equal(qhash_from_size(16, &a), -1);
    assert_int_equal(qhash_from_tpm_id(0x0012, &a), -1);
    assert_int_equal(qhash_size(QHASH_NONE), 0);
    assert_null(qhash_md(QHASH_NONE));
    assert_null(qhash_md(QHASH_COUNT));
}

static void test_digest_vectors(void **state)
{
    (void)state;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t out[QHASH_MAX_SIZE];
    assert_int_equal(qhash_digest(ctx, QHASH_SHA1, "abc", 3, out), 0);
    hexcheck(out, 20, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_int_equal(qhash_digest(ctx, QHASH_SHA256, "abc", 3, out), 0);
    hexcheck(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(qhash_digest(ctx, QHASH_SHA384, "abc", 3, out), 0);
    hexcheck(out, 48, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
                      "8086072ba1e7cc2358baeca134c825a7");
    assert_int_equal(qhash_digest(ctx, QHASH_SHA512, "abc", 3, out), 0);
    hexcheck(out, 64, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    /* The same ctx reused across algorithms, and the empty input. */
    assert_int_equal(qhash_digest(ctx, QHASH_SHA1, NULL, 0, out), 0);
    hexcheck(out, 20, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_int_equal(qhash_digest(ctx, QHASH_NONE, "abc", 3, out), -1);
    assert_int_equal(qhash_digest(NULL, QHASH_SHA1, "abc", 3, out), -1);
    EVP_MD_CTX_free(ctx);
}

/* Independent reference: H(old || d) with a one-shot EVP_Digest. */
static void ref_extend(const char *alg, uint8_t *pcr, size_t n, const uint8_t *d)
{
    uint8_t in[2 * QHASH_MAX_SIZE];
    unsigned int ol = 0;
    memcpy(in, pcr, n);
    memcpy(in + n, d, n);
    EVP_MD *md = EVP_MD_fetch(NULL, alg, NULL);
    assert_non_null(md);
    assert_int_equal(EVP_Digest(in, 2 * n, pcr, &ol, md, NULL), 1);
    assert_int_equal(ol, n);
    EVP_MD_free(md);
}

static void test_extend(void **state)
{
    (void)state;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    for (int a = 0; a < QHASH_COUNT; a++) {
        size_t n = qhash_size((qhash_alg)a);
        qpcr p;
        qpcr_init(&p, (qhash_alg)a);
        uint8_t zero[QHASH_MAX_SIZE] = { 0 }, ref[QHASH_MAX_SIZE] = { 0 }, d[QHASH_MAX_SIZE], ff[QHASH_MAX_SIZE];
        assert_int_equal(p.alg, a);
        assert_true(qpcr_equals(&p, zero, n));
        assert_false(qpcr_equals(&p, zero, n - 1));
        assert_false(qpcr_equals(&p, NULL, n));
        for (size_t i = 0; i < n; i++)
            d[i] = (uint8_t)(i * 7 + 1);
        memset(ff, 0xff, sizeof ff);
        assert_int_equal(qpcr_extend(&p, ctx, d), 0);
        ref_extend(qhash_name((qhash_alg)a), ref, n, d);
        assert_true(qpcr_equals(&p, ref, n));
        assert_int_equal(qpcr_extend_ff(&p, ctx), 0);
        ref_extend(qhash_name((qhash_alg)a), ref, n, ff);
        assert_true(qpcr_equals(&p, ref, n));
        assert_false(qpcr_equals(&p, zero, n));
    }
    /* sha1 bank: zeros extended with zeros, a well-known value. */
    qpcr p;
    uint8_t z[20] = { 0 };
    qpcr_init(&p, QHASH_SHA1);
    assert_int_equal(qpcr_extend(&p, ctx, z), 0);
    hexcheck(p.value, 20, "b80de5d138758541c5f05265ad144ab9fa86d1db");
    EVP_MD_CTX_free(ctx);
}

static void *fetch_all(void *arg)
{
    const EVP_MD **out = arg;
    for (int i = 0; i < QHASH_COUNT; i++)
        out[i] = qhash_md((qhash_alg)i);
    return NULL;
}

static void test_md_threads(void **state)
{
    (void)state;
    enum { T = 8 };
    pthread_t th[T];
    const EVP_MD *got[T][QHASH_COUNT];
    for (int i = 0; i < T; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fetch_all, got[i]), 0);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    for (int a = 0; a < QHASH_COUNT; a++) {
        assert_non_null(got[0][a]);
        for (int i = 1; i < T; i++)
            assert_ptr_equal(got[i][a], got[0][a]);
        assert_ptr_equal(qhash_md((qhash_alg)a), got[0][a]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_sizes_ids),
        cmocka_unit_test(test_digest_vectors),
        cmocka_unit_test(test_extend),
        cmocka_unit_test(test_md_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
