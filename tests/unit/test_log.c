/* Unit tests for common/log.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define CAP_MAX 64

typedef struct capture {
    int n;
    qlog_level lvl[CAP_MAX];
    char module[CAP_MAX][64];
    char msg[CAP_MAX][256];
} capture;

static void sink(void *ctx, qlog_level lvl, const char *module, const char *msg)
{
    capture *c = ctx;
    if (c->n < CAP_MAX) {
        c->lvl[c->n] = lvl;
        snprintf(c->module[c->n], sizeof c->module[0], "%s", module);
        snprintf(c->msg[c->n], sizeof c->msg[0], "%s", msg);
    }
    c->n++;
}

static int reset(void **state)
{
    (void)state;
    qlog_set_sink(NULL, NULL);
    qlog_set_level(QLOG_INFO);
    qlog_use_stderr(false);   /* keep the test output quiet unless a test captures stderr */
    return 0;
}

/* Run fn with stderr redirected to a temp file; return what was written (malloc'd). */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
    char path[] = "/tmp/quince-log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn(arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)size + 1);
    assert_non_null(out);
    assert_int_equal(pread(fd, out, (size_t)size, 0), size);
    close(fd);
    return out;
}

static void test_level_parse_and_names(void **state)
{
    (void)state;
    qlog_level l;
    assert_int_equal(qlog_level_parse("debug", &l), 0);
    assert_int_equal(l, QLOG_DEBUG);
    assert_int_equal(qlog_level_parse("INFO", &l), 0);
    assert_int_equal(l, QLOG_INFO);
    assert_int_equal(qlog_level_parse("Warning", &l), 0);
    assert_int_equal(l, QLOG_WARNING);
    assert_int_equal(qlog_level_parse("warn", &l), 0);
    assert_int_equal(l, QLOG_WARNING);
    assert_int_equal(qlog_level_parse("ERROR", &l), 0);
    assert_int_equal(l, QLOG_ERROR);
    assert_int_equal(qlog_level_parse("critical", &l), 0);
    assert_int_equal(l, QLOG_CRITICAL);
    l = QLOG_ERROR;
    assert_int_equal(qlog_level_parse("verbose", &l), -1);
    assert_int_equal(qlog_level_parse("", &l), -1);
    assert_int_equal(qlog_level_parse(NULL, &l), -1);
    assert_int_equal(qlog_level_parse("info ", &l), -1);
    assert_int_equal(l, QLOG_ERROR);   /* untouched on failure */
    assert_string_equal(qlog_level_name(QLOG_DEBUG), "DEBUG");
    assert_string_equal(qlog_level_name(QLOG_INFO), "INFO");
    assert_string_equal(qlog_level_name(QLOG_WARNING), "WARNING");
    assert_string_equal(qlog_level_name(QLOG_ERROR), "ERROR");
    assert_string_equal(qlog_level_name(QLOG_CRITICAL), "CRITICAL");
}

static void test_level_filter(void **state)
{
    (void)state;
    capture c = { 0 };
    qlog_set_sink(sink, &c);
    qlog_set_level(QLOG_WARNING);
    assert_int_equal(qlog_get_level(), QLOG_WARNING);
    qlog(QLOG_DEBUG, "t", "d");
    qlog(QLOG_INFO, "t", "i");
    qlog(QLOG_WARNING, "t", "w");
    qlog(QLOG_ERROR, "t", "e");
    qlog(QLOG_CRITICAL, "t", "c");
    assert_int_equal(c.n, 3);
    assert_string_equal(c.msg[0], "w");
    assert_int_equal(c.lvl[2], QLOG_CRITICAL);
    qlog_set_level(QLOG_DEBUG);
    QLOG_DEBUG_("t", "now %d", 1);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.msg[3], "now 1");
    assert_int_equal(c.lvl[3], QLOG_DEBUG);
}

static void test_sink_gets_message(void **state)
{
    (void)state;
    capture c = { 0 };
    qlog_set_sink(sink, &c);
    qlog(QLOG_ERROR, "verifier", "File not found in allowlist: %s", "/usr/bin/x");
    qlog(QLOG_INFO, "agent", "two\nlines\n");
    assert_int_equal(c.n, 2);
    assert_string_equal(c.module[0], "verifier");
    assert_string_equal(c.msg[0], "File not found in allowlist: /usr/bin/x");
    assert_string_equal(c.msg[1], "two lines");   /* one call, one line */
    qlog_set_sink(NULL, NULL);
    qlog(QLOG_ERROR, "verifier", "not captured");
    assert_int_equal(c.n, 2);
}

