/* excludes.c — the IMA exclude list compiled with PCRE2 (see excludes.h).
 * Each pattern is first compiled on its own so that an error names its line. The patterns
 * are then joined as "(e1)|(e2)|...|(en)" and compiled once, anchored, with JIT when the
 * library has it. PCRE2 built with 2-byte links (Debian) caps a compiled pattern at 64 KiB
 * and any pattern at 65535 groups; a list too big for one program is split in halves until
 * every part compiles — matching any part is the same as matching the alternation. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "excludes.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct qexcludes {
    size_t n;            /* patterns */
    char *arena;         /* the patterns, NUL-terminated, one after the other */
    size_t *off;         /* start of pattern i in arena */
    size_t *len;         /* length of pattern i */
    pcre2_code **codes;  /* compiled parts, matched in order */
    bool *jit;           /* part i is JIT-compiled */
    size_t ncodes, capcodes;
};

struct qexcludes_md {
    pcre2_match_data *md;
};

typedef struct { const char *p; size_t len; unsigned line; } qx_pat;

static const char *qx_src(const char *src) { return src ? src : "excludes"; }

static void qx_free_codes(qexcludes *x)
{
    for (size_t i = 0; i < x->ncodes; i++)
        pcre2_code_free(x->codes[i]);
    free(x->codes);
    free(x->jit);
    x->codes = NULL;
    x->jit = NULL;
    x->ncodes = x->capcodes = 0;
}

void qexcludes_free(qexcludes *x)
{
    if (!x)
        return;
    qx_free_codes(x);
    free(x->arena);
    free(x->off);
    free(x->len);
    free(x);
}

size_t qexcludes_count(const qexcludes *x) { return x ? x->n : 0; }

const char *qexcludes_pattern(const qexcludes *x, size_t i)
{
    if (!x || i >= x->n)
        return NULL;
    return x->arena + x->off[i];
}

static int qx_push_code(qexcludes *x, pcre2_code *code, qerr *err)
{
    if (x->ncodes == x->capcodes) {
        size_t cap = x->capcodes ? 2 * x->capcodes : 4;
        pcre2_code **c = realloc(x->codes, cap * sizeof *c);
        if (!c)
            return qerr_set(err, "out of memory");
        x->codes = c;
        bool *j = realloc(x->jit, cap * sizeof *j);
        if (!j)
            return qerr_set(err, "out of memory");
        x->jit = j;
        x->capcodes = cap;
    }
    x->jit[x->ncodes] = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    x->codes[x->ncodes++] = code;
    return 0;
}

/* Compile patterns [a, b) joined as "(ea)|...|(eb-1)", splitting when the joined program is
 * too large for this PCRE2 build. */
static int qx_compile_range(qexcludes *x, size_t a, size_t b, const char *src, qerr *err)
{
    size_t total = 0;
    for (size_t i = a; i < b; i++)
        total += x->len[i] + 3;
    char *joined = malloc(total + 1);
    if (!joined)
        return qerr_set(err, "out of memory");
    size_t o = 0;
    for (size_t i = a; i < b; i++) {
        if (i > a)
            joined[o++] = '|';
        joined[o++] = '(';
        memcpy(joined + o, x->arena + x->off[i], x->len[i]);
        o += x->len[i];
        joined[o++] = ')';
    }
    joined[o] = '\0';
    int ec = 0;
    PCRE2_SIZE eoff = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)joined, o, PCRE2_ANCHORED, &ec, &eoff, NULL);
    free(joined);
    if (code) {
        if (qx_push_code(x, code, err) < 0) {
            pcre2_code_free(code);
            return -1;
        }
        return 0;
    }
    if (b - a > 1) {
        size_t mid = a + (b - a) / 2;
        if (qx_compile_range(x, a, mid, src, err) < 0)
            return -1;
        return qx_compile_range(x, mid, b, src, err);
    }
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(ec, msg, sizeof msg);
    return qerr_set(err, "%s: exclude regex '%s' cannot be compiled: %s", qx_src(src),
                    x->arena + x->off[a], (const char *)msg);
}

