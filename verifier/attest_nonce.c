/* attest_nonce.c — the quote request's nonce (attest.h: vattest_nonce). */
#include "attest.h"

#include <stdint.h>
#include <openssl/rand.h>

int vattest_nonce(char *out, size_t len)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t rnd[64];
    size_t n = 0;
    while (n < len) {
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return -1;
        for (size_t i = 0; i < sizeof rnd && n < len; i++)
            if (rnd[i] < 248)          /* 248 = 4 * 62: no modulo bias */
                out[n++] = alnum[rnd[i] % 62];
    }
    out[len] = '\0';
    return 0;
}
