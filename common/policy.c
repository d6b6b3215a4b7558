/* policy.c — qpolicy lifecycle, lookups, the flat allowlist loader and the checksum
 * (see policy.h; JSON in and out lives in policy_json.c, the tables in policy_table.c). */
#include "policy_int.h"
#include "hex.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *src_name(const char *src) { return src ? src : "allowlist"; }

qpolicy *qpolicy_empty(qerr *err)
{
    return qpol_alloc(err);
}

void qpolicy_free(qpolicy *p)
{
    if (!p)
        return;
    qexcludes_free(p->excl);
    qkeyring_free(p->keyring);
    qpol_free_tables(p);
    free(p);
}

int qpol_set_timestamp_now(qpolicy *p, qerr *err)
{
    /* Python's str(datetime.now()): local time, microseconds only when non-zero. */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t secs = tv.tv_sec;
    localtime_r(&secs, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    if (tv.tv_usec != 0)
        n += (size_t)snprintf(buf + n, sizeof buf - n, ".%06ld", (long)tv.tv_usec);
    if (qpol_str_add(p, buf, n, &p->ts, err) < 0)
        return -1;
    p->has_ts = true;
    return 0;
}

int qpol_add_ignored(qpolicy *p, const char *name, size_t len, qerr *err)
{
    if (p->nign >= QPOL_MAX_IGNORED)
        return qerr_set(err, "too many ignored keyrings (at most %u)", QPOL_MAX_IGNORED);
    if (p->nign == p->ign_cap) {
        size_t cap = p->ign_cap ? 2 * p->ign_cap : 8;
        qpol_str *n = realloc(p->ign, cap * sizeof *n);
        if (!n)
            return qerr_set(err, "out of memory");
        p->ign = n;
        p->ign_cap = cap;
    }
    if (qpol_str_add(p, name, len, &p->ign[p->nign], err) < 0)
        return -1;
    p->nign++;
    return 0;
}

/* Python's str.strip()/split() whitespace, restricted to ASCII. */
static const bool ws_tab[256] = {
    [' '] = true, ['\t'] = true, ['\n'] = true, ['\v'] = true, ['\f'] = true, ['\r'] = true,
    [0x1c] = true, [0x1d] = true, [0x1e] = true, [0x1f] = true,
};
#define IS_WS(c) ws_tab[(unsigned char)(c)]

static const char keyring_prefix[] = "%keyring:";

typedef struct {
    const char *hex, *path;
    size_t hexlen, plen;
    qpol_table tb;
    unsigned long lineno;
    uint64_t h;
} flat_line;

/* The next "<hex> <path>" line from *cur (blank and one-token lines skipped). Returns 1 with
 * *ln filled, 0 at the end, -1 (error set) for a line that is not an allowlist line. */
static int flat_next(const char **cur, const char *end, unsigned long *lineno, flat_line *ln,
                     const char *src, qerr *err)
{
    while (*cur < end) {
        const char *nl = memchr(*cur, '\n', (size_t)(end - *cur));
        const char *s = *cur, *e = nl ? nl : end;
        *cur = nl ? nl + 1 : end;
        ++*lineno;
        while (s < e && IS_WS(*s))
            s++;
        while (e > s && IS_WS(e[-1]))
            e--;
        if (s == e)
            continue;
        const char *t = s;
        while (t < e && !IS_WS(*t))
            t++;
        if (t == e)
            continue;                   /* one token: skipped, as Keylime does */
        ln->hex = s;
        ln->hexlen = (size_t)(t - s);
        while (t < e && IS_WS(*t))
            t++;
        if (ln->hexlen < QPOL_MIN_HEX || ln->hexlen > QPOL_MAX_HEX)
            return qerr_set(err, "%s:%lu: not an allowlist line (expected '<hex digest>  <path>')",
                            src_name(src), *lineno);
        ln->tb = QPOL_DIGESTS;
        ln->plen = (size_t)(e - t);
        if (ln->plen >= sizeof keyring_prefix - 1 &&
            memcmp(t, keyring_prefix, sizeof keyring_prefix - 1) == 0) {
            ln->tb = QPOL_KEYRINGS;
            t += sizeof keyring_prefix - 1;
            ln->plen -= sizeof keyring_prefix - 1;
        }
        ln->path = t;
        ln->lineno = *lineno;
        return 1;
    }
    return 0;
}

static int flat_add(qpolicy *p, const flat_line *ln, const char *src, qerr *err)
{
    long ent = qpol_path_h(p, ln->tb, ln->path, ln->plen, ln->h, NULL, err);
    if (ent < 0)
        return qerr_prefix(err, "%s:%lu", src_name(src), ln->lineno);
    if (qpol_add_hex(p, ln->tb, (uint32_t)ent, ln->hex, ln->hexlen, false, err) < 0) {
        if (!qpol_hex_ok(ln->hex, ln->hexlen, false))
            return qerr_set(err, "%s:%lu: not an allowlist line (expected '<hex digest>  <path>')",
                            src_name(src), ln->lineno);
        return qerr_prefix(err, "%s:%lu", src_name(src), ln->lineno);
    }
    return 0;
}

/* "<hex>  <path>" lines (keylime-formats §2.1). Each line is hashed one step ahead of its
 * insertion so the index slot is already being fetched (qpol_prefetch). */
static int flat_parse(qpolicy *p, const char *text, size_t len, const char *src, qerr *err)
{
    size_t lines = 1;
    for (const char *q = text, *end = text + len; (q = memchr(q, '\n', (size_t)(end - q))); q++)
        lines++;
    if (qpol_reserve(p, QPOL_DIGESTS, lines, err) < 0 ||
        qpol_reserve_arena(p, len, lines, err) < 0)
        return -1;
    const char *cur = text, *end = text + len;
    unsigned long lineno = 0;
    flat_line ln[2];
    int have = 0, k = 0, r;
    while ((r = flat_next(&cur, end, &lineno, &ln[k], src, err)) > 0) {
        ln[k].h = qpol_hash(ln[k].path, ln[k].plen);
        qpol_prefetch(p, ln[k].tb, ln[k].h);
        if (have && flat_add(p, &ln[k ^ 1], src, err) < 0)
            return -1;
        have = 1;
        k ^= 1;
    }
    if (r < 0)
        return -1;
    if (have && flat_add(p, &ln[k ^ 1], src, err) < 0)
        return -1;
    return 0;
}

qpolicy *qpolicy_from_allowlist(const char *text, size_t len, const char *src, qerr *err)
{
    if (!text && len) {
        qerr_set(err, "%s: no allowlist text", src_name(src));
        return NULL;
    }
    if (len > QPOLICY_MAX_SIZE) {
        qerr_set(err, "%s: allowlist larger than %u bytes", src_name(src), QPOLICY_MAX_SIZE);
        return NULL;
    }
    size_t i = 0;
    while (i < len && IS_WS(text[i]))
        i++;
    if (i < len && text[i] == '{')
        return qpol_from_legacy_json(text, len, src_name(src), err);
    qpolicy *p = qpol_alloc(err);
    if (!p)
        return NULL;
    p->generator = 3;
    if (qpol_set_timestamp_now(p, err) < 0 || flat_parse(p, text ? text : "", len, src, err) < 0) {
        qpolicy_free(p);
        return NULL;
    }
    return p;
}

int qpolicy_add_excludes(qpolicy *p, const char *text, size_t len, const char *src, qerr *err)
{
    if (!p)
        return qerr_set(err, "no policy");
    qexcludes *add = qexcludes_parse(text ? text : "", text ? len : 0, src, err);
    if (!add)
        return -1;
    size_t nold = qexcludes_count(p->excl), nadd = qexcludes_count(add);
    if (nadd == 0) {
        qexcludes_free(add);
        return 0;
    }
    if (nold == 0) {
        qexcludes_free(p->excl);
        p->excl = add;
        return 0;
    }
    if (nold + nadd > QEXCL_MAX_COUNT) {
        qexcludes_free(add);
        return qerr_set(err, "%s: too many exclude patterns (at most %u)", src ? src : "excludes",
                        (unsigned)QEXCL_MAX_COUNT);
    }
    const char **all = malloc((nold + nadd) * sizeof *all);
    if (!all) {
        qexcludes_free(add);
        return qerr_set(err, "out of memory");
    }
    for (size_t i = 0; i < nold; i++)
        all[i] = qexcludes_pattern(p->excl, i);
    for (size_t i = 0; i < nadd; i++)
        all[nold + i] = qexcludes_pattern(add, i);
    qexcludes *joined = qexcludes_compile(all, nold + nadd, NULL, src, err);
    free(all);
    qexcludes_free(add);
    if (!joined)
        return -1;
    qexcludes_free(p->excl);
    p->excl = joined;
    return 0;
}

int qpolicy_add_digest(qpolicy *p, qpol_table t, const char *path, size_t path_len, const char *hex,
                       qerr *err)
{
    if (!p || (int)t < 0 || t >= QPOL_NTABLES || !path || !hex)
        return qerr_set(err, "invalid arguments");
    size_t n = strlen(hex);
    if (!qpol_hex_ok(hex, n, false))
        return qerr_set(err, "not a hex digest of 40..128 digits: '%.140s'", hex);
    long ent = qpol_path(p, t, path, path_len, NULL, err);
    if (ent < 0)
        return -1;
    return qpol_add_hex(p, t, (uint32_t)ent, hex, n, false, err);
}

const qexcludes *qpolicy_excludes(const qpolicy *p)
{
    return p && qexcludes_count(p->excl) > 0 ? p->excl : NULL;
}

qhash_alg qpolicy_log_hash_alg(const qpolicy *p) { return p ? p->log_alg : QHASH_SHA1; }

const qkeyring *qpolicy_keyring(const qpolicy *p) { return p ? p->keyring : NULL; }

int qpolicy_generator(const qpolicy *p) { return p ? p->generator : 1; }

size_t qpolicy_count(const qpolicy *p, qpol_table t)
{
    if (!p || (int)t < 0 || t >= QPOL_NTABLES)
        return 0;
    return p->tab[t].n;
}

bool qpolicy_keyring_ignored(const qpolicy *p, const char *name, size_t len)
{
    if (!p)
        return false;
    for (size_t i = 0; i < p->nign; i++) {
        qpol_str s = p->ign[i];
        const char *v = qpol_str_ptr(p, s);
        if ((s.len == 1 && v[0] == '*') || (s.len == len && memcmp(v, name, len) == 0))
            return true;
    }
    return false;
}

size_t qpolicy_memory(const qpolicy *p)
{
    if (!p)
        return 0;
    size_t n = sizeof *p + p->str_len + p->ndig * sizeof *p->dig + p->nign * sizeof *p->ign;
    for (int t = 0; t < QPOL_NTABLES; t++)
        n += p->tab[t].n * sizeof *p->tab[t].ents + p->tab[t].nslots * sizeof *p->tab[t].slots;
    return n;
}

uint64_t qpolicy_prefetch(const qpolicy *p, qpol_table t, const char *name, size_t name_len)
{
    if (!p || (int)t < 0 || t >= QPOL_NTABLES || !name)
        return 0;
    uint64_t h = qpol_hash(name, name_len);
    qpol_prefetch(p, t, h);
    return h;
}

static qpol_result judge(const qpolicy *p, const qpol_ent *e, const uint8_t *digest, size_t digest_len)
{
    if (!e)
        return QPOL_NOT_FOUND;
    if (e->ndig == 0)
        return QPOL_HASH_MISMATCH;
    const char *ar = p->str;
    if (e->d0_nib == 2 * digest_len && memcmp(ar + e->d0_off, digest, digest_len) == 0)
        return QPOL_MATCH;
    for (uint32_t d = p->dig[e->first].next; d != QPOL_NONE; d = p->dig[d].next) {
        const qpol_dig *g = &p->dig[d];
        if (g->nib == 2 * digest_len && memcmp(ar + g->off, digest, digest_len) == 0)
            return QPOL_MATCH;
    }
    return QPOL_HASH_MISMATCH;
}

qpol_result qpolicy_lookup(const qpolicy *p, qpol_table t, const char *name, size_t name_len,
                           const uint8_t *digest, size_t digest_len)
{
    if (!p || (int)t < 0 || t >= QPOL_NTABLES || !name)
        return QPOL_NOT_FOUND;
    return judge(p, qpol_find(p, t, name, name_len), digest, digest_len);
}

qpol_result qpolicy_lookup_hashed(const qpolicy *p, qpol_table t, const char *name, size_t name_len,
                                  uint64_t h, const uint8_t *digest, size_t digest_len)
{
    if (!p || (int)t < 0 || t >= QPOL_NTABLES || !name)
        return QPOL_NOT_FOUND;
    return judge(p, qpol_find_h(p, t, name, name_len, h), digest, digest_len);
}

typedef struct {
    char *out;
    size_t cap, len;
    bool trunc;
} repr_buf;

static void repr_put(repr_buf *r, const char *s, size_t n)
{
    if (r->trunc || r->cap == 0)
        return;
    size_t room = r->cap - 1 - r->len;
    if (n > room) {
        n = room;
        r->trunc = true;
    }
    memcpy(r->out + r->len, s, n);
    r->len += n;
}

size_t qpolicy_expected_repr(const qpolicy *p, qpol_table t, const char *name, size_t name_len,
                             char *out, size_t cap)
{
    if (!out || cap == 0)
        return 0;
    repr_buf r = { .out = out, .cap = cap };
    const qpol_ent *e = NULL;
    if (p && (int)t >= 0 && t < QPOL_NTABLES && name)
        e = qpol_find(p, t, name, name_len);
    repr_put(&r, "[", 1);
    if (e) {
        char hex[QPOL_MAX_HEX + 1];
        for (uint32_t d = e->first; d != QPOL_NONE && !r.trunc; d = p->dig[d].next) {
            if (d != e->first)
                repr_put(&r, ", ", 2);
            size_t n = qpol_dig_hex(p, d, hex);
            repr_put(&r, "'", 1);
            repr_put(&r, hex, n);
            repr_put(&r, "'", 1);
        }
    }
    repr_put(&r, "]", 1);
    if (r.trunc && cap >= 4)
        memcpy(out + r.len - 3, "...", 3);
    out[r.len] = '\0';
    return r.len;
}

void qpolicy_checksum(const char *text, size_t len, char out[65])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    const EVP_MD *sha = qhash_md(QHASH_SHA256);
    if (!EVP_Digest(text ? text : "", text ? len : 0, md, &n, sha ? sha : EVP_sha256(), NULL) ||
        n != 32) {
        out[0] = '\0';
        return;
    }
    qhex_encode(md, 32, out);
}
