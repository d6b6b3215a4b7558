/* Unit tests of the agent's incremental IMA list reader (agent/ima_ml.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/ima_ml.h"

static char path[64];

static void write_file(const char *text, const char *mode)
{
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    strcpy(path, "/tmp/quince-ima-ml-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void read_at(agent_ima_ml *m, uint64_t nth, const char *want, uint64_t want_entry, uint64_t want_total)
{
    qbuf b;
    qbuf_init(&b, 0);
    uint64_t used = 99, total = 99;
    qerr e;
    assert_int_equal(agent_ima_ml_read(m, nth, 1 << 20, &b, &used, &total, &e), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    assert_int_equal(used, want_entry);
    assert_int_equal(total, want_total);
    qbuf_free(&b);
}

static void test_incremental(void **state)
{
    (void)state;
    write_file("a 1\nb 2\nc 3\n", "w");
    qerr e;
    agent_ima_ml *m = agent_ima_ml_open(path, &e);
    assert_non_null(m);
    read_at(m, 0, "a 1\nb 2\nc 3\n", 0, 3);
    read_at(m, 1, "b 2\nc 3\n", 1, 3);
    read_at(m, 3, "", 3, 3);
    /* An incomplete last line is never returned. */
    write_file("d 4\ne 5", "a");
    read_at(m, 3, "d 4\n", 3, 4);
    read_at(m, 4, "", 4, 4);
    write_file("\n", "a");
    read_at(m, 4, "e 5\n", 4, 5);
    /* Beyond the end: answered from entry 0. */
    read_at(m, 9, "a 1\nb 2\nc 3\nd 4\ne 5\n", 0, 5);
    agent_ima_ml_close(m);
}

static void test_reset_after_rewrite(void **state)
{
    (void)state;
    write_file("a 1\nb 2\nc 3\n", "w");
    qerr e;
    agent_ima_ml *m = agent_ima_ml_open(path, &e);
    assert_non_null(m);
    read_at(m, 3, "", 3, 3);
    /* Truncated and rewritten (a reboot on a test rig): the old checkpoints must not be trusted. */
    write_file("xx 10\n", "w");
    read_at(m, 3, "xx 10\n", 0, 1);
    write_file("yy 20\nzz 30\nww 40\n", "a");
    read_at(m, 3, "ww 40\n", 3, 4);
    agent_ima_ml_close(m);
}

static void test_many_lines_and_limit(void **state)
{
    (void)state;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 20000; i++)
        fprintf(f, "10 %040d ima-ng sha256:%064d /usr/bin/file%d\n", i, i, i);
    fclose(f);
    qerr e;
    agent_ima_ml *m = agent_ima_ml_open(path, &e);
    assert_non_null(m);
    qbuf b;
    qbuf_init(&b, 0);
    uint64_t used, total;
    assert_int_equal(agent_ima_ml_read(m, 0, 64 << 20, &b, &used, &total, &e), 0);
    assert_int_equal(total, 20000);
    assert_int_equal(agent_ima_ml_read(m, 19999, 64 << 20, &b, &used, &total, &e), 0);
    assert_int_equal(used, 19999);
    assert_true(b.len > 0 && memcmp(b.data, "10 ", 3) == 0);
    assert_non_null(strstr((char *)qbuf_cstr(&b), "/usr/bin/file19999\n"));
    assert_int_equal(agent_ima_ml_read(m, 12345, 64 << 20, &b, &used, &total, &e), 0);
    assert_non_null(strstr(qbuf_cstr(&b), "/usr/bin/file12345\n"));
    char want[64];
    snprintf(want, sizeof want, "10 %040d ", 12345);
    assert_int_equal(strncmp(qbuf_cstr(&b), want, strlen(want)), 0);
    /* Over the limit: a clear error, no partial list. */
    assert_int_equal(agent_ima_ml_read(m, 0, 1000, &b, &used, &total, &e), -1);
    assert_non_null(strstr(e.msg, "exceeds"));
    qbuf_free(&b);
    agent_ima_ml_close(m);
}

/* A list larger than max_bytes is served in pieces of complete entries, each at most max_bytes,
 * with "more" until the last; following the pieces entry by entry gives back the whole list. An
 * entry that alone exceeds the limit is a clear error; a last line still being written is left
 * out. */
static void test_pieces(void **state)
{
    (void)state;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 60; i++)
        fprintf(f, "10 %040d ima-ng sha256:%064d /usr/lib/some/longer/path/file%d\n", i, i, i);
    fclose(f);
    qerr e;
    agent_ima_ml *m = agent_ima_ml_open(path, &e);
    assert_non_null(m);
    qbuf whole, got;
    qbuf_init(&whole, 0);
    qbuf_init(&got, 0);
    assert_int_equal(qbuf_read_file(&whole, path, 1 << 20), 0);
    uint64_t next = 0, start, end, used;
    bool more = true;
    int pieces = 0;
    while (more) {
        assert_int_equal(agent_ima_ml_piece(m, next, 4096, &start, &end, &used, &more, &e), 0);
        assert_int_equal(used, next);
        assert_true(end > start && end - start <= 4096);
        char buf[4096];
        assert_int_equal(agent_ima_ml_pread(m, buf, (size_t)(end - start), start), (long)(end - start));
        assert_int_equal(buf[end - start - 1], '\n');
        for (uint64_t i = 0; i < end - start; i++)
            next += buf[i] == '\n';
        assert_int_equal(qbuf_append(&got, buf, (size_t)(end - start)), 0);
        pieces++;
        assert_true(pieces < 100);
    }
    assert_int_equal(next, 60);
    assert_true(pieces >= 3);
    assert_int_equal(got.len, whole.len);
    assert_memory_equal(got.data, whole.data, whole.len);
    /* at the end: an empty piece, nothing more */
    assert_int_equal(agent_ima_ml_piece(m, 60, 4096, &start, &end, &used, &more, &e), 0);
    assert_true(end == start && !more && used == 60);
    /* a line being written (no newline yet) is not served and is not "more" */
    write_file("10 0000 ima-ng sha256:00 /partial", "a");
    assert_int_equal(agent_ima_ml_piece(m, 59, 4096, &start, &end, &used, &more, &e), 0);
    assert_true(!more && used == 59);
    /* one entry over the limit */
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    write_file("\n", "a");
    f = fopen(path, "a");
    assert_non_null(f);
    fprintf(f, "10 00 ima-ng sha256:00 /%s\n", big);
    fclose(f);
    assert_int_equal(agent_ima_ml_piece(m, 61, 4096, &start, &end, &used, &more, &e), -1);
    assert_non_null(strstr(e.msg, "alone is"));
    qbuf_free(&whole);
    qbuf_free(&got);
    agent_ima_ml_close(m);
}

static void test_missing_file(void **state)
{
    (void)state;
    qerr e;
    assert_null(agent_ima_ml_open("/nonexistent/quince/ima", &e));
    assert_non_null(strstr(e.msg, "/nonexistent/quince/ima"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_incremental, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_after_rewrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_lines_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pieces, setup, teardown),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
