/* ima_verify.c — the IMA engine (see ima_verify.h; keylime-formats §1.3–1.4, §3, §4.3).
 * Everything the hot path needs (line scratch, template-data buffer, the exclude match data,
 * the failure-message buffer, the learned-keyring slots) is allocated in qima_verifier_new();
 * feeding lines allocates nothing, digests included (hash_direct.h: OpenSSL 3.0's EVP would
 * allocate a provider context per digest). The only later allocations are rare: learning an
 * ima-buf key (bounded by QIMA_MAX_LEARNED_*), and the per-round export/import of the keyrings.
 *
 * Feeding: only complete '\n'-terminated lines are consumed. A line longer than QIMA_MAX_LINE
 * is a parse failure as soon as more than QIMA_MAX_LINE bytes without '\n' have been offered;
 * those bytes are consumed and the rest of that line is discarded up to its '\n' (also across
 * later feed() calls), so a caller that only ever feeds what it has never stalls and never
 * needs to buffer more than QIMA_MAX_LINE + 1 bytes. */
#include "ima_verify.h"
#include "ima_entry.h"
#include "excludes.h"
#include "hash_direct.h"
#include "hex.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QIMA_MSG_SIZE          (QIMA_MAX_NAME + 12288)  /* one failure message */

static const char *const event_ids[QIMA_FAIL_COUNT] = {
    [QIMA_FAIL_PARSE] = "ima.parser.entry",
    [QIMA_FAIL_PCR_COLUMN] = "ima.validation.ima_pcr",
    [QIMA_FAIL_VIOLATION] = "ima.validation.tomtou",
    [QIMA_FAIL_TEMPLATE_HASH] = "ima.validation.ima_hash",
    [QIMA_FAIL_NOT_IN_ALLOWLIST] = "ima.validation.ima-ng.not_in_allowlist",
    [QIMA_FAIL_HASH] = "ima.validation.ima-ng.runtime_policy_hash",
    [QIMA_FAIL_BAD_SIG] = "ima.validator.ima-sig.invalid_signature",
    [QIMA_FAIL_INVALID_KEY] = "ima.invalid_key",
    [QIMA_FAIL_PCR_MISMATCH] = "ima.pcr_mismatch",
    [QIMA_FAIL_QUOTE_PROGRESS] = "ima.quote_progress",
};

const char *qima_fail_event_id(qima_fail_kind k)
{
    if ((int)k < 0 || k >= QIMA_FAIL_COUNT)
        return "ima.unknown";
    return event_ids[k];
}

void qima_state_init(qima_state *s, qhash_alg bank)
{
    memset(s, 0, sizeof *s);
    qpcr_init(&s->pcr, bank);
}

/* A path whose index slot was prefetched, with its hash (qpolicy_prefetch). */
typedef struct path_hint {
    const char *name;               /* into the data of the current feed() call; NULL = none */
    size_t len;
    uint64_t hash;
} path_hint;

typedef struct learned_ring {
    char name[QIMA_MAX_RING_NAME + 1];
    size_t name_len;
    qkeyring *ring;                                 /* NULL while the slot is unused */
} learned_ring;

/* "agent <id>: " before a message when the verifier names its agent. */
#define AGENT_PFX(v) (v)->agent[0] ? "agent " : "", (v)->agent, (v)->agent[0] ? ": " : ""

struct qima_verifier {
    qima_opts o;
    const qpolicy *policy;
    qpolicy *own_policy;            /* the empty policy when opts.policy was NULL */
    const qexcludes *excl;
    qhash_alg log_alg;
    uint8_t *scratch;               /* QIMA_SCRATCH_SIZE: decoded sig/buf bytes */
    uint8_t *tdata;                 /* QIMA_SCRATCH_SIZE: rebuilt template data */
    char *msg;                      /* QIMA_MSG_SIZE */
    qexcludes_md *xmd;
    learned_ring learned[QIMA_MAX_LEARNED_RINGS];
    size_t nlearned;

