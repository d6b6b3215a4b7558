/* initramfs.c — hash every regular file of an initramfs image (see allowlist_build.h).
 * A real image is several archives back to back: typically an uncompressed early cpio
 * (microcode) and then a compressed one; zero bytes may pad between them. libarchive stops at
 * the first TRAILER!!!, so the image is walked segment by segment over an mmap:
 *  - skip zero bytes; probe the segment with the raw format + every filter;
 *  - uncompressed: read one archive, advance by the bytes libarchive consumed;
 *  - compressed: decompress the whole segment into memory (advance by the compressed bytes
 *    consumed), then read every archive in it the same way (a compressed stream may itself hold
 *    several cpio archives, or be several concatenated compressed members).
 * Some decoders (zstd) reject data after the end of their stream; if a compressed segment fails,
 * it is retried with the image's trailing zero padding cut off (such a segment must be the last).
 * Hard links in newc carry their data on the last link only; every link of a group gets the
 * digest of the member that has data. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "allowlist_build.h"

struct hlink { int64_t dev, ino, size; size_t idx; };

struct ictx {
    const char *file;
    const EVP_MD *md;
    size_t dlen;
    EVP_MD_CTX *ctx;
    qal_list *l;
    struct hlink *hl; size_t nhl, caphl;
    size_t narchives;
};

static int cmp_hlink(const void *a, const void *b)
{
    const struct hlink *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Give every zero-size member of a hard-link group the digest of the member holding the data. */
static void resolve_hlinks(struct ictx *c)
{
    if (c->nhl == 0)
        return;
    qsort(c->hl, c->nhl, sizeof *c->hl, cmp_hlink);
    for (size_t i = 0; i < c->nhl;) {
        size_t j = i, data = QAL_NONE;
        while (j < c->nhl && c->hl[j].dev == c->hl[i].dev && c->hl[j].ino == c->hl[i].ino) {
            if (c->hl[j].size > 0)
                data = c->hl[j].idx;
            j++;
        }
        if (data != QAL_NONE)
            for (size_t k = i; k < j; k++)
                if (c->hl[k].size == 0)
                    memcpy(c->l->items[c->hl[k].idx].digest, c->l->items[data].digest, c->dlen);
        i = j;
    }
    c->nhl = 0;
}

static int add_member(struct ictx *c, struct archive *a, struct archive_entry *e, qerr *err)
{
    const char *name = archive_entry_pathname(e);
    if (!name)
        return qerr_set(err, "%s: member without a usable name", c->file);
    while (name[0] == '.' && name[1] == '/')
        name += 2;
    if (!EVP_DigestInit_ex(c->ctx, c->md, NULL))
        return qerr_set(err, "digest init failed");
    const void *blk;
    size_t n;
    la_int64_t off;
    int r;
    while ((r = archive_read_data_block(a, &blk, &n, &off)) == ARCHIVE_OK || r == ARCHIVE_WARN)
        if (n && !EVP_DigestUpdate(c->ctx, blk, n))
            return qerr_set(err, "digest update failed");
    if (r != ARCHIVE_EOF)
        return qerr_set(err, "%s: corrupt archive member %s: %s", c->file, name,
                        archive_error_string(a) ? archive_error_string(a) : "read error");
    uint8_t md[QHASH_MAX_SIZE];
    unsigned mdlen = 0;
    if (!EVP_DigestFinal_ex(c->ctx, md, &mdlen))
        return qerr_set(err, "digest final failed");
    char norm[QAL_MAX_PATH + 1];
    if (qal_log_path(name, strlen(name), norm, sizeof norm) < 0) {
        fprintf(stderr, "quince-tenant: create-allowlist: warning: %s: skipping member '%.200s': "
                "name too long or holds a newline\n", c->file, name);
        return 0;
    }
    long idx = qal_add(c->l, name, strlen(name), NULL, md, mdlen, err);
    if (idx < 0)
        return -1;
    if (archive_entry_nlink(e) > 1) {
        if (c->nhl == c->caphl) {
            size_t ncap = c->caphl ? c->caphl * 2 : 64;
            if (ncap > QAL_MAX_ITEMS)
                return qerr_set(err, "%s: too many hard links", c->file);
            struct hlink *nh = realloc(c->hl, ncap * sizeof *nh);
            if (!nh)
                return qerr_set(err, "out of memory");
            c->hl = nh;
            c->caphl = ncap;
        }
        c->hl[c->nhl++] = (struct hlink){ archive_entry_dev(e), archive_entry_ino64(e),
                                          archive_entry_size(e), (size_t)idx };
    }
    return 0;
}

/* Read one (uncompressed) archive from data[0..len); *used = bytes it took. */
static int read_one_archive(struct ictx *c, const uint8_t *data, size_t len, size_t base,
                            size_t *used, qerr *err)
{
    struct archive *a = archive_read_new();
    if (!a)
        return qerr_set(err, "out of memory");
    archive_read_support_format_all(a);
    int rc = 0;
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        rc = qerr_set(err, "%s: corrupt archive at offset %zu: %s", c->file, base,
                      archive_error_string(a) ? archive_error_string(a) : "cannot open");
        goto out;
    }
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        if (archive_entry_filetype(e) != AE_IFREG)
            continue;
        if (add_member(c, a, e, err) < 0) {
            rc = -1;
            goto out;
        }
    }
    if (r != ARCHIVE_EOF) {
        rc = qerr_set(err, "%s: corrupt archive at offset %zu: %s", c->file, base,
                      archive_error_string(a) ? archive_error_string(a) : "read error");
        goto out;
    }
    la_int64_t n = archive_filter_bytes(a, -1);
    if (n <= 0 || (uint64_t)n > len) {
        rc = qerr_set(err, "%s: corrupt archive at offset %zu: no archive found", c->file, base);
        goto out;
    }
    *used = (size_t)n;
    resolve_hlinks(c);
    c->narchives++;
