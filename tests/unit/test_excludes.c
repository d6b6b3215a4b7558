/* Unit tests for common/excludes.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "excludes.h"

static bool m(const qexcludes *x, qexcludes_md *md, const char *name)
{
    return qexcludes_match(x, md, name, strlen(name));
}

static qexcludes *parse_ok(const char *text)
{
    qerr e = { 0 };
    qexcludes *x = qexcludes_parse(text, strlen(text), "ex.txt", &e);
    if (!x)
        fail_msg("parse failed: %s", e.msg);
    return x;
}

static void test_anchored_start_not_end(void **state)
{
    (void)state;
    qexcludes *x = parse_ok("/usr/bin/dd\n");
    qexcludes_md *md = qexcludes_md_new();
    assert_non_null(md);
    assert_true(m(x, md, "/usr/bin/dd"));
    assert_true(m(x, md, "/usr/bin/dd2"));          /* prefix semantics, as Keylime's re.match */
    assert_false(m(x, md, "/x/usr/bin/dd"));        /* anchored at the start */
    assert_false(m(x, md, "/usr/bin/d"));
    qexcludes_md_free(md);
    qexcludes_free(x);
}

static void test_dollar_exact(void **state)
{
    (void)state;
    qexcludes *x = parse_ok("/usr/bin/dd$\n");
    qexcludes_md *md = qexcludes_md_new();
    assert_true(m(x, md, "/usr/bin/dd"));
    assert_false(m(x, md, "/usr/bin/dd2"));
    assert_true(m(x, md, "/usr/bin/dd\n"));         /* '$' also matches before a final newline */
    qexcludes_md_free(md);
    qexcludes_free(x);
}

static void test_wildcards_and_alternation(void **state)
{
    (void)state;
    qexcludes *x = parse_ok("/tmp/.*\n/var/log/\nboot_aggregate\n");
    qexcludes_md *md = qexcludes_md_new();
    assert_int_equal(qexcludes_count(x), 3);
    assert_true(m(x, md, "/tmp/foo"));
    assert_true(m(x, md, "/tmp/"));
    assert_false(m(x, md, "/tmpx"));
    assert_true(m(x, md, "/var/log/syslog"));
    assert_true(m(x, md, "boot_aggregate"));
    assert_false(m(x, md, "/usr/bin/ls"));
    assert_false(m(x, md, ""));
    /* no match data: still works (allocates a temporary) */
    assert_true(qexcludes_match(x, NULL, "/tmp/a", 6));
    qexcludes_md_free(md);
    qexcludes_free(x);
}

static void test_comments_blank_strip(void **state)
{
    (void)state;
    qexcludes *x = parse_ok("# a comment\n\n   \n  /opt/a  \r\n\t#indented comment\n/opt/b\n");
    assert_int_equal(qexcludes_count(x), 2);
    assert_string_equal(qexcludes_pattern(x, 0), "/opt/a");
    assert_string_equal(qexcludes_pattern(x, 1), "/opt/b");
    assert_null(qexcludes_pattern(x, 2));
    qexcludes_md *md = qexcludes_md_new();
    assert_true(m(x, md, "/opt/a/x"));
    assert_false(m(x, md, "# a comment"));
    assert_false(m(x, md, " /opt/a"));
    qexcludes_md_free(md);
    qexcludes_free(x);
}

static void test_invalid_names_line(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *text = "# header\n/ok/.*\n\n/bad/(unclosed\n/fine\n";
    assert_null(qexcludes_parse(text, strlen(text), "ex.txt", &e));
    assert_non_null(strstr(e.msg, "ex.txt:4: invalid exclude regex '/bad/(unclosed': "));
    assert_non_null(strstr(e.msg, "missing closing parenthesis"));

    /* A pattern that only "works" when joined must still be rejected on its own. */
    const char *pats[] = { "/a", "x)|(y" };
    unsigned lines[] = { 7, 9 };
    assert_null(qexcludes_compile(pats, 2, lines, "policy", &e));
    assert_non_null(strstr(e.msg, "policy:9: invalid exclude regex 'x)|(y'"));
    /* Without line numbers the 1-based position is used. */
    assert_null(qexcludes_compile(pats, 2, NULL, "policy", &e));
    assert_non_null(strstr(e.msg, "policy:2: "));
}

