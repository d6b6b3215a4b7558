/* hex.h — hexadecimal encoding. Decoding accepts either case, rejects odd lengths and
 * non-hex characters, and never writes past `cap`. */
#ifndef QUINCE_HEX_H
#define QUINCE_HEX_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Decode n hex characters into out (capacity cap). Returns the byte count, or -1 on bad input
 * or when n/2 > cap. */
long qhex_decode(const char *s, size_t n, uint8_t *out, size_t cap);
/* qhex_decode that can refuse upper-case digits (lower_only), for the hot paths (IMA lines,
 * policy digests): 32 digits at a time with SSE2 where the CPU has it. Same contract. */
long qhex_decode_case(const char *s, size_t n, uint8_t *out, size_t cap, bool lower_only);
/* true if s[0..n) is non-empty, even-length hex. */
bool qhex_valid(const char *s, size_t n);
/* Lower-case encode; out must hold 2*n+1 bytes; NUL-terminated. Returns out. */
char *qhex_encode(const uint8_t *in, size_t n, char *out);
/* 0..15 for a hex digit, -1 otherwise. */
int qhex_nibble(char c);

#endif
