/* Unit tests for common/hex.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nibble),     cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode),     cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_decode_cap), cmocka_unit_test(test_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
