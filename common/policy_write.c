/* policy_write.c — a qpolicy as Keylime runtime policy JSON, byte for byte as Python's
 * json.dumps writes it: ", " and ": " separators, ensure_ascii escaping (non-ASCII as
 * lower-case \uXXXX, surrogate pairs above U+FFFF), keys in Keylime's order. */
#include "policy_int.h"
#include "buf.h"

#include <stdlib.h>
#include <string.h>

static const char hexd[] = "0123456789abcdef";

static void put_u16esc(qbuf *b, unsigned v)
{
    char e[6] = { '\\', 'u', hexd[(v >> 12) & 15], hexd[(v >> 8) & 15], hexd[(v >> 4) & 15],
                  hexd[v & 15] };
    qbuf_append(b, e, 6);
}

/* Length of a valid UTF-8 sequence at s (code point in *cp), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2; min = 0x80; c &= 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3; min = 0x800; c &= 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4; min = 0x10000; c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* A JSON string. Bytes that are not valid UTF-8 are written as \u00XX (as if Latin-1). */
static void put_str(qbuf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    qbuf_u8(b, '"');
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i)
            qbuf_append(b, s + i, run - i);
        i = run;
        if (i >= n)
            break;
        unsigned c = s[i], cp;
        size_t len;
        switch (c) {
        case '"': qbuf_append(b, "\\\"", 2); i++; continue;
        case '\\': qbuf_append(b, "\\\\", 2); i++; continue;
        case '\n': qbuf_append(b, "\\n", 2); i++; continue;
        case '\r': qbuf_append(b, "\\r", 2); i++; continue;
        case '\t': qbuf_append(b, "\\t", 2); i++; continue;
        case '\b': qbuf_append(b, "\\b", 2); i++; continue;
        case '\f': qbuf_append(b, "\\f", 2); i++; continue;
        default: break;
        }
        if (c >= 0x80 && (len = utf8_seq(s + i, n - i, &cp)) > 0) {
            if (cp >= 0x10000) {
                cp -= 0x10000;
                put_u16esc(b, 0xd800 | (cp >> 10));
                put_u16esc(b, 0xdc00 | (cp & 0x3ff));
            } else {
                put_u16esc(b, cp);
            }
            i += len;
        } else {
            put_u16esc(b, c);
            i++;
        }
    }
    qbuf_u8(b, '"');
}

static void put_pstr(qbuf *b, const qpolicy *p, qpol_str s)
{
    put_str(b, s.len ? qpol_str_ptr(p, s) : "", s.len);
}

typedef struct { char h[QPOL_MAX_HEX + 1]; } hexstr;

static int cmp_hex(const void *a, const void *b)
{
    return strcmp(((const hexstr *)a)->h, ((const hexstr *)b)->h);
}

static int cmp_ent(const void *a, const void *b, void *ctx)
{
    const qpolicy *p = ((const qpolicy **)ctx)[0];
    const qpol_tab *tb = ((const qpol_tab **)ctx)[1];
    const qpol_ent *x = &tb->ents[*(const uint32_t *)a], *y = &tb->ents[*(const uint32_t *)b];
    size_t n = x->path_len < y->path_len ? x->path_len : y->path_len;
    int r = memcmp(p->str + x->path_off, p->str + y->path_off, n);
    if (r)
        return r;
    return (x->path_len > y->path_len) - (x->path_len < y->path_len);
}

