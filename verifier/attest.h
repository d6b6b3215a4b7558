/* attest.h — the checks of one attestation round (keylime-formats §3, §4; agent-protocol §4.2,
 * §5). Pure: no network, no store, no threads of its own; the poller's workers call it with the
 * agent's answer and save what it returns.
 *
 * Contract — vattest_round, in order:
 *  1. results: `quote`, `hash_alg`, `enc_alg`, `sign_alg` strings; `pubkey` and
 *     `ima_measurement_list` strings when present; `ima_measurement_list_entry` and `boottime`
 *     JSON integers (>= 0) when present. Otherwise qoute_validation.invalid_data (state FAILED
 *     when the answer is not a JSON object or one of the integers is not an integer, as Keylime's
 *     exception path; INVALID_QUOTE for a missing or mistyped field).
 *  2. hash_alg / enc_alg / sign_alg in the agent's accept_tpm_*_algs ("rsa" == "rsa2048",
 *     "ecc" == "ecc256"; NULL lists → the tenant defaults) → invalid_hash_alg / invalid_enc_alg /
 *     invalid_sign_alg.
 *  3. qquote_check with the AK (loaded once per agent into vattest_mem) and the nonce's ASCII
 *     bytes → qoute_validation.quote_validation with the check's message.
 *  4. qclock_check against the stored clock info ({0,0,0,1} before the first one). A failure
 *     with reboot evidence (entry 0 returned, or a boot time different from the stored one) and
 *     safe == 1 is accepted as a reboot; otherwise quote_validation.
 *  5. PCR 16 == H(0 || H(pubkey)) with the answer's pubkey (partial=0) or the cached one
 *     (no key at all → qoute_validation.no_pubkey; not quoted → pcr_validation.missing_pcr_16;
 *     different → pcr_validation.invalid_pcr_16). The key is cached once it matched. A cached
 *     key that does not match after a TPM reset/restart or a boot-time change (the agent may
 *     have restarted with a new key, which a partial answer does not carry) judges nothing: the
 *     IMA state is reset and the outcome is VATTEST_REBOOT (the poller then asks partial=0).
 *  6. tpm_policy {"<n>": [hex, ...] | "hex", "mask": "0x..."}: each listed PCR other than 10/16
 *     that is quoted must hold one of its values (pcr_validation.invalid_pcr_<n>); listed PCRs
 *     absent from the quote → one pcr_validation.missing_pcrs.
 *  6b. measured boot, when the agent has a reference state and PCR 0 is quoted: attest_mb.h
 *     (st.mb_evaluated is cleared by a new boot and set when the reference passed).
 *  7. IMA, when PCR 10 is quoted (no list → pcr_validation.unused_pcr_10):
 *     - entry 0 returned: the list restarts; when entry != 0 was requested or the boot time
 *       changed, the running state is reset (entry 0, zero PCR, quote-progress memory cleared).
 *       When entry 0 was requested the quote-progress memory is kept, so an agent that answers
 *       from 0 round after round while PCR 10 never covers its list fails ima.quote_progress;
 *     - entry != requested and != 0 → qoute_validation.invalid_ima_entry_nb;
 *     - boot time changed, the quote's resetCount or restartCount differs from the stored clock
 *       info (a TPM reset/restart: PCR 10 may restart under a new, longer list), or the stored
 *       PCR bank differs from the quoted one → the state is reset and the outcome is
 *       VATTEST_REBOOT: nothing was checked, nothing counts as a success, the next round asks
 *       for entry 0 (entry 0 returned with a changed counter also resets);
 *     - otherwise the engine replays from the stored state (next entry + running PCR 10 +
 *       quote-progress memory) against the quoted PCR 10; a final line without '\n' is judged
 *       as a line. Pass: the state moves to the match point. Any IMA failure resets the
 *       stored IMA state (the next attestation replays from entry 0).
 *  Quote-level failures (1-4, invalid_ima_entry_nb) end the round at once; PCR and IMA failures
 *  are all collected. Failure records (entry, path, event id, reason, time) are kept for the
 *  first VATTEST_MAX_FAILURES events; total_failures counts all.
 *  On failure the outcome is VATTEST_INVALID_QUOTE or VATTEST_FAILED, and st.severity_level
 *  (the maximum label, Keylime's default severity policy) and st.last_event_id (the first
 *  event) are set. The engine logs "File not found in allowlist: ..." and "IMA ERRORS: ..."
 *  (module "ima") when opts.log is set.
 *  On pass: attestation_count + 1, last_successful_attestation = now, clock info and boot time
 *  stored. last_received_quote = now for every outcome.
 *  attest.c only judges: it never sets st.operational_state nor logs a state change; the
 *  poller hands the outcome to the round machine (round.h), which does both.
 *
 * Learned IMA keyrings (keys from ima-buf entries, keylime-formats §3.1) follow the IMA state:
 * a replay that resumes from the stored state first imports agent->st.learned_ima_keyrings into
 * the engine (unusable text → the state is reset and the outcome is VATTEST_REBOOT); a replay
 * from entry 0 starts with none. st.learned_ima_keyrings on output (malloc'd, freed by
 * vattest_out_free) is the engine's export after a passing replay, NULL after any IMA reset and
 * on VATTEST_INVALID_QUOTE / VATTEST_FAILED, else a copy of the stored text (state untouched).
 *
 * Threads: a vattest_ctx is one worker's (engines, buffers); a vattest_mem is one agent's and is
 * used by one round at a time. Engines are shared by the agents of a worker, so the learned
 * keyrings are set per round and never pass from one agent to another. */