    /* the round */
    bool active, internal_error, skipping, have_start, check_pcr, matched;
    bool piece;                 /* this round's list is a piece: more entries follow it */
    qima_state start;
    uint8_t quoted[QHASH_MAX_SIZE];
    size_t quoted_len;
    qpcr running, match_pcr;
    uint64_t match_line, raw, failures;
    uint64_t good_at_match;         /* counts.good over lines 1..match_line */
    qima_counts counts;
    char agent[QIMA_AGENT_MAX + 1]; /* named in every log line ("" = none) */
    const qima_digest *extra_agg;   /* this round's extra boot_aggregate values (not owned) */
    size_t nextra_agg;
    path_hint hint_cur, hint_next;  /* the line being judged, the line after it */
};

qima_verifier *qima_verifier_new(const qima_opts *o, qerr *err)
{
    if (!o) {
        qerr_set(err, "qima_verifier_new: no options");
        return NULL;
    }
    if (!qhash_md(o->bank)) {
        qerr_set(err, "unsupported PCR bank algorithm");
        return NULL;
    }
    qima_verifier *v = calloc(1, sizeof *v);
    if (!v) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    v->o = *o;
    v->policy = o->policy;
    if (!v->policy) {
        v->own_policy = qpolicy_empty(err);
        if (!v->own_policy)
            goto fail;
        v->policy = v->own_policy;
    }
    v->excl = qpolicy_excludes(v->policy);
    v->log_alg = qpolicy_log_hash_alg(v->policy);
    if (!qhash_md(v->log_alg))
        v->log_alg = QHASH_SHA1;
    v->scratch = malloc(QIMA_SCRATCH_SIZE);
    v->tdata = malloc(QIMA_SCRATCH_SIZE);
    v->msg = malloc(QIMA_MSG_SIZE);
    v->xmd = qexcludes_md_new();
    if (!v->scratch || !v->tdata || !v->msg || !v->xmd) {
        qerr_set(err, "out of memory");
        goto fail;
    }
    if (!qhash_md(o->bank) || !qhash_md(v->log_alg)) {
        qerr_set(err, "hash algorithm unavailable in OpenSSL");
        goto fail;
    }
    return v;
fail:
    qima_verifier_free(v);
    return NULL;
}

void qima_verifier_reset_learned(qima_verifier *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->nlearned; i++) {
        qkeyring_free(v->learned[i].ring);
        v->learned[i].ring = NULL;
        v->learned[i].name_len = 0;
    }
    v->nlearned = 0;
}

void qima_verifier_free(qima_verifier *v)
{
    if (!v)
        return;
    qima_verifier_reset_learned(v);
    qpolicy_free(v->own_policy);
    free(v->scratch);
    free(v->tdata);
    free(v->msg);
    qexcludes_md_free(v->xmd);
    free(v);
}

int qima_verifier_begin(qima_verifier *v, const qima_state *start, const uint8_t *quoted_pcr,
                        size_t quoted_len, qerr *err)
{
    if (!v)
        return qerr_set(err, "qima_verifier_begin: no verifier");
    size_t bsz = qhash_size(v->o.bank);
    if (start && start->pcr.alg != v->o.bank)
        return qerr_set(err, "IMA state is for bank %s, the round replays %s",
                        qhash_name(start->pcr.alg), qhash_name(v->o.bank));
    if (quoted_pcr && quoted_len != bsz)
        return qerr_set(err, "quoted PCR has %zu bytes, bank %s needs %zu", quoted_len,
                        qhash_name(v->o.bank), bsz);
    v->have_start = start != NULL;
    if (start)
        v->start = *start;
    else
        qima_state_init(&v->start, v->o.bank);
    v->running = v->start.pcr;
    v->check_pcr = quoted_pcr != NULL;
    v->quoted_len = quoted_pcr ? quoted_len : 0;
    if (quoted_pcr)
        memcpy(v->quoted, quoted_pcr, quoted_len);
    v->matched = false;
    v->piece = false;
    v->match_line = 0;
    v->good_at_match = 0;
    v->raw = v->failures = 0;
    memset(&v->counts, 0, sizeof v->counts);
    v->skipping = v->internal_error = false;
    v->extra_agg = NULL;
    v->nextra_agg = 0;
    /* The empty prefix counts: "no new entries" or a quote lagging the log. */
    if (v->check_pcr && qpcr_equals(&v->running, v->quoted, v->quoted_len)) {
        v->matched = true;
        v->match_pcr = v->running;
    }
    v->active = true;
    return 0;
}

