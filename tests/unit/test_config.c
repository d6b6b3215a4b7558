/* Unit tests for common/config.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static qconfig *parse(const char *text, qerr *e)
{
    return qconfig_parse(text, strlen(text), "test.conf", e);
}

static void clear_env(void)
{
    static const char *vars[] = { "QUINCE_CONFIG",        "QUINCE_VERIFIER_PORT", "QUINCE_AGENT_QUOTE_INTERVAL",
                                  "QUINCE_TENANT_ALLOWLIST", "QUINCE_VERIFIER_IMA_VIOLATIONS", "QUINCE_X_B",
                                  "QUINCE_X_D", "QUINCE_X_ON" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static void test_sections_comments(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *text =
        "# a comment\n"
        "; another comment\n"
        "\n"
        "[agent]\n"
        "  port = 9002  \n"
        "uuid=d432fbb3-d2f1-4a97-9ef7-75bd81c00000\r\n"
        "   # indented comment\n"
        "[ verifier ]\n"
        "ip = 127.0.0.1\n"
        "empty =\n"
        "regex = ^/tmp/.*#not-a-comment\n"
        "eq = a=b=c\n"
        "[Registrar]\n"
        "Port = 8890";   /* no final newline */
    qconfig *c = parse(text, &e);
    assert_non_null(c);
    assert_null(qconfig_path(c));
    assert_string_equal(qconfig_get(c, "agent", "port"), "9002");
    assert_string_equal(qconfig_get(c, "agent", "uuid"), "d432fbb3-d2f1-4a97-9ef7-75bd81c00000");
    assert_string_equal(qconfig_get(c, "verifier", "ip"), "127.0.0.1");
    assert_string_equal(qconfig_get(c, "verifier", "empty"), "");
    assert_string_equal(qconfig_get(c, "verifier", "regex"), "^/tmp/.*#not-a-comment");
    assert_string_equal(qconfig_get(c, "verifier", "eq"), "a=b=c");
    /* names match without regard to case */
    assert_string_equal(qconfig_get(c, "REGISTRAR", "port"), "8890");
    assert_string_equal(qconfig_get(c, "Agent", "PORT"), "9002");
    /* absent keys and sections */
    assert_null(qconfig_get(c, "agent", "ip"));
    assert_null(qconfig_get(c, "tenant", "port"));
    assert_null(qconfig_get(c, NULL, "port"));
    assert_string_equal(qconfig_str(c, "agent", "ip", "0.0.0.0"), "0.0.0.0");
    assert_string_equal(qconfig_str(c, "agent", "port", "1"), "9002");
    qconfig_free(c);
}

static void test_duplicates(void **state)
{
    (void)state;
    qerr e = { 0 };
    qconfig *c = parse("[a]\nk = 1\n[b]\nk = 2\n[a]\nk = 3\nj = 4\n", &e);
    assert_non_null(c);
    assert_string_equal(qconfig_get(c, "a", "k"), "3");   /* last one wins */
    assert_string_equal(qconfig_get(c, "a", "j"), "4");   /* sections merge */
    assert_string_equal(qconfig_get(c, "b", "k"), "2");
    qconfig_free(c);
}

static void test_quotes(void **state)
{
    (void)state;
    qerr e = { 0 };
    qconfig *c = parse("[t]\n"
                       "a = \"  spaced  \"\n"
                       "b = \"\"\n"
                       "c = \"with \"inner\" quotes\"\n"
                       "d = not \"quoted\"\n",
                       &e);
    assert_non_null(c);
    assert_string_equal(qconfig_get(c, "t", "a"), "  spaced  ");
    assert_string_equal(qconfig_get(c, "t", "b"), "");
    assert_string_equal(qconfig_get(c, "t", "c"), "with \"inner\" quotes");
    assert_string_equal(qconfig_get(c, "t", "d"), "not \"quoted\"");
    qconfig_free(c);

    assert_null(parse("[t]\nok = 1\na = \"open\n", &e));
    assert_string_equal(e.msg, "test.conf:3: unterminated quoted value");
    assert_null(parse("[t]\na = \"\n", &e));
    assert_string_equal(e.msg, "test.conf:2: unterminated quoted value");
}

