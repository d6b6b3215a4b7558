/* b64.h — standard base64 (RFC 4648, with padding) over OpenSSL's EVP encoder.
 * Decoding rejects characters outside the alphabet, bad padding and wrong lengths. */
#ifndef QUINCE_B64_H
#define QUINCE_B64_H

#include <stddef.h>
#include <stdint.h>

/* Encoded size including the terminating NUL. */
size_t qb64_encoded_size(size_t n);
/* Encode n bytes into out (capacity cap >= qb64_encoded_size(n)). Returns length or -1. */
long qb64_encode(const uint8_t *in, size_t n, char *out, size_t cap);
/* Malloc'd NUL-terminated encoding, or NULL. */
char *qb64_encode_alloc(const uint8_t *in, size_t n);
/* Largest decoded size for n input characters. */
size_t qb64_decoded_max(size_t n);
/* Decode; returns the byte count or -1 (bad input, or output larger than cap). */
long qb64_decode(const char *s, size_t n, uint8_t *out, size_t cap);
/* Malloc'd decoding (never more than max_out bytes), length in *outlen; NULL on error. */
uint8_t *qb64_decode_alloc(const char *s, size_t n, size_t max_out, size_t *outlen);

#endif