static void test_no_excludes(void **state)
{
    (void)state;
    qexcludes *x = parse_ok("# only comments\n\n");
    assert_int_equal(qexcludes_count(x), 0);
    qexcludes_md *md = qexcludes_md_new();
    assert_false(m(x, md, "/anything"));
    assert_false(qexcludes_match(NULL, md, "/anything", 9));
    qexcludes_md_free(md);
    qexcludes_free(x);
    qexcludes *y = qexcludes_compile(NULL, 0, NULL, NULL, NULL);
    assert_non_null(y);
    assert_int_equal(qexcludes_count(y), 0);
    qexcludes_free(y);
    qexcludes_free(NULL);
    qexcludes_md_free(NULL);
}

static void test_limits(void **state)
{
    (void)state;
    size_t n = QEXCL_MAX_PATTERN + 2;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n - 1);
    big[n - 1] = '\0';
    qerr e = { 0 };
    const char *pats[] = { big };
    assert_null(qexcludes_compile(pats, 1, NULL, "x", &e));
    assert_non_null(strstr(e.msg, "longer than"));
    free(big);
    /* A NUL byte inside a line is rejected. */
    const char nul[] = "/a\0b\n";
    assert_null(qexcludes_parse(nul, sizeof nul - 1, "x", &e));
}

/* Many patterns: more than one compiled program is needed (2-byte links cap a program at
 * 64 KiB, and the joined form needs one group per pattern); results must not change. */
static void test_many_patterns(void **state)
{
    (void)state;
    size_t n = 20000;
    char *text = malloc(n * 32);
    assert_non_null(text);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(text + o, "/opt/pkg%05zu/.*\\.so$\n", i);
    qexcludes *x = parse_ok(text);
    free(text);
    assert_int_equal(qexcludes_count(x), n);
    qexcludes_md *md = qexcludes_md_new();
    assert_true(m(x, md, "/opt/pkg00000/lib/a.so"));
    assert_true(m(x, md, "/opt/pkg19999/b.so"));
    assert_true(m(x, md, "/opt/pkg12345/c/d.so"));
    assert_false(m(x, md, "/opt/pkg12345/c/d.sox"));
    assert_false(m(x, md, "/opt/pkg20000/b.so"));
    qexcludes_md_free(md);
    qexcludes_free(x);
}

/* Catastrophic backtracking: "^(a+)+$" is refused when the list is compiled (a probe of a's
 * hits the match limit), with a reason naming the line; a pattern that slips past the probes
 * (the run must follow a prefix) still cannot cost more than the match limit on a crafted path,
 * and such a path counts as not excluded (fail closed), told apart by qexcludes_match_rc. */
static void test_pathological_patterns(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *text = "/usr/bin/ok\n^(a+)+$\n";
    assert_null(qexcludes_parse(text, strlen(text), "ex.txt", &e));
    assert_non_null(strstr(e.msg, "ex.txt:2: exclude regex '^(a+)+$' refused: it backtracks catastrophically"));
    const char *alt = "/opt/(a|aa)+$\n";     /* also exponential, behind a prefix the probes include */
    assert_null(qexcludes_parse(alt, strlen(alt), "ex.txt", &e));
    assert_non_null(strstr(e.msg, "backtracks catastrophically"));

    qexcludes *x = parse_ok("^/x/(\\d+)+$\n/tmp/\n");
    qexcludes_md *md = qexcludes_md_new();
    assert_non_null(md);
    assert_int_equal(qexcludes_match_rc(x, md, "/x/1234", 7), 1);
    assert_int_equal(qexcludes_match_rc(x, md, "/usr/bin/ls", 11), 0);
    assert_int_equal(qexcludes_match_rc(x, md, "/tmp/z", 6), 1);
    char crafted[64];
    snprintf(crafted, sizeof crafted, "/x/%s!", "1111111111111111111111111111111111111111");
    assert_int_equal(qexcludes_match_rc(x, md, crafted, strlen(crafted)), -1);
    assert_false(qexcludes_match(x, md, crafted, strlen(crafted)));   /* fail closed */
    assert_int_equal(qexcludes_match_rc(x, md, "/tmp/z", 6), 1);      /* the match data is reusable */
    qexcludes_md_free(md);
    qexcludes_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pathological_patterns),
        cmocka_unit_test(test_anchored_start_not_end),
        cmocka_unit_test(test_dollar_exact),
        cmocka_unit_test(test_wildcards_and_alternation),
        cmocka_unit_test(test_comments_blank_strip),
        cmocka_unit_test(test_invalid_names_line),
        cmocka_unit_test(test_no_excludes),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_many_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
