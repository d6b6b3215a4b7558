/* hash_direct.h — SHA-1/SHA-2 digests on the engine's hot path, through OpenSSL's direct SHA
 * functions: a context on the stack, no EVP_MD_CTX, no allocation.
 * Why not EVP: with OpenSSL 3.0, every EVP_DigestInit_ex2 (and EVP_MD_CTX_copy_ex) frees and
 * allocates the provider's digest context, even when the EVP_MD is the same as last time
 * (measured on 3.0.19: one malloc, one free and a cleanse per digest, about 45 ns of ~120 ns
 * for 100 bytes of SHA-256); the IMA replay does three digests per entry. The direct functions
 * are the same OpenSSL code (SHA-NI/AVX2 block functions picked at run time), declared
 * deprecated since 3.0 but part of its API; only this file uses them. They bypass the provider
 * layer, so a FIPS provider configuration does not apply to these digests (PCR replay and
 * template hashes, not key operations). */
#ifndef QUINCE_HASH_DIRECT_H
#define QUINCE_HASH_DIRECT_H

#include <stddef.h>
#include <stdint.h>
#include "pcr_bank.h"

/* out = H(a[0..na) || b[0..nb)) for sha1/sha256/sha384/sha512 (b may be NULL when nb is 0);
 * out holds qhash_size(alg) bytes. Returns 0, or -1 for another algorithm or a failed call. */
int qhash_direct(qhash_alg alg, const void *a, size_t na, const void *b, size_t nb, uint8_t *out);

#endif