/* Deliver one formatted failure: to the callback (with its entry numbers) and to the log.
 * raw_idx is the 0-based raw line index, or UINT64_MAX for list-level failures. */
static void report(qima_verifier *v, qima_fail_kind k, uint64_t raw_idx, const char *path,
                   size_t path_len, qlog_level lvl, const char *msg)
{
    if (v->o.on_failure) {
        qima_failure f = {
            .kind = k,
            .event_id = event_ids[k],
            .entry = raw_idx == UINT64_MAX ? UINT64_MAX : v->start.next_entry + raw_idx,
            .line = raw_idx == UINT64_MAX ? 0 : raw_idx + 1,
            .path = path ? path : "",
            .path_len = path ? path_len : 0,
            .message = msg,
        };
        v->o.on_failure(v->o.cb_ctx, &f);
    }
    if (v->o.log && v->agent[0])
        qlog(lvl, "ima", "agent %s: %s", v->agent, msg);
    else if (v->o.log)
        qlog(lvl, "ima", "%s", msg);
}

void qima_verifier_set_agent(qima_verifier *v, const char *agent_id)
{
    if (v)
        snprintf(v->agent, sizeof v->agent, "%s", agent_id ? agent_id : "");
}

__attribute__((format(printf, 7, 8)))
static void fail(qima_verifier *v, qima_fail_kind k, uint64_t raw_idx, const char *path,
                 size_t path_len, qlog_level lvl, const char *fmt, ...)
{
    v->failures++;
    if (!v->o.on_failure && !v->o.log)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->msg, QIMA_MSG_SIZE, fmt, ap);
    va_end(ap);
    report(v, k, raw_idx, path, path_len, lvl, v->msg);
}

static int name_int(size_t n)
{
    return n > (size_t)QIMA_MAX_NAME ? QIMA_MAX_NAME : (int)n;
}

static bool is_excluded(qima_verifier *v, const qima_entry *e)
{
    if (!v->excl)
        return false;
    int rc = qexcludes_match_rc(v->excl, v->xmd, e->name, e->name_len);
    if (rc < 0 && v->o.log)     /* fail closed: judged by the policy, and say why */
        qlog(QLOG_WARNING, "ima", "exclude patterns could not be matched against %.*s (PCRE2 match limit "
             "reached); the entry is judged by the policy as if not excluded", name_int(e->name_len), e->name);
    return rc == 1;
}

/* Is e the boot_aggregate entry with one of this round's extra values? */
static bool is_boot_aggregate(const qima_verifier *v, const qima_entry *e)
{
    static const char name[] = "boot_aggregate";
    if (e->name_len != sizeof name - 1 || memcmp(e->name, name, sizeof name - 1) != 0)
        return false;
    for (size_t i = 0; i < v->nextra_agg; i++)
        if (v->extra_agg[i].len == e->digest_len && memcmp(v->extra_agg[i].bytes, e->digest, e->digest_len) == 0)
            return true;
    return false;
}

void qima_verifier_allow_boot_aggregates(qima_verifier *v, const qima_digest *d, size_t n)
{
    if (!v)
        return;
    v->extra_agg = n ? d : NULL;
    v->nextra_agg = d ? n : 0;
}

