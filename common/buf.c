/* buf.c — growable byte buffer and bounds-checked reader (see buf.h).
 * A qbuf keeps one spare byte past len so qbuf_cstr never needs to grow past `max`.
 * Once an append fails the buffer stays failed (every later append fails too) until
 * qbuf_reset, so a builder may check b->failed once at the end. */
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QBUF_MIN_CAP 64

void qbuf_init(qbuf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void qbuf_free(qbuf *b)
{
    free(b->data);
    size_t max = b->max;
    qbuf_init(b, max);
}

void qbuf_reset(qbuf *b)
{
    b->len = 0;
    b->failed = false;
}

/* Grow so that cap >= need (need counts the spare NUL byte). */
static int grow(qbuf *b, size_t need)
{
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : QBUF_MIN_CAP;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    /* Never hold much more than the limit allows. */
    if (b->max && ncap > b->max + 1 && need <= b->max + 1)
        ncap = b->max + 1;
    uint8_t *p = realloc(b->data, ncap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int qbuf_reserve(qbuf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (extra > SIZE_MAX - 1 - b->len || (b->max && b->len + extra > b->max) ||
        grow(b, b->len + extra + 1) < 0) {
        b->failed = true;
        return -1;
    }
    return 0;
}

int qbuf_append(qbuf *b, const void *p, size_t n)
{
    if (qbuf_reserve(b, n) < 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int qbuf_append_str(qbuf *b, const char *s)
{
    return qbuf_append(b, s, strlen(s));
}

int qbuf_printf(qbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || qbuf_reserve(b, (size_t)n) < 0) {
        b->failed = true;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int qbuf_u8(qbuf *b, uint8_t v)
{
    return qbuf_append(b, &v, 1);
}

int qbuf_u16be(qbuf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    return qbuf_append(b, x, 2);
}

int qbuf_u32be(qbuf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    return qbuf_append(b, x, 4);
}

int qbuf_u16le(qbuf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    return qbuf_append(b, x, 2);
}

int qbuf_u32le(qbuf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    return qbuf_append(b, x, 4);
}

char *qbuf_cstr(qbuf *b)
{
    if (b->failed)
        return NULL;
    if (grow(b, b->len + 1) < 0) {
        b->failed = true;
        return NULL;
    }
    b->data[b->len] = '\0';
    return (char *)b->data;
}

int qbuf_read_file(qbuf *b, const char *path, size_t max)
{
    qbuf_reset(b);
    if (b->max && max > b->max)
        max = b->max;
    if (max > SIZE_MAX - 2)
        max = SIZE_MAX - 2;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0)
        goto fail;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        if ((unsigned long long)st.st_size > max) {
            errno = EFBIG;
            goto fail;
        }
        if (grow(b, (size_t)st.st_size + 2) < 0) {
            errno = ENOMEM;
            goto fail;
        }
    }
    /* Read until EOF (sizes of procfs/securityfs files are not known in advance). */
    for (;;) {
        if (b->cap == 0 || b->len == b->cap - 1) {
            size_t want = b->cap ? b->cap * 2 : 4096;
            if (want > max + 2)
                want = max + 2;     /* room for max bytes, one more to detect too-large, the NUL */
            if (want <= b->cap) {
                errno = EFBIG;
                goto fail;
            }
            if (grow(b, want) < 0) {
                errno = ENOMEM;
                goto fail;
            }
        }
        ssize_t r = read(fd, b->data + b->len, b->cap - 1 - b->len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (r == 0)
            break;
        b->len += (size_t)r;
        if (b->len > max) {
            errno = EFBIG;
            goto fail;
        }
    }
    close(fd);
    return 0;
fail:;
    int saved = errno;
    close(fd);
    b->len = 0;
    errno = saved;
    return -1;
}

/* ---- reader ---- */

static const uint8_t qrd_empty[1];

void qrd_init(qrd *r, const void *p, size_t len)
{
    r->p = p;
    r->len = p ? len : 0;
    r->off = 0;
    r->failed = false;
}

bool qrd_ok(const qrd *r)
{
    return !r->failed;
}

size_t qrd_left(const qrd *r)
{
    return r->failed ? 0 : r->len - r->off;
}

const uint8_t *qrd_bytes(qrd *r, size_t n)
{
    if (r->failed || n > r->len - r->off) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *p = r->p ? r->p + r->off : qrd_empty;
    r->off += n;
    return p;
}

int qrd_copy(qrd *r, void *out, size_t n)
{
    const uint8_t *p = qrd_bytes(r, n);
    if (!p) {
        if (out && n)
            memset(out, 0, n);
        return -1;
    }
    if (n)
        memcpy(out, p, n);
    return 0;
}

uint8_t qrd_u8(qrd *r)
{
    const uint8_t *p = qrd_bytes(r, 1);
    return p ? p[0] : 0;
}

uint16_t qrd_u16be(qrd *r)
{
    const uint8_t *p = qrd_bytes(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

uint32_t qrd_u32be(qrd *r)
{
    const uint8_t *p = qrd_bytes(r, 4);
    return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3] : 0;
}

uint64_t qrd_u64be(qrd *r)
{
    const uint8_t *p = qrd_bytes(r, 8);
    if (!p)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

uint16_t qrd_u16le(qrd *r)
{
    const uint8_t *p = qrd_bytes(r, 2);
    return p ? (uint16_t)(p[0] | (p[1] << 8)) : 0;
}

uint32_t qrd_u32le(qrd *r)
{
    const uint8_t *p = qrd_bytes(r, 4);
    return p ? (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24) : 0;
}

const uint8_t *qrd_tpm2b(qrd *r, size_t max, size_t *n)
{
    if (n)
        *n = 0;
    uint16_t size = qrd_u16be(r);
    if (r->failed)
        return NULL;
    if (size > max) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *p = qrd_bytes(r, size);
    if (p && n)
        *n = size;
    return p;
}
