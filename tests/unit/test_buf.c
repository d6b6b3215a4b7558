/* Unit tests for common/buf.c */
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

#include "buf.h"

static void test_append_grow(void **state)
{
    (void)state;
    qbuf b;
    qbuf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(qbuf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3000);
    assert_true(b.cap > b.len);
    assert_memory_equal(b.data + 2997, "abc", 3);
    assert_int_equal(qbuf_append(&b, NULL, 0), 0);
    assert_false(b.failed);
    qbuf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_non_null(b.data);
    qbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_integers(void **state)
{
    (void)state;
    qbuf b;
    qbuf_init(&b, 0);
    qbuf_u8(&b, 0x01);
    qbuf_u16be(&b, 0x0203);
    qbuf_u32be(&b, 0x04050607);
    qbuf_u16le(&b, 0x0908);
    qbuf_u32le(&b, 0x0d0c0b0a);
    const uint8_t want[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 };
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    qbuf_free(&b);
}

static void test_printf_cstr(void **state)
{
    (void)state;
    qbuf b;
    qbuf_init(&b, 0);
    assert_int_equal(qbuf_printf(&b, "%s-%d", "x", 42), 0);
    assert_int_equal(qbuf_append_str(&b, "/y"), 0);
    assert_int_equal(qbuf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 6);
    assert_string_equal(qbuf_cstr(&b), "x-42/y");
    assert_int_equal(b.len, 6);   /* the NUL is not counted */
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(qbuf_printf(&b, "%s", big), 0);
    assert_int_equal(b.len, 6 + 999);
    assert_int_equal(strlen(qbuf_cstr(&b)), 1005);
    qbuf_free(&b);
    /* cstr of a never-used buffer */
    qbuf_init(&b, 0);
    assert_string_equal(qbuf_cstr(&b), "");
    qbuf_free(&b);
}

static void test_limit(void **state)
{
    (void)state;
    qbuf b;
    qbuf_init(&b, 10);
    assert_int_equal(qbuf_append(&b, "0123456789", 10), 0);    /* exactly the limit */
    assert_string_equal(qbuf_cstr(&b), "0123456789");          /* NUL fits without counting */
    assert_int_equal(qbuf_u8(&b, 'x'), -1);
    assert_true(b.failed);
    assert_int_equal(b.len, 10);
    /* failure is sticky: even an empty append fails, and cstr refuses */
    assert_int_equal(qbuf_append(&b, "", 0), -1);
    assert_int_equal(qbuf_printf(&b, "%d", 1), -1);
    assert_null(qbuf_cstr(&b));
    qbuf_reset(&b);
    assert_false(b.failed);
    assert_int_equal(qbuf_printf(&b, "%s", "01234567890"), -1);   /* 11 > 10 */
    assert_int_equal(b.len, 0);
    qbuf_reset(&b);
    assert_int_equal(qbuf_reserve(&b, 11), -1);
    qbuf_reset(&b);
    assert_int_equal(qbuf_reserve(&b, 10), 0);
    assert_int_equal(qbuf_reserve(&b, SIZE_MAX), -1);
    qbuf_free(&b);
    assert_int_equal(b.max, 10);   /* free keeps the limit */
}

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/quince-buf.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int)(i % 26), f);
    fclose(f);
}

static void test_read_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/f", tmpdir);
    qbuf b;
    qbuf_init(&b, 0);
    write_file(path, 100);
    assert_int_equal(qbuf_read_file(&b, path, 100), 0);      /* exactly max */
    assert_int_equal(b.len, 100);
    assert_memory_equal(b.data, "abcdef", 6);
    errno = 0;
    assert_int_equal(qbuf_read_file(&b, path, 99), -1);      /* one byte too many */
    assert_int_equal(errno, EFBIG);
    assert_int_equal(b.len, 0);
    write_file(path, 0);
    assert_int_equal(qbuf_read_file(&b, path, 0), 0);
    assert_int_equal(b.len, 0);
    write_file(path, 70000);                                  /* several read() calls */
    assert_int_equal(qbuf_read_file(&b, path, 1 << 20), 0);
    assert_int_equal(b.len, 70000);
    assert_int_equal(b.data[69999], 'a' + 69999 % 26);
    errno = 0;
    assert_int_equal(qbuf_read_file(&b, "/nonexistent/quince", 10), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(qbuf_read_file(&b, tmpdir, 10), -1);
    assert_int_equal(errno, EISDIR);
    qbuf_free(&b);
}

static void test_read_file_unknown_size(void **state)
{
    (void)state;
    /* procfs reports size 0; the content must still be read, and the cap still applies */
    qbuf b;
    qbuf_init(&b, 0);
    assert_int_equal(qbuf_read_file(&b, "/proc/self/status", 1 << 20), 0);
    assert_true(b.len > 10);
    assert_memory_equal(b.data, "Name:", 5);
    errno = 0;
    assert_int_equal(qbuf_read_file(&b, "/proc/self/status", 10), -1);
    assert_int_equal(errno, EFBIG);
    qbuf_free(&b);
    /* the buffer's own limit also bounds the read */
    qbuf_init(&b, 10);
    errno = 0;
    assert_int_equal(qbuf_read_file(&b, "/proc/self/status", 1 << 20), -1);
    assert_int_equal(errno, EFBIG);
    qbuf_free(&b);
}

static const uint8_t sample[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
                                  0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
                                  0x17, 0x18, 0x19, 0x1a, 0x1b };

