/* test_ima_entry.c — IMA ASCII line parser and template-data rebuild (keylime-formats §1.1/1.2). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ima_entry.h"
#include "hex.h"

#define TH  "0123456789abcdef0123456789abcdef01234567"            /* 20-byte template hash */
#define D1  "aabbccddeeff00112233445566778899aabbccdd"            /* 20-byte digest */
#define D2  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" /* 32 bytes */

static uint8_t *scratch;

static int setup(void **state)
{
    (void)state;
    scratch = malloc(QIMA_SCRATCH_SIZE);
    return scratch ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(scratch);
    return 0;
}

static int parse(const char *line, qima_entry *e, qerr *err)
{
    return qima_parse_line(line, strlen(line), e, scratch, err);
}

static void parse_ok(const char *line, qima_entry *e)
{
    qerr err = { 0 };
    int rc = parse(line, e, &err);
    if (rc != 0)
        fail_msg("unexpected parse error for '%s': %s", line, err.msg);
}

/* Expect a parse error whose message contains `want`. */
static void parse_bad(const char *line, const char *want)
{
    qima_entry e;
    qerr err = { 0 };
    int rc = parse(line, &e, &err);
    if (rc == 0)
        fail_msg("line parsed but should not: '%s'", line);
    if (want && !strstr(err.msg, want))
        fail_msg("error for '%s' is '%s', expected it to contain '%s'", line, err.msg, want);
}

static void assert_name(const qima_entry *e, const char *want)
{
    assert_int_equal(e->name_len, strlen(want));
    assert_memory_equal(e->name, want, e->name_len);
}

static void test_ima_ng(void **state)
{
    (void)state;
    qima_entry e;
    parse_ok("10 " TH " ima-ng sha256:" D2 " /usr/bin/bash", &e);
    assert_int_equal(e.tmpl, QIMA_TMPL_NG);
    assert_int_equal(e.pcr_len, 2);
    assert_memory_equal(e.pcr, "10", 2);
    assert_int_equal(e.template_hash_len, 20);
    assert_int_equal(e.template_hash[0], 0x01);
    assert_int_equal(e.template_hash[19], 0x67);
    assert_string_equal(e.digest_alg, "sha256");
    assert_int_equal(e.digest_len, 32);
    assert_int_equal(e.digest[31], 0xff);
    assert_name(&e, "/usr/bin/bash");
    assert_int_equal(e.sig_len, 0);
    assert_false(e.sig_invalid);
    assert_int_equal(e.buf_len, 0);
    assert_string_equal(qima_template_name(e.tmpl), "ima-ng");

    /* Upper-case hex is fine; the name keeps trailing and inner spaces (rest split once). */
    parse_ok("10 " TH " ima-ng SHA1:AABBCCDDEEFF00112233445566778899AABBCCDD /a b ", &e);
    assert_string_equal(e.digest_alg, "SHA1");
    assert_int_equal(e.digest[0], 0xaa);
    assert_name(&e, "/a b ");
    /* Empty name after the single split. */
    parse_ok("10 " TH " ima-ng sha1:" D1 " ", &e);
    assert_int_equal(e.name_len, 0);
    /* The PCR column is kept as written, whatever it is. */
    parse_ok("11 " TH " ima-ng sha1:" D1 " /x", &e);
    assert_memory_equal(e.pcr, "11", 2);
    /* An empty template-hash column decodes to 0 bytes (then fails the hash check). */
    parse_ok("10  ima-ng sha1:" D1 " /x", &e);
    assert_int_equal(e.template_hash_len, 0);
    assert_false(qima_is_violation(&e));
}

static void test_ima_legacy(void **state)
{
    (void)state;
    qima_entry e;
    /* Bare 20-byte digest → sha1; the name may contain spaces. */
    parse_ok("10 " TH " ima " D1 " /boot/my file", &e);
    assert_int_equal(e.tmpl, QIMA_TMPL_IMA);
    assert_string_equal(e.digest_alg, "sha1");
    assert_int_equal(e.digest_len, 20);
    assert_name(&e, "/boot/my file");
    /* Bare 16-byte digest → md5. */
    parse_ok("10 " TH " ima 00112233445566778899aabbccddeeff boot_aggregate", &e);
    assert_string_equal(e.digest_alg, "md5");
    assert_int_equal(e.digest_len, 16);
    assert_string_equal(qima_template_name(QIMA_TMPL_IMA), "ima");
}