static int put_table(qbuf *b, const qpolicy *p, qpol_table t, bool sorted, qerr *err)
{
    const qpol_tab *tb = &p->tab[t];
    uint32_t *order = NULL;
    hexstr *hs = NULL;
    if (sorted && tb->n > 0) {
        order = malloc(tb->n * sizeof *order);
        size_t maxd = 1;
        for (size_t i = 0; i < tb->n; i++)
            if (tb->ents[i].ndig > maxd)
                maxd = tb->ents[i].ndig;
        hs = malloc(maxd * sizeof *hs);
        if (!order || !hs) {
            free(order);
            free(hs);
            return qerr_set(err, "out of memory");
        }
        for (size_t i = 0; i < tb->n; i++)
            order[i] = (uint32_t)i;
        const void *ctx[2] = { p, tb };
        qsort_r(order, tb->n, sizeof *order, cmp_ent, (void *)ctx);
    }
    qbuf_u8(b, '{');
    char hex[QPOL_MAX_HEX + 1];
    for (size_t i = 0; i < tb->n; i++) {
        const qpol_ent *e = &tb->ents[order ? order[i] : i];
        if (i)
            qbuf_append(b, ", ", 2);
        put_str(b, p->str + e->path_off, e->path_len);
        qbuf_append(b, ": [", 3);
        if (sorted) {
            size_t k = 0;
            for (uint32_t d = e->first; d != QPOL_NONE; d = p->dig[d].next)
                qpol_dig_hex(p, d, hs[k++].h);
            qsort(hs, k, sizeof *hs, cmp_hex);
            for (size_t j = 0; j < k; j++) {
                if (j && strcmp(hs[j].h, hs[j - 1].h) == 0)
                    continue;
                if (j)
                    qbuf_append(b, ", ", 2);
                put_str(b, hs[j].h, strlen(hs[j].h));
            }
        } else {
            for (uint32_t d = e->first; d != QPOL_NONE; d = p->dig[d].next) {
                if (d != e->first)
                    qbuf_append(b, ", ", 2);
                size_t n = qpol_dig_hex(p, d, hex);
                put_str(b, hex, n);
            }
        }
        qbuf_u8(b, ']');
    }
    qbuf_u8(b, '}');
    free(order);
    free(hs);
    return 0;
}

char *qpolicy_to_json(const qpolicy *p, bool sorted, qerr *err)
{
    if (!p) {
        qerr_set(err, "no policy");
        return NULL;
    }
    qbuf b;
    qbuf_init(&b, 0);
    size_t guess = 512 + 2 * p->str_len + 6 * p->ndig;
    qbuf_reserve(&b, guess);
    qbuf_printf(&b, "{\"meta\": {\"version\": 1, \"generator\": %d", p->generator);
    if (p->has_ts) {
        qbuf_append_str(&b, ", \"timestamp\": ");
        put_pstr(&b, p, p->ts);
    }
    qbuf_printf(&b, "}, \"release\": %lld, \"digests\": ", p->release);
    if (put_table(&b, p, QPOL_DIGESTS, sorted, err) < 0)
        goto fail;
    qbuf_append_str(&b, ", \"excludes\": [");
    for (size_t i = 0, n = qexcludes_count(p->excl); i < n; i++) {
        if (i)
            qbuf_append(&b, ", ", 2);
        const char *pat = qexcludes_pattern(p->excl, i);
        put_str(&b, pat, strlen(pat));
    }
    qbuf_append_str(&b, "], \"keyrings\": ");
    if (put_table(&b, p, QPOL_KEYRINGS, sorted, err) < 0)
        goto fail;
    qbuf_append_str(&b, ", \"ima\": {\"ignored_keyrings\": [");
    for (size_t i = 0; i < p->nign; i++) {
        if (i)
            qbuf_append(&b, ", ", 2);
        put_pstr(&b, p, p->ign[i]);
    }
    qbuf_printf(&b, "], \"log_hash_alg\": \"%s\", \"dm_policy\": null}, \"ima-buf\": ",
                qhash_name(p->log_alg));
    if (put_table(&b, p, QPOL_IMABUF, sorted, err) < 0)
        goto fail;
    qbuf_append_str(&b, ", \"verification-keys\": ");
    put_pstr(&b, p, p->vkeys);
    qbuf_u8(&b, '}');
    char *out = qbuf_cstr(&b);
    if (!out || b.failed) {
        qerr_set(err, "out of memory");
        goto fail;
    }
    return out;   /* the buffer's storage now belongs to the caller */
fail:
    qbuf_free(&b);
    return NULL;
}