static void test_malformed_names_line(void **state)
{
    (void)state;
    qerr e = { 0 };
    assert_null(parse("[agent]\nport = 1\njust words\n", &e));
    assert_non_null(strstr(e.msg, "test.conf:3: malformed line"));
    assert_null(parse("[agent\n", &e));
    assert_non_null(strstr(e.msg, "test.conf:1: malformed section header"));
    assert_null(parse("# c\n[]\n", &e));
    assert_non_null(strstr(e.msg, "test.conf:2: bad section name"));
    assert_null(parse("[a b]\n", &e));
    assert_non_null(strstr(e.msg, "test.conf:1: bad section name"));
    assert_null(parse("[a]\n = value\n", &e));
    assert_non_null(strstr(e.msg, "test.conf:2: bad key name"));
    assert_null(parse("[a]\nkey with space = 1\n", &e));
    assert_non_null(strstr(e.msg, "test.conf:2: bad key name"));
    assert_null(parse("\n\nport = 1\n", &e));
    assert_non_null(strstr(e.msg, "test.conf:3: key \"port\" before any [section]"));
    assert_null(qconfig_parse("[a]\nk = v\0x\n", 10, "nul.conf", &e));
    assert_non_null(strstr(e.msg, "nul.conf:2: NUL byte"));
    /* continuation lines are not supported: an indented bare word is malformed */
    assert_null(parse("[a]\nk = v\n  more\n", &e));
    assert_non_null(strstr(e.msg, "test.conf:3: malformed line"));
}

static void test_line_and_file_limits(void **state)
{
    (void)state;
    qerr e = { 0 };
    size_t vlen = 8192 - 4;                 /* "k = " + value = exactly 8192 bytes */
    char *text = malloc(8 + 8192 + 2 + 8193 + 2);
    assert_non_null(text);
    strcpy(text, "[s]\n");
    size_t o = 4;
    memcpy(text + o, "k = ", 4);
    o += 4;
    memset(text + o, 'v', vlen);
    o += vlen;
    text[o++] = '\n';
    qconfig *c = qconfig_parse(text, o, "long.conf", &e);
    assert_non_null(c);
    assert_int_equal(strlen(qconfig_get(c, "s", "k")), vlen);
    qconfig_free(c);
    /* one byte more on line 3 */
    memcpy(text + o, "j = ", 4);
    memset(text + o + 4, 'w', vlen + 1);
    size_t o2 = o + 4 + vlen + 1;
    text[o2++] = '\n';
    assert_null(qconfig_parse(text, o2, "long.conf", &e));
    assert_string_equal(e.msg, "long.conf:3: line longer than 8192 bytes");
    free(text);

    /* more than 1 MiB of text */
    size_t big = (1u << 20) + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, '\n', big);
    assert_null(qconfig_parse(huge, big, "huge.conf", &e));
    assert_non_null(strstr(e.msg, "huge.conf"));
    c = qconfig_parse(huge, big - 1, "huge.conf", &e);   /* exactly 1 MiB is fine */
    assert_non_null(c);
    qconfig_free(c);
    free(huge);

    /* the number of values is bounded */
    char *many = malloc(4 + 4097 * 16);
    assert_non_null(many);
    size_t m = (size_t)sprintf(many, "[s]\n");
    for (int i = 0; i < 4097; i++)
        m += (size_t)sprintf(many + m, "k%d = 1\n", i);
    assert_null(qconfig_parse(many, m, "many.conf", &e));
    assert_non_null(strstr(e.msg, "many.conf:4098: more than 4096 values"));
    free(many);
}

