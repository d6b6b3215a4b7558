/* Unit tests of the ima-emulator's per-line extend values (agent/ima_emulator.c); the emulator
 * against a TPM is tested in test_tpm.c and tests/integration/test_tpm.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/ima_emulator.h"
#include "hex.h"
#include "ima_entry.h"

static uint8_t *g_scratch, *g_tdata;
static EVP_MD_CTX *g_ctx;

static int setup(void **state)
{
    (void)state;
    g_scratch = malloc(QIMA_SCRATCH_SIZE);
    g_tdata = malloc(QIMA_SCRATCH_SIZE);
    g_ctx = EVP_MD_CTX_new();
    return g_scratch && g_tdata && g_ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(g_scratch);
    free(g_tdata);
    EVP_MD_CTX_free(g_ctx);
    return 0;
}

static void md(const char *name, const void *p, size_t n, uint8_t *out)
{
    unsigned int len;
    assert_int_equal(EVP_Digest(p, n, out, &len, EVP_get_digestbyname(name), NULL), 1);
}

/* Template data of an ima-ng entry "sha256:<digest of name>" for name; returns its length. */
static size_t ng_data(const char *name, uint8_t *td, uint8_t *fd)
{
    md("sha256", name, strlen(name), fd);
    size_t nl = strlen(name) + 1;
    td[0] = 40; td[1] = td[2] = td[3] = 0;
    memcpy(td + 4, "sha256:", 8);
    memcpy(td + 12, fd, 32);
    td[44] = (uint8_t)nl; td[45] = td[46] = td[47] = 0;
    memcpy(td + 48, name, nl);
    return 48 + nl;
}

static void make_line(char *out, size_t cap, const char *name, const uint8_t *th)
{
    uint8_t td[600], fd[32];
    ng_data(name, td, fd);
    char thh[41], fdh[65];
    qhex_encode(th, 20, thh);
    qhex_encode(fd, 32, fdh);
    snprintf(out, cap, "10 %s ima-ng sha256:%s %s", thh, fdh, name);
}

static int digests(const char *line, uint32_t banks, qtpm_digests *d, bool *mismatch, qerr *e)
{
    return agent_imaemu_line_digests(line, strlen(line), banks, QHASH_SHA1, g_ctx, g_scratch, g_tdata, d,
                                     mismatch, e);
}

static void test_per_bank_values(void **state)
{
    (void)state;
    const char *name = "/usr/bin/bash";
    uint8_t td[600], fd[32], th1[20], th256[32], th512[64];
    size_t n = ng_data(name, td, fd);
    md("sha1", td, n, th1);
    md("sha256", td, n, th256);
    md("sha512", td, n, th512);
    char line[400];
    make_line(line, sizeof(line), name, th1);
    qtpm_digests d;
    bool mismatch = true;
    qerr e = { 0 };
    uint32_t banks = 1u << QHASH_SHA1 | 1u << QHASH_SHA256 | 1u << QHASH_SHA512;
    assert_int_equal(digests(line, banks, &d, &mismatch, &e), 1);
    assert_false(mismatch);
    assert_int_equal(d.count, 3);
    assert_int_equal(d.alg[0], QHASH_SHA1);
    assert_int_equal(d.alg[1], QHASH_SHA256);
    assert_int_equal(d.alg[2], QHASH_SHA512);
    assert_memory_equal(d.value[0], th1, 20);
    assert_memory_equal(d.value[1], th256, 32);
    assert_memory_equal(d.value[2], th512, 64);
}

static void test_violation_and_mismatch(void **state)
{
    (void)state;
    uint8_t zero[20] = { 0 }, wrong[20];
    memset(wrong, 0x11, sizeof(wrong));
    char line[400];
    qtpm_digests d;
    bool mismatch;
    qerr e = { 0 };
    uint32_t banks = 1u << QHASH_SHA1 | 1u << QHASH_SHA256;

    make_line(line, sizeof(line), "/etc/passwd", zero);          /* violation: all ones */
    assert_int_equal(digests(line, banks, &d, &mismatch, &e), 1);
    assert_false(mismatch);
    uint8_t ff[32];
    memset(ff, 0xff, sizeof(ff));
    assert_memory_equal(d.value[0], ff, 20);
    assert_memory_equal(d.value[1], ff, 32);

    make_line(line, sizeof(line), "/etc/passwd", wrong);         /* wrong column: recomputed value */
    assert_int_equal(digests(line, banks, &d, &mismatch, &e), 1);
    assert_true(mismatch);
    uint8_t td[600], fd[32], th1[20];
    size_t n = ng_data("/etc/passwd", td, fd);
    md("sha1", td, n, th1);
    assert_memory_equal(d.value[0], th1, 20);
}

static void test_skipped_lines(void **state)
{
    (void)state;
    qtpm_digests d;
    bool mismatch;
    qerr e = { 0 };
    assert_int_equal(digests("", 1u << QHASH_SHA1, &d, &mismatch, &e), 0);
    assert_int_equal(digests("10 garbage", 1u << QHASH_SHA1, &d, &mismatch, &e), 0);
    assert_true(strlen(e.msg) > 0);
    assert_int_equal(digests("10 zz ima-ng sha1:00 /x", 1u << QHASH_SHA1, &d, &mismatch, &e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_bank_values),
        cmocka_unit_test(test_violation_and_mismatch),
        cmocka_unit_test(test_skipped_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
