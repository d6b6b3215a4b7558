/* Unit tests for common/config_check.c: unknown sections and keys, environment overrides,
 * "did you mean", the --check-config printer and its masking. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_check.h"
#include "config_keys.h"

static qconfig *parse(const char *text, qerr *e)
{
    return qconfig_parse(text, strlen(text), "s.conf", e);
}

static int setup(void **state)
{
    (void)state;
    unsetenv("QUINCE_VERIFIER_QOUTE_INTERVAL");
    unsetenv("QUINCE_VERIFER_PORT");
    unsetenv("QUINCE_VERIFIER_QUOTE_INTERVAL");
    unsetenv("QUINCE_TMP_SOMETHING");
    return 0;
}

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(qconfig_edit_distance("quote_interval", "qoute_interval", 2), 2);
    assert_int_equal(qconfig_edit_distance("verifer", "verifier", 2), 1);
    assert_int_equal(qconfig_edit_distance("PORT", "port", 2), 0);
    assert_int_equal(qconfig_edit_distance("abc", "xyzw", 2), 3);   /* capped at cap + 1 */
    assert_int_equal(qconfig_edit_distance("", "ab", 2), 2);
}

static void test_known_config_passes(void **state)
{
    (void)state;
    qerr e = {0};
    qconfig *c = parse("[agent]\nport = 9002\n[VERIFIER]\nQuote_Interval = 1\n[registrar]\ntls_port=1\n"
                       "[tenant]\nverifier_port = 8881\n", &e);
    assert_non_null(c);
    assert_int_equal(qconfig_check(c, &e), 0);
    qconfig_free(c);
}

static void test_unknown_key_line_and_hint(void **state)
{
    (void)state;
    qerr e = {0};
    qconfig *c = parse("[verifier]\nport = 1\n\nqoute_interval = 5\n", &e);
    assert_non_null(c);
    assert_int_equal(qconfig_check(c, &e), -1);
    assert_non_null(strstr(e.msg, "s.conf:4"));
    assert_non_null(strstr(e.msg, "qoute_interval"));
    assert_non_null(strstr(e.msg, "did you mean \"quote_interval\""));
    qconfig_free(c);

    c = parse("[tenant]\nverifier_prot = 8881\n", &e);
    assert_int_equal(qconfig_check(c, &e), -1);
    assert_non_null(strstr(e.msg, "s.conf:2"));
    assert_non_null(strstr(e.msg, "did you mean \"verifier_port\""));
    qconfig_free(c);

    /* Far from anything: no hint, still an error. */
    c = parse("[agent]\ncompletely_unrelated = 1\n", &e);
    assert_int_equal(qconfig_check(c, &e), -1);
    assert_null(strstr(e.msg, "did you mean"));
    assert_non_null(strstr(e.msg, "completely_unrelated"));
    qconfig_free(c);

    /* A key of another section says where it belongs. */
    c = parse("[agent]\ndatabase = x\n", &e);
    assert_int_equal(qconfig_check(c, &e), -1);
    assert_non_null(strstr(e.msg, "[verifier]"));
    qconfig_free(c);
}

static void test_unknown_section(void **state)
{
    (void)state;
    qerr e = {0};
    /* An empty misspelt section is refused too (it cannot carry a key that would flag it). */
    qconfig *c = parse("[agent]\nport = 1\n[verifer]\n", &e);
    assert_non_null(c);
    assert_int_equal(qconfig_check(c, &e), -1);
    assert_non_null(strstr(e.msg, "s.conf:3"));
    assert_non_null(strstr(e.msg, "did you mean [verifier]"));
    qconfig_free(c);
    c = parse("[zzzzzzzz]\n", &e);
    assert_int_equal(qconfig_check(c, &e), -1);
    assert_null(strstr(e.msg, "did you mean"));
    qconfig_free(c);
}

static void test_environment(void **state)
{
    (void)state;
    qerr e = {0};
    qconfig *c = parse("", &e);
    assert_non_null(c);
    setenv("QUINCE_VERIFIER_QUOTE_INTERVAL", "3", 1);
    setenv("QUINCE_TMP_SOMETHING", "x", 1);        /* not configuration: left alone */
    assert_int_equal(qconfig_check(c, &e), 0);
    setenv("QUINCE_VERIFIER_QOUTE_INTERVAL", "3", 1);
    assert_int_equal(qconfig_check(c, &e), -1);
    assert_non_null(strstr(e.msg, "QUINCE_VERIFIER_QOUTE_INTERVAL"));
    assert_non_null(strstr(e.msg, "did you mean \"quote_interval\""));
    unsetenv("QUINCE_VERIFIER_QOUTE_INTERVAL");
    setenv("QUINCE_VERIFER_PORT", "1", 1);
    assert_int_equal(qconfig_check(c, &e), -1);
    assert_non_null(strstr(e.msg, "QUINCE_VERIFIER_"));
    unsetenv("QUINCE_VERIFER_PORT");
    assert_int_equal(qconfig_check(c, &e), 0);
    qconfig_free(c);
}

static void test_every_section_has_keys(void **state)
{
    (void)state;
    for (const qconfig_section_def *s = qconfig_known; s->name; s++) {
        assert_non_null(s->keys[0].name);
        assert_ptr_equal(qconfig_known_section(s->name), s);
        assert_non_null(qconfig_known_key(s, s->keys[0].name));
    }
}

static void test_print_effective_masks(void **state)
{
    (void)state;
    qerr e = {0};
    qconfig *c = parse("[tenant]\nverifier_port = 8881\n[agent]\nport=1\n", &e);
    assert_non_null(c);
    qconfig_trace(c, true);
    long v;
    bool b;
    assert_int_equal(qconfig_long(c, "tenant", "verifier_port", 1, 1, 65535, &v, &e), 0);
    assert_int_equal(qconfig_bool(c, "tenant", "insecure", false, &b, &e), 0);
    (void)qconfig_str(c, "tenant", "db_password", "hunter2");
    (void)qconfig_str(c, "tenant", "url", "https://user:pw@example.test/hook");
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    assert_non_null(f);
    qconfig_print_effective(c, f);
    fclose(f);
    assert_non_null(strstr(out, "[tenant]"));
    assert_non_null(strstr(out, "verifier_port = 8881    # file"));
    assert_non_null(strstr(out, "insecure = false    # default"));
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "db_password = ********"));
    assert_null(strstr(out, "user:pw"));
    assert_null(strstr(out, "[agent]"));            /* nothing of [agent] was used */
    free(out);
    qconfig_free(c);
}

static void test_load_strict_file(void **state)
{
    (void)state;
    char path[] = "/tmp/quince-strict-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "[verifier]\nport = 1\nqoute_interval = 5\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    qerr e = {0};
    qconfig *c = qconfig_load_strict(path, &e);
    assert_null(c);
    char want[64];
    snprintf(want, sizeof want, "%s:3:", path);
    assert_non_null(strstr(e.msg, want));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_edit_distance, setup),
        cmocka_unit_test_setup(test_known_config_passes, setup),
        cmocka_unit_test_setup(test_unknown_key_line_and_hint, setup),
        cmocka_unit_test_setup(test_unknown_section, setup),
        cmocka_unit_test_setup(test_environment, setup),
        cmocka_unit_test_setup(test_every_section_has_keys, setup),
        cmocka_unit_test_setup(test_print_effective_masks, setup),
        cmocka_unit_test_setup(test_load_strict_file, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
