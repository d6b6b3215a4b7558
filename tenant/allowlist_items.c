/* allowlist_items.c — the item list of create-allowlist: path normalisation, a string arena,
 * sorting and de-duplication (see allowlist_build.h). */
#include <stdlib.h>
#include <string.h>
#include "allowlist_build.h"

long qal_log_path(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (cap < 2)
        return -1;
    out[o++] = '/';
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\0' || c == '\n' || c == '\r')
            return -1;
        if (c == '/' && out[o - 1] == '/')
            continue;
        if (c == ' ')
            c = '_';
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

static int arena_put(qal_list *l, const char *s, size_t len, size_t *off, qerr *err)
{
    if (l->arena_len + len + 1 > l->arena_cap) {
        size_t ncap = l->arena_cap ? l->arena_cap : 1u << 16;
        while (ncap < l->arena_len + len + 1)
            ncap *= 2;
        if (ncap > QAL_MAX_ARENA) {
            if (l->arena_len + len + 1 > QAL_MAX_ARENA)
                return qerr_set(err, "too many paths (more than %zu bytes of names)", QAL_MAX_ARENA);
            ncap = QAL_MAX_ARENA;
        }
        char *na = realloc(l->arena, ncap);
        if (!na)
            return qerr_set(err, "out of memory");
        l->arena = na;
        l->arena_cap = ncap;
    }
    memcpy(l->arena + l->arena_len, s, len);
    l->arena[l->arena_len + len] = '\0';
    *off = l->arena_len;
    l->arena_len += len + 1;
    return 0;
}

long qal_add(qal_list *l, const char *path, size_t len, const char *src, const uint8_t *digest,
             size_t dlen, qerr *err)
{
    char norm[QAL_MAX_PATH + 1];
    long nlen = qal_log_path(path, len, norm, sizeof norm);
    if (nlen < 0)
        return qerr_set(err, "unusable file name '%.*s' (too long or holds a newline)",
                        (int)(len > 200 ? 200 : len), path);
    if (dlen > QHASH_MAX_SIZE)
        return qerr_set(err, "digest too long");
    if (l->n == l->cap) {
        if (l->cap >= QAL_MAX_ITEMS)
            return qerr_set(err, "too many files (more than %u)", QAL_MAX_ITEMS);
        size_t ncap = l->cap ? l->cap * 2 : 1024;
        if (ncap > QAL_MAX_ITEMS)
            ncap = QAL_MAX_ITEMS;
        qal_item *ni = realloc(l->items, ncap * sizeof *ni);
        if (!ni)
            return qerr_set(err, "out of memory");
        l->items = ni;
        l->cap = ncap;
    }
    qal_item *it = &l->items[l->n];
    memset(it, 0, sizeof *it);
    it->src = QAL_NONE;
    if (arena_put(l, norm, (size_t)nlen, &it->path, err) < 0)
        return -1;
    if (src) {
        size_t slen = strlen(src);
        if (slen == (size_t)nlen && memcmp(src, norm, slen) == 0)
            it->src = it->path;             /* the common case: store the name once */
        else if (arena_put(l, src, slen, &it->src, err) < 0)
            return -1;
    }
    if (digest) {
        memcpy(it->digest, digest, dlen);
        it->status = QAL_DONE;
    } else {
        it->status = QAL_PENDING;
    }
    return (long)l->n++;
}

void qal_free(qal_list *l)
{
    free(l->arena);
    free(l->items);
    memset(l, 0, sizeof *l);
}

struct sort_ctx { const qal_list *l; size_t dlen; };

static int cmp_items(const void *a, const void *b, void *arg)
{
    const struct sort_ctx *c = arg;
    const qal_item *x = a, *y = b;
    int r = strcmp(qal_str(c->l, x->path), qal_str(c->l, y->path));
    if (r)
        return r;
    return memcmp(x->digest, y->digest, c->dlen);
}

void qal_sort_unique(qal_list *l, size_t dlen)
{
    size_t w = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].status == QAL_DONE)
            l->items[w++] = l->items[i];
    l->n = w;
    if (w == 0)
        return;
    struct sort_ctx c = { l, dlen };
    qsort_r(l->items, l->n, sizeof *l->items, cmp_items, &c);   /* glibc, _GNU_SOURCE */
    w = 1;
    for (size_t i = 1; i < l->n; i++)
        if (cmp_items(&l->items[w - 1], &l->items[i], &c) != 0)
            l->items[w++] = l->items[i];
    l->n = w;
}
