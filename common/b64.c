/* b64.c — RFC 4648 base64 with padding over OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock.
 * EVP_DecodeBlock alone is too lenient ('=' decodes as zero anywhere, surrounding white space
 * is skipped) and counts the padding as output bytes, so input is validated here first and
 * the padding bytes are dropped from the result. */
#include "b64.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

/* EVP takes int lengths: keep every input and output below INT_MAX. */
#define QB64_MAX_RAW  ((size_t)INT_MAX / 4 * 3 - 3)
#define QB64_MAX_TEXT ((size_t)INT_MAX / 4 * 4)

size_t qb64_encoded_size(size_t n)
{
    size_t groups = n / 3 + (n % 3 != 0);
    if (groups > (SIZE_MAX - 1) / 4)
        return SIZE_MAX;
    return groups * 4 + 1;
}

long qb64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    if (!out || n > QB64_MAX_RAW || (n > 0 && !in) || cap < qb64_encoded_size(n))
        return -1;
    if (n == 0) {
        out[0] = '\0';
        return 0;
    }
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    if (len < 0)
        return -1;
    return len;
}

char *qb64_encode_alloc(const uint8_t *in, size_t n)
{
    if (n > QB64_MAX_RAW)
        return NULL;
    size_t sz = qb64_encoded_size(n);
    char *out = malloc(sz);
    if (!out)
        return NULL;
    if (qb64_encode(in, n, out, sz) < 0) {
        free(out);
        return NULL;
    }
    return out;
}

size_t qb64_decoded_max(size_t n)
{
    return (n / 4 + (n % 4 != 0)) * 3;
}

static bool b64_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Strict check: length a multiple of 4, only alphabet characters, and at most two '='
 * only at the very end. Returns the exact decoded length, or -1. */
static long b64_check(const char *s, size_t n)
{
    if (n % 4 != 0 || n > QB64_MAX_TEXT)
        return -1;
    if (n == 0)
        return 0;
    if (!s)
        return -1;
    size_t pad = 0;
    if (s[n - 1] == '=')
        pad = (s[n - 2] == '=') ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_alpha((unsigned char)s[i]))
            return -1;
    return (long)(n / 4 * 3 - pad);
}

long qb64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    long want = b64_check(s, n);
    if (want < 0 || (size_t)want > cap)
        return -1;
    if (want == 0 && n == 0)
        return 0;
    if (!out)
        return -1;
    /* EVP writes 3 bytes per quartet, padding included: decode the last quartet into a local
     * block so that only the real bytes reach `out`. */
    size_t head = n - 4;
    if (head > 0 && EVP_DecodeBlock(out, (const unsigned char *)s, (int)head) != (int)(head / 4 * 3))
        return -1;
    unsigned char last[3];
    if (EVP_DecodeBlock(last, (const unsigned char *)s + head, 4) != 3)
        return -1;
    size_t tail = (size_t)want - head / 4 * 3;
    memcpy(out + head / 4 * 3, last, tail);
    return want;
}

uint8_t *qb64_decode_alloc(const char *s, size_t n, size_t max_out, size_t *outlen)
{
    long want = b64_check(s, n);
    if (want < 0 || (size_t)want > max_out)
        return NULL;
    uint8_t *out = malloc(want > 0 ? (size_t)want : 1);
    if (!out)
        return NULL;
    long got = qb64_decode(s, n, out, (size_t)want);
    if (got != want) {
        free(out);
        return NULL;
    }
    if (outlen)
        *outlen = (size_t)got;
    return out;
}
