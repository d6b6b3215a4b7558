/* Unit tests for common/hex.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>

#include "hex.h"

static void test_nibble(void **state)
{
    (void)state;
    assert_int_equal(qhex_nibble('0'), 0);
    assert_int_equal(qhex_nibble('9'), 9);
    assert_int_equal(qhex_nibble('a'), 10);
    assert_int_equal(qhex_nibble('F'), 15);
    assert_int_equal(qhex_nibble('g'), -1);
    assert_int_equal(qhex_nibble(' '), -1);
    assert_int_equal(qhex_nibble('\0'), -1);
}

static void test_encode(void **state)
{
    (void)state;
    const uint8_t in[] = { 0x00, 0x01, 0xab, 0xff, 0x7f };
    char out[2 * sizeof in + 1];
    assert_ptr_equal(qhex_encode(in, sizeof in, out), out);
    assert_string_equal(out, "0001abff7f");
    char empty[1] = { 'x' };
    qhex_encode(in, 0, empty);
    assert_string_equal(empty, "");
}

static void test_decode(void **state)
{
    (void)state;
    uint8_t out[8];
    assert_int_equal(qhex_decode("00ABcdEF", 8, out, sizeof out), 4);
    const uint8_t want[] = { 0x00, 0xab, 0xcd, 0xef };
    assert_memory_equal(out, want, 4);
    assert_int_equal(qhex_decode("", 0, out, sizeof out), 0);
    /* round trip of every byte value */
    uint8_t all[256], back[256];
    char txt[513];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    qhex_encode(all, 256, txt);
    assert_int_equal(qhex_decode(txt, 512, back, sizeof back), 256);
    assert_memory_equal(all, back, 256);
}

static void test_decode_bad(void **state)
{
    (void)state;
    uint8_t out[8];
    assert_int_equal(qhex_decode("abc", 3, out, sizeof out), -1);     /* odd */
    assert_int_equal(qhex_decode("0g", 2, out, sizeof out), -1);      /* bad char */
    assert_int_equal(qhex_decode("g0", 2, out, sizeof out), -1);
    assert_int_equal(qhex_decode("00 1", 4, out, sizeof out), -1);
    assert_int_equal(qhex_decode("0x10", 4, out, sizeof out), -1);
    assert_int_equal(qhex_decode("00\0" "0", 4, out, sizeof out), -1);
}

static void test_decode_cap(void **state)
{
    (void)state;
    uint8_t out[4] = { 0xee, 0xee, 0xee, 0xee };
    assert_int_equal(qhex_decode("0102", 4, out, 2), 2);
    assert_int_equal(out[2], 0xee);
    assert_int_equal(qhex_decode("010203", 6, out, 2), -1);
    assert_int_equal(out[2], 0xee);   /* nothing past cap */
    assert_int_equal(qhex_decode("01", 2, out, 0), -1);
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(qhex_valid("00ff", 4));
    assert_true(qhex_valid("AbCd", 4));
    assert_false(qhex_valid("", 0));
    assert_false(qhex_valid("abc", 3));
    assert_false(qhex_valid("zz", 2));
    assert_true(qhex_valid("abzz", 2));   /* only n characters are looked at */
}

/* qhex_decode_case on lengths that use the 32-digit blocks and the digit-pair tail: every byte
 * value at every position is accepted exactly when it is a hex digit (upper-case ones only
 * without lower_only), and the bytes decoded are those of a digit-by-digit reference. */
static void test_decode_case_blocks(void **state)
{
    (void)state;
    static const size_t lens[] = { 2, 30, 32, 34, 40, 64, 66, 96, 128 };
    char txt[129];
    uint8_t out[64], want[64];
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        for (size_t i = 0; i < n; i++)
            txt[i] = "0123456789abcdef"[(i * 7 + li) % 16];
        for (size_t i = 0; i < n / 2; i++)
            want[i] = (uint8_t)((qhex_nibble(txt[2 * i]) << 4) | qhex_nibble(txt[2 * i + 1]));
        assert_int_equal(qhex_decode_case(txt, n, out, sizeof out, true), (long)(n / 2));
        assert_memory_equal(out, want, n / 2);
        for (size_t pos = 0; pos < n; pos += (n > 40 ? 3 : 1)) {
            char keep = txt[pos];
            for (int c = 0; c < 256; c++) {
                txt[pos] = (char)c;
                int v = qhex_nibble((char)c);
                bool upper = c >= 'A' && c <= 'F';
                long lo = qhex_decode_case(txt, n, out, sizeof out, true);
                long any = qhex_decode_case(txt, n, out, sizeof out, false);
                assert_int_equal(lo, v >= 0 && !upper ? (long)(n / 2) : -1);
                assert_int_equal(any, v >= 0 ? (long)(n / 2) : -1);
                if (any >= 0) {
                    uint8_t b = out[pos / 2];
                    assert_int_equal(pos % 2 ? (b & 0x0f) : (b >> 4), v);
                }
            }
            txt[pos] = keep;
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nibble),     cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode),     cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_decode_cap), cmocka_unit_test(test_valid),
        cmocka_unit_test(test_decode_case_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
