/* ima_verify.h — the engine: replays IMA measurement-list lines against PCR 10 and judges every
 * entry against a policy (keylime-formats §1.3–1.4, §3, §4).
 *
 * Use: qima_verifier_new() once (allocates everything it will ever need), then per round
 * begin() → feed()* → finish(). feed() consumes only complete '\n'-terminated lines and returns
 * how many bytes it consumed; the caller keeps the rest and feeds it again with more data, so
 * feeding a list in any pieces gives the same result as feeding it whole. Across rounds, the
 * qima_state returned by finish() resumes the replay (next entry + running PCR).
 * A final line without '\n' is never consumed (append '\n' to have it judged). A line longer
 * than QIMA_MAX_LINE fails (ima.parser.entry) as soon as more than QIMA_MAX_LINE bytes without
 * '\n' have been offered: those bytes are consumed and the rest of the line is dropped up to
 * its '\n' (in this or later feed() calls), so the caller never buffers more than
 * QIMA_MAX_LINE + 1 bytes and feed() never stalls.
 *
 * Replay: running = H(running || extend) per non-empty line, extend = bank(template data), or
 * all-ones for a violation (all-zero logged template hash). The PCR is "found" if the running
 * value equals the quoted PCR before any line or after any line (first match wins); lines after
 * the match are still judged. No match → one ima.pcr_mismatch failure. Per entry: PCR column
 * must be "10" (ima_pcr); violations pass unless violations_fail (tomtou); template-hash check
 * with the policy's log_hash_alg (ima_hash; policy check skipped); then excludes (anchored) →
 * allowlist lookup (fnf: not_in_allowlist, hash: runtime_policy_hash); ima-sig signatures
 * checked against the policy keyring and learned keys; ima-buf keys learned into keyrings.
 * Unparsable lines fail (ima.parser.entry) and do not extend.
 * No allocation per entry. Not thread-safe per verifier object; use one per worker thread. */
#ifndef QUINCE_IMA_VERIFY_H
#define QUINCE_IMA_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "err.h"
#include "pcr_bank.h"
#include "policy.h"
#include "ima_sig.h"

typedef enum {
    QIMA_FAIL_PARSE = 0,        /* ima.parser.entry */
    QIMA_FAIL_PCR_COLUMN,       /* ima.validation.ima_pcr */
    QIMA_FAIL_VIOLATION,        /* ima.validation.tomtou (only with violations_fail) */
    QIMA_FAIL_TEMPLATE_HASH,    /* ima.validation.ima_hash */
    QIMA_FAIL_NOT_IN_ALLOWLIST, /* ima.validation.ima-ng.not_in_allowlist */
    QIMA_FAIL_HASH,             /* ima.validation.ima-ng.runtime_policy_hash */
    QIMA_FAIL_BAD_SIG,          /* ima.validator.ima-sig.invalid_signature */
    QIMA_FAIL_INVALID_KEY,      /* ima.invalid_key */
    QIMA_FAIL_PCR_MISMATCH,     /* ima.pcr_mismatch */
    QIMA_FAIL_QUOTE_PROGRESS,   /* ima.quote_progress */
    QIMA_FAIL_COUNT
} qima_fail_kind;

const char *qima_fail_event_id(qima_fail_kind k);

typedef struct qima_failure {
    qima_fail_kind kind;
    const char *event_id;       /* Keylime event id */
    uint64_t entry;             /* absolute 0-based entry index (state.next_entry + raw line index);
                                   UINT64_MAX for list-level failures (pcr_mismatch, quote_progress) */
    uint64_t line;              /* 1-based line number within this round's input; 0 for list-level */
    const char *path;           /* file name of the entry ("" if none); valid during the callback */
    size_t path_len;
    const char *message;        /* Keylime's message, e.g. "File not found in allowlist: /x"; valid
                                   during the callback only */
} qima_failure;

typedef void (*qima_failure_fn)(void *ctx, const qima_failure *f);

/* The running state carried between rounds. */
typedef struct qima_state {
    uint64_t next_entry;        /* index of the first line not yet covered by PCR 10 */
    qpcr pcr;                   /* running PCR value after next_entry lines */
    bool progress_set;          /* quote-progress memory (keylime-formats §4.3) */
    uint64_t prev_match, prev_lines;
    uint64_t good_total;        /* good entries among the first next_entry (the running "good"
                                   of the IMA ERRORS line; keep it with next_entry) */
} qima_state;

void qima_state_init(qima_state *s, qhash_alg bank);

