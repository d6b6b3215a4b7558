/* buf.h — a growable byte buffer and a bounds-checked reader for binary structures.
 * The reader never reads past its end: after any short read it is "failed" and every later
 * read returns 0 bytes / zero values, so callers may check qrd_ok() once at the end. */
#ifndef QUINCE_BUF_H
#define QUINCE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct qbuf {
    uint8_t *data;
    size_t len, cap;
    size_t max;      /* hard limit on len (0 = no limit); appends beyond it fail */
    bool failed;     /* an append failed (allocation or limit) */
} qbuf;

void qbuf_init(qbuf *b, size_t max);
void qbuf_free(qbuf *b);
void qbuf_reset(qbuf *b);                          /* len = 0, keeps memory */
int qbuf_reserve(qbuf *b, size_t extra);           /* 0 or -1 */
int qbuf_append(qbuf *b, const void *p, size_t n); /* 0 or -1 */
int qbuf_append_str(qbuf *b, const char *s);
int qbuf_printf(qbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int qbuf_u8(qbuf *b, uint8_t v);
int qbuf_u16be(qbuf *b, uint16_t v);
int qbuf_u32be(qbuf *b, uint32_t v);
int qbuf_u16le(qbuf *b, uint16_t v);
int qbuf_u32le(qbuf *b, uint32_t v);
/* NUL-terminate without counting the NUL in len; returns data as char* or NULL on failure. */
char *qbuf_cstr(qbuf *b);
/* Read a whole file (at most max bytes; larger → error). Returns 0 or -1 with errno set
 * (EFBIG when too large). */
int qbuf_read_file(qbuf *b, const char *path, size_t max);

typedef struct qrd {
    const uint8_t *p;
    size_t len, off;
    bool failed;
} qrd;

void qrd_init(qrd *r, const void *p, size_t len);
bool qrd_ok(const qrd *r);
size_t qrd_left(const qrd *r);
uint8_t qrd_u8(qrd *r);
uint16_t qrd_u16be(qrd *r);
uint32_t qrd_u32be(qrd *r);
uint64_t qrd_u64be(qrd *r);
uint16_t qrd_u16le(qrd *r);
uint32_t qrd_u32le(qrd *r);
/* Pointer to the next n bytes (NULL and failed if fewer remain). */
const uint8_t *qrd_bytes(qrd *r, size_t n);
/* Copy n bytes into out; -1 (and failed) if fewer remain. */
int qrd_copy(qrd *r, void *out, size_t n);
/* A TPM2B: u16be size then bytes; size must be <= max. Returns pointer, size in *n. */
const uint8_t *qrd_tpm2b(qrd *r, size_t max, size_t *n);

#endif
