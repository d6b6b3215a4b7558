/* test_ca_cmd.c — verifier/ca_cmd.c (`quince-verifier ca`): exit status 2 with a one-line
 * message for bad usage, init/issue-client/reset/list on a temp directory (output captured),
 * reset keeping the old server names, and failures (exit 1) with the library's message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../verifier/ca_cmd.h"
#include "tls_ca.h"

static char g_tmp[64], g_dir[128], g_out[128];
static char g_text[65536];     /* stdout + stderr of the last run */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/quince-test-cacmd.XXXXXX");
    if (!mkdtemp(g_tmp))
        return -1;
    snprintf(g_dir, sizeof g_dir, "%s/tls", g_tmp);
    snprintf(g_out, sizeof g_out, "%s/out.txt", g_tmp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(g_tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Run `ca ARGS...` (NULL-terminated) with stdout and stderr captured into g_text. */
static int run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"ca";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    int o = dup(1), e = dup(2);
    int fd = open(g_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    int rc = verifier_ca_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(o, 1);
    dup2(e, 2);
    close(o);
    close(e);
    FILE *f = fopen(g_out, "r");
    size_t n = fread(g_text, 1, sizeof g_text - 1, f);
    fclose(f);
    g_text[n] = '\0';
    return rc;
}

static bool said(const char *s)
{
    return strstr(g_text, s) != NULL;
}

static int lines(void)
{
    int n = 0;
    for (const char *p = g_text; *p; p++)
        n += *p == '\n';
    return n;
}

static void test_usage(void **state)
{
    (void)state;
    assert_int_equal(run(NULL), 2);
    assert_true(said("quince-verifier ca: missing command"));
    assert_int_equal(lines(), 1);
    assert_int_equal(run("init", NULL), 2);
    assert_true(said("--dir DIR is required"));
    assert_int_equal(run("--dir", g_dir, "bogus", NULL), 2);
    assert_true(said("unknown command bogus"));
    assert_int_equal(run("--dir", g_dir, "init", "--frob", NULL), 2);
    assert_true(said("unknown option --frob"));
    assert_int_equal(run("--dir", g_dir, "issue-client", NULL), 2);
    assert_true(said("issue-client needs a NAME"));
    assert_int_equal(run("--dir", g_dir, "init", "--san", "bad name", NULL), 2);
    assert_true(said("neither an IP address nor a DNS name"));
    assert_int_equal(run("--dir", g_dir, "init", "--key-type", "dsa", NULL), 2);
    assert_int_equal(run("--dir", g_dir, "list", "--san", "1.2.3.4", NULL), 2);
    assert_int_equal(run("--dir", g_dir, "init", "extra", NULL), 2);
    assert_int_equal(run("--dir", NULL), 2);
    assert_true(said("--dir needs a value"));
    assert_int_equal(access(g_dir, F_OK), -1);      /* nothing made on bad usage */
    assert_int_equal(run("--help", NULL), 0);
    assert_true(said("usage: quince-verifier ca --dir DIR COMMAND"));
    assert_true(said("issue-client NAME"));
}

static void test_init_issue_list_reset(void **state)
{
    (void)state;
    assert_int_equal(run("--dir", g_dir, "init", "--san", "10.1.2.3", "--san=verifier.example", NULL), 0);
    assert_true(said("created cakey.pem cacert.pem server-key.pem server-cert.pem"));
    assert_int_equal(run("--dir", g_dir, "init", NULL), 0);
    assert_true(said("8 existing files checked"));
    assert_false(said("created"));

    assert_int_equal(run("--dir", g_dir, "issue-client", "ops", NULL), 0);
    assert_true(said("/ops-cert.pem"));
    assert_int_equal(run("issue-client", "ops", "--dir", g_dir, NULL), 1);
    assert_true(said("already exists"));
    assert_int_equal(lines(), 1);
    char od[160];
    snprintf(od, sizeof od, "%s/elsewhere", g_tmp);
    assert_int_equal(mkdir(od, 0700), 0);
    assert_int_equal(run("--dir", g_dir, "issue-client", "ops", "--out-dir", od, NULL), 0);
    char p[256];
    snprintf(p, sizeof p, "%s/ops-key.pem", od);
    assert_int_equal(access(p, F_OK), 0);

    assert_int_equal(run("--dir", g_dir, "list", NULL), 0);
    assert_true(said("cacert.pem\n"));
    assert_true(said("server-cert.pem\n"));
    assert_true(said("IP:10.1.2.3 DNS:verifier.example DNS:localhost IP:127.0.0.1 IP:::1"));
    assert_true(said("CN=quince-tenant,O=Quince"));
    assert_true(said("ops-cert.pem\n"));
    assert_true(said("check:    ok"));
    assert_false(said("key.pem"));

    /* reset: old files aside, a new CA, the old server names kept (+ a new one) */
    assert_int_equal(run("--dir", g_dir, "reset", "--san", "10.9.9.9", NULL), 0);
    assert_true(said("moved the old files to "));
    assert_true(said("created cakey.pem"));
    assert_int_equal(run("--dir", g_dir, "list", NULL), 0);
    assert_true(said("IP:10.9.9.9 IP:10.1.2.3 DNS:verifier.example"));
    assert_false(said("ops-cert.pem"));
}

static void test_failures(void **state)
{
    (void)state;
    char d[160];
    snprintf(d, sizeof d, "%s/loose", g_tmp);
    assert_int_equal(mkdir(d, 0777), 0);
    assert_int_equal(chmod(d, 0777), 0);
    assert_int_equal(run("--dir", d, "init", NULL), 1);
    assert_true(said("writable by group or others"));
    assert_int_equal(lines(), 1);
    assert_int_equal(run("--dir", d, "list", NULL), 1);
    assert_int_equal(run("--dir", "/nonexistent-quince/tls", "init", NULL), 1);
    assert_true(said("cannot create the CA directory"));
    snprintf(d, sizeof d, "%s/empty", g_tmp);
    assert_int_equal(mkdir(d, 0700), 0);
    assert_int_equal(run("--dir", d, "issue-client", "x", NULL), 1);
    assert_true(said("cacert.pem"));
    assert_int_equal(run("--dir", d, "list", NULL), 0);
    assert_true(said("no certificates"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_init_issue_list_reset),
        cmocka_unit_test(test_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