static void test_ima_sig(void **state)
{
    (void)state;
    qima_entry e;
    /* No signature: the kernel prints a trailing space → sig "" → no signature, not invalid. */
    parse_ok("10 " TH " ima-sig sha256:" D2 " /usr/bin/ls ", &e);
    assert_int_equal(e.tmpl, QIMA_TMPL_SIG);
    assert_name(&e, "/usr/bin/ls");
    assert_int_equal(e.sig_len, 0);
    assert_false(e.sig_invalid);
    /* A well-formed signature_v2 header: 9 + sig_size == length. */
    parse_ok("10 " TH " ima-sig sha256:" D2 " /usr/bin/ls 030204aabbccdd0003010203", &e);
    assert_int_equal(e.sig_len, 12);
    assert_false(e.sig_invalid);
    assert_int_equal(e.sig[0], 0x03);
    assert_int_equal(e.sig[11], 0x03);
    /* Malformed signatures silently become "no signature". */
    static const char *bad[] = {
        "030204aabbccdd0004010203",   /* sig_size says 4, only 3 follow */
        "030204aabbccdd00",           /* shorter than the header */
        "zz0204aabbccdd0003010203",   /* not hex */
        "030204aabbccdd000301020",    /* odd length */
        "030204aabbccdd0003010203 extra", /* the 3rd token is everything after the 2nd space */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[512];
        snprintf(line, sizeof line, "10 " TH " ima-sig sha256:" D2 " /usr/bin/ls %s", bad[i]);
        parse_ok(line, &e);
        assert_int_equal(e.sig_len, 0);
        assert_null(e.sig);
        assert_true(e.sig_invalid);
    }
}

static void test_ima_buf(void **state)
{
    (void)state;
    qima_entry e;
    parse_ok("10 " TH " ima-buf sha256:" D2 " kexec-cmdline 726f6f743d2f", &e);
    assert_int_equal(e.tmpl, QIMA_TMPL_BUF);
    assert_name(&e, "kexec-cmdline");
    assert_int_equal(e.buf_len, 6);
    assert_memory_equal(e.buf, "root=/", 6);
    /* An empty buffer is valid hex (0 bytes). */
    parse_ok("10 " TH " ima-buf sha256:" D2 " empty ", &e);
    assert_int_equal(e.buf_len, 0);
}

static void test_digest_rules(void **state)
{
    (void)state;
    qima_entry e;
    /* The digest length is not checked against the algorithm name. */
    parse_ok("10 " TH " ima-ng sha256:" D1 " /x", &e);
    assert_string_equal(e.digest_alg, "sha256");
    assert_int_equal(e.digest_len, 20);
    /* An unknown algorithm name is kept as written. */
    parse_ok("10 " TH " ima-ng foo:" D1 " /x", &e);
    assert_string_equal(e.digest_alg, "foo");
    /* A bare digest in ima-ng gets the inferred algorithm as well. */
    parse_ok("10 " TH " ima-ng " D1 " /x", &e);
    assert_string_equal(e.digest_alg, "sha1");
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_bad("", "fields");
    parse_bad("10", "fields");
    parse_bad("10 " TH, "fields");
    parse_bad("10 " TH " ima-ng", "fields");              /* 3 tokens */
    parse_bad("10 " TH " ima-ng sha1:" D1, "few fields");  /* rest has 1 token */
    parse_bad("10 xyz ima-ng sha1:" D1 " /x", "template hash");
    parse_bad("10 012 ima-ng sha1:" D1 " /x", "template hash");          /* odd length */
    parse_bad("10 " TH " ima-modsig sha1:" D1 " /x", "No parser for mode ima-modsig implemented.");
    parse_bad("10 " TH " evm-sig sha1:" D1 " /x", "No parser for mode evm-sig");
    parse_bad("10 " TH " IMA-NG sha1:" D1 " /x", "No parser");
    parse_bad("10 " TH " ima-ng sha1:zz" D1 " /x", "hex");
    parse_bad("10 " TH " ima-ng sha1:" D1 "0 /x", "hex");                /* odd digest */
    parse_bad("10 " TH " ima-ng sha1:ab:" D1 " /x", "':'");
    parse_bad("10 " TH " ima-ng " D2 " /x", "neither 20");               /* bare 32 bytes */
    parse_bad("10 " TH " ima-ng abcd /x", "neither 20");
    parse_bad("10 " TH " ima " D2 " /x", "neither 20");
    parse_bad("10 " TH " ima-sig sha256:" D2 " /usr/bin/ls", "few fields"); /* no trailing space */
    parse_bad("10 " TH " ima-buf sha256:" D2 " name", "few fields");
    parse_bad("10 " TH " ima-buf sha256:" D2 " name 0g", "not valid hex");
    parse_bad("10 " TH " ima-buf sha256:" D2 " name abc", "not valid hex");
    parse_bad("10 " TH " ima-ng sha1:" D1 " /x\r", "CRLF line ending");
    parse_bad("\r", "CRLF line ending");
    /* Double spaces make empty tokens, as Python's split(' ') does. */
    parse_bad("10 " TH "  ima-ng sha1:" D1 " /x", "No parser for mode  implemented.");
}