static void test_env_override(void **state)
{
    (void)state;
    qerr e = { 0 };
    qconfig *c = parse("[verifier]\nport = 8881\nima_violations = pass\n[agent]\nquote-interval = 2\n", &e);
    assert_non_null(c);
    assert_string_equal(qconfig_get(c, "verifier", "port"), "8881");
    setenv("QUINCE_VERIFIER_PORT", "9999", 1);
    const char *p1 = qconfig_get(c, "verifier", "port");
    assert_string_equal(p1, "9999");
    long port = 0;
    assert_int_equal(qconfig_long(c, "verifier", "port", 1, 1, 65535, &port, &e), 0);
    assert_int_equal(port, 9999);
    /* the environment also supplies keys the file lacks, and '-' maps to '_' */
    setenv("QUINCE_TENANT_ALLOWLIST", "/x/allow.txt", 1);
    assert_string_equal(qconfig_str(c, "tenant", "allowlist", "none"), "/x/allow.txt");
    setenv("QUINCE_AGENT_QUOTE_INTERVAL", "5", 1);
    assert_string_equal(qconfig_get(c, "agent", "quote-interval"), "5");
    /* an earlier pointer stays valid after the variable changes */
    setenv("QUINCE_VERIFIER_PORT", "1234", 1);
    assert_string_equal(qconfig_get(c, "verifier", "port"), "1234");
    assert_string_equal(p1, "9999");
    /* a bad value from the environment names the variable */
    setenv("QUINCE_VERIFIER_PORT", "http", 1);
    assert_int_equal(qconfig_long(c, "verifier", "port", 1, 1, 65535, &port, &e), -1);
    assert_non_null(strstr(e.msg, "QUINCE_VERIFIER_PORT"));
    unsetenv("QUINCE_VERIFIER_PORT");
    assert_string_equal(qconfig_get(c, "verifier", "port"), "8881");
    /* works without a config too */
    setenv("QUINCE_VERIFIER_IMA_VIOLATIONS", "fail", 1);
    assert_string_equal(qconfig_get(NULL, "verifier", "ima_violations"), "fail");
    assert_string_equal(qconfig_get(c, "verifier", "ima_violations"), "fail");
    qconfig_free(c);
    clear_env();
}

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/quince-cfg.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_load_files(void **state)
{
    (void)state;
    qerr e = { 0 };
    char path[128], missing[128];
    snprintf(path, sizeof path, "%s/q.conf", tmpdir);
    snprintf(missing, sizeof missing, "%s/none.conf", tmpdir);
    write_text(path, "[tenant]\nverifier_port = 8881\n");

    qconfig *c = qconfig_load(path, &e);
    assert_non_null(c);
    assert_string_equal(qconfig_path(c), path);
    assert_string_equal(qconfig_get(c, "tenant", "verifier_port"), "8881");
    qconfig_free(c);

    /* explicit missing file: an error naming it */
    assert_null(qconfig_load(missing, &e));
    assert_non_null(strstr(e.msg, missing));

    /* $QUINCE_CONFIG is used when no path is given, and a missing one is an error too */
    setenv("QUINCE_CONFIG", path, 1);
    c = qconfig_load(NULL, &e);
    assert_non_null(c);
    assert_string_equal(qconfig_path(c), path);
    qconfig_free(c);
    setenv("QUINCE_CONFIG", missing, 1);
    assert_null(qconfig_load(NULL, &e));
    assert_non_null(strstr(e.msg, missing));
    /* the explicit path beats $QUINCE_CONFIG */
    c = qconfig_load(path, &e);
    assert_non_null(c);
    qconfig_free(c);
    unsetenv("QUINCE_CONFIG");

    /* a malformed file names the file and line */
    write_text(path, "[tenant]\n\nthis is not ini\n");
    assert_null(qconfig_load(path, &e));
    char want[200];
    snprintf(want, sizeof want, "%s:3: malformed line", path);
    assert_non_null(strstr(e.msg, want));

    /* a file over 1 MiB */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < (1 << 20) + 1; i++)
        fputc('\n', f);
    fclose(f);
    assert_null(qconfig_load(path, &e));
    assert_non_null(strstr(e.msg, path));

    /* a directory is not a config */
    assert_null(qconfig_load(tmpdir, &e));
}

static void test_default_path_missing_is_empty(void **state)
{
    (void)state;
    if (access(QCONFIG_DEFAULT_PATH, F_OK) == 0)
        skip();   /* a real config is installed here: nothing to learn */
    unsetenv("QUINCE_CONFIG");
    qerr e = { 0 };
    qconfig *c = qconfig_load(NULL, &e);
    assert_non_null(c);
    assert_null(qconfig_path(c));
    assert_null(qconfig_get(c, "agent", "port"));
    qconfig_free(c);
    /* an empty QUINCE_CONFIG counts as unset */
    setenv("QUINCE_CONFIG", "", 1);
    c = qconfig_load(NULL, &e);
    assert_non_null(c);
    qconfig_free(c);
    unsetenv("QUINCE_CONFIG");
}

