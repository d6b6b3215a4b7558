/* test_ima_verify.c — the IMA engine: replay, PCR matching, per-entry decisions, counts,
 * messages, streaming, incremental rounds. Every list is built here: template data and hashes
 * are computed with OpenSSL one-shot digests, independently of the code under test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <cjson/cJSON.h>

#include "ima_verify.h"
#include "ima_entry.h"
#include "ima_sig.h"
#include "policy.h"
#include "hex.h"
#include "log.h"

/* ------------------------------------------------------------------------------------------ */
/* Reference hashing (independent of pcr_bank.c)                                               */

static const char *const ossl_names[QHASH_COUNT] = { "SHA1", "SHA256", "SHA384", "SHA512" };
static const size_t hsize[QHASH_COUNT] = { 20, 32, 48, 64 };

static void ref_hash(const char *alg, const void *data, size_t len, uint8_t *out)
{
    EVP_MD *md = EVP_MD_fetch(NULL, alg, NULL);
    unsigned int ol = 0;
    assert_non_null(md);
    assert_int_equal(EVP_Digest(data, len, out, &ol, md, NULL), 1);
    EVP_MD_free(md);
}

/* The digest of a fictitious file: sha256("content:" path). */
static void fdig(const char *path, uint8_t out[32])
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "content:%s", path);
    ref_hash("SHA256", buf, (size_t)n, out);
}

/* ------------------------------------------------------------------------------------------ */
/* Test list builder: the text plus the PCR value of every bank after every raw line.         */

typedef struct {
    uint8_t v[QHASH_COUNT][QHASH_MAX_SIZE];
} snapshot;

typedef struct {
    char *text;
    size_t len, cap;
    snapshot *snap;            /* snap[k] = PCRs after k raw lines (snap[0] = zeros) */
    size_t nraw, snap_cap;
    const char *log_alg;       /* algorithm of the template-hash column, default SHA1 */
} tlog;

enum { F_VIOL = 1, F_BAD_TH = 2 };

typedef struct {
    const char *tmpl;          /* default "ima-ng" */
    const char *pcr;           /* default "10" */
    const char *alg;           /* digest algorithm, default "sha256" */
    const char *path;
    const uint8_t *dig;        /* default fdig(path) */
    size_t dlen;
    const char *extra;         /* ima-sig: signature hex (may be ""); ima-buf: buffer hex */
    int flags;
} espec;

static void tl_init(tlog *t)
{
    memset(t, 0, sizeof *t);
    t->cap = 4096;
    t->text = malloc(t->cap);
    t->snap_cap = 16;
    t->snap = calloc(t->snap_cap, sizeof *t->snap);
    assert_non_null(t->text);
    assert_non_null(t->snap);
    t->text[0] = '\0';
    t->log_alg = "SHA1";
}

static void tl_free(tlog *t)
{
    free(t->text);
    free(t->snap);
}

static void tl_append(tlog *t, const char *s, size_t n)
{
    while (t->len + n + 1 > t->cap) {
        t->cap *= 2;
        t->text = realloc(t->text, t->cap);
        assert_non_null(t->text);
    }
    memcpy(t->text + t->len, s, n);
    t->len += n;
    t->text[t->len] = '\0';
}

/* Start a raw line: its PCRs start as those after the previous line. */
static void tl_next(tlog *t)
{
    if (t->nraw + 2 > t->snap_cap) {
        t->snap_cap *= 2;
        t->snap = realloc(t->snap, t->snap_cap * sizeof *t->snap);
        assert_non_null(t->snap);
    }
    t->snap[t->nraw + 1] = t->snap[t->nraw];
    t->nraw++;
}

static snapshot *tl_cur(tlog *t)
{
    return &t->snap[t->nraw];
}

static void tl_extend(tlog *t, const uint8_t *tdata, size_t tlen, bool viol)
{
    snapshot *s = tl_cur(t);
    for (int a = 0; a < QHASH_COUNT; a++) {
        uint8_t in[2 * QHASH_MAX_SIZE];
        size_t n = hsize[a];
        memcpy(in, s->v[a], n);
        if (viol)
            memset(in + n, 0xff, n);
        else
            ref_hash(ossl_names[a], tdata, tlen, in + n);
        ref_hash(ossl_names[a], in, 2 * n, s->v[a]);
    }
}

/* A line that is not an entry (empty, unparsable): no extend. */
static void tl_raw(tlog *t, const char *line)
{
    tl_append(t, line, strlen(line));
    tl_append(t, "\n", 1);
    tl_next(t);
}

static size_t put_le32(uint8_t *o, size_t v)
{
    o[0] = (uint8_t)v;
    o[1] = (uint8_t)(v >> 8);
    o[2] = (uint8_t)(v >> 16);
    o[3] = (uint8_t)(v >> 24);
    return 4;
}

static size_t build_tdata(uint8_t *o, const char *tmpl, const char *alg, const uint8_t *dig,
                          size_t dlen, const char *path, const uint8_t *extra, size_t elen)
{
    size_t n = 0, plen = strlen(path), alen = strlen(alg);
    if (strcmp(tmpl, "ima") == 0) {
        memcpy(o, dig, dlen);
        memset(o + dlen, 0, 256);
        memcpy(o + dlen, path, plen);
        return dlen + 256;
    }
    n += put_le32(o + n, alen + 2 + dlen);
    memcpy(o + n, alg, alen);
    n += alen;
    o[n++] = ':';
    o[n++] = 0;
    memcpy(o + n, dig, dlen);
    n += dlen;
    n += put_le32(o + n, plen + 1);
    memcpy(o + n, path, plen);
    n += plen;
    o[n++] = 0;
    if (strcmp(tmpl, "ima-sig") == 0 || strcmp(tmpl, "ima-buf") == 0) {
        n += put_le32(o + n, elen);
        memcpy(o + n, extra, elen);
        n += elen;
    }
    return n;
}

static void tl_entry(tlog *t, const espec *s)
{
    const char *tmpl = s->tmpl ? s->tmpl : "ima-ng";
    const char *pcr = s->pcr ? s->pcr : "10";
    bool legacy = strcmp(tmpl, "ima") == 0;
    const char *alg = s->alg ? s->alg : legacy ? "sha1" : "sha256";
    uint8_t dbuf[32];
    const uint8_t *dig = s->dig;
    size_t dlen = s->dlen;
    if (!dig) {
        fdig(s->path, dbuf);
        dig = dbuf;
        dlen = legacy ? 20 : 32;
    }
    static uint8_t extra[70000], tdata[80000];
    size_t elen = 0;
    bool sig_ok = true;
    if (s->extra) {
        size_t xl = strlen(s->extra);
        long d = qhex_decode(s->extra, xl, extra, sizeof extra);
        if (d < 0) {   /* not hex: the engine sees no signature */
            elen = 0;
            sig_ok = false;
            memcpy(extra, s->extra, xl < sizeof extra ? xl : sizeof extra);
        } else {
            elen = (size_t)d;
        }
        if (strcmp(tmpl, "ima-sig") == 0 && elen > 0 &&
            (elen < 9 || elen != 9 + (((size_t)extra[7] << 8) | extra[8])))
            sig_ok = false;
    }
    /* Logged template hash: over the template data as the kernel built it. */
    size_t tl = build_tdata(tdata, tmpl, alg, dig, dlen, s->path, extra, elen);
    uint8_t th[QHASH_MAX_SIZE];
    size_t thl = strcmp(t->log_alg, "SHA1") == 0 ? 20 : strcmp(t->log_alg, "SHA256") == 0 ? 32 : 0;
    assert_true(thl > 0);
    ref_hash(t->log_alg, tdata, tl, th);
    if (s->flags & F_BAD_TH)
        th[0] ^= 0x5a;
    if (s->flags & F_VIOL)
        memset(th, 0, thl);
    /* The engine's view: a malformed signature is rebuilt as an empty field. */
    if (!sig_ok)
        tl = build_tdata(tdata, tmpl, alg, dig, dlen, s->path, extra, 0);
    tl_next(t);
    tl_extend(t, tdata, tl, (s->flags & F_VIOL) != 0);

    char thx[2 * QHASH_MAX_SIZE + 1], dx[2 * 64 + 1];
    qhex_encode(th, thl, thx);
    qhex_encode(dig, dlen, dx);
    char head[512];
    int n;
    if (legacy)
        n = snprintf(head, sizeof head, "%s %s ima %s %s", pcr, thx, dx, s->path);
    else
        n = snprintf(head, sizeof head, "%s %s %s %s:%s %s", pcr, thx, tmpl, alg, dx, s->path);
    tl_append(t, head, (size_t)n);
    if (s->extra) {
        tl_append(t, " ", 1);
        tl_append(t, s->extra, strlen(s->extra));
    }
    tl_append(t, "\n", 1);
}

static void tl_ng(tlog *t, const char *path)
{
    espec s = { .path = path };
    tl_entry(t, &s);
}

static void tl_ngf(tlog *t, const char *path, int flags)
{
    espec s = { .path = path, .flags = flags };
    tl_entry(t, &s);
}

/* ------------------------------------------------------------------------------------------ */
/* Policies                                                                                    */

typedef struct {
    char text[16384];
    size_t len;
} alist;