static void test_bounds(void **state)
{
    (void)state;
    size_t cap = QIMA_MAX_LINE + 200;
    char *line = malloc(cap + 1);
    assert_non_null(line);
    qima_entry e;
    qerr err;

    /* Overlong line. */
    int n = snprintf(line, cap, "10 " TH " ima-ng sha1:" D1 " /");
    memset(line + n, 'a', cap - (size_t)n);
    line[cap] = '\0';
    assert_int_equal(qima_parse_line(line, QIMA_MAX_LINE + 1, &e, scratch, &err), -1);
    assert_non_null(strstr(err.msg, "line longer"));

    /* Name of exactly QIMA_MAX_NAME bytes is fine, one more is not. */
    size_t pre = (size_t)n - 1;
    assert_int_equal(qima_parse_line(line, pre + QIMA_MAX_NAME, &e, scratch, &err), 0);
    assert_int_equal(e.name_len, QIMA_MAX_NAME);
    assert_int_equal(qima_parse_line(line, pre + QIMA_MAX_NAME + 1, &e, scratch, &err), -1);
    assert_non_null(strstr(err.msg, "file name longer"));

    /* Legacy ima template: names up to 255 bytes (the 256-byte name field). */
    n = snprintf(line, cap, "10 " TH " ima " D1 " ");
    memset(line + n, 'b', 300);
    assert_int_equal(qima_parse_line(line, (size_t)n + 255, &e, scratch, &err), 0);
    assert_int_equal(qima_parse_line(line, (size_t)n + 256, &e, scratch, &err), -1);

    /* Algorithm name up to QIMA_MAX_ALG bytes. */
    char alg[QIMA_MAX_ALG + 2];
    memset(alg, 'x', sizeof alg);
    alg[QIMA_MAX_ALG] = '\0';
    snprintf(line, cap, "10 " TH " ima-ng %s:" D1 " /x", alg);
    assert_int_equal(parse(line, &e, &err), 0);
    alg[QIMA_MAX_ALG] = 'x';
    alg[QIMA_MAX_ALG + 1] = '\0';
    snprintf(line, cap, "10 " TH " ima-ng %s:" D1 " /x", alg);
    assert_int_equal(parse(line, &e, &err), -1);

    /* Digest and template hash up to 64 bytes. */
    snprintf(line, cap, "10 " TH " ima-ng sha512:" D2 D2 " /x");
    assert_int_equal(parse(line, &e, &err), 0);
    assert_int_equal(e.digest_len, 64);
    snprintf(line, cap, "10 " TH " ima-ng sha512:" D2 D2 "00 /x");
    assert_int_equal(parse(line, &e, &err), -1);
    snprintf(line, cap, "10 " D2 D2 " ima-ng sha1:" D1 " /x");
    assert_int_equal(parse(line, &e, &err), 0);
    assert_int_equal(e.template_hash_len, 64);
    snprintf(line, cap, "10 " D2 D2 "00 ima-ng sha1:" D1 " /x");
    assert_int_equal(parse(line, &e, &err), -1);

    /* A buffer that fills the line still decodes into the scratch. */
    n = snprintf(line, cap, "10 " TH " ima-buf sha256:" D2 " big ");
    size_t hexlen = (size_t)(QIMA_MAX_LINE - n) & ~(size_t)1;
    memset(line + n, 'a', hexlen);
    assert_int_equal(qima_parse_line(line, (size_t)n + hexlen, &e, scratch, &err), 0);
    assert_int_equal(e.buf_len, hexlen / 2);
    free(line);
}

static long tdata(const char *line, uint8_t *out, size_t cap)
{
    qima_entry e;
    parse_ok(line, &e);
    return qima_template_data(&e, out, cap);
}

