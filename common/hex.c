/* hex.c — hexadecimal encoding and strict decoding (see hex.h). */
#include "hex.h"

#include <limits.h>

int qhex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool qhex_valid(const char *s, size_t n)
{
    if (!s || n == 0 || (n & 1))
        return false;
    for (size_t i = 0; i < n; i++)
        if (qhex_nibble(s[i]) < 0)
            return false;
    return true;
}

static int nibble_case(char c, bool lower_only)
{
    if (lower_only && c >= 'A' && c <= 'F')
        return -1;
    return qhex_nibble(c);
}

#ifdef __SSE2__
#include <emmintrin.h>

/* 32 digits at c into 16 bytes at out; false if any is not a hex digit (or is upper-case with
 * lower_only). Digits and letters are told apart by signed range compares (bytes >= 0x80 are
 * negative and fall outside every range); the pairs are then joined in 16-bit lanes. */
static bool block32(const char *c, uint8_t *out, bool lower_only)
{
    __m128i r[2];
    for (int h = 0; h < 2; h++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(c + 16 * h));
        __m128i dig = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)),
                                    _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
        __m128i low = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('a' - 1)),
                                    _mm_cmplt_epi8(x, _mm_set1_epi8('f' + 1)));
        __m128i up = lower_only ? _mm_setzero_si128()
                                : _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('A' - 1)),
                                                _mm_cmplt_epi8(x, _mm_set1_epi8('F' + 1)));
        if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(dig, low), up)) != 0xffff)
            return false;
        __m128i v = _mm_or_si128(
            _mm_or_si128(_mm_and_si128(dig, _mm_sub_epi8(x, _mm_set1_epi8('0'))),
                         _mm_and_si128(low, _mm_sub_epi8(x, _mm_set1_epi8('a' - 10)))),
            _mm_and_si128(up, _mm_sub_epi8(x, _mm_set1_epi8('A' - 10))));
        /* Each 16-bit lane holds (first digit, second digit) in (low, high) byte. */
        r[h] = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(v, _mm_set1_epi16(0x00ff)), 4),
                            _mm_srli_epi16(v, 8));
    }
    _mm_storeu_si128((__m128i *)(void *)out, _mm_packus_epi16(r[0], r[1]));
    return true;
}
#endif

long qhex_decode_case(const char *s, size_t n, uint8_t *out, size_t cap, bool lower_only)
{
    if (n & 1)
        return -1;
    if (n == 0)
        return 0;
    if (!s || !out || n / 2 > cap || n / 2 > (size_t)LONG_MAX)
        return -1;
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 32 <= n; i += 32)
        if (!block32(s + i, out + i / 2, lower_only))
            return -1;
    /* The rest as the last 32 digits, overlapping digits already done (same bytes again). */
    if (i < n && n >= 32) {
        if (!block32(s + n - 32, out + (n - 32) / 2, lower_only))
            return -1;
        i = n;
    }
#endif
    for (; i < n; i += 2) {
        int hi = nibble_case(s[i], lower_only), lo = nibble_case(s[i + 1], lower_only);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)((hi << 4) | lo);
    }
    return (long)(n / 2);
}

long qhex_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    return qhex_decode_case(s, n, out, cap, false);
}

char *qhex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
    return out;
}
