/* policy_table.c — the path → digests hash tables of a qpolicy and their arenas
 * (see policy_int.h). Open addressing with linear probing; the index is sized once from the
 * expected path count and only doubles if a builder adds more than announced. */
#include "policy_int.h"
#include "hex.h"

#include <stdlib.h>
#include <string.h>

/* Hex digit values (non-hex bytes read 0 too, told apart from '0' by the callers); the 0x80
 * bit marks an upper-case digit. */
static const uint8_t hexval[256] = {
    ['0'] = 0, ['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5, ['6'] = 6, ['7'] = 7,
    ['8'] = 8, ['9'] = 9, ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14,
    ['f'] = 15, ['A'] = 0x8a, ['B'] = 0x8b, ['C'] = 0x8c, ['D'] = 0x8d, ['E'] = 0x8e,
    ['F'] = 0x8f,
};

static inline int hexdig(unsigned char c)
{
    /* The table holds 0 for both '0' and non-hex bytes; tell them apart. */
    uint8_t v = hexval[c];
    if (v == 0 && c != '0')
        return -1;
    return v;
}

static inline uint64_t path_hash(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

qpolicy *qpol_alloc(qerr *err)
{
    qpolicy *p = calloc(1, sizeof *p);
    if (!p) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    p->log_alg = QHASH_SHA1;
    p->generator = 1;
    return p;
}

void qpol_free_tables(qpolicy *p)
{
    for (int t = 0; t < QPOL_NTABLES; t++) {
        free(p->tab[t].ents);
        free(p->tab[t].slots);
    }
    free(p->str);
    free(p->dig);
    free(p->ign);
}

static int grow(void **ptr, size_t *cap, size_t need, size_t elem, size_t max, qerr *err)
{
    if (need <= *cap)
        return 0;
    if (need > max)
        return qerr_set(err, "policy too large");
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    if (ncap > max)
        ncap = max;
    void *q = realloc(*ptr, ncap * elem);
    if (!q)
        return qerr_set(err, "out of memory");
    *ptr = q;
    *cap = ncap;
    return 0;
}

/* Rebuild the index of t with nslots slots (a power of two > 2 * n). */
static int rehash(qpolicy *p, qpol_tab *tb, size_t nslots, qerr *err)
{
    uint64_t *s = calloc(nslots, sizeof *s);
    if (!s)
        return qerr_set(err, "out of memory");
    size_t mask = nslots - 1;
    for (size_t i = 0; i < tb->n; i++) {
        const qpol_ent *e = &tb->ents[i];
        uint64_t h = path_hash(p->str + e->path_off, e->path_len);
        size_t pos = (size_t)h & mask;
        while (s[pos])
            pos = (pos + 1) & mask;
        s[pos] = (h & 0xffffffff00000000ull) | (uint64_t)(i + 1);
    }
    free(tb->slots);
    tb->slots = s;
    tb->nslots = nslots;
    return 0;
}

int qpol_reserve(qpolicy *p, qpol_table t, size_t paths, qerr *err)
{
    qpol_tab *tb = &p->tab[t];
    size_t want = tb->n + paths;
    if (want >= UINT32_MAX / 4)
        return qerr_set(err, "policy too large");
    if (grow((void **)&tb->ents, &tb->cap, want, sizeof *tb->ents, UINT32_MAX / 4, err) < 0)
        return -1;
    size_t nslots = 16;
    while (nslots < 2 * want)
        nslots *= 2;
    if (nslots <= tb->nslots)
        return 0;
    return rehash(p, tb, nslots, err);
}

int qpol_reserve_arena(qpolicy *p, size_t str_bytes, size_t digests, qerr *err)
{
    if (grow((void **)&p->str, &p->str_cap, p->str_len + str_bytes + digests * 32, 1, UINT32_MAX,
             err) < 0)
        return -1;
    return grow((void **)&p->dig, &p->dig_cap, p->ndig + digests, sizeof *p->dig, UINT32_MAX - 1,
                err);
}

int qpol_str_add(qpolicy *p, const char *s, size_t n, qpol_str *out, qerr *err)
{
    if (grow((void **)&p->str, &p->str_cap, p->str_len + n + 1, 1, UINT32_MAX, err) < 0)
        return -1;
    out->off = (uint32_t)p->str_len;
    out->len = (uint32_t)n;
    if (n)
        memcpy(p->str + p->str_len, s, n);
    p->str[p->str_len + n] = '\0';
    p->str_len += n + 1;
    return 0;
}

const qpol_ent *qpol_find(const qpolicy *p, qpol_table t, const char *path, size_t len)
{
    if (p->tab[t].n == 0)
        return NULL;
    return qpol_find_h(p, t, path, len, path_hash(path, len));
}

const qpol_ent *qpol_find_h(const qpolicy *p, qpol_table t, const char *path, size_t len, uint64_t h)
{
    const qpol_tab *tb = &p->tab[t];
    if (tb->n == 0)
        return NULL;
    uint64_t hi = h & 0xffffffff00000000ull;
    size_t mask = tb->nslots - 1;
    for (size_t pos = (size_t)h & mask;; pos = (pos + 1) & mask) {
        uint64_t v = tb->slots[pos];
        if (!v)
            return NULL;
        if ((v & 0xffffffff00000000ull) != hi)
            continue;
        const qpol_ent *e = &tb->ents[(uint32_t)v - 1];
        if (e->path_len == len && memcmp(p->str + e->path_off, path, len) == 0)
            return e;
    }
}

uint64_t qpol_hash(const char *path, size_t len) { return path_hash(path, len); }

void qpol_prefetch(const qpolicy *p, qpol_table t, uint64_t h)
{
    const qpol_tab *tb = &p->tab[t];
    if (tb->nslots)
        __builtin_prefetch(&tb->slots[(size_t)h & (tb->nslots - 1)], 1);
}

/* A policy path must survive a JSON round trip unchanged: valid UTF-8 and no NUL (cJSON strings
 * end at NUL). Other control characters are escaped in JSON and kept. Returns NULL when fine,
 * else the reason. */
static const char *path_problem(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p;
        if (c == 0)
            return "a NUL byte";
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t k = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 0;
        if (!k || c == 0xc0 || c == 0xc1 || c > 0xf4 || (size_t)(e - p) <= k)
            return "invalid UTF-8";
        unsigned cp = c & (0x3fu >> k);
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return "invalid UTF-8";
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return "invalid UTF-8";
        p += k + 1;
    }
    return NULL;
}

long qpol_path_h(qpolicy *p, qpol_table t, const char *path, size_t len, uint64_t h, bool *added,
                 qerr *err)
{
    qpol_tab *tb = &p->tab[t];
    if (len > QPOL_MAX_PATH)
        return qerr_set(err, "path longer than %u bytes", QPOL_MAX_PATH);
    if (2 * (tb->n + 1) > tb->nslots && qpol_reserve(p, t, tb->n ? tb->n : 16, err) < 0)
        return -1;
    uint64_t hi = h & 0xffffffff00000000ull;
    size_t mask = tb->nslots - 1;
    size_t pos = (size_t)h & mask;
    for (;; pos = (pos + 1) & mask) {
        uint64_t v = tb->slots[pos];
        if (!v)
            break;
        if ((v & 0xffffffff00000000ull) != hi)
            continue;
        uint32_t i = (uint32_t)v - 1;
        const qpol_ent *e = &tb->ents[i];
        if (e->path_len == len && memcmp(p->str + e->path_off, path, len) == 0) {
            if (added)
                *added = false;
            return (long)i;
        }
    }
    if (grow((void **)&tb->ents, &tb->cap, tb->n + 1, sizeof *tb->ents, UINT32_MAX / 4, err) < 0)
        return -1;
    const char *why = path_problem(path, len);
    if (why)
        return qerr_set(err, "the path '%.*s' contains %s", (int)(len > 120 ? 120 : len), path, why);
    qpol_str s;
    if (qpol_str_add(p, path, len, &s, err) < 0)
        return -1;
    uint32_t i = (uint32_t)tb->n++;
    tb->ents[i] = (qpol_ent){ .path_off = s.off, .path_len = s.len, .first = QPOL_NONE,
                              .last = QPOL_NONE, .ndig = 0, .d0_off = 0, .d0_nib = 0 };
    tb->slots[pos] = hi | (uint64_t)(i + 1);
    if (added)
        *added = true;
    return (long)i;
}

long qpol_path(qpolicy *p, qpol_table t, const char *path, size_t len, bool *added, qerr *err)
{
    return qpol_path_h(p, t, path, len, path_hash(path, len), added, err);
}

bool qpol_hex_ok(const char *s, size_t n, bool lower_only)
{
    if (n < QPOL_MIN_HEX || n > QPOL_MAX_HEX)
        return false;
    for (size_t i = 0; i < n; i++) {
        int v = hexdig((unsigned char)s[i]);
        if (v < 0 || (lower_only && (v & 0x80)))
            return false;
    }
    return true;
}

int qpol_add_hex(qpolicy *p, qpol_table t, uint32_t ent, const char *hex, size_t n,
                 bool lower_only, qerr *err)
{
    if (n < QPOL_MIN_HEX || n > QPOL_MAX_HEX)
        return qerr_set(err, "not a hex digest");
    size_t nb = (n + 1) / 2;
    if (grow((void **)&p->dig, &p->dig_cap, p->ndig + 1, sizeof *p->dig, UINT32_MAX - 1, err) < 0 ||
        grow((void **)&p->str, &p->str_cap, p->str_len + nb, 1, UINT32_MAX, err) < 0)
        return -1;
    /* Validate and decode in one pass; nothing is committed until the digest is good. Upper-case
     * digits (when allowed) are stored like lower-case ones. */
    uint8_t *out = (uint8_t *)p->str + p->str_len;
    if (qhex_decode_case(hex, n & ~(size_t)1, out, nb, lower_only) < 0)
        return qerr_set(err, "not a hex digest");
    if (n & 1) {
        int a = hexdig((unsigned char)hex[n - 1]);
        if (a < 0 || (lower_only && (a & 0x80)))
            return qerr_set(err, "not a hex digest");
        out[nb - 1] = (uint8_t)((a & 0x0f) << 4);
    }
    uint32_t d = (uint32_t)p->ndig++;
    p->dig[d] = (qpol_dig){ .off = (uint32_t)p->str_len, .next = QPOL_NONE, .nib = (uint8_t)n };
    p->str_len += nb;
    qpol_ent *e = &p->tab[t].ents[ent];
    if (e->last == QPOL_NONE) {
        e->first = d;
        e->d0_off = p->dig[d].off;
        e->d0_nib = (uint8_t)n;
    } else {
        p->dig[e->last].next = d;
    }
    e->last = d;
    e->ndig++;
    return 0;
}

void qpol_clear_digests(qpolicy *p, qpol_table t, uint32_t ent)
{
    qpol_ent *e = &p->tab[t].ents[ent];
    e->first = e->last = QPOL_NONE;
    e->ndig = 0;
    e->d0_off = 0;
    e->d0_nib = 0;
}

size_t qpol_dig_hex(const qpolicy *p, uint32_t d, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const qpol_dig *g = &p->dig[d];
    const uint8_t *b = (const uint8_t *)p->str + g->off;
    for (size_t i = 0; i < g->nib; i++)
        out[i] = digits[(i & 1) ? (b[i / 2] & 0x0f) : (b[i / 2] >> 4)];
    out[g->nib] = '\0';
    return g->nib;
}