static void test_long(void **state)
{
    (void)state;
    qerr e = { 0 };
    qconfig *c = parse("[x]\na = 42\nb = -7\nc = 12abc\nd = 99999999999999999999999\ne = 70000\n"
                       "f =\ng = \" 5 \"\nh = 0x10\n", &e);
    assert_non_null(c);
    long v = 0;
    assert_int_equal(qconfig_long(c, "x", "a", 1, 0, 100, &v, &e), 0);
    assert_int_equal(v, 42);
    assert_int_equal(qconfig_long(c, "x", "b", 1, -10, 10, &v, &e), 0);
    assert_int_equal(v, -7);
    assert_int_equal(qconfig_long(c, "x", "missing", 17, 0, 100, &v, &e), 0);
    assert_int_equal(v, 17);
    assert_int_equal(qconfig_long(c, "x", "f", 18, 0, 100, &v, &e), 0);   /* empty = default */
    assert_int_equal(v, 18);
    assert_int_equal(qconfig_long(c, "x", "g", 0, 0, 100, &v, &e), 0);    /* blanks inside quotes */
    assert_int_equal(v, 5);
    v = 123;
    assert_int_equal(qconfig_long(c, "x", "c", 1, 0, 100, &v, &e), -1);
    assert_string_equal(e.msg, "[x] c: \"12abc\" is not an integer");
    assert_int_equal(v, 123);   /* untouched on error */
    assert_int_equal(qconfig_long(c, "x", "d", 1, 0, 100, &v, &e), -1);
    assert_non_null(strstr(e.msg, "[x] d: "));
    assert_non_null(strstr(e.msg, "out of range"));
    assert_int_equal(qconfig_long(c, "x", "e", 1, 1, 65535, &v, &e), -1);
    assert_string_equal(e.msg, "[x] e: 70000 is out of range 1..65535");
    assert_int_equal(qconfig_long(c, "x", "b", 1, 0, 10, &v, &e), -1);
    assert_int_equal(qconfig_long(c, "x", "h", 1, 0, 100, &v, &e), -1);   /* decimal only */
    qconfig_free(c);
}

static void test_double(void **state)
{
    (void)state;
    qerr e = { 0 };
    qconfig *c = parse("[x]\na = 2.5\nb = 1e-3\nc = fast\nd = nan\ne = inf\nf = 11\n", &e);
    assert_non_null(c);
    double d = 0;
    assert_int_equal(qconfig_double(c, "x", "a", 0, 0, 10, &d, &e), 0);
    assert_true(d == 2.5);
    assert_int_equal(qconfig_double(c, "x", "b", 0, 0, 10, &d, &e), 0);
    assert_true(d == 1e-3);
    assert_int_equal(qconfig_double(c, "x", "zz", 0.25, 0, 10, &d, &e), 0);
    assert_true(d == 0.25);
    assert_int_equal(qconfig_double(c, "x", "c", 0, 0, 10, &d, &e), -1);
    assert_string_equal(e.msg, "[x] c: \"fast\" is not a number");
    assert_int_equal(qconfig_double(c, "x", "d", 0, 0, 10, &d, &e), -1);
    assert_int_equal(qconfig_double(c, "x", "e", 0, 0, 1e300, &d, &e), -1);
    assert_int_equal(qconfig_double(c, "x", "f", 0, 0, 10, &d, &e), -1);
    assert_non_null(strstr(e.msg, "[x] f: 11 is out of range"));
    qconfig_free(c);
}

