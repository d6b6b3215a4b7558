/* hash_direct.c — one-shot SHA-1/SHA-2 through OpenSSL's direct SHA functions (see
 * hash_direct.h for why). Their deprecation warnings are silenced in this file only. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "hash_direct.h"

#include <openssl/sha.h>

int qhash_direct(qhash_alg alg, const void *a, size_t na, const void *b, size_t nb, uint8_t *out)
{
    if ((!a && na) || (!b && nb) || !out)
        return -1;
    switch (alg) {
    case QHASH_SHA1: {
        SHA_CTX c;
        if (SHA1_Init(&c) != 1 || SHA1_Update(&c, a, na) != 1 || (nb && SHA1_Update(&c, b, nb) != 1) ||
            SHA1_Final(out, &c) != 1)
            return -1;
        return 0;
    }
    case QHASH_SHA256: {
        SHA256_CTX c;
        if (SHA256_Init(&c) != 1 || SHA256_Update(&c, a, na) != 1 ||
            (nb && SHA256_Update(&c, b, nb) != 1) || SHA256_Final(out, &c) != 1)
            return -1;
        return 0;
    }
    case QHASH_SHA384: {
        SHA512_CTX c;
        if (SHA384_Init(&c) != 1 || SHA384_Update(&c, a, na) != 1 ||
            (nb && SHA384_Update(&c, b, nb) != 1) || SHA384_Final(out, &c) != 1)
            return -1;
        return 0;
    }
    case QHASH_SHA512: {
        SHA512_CTX c;
        if (SHA512_Init(&c) != 1 || SHA512_Update(&c, a, na) != 1 ||
            (nb && SHA512_Update(&c, b, nb) != 1) || SHA512_Final(out, &c) != 1)
            return -1;
        return 0;
    }
    default:
        return -1;
    }
}