out:
    archive_read_free(a);
    return rc;
}

/* Every archive in data[0..len), with zero bytes between and after them. */
static int read_archives(struct ictx *c, const uint8_t *data, size_t len, size_t base, qerr *err)
{
    size_t p = 0;
    for (;;) {
        while (p < len && data[p] == 0)
            p++;
        if (p == len)
            return 0;
        size_t used = 0;
        if (read_one_archive(c, data + p, len - p, base, &used, err) < 0)
            return -1;
        p += used;
    }
}

/* Probe data[0..len): *out = NULL if uncompressed, else the whole decompressed segment (malloc'd,
 * *olen bytes) and *clen = compressed bytes consumed. */
static int unpack(const uint8_t *data, size_t len, uint8_t **out, size_t *olen, size_t *clen,
                  const char *file, size_t base, qerr *err)
{
    *out = NULL;
    *olen = *clen = 0;
    struct archive *a = archive_read_new();
    if (!a)
        return qerr_set(err, "out of memory");
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;
    struct archive_entry *e;
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK ||
        archive_read_next_header(a, &e) != ARCHIVE_OK) {
        rc = qerr_set(err, "%s: corrupt image at offset %zu: %s", file, base,
                      archive_error_string(a) ? archive_error_string(a) : "unreadable");
        goto out;
    }
    if (archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE)
        goto out;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : (size_t)1 << 20;
            if (ncap > QAL_MAX_UNPACKED)
                ncap = QAL_MAX_UNPACKED;
            if (ncap == cap) {
                rc = qerr_set(err, "%s: segment at offset %zu unpacks to more than %zu bytes", file,
                              base, QAL_MAX_UNPACKED);
                goto out;
            }
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                rc = qerr_set(err, "out of memory");
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        la_ssize_t r = archive_read_data(a, buf + n, cap - n);
        if (r < 0) {
            rc = qerr_set(err, "%s: corrupt %s data at offset %zu: %s", file,
                          archive_filter_name(a, 0), base,
                          archive_error_string(a) ? archive_error_string(a) : "read error");
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    la_int64_t used = archive_filter_bytes(a, -1);
    if (used <= 0 || (uint64_t)used > len) {
        rc = qerr_set(err, "%s: corrupt image at offset %zu", file, base);
        goto out;
    }
    *clen = (size_t)used;
    *olen = n;
    *out = buf ? buf : malloc(1);
    buf = NULL;
    if (!*out)
        rc = qerr_set(err, "out of memory");
out:
    free(buf);
    archive_read_free(a);
    return rc;
}

/* unpack(), retried without the image's trailing zero padding for decoders that reject it. */
static int unpack_segment(const uint8_t *data, size_t len, uint8_t **out, size_t *olen,
                          size_t *clen, const char *file, size_t base, qerr *err)
{
    if (unpack(data, len, out, olen, clen, file, base, err) == 0)
        return 0;
    size_t end = len;
    while (end > 0 && data[end - 1] == 0)
        end--;
    if (end == len)
        return -1;
    qerr first = { 0 };
    if (err)
        first = *err;
    /* the stream itself may end in a few zero bytes: try lengths end .. end+8 */
    for (size_t k = 0; k <= 8 && end + k < len; k++)
        if (unpack(data, end + k, out, olen, clen, file, base, NULL) == 0) {
            if (err)
                qerr_clear(err);
            return 0;
        }
    if (err)
        *err = first;
    return -1;
}

int qal_read_initramfs(const char *file, qhash_alg alg, qal_list *l, qerr *err)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qerr_set(err, "initramfs %s: %s", file, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return qerr_set(err, "initramfs %s: %s", file, strerror(e));
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0) {
        close(fd);
        return qerr_set(err, "initramfs %s: %s", file, S_ISREG(st.st_mode) ? "empty file" : "not a regular file");
    }
    size_t size = (size_t)st.st_size;
    uint8_t *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return qerr_set(err, "initramfs %s: %s", file, strerror(e));

    struct ictx c = { .file = file, .md = qhash_md(alg), .dlen = qhash_size(alg), .l = l };
    int rc = 0;
    c.ctx = EVP_MD_CTX_new();
    if (!c.md || !c.ctx) {
        rc = qerr_set(err, "hash algorithm %s is not available", qhash_name(alg));
        goto out;
    }
    for (size_t p = 0;;) {
        while (p < size && map[p] == 0)
            p++;
        if (p == size)
            break;
        uint8_t *buf;
        size_t blen, clen, used;
        if (unpack_segment(map + p, size - p, &buf, &blen, &clen, file, p, err) < 0) {
            rc = -1;
            break;
        }
        if (!buf) {
            rc = read_one_archive(&c, map + p, size - p, p, &used, err);
            p += used;
        } else {
            rc = read_archives(&c, buf, blen, p, err);
            free(buf);
            p += clen;
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && c.narchives == 0)
        rc = qerr_set(err, "initramfs %s: no archive found", file);
out:
    free(c.hl);
    EVP_MD_CTX_free(c.ctx);
    munmap(map, size);
    return rc;
}