static void test_template_data(void **state)
{
    (void)state;
    uint8_t out[1024];
    uint8_t want[1024];
    uint8_t d1[20];
    assert_int_equal(qhex_decode(D1, 40, d1, sizeof d1), 20);

    /* ima-ng, sha1: d-ng prefix 1a000000 73686131 3a 00, digest; n-ng 07000000 "/bin/x" 00. */
    long n = tdata("10 " TH " ima-ng sha1:" D1 " /bin/x", out, sizeof out);
    static const uint8_t prefix[] = { 0x1a, 0, 0, 0, 's', 'h', 'a', '1', ':', 0 };
    memcpy(want, prefix, sizeof prefix);
    memcpy(want + 10, d1, 20);
    static const uint8_t nng[] = { 0x07, 0, 0, 0, '/', 'b', 'i', 'n', '/', 'x', 0 };
    memcpy(want + 30, nng, sizeof nng);
    assert_int_equal(n, 41);
    assert_memory_equal(out, want, 41);

    /* A bare digest gets the inferred "sha1:" prefix too. */
    assert_int_equal(tdata("10 " TH " ima-ng " D1 " /bin/x", out, sizeof out), 41);
    assert_memory_equal(out, want, 41);

    /* ima-sig without signature: + 00000000; with one: u32le(len) sig. */
    n = tdata("10 " TH " ima-sig sha1:" D1 " /bin/x ", out, sizeof out);
    assert_int_equal(n, 45);
    assert_memory_equal(out, want, 41);
    static const uint8_t zero4[4] = { 0 };
    assert_memory_equal(out + 41, zero4, 4);
    n = tdata("10 " TH " ima-sig sha1:" D1 " /bin/x 030204aabbccdd0003010203", out, sizeof out);
    assert_int_equal(n, 57);
    static const uint8_t sigf[] = { 12, 0, 0, 0, 3, 2, 4, 0xaa, 0xbb, 0xcc, 0xdd, 0, 3, 1, 2, 3 };
    assert_memory_equal(out + 41, sigf, sizeof sigf);
    /* A malformed signature is rebuilt as an empty field. */
    n = tdata("10 " TH " ima-sig sha1:" D1 " /bin/x 03", out, sizeof out);
    assert_int_equal(n, 45);
    assert_memory_equal(out + 41, zero4, 4);

    /* ima-buf: + u32le(len) buf. */
    n = tdata("10 " TH " ima-buf sha1:" D1 " /bin/x 616263", out, sizeof out);
    static const uint8_t buff[] = { 3, 0, 0, 0, 'a', 'b', 'c' };
    assert_int_equal(n, 48);
    assert_memory_equal(out, want, 41);
    assert_memory_equal(out + 41, buff, sizeof buff);

    /* sha256 d-ng: u32le(6 + 2 + 32) = 0x28. */
    n = tdata("10 " TH " ima-ng sha256:" D2 " /", out, sizeof out);
    assert_int_equal(n, 4 + 8 + 32 + 4 + 2);
    static const uint8_t p256[] = { 0x28, 0, 0, 0, 's', 'h', 'a', '2', '5', '6', ':', 0, 0x00, 0x11 };
    assert_memory_equal(out, p256, sizeof p256);

    /* Legacy ima: raw digest + 256-byte name field (name, NUL, zero padding) = 276 bytes. */
    n = tdata("10 " TH " ima " D1 " /bin/x", out, sizeof out);
    assert_int_equal(n, 276);
    assert_memory_equal(out, d1, 20);
    assert_memory_equal(out + 20, "/bin/x", 6);
    for (int i = 26; i < 276; i++)
        assert_int_equal(out[i], 0);
    /* md5 in ima: 16 + 256. */
    assert_int_equal(tdata("10 " TH " ima 00112233445566778899aabbccddeeff x", out, sizeof out), 272);

    /* Too small an output buffer. */
    assert_int_equal(tdata("10 " TH " ima-ng sha1:" D1 " /bin/x", out, 40), -1);
    assert_int_equal(tdata("10 " TH " ima " D1 " /bin/x", out, 275), -1);
}

static void test_violation(void **state)
{
    (void)state;
    qima_entry e;
    parse_ok("10 0000000000000000000000000000000000000000 ima-ng sha1:" D1 " /x", &e);
    assert_true(qima_is_violation(&e));
    parse_ok("10 0000000000000000000000000000000000000001 ima-ng sha1:" D1 " /x", &e);
    assert_false(qima_is_violation(&e));
    parse_ok("10 " TH " ima-ng sha1:" D1 " /x", &e);
    assert_false(qima_is_violation(&e));
    assert_false(qima_is_violation(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ima_ng),
        cmocka_unit_test(test_ima_legacy),
        cmocka_unit_test(test_ima_sig),
        cmocka_unit_test(test_ima_buf),
        cmocka_unit_test(test_digest_rules),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_template_data),
        cmocka_unit_test(test_violation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