static void al_add_hex(alist *a, const char *hex, const char *path)
{
    int n = snprintf(a->text + a->len, sizeof a->text - a->len, "%s  %s\n", hex, path);
    assert_true(n > 0 && (size_t)n < sizeof a->text - a->len);
    a->len += (size_t)n;
}

static void al_add(alist *a, const char *path)
{
    uint8_t d[32];
    char hex[65];
    fdig(path, d);
    al_add_hex(a, qhex_encode(d, 32, hex), path);
}

static qpolicy *al_policy(const alist *a, const char *excludes)
{
    qerr err = { 0 };
    qpolicy *p = qpolicy_from_allowlist(a->text, a->len, "test", &err);
    if (!p)
        fail_msg("allowlist: %s", err.msg);
    if (excludes && qpolicy_add_excludes(p, excludes, strlen(excludes), "excl", &err) < 0)
        fail_msg("excludes: %s", err.msg);
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Running the engine                                                                          */

typedef struct {
    qima_fail_kind kind;
    uint64_t entry, line;
    char path[512];
    char msg[1024];
} frec;

typedef struct {
    frec r[256];
    size_t n;
} frecs;

static void on_fail(void *ctx, const qima_failure *f)
{
    frecs *fr = ctx;
    assert_string_equal(f->event_id, qima_fail_event_id(f->kind));
    assert_true(fr->n < sizeof fr->r / sizeof fr->r[0]);
    frec *r = &fr->r[fr->n++];
    r->kind = f->kind;
    r->entry = f->entry;
    r->line = f->line;
    snprintf(r->path, sizeof r->path, "%.*s", (int)f->path_len, f->path);
    snprintf(r->msg, sizeof r->msg, "%s", f->message);
}

static qima_verifier *newv(const qima_opts *o, frecs *fr)
{
    qima_opts oo = *o;
    oo.on_failure = on_fail;
    oo.cb_ctx = fr;
    qerr err = { 0 };
    qima_verifier *v = qima_verifier_new(&oo, &err);
    if (!v)
        fail_msg("qima_verifier_new: %s", err.msg);
    return v;
}

static unsigned lcg(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

enum { WHOLE = 0, BYTES = 1, CHUNKS = 2 };

/* Feed like a real caller: keep what was not consumed and feed it again with more data. */
static void feed_all(qima_verifier *v, const char *text, size_t len, int mode, unsigned seed)
{
    char *pend = malloc(len + 1);
    assert_non_null(pend);
    size_t plen = 0, off = 0;
    while (off < len) {
        size_t c = len - off;
        if (mode == BYTES)
            c = 1;
        else if (mode == CHUNKS) {
            unsigned r = lcg(&seed);
            c = (r % 5 == 0) ? 1 + lcg(&seed) % 4000 : 1 + lcg(&seed) % 90;
        }
        if (c > len - off)
            c = len - off;
        memcpy(pend + plen, text + off, c);
        plen += c;
        off += c;
        long k = qima_verifier_feed(v, pend, plen);
        assert_true(k >= 0 && (size_t)k <= plen);
        memmove(pend, pend + k, plen - (size_t)k);
        plen -= (size_t)k;
    }
    free(pend);
}

static void round_v(qima_verifier *v, const qima_state *start, const uint8_t *quoted, size_t qlen,
                    const char *text, size_t len, int mode, unsigned seed, qima_result *res)
{
    qerr err = { 0 };
    if (qima_verifier_begin(v, start, quoted, qlen, &err) < 0)
        fail_msg("begin: %s", err.msg);
    feed_all(v, text, len, mode, seed);
    assert_int_equal(qima_verifier_finish(v, res), 0);
}

static void run(const qima_opts *o, const qima_state *start, const uint8_t *quoted, size_t qlen,
                const char *text, size_t len, int mode, unsigned seed, qima_result *res, frecs *fr)
{
    qima_verifier *v = newv(o, fr);
    round_v(v, start, quoted, qlen, text, len, mode, seed, res);
    qima_verifier_free(v);
}

static void assert_results_equal(const qima_result *a, const qima_result *b)
{
    assert_int_equal(a->passed, b->passed);
    assert_int_equal(a->pcr_checked, b->pcr_checked);
    assert_int_equal(a->pcr_matched, b->pcr_matched);
    assert_int_equal(a->match_line, b->match_line);
    assert_int_equal(a->raw_lines, b->raw_lines);
    assert_int_equal(a->failures, b->failures);
    assert_memory_equal(&a->counts, &b->counts, sizeof a->counts);
    assert_int_equal(a->final_pcr.alg, b->final_pcr.alg);
    assert_memory_equal(a->final_pcr.value, b->final_pcr.value, QHASH_MAX_SIZE);
    assert_int_equal(a->next.next_entry, b->next.next_entry);
    assert_memory_equal(a->next.pcr.value, b->next.pcr.value, QHASH_MAX_SIZE);
    assert_int_equal(a->next.progress_set, b->next.progress_set);
    assert_int_equal(a->next.prev_match, b->next.prev_match);
    assert_int_equal(a->next.prev_lines, b->next.prev_lines);
}

static void assert_frecs_equal(const frecs *a, const frecs *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->r[i].kind, b->r[i].kind);
        assert_int_equal(a->r[i].entry, b->r[i].entry);
        assert_int_equal(a->r[i].line, b->r[i].line);
        assert_string_equal(a->r[i].path, b->r[i].path);
        assert_string_equal(a->r[i].msg, b->r[i].msg);
    }
}

static size_t count_kind(const frecs *fr, qima_fail_kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < fr->n; i++)
        n += fr->r[i].kind == k;
    return n;
}

static const qima_opts base_opts = { .bank = QHASH_SHA256 };

