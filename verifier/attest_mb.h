/* attest_mb.h — the measured-boot part of an attestation round (attest.h step 6b), Keylime's
 * rules: with a reference state and PCR 0 in the quote,
 *  - no mb_measurement_list → pcr_validation.unused_pcr_<n> for each quoted boot PCR;
 *  - a log that cannot be decoded or replayed (bounded: QEVLOG_MAX_BYTES) →
 *    measured_boot.invalid_log;
 *  - each quoted PCR of 0-9 and 11-15 must equal the replay of the quoted bank →
 *    measured_boot.invalid_pcr_<n>;
 *  - then (even after a PCR mismatch, as Keylime), unless the verifier accepts all (measured_boot_policy_name = accept-all) or the
 *    reference already passed since the last boot (measured_boot_evaluate = once), the log is
 *    judged against the reference (qmb_evaluate): one measured_boot.policy_example failure per
 *    finding, its reason "Boot attestation failed: event <n>: <what was expected>".
 * A replayed log also yields the boot_aggregate values IMA accepts this round.
 * Pure: no I/O; the decode buffer is the worker's and grows only when a larger log arrives. */
#ifndef QUINCE_VERIFIER_ATTEST_MB_H
#define QUINCE_VERIFIER_ATTEST_MB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventlog.h"
#include "ima_verify.h"
#include "mb_policy.h"
#include "quote.h"

#define VMB_MAX_AGGREGATES (2 * QHASH_COUNT)

/* One worker's scratch. Zero-initialise; vmb_scratch_clear releases. */
typedef struct vmb_scratch {
    uint8_t *buf;
    size_t cap;
    qevlog_pcrs pcrs;
    qima_digest agg[VMB_MAX_AGGREGATES];
    size_t nagg;                    /* boot aggregates of this round's log (0: none) */
} vmb_scratch;
void vmb_scratch_clear(vmb_scratch *s);

/* A failure: event id and reason (which names the event number: "event 40: ..."). */
typedef void (*vmb_fail_fn)(void *ctx, const char *event_id, const char *reason);

typedef struct vmb_in {
    const char *agent_id;
    const qmb_ref *ref;             /* the agent's parsed reference state */
    const char *log_b64;            /* mb_measurement_list, or NULL */
    qhash_alg bank;                 /* the quote's */
    const qpcrblob *pcrs;           /* the quoted PCRs */
    bool evaluate;                  /* judge the reference this round */
    bool log;                       /* log lines (module "measured_boot") */
} vmb_in;

/* Runs the checks; returns true when the reference was judged and passed. s->nagg is set when
 * the log was replayed. */
bool vmb_check(vmb_scratch *s, const vmb_in *in, vmb_fail_fn fail, void *ctx);

/* One agent record's measured-boot memory (in vattest_mem): its reference state, parsed once per
 * record, and whether it passed for this record. Zero-initialise; vmb_agent_clear releases. */
typedef struct vmb_agent {
    bool parsed;
    qmb_ref *ref;                   /* NULL: none, or unusable (error says why) */
    char error[256];
    bool judged;                    /* the reference passed since this record arrived */
} vmb_agent;
void vmb_agent_clear(vmb_agent *m);

typedef struct vmb_round_in {
    const char *agent_id;
    const char *mb_policy;          /* the record's reference state text (NULL: none) */
    const char *log_b64;
    qhash_alg bank;
    const qpcrblob *pcrs;
    bool accept_all, evaluate_always, log;
} vmb_round_in;
/* attest.h step 6b: nothing without a reference state or without PCR 0 in the quote; an unusable
 * reference state is a measured_boot.policy_example failure; else vmb_check, judging the
 * reference when evaluate_always, or *evaluated (the saved per-boot mark) is false, or the record
 * is new. *evaluated is set when the reference passed. */
void vmb_round(vmb_scratch *s, vmb_agent *m, const vmb_round_in *in, bool *evaluated, vmb_fail_fn fail, void *ctx);

#endif
