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

long qhex_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n & 1)
        return -1;
    if (n == 0)
        return 0;
    if (!s || !out || n / 2 > cap || n / 2 > (size_t)LONG_MAX)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = qhex_nibble(s[i]), lo = qhex_nibble(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)((hi << 4) | lo);
    }
    return (long)(n / 2);
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