/* Keylime's ima-ng procedure against one table. Returns the number of failures (0 or 1). */
static int check_table(qima_verifier *v, const qima_entry *e, qpol_table t, uint64_t idx,
                       bool *excluded, qpol_result *res)
{
    *res = QPOL_NOT_FOUND;
    if (is_excluded(v, e)) {
        *excluded = true;
        return 0;
    }
    if (t == QPOL_DIGESTS && v->hint_cur.name == e->name && v->hint_cur.len == e->name_len)
        *res = qpolicy_lookup_hashed(v->policy, t, e->name, e->name_len, v->hint_cur.hash, e->digest,
                                     e->digest_len);
    else
        *res = qpolicy_lookup(v->policy, t, e->name, e->name_len, e->digest, e->digest_len);
    if (*res != QPOL_MATCH && t == QPOL_DIGESTS && v->nextra_agg && is_boot_aggregate(v, e)) {
        *res = QPOL_MATCH;
        return 0;
    }
    if (*res == QPOL_NOT_FOUND) {
        v->counts.fnf++;
        fail(v, QIMA_FAIL_NOT_IN_ALLOWLIST, idx, e->name, e->name_len, QLOG_WARNING,
             "File not found in allowlist: %.*s", name_int(e->name_len), e->name);
        return 1;
    }
    if (*res == QPOL_HASH_MISMATCH) {
        v->counts.hash++;
        v->failures++;
        if (v->o.on_failure || v->o.log) {
            char hex[2 * QIMA_MAX_DIGEST + 1];
            qhex_encode(e->digest, e->digest_len, hex);
            int n = snprintf(v->msg, QIMA_MSG_SIZE, "Hashes for file %.*s don't match %s not in ",
                             name_int(e->name_len), e->name, hex);
            if (n > 0 && (size_t)n < QIMA_MSG_SIZE)
                qpolicy_expected_repr(v->policy, t, e->name, e->name_len, v->msg + n,
                                      QIMA_MSG_SIZE - (size_t)n);
            report(v, QIMA_FAIL_HASH, idx, e->name, e->name_len, QLOG_WARNING, v->msg);
        }
        return 1;
    }
    return 0;
}

/* Learn a key from an accepted ima-buf entry into the learned keyring named like the entry.
 * A key already held is not added again (lines after a match are judged again next round). */
static void learn_key(qima_verifier *v, const qima_entry *e)
{
    if (e->name_len > QIMA_MAX_RING_NAME)
        return;
    learned_ring *r = NULL;
    for (size_t i = 0; i < v->nlearned; i++) {
        if (v->learned[i].name_len == e->name_len &&
            memcmp(v->learned[i].name, e->name, e->name_len) == 0) {
            r = &v->learned[i];
            break;
        }
    }
    bool fresh = false;
    if (!r) {
        if (v->nlearned >= QIMA_MAX_LEARNED_RINGS) {
            if (v->o.log)
                qlog(QLOG_WARNING, "ima", "%s%s%skey from %.*s not learned: too many learned keyrings", AGENT_PFX(v),
                     name_int(e->name_len), e->name);
            return;
        }
        r = &v->learned[v->nlearned];
        r->ring = qkeyring_new();
        if (!r->ring)
            return;
        memcpy(r->name, e->name, e->name_len);
        r->name[e->name_len] = '\0';
        r->name_len = e->name_len;
        fresh = true;
    }
    qerr kerr;
    if (qkeyring_add_key_once(r->ring, e->buf, e->buf_len, QIMA_MAX_LEARNED_KEYS, &kerr) < 0) {
        if (v->o.log)
            qlog(QLOG_WARNING, "ima", "%s%s%skey from %.*s could not be learned: %s", AGENT_PFX(v),
                 name_int(e->name_len), e->name, kerr.msg);
        if (fresh) {
            qkeyring_free(r->ring);
            r->ring = NULL;
            r->name_len = 0;
        }
        return;
    }
    if (fresh)
        v->nlearned++;
}

/* ima-sig: a well-formed signature that verifies with a known key (or an excluded path) passes;
 * otherwise the ima-ng procedure decides. */
static int check_sig(qima_verifier *v, const qima_entry *e, uint64_t idx, bool *excluded)
{
    qpol_result r;
    if (e->sig_len > 0) {
        if (is_excluded(v, e)) {
            *excluded = true;
            return 0;
        }
        const qkeyring *rings[2 + QIMA_MAX_LEARNED_RINGS];
        size_t n = 0;
        rings[n++] = qpolicy_keyring(v->policy);
        rings[n++] = v->o.agent_keyring;
        for (size_t i = 0; i < v->nlearned; i++)
            rings[n++] = v->learned[i].ring;
        if (qkeyring_verify(rings, n, e->sig, e->sig_len, e->digest_alg, e->digest, e->digest_len)) {
            if (v->o.log)
                qlog(QLOG_DEBUG, "ima", "%s%s%ssignature for file %.*s is good", AGENT_PFX(v), name_int(e->name_len),
                     e->name);
            return 0;
        }
    }
    return check_table(v, e, QPOL_DIGESTS, idx, excluded, &r);
}