/* A small good system: boot_aggregate plus four files, all in the allowlist. */
static void good_system(tlog *t, alist *a)
{
    static const char *paths[] = { "boot_aggregate", "/usr/bin/bash", "/usr/lib/libc.so.6",
                                   "/usr/bin/ls", "/etc/passwd" };
    tl_init(t);
    memset(a, 0, sizeof *a);
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        tl_ng(t, paths[i]);
        al_add(a, paths[i]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                       */

static void test_good_list(void **state)
{
    (void)state;
    tlog t;
    alist a;
    good_system(&t, &a);
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    qima_result r;
    frecs fr = { .n = 0 };
    run(&o, NULL, t.snap[5].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_true(r.passed);
    assert_int_equal(fr.n, 0);
    assert_int_equal(r.failures, 0);
    assert_true(r.pcr_checked);
    assert_true(r.pcr_matched);
    assert_int_equal(r.match_line, 5);
    assert_int_equal(r.raw_lines, 5);
    assert_int_equal(r.counts.lines, 5);
    assert_int_equal(r.counts.good, 5);
    assert_memory_equal(r.final_pcr.value, t.snap[5].v[QHASH_SHA256], 32);
    assert_int_equal(r.next.next_entry, 5);
    assert_memory_equal(r.next.pcr.value, t.snap[5].v[QHASH_SHA256], 32);
    assert_true(r.next.progress_set);
    assert_int_equal(r.next.prev_match, 5);
    assert_int_equal(r.next.prev_lines, 5);

    /* Without a quoted PCR: no check, the state moves past every line. */
    run(&o, NULL, NULL, 0, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_true(r.passed);
    assert_false(r.pcr_checked);
    assert_int_equal(r.next.next_entry, 5);
    assert_memory_equal(r.next.pcr.value, t.snap[5].v[QHASH_SHA256], 32);
    qpolicy_free(p);
    tl_free(&t);
}

static void test_fnf_and_hash(void **state)
{
    (void)state;
    tlog t;
    alist a;
    good_system(&t, &a);
    tl_ng(&t, "/usr/bin/missing");   /* line 6: not in the allowlist */
    tl_ng(&t, "/usr/bin/changed");   /* line 7: wrong digest in the allowlist */
    al_add_hex(&a, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
               "/usr/bin/changed");
    al_add_hex(&a, "1111111111111111111111111111111111111111", "/usr/bin/changed");
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    qima_result r;
    frecs fr = { .n = 0 };
    run(&o, NULL, t.snap[7].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_false(r.passed);
    assert_true(r.pcr_matched);
    assert_int_equal(r.failures, 2);
    assert_int_equal(r.counts.fnf, 1);
    assert_int_equal(r.counts.hash, 1);
    assert_int_equal(r.counts.good, 5);
    assert_int_equal(r.counts.per_template[QIMA_TMPL_NG], 2);
    assert_int_equal(fr.n, 2);
    assert_int_equal(fr.r[0].kind, QIMA_FAIL_NOT_IN_ALLOWLIST);
    assert_string_equal(fr.r[0].msg, "File not found in allowlist: /usr/bin/missing");
    assert_string_equal(fr.r[0].path, "/usr/bin/missing");
    assert_int_equal(fr.r[0].entry, 5);
    assert_int_equal(fr.r[0].line, 6);
    uint8_t d[32];
    char hex[65], want[512];
    fdig("/usr/bin/changed", d);
    snprintf(want, sizeof want, "Hashes for file /usr/bin/changed don't match %s not in "
             "['00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', "
             "'1111111111111111111111111111111111111111']", qhex_encode(d, 32, hex));
    assert_int_equal(fr.r[1].kind, QIMA_FAIL_HASH);
    assert_string_equal(fr.r[1].msg, want);
    assert_int_equal(fr.r[1].entry, 6);
    assert_string_equal(qima_fail_event_id(QIMA_FAIL_NOT_IN_ALLOWLIST),
                        "ima.validation.ima-ng.not_in_allowlist");
    assert_string_equal(qima_fail_event_id(QIMA_FAIL_HASH), "ima.validation.ima-ng.runtime_policy_hash");
    qpolicy_free(p);
    tl_free(&t);
}

static void test_template_hash(void **state)
{
    (void)state;
    tlog t;
    alist a;
    good_system(&t, &a);
    tl_ngf(&t, "/usr/bin/notlisted", F_BAD_TH);   /* policy check skipped: no fnf */
    espec s = { .tmpl = "ima-sig", .path = "/usr/bin/sig", .extra = "0302" };  /* malformed sig */
    tl_entry(&t, &s);
    al_add(&a, "/usr/bin/sig");
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    qima_result r;
    frecs fr = { .n = 0 };
    /* The replay uses the recomputed hashes, so the PCR still matches. */
    run(&o, NULL, t.snap[7].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_false(r.passed);
    assert_true(r.pcr_matched);
    assert_int_equal(r.match_line, 7);
    assert_int_equal(r.counts.template_hash, 2);
    assert_int_equal(r.counts.fnf, 0);
    assert_int_equal(r.counts.per_template[QIMA_TMPL_NG], 1);
    assert_int_equal(r.counts.per_template[QIMA_TMPL_SIG], 1);
    assert_int_equal(fr.n, 2);
    assert_int_equal(fr.r[0].kind, QIMA_FAIL_TEMPLATE_HASH);
    assert_string_equal(fr.r[0].msg, "IMA template hash does not match the calculated hash.");
    assert_string_equal(fr.r[0].path, "/usr/bin/notlisted");
    assert_string_equal(fr.r[1].path, "/usr/bin/sig");
    assert_string_equal(qima_fail_event_id(QIMA_FAIL_TEMPLATE_HASH), "ima.validation.ima_hash");
    qpolicy_free(p);
    tl_free(&t);
}

static void test_violations(void **state)
{
    (void)state;
    for (int b = 0; b < QHASH_COUNT; b++) {
        tlog t;
        alist a;
        good_system(&t, &a);
        tl_ngf(&t, "/var/log/wtmp", F_VIOL);   /* not in the allowlist: still fine */
        tl_ng(&t, "/usr/bin/ls");
        qpolicy *p = al_policy(&a, NULL);
        qima_opts o = base_opts;
        o.policy = p;
        o.bank = (qhash_alg)b;
        qima_result r;
        frecs fr = { .n = 0 };
        run(&o, NULL, t.snap[7].v[b], hsize[b], t.text, t.len, WHOLE, 0, &r, &fr);
        assert_true(r.passed);
        assert_true(r.pcr_matched);
        assert_int_equal(r.counts.violations, 1);
        assert_int_equal(r.counts.good, 6);
        assert_int_equal(fr.n, 0);

        o.violations_fail = true;
        fr.n = 0;
        run(&o, NULL, t.snap[7].v[b], hsize[b], t.text, t.len, WHOLE, 0, &r, &fr);
        assert_false(r.passed);
        assert_true(r.pcr_matched);
        assert_int_equal(r.failures, 1);
        assert_int_equal(fr.n, 1);
        assert_int_equal(fr.r[0].kind, QIMA_FAIL_VIOLATION);
        assert_int_equal(fr.r[0].entry, 5);
        assert_string_equal(qima_fail_event_id(QIMA_FAIL_VIOLATION), "ima.validation.tomtou");
        assert_int_equal(r.counts.per_template[QIMA_TMPL_NG], 1);
        qpolicy_free(p);
        tl_free(&t);
    }
}

static void test_excludes(void **state)
{
    (void)state;
    tlog t;
    alist a;
    good_system(&t, &a);
    tl_ng(&t, "/usr/bin/dd2");        /* excluded by the prefix pattern /usr/bin/dd */
    tl_ng(&t, "/tmp/x/y");            /* excluded by /tmp */
    tl_ng(&t, "/usr/bin/cat2");       /* NOT excluded by /usr/bin/cat$ */
    tl_ng(&t, "/opt/usr/bin/dd");     /* NOT excluded: anchored at the start */
    tl_ng(&t, "/usr/bin/cat");        /* excluded exactly */
    qpolicy *p = al_policy(&a, "# comment\n/usr/bin/dd\n\n/tmp\n/usr/bin/cat$\n");
    qima_opts o = base_opts;
    o.policy = p;
    qima_result r;
    frecs fr = { .n = 0 };
    run(&o, NULL, t.snap[10].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_false(r.passed);
    assert_int_equal(r.counts.excluded, 3);
    assert_int_equal(r.counts.fnf, 2);
    assert_int_equal(r.counts.good, 5);
    assert_int_equal(fr.n, 2);
    assert_string_equal(fr.r[0].msg, "File not found in allowlist: /usr/bin/cat2");
    assert_string_equal(fr.r[1].msg, "File not found in allowlist: /opt/usr/bin/dd");
    qpolicy_free(p);
    tl_free(&t);
}

static void test_match_prefix(void **state)
{
    (void)state;
    tlog t;
    alist a;
    good_system(&t, &a);
    tl_ng(&t, "/usr/bin/late");   /* after the match point; still judged */
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    qima_result r;
    frecs fr = { .n = 0 };

    /* Prefix 0: a zero PCR matches before any line; the state does not move. */
    run(&o, NULL, t.snap[0].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_true(r.pcr_matched);
    assert_int_equal(r.match_line, 0);
    assert_int_equal(r.next.next_entry, 0);
    assert_memory_equal(r.next.pcr.value, t.snap[0].v[QHASH_SHA256], 32);
    assert_memory_equal(r.final_pcr.value, t.snap[6].v[QHASH_SHA256], 32);
    assert_int_equal(r.counts.fnf, 1);
    assert_int_equal(fr.n, 1);

    /* Prefix 3. */
    fr.n = 0;
    run(&o, NULL, t.snap[3].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_true(r.pcr_matched);
    assert_int_equal(r.match_line, 3);
    assert_int_equal(r.next.next_entry, 3);
    assert_memory_equal(r.next.pcr.value, t.snap[3].v[QHASH_SHA256], 32);
    assert_memory_equal(r.final_pcr.value, t.snap[6].v[QHASH_SHA256], 32);
    assert_int_equal(r.counts.lines, 6);
    assert_int_equal(r.counts.fnf, 1);      /* line 6 judged after the match at 3 */
    assert_int_equal(fr.n, 1);
    assert_int_equal(fr.r[0].line, 6);
    assert_int_equal(r.next.prev_match, 3);
    assert_int_equal(r.next.prev_lines, 6);
    qpolicy_free(p);
    tl_free(&t);
}

static void test_pcr_mismatch(void **state)
{
    (void)state;
    tlog t;
    alist a;
    good_system(&t, &a);
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    qima_result r;
    frecs fr = { .n = 0 };
    uint8_t bad[32];
    memset(bad, 0xab, sizeof bad);
    qima_state st;
    qima_state_init(&st, QHASH_SHA256);
    st.next_entry = 17;
    run(&o, &st, bad, 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_false(r.passed);
    assert_false(r.pcr_matched);
    assert_int_equal(r.failures, 1);
    assert_int_equal(r.counts.good, 5);
    assert_int_equal(fr.n, 1);
    assert_int_equal(fr.r[0].kind, QIMA_FAIL_PCR_MISMATCH);
    assert_int_equal(fr.r[0].entry, UINT64_MAX);
    assert_int_equal(fr.r[0].line, 0);
    assert_string_equal(fr.r[0].msg, "IMA measurement list does not match TPM PCR "
                        "abababababababababababababababababababababababababababababababab");
    assert_string_equal(qima_fail_event_id(QIMA_FAIL_PCR_MISMATCH), "ima.pcr_mismatch");
    /* Nothing is committed. */
    assert_int_equal(r.next.next_entry, 17);
    assert_memory_equal(r.next.pcr.value, st.pcr.value, 32);
    assert_memory_equal(r.final_pcr.value, t.snap[5].v[QHASH_SHA256], 32);

    /* Wrong sizes and banks are usage errors. */
    qima_verifier *v = newv(&o, &fr);
    qerr err;
    assert_int_equal(qima_verifier_begin(v, NULL, bad, 20, &err), -1);
    qima_state s1;
    qima_state_init(&s1, QHASH_SHA1);
    assert_int_equal(qima_verifier_begin(v, &s1, NULL, 0, &err), -1);
    assert_int_equal(qima_verifier_feed(v, "x\n", 2), -1);   /* no round open */
    assert_int_equal(qima_verifier_finish(v, &r), -1);
    qima_verifier_free(v);
    qpolicy_free(p);
    tl_free(&t);
}

/* A list with a bit of everything, for the streaming tests. */
static void mixed_list(tlog *t, alist *a)
{
    good_system(t, a);
    tl_raw(t, "");                                        /* empty line */
    tl_ng(t, "/usr/bin/missing");
    tl_raw(t, "10 zz ima-ng sha1:00 /broken");            /* parse error */
    tl_ngf(t, "/var/log/v", F_VIOL);
    tl_raw(t, "");
    tl_raw(t, "");
    tl_ngf(t, "/usr/bin/bash", F_BAD_TH);
    espec s = { .tmpl = "ima-sig", .path = "/usr/bin/ls", .extra = "" };
    tl_entry(t, &s);
    espec s2 = { .tmpl = "ima", .path = "/boot/legacy name" };
    tl_entry(t, &s2);
    uint8_t d[32];
    char hex[41];
    fdig("/boot/legacy name", d);
    al_add_hex(a, qhex_encode(d, 20, hex), "/boot/legacy name");
    espec s3 = { .pcr = "11", .path = "/usr/bin/ls" };
    tl_entry(t, &s3);
    tl_raw(t, "10 0123 ima-modsig sha1:00 /x");
    for (int i = 0; i < 20; i++) {
        char path[64];
        snprintf(path, sizeof path, "/usr/lib/mod%02d.so", i);
        tl_ng(t, path);
        if (i % 3)
            al_add(a, path);
    }
}

static void test_pieces_vs_whole(void **state)
{
    (void)state;
    tlog t;
    alist a;
    mixed_list(&t, &a);
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    for (size_t k = 0; k <= t.nraw; k += 7) {
        const uint8_t *q = t.snap[k].v[QHASH_SHA256];
        qima_result whole, other;
        frecs fw = { .n = 0 }, fo = { .n = 0 };
        run(&o, NULL, q, 32, t.text, t.len, WHOLE, 0, &whole, &fw);
        assert_true(whole.pcr_matched);
        assert_true(fw.n > 5);
        run(&o, NULL, q, 32, t.text, t.len, BYTES, 0, &other, &fo);
        assert_results_equal(&whole, &other);
        assert_frecs_equal(&fw, &fo);
        for (unsigned seed = 1; seed < 6; seed++) {
            fo.n = 0;
            run(&o, NULL, q, 32, t.text, t.len, CHUNKS, seed * 7919u + (unsigned)k, &other, &fo);
            assert_results_equal(&whole, &other);
            assert_frecs_equal(&fw, &fo);
        }
    }
    /* The overall figures of the mixed list. */
    qima_result r;
    frecs fr = { .n = 0 };
    run(&o, NULL, t.snap[t.nraw].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_int_equal(r.raw_lines, t.nraw);
    assert_int_equal(r.counts.lines, t.nraw - 3);
    assert_int_equal(r.counts.parse_errors, 2);
    assert_int_equal(r.counts.violations, 1);
    assert_int_equal(r.counts.template_hash, 1);
    assert_int_equal(r.counts.pcr_column, 1);
    assert_int_equal(r.counts.fnf, 1 + 7);
    assert_int_equal(r.counts.hash, 0);
    assert_int_equal(r.counts.per_template[QIMA_TMPL_NG], 1 + 1 + 1 + 7);
    assert_int_equal(r.counts.good, 5 + 1 + 1 + 13);
    assert_int_equal(r.match_line, t.nraw);
    assert_int_equal(count_kind(&fr, QIMA_FAIL_PARSE), 2);
    for (size_t i = 0; i < fr.n; i++)
        if (fr.r[i].kind == QIMA_FAIL_PARSE)
            assert_non_null(strstr(fr.r[i].msg, "Line was not parsable into a valid IMA entry: "));
    qpolicy_free(p);
    tl_free(&t);
}

static void test_two_rounds(void **state)
{
    (void)state;
    tlog t;
    alist a;
    mixed_list(&t, &a);
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    size_t total = t.nraw;
    for (size_t k = 1; k < total; k += 3) {
        qima_result one, r1, r2;
        frecs f1 = { .n = 0 }, fa = { .n = 0 }, fb = { .n = 0 };
        run(&o, NULL, t.snap[total].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &one, &f1);

        /* Round 1: the agent had k lines; the quote matches after them (or earlier, when the
         * last lines did not extend). Round 2 resumes at next_entry, as the agent would. */
        size_t off = 0;
        for (size_t i = 0; i < k; i++)
            off = (size_t)(strchr(t.text + off, '\n') - t.text) + 1;
        size_t first = 0;
        while (memcmp(t.snap[first].v[QHASH_SHA256], t.snap[k].v[QHASH_SHA256], 32) != 0)
            first++;
        qima_verifier *v = newv(&o, &fa);
        round_v(v, NULL, t.snap[k].v[QHASH_SHA256], 32, t.text, off, CHUNKS, (unsigned)k, &r1);
        assert_true(r1.pcr_matched);
        assert_int_equal(r1.next.next_entry, first);
        qima_verifier_free(v);
        size_t off2 = 0;
        for (size_t i = 0; i < first; i++)
            off2 = (size_t)(strchr(t.text + off2, '\n') - t.text) + 1;
        v = newv(&o, &fb);
        round_v(v, &r1.next, t.snap[total].v[QHASH_SHA256], 32, t.text + off2, t.len - off2, WHOLE, 0, &r2);
        qima_verifier_free(v);
        assert_true(r2.pcr_matched);
        assert_int_equal(r2.next.next_entry, one.next.next_entry);
        assert_memory_equal(r2.next.pcr.value, one.next.pcr.value, 32);
        assert_memory_equal(r2.final_pcr.value, one.final_pcr.value, 32);
        /* Lines that did not extend (empty, unparsable) between the match and k are seen by
         * both rounds; otherwise the two rounds add up to the single one. */
        if (first != k)
            continue;
        assert_int_equal(r1.raw_lines + r2.raw_lines, one.raw_lines);
        assert_int_equal(r1.counts.lines + r2.counts.lines, one.counts.lines);
        assert_int_equal(r1.counts.good + r2.counts.good, one.counts.good);
        assert_int_equal(r1.failures + r2.failures, one.failures);
        /* The failures are the same, with the same absolute entry numbers. */
        assert_int_equal(fa.n + fb.n, f1.n);
        for (size_t i = 0; i < f1.n; i++) {
            const frec *x = i < fa.n ? &fa.r[i] : &fb.r[i - fa.n];
            assert_int_equal(x->kind, f1.r[i].kind);
            assert_int_equal(x->entry, f1.r[i].entry);
            assert_string_equal(x->msg, f1.r[i].msg);
        }
    }
    qpolicy_free(p);
    tl_free(&t);
}

static void test_quote_progress(void **state)
{
    (void)state;
    tlog t;
    alist a;
    tl_init(&t);
    memset(&a, 0, sizeof a);
    size_t off10 = 0;
    for (int i = 0; i < 12; i++) {
        char path[32];
        snprintf(path, sizeof path, "/bin/p%d", i);
        tl_ng(&t, path);
        al_add(&a, path);
        if (i == 9)
            off10 = t.len;
    }
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    frecs fr = { .n = 0 };
    qima_result r1, r2;
    /* Round 1: the agent has 10 lines, the quote lags (matches at 2). Passes; (2, 10) kept. */
    run(&o, NULL, t.snap[2].v[QHASH_SHA256], 32, t.text, off10, WHOLE, 0, &r1, &fr);
    assert_true(r1.passed);
    assert_int_equal(r1.next.next_entry, 2);
    assert_true(r1.next.progress_set);
    assert_int_equal(r1.next.prev_match, 2);
    assert_int_equal(r1.next.prev_lines, 10);
    const char *rest = t.text;
    for (int i = 0; i < 2; i++)
        rest = strchr(rest, '\n') + 1;
    size_t rlen8 = off10 - (size_t)(rest - t.text), rlen10 = t.len - (size_t)(rest - t.text);

    /* Round 2: 8 lines from entry 2; the quote matches at 1 < previous lag 8 → failure. */
    run(&o, &r1.next, t.snap[3].v[QHASH_SHA256], 32, rest, rlen8, WHOLE, 0, &r2, &fr);
    assert_false(r2.passed);
    assert_true(r2.pcr_matched);
    assert_int_equal(r2.failures, 1);
    assert_int_equal(fr.n, 1);
    assert_int_equal(fr.r[0].kind, QIMA_FAIL_QUOTE_PROGRESS);
    assert_string_equal(fr.r[0].msg, "PCR quote did not make progress to catch up with the log");
    assert_string_equal(qima_fail_event_id(QIMA_FAIL_QUOTE_PROGRESS), "ima.quote_progress");
    assert_int_equal(r2.next.prev_match, 1);
    assert_int_equal(r2.next.prev_lines, 8);

    /* Catching up completely (m == n) passes. */
    fr.n = 0;
    run(&o, &r1.next, t.snap[10].v[QHASH_SHA256], 32, rest, rlen8, WHOLE, 0, &r2, &fr);
    assert_true(r2.passed);
    assert_int_equal(r2.next.next_entry, 10);
    /* The log grew to 12: matching at 8 (= the previous lag) passes, at 7 fails. */
    run(&o, &r1.next, t.snap[10].v[QHASH_SHA256], 32, rest, rlen10, WHOLE, 0, &r2, &fr);
    assert_true(r2.passed);
    assert_int_equal(r2.match_line, 8);
    run(&o, &r1.next, t.snap[9].v[QHASH_SHA256], 32, rest, rlen10, WHOLE, 0, &r2, &fr);
    assert_false(r2.passed);
    assert_int_equal(count_kind(&fr, QIMA_FAIL_QUOTE_PROGRESS), 1);

    /* No previous lag → no check, even when matching at 0 with nothing new. */
    qima_result r0;
    fr.n = 0;
    run(&o, NULL, t.snap[12].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r0, &fr);
    assert_true(r0.passed);
    run(&o, &r0.next, t.snap[12].v[QHASH_SHA256], 32, "", 0, WHOLE, 0, &r2, &fr);
    assert_true(r2.passed);
    assert_int_equal(r2.match_line, 0);
    assert_int_equal(r2.next.next_entry, 12);

    /* A start state without progress memory is a first round: store, no check. */
    qima_state st = r1.next;
    st.progress_set = false;
    run(&o, &st, t.snap[3].v[QHASH_SHA256], 32, rest, rlen8, WHOLE, 0, &r2, &fr);
    assert_true(r2.passed);
    assert_true(r2.next.progress_set);
    qpolicy_free(p);
    tl_free(&t);
}

/* A list in pieces (the agent's max_ima_bytes): 60 entries, the quote covering all of them, fed
 * in pieces of 25, 25 and 10 entries with set_piece(more) on all but the last. The first two are
 * pending (no mismatch), each continuing from the state after the previous piece; the last
 * matches. Without set_piece the first piece is a mismatch, as before. A piece that matches
 * inside is handled as usual, and a wrong entry in a piece still fails. */
static void test_pieces(void **state)
{
    (void)state;
    tlog t;
    alist a;
    tl_init(&t);
    memset(&a, 0, sizeof a);
    size_t cut[4] = { 0 };
    for (int i = 0; i < 60; i++) {
        char path[32];
        snprintf(path, sizeof path, "/bin/q%d", i);
        tl_ng(&t, path);
        if (i != 55)
            al_add(&a, path);
        if (i == 24)
            cut[1] = t.len;
        if (i == 49)
            cut[2] = t.len;
    }
    cut[3] = t.len;
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    frecs fr = { .n = 0 };
    qima_verifier *v = newv(&o, &fr);
    const uint8_t *all = t.snap[60].v[QHASH_SHA256];
    qima_result r;
    qerr err = { 0 };
    qima_state st;
    qima_state_init(&st, QHASH_SHA256);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(qima_verifier_begin(v, &st, all, 32, &err), 0);
        assert_int_equal(qima_verifier_set_piece(v, k < 2), 0);
        feed_all(v, t.text + cut[k], cut[k + 1] - cut[k], CHUNKS, 7u + (unsigned)k);
        assert_int_equal(qima_verifier_finish(v, &r), 0);
        if (k < 2) {
            assert_true(r.passed);
            assert_true(r.pending);
            assert_false(r.pcr_matched);
            assert_int_equal(r.next.next_entry, k == 0 ? 25 : 50);
            assert_memory_equal(r.next.pcr.value, t.snap[k == 0 ? 25 : 50].v[QHASH_SHA256], 32);
        } else {
            assert_false(r.pending);
            assert_true(r.pcr_matched);
            assert_int_equal(r.next.next_entry, 60);
            assert_false(r.passed);                  /* /bin/q55 is not in the allowlist */
            assert_int_equal(count_kind(&fr, QIMA_FAIL_NOT_IN_ALLOWLIST), 1);
            assert_int_equal(count_kind(&fr, QIMA_FAIL_PCR_MISMATCH), 0);
        }
        st = r.next;
    }
    /* Without set_piece, the first piece alone is a mismatch. */
    fr.n = 0;
    round_v(v, NULL, all, 32, t.text, cut[1], WHOLE, 0, &r);
    assert_false(r.passed);
    assert_false(r.pending);
    assert_int_equal(count_kind(&fr, QIMA_FAIL_PCR_MISMATCH), 1);
    /* A piece whose quote matches inside it: as usual (state at the match point). */
    fr.n = 0;
    assert_int_equal(qima_verifier_begin(v, NULL, t.snap[10].v[QHASH_SHA256], 32, &err), 0);
    assert_int_equal(qima_verifier_set_piece(v, true), 0);
    feed_all(v, t.text, cut[1], WHOLE, 0);
    assert_int_equal(qima_verifier_finish(v, &r), 0);
    assert_true(r.passed && r.pcr_matched && !r.pending);
    assert_int_equal(r.next.next_entry, 10);
    qima_verifier_free(v);
    qpolicy_free(p);
    tl_free(&t);
}

static void test_pcr_column(void **state)
{
    (void)state;
    tlog t;
    alist a;
    good_system(&t, &a);
    espec s = { .pcr = "11", .path = "/usr/bin/unknown" };
    tl_entry(&t, &s);
    espec s2 = { .pcr = "010", .path = "/usr/bin/ls" };
    tl_entry(&t, &s2);
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    qima_result r;
    frecs fr = { .n = 0 };
    run(&o, NULL, t.snap[7].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_true(r.pcr_matched);           /* still extended */
    assert_int_equal(r.counts.pcr_column, 2);
    assert_int_equal(r.counts.fnf, 1);    /* the other checks still ran */
    assert_int_equal(r.counts.per_template[QIMA_TMPL_NG], 2);
    assert_int_equal(r.failures, 3);
    assert_int_equal(fr.r[0].kind, QIMA_FAIL_PCR_COLUMN);
    assert_string_equal(fr.r[0].msg, "IMA entry PCR does not match 10. It was: 11");
    assert_int_equal(fr.r[1].kind, QIMA_FAIL_NOT_IN_ALLOWLIST);
    assert_string_equal(fr.r[2].msg, "IMA entry PCR does not match 10. It was: 010");
    assert_string_equal(qima_fail_event_id(QIMA_FAIL_PCR_COLUMN), "ima.validation.ima_pcr");
    qpolicy_free(p);
    tl_free(&t);
}

typedef struct {
    char lines[32][1024];
    qlog_level lvl[32];
    char module[32][32];
    size_t n;
} logcap;

static void sink(void *ctx, qlog_level lvl, const char *module, const char *msg)
{
    logcap *c = ctx;
    if (c->n >= 32)
        return;
    c->lvl[c->n] = lvl;
    snprintf(c->module[c->n], sizeof c->module[0], "%s", module);
    snprintf(c->lines[c->n], sizeof c->lines[0], "%s", msg);
    c->n++;
}

static void test_log_lines(void **state)
{
    (void)state;
    tlog t;
    alist a;
    good_system(&t, &a);
    tl_ng(&t, "/usr/bin/missing");
    tl_ngf(&t, "/usr/bin/ls", F_BAD_TH);
    tl_ng(&t, "/usr/bin/changed");
    al_add_hex(&a, "1111111111111111111111111111111111111111", "/usr/bin/changed");
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    o.log = true;
    logcap cap = { .n = 0 };
    qlog_level old = qlog_get_level();
    qlog_set_level(QLOG_INFO);
    qlog_use_stderr(false);
    qlog_set_sink(sink, &cap);
    qima_result r;
    frecs fr = { .n = 0 };
    run(&o, NULL, t.snap[8].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    qlog_set_sink(NULL, NULL);
    qlog_use_stderr(true);
    qlog_set_level(old);
    assert_false(r.passed);
    size_t found_fnf = 0, found_sum = 0, found_hash = 0;
    for (size_t i = 0; i < cap.n; i++) {
        assert_string_equal(cap.module[i], "ima");
        if (strcmp(cap.lines[i], "File not found in allowlist: /usr/bin/missing") == 0) {
            assert_int_equal(cap.lvl[i], QLOG_WARNING);
            found_fnf++;
        }
        if (strncmp(cap.lines[i], "Hashes for file /usr/bin/changed don't match ", 45) == 0) {
            assert_int_equal(cap.lvl[i], QLOG_WARNING);
            found_hash++;
        }
        if (strncmp(cap.lines[i], "IMA ERRORS", 10) == 0) {
            assert_string_equal(cap.lines[i], "IMA ERRORS: template-hash 1 fnf 1 hash 1 good 5");
            assert_int_equal(cap.lvl[i], QLOG_ERROR);
            found_sum++;
        }
    }
    assert_int_equal(found_fnf, 1);
    assert_int_equal(found_hash, 1);
    assert_int_equal(found_sum, 1);

    /* A clean run logs no summary; with log off nothing is logged at all. */
    tlog t2;
    alist a2;
    good_system(&t2, &a2);
    qpolicy *p2 = al_policy(&a2, NULL);
    o.policy = p2;
    cap.n = 0;
    qlog_use_stderr(false);
    qlog_set_sink(sink, &cap);
    run(&o, NULL, t2.snap[5].v[QHASH_SHA256], 32, t2.text, t2.len, WHOLE, 0, &r, &fr);
    assert_true(r.passed);
    for (size_t i = 0; i < cap.n; i++)
        assert_null(strstr(cap.lines[i], "IMA ERRORS"));
    o.policy = p;
    o.log = false;
    cap.n = 0;
    run(&o, NULL, t.snap[8].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_false(r.passed);
    assert_int_equal(cap.n, 0);
    qlog_set_sink(NULL, NULL);
    qlog_use_stderr(true);
    qpolicy_free(p);
    qpolicy_free(p2);
    tl_free(&t);
    tl_free(&t2);
}

static void test_banks(void **state)
{
    (void)state;
    tlog t;
    alist a;
    mixed_list(&t, &a);
    qpolicy *p = al_policy(&a, NULL);
    for (int b = 0; b < QHASH_COUNT; b++) {
        qima_opts o = base_opts;
        o.policy = p;
        o.bank = (qhash_alg)b;
        qima_result r;
        frecs fr = { .n = 0 };
        for (size_t k = 0; k <= t.nraw; k++) {
            fr.n = 0;
            run(&o, NULL, t.snap[k].v[b], hsize[b], t.text, t.len, WHOLE, 0, &r, &fr);
            assert_true(r.pcr_matched);
            assert_int_equal(r.final_pcr.alg, b);
            assert_memory_equal(r.final_pcr.value, t.snap[t.nraw].v[b], hsize[b]);
            /* The first raw line count whose prefix gives this value. */
            size_t first = 0;
            while (memcmp(t.snap[first].v[b], t.snap[k].v[b], hsize[b]) != 0)
                first++;
            assert_int_equal(r.match_line, first);
            assert_memory_equal(r.next.pcr.value, t.snap[k].v[b], hsize[b]);
            assert_int_equal(count_kind(&fr, QIMA_FAIL_PCR_MISMATCH), 0);
        }
        /* Another bank's value does not match. */
        int other = (b + 1) % QHASH_COUNT;
        uint8_t q[QHASH_MAX_SIZE];
        memcpy(q, t.snap[t.nraw].v[other], hsize[b]);
        fr.n = 0;
        run(&o, NULL, q, hsize[b], t.text, t.len, WHOLE, 0, &r, &fr);
        assert_false(r.pcr_matched);
        assert_int_equal(count_kind(&fr, QIMA_FAIL_PCR_MISMATCH), 1);
    }
    qpolicy_free(p);
    tl_free(&t);
}

static void test_null_policy(void **state)
{
    (void)state;
    tlog t;
    alist a;
    good_system(&t, &a);
    qima_opts o = base_opts;
    qima_result r;
    frecs fr = { .n = 0 };
    run(&o, NULL, t.snap[5].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_false(r.passed);
    assert_true(r.pcr_matched);
    assert_int_equal(r.counts.fnf, 5);
    assert_int_equal(r.counts.good, 0);
    assert_string_equal(fr.r[0].msg, "File not found in allowlist: boot_aggregate");
    tl_free(&t);
}

static void test_long_lines(void **state)
{
    (void)state;
    tlog t;
    alist a;
    good_system(&t, &a);
    size_t big = QIMA_MAX_LINE + 5000;
    char *line = malloc(big + 1);
    assert_non_null(line);
    memset(line, 'a', big);
    line[big] = '\0';
    tl_raw(&t, line);                 /* overlong: one parse failure, no extend */
    tl_ng(&t, "/usr/bin/ls");
    /* A line of exactly QIMA_MAX_LINE bytes is a normal (here unparsable) line. */
    line[QIMA_MAX_LINE] = '\0';
    tl_raw(&t, line);
    tl_ng(&t, "/usr/bin/bash");
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    qima_result whole, other;
    frecs fw = { .n = 0 }, fo = { .n = 0 };
    run(&o, NULL, t.snap[t.nraw].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &whole, &fw);
    assert_true(whole.pcr_matched);
    assert_int_equal(whole.raw_lines, 9);
    assert_int_equal(whole.counts.parse_errors, 2);
    assert_int_equal(whole.counts.good, 7);
    assert_int_equal(fw.n, 2);
    assert_string_equal(fw.r[0].msg, "Line was not parsable into a valid IMA entry: line longer than 65536 bytes");
    assert_int_equal(fw.r[0].line, 6);
    for (unsigned seed = 1; seed < 4; seed++) {
        fo.n = 0;
        run(&o, NULL, t.snap[t.nraw].v[QHASH_SHA256], 32, t.text, t.len, CHUNKS, seed, &other, &fo);
        assert_results_equal(&whole, &other);
        assert_frecs_equal(&fw, &fo);
    }

    /* An overlong line that never ends is consumed and failed, not buffered. */
    qima_verifier *v = newv(&o, &fo);
    fo.n = 0;
    assert_int_equal(qima_verifier_begin(v, NULL, NULL, 0, NULL), 0);
    memset(line, 'b', big);
    assert_int_equal(qima_verifier_feed(v, line, QIMA_MAX_LINE), 0);   /* may still end */
    assert_int_equal(qima_verifier_feed(v, line, big), (long)big);
    assert_int_equal(qima_verifier_feed(v, line, 100), 100);            /* still the same line */
    assert_int_equal(qima_verifier_feed(v, "xx\n10 y", 7), 3);         /* its end */
    assert_int_equal(qima_verifier_finish(v, &other), 0);
    assert_int_equal(other.raw_lines, 1);
    assert_int_equal(other.counts.parse_errors, 1);
    assert_int_equal(fo.n, 1);
    qima_verifier_free(v);
    free(line);
    qpolicy_free(p);
    tl_free(&t);
}

/* ---- signatures and keys ----------------------------------------------------------------- */

static EVP_PKEY *rsa_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(k);
    return k;
}

static size_t pub_der(EVP_PKEY *k, uint8_t *out, size_t cap)
{
    unsigned char *p = NULL;
    int n = i2d_PUBKEY(k, &p);
    assert_true(n > 0 && (size_t)n <= cap);
    memcpy(out, p, (size_t)n);
    OPENSSL_free(p);
    return (size_t)n;
}

/* signature_v2_hdr (type 3, version 2, sha256 = 4) + RSA PKCS#1 v1.5 over the file digest, as hex. */
static void ima_sign(EVP_PKEY *k, const uint8_t *dig, char *hexout)
{
    uint8_t der[2048];
    size_t dl = pub_der(k, der, sizeof der);
    uint32_t keyid = 0;
    qerr err;
    if (qkeyring_keyid(der, dl, &keyid, &err) < 0)
        fail_msg("keyid: %s", err.msg);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_sign_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
    uint8_t blob[9 + 512];
    size_t sl = sizeof blob - 9;
    assert_int_equal(EVP_PKEY_sign(c, blob + 9, &sl, dig, 32), 1);
    EVP_PKEY_CTX_free(c);
    blob[0] = 3;
    blob[1] = 2;
    blob[2] = 4;
    blob[3] = (uint8_t)(keyid >> 24);
    blob[4] = (uint8_t)(keyid >> 16);
    blob[5] = (uint8_t)(keyid >> 8);
    blob[6] = (uint8_t)keyid;
    blob[7] = (uint8_t)(sl >> 8);
    blob[8] = (uint8_t)sl;
    qhex_encode(blob, 9 + sl, hexout);
}

static void test_ima_sig(void **state)
{
    (void)state;
    EVP_PKEY *k1 = rsa_key(), *k2 = rsa_key();
    uint8_t der[2048];
    size_t dl = pub_der(k1, der, sizeof der);
    qkeyring *ring = qkeyring_new();
    assert_non_null(ring);
    assert_int_equal(qkeyring_add_key(ring, der, dl, NULL), 0);

    tlog t;
    alist a;
    good_system(&t, &a);
    uint8_t d[32];
    char sig1[2 * 600], sig2[2 * 600];
    fdig("/usr/bin/signed", d);
    ima_sign(k1, d, sig1);
    fdig("/usr/bin/othersigned", d);
    ima_sign(k2, d, sig2);
    espec s1 = { .tmpl = "ima-sig", .path = "/usr/bin/signed", .extra = sig1 };      /* good sig */
    espec s2 = { .tmpl = "ima-sig", .path = "/usr/bin/othersigned", .extra = sig2 }; /* unknown key */
    espec s3 = { .tmpl = "ima-sig", .path = "/usr/bin/ls", .extra = "" };           /* unsigned, listed */
    espec s4 = { .tmpl = "ima-sig", .path = "/usr/bin/unsigned", .extra = "" };     /* unsigned, unlisted */
    espec s5 = { .tmpl = "ima-sig", .path = "/tmp/excluded", .extra = sig2 };       /* excluded */
    tl_entry(&t, &s1);
    tl_entry(&t, &s2);
    tl_entry(&t, &s3);
    tl_entry(&t, &s4);
    tl_entry(&t, &s5);
    qpolicy *p = al_policy(&a, "/tmp\n");
    qima_opts o = base_opts;
    o.policy = p;
    o.agent_keyring = ring;
    qima_result r;
    frecs fr = { .n = 0 };
    run(&o, NULL, t.snap[10].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_true(r.pcr_matched);
    assert_int_equal(r.counts.template_hash, 0);
    assert_int_equal(r.counts.fnf, 2);
    assert_int_equal(r.counts.excluded, 1);
    assert_int_equal(r.counts.good, 5 + 2);
    assert_int_equal(r.counts.per_template[QIMA_TMPL_SIG], 2);
    assert_int_equal(fr.n, 2);
    assert_string_equal(fr.r[0].msg, "File not found in allowlist: /usr/bin/othersigned");
    assert_string_equal(fr.r[1].msg, "File not found in allowlist: /usr/bin/unsigned");

    /* Without the agent keyring, the signed file is judged by the allowlist. */
    o.agent_keyring = NULL;
    fr.n = 0;
    run(&o, NULL, t.snap[10].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_int_equal(r.counts.fnf, 3);
    assert_string_equal(fr.r[0].msg, "File not found in allowlist: /usr/bin/signed");

    qpolicy_free(p);
    qkeyring_free(ring);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    tl_free(&t);
}

static void test_ima_buf_keys(void **state)
{
    (void)state;
    EVP_PKEY *k = rsa_key();
    uint8_t der[2048], d[32], kd[32];
    size_t dl = pub_der(k, der, sizeof der);
    char derhex[2 * sizeof der + 1], kdhex[65], sig[2 * 600];
    qhex_encode(der, dl, derhex);
    ref_hash("SHA256", der, dl, kd);
    qhex_encode(kd, 32, kdhex);
    fdig("/usr/bin/signed", d);
    ima_sign(k, d, sig);

    tlog t1, t2;
    alist a;
    good_system(&t1, &a);
    /* Round 1: the key is measured into .ima (accepted by the keyrings table), then used. */
    espec key = { .tmpl = "ima-buf", .path = ".ima", .dig = kd, .dlen = 32, .extra = derhex };
    tl_entry(&t1, &key);
    espec se = { .tmpl = "ima-sig", .path = "/usr/bin/signed", .extra = sig };
    tl_entry(&t1, &se);
    /* Plain ima-buf data: one listed, one not. */
    static const char cmdline[] = "726f6f743d2f6465762f736461";   /* root=/dev/sda */
    uint8_t cb[13], cd[32];
    char cdhex[65];
    assert_int_equal(qhex_decode(cmdline, strlen(cmdline), cb, sizeof cb), 13);
    ref_hash("SHA256", cb, 13, cd);
    espec b1 = { .tmpl = "ima-buf", .path = "kexec-cmdline", .dig = cd, .dlen = 32, .extra = cmdline };
    espec b2 = { .tmpl = "ima-buf", .path = "other-buf", .dig = cd, .dlen = 32, .extra = cmdline };
    tl_entry(&t1, &b1);
    tl_entry(&t1, &b2);
    al_add_hex(&a, kdhex, "%keyring:.ima");
    qpolicy *p = al_policy(&a, NULL);
    assert_int_equal(qpolicy_add_digest(p, QPOL_IMABUF, "kexec-cmdline", 13,
                                        qhex_encode(cd, 32, cdhex), NULL), 0);
    qima_opts o = base_opts;
    o.policy = p;
    frecs fr = { .n = 0 };
    qima_verifier *v = newv(&o, &fr);
    qima_result r;
    round_v(v, NULL, t1.snap[9].v[QHASH_SHA256], 32, t1.text, t1.len, WHOLE, 0, &r);
    assert_true(r.pcr_matched);
    assert_int_equal(r.counts.fnf, 1);
    assert_int_equal(fr.n, 1);
    assert_string_equal(fr.r[0].msg, "File not found in allowlist: other-buf");
    assert_int_equal(r.counts.per_template[QIMA_TMPL_BUF], 1);
    assert_int_equal(r.counts.good, 5 + 3);

    /* Round 2 (incremental): the learned key still verifies a new signed entry. */
    tl_init(&t2);
    t2.snap[0] = t1.snap[9];   /* continue the replay from round 1 */
    tl_entry(&t2, &se);
    qima_state st = r.next;
    fr.n = 0;
    const uint8_t *q = t2.snap[1].v[QHASH_SHA256];
    round_v(v, &st, q, 32, t2.text, t2.len, WHOLE, 0, &r);
    assert_true(r.passed);
    assert_int_equal(r.counts.good, 1);

    /* After a reset of the learned keys, the same entry is judged by the allowlist. */
    qima_verifier_reset_learned(v);
    round_v(v, &st, q, 32, t2.text, t2.len, WHOLE, 0, &r);
    assert_false(r.passed);
    assert_int_equal(r.counts.fnf, 1);
    qima_verifier_free(v);

    /* A key from a keyring the policy does not list is not learned (and fails). */
    alist a2;
    memset(&a2, 0, sizeof a2);
    qpolicy *p2 = al_policy(&a2, NULL);
    o.policy = p2;
    fr.n = 0;
    v = newv(&o, &fr);
    round_v(v, NULL, NULL, 0, t1.text, t1.len, WHOLE, 0, &r);
    assert_int_equal(fr.n, 9);   /* 5 files, the key, the signed file, two buffers */
    assert_string_equal(fr.r[5].msg, "File not found in allowlist: .ima");
    qima_verifier_free(v);

    qpolicy_free(p);
    qpolicy_free(p2);
    EVP_PKEY_free(k);
    tl_free(&t1);
    tl_free(&t2);
}

/* Learned keyrings leave one verifier as JSON and come back into a fresh one. */
static void import_ok(qima_verifier *v, const char *text)
{
    qerr err = { 0 };
    if (qima_verifier_import_learned(v, text, text ? strlen(text) : 0, &err) < 0)
        fail_msg("import: %s", err.msg);
}

static void import_bad(qima_verifier *v, const char *text)
{
    qerr err = { 0 };
    assert_int_equal(qima_verifier_import_learned(v, text, strlen(text), &err), -1);
    assert_true(err.msg[0] != '\0');
}

static char *export_ok(const qima_verifier *v)
{
    qerr err = { 0 };
    char *t = qima_verifier_export_learned(v, &err);
    if (!t)
        fail_msg("export: %s", err.msg);
    return t;
}

static void test_learned_export_import(void **state)
{
    (void)state;
    EVP_PKEY *k = rsa_key();
    uint8_t der[2048], d[32], kd[32];
    size_t dl = pub_der(k, der, sizeof der);
    char derhex[2 * sizeof der + 1], kdhex[65], sig[2 * 600];
    qhex_encode(der, dl, derhex);
    ref_hash("SHA256", der, dl, kd);
    qhex_encode(kd, 32, kdhex);
    fdig("/usr/bin/signed", d);
    ima_sign(k, d, sig);
    uint32_t keyid = 0;
    assert_int_equal(qkeyring_keyid(der, dl, &keyid, NULL), 0);

    /* Round 1 learns the key from .ima; the signed file is not in the allowlist. */
    tlog t1, t2;
    alist a;
    good_system(&t1, &a);
    espec key = { .tmpl = "ima-buf", .path = ".ima", .dig = kd, .dlen = 32, .extra = derhex };
    tl_entry(&t1, &key);
    al_add_hex(&a, kdhex, "%keyring:.ima");
    qpolicy *p = al_policy(&a, NULL);
    qima_opts o = base_opts;
    o.policy = p;
    frecs fr = { .n = 0 };
    qima_verifier *v1 = newv(&o, &fr);
    char *none = export_ok(v1);
    assert_string_equal(none, "{}");
    free(none);
    qima_result r;
    round_v(v1, NULL, t1.snap[6].v[QHASH_SHA256], 32, t1.text, t1.len, WHOLE, 0, &r);
    assert_true(r.passed);
    qima_state st = r.next;
    /* The same key entry judged again (a later round re-reads it) is not learned twice. */
    round_v(v1, NULL, t1.snap[6].v[QHASH_SHA256], 32, t1.text, t1.len, WHOLE, 0, &r);
    assert_true(r.passed);
    char *text = export_ok(v1);
    qima_verifier_free(v1);

    /* The export is Keylime's keyring JSON per keyring name. */
    cJSON *j = cJSON_Parse(text);
    assert_true(cJSON_IsObject(j));
    assert_int_equal(cJSON_GetArraySize(j), 1);
    const cJSON *ring = cJSON_GetObjectItemCaseSensitive(j, ".ima");
    assert_true(cJSON_IsObject(ring));
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(ring, "pubkeys");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(ring, "keyids");
    assert_int_equal(cJSON_GetArraySize(pk), 1);
    assert_int_equal(cJSON_GetArraySize(ids), 1);
    assert_true(cJSON_IsString(cJSON_GetArrayItem(pk, 0)));
    assert_true(cJSON_GetArrayItem(ids, 0)->valuedouble == (double)keyid);
    cJSON_Delete(j);

    /* Round 2 in a FRESH verifier: the imported key verifies the signed entry. */
    tl_init(&t2);
    t2.snap[0] = t1.snap[6];
    espec se = { .tmpl = "ima-sig", .path = "/usr/bin/signed", .extra = sig };
    tl_entry(&t2, &se);
    const uint8_t *q = t2.snap[1].v[QHASH_SHA256];
    fr.n = 0;
    qima_verifier *v2 = newv(&o, &fr);
    round_v(v2, &st, q, 32, t2.text, t2.len, WHOLE, 0, &r);
    assert_false(r.passed);                      /* nothing imported yet */
    assert_int_equal(r.counts.fnf, 1);
    import_ok(v2, text);
    fr.n = 0;
    round_v(v2, &st, q, 32, t2.text, t2.len, WHOLE, 0, &r);
    assert_true(r.passed);
    assert_int_equal(r.counts.good, 1);
    assert_int_equal(fr.n, 0);

    /* Round trip: exporting the imported set gives the same text. */
    char *again = export_ok(v2);
    assert_string_equal(again, text);
    free(again);

    /* Bad input is refused and changes nothing. */
    char big[64 + QIMA_MAX_RING_NAME + 2];
    memset(big, 'x', sizeof big);
    big[0] = '{';
    big[1] = '"';
    snprintf(big + 2 + QIMA_MAX_RING_NAME + 1, sizeof big - (2 + QIMA_MAX_RING_NAME + 1), "\": {}}");
    const char *const bad[] = {
        "{", "[]", "5", "{\".ima\": 5}", "{\".ima\": []}", "{\".ima\": {\"pubkeys\": []}}",
        "{\".ima\": {\"pubkeys\": [\"!!!\"], \"keyids\": [1]}}",
        "{\".ima\": {\"pubkeys\": [], \"keyids\": []}, \".ima\": {\"pubkeys\": [], \"keyids\": []}}",
        "{\".ima\": \"not a keyring\"}", big,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        import_bad(v2, bad[i]);
    char many[2048];
    size_t ml = (size_t)snprintf(many, sizeof many, "{");
    for (int i = 0; i <= QIMA_MAX_LEARNED_RINGS; i++)
        ml += (size_t)snprintf(many + ml, sizeof many - ml, "%s\"r%d\": {\"pubkeys\": [], \"keyids\": []}",
                               i ? ", " : "", i);
    snprintf(many + ml, sizeof many - ml, "}");
    import_bad(v2, many);
    again = export_ok(v2);
    assert_string_equal(again, text);
    free(again);
    fr.n = 0;
    round_v(v2, &st, q, 32, t2.text, t2.len, WHOLE, 0, &r);
    assert_true(r.passed);

    /* Keylime's stored form (keyring JSON inside a JSON string) is accepted too. */
    cJSON *kl = cJSON_CreateObject();
    j = cJSON_Parse(text);
    char *inner = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, ".ima"));
    cJSON_AddStringToObject(kl, ".ima", inner);
    char *kltext = cJSON_PrintUnformatted(kl);
    qima_verifier *v3 = newv(&o, &fr);
    import_ok(v3, kltext);
    fr.n = 0;
    round_v(v3, &st, q, 32, t2.text, t2.len, WHOLE, 0, &r);
    assert_true(r.passed);
    /* Empty / null / "{}" → no learned keys: the entry is judged by the allowlist again. */
    const char *const empty[] = { "", "null", "{}", NULL };
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        import_ok(v3, text);
        import_ok(v3, empty[i]);
        fr.n = 0;
        round_v(v3, &st, q, 32, t2.text, t2.len, WHOLE, 0, &r);
        assert_false(r.passed);
        assert_int_equal(r.counts.fnf, 1);
    }
    qima_verifier_free(v3);
    free(kltext);
    free(inner);
    cJSON_Delete(j);
    cJSON_Delete(kl);

    /* The keyring exporter alone: keyids and keys survive qkeyring_to_json → from_json. */
    qkeyring *kr = qkeyring_new();
    assert_int_equal(qkeyring_add_key_once(kr, der, dl, 0, NULL), 1);
    assert_int_equal(qkeyring_add_key_once(kr, der, dl, 0, NULL), 0);
    EVP_PKEY *k2 = rsa_key();
    uint8_t der2[2048];
    size_t dl2 = pub_der(k2, der2, sizeof der2);
    qerr err = { 0 };
    assert_int_equal(qkeyring_add_key_once(kr, der2, dl2, 1, &err), -1);   /* full */
    assert_int_equal(qkeyring_count(kr), 1);
    char *kj = qkeyring_to_json(kr, NULL);
    assert_non_null(kj);
    qkeyring *kr2 = qkeyring_from_json(kj, strlen(kj), NULL);
    assert_non_null(kr2);
    assert_int_equal(qkeyring_count(kr2), 1);
    const qkeyring *rings[1] = { kr2 };
    uint8_t sigbin[600];
    long sl = qhex_decode(sig, strlen(sig), sigbin, sizeof sigbin);
    assert_true(sl > 0);
    assert_true(qkeyring_verify(rings, 1, sigbin, (size_t)sl, "sha256", d, 32));
    free(kj);
    qkeyring_free(kr);
    qkeyring_free(kr2);
    EVP_PKEY_free(k2);

    qima_verifier_free(v2);
    free(text);
    qpolicy_free(p);
    EVP_PKEY_free(k);
    tl_free(&t1);
    tl_free(&t2);
}

static void test_invalid_key(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    uint8_t der[256], kd[32];
    size_t dl = pub_der(k, der, sizeof der);
    char hex[2 * sizeof der + 1];
    qhex_encode(der, dl, hex);
    ref_hash("SHA256", der, dl, kd);
    tlog t;
    tl_init(&t);
    espec key = { .tmpl = "ima-buf", .path = ".ima", .dig = kd, .dlen = 32, .extra = hex };
    tl_entry(&t, &key);
    qima_opts o = base_opts;
    qima_result r;
    frecs fr = { .n = 0 };
    run(&o, NULL, t.snap[1].v[QHASH_SHA256], 32, t.text, t.len, WHOLE, 0, &r, &fr);
    assert_false(r.passed);
    assert_int_equal(r.counts.invalid_key, 1);
    assert_int_equal(fr.n, 1);
    assert_int_equal(fr.r[0].kind, QIMA_FAIL_INVALID_KEY);
    assert_non_null(strstr(fr.r[0].msg, "key from .ima does not have a supported key"));
    assert_string_equal(qima_fail_event_id(QIMA_FAIL_INVALID_KEY), "ima.invalid_key");
    EVP_PKEY_free(k);
    tl_free(&t);
}

/* A runtime policy JSON with log_hash_alg sha256 and an ignored keyring. */
static void test_json_policy(void **state)
{
    (void)state;
    tlog t;
    tl_init(&t);
    t.log_alg = "SHA256";
    uint8_t d[32];
    char hex[65];
    fdig("/usr/bin/a", d);
    qhex_encode(d, 32, hex);
    tl_ng(&t, "/usr/bin/a");
    tl_ngf(&t, "/var/v", F_VIOL);           /* 32 zero bytes: a violation for sha256 logs */
    uint8_t kd[32];
    char json[2048];
    snprintf(json, sizeof json,
             "{\"meta\": {\"version\": 1, \"generator\": 0}, \"release\": 0, "
             "\"digests\": {\"/usr/bin/a\": [\"%s\"]}, \"excludes\": [], \"keyrings\": {}, "
             "\"ima\": {\"ignored_keyrings\": [\".ignored\"], \"log_hash_alg\": \"sha256\", "
             "\"dm_policy\": null}, \"ima-buf\": {}, \"verification-keys\": \"\"}", hex);
    qerr err = { 0 };
    qpolicy *p = qpolicy_from_json(json, strlen(json), "json", &err);
    if (!p)
        fail_msg("policy: %s", err.msg);
    assert_int_equal(qpolicy_log_hash_alg(p), QHASH_SHA256);
    /* An ignored-keyring key entry: passes, not learned. */
    EVP_PKEY *k = rsa_key();
    uint8_t der[2048];
    size_t dl = pub_der(k, der, sizeof der);
    char derhex[2 * sizeof der + 1];
    qhex_encode(der, dl, derhex);
    ref_hash("SHA256", der, dl, kd);
    espec ik = { .tmpl = "ima-buf", .path = ".ignored", .dig = kd, .dlen = 32, .extra = derhex };
    tl_entry(&t, &ik);
    for (int b = 0; b < QHASH_COUNT; b++) {
        qima_opts o = base_opts;
        o.policy = p;
        o.bank = (qhash_alg)b;
        qima_result r;
        frecs fr = { .n = 0 };
        run(&o, NULL, t.snap[3].v[b], hsize[b], t.text, t.len, WHOLE, 0, &r, &fr);
        assert_true(r.passed);
        assert_true(r.pcr_matched);
        assert_int_equal(r.counts.violations, 1);
        assert_int_equal(r.counts.good, 2);
    }
    /* A sha1 template-hash column fails against a sha256 log policy. */
    tlog t1;
    tl_init(&t1);
    tl_ng(&t1, "/usr/bin/a");
    qima_opts o = base_opts;
    o.policy = p;
    qima_result r;
    frecs fr = { .n = 0 };
    run(&o, NULL, NULL, 0, t1.text, t1.len, WHOLE, 0, &r, &fr);
    assert_int_equal(r.counts.template_hash, 1);
    EVP_PKEY_free(k);
    qpolicy_free(p);
    tl_free(&t);
    tl_free(&t1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_list),
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_fnf_and_hash),
        cmocka_unit_test(test_template_hash),
        cmocka_unit_test(test_violations),
        cmocka_unit_test(test_excludes),
        cmocka_unit_test(test_match_prefix),
        cmocka_unit_test(test_pcr_mismatch),
        cmocka_unit_test(test_pieces_vs_whole),
        cmocka_unit_test(test_two_rounds),
        cmocka_unit_test(test_quote_progress),
        cmocka_unit_test(test_pcr_column),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_banks),
        cmocka_unit_test(test_null_policy),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_ima_sig),
        cmocka_unit_test(test_ima_buf_keys),
        cmocka_unit_test(test_learned_export_import),
        cmocka_unit_test(test_invalid_key),
        cmocka_unit_test(test_json_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