static void log_three(void *arg)
{
    (void)arg;
    qlog_use_stderr(true);
    qlog(QLOG_INFO, "verifier", "agent %s failed, stopping polling", "d432fbb3");
    qlog(QLOG_DEBUG, "verifier", "filtered out");
    qlog(QLOG_CRITICAL, "tenant", "multi\nline");
    qlog(QLOG_WARNING, NULL, "no module");
    qlog_use_stderr(false);
}

static void test_stderr_format(void **state)
{
    (void)state;
    char *out = capture_stderr(log_three, NULL);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} - "
                             "quince\\.verifier - INFO - agent d432fbb3 failed, stopping polling\n"
                             "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} - "
                             "quince\\.tenant - CRITICAL - multi line\n"
                             "[0-9-]{10} [0-9:.]{12} - quince\\.main - WARNING - no module\n$",
                             REG_EXTENDED),
                     0);
    int m = regexec(&re, out, 0, NULL, 0);
    if (m != 0)
        print_error("stderr was:\n%s\n", out);
    assert_int_equal(m, 0);
    regfree(&re);
    free(out);
}

static void log_long(void *arg)
{
    (void)arg;
    char *big = malloc(20000);
    assert_non_null(big);
    memset(big, 'q', 19999);
    big[19999] = '\0';
    qlog_use_stderr(true);
    qlog(QLOG_ERROR, "x", "%s", big);
    qlog_use_stderr(false);
    free(big);
}

static void test_long_message_is_one_line(void **state)
{
    (void)state;
    char *out = capture_stderr(log_long, NULL);
    size_t n = strlen(out);
    assert_true(n > 1000);
    assert_int_equal(out[n - 1], '\n');
    assert_null(memchr(out, '\n', n - 1));
    assert_non_null(strstr(out, " - quince.x - ERROR - qqqq"));
    free(out);
}

#define THREADS 8
#define PER_THREAD 200

static void *worker(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < PER_THREAD; i++)
        qlog(QLOG_INFO, "thread", "worker %ld line %d %s", id, i, "padding-padding-padding-padding");
    return NULL;
}

static void run_threads(void *arg)
{
    (void)arg;
    qlog_use_stderr(true);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    qlog_use_stderr(false);
}

static void count_sink(void *ctx, qlog_level lvl, const char *module, const char *msg)
{
    (void)lvl; (void)module; (void)msg;
    (*(int *)ctx)++;   /* called under the log lock: no race */
}

static void test_threads_whole_lines(void **state)
{
    (void)state;
    int count = 0;
    qlog_set_sink(count_sink, &count);
    char *out = capture_stderr(run_threads, NULL);
    assert_int_equal(count, THREADS * PER_THREAD);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9-]{10} [0-9:.]{12} - quince\\.thread - INFO - worker [0-9]+ line [0-9]+ "
                             "padding-padding-padding-padding$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    int lines = 0;
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        assert_int_equal(regexec(&re, l, 0, NULL, 0), 0);
        lines++;
    }
    assert_int_equal(lines, THREADS * PER_THREAD);
    regfree(&re);
    free(out);
}

static void test_syslog_smoke(void **state)
{
    (void)state;
    capture c = { 0 };
    qlog_set_sink(sink, &c);
    qlog_use_syslog(true, "quince-unit-test");
    qlog(QLOG_DEBUG, "t", "below the level, not sent");
    qlog_use_syslog(false, NULL);
    qlog(QLOG_ERROR, "t", "after syslog off");
    assert_int_equal(c.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_level_parse_and_names, reset),
        cmocka_unit_test_setup(test_level_filter, reset),
        cmocka_unit_test_setup(test_sink_gets_message, reset),
        cmocka_unit_test_setup(test_stderr_format, reset),
        cmocka_unit_test_setup(test_long_message_is_one_line, reset),
        cmocka_unit_test_setup(test_threads_whole_lines, reset),
        cmocka_unit_test_setup(test_syslog_smoke, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