#ifndef QUINCE_VERIFIER_ATTEST_H
#define QUINCE_VERIFIER_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "attest_mb.h"
#include "ima_sig.h"
#include "json_share.h"
#include "policy_cache.h"
#include "quote.h"
#include "store.h"

#define VATTEST_MAX_FAILURES 1000
#define VATTEST_SEVERITY_MAX 6          /* "emergency", the top of Keylime's default labels */
#define VATTEST_NONCE_LEN    24         /* characters from [A-Za-z0-9]: ~142 bits */
#define VATTEST_DEFAULT_MASK 0x400u
#define VATTEST_MB_PCRS      0xfbffu     /* PCRs 0-9 and 11-15: asked whenever a reference state is set */

/* Per-agent memory kept by the poller between rounds (never persisted); what is parsed from
 * the agent record (AK, tpm_policy, accept lists, keyring) is parsed once per record: the poller
 * clears it when a new record arrives. Zero-initialise. */
typedef struct vattest_mem {
    qak ak;
    bool ak_loaded;
    char *pubkey;                   /* payload key PEM from the last partial=0 answer */
    bool progress_set;              /* quote-progress memory (keylime-formats §4.3) */
    uint64_t prev_match, prev_lines;
    bool tpm_policy_parsed;
    vjson_shared *tpm_policy;       /* parsed vagent.tpm_policy (NULL: none), shared (json_share.h) */
    bool accept_parsed;             /* the record's accept_tpm_{hash,encryption,signing}_algs */
    vjson_shared *accept[3];        /* parsed once, shared by equal texts (NULL: the defaults) */
    bool keyring_parsed;
    qkeyring *keyring;              /* parsed ima_sign_verification_keys (NULL: none) */
    vmb_agent mb;                   /* parsed vagent.mb_policy and its mark (attest_mb.h) */
} vattest_mem;
/* Release and zero (the next round loads everything again). */
void vattest_mem_clear(vattest_mem *m);

typedef struct vattest_opts {
    bool violations_fail;           /* ima_violations = fail */
    bool mb_accept_all;             /* measured_boot_policy_name = accept-all: no reference check */
    bool mb_evaluate_always;        /* measured_boot_evaluate = always (else once per boot) */
    bool log;                       /* Keylime's log lines (engine and verifier) */
} vattest_opts;

typedef struct vattest_ctx vattest_ctx;
vattest_ctx *vattest_ctx_new(const vattest_opts *o, qerr *err);
void vattest_ctx_free(vattest_ctx *c);

typedef struct vattest_in {
    const vagent *agent;            /* the record, with the stored state in agent->st */
    const char *nonce;              /* as sent */
    uint64_t requested_entry;       /* ima_ml_entry sent */
    const cJSON *results;           /* the answer's "results" (NULL → invalid_data, FAILED) */
    vpolicy_ref *policy;            /* runtime policy; NULL → the empty policy */
    int64_t now;                    /* epoch seconds */
} vattest_in;

typedef enum {
    VATTEST_PASS = 0,
    VATTEST_REBOOT,                 /* state reset, round not counted: re-request from entry 0 */
    VATTEST_INVALID_QUOTE,
    VATTEST_FAILED,
} vattest_outcome;

typedef struct vattest_out {
    vattest_outcome outcome;
    vagent_state st;                /* the state to save (learned_ima_keyrings: see above) */
    vfailure *failures;             /* malloc'd records, at most VATTEST_MAX_FAILURES */
    size_t nfailures;
    uint64_t total_failures;
    char hash_alg[16], enc_alg[16], sign_alg[16];   /* as quoted ("" when absent/invalid) */
    bool pubkey_changed;            /* a partial=0 answer brought a different key */
    bool ima_pending;               /* PASS on a piece of the list ("ima_measurement_list_more")
                                       that did not reach the quoted PCR 10 yet: st holds the
                                       state after the piece; ask again from
                                       st.next_ima_ml_entry at once. Not counted as an
                                       attestation (count and last success unchanged). */
} vattest_out;

vattest_outcome vattest_round(vattest_ctx *c, const vattest_in *in, vattest_mem *mem, vattest_out *out);
void vattest_out_free(vattest_out *o);

/* ---- helpers shared with the poller ------------------------------------------------------ */

/* A round that failed outside the checks (communication, internal): out starts from a->st
 * (last_received_quote untouched; learned_ima_keyrings NULL), gets one record (entry
 * UINT64_MAX, path "") and the failure fields; oc is VATTEST_FAILED or VATTEST_INVALID_QUOTE.
 * out must be zeroed or freed before. */
void vattest_fail(vattest_out *out, const vagent *a, int64_t now, vattest_outcome oc, const char *event_id,
                  const char *reason);

/* The request mask: tpm_policy's "mask" (default 0x400) OR its listed PCRs, plus PCR 10 when the
 * agent has a runtime policy. Unparsable text → the default. */
uint32_t vattest_mask(const char *tpm_policy, bool has_runtime_policy);
/* A tpm_policy key naming a PCR: "0".."23", at most two digits. */
bool vattest_pcr_key(const char *k, int *pcr);
/* A fresh nonce of len characters from [A-Za-z0-9] (RAND_bytes drawn 1 KiB at a time per
 * thread, each byte used once; rejection sampling); out holds len + 1. Returns 0, or -1 when the
 * random generator fails. */
int vattest_nonce(char *out, size_t len);
/* Normalised encryption algorithm name ("rsa2048" → "rsa", "ecc256" → "ecc"). */
const char *vattest_enc_norm(const char *s);

#endif