/* ima-buf: keys go through ignored_keyrings / the keyrings table and are learned; other
 * buffers through the ima-buf table. */
static int check_buf(qima_verifier *v, const qima_entry *e, uint64_t idx, bool *excluded)
{
    qpol_result r;
    bool supported = true;
    if (qkeyring_is_key(e->buf, e->buf_len, &supported)) {
        if (qpolicy_keyring_ignored(v->policy, e->name, e->name_len))
            return 0;
        /* Only a key listed in the keyrings table is learned; one that passes because its name
         * is excluded is not (fail-safe: Keylime would learn it too). */
        int f = check_table(v, e, QPOL_KEYRINGS, idx, excluded, &r);
        if (f == 0 && r == QPOL_MATCH)
            learn_key(v, e);
        return f;
    }
    if (!supported) {
        v->counts.invalid_key++;
        fail(v, QIMA_FAIL_INVALID_KEY, idx, e->name, e->name_len, QLOG_WARNING,
             "key from %.*s does not have a supported key: unsupported key type",
             name_int(e->name_len), e->name);
        return 1;
    }
    return check_table(v, e, QPOL_IMABUF, idx, excluded, &r);
}

static void internal_error(qima_verifier *v)
{
    v->internal_error = true;
    if (v->o.log)
        qlog(QLOG_ERROR, "ima", "%s%s%sinternal error: hash computation failed", AGENT_PFX(v));
}

/* One complete line (without '\n'); idx is its raw 0-based index in this round. */
static void process_line(qima_verifier *v, const char *line, size_t len, uint64_t idx)
{
    if (len == 0)
        return;   /* empty lines only advance the raw index */
    v->counts.lines++;
    qima_entry e;
    qerr perr;
    long tlen = -1;
    if (qima_parse_line(line, len, &e, v->scratch, &perr) == 0) {
        tlen = qima_template_data(&e, v->tdata, QIMA_SCRATCH_SIZE);
        if (tlen < 0)
            qerr_set(&perr, "template data too large");
    }
    if (tlen < 0) {
        v->counts.parse_errors++;
        fail(v, QIMA_FAIL_PARSE, idx, NULL, 0, QLOG_WARNING,
             "Line was not parsable into a valid IMA entry: %s", perr.msg);
        return;
    }

    /* Replay: extend = bank(template data), or all-ones for a violation. */
    qhash_alg bank = v->o.bank;
    bool viol = qima_is_violation(&e) && e.template_hash_len == qhash_size(v->log_alg);
    uint8_t bank_d[QHASH_MAX_SIZE];
    size_t bsz = qhash_size(bank);
    if (viol)
        memset(bank_d, 0xff, bsz);
    if ((!viol && qhash_direct(bank, v->tdata, (size_t)tlen, NULL, 0, bank_d) < 0) ||
        qhash_direct(bank, v->running.value, bsz, bank_d, bsz, v->running.value) < 0) {
        internal_error(v);
        return;
    }
    if (v->check_pcr && !v->matched && qpcr_equals(&v->running, v->quoted, v->quoted_len)) {
        v->matched = true;
        v->match_line = idx + 1;
        v->match_pcr = v->running;
    }

    /* Judge the entry. */
    int nf = 0;
    bool excluded = false;
    if (e.pcr_len != 2 || e.pcr[0] != '1' || e.pcr[1] != '0') {
        v->counts.pcr_column++;
        fail(v, QIMA_FAIL_PCR_COLUMN, idx, e.name, e.name_len, QLOG_WARNING,
             "IMA entry PCR does not match 10. It was: %.*s",
             (int)(e.pcr_len > 64 ? 64 : e.pcr_len), e.pcr);
        nf++;
    }
    if (viol) {
        v->counts.violations++;
        if (v->o.violations_fail) {
            fail(v, QIMA_FAIL_VIOLATION, idx, e.name, e.name_len, QLOG_WARNING,
                 "IMA violation (ToMToU) entry for file %.*s", name_int(e.name_len), e.name);
            nf++;
        }
    } else {
        uint8_t log_d[QHASH_MAX_SIZE];
        const uint8_t *ld = bank_d;
        size_t lsz = qhash_size(v->log_alg);
        if (v->log_alg != bank) {
            if (qhash_direct(v->log_alg, v->tdata, (size_t)tlen, NULL, 0, log_d) < 0) {
                internal_error(v);
                return;
            }
            ld = log_d;
        }
        if (e.template_hash_len != lsz || memcmp(e.template_hash, ld, lsz) != 0) {
            v->counts.template_hash++;
            fail(v, QIMA_FAIL_TEMPLATE_HASH, idx, e.name, e.name_len, QLOG_WARNING,
                 "IMA template hash does not match the calculated hash.");
            nf++;
        } else {
            qpol_result r;
            switch (e.tmpl) {
            case QIMA_TMPL_SIG: nf += check_sig(v, &e, idx, &excluded); break;
            case QIMA_TMPL_BUF: nf += check_buf(v, &e, idx, &excluded); break;
            default: nf += check_table(v, &e, QPOL_DIGESTS, idx, &excluded, &r); break;
            }
        }
    }
    if (excluded)
        v->counts.excluded++;
    if (nf > 0)
        v->counts.per_template[e.tmpl]++;
    else if (!viol && !excluded)
        v->counts.good++;
    if (v->matched && v->match_line == idx + 1)
        v->good_at_match = v->counts.good;
}