static void test_reader_values(void **state)
{
    (void)state;
    qrd r;
    qrd_init(&r, sample, sizeof sample);
    assert_int_equal(qrd_left(&r), 27);
    assert_int_equal(qrd_u8(&r), 0x01);
    assert_int_equal(qrd_u16be(&r), 0x0203);
    assert_int_equal(qrd_u32be(&r), 0x04050607);
    assert_true(qrd_u64be(&r) == 0x08090a0b0c0d0e0fULL);
    assert_int_equal(qrd_u16le(&r), 0x1110);
    assert_int_equal(qrd_u32le(&r), 0x15141312);
    uint8_t two[2];
    assert_int_equal(qrd_copy(&r, two, 2), 0);
    assert_int_equal(two[1], 0x17);
    const uint8_t *p = qrd_bytes(&r, 4);
    assert_ptr_equal(p, sample + 23);
    assert_int_equal(qrd_left(&r), 0);
    assert_true(qrd_ok(&r));
    assert_non_null(qrd_bytes(&r, 0));   /* zero bytes at the end is fine */
    assert_true(qrd_ok(&r));
}

/* A fixed read sequence over every truncation of the input: the short read fails, every later
 * read returns zero / NULL, and the reader stays failed. */
static void test_reader_every_short_read(void **state)
{
    (void)state;
    for (size_t len = 0; len < sizeof sample; len++) {
        qrd r;
        qrd_init(&r, sample, len);
        uint32_t sum = 0;
        sum += qrd_u8(&r);
        sum += qrd_u16be(&r);
        sum += qrd_u32be(&r);
        sum += (uint32_t)qrd_u64be(&r);
        sum += qrd_u16le(&r);
        sum += qrd_u32le(&r);
        uint8_t cp[2] = { 0xee, 0xee };
        int crc = qrd_copy(&r, cp, 2);
        const uint8_t *p = qrd_bytes(&r, 4);
        (void)sum;
        assert_false(qrd_ok(&r));
        assert_null(p);
        if (len < 23) {                      /* the copy itself was short */
            assert_int_equal(crc, -1);
            assert_int_equal(cp[0], 0);      /* failed copies zero their output */
        }
        assert_int_equal(qrd_left(&r), 0);
        assert_int_equal(qrd_u8(&r), 0);
        assert_int_equal(qrd_u16be(&r), 0);
        assert_int_equal(qrd_u32be(&r), 0);
        assert_true(qrd_u64be(&r) == 0);
        assert_int_equal(qrd_u16le(&r), 0);
        assert_int_equal(qrd_u32le(&r), 0);
        assert_null(qrd_bytes(&r, 0));
        size_t n = 7;
        assert_null(qrd_tpm2b(&r, 100, &n));
        assert_int_equal(n, 0);
        assert_false(qrd_ok(&r));
    }
    /* the whole input succeeds */
    qrd r;
    qrd_init(&r, sample, sizeof sample);
    qrd_u8(&r); qrd_u16be(&r); qrd_u32be(&r); qrd_u64be(&r); qrd_u16le(&r); qrd_u32le(&r);
    uint8_t cp[2];
    qrd_copy(&r, cp, 2);
    assert_non_null(qrd_bytes(&r, 4));
    assert_true(qrd_ok(&r));
}

static void test_reader_failed_read_consumes_nothing_later(void **state)
{
    (void)state;
    /* after a failure, reads that would fit are still refused */
    qrd r;
    qrd_init(&r, sample, 3);
    assert_int_equal(qrd_u32be(&r), 0);
    assert_false(qrd_ok(&r));
    assert_int_equal(qrd_u8(&r), 0);
    assert_int_equal(qrd_u16be(&r), 0);
}

static void test_reader_empty(void **state)
{
    (void)state;
    qrd r;
    qrd_init(&r, NULL, 5);   /* no data: length ignored */
    assert_int_equal(qrd_left(&r), 0);
    assert_non_null(qrd_bytes(&r, 0));
    assert_true(qrd_ok(&r));
    assert_int_equal(qrd_u8(&r), 0);
    assert_false(qrd_ok(&r));
}

static void test_tpm2b(void **state)
{
    (void)state;
    const uint8_t in[] = { 0x00, 0x03, 'a', 'b', 'c', 0x00, 0x00, 0x00, 0x05, 'x' };
    qrd r;
    qrd_init(&r, in, sizeof in);
    size_t n = 0;
    const uint8_t *p = qrd_tpm2b(&r, 3, &n);     /* size == max is allowed */
    assert_non_null(p);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "abc", 3);
    p = qrd_tpm2b(&r, 3, &n);                    /* empty TPM2B */
    assert_non_null(p);
    assert_int_equal(n, 0);
    assert_true(qrd_ok(&r));
    p = qrd_tpm2b(&r, 64, &n);                   /* claims 5, only 1 left */
    assert_null(p);
    assert_int_equal(n, 0);
    assert_false(qrd_ok(&r));

    qrd_init(&r, in, sizeof in);
    p = qrd_tpm2b(&r, 2, &n);                    /* size 3 > max 2 */
    assert_null(p);
    assert_int_equal(n, 0);
    assert_false(qrd_ok(&r));
    assert_int_equal(qrd_u8(&r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grow),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_printf_cstr),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_read_file_unknown_size),
        cmocka_unit_test(test_reader_values),
        cmocka_unit_test(test_reader_every_short_read),
        cmocka_unit_test(test_reader_failed_read_consumes_nothing_later),
        cmocka_unit_test(test_reader_empty),
        cmocka_unit_test(test_tpm2b),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