typedef struct qima_counts {
    uint64_t lines;             /* non-empty lines seen */
    uint64_t good;              /* entries with no failure, not violations, not excluded */
    uint64_t template_hash, fnf, hash, bad_sig, violations, excluded, parse_errors, pcr_column,
             invalid_key;
    uint64_t per_template[4];   /* failing entries per template (ima, ima-ng, ima-sig, ima-buf) */
} qima_counts;

typedef struct qima_opts {
    const qpolicy *policy;          /* NULL → the empty policy (every file is "not found") */
    qhash_alg bank;                 /* the PCR bank replayed (the quote's hash_alg) */
    bool violations_fail;           /* ima_violations = fail */
    const qkeyring *agent_keyring;  /* optional ima_sign_verification_keys of the agent */
    qima_failure_fn on_failure;     /* optional; called for every failure */
    void *cb_ctx;
    bool log;                       /* emit Keylime's log lines via qlog (module "ima") */
} qima_opts;

typedef struct qima_result {
    bool passed;                /* no failure of any kind */
    bool pcr_checked;           /* a quoted PCR was given */
    bool pcr_matched;
    uint64_t match_line;        /* raw line count at the first match (0 = before any line) */
    uint64_t raw_lines;         /* raw lines fed this round (incl. empty ones) */
    uint64_t failures;          /* total failure events */
    qima_counts counts;
    qpcr final_pcr;             /* running value after all lines */
    bool pending;               /* a piece (qima_verifier_set_piece) that did not reach the quoted
                                   PCR: no mismatch, next is after all lines, fetch the rest */
    qima_state next;            /* state to keep: at the match point when a PCR was checked,
                                   else after all lines */
} qima_result;

typedef struct qima_verifier qima_verifier;

qima_verifier *qima_verifier_new(const qima_opts *o, qerr *err);
void qima_verifier_free(qima_verifier *v);
/* Start a round. start NULL → fresh state (entry 0, zero PCR). quoted_pcr NULL → no PCR check. */
int qima_verifier_begin(qima_verifier *v, const qima_state *start, const uint8_t *quoted_pcr,
                        size_t quoted_len, qerr *err);
/* Feed bytes; returns the number of bytes consumed (complete lines only), or -1. */
long qima_verifier_feed(qima_verifier *v, const char *data, size_t len);
/* Between begin() and finish(): this round's list is a piece and more entries follow it (the
 * agent said "ima_measurement_list_more"). Then a replay that does not reach the quoted PCR is not
 * ima.pcr_mismatch: finish() sets res->pending, and res->next is the state after all the piece's
 * lines (quote-progress memory unchanged), from which the next round continues. Every line is
 * still judged; a match inside the piece is handled as usual. */
int qima_verifier_set_piece(qima_verifier *v, bool more);
/* End the round: PCR check, quote-progress (when start state was given), summary log line
 * "IMA ERRORS: template-hash <n> fnf <n> hash <n> good <n>" when any entry failed. */
int qima_verifier_finish(qima_verifier *v, qima_result *res);
/* Name the agent in every log line of the following rounds ("agent <id>: ..."); NULL or ""
 * for none. A shared engine is named again before each agent's round. */
#define QIMA_AGENT_MAX 255
void qima_verifier_set_agent(qima_verifier *v, const char *agent_id);
/* Learned keyrings (from ima-buf key entries) are kept across rounds until reset. */
void qima_verifier_reset_learned(qima_verifier *v);

/* Learned keyrings as JSON text, to carry them between rounds of one agent when the engine is
 * shared: {"<keyring name>": {"pubkeys": [base64 DER SPKI, ...], "keyids": [u32, ...]}, ...}
 * (each value is keyring JSON, ima_sig.h). Bounds: at most QIMA_MAX_LEARNED_RINGS keyrings of
 * at most QIMA_MAX_LEARNED_KEYS keys each, names of at most QIMA_MAX_RING_NAME bytes, text of
 * at most QIMA_MAX_LEARNED_JSON bytes. Per round, never per entry. */
#define QIMA_MAX_LEARNED_RINGS 16
#define QIMA_MAX_LEARNED_KEYS  64
#define QIMA_MAX_RING_NAME     255
#define QIMA_MAX_LEARNED_JSON  (4u * 1024 * 1024)
/* Malloc'd JSON text ("{}" when nothing was learned), free(); NULL with err on failure. */
char *qima_verifier_export_learned(const qima_verifier *v, qerr *err);
/* Replace the learned keyrings with those of text (NULL, empty or "null" → none; a value may
 * also be keyring JSON inside a JSON string, as Keylime stores it). Invalid JSON, a bad keyring,
 * a name too long, a name given twice or a bound exceeded → -1 with err and nothing changed;
 * 0 on success. Not during a round (between finish() and begin()). */
int qima_verifier_import_learned(qima_verifier *v, const char *text, size_t len, qerr *err);

#endif