/* The policy lookup is the engine's one cache miss per entry (a table of 100,000 paths does
 * not fit in cache): before working on a line, start loading the index slot of the next
 * line's path (the fifth field of an ima-ng line) and keep its hash for that line's lookup.
 * Only a hint; a guess that is wrong for other templates costs one useless prefetch.
 * s[0..avail) is what follows the current line; returns the '\n' that ends the next line within
 * QIMA_MAX_LINE + 1 bytes (what feed() would search for next), or NULL. */
static const char *prefetch_next(qima_verifier *v, const char *s, size_t avail)
{
    v->hint_next.name = NULL;
    const char *nl = memchr(s, '\n', avail < (size_t)QIMA_MAX_LINE + 1 ? avail : (size_t)QIMA_MAX_LINE + 1);
    if (!nl)
        return NULL;
    const char *p = s;
    for (int k = 0; k < 4; k++) {
        const char *sp = memchr(p, ' ', (size_t)(nl - p));
        if (!sp)
            return nl;
        p = sp + 1;
    }
    v->hint_next.name = p;
    v->hint_next.len = (size_t)(nl - p);
    v->hint_next.hash = qpolicy_prefetch(v->policy, QPOL_DIGESTS, p, (size_t)(nl - p));
    return nl;
}

long qima_verifier_feed(qima_verifier *v, const char *data, size_t len)
{
    if (!v || !v->active || (!data && len > 0))
        return -1;
    size_t off = 0;
    const char *known_nl = NULL;   /* the '\n' ending the line at off, found by prefetch_next */
    /* Hints point into data: none carries over from an earlier call. */
    v->hint_cur.name = v->hint_next.name = NULL;
    while (off < len) {
        const char *s = data + off;
        size_t avail = len - off;
        if (v->skipping) {
            const char *nl = memchr(s, '\n', avail);
            if (!nl) {
                off = len;
                break;
            }
            off += (size_t)(nl - s) + 1;
            v->skipping = false;
            continue;
        }
        size_t lim = avail < (size_t)QIMA_MAX_LINE + 1 ? avail : (size_t)QIMA_MAX_LINE + 1;
        const char *nl = known_nl ? known_nl : memchr(s, '\n', lim);
        known_nl = NULL;
        if (nl) {
            v->hint_cur = v->hint_next;
            known_nl = prefetch_next(v, nl + 1, (size_t)(data + len - (nl + 1)));
            process_line(v, s, (size_t)(nl - s), v->raw++);
            off += (size_t)(nl - s) + 1;
            continue;
        }
        if (avail <= QIMA_MAX_LINE)
            break;   /* incomplete line: the caller feeds it again with more data */
        /* Overlong line: fail it now, drop the rest of it up to its '\n'. */
        uint64_t idx = v->raw++;
        v->counts.lines++;
        v->counts.parse_errors++;
        fail(v, QIMA_FAIL_PARSE, idx, NULL, 0, QLOG_WARNING,
             "Line was not parsable into a valid IMA entry: line longer than %d bytes", QIMA_MAX_LINE);
        v->skipping = true;
        off += lim;
    }
    v->hint_cur.name = v->hint_next.name = NULL;
    if (v->internal_error)
        return -1;
    return (long)off;
}

