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
    pcre2_match_context *mctx;   /* the match/depth/heap limits; read-only while matching */
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
    pcre2_match_context_free(x->mctx);
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

/* A match context with the given limits; NULL when out of memory. */
static pcre2_match_context *qx_limits(uint32_t match_limit)
{
    pcre2_match_context *m = pcre2_match_context_create(NULL);
    if (m) {
        pcre2_set_match_limit(m, match_limit);
        pcre2_set_depth_limit(m, QEXCL_DEPTH_LIMIT);
        pcre2_set_heap_limit(m, QEXCL_HEAP_LIMIT_KIB);
    }
    return m;
}

static bool qx_limit_rc(int rc)
{
    return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT;
}

/* PCRE2 cannot tell from a compiled pattern whether it backtracks exponentially, but it can tell
 * when a match runs out of its limit. Probe the pattern with strings that defeat nested
 * quantifiers: runs of each literal character it contains (and of all of them in turn), alone and
 * after the pattern's literal prefix, then a byte no pattern expects. Quantified classes (\d+)+
 * are not probed; the match limit bounds them at run time. Returns 0, or -1 when a probe hit the
 * limit. */
static int qx_probe(const pcre2_code *c, const char *p, size_t len, pcre2_match_context *mctx,
                    pcre2_match_data *md)
{
    unsigned char lits[8];
    size_t nl = 0;
    for (size_t i = 0; i < len && nl < sizeof lits; i++) {
        unsigned char ch = (unsigned char)p[i];
        bool lit = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                   ch == '/' || ch == '-' || ch == '_';
        if (i > 0 && p[i - 1] == '\\')
            lit = false;     /* \d, \w, \s ... are classes, not the letter */
        if (lit && !memchr(lits, ch, nl))
            lits[nl++] = ch;
    }
    /* The literal prefix ("/opt/" of "/opt/(a|aa)+$"), so that the runs reach the quantifiers. */
    size_t i0 = (len > 0 && p[0] == '^') ? 1 : 0, pl = 0;
    while (i0 + pl < len && pl < QEXCL_PROBE_RUN && !strchr("\\^$.|?*+()[]{}", p[i0 + pl]))
        pl++;
    char probe[2 * QEXCL_PROBE_RUN + 1];
    for (int with_prefix = 0; with_prefix <= (pl > 0); with_prefix++) {
        size_t o = 0;
        if (with_prefix) {
            memcpy(probe, p + i0, pl);
            o = pl;
        }
        for (size_t k = 0; k <= nl; k++) {
            for (size_t i = 0; i < QEXCL_PROBE_RUN; i++)
                probe[o + i] = (char)(k < nl ? lits[k] : (nl ? lits[i % nl] : 'a'));
            probe[o + QEXCL_PROBE_RUN] = '\x01';
            int rc = pcre2_match(c, (PCRE2_SPTR)probe, o + QEXCL_PROBE_RUN + 1, 0, PCRE2_ANCHORED, md, mctx);
            if (qx_limit_rc(rc))
                return -1;
        }
    }
    return 0;
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
    pcre2_match_context *probe_ctx = qx_limits(QEXCL_MATCH_BASE);
    pcre2_match_data *probe_md = pcre2_match_data_create(1, NULL);
    if (!probe_ctx || !probe_md) {
        pcre2_match_context_free(probe_ctx);
        pcre2_match_data_free(probe_md);
        qerr_set(err, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const qx_pat *pt = &pats[i];
        if (pt->len > QEXCL_MAX_PATTERN) {
            qerr_set(err, "%s:%u: exclude regex longer than %u bytes", qx_src(src), pt->line,
                     (unsigned)QEXCL_MAX_PATTERN);
            goto fail;
        }
        if (memchr(pt->p, '\0', pt->len)) {
            qerr_set(err, "%s:%u: invalid exclude regex: contains a NUL byte", qx_src(src),
                     pt->line);
            goto fail;
        }
        int ec = 0;
        PCRE2_SIZE eoff = 0;
        pcre2_code *c = pcre2_compile((PCRE2_SPTR)pt->p, pt->len, 0, &ec, &eoff, NULL);
        if (!c) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            qerr_set(err, "%s:%u: invalid exclude regex '%.*s': %s", qx_src(src), pt->line,
                     (int)pt->len, pt->p, (const char *)msg);
            goto fail;
        }
        int probe = qx_probe(c, pt->p, pt->len, probe_ctx, probe_md);
        pcre2_code_free(c);
        if (probe < 0) {
            qerr_set(err, "%s:%u: exclude regex '%.*s' refused: it backtracks catastrophically (a test path "
                     "exceeded PCRE2's match limit of %u); rewrite nested quantifiers such as (a+)+",
                     qx_src(src), pt->line, (int)pt->len, pt->p, (unsigned)QEXCL_MATCH_BASE);
            goto fail;
        }
        bytes += pt->len + 1;
    }
    pcre2_match_context_free(probe_ctx);
    pcre2_match_data_free(probe_md);
    probe_ctx = NULL;
    probe_md = NULL;
    qexcludes *x = calloc(1, sizeof *x);
    if (!x) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    /* The limit grows with the list: an anchored alternation of n patterns tries each once. */
    uint64_t lim = QEXCL_MATCH_BASE + (uint64_t)QEXCL_MATCH_PER_PATTERN * n;
    x->mctx = qx_limits(lim > UINT32_MAX ? UINT32_MAX : (uint32_t)lim);
    if (!x->mctx) {
        qexcludes_free(x);
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
fail:
    pcre2_match_context_free(probe_ctx);
    pcre2_match_data_free(probe_md);
    return NULL;
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

int qexcludes_match_rc(const qexcludes *x, qexcludes_md *md, const char *name, size_t len)
{
    if (!x || x->ncodes == 0 || !name)
        return 0;
    pcre2_match_data *m = md ? md->md : pcre2_match_data_create(1, NULL);
    if (!m)
        return -1;
    int out = 0;
    for (size_t i = 0; i < x->ncodes && out == 0; i++) {
        int rc = x->jit[i] ? pcre2_jit_match(x->codes[i], (PCRE2_SPTR)name, len, 0, 0, m, x->mctx)
                           : pcre2_match(x->codes[i], (PCRE2_SPTR)name, len, 0, 0, m, x->mctx);
        if (rc >= 0)
            out = 1;     /* 0 = matched, ovector too small for all groups */
        else if (rc != PCRE2_ERROR_NOMATCH)
            out = -1;    /* a limit (or another error): not known to be excluded */
    }
    if (!md)
        pcre2_match_data_free(m);
    return out;
}

bool qexcludes_match(const qexcludes *x, qexcludes_md *md, const char *name, size_t len)
{
    return qexcludes_match_rc(x, md, name, len) == 1;
}