static void test_bool(void **state)
{
    (void)state;
    qerr e = { 0 };
    qconfig *c = parse("[x]\nt1 = true\nt2 = YES\nt3 = On\nt4 = 1\n"
                       "f1 = False\nf2 = no\nf3 = OFF\nf4 = 0\nbad = maybe\nbad2 = 2\n", &e);
    assert_non_null(c);
    static const char *ts[] = { "t1", "t2", "t3", "t4" }, *fs[] = { "f1", "f2", "f3", "f4" };
    for (int i = 0; i < 4; i++) {
        bool b = false;
        assert_int_equal(qconfig_bool(c, "x", ts[i], false, &b, &e), 0);
        assert_true(b);
        assert_int_equal(qconfig_bool(c, "x", fs[i], true, &b, &e), 0);
        assert_false(b);
    }
    bool b = true;
    assert_int_equal(qconfig_bool(c, "x", "absent", false, &b, &e), 0);
    assert_false(b);
    assert_int_equal(qconfig_bool(c, "x", "bad", false, &b, &e), -1);
    assert_non_null(strstr(e.msg, "[x] bad: \"maybe\" is not a boolean"));
    assert_int_equal(qconfig_bool(c, "x", "bad2", false, &b, &e), -1);
    setenv("QUINCE_X_ON", "yes", 1);
    assert_int_equal(qconfig_bool(c, "x", "on", false, &b, &e), 0);
    assert_true(b);
    unsetenv("QUINCE_X_ON");
    qconfig_free(c);
}

static void test_set(void **state)
{
    (void)state;
    qerr e = { 0 };
    qconfig *c = parse("[agent]\nport = 9002\n", &e);
    assert_non_null(c);
    const char *old = qconfig_get(c, "agent", "port");
    assert_int_equal(qconfig_set(c, "agent", "port", "9003"), 0);
    assert_string_equal(qconfig_get(c, "agent", "port"), "9003");
    assert_string_equal(old, "9002");   /* earlier pointers stay valid */
    assert_int_equal(qconfig_set(c, "new", "key", "v"), 0);
    assert_string_equal(qconfig_get(c, "NEW", "KEY"), "v");
    assert_int_equal(qconfig_set(c, "agent", "ip", ""), 0);
    assert_string_equal(qconfig_get(c, "agent", "ip"), "");
    assert_int_equal(qconfig_set(c, "bad section", "k", "v"), -1);
    assert_int_equal(qconfig_set(c, "s", "", "v"), -1);
    assert_int_equal(qconfig_set(c, "s", "k", "two\nlines"), -1);
    assert_int_equal(qconfig_set(c, "s", "k", NULL), -1);
    assert_int_equal(qconfig_set(NULL, "s", "k", "v"), -1);
    char *big = malloc(9000);
    assert_non_null(big);
    memset(big, 'b', 8999);
    big[8999] = '\0';
    assert_int_equal(qconfig_set(c, "s", "k", big), -1);
    big[8192] = '\0';
    assert_int_equal(qconfig_set(c, "s", "k", big), 0);
    free(big);
    /* the environment still wins over a set value */
    setenv("QUINCE_AGENT_QUOTE_INTERVAL", "7", 1);
    assert_int_equal(qconfig_set(c, "agent", "quote_interval", "3"), 0);
    assert_string_equal(qconfig_get(c, "agent", "quote_interval"), "7");
    unsetenv("QUINCE_AGENT_QUOTE_INTERVAL");
    qconfig_free(c);
    /* set on an empty config */
    c = parse("", &e);
    assert_non_null(c);
    assert_int_equal(qconfig_set(c, "tenant", "allowlist", "a.txt"), 0);
    assert_string_equal(qconfig_get(c, "tenant", "allowlist"), "a.txt");
    qconfig_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sections_comments, setup),
        cmocka_unit_test_setup(test_duplicates, setup),
        cmocka_unit_test_setup(test_quotes, setup),
        cmocka_unit_test_setup(test_malformed_names_line, setup),
        cmocka_unit_test_setup(test_line_and_file_limits, setup),
        cmocka_unit_test_setup(test_env_override, setup),
        cmocka_unit_test_setup(test_load_files, setup),
        cmocka_unit_test_setup(test_default_path_missing_is_empty, setup),
        cmocka_unit_test_setup(test_long, setup),
        cmocka_unit_test_setup(test_double, setup),
        cmocka_unit_test_setup(test_bool, setup),
        cmocka_unit_test_setup(test_set, setup),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