int qima_verifier_set_piece(qima_verifier *v, bool more)
{
    if (!v || !v->active)
        return -1;
    v->piece = more;
    return 0;
}

int qima_verifier_finish(qima_verifier *v, qima_result *res)
{
    if (!v || !res || !v->active)
        return -1;
    v->active = false;
    if (v->internal_error)
        return -1;
    memset(res, 0, sizeof *res);

    /* A piece that has not reached the quoted value yet is not a mismatch: the rest follows. */
    bool pending = v->check_pcr && !v->matched && v->piece && v->raw > 0;   /* an empty piece is no progress */
    if (v->check_pcr && !v->matched && !pending) {
        char hex[2 * QHASH_MAX_SIZE + 1];
        qhex_encode(v->quoted, v->quoted_len, hex);
        fail(v, QIMA_FAIL_PCR_MISMATCH, UINT64_MAX, NULL, 0, QLOG_ERROR,
             "IMA measurement list does not match TPM PCR %s", hex);
    }

    qima_state next = v->start;
    if (!v->check_pcr || pending) {
        next.next_entry = v->start.next_entry + v->raw;
        next.pcr = v->running;
        next.good_total = v->start.good_total + v->counts.good;
    } else if (v->matched) {
        next.next_entry = v->start.next_entry + v->match_line;
        next.pcr = v->match_pcr;
        /* Lines past the match are fed again next round: only those up to it are counted. */
        next.good_total = v->start.good_total + v->good_at_match;
        /* Quote progress (§4.3): fail when the previous round lagged and this one still does
         * not reach past that lag. */
        int64_t m = (int64_t)v->match_line, n = (int64_t)v->counts.lines;
        if (v->have_start && v->start.progress_set) {
            int64_t lag = (int64_t)v->start.prev_lines - (int64_t)v->start.prev_match;
            if (lag > 0 && m < lag && m != n)
                fail(v, QIMA_FAIL_QUOTE_PROGRESS, UINT64_MAX, NULL, 0, QLOG_ERROR,
                     "PCR quote did not make progress to catch up with the log");
        }
        next.progress_set = true;
        next.prev_match = (uint64_t)m;
        next.prev_lines = (uint64_t)n;
    }

    /* "good" is the running total since the replay began (entry 0), as Keylime counts it. */
    const qima_counts *c = &v->counts;
    uint64_t good = v->start.good_total + c->good;
    if (v->o.log && (c->template_hash + c->fnf + c->hash + c->bad_sig > 0 || v->failures > 0)) {
        if (v->agent[0])
            qlog(QLOG_ERROR, "ima", "agent %s: IMA ERRORS: template-hash %" PRIu64 " fnf %" PRIu64 " hash %" PRIu64
                 " good %" PRIu64, v->agent, c->template_hash, c->fnf, c->hash, good);
        else
            qlog(QLOG_ERROR, "ima", "IMA ERRORS: template-hash %" PRIu64 " fnf %" PRIu64 " hash %" PRIu64
                 " good %" PRIu64, c->template_hash, c->fnf, c->hash, good);
    }

    res->passed = v->failures == 0;
    res->pcr_checked = v->check_pcr;
    res->pcr_matched = v->matched;
    res->pending = pending;
    res->match_line = v->match_line;
    res->raw_lines = v->raw;
    res->failures = v->failures;
    res->counts = v->counts;
    res->final_pcr = v->running;
    res->next = next;
    return 0;
}

/* ---- learned keyrings across rounds ---- */