/* Validate each pattern alone, copy them into one arena, then compile the alternation. */
static qexcludes *qx_build(const qx_pat *pats, size_t n, const char *src, qerr *err)
{
    if (n > QEXCL_MAX_COUNT) {
        qerr_set(err, "%s: too many exclude patterns (%zu, at most %u)", qx_src(src), n,
                 (unsigned)QEXCL_MAX_COUNT);
        return NULL;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const qx_pat *pt = &pats[i];
        if (pt->len > QEXCL_MAX_PATTERN) {
            qerr_set(err, "%s:%u: exclude regex longer than %u bytes", qx_src(src), pt->line,
                     (unsigned)QEXCL_MAX_PATTERN);
            return NULL;
        }
        if (memchr(pt->p, '\0', pt->len)) {
            qerr_set(err, "%s:%u: invalid exclude regex: contains a NUL byte", qx_src(src),
                     pt->line);
            return NULL;
        }
        int ec = 0;
        PCRE2_SIZE eoff = 0;
        pcre2_code *c = pcre2_compile((PCRE2_SPTR)pt->p, pt->len, 0, &ec, &eoff, NULL);
        if (!c) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            qerr_set(err, "%s:%u: invalid exclude regex '%.*s': %s", qx_src(src), pt->line,
                     (int)pt->len, pt->p, (const char *)msg);
            return NULL;
        }
        pcre2_code_free(c);
        bytes += pt->len + 1;
    }
    qexcludes *x = calloc(1, sizeof *x);
    if (!x) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    x->arena = malloc(bytes ? bytes : 1);
    x->off = malloc((n ? n : 1) * sizeof *x->off);
    x->len = malloc((n ? n : 1) * sizeof *x->len);
    if (!x->arena || !x->off || !x->len) {
        qexcludes_free(x);
        qerr_set(err, "out of memory");
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        x->off[i] = o;
        x->len[i] = pats[i].len;
        memcpy(x->arena + o, pats[i].p, pats[i].len);
        o += pats[i].len;
        x->arena[o++] = '\0';
    }
    x->n = n;
    if (n > 0 && qx_compile_range(x, 0, n, src, err) < 0) {
        qexcludes_free(x);
        return NULL;
    }
    return x;
}

qexcludes *qexcludes_compile(const char *const *patterns, size_t n, const unsigned *lines,
                             const char *src, qerr *err)
{
    if (n > QEXCL_MAX_COUNT) {
        qerr_set(err, "%s: too many exclude patterns (%zu, at most %u)", qx_src(src), n,
                 (unsigned)QEXCL_MAX_COUNT);
        return NULL;
    }
    qx_pat *pats = malloc((n ? n : 1) * sizeof *pats);
    if (!pats) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        pats[i].p = patterns[i] ? patterns[i] : "";
        pats[i].len = strlen(pats[i].p);
        pats[i].line = lines ? lines[i] : (unsigned)(i + 1);
    }
    qexcludes *x = qx_build(pats, n, src, err);
    free(pats);
    return x;
}

/* Python's str.strip() whitespace, restricted to ASCII. */
static bool qx_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

qexcludes *qexcludes_parse(const char *text, size_t len, const char *src, qerr *err)
{
    size_t cap = 0;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == '\n';
    cap++;
    if (cap > QEXCL_MAX_COUNT)
        cap = QEXCL_MAX_COUNT + 1;   /* more patterns than that fail below */
    qx_pat *pats = malloc(cap * sizeof *pats);
    if (!pats) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    size_t n = 0;
    unsigned line = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        const char *s = p, *e = le;
        p = nl ? nl + 1 : end;
        while (s < e && qx_space((unsigned char)*s))
            s++;
        while (e > s && qx_space((unsigned char)e[-1]))
            e--;
        if (s == e || *s == '#')
            continue;
        if (n == cap) {
            free(pats);
            qerr_set(err, "%s: too many exclude patterns (at most %u)", qx_src(src),
                     (unsigned)QEXCL_MAX_COUNT);
            return NULL;
        }
        pats[n].p = s;
        pats[n].len = (size_t)(e - s);
        pats[n].line = line;
        n++;
    }
    qexcludes *x = qx_build(pats, n, src, err);
    free(pats);
    return x;
}

qexcludes_md *qexcludes_md_new(void)
{
    qexcludes_md *m = malloc(sizeof *m);
    if (!m)
        return NULL;
    m->md = pcre2_match_data_create(1, NULL);
    if (!m->md) {
        free(m);
        return NULL;
    }
    return m;
}

void qexcludes_md_free(qexcludes_md *md)
{
    if (!md)
        return;
    pcre2_match_data_free(md->md);
    free(md);
}

bool qexcludes_match(const qexcludes *x, qexcludes_md *md, const char *name, size_t len)
{
    if (!x || x->ncodes == 0 || !name)
        return false;
    pcre2_match_data *m = md ? md->md : pcre2_match_data_create(1, NULL);
    if (!m)
        return false;
    bool hit = false;
    for (size_t i = 0; i < x->ncodes && !hit; i++) {
        int rc = x->jit[i] ? pcre2_jit_match(x->codes[i], (PCRE2_SPTR)name, len, 0, 0, m, NULL)
                           : pcre2_match(x->codes[i], (PCRE2_SPTR)name, len, 0, 0, m, NULL);
        hit = rc >= 0;   /* 0 = matched, ovector too small for all groups */
    }
    if (!md)
        pcre2_match_data_free(m);
    return hit;
}
