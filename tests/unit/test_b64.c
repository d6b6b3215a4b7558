/* Unit tests for common/b64.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"

/* RFC 4648 section 10 test vectors. */
static const struct { const char *raw, *enc; } rfc[] = {
    { "", "" },         { "f", "Zg==" },        { "fo", "Zm8=" },       { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};
#define NRFC (sizeof rfc / sizeof rfc[0])

static void test_rfc_encode(void **state)
{
    (void)state;
    for (size_t i = 0; i < NRFC; i++) {
        size_t n = strlen(rfc[i].raw);
        char out[16];
        assert_int_equal(qb64_encoded_size(n), strlen(rfc[i].enc) + 1);
        assert_int_equal(qb64_encode((const uint8_t *)rfc[i].raw, n, out, sizeof out), (long)strlen(rfc[i].enc));
        assert_string_equal(out, rfc[i].enc);
        char *a = qb64_encode_alloc((const uint8_t *)rfc[i].raw, n);
        assert_non_null(a);
        assert_string_equal(a, rfc[i].enc);
        free(a);
    }
}

static void test_rfc_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < NRFC; i++) {
        size_t n = strlen(rfc[i].enc), want = strlen(rfc[i].raw);
        uint8_t out[16];
        assert_int_equal(qb64_decode(rfc[i].enc, n, out, sizeof out), (long)want);
        assert_memory_equal(out, rfc[i].raw, want);
        /* exactly enough room (padding is not counted) */
        assert_int_equal(qb64_decode(rfc[i].enc, n, out, want), (long)want);
        size_t len = 99;
        uint8_t *a = qb64_decode_alloc(rfc[i].enc, n, 64, &len);
        assert_non_null(a);
        assert_int_equal(len, want);
        assert_memory_equal(a, rfc[i].raw, want);
        free(a);
        assert_true(qb64_decoded_max(n) >= want);
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    static const char *bad[] = {
        "Zg=",  "Zg",   "Z",     "Zm9vY",   "Zg=a",  "Z===",  "====",   "=Zm9",     "Zm=v",
        "Zm9v\n", " Zm9v", "Zm9v ", "Zm-v",   "Zm_v",  "Zm9vY===", "Zm9v====", "Zg==Zg==", "Zm9\x80",
        "Zm.v", "Zm9v\0Zg=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t out[32];
        size_t n = strlen(bad[i]);
        if (i == sizeof bad / sizeof bad[0] - 1)
            n = 8;   /* embedded NUL */
        assert_int_equal(qb64_decode(bad[i], n, out, sizeof out), -1);
        size_t len = 0;
        assert_null(qb64_decode_alloc(bad[i], n, 64, &len));
    }
}

static void test_caps(void **state)
{
    (void)state;
    uint8_t out[8];
    memset(out, 0xee, sizeof out);
    /* "foob" needs 4 bytes: 3 is too small and nothing past it is written */
    assert_int_equal(qb64_decode("Zm9vYg==", 8, out, 3), -1);
    assert_int_equal(qb64_decode("Zm9vYg==", 8, out, 4), 4);
    assert_int_equal(out[4], 0xee);
    assert_int_equal(out[5], 0xee);
    memset(out, 0xee, sizeof out);
    assert_int_equal(qb64_decode("Zm9vYmE=", 8, out, 5), 5);
    assert_int_equal(out[5], 0xee);
    /* encode: capacity must include the NUL */
    char enc[8];
    assert_int_equal(qb64_encode((const uint8_t *)"foo", 3, enc, 4), -1);
    assert_int_equal(qb64_encode((const uint8_t *)"foo", 3, enc, 5), 4);
    size_t len;
    assert_null(qb64_decode_alloc("Zm9vYmFy", 8, 5, &len));
    uint8_t *a = qb64_decode_alloc("Zm9vYmFy", 8, 6, &len);
    assert_non_null(a);
    assert_int_equal(len, 6);
    free(a);
}

static void test_sizes(void **state)
{
    (void)state;
    assert_int_equal(qb64_encoded_size(0), 1);
    assert_int_equal(qb64_encoded_size(1), 5);
    assert_int_equal(qb64_encoded_size(3), 5);
    assert_int_equal(qb64_encoded_size(4), 9);
    assert_int_equal(qb64_decoded_max(0), 0);
    assert_int_equal(qb64_decoded_max(4), 3);
    assert_int_equal(qb64_decoded_max(8), 6);
    assert_int_equal(qb64_encoded_size(SIZE_MAX), SIZE_MAX);
}

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t raw[300], back[300];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof raw; n++) {
        char *e = qb64_encode_alloc(raw, n);
        assert_non_null(e);
        size_t el = strlen(e);
        assert_int_equal(el % 4, 0);
        assert_int_equal(qb64_decode(e, el, back, n), (long)n);
        assert_memory_equal(raw, back, n);
        free(e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_encode), cmocka_unit_test(test_rfc_decode),
        cmocka_unit_test(test_bad_input),  cmocka_unit_test(test_caps),
        cmocka_unit_test(test_sizes),      cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