char *qima_verifier_export_learned(const qima_verifier *v, qerr *err)
{
    if (!v) {
        qerr_set(err, "qima_verifier_export_learned: no verifier");
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    char *text = NULL;
    if (!root)
        goto oom;
    for (size_t i = 0; i < v->nlearned; i++) {
        char *ring = qkeyring_to_json(v->learned[i].ring, err);
        if (!ring)
            goto out;
        /* The keyring text is JSON already: embed it as it is. */
        cJSON *raw = cJSON_CreateRaw(ring);
        free(ring);
        if (!raw || !cJSON_AddItemToObject(root, v->learned[i].name, raw)) {
            cJSON_Delete(raw);
            goto oom;
        }
    }
    text = cJSON_PrintUnformatted(root);
    if (text)
        goto out;
oom:
    qerr_set(err, "out of memory");
out:
    cJSON_Delete(root);
    return text;
}

int qima_verifier_import_learned(qima_verifier *v, const char *text, size_t len, qerr *err)
{
    if (!v)
        return qerr_set(err, "qima_verifier_import_learned: no verifier");
    if (v->active)
        return qerr_set(err, "learned keyrings cannot be imported during a round");
    size_t i = 0;
    while (text && i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    if (!text || i == len) {
        qima_verifier_reset_learned(v);
        return 0;
    }
    if (len > QIMA_MAX_LEARNED_JSON)
        return qerr_set(err, "learned keyrings: JSON larger than %u bytes", QIMA_MAX_LEARNED_JSON);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root)
        return qerr_set(err, "learned keyrings: not valid JSON");
    if (cJSON_IsNull(root)) {
        cJSON_Delete(root);
        qima_verifier_reset_learned(v);
        return 0;
    }
    qkeyring *rings[QIMA_MAX_LEARNED_RINGS] = { 0 };
    const char *names[QIMA_MAX_LEARNED_RINGS];
    size_t n = 0;
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        qerr_set(err, "learned keyrings: not a JSON object");
        goto out;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (n >= QIMA_MAX_LEARNED_RINGS) {
            qerr_set(err, "learned keyrings: more than %d keyrings", QIMA_MAX_LEARNED_RINGS);
            goto out;
        }
        if (strlen(name) > QIMA_MAX_RING_NAME) {
            qerr_set(err, "learned keyrings: a keyring name is longer than %d bytes", QIMA_MAX_RING_NAME);
            goto out;
        }
        for (size_t j = 0; j < n; j++) {
            if (strcmp(names[j], name) == 0) {
                qerr_set(err, "learned keyrings: keyring %s given twice", name);
                goto out;
            }
        }
        char *own = NULL;
        const char *ktext;
        if (cJSON_IsString(it)) {
            ktext = it->valuestring;
        } else if (cJSON_IsObject(it)) {
            own = cJSON_PrintUnformatted(it);
            if (!own) {
                qerr_set(err, "out of memory");
                goto out;
            }
            ktext = own;
        } else {
            qerr_set(err, "learned keyrings: keyring %s is not a keyring object", name);
            goto out;
        }
        rings[n] = qkeyring_from_json(ktext, strlen(ktext), err);
        free(own);
        if (!rings[n]) {
            qerr_prefix(err, "learned keyrings: keyring %s", name);
            goto out;
        }
        names[n++] = name;
        if (qkeyring_count(rings[n - 1]) > QIMA_MAX_LEARNED_KEYS) {
            qerr_set(err, "learned keyrings: keyring %s has more than %d keys", name, QIMA_MAX_LEARNED_KEYS);
            goto out;
        }
    }
    /* All valid: replace the learned set. */
    qima_verifier_reset_learned(v);
    for (size_t j = 0; j < n; j++) {
        learned_ring *r = &v->learned[j];
        r->name_len = strlen(names[j]);
        memcpy(r->name, names[j], r->name_len + 1);
        r->ring = rings[j];
        rings[j] = NULL;
    }
    v->nlearned = n;
    rc = 0;
out:
    for (size_t j = 0; j < n; j++)
        qkeyring_free(rings[j]);
    cJSON_Delete(root);
    return rc;
}
