/* round.h — one agent's attestation round as a pure state machine (docs/verifier-rounds.md).
 *
 * Contract:
 * - vround_step(cfg, state, event) → (state, next due, writes) is pure: no clock, no I/O, no
 *   globals. It is the only code that decides Keylime's operational_state of a polled agent;
 *   vround_apply copies that decision into the record that is saved, and vround_log is the only
 *   place that logs a state change ("agent <id> failed, stopping polling", "agent <id> attested
 *   (Get Quote)", retries, giving up).
 * - The poller turns what happened (an API command, a checked quote, a curl/HTTP outcome, the V
 *   delivery's answer) into one vround_event, calls vround_step, and does what the result says:
 *   schedule the next request after `delay` seconds (delay < 0: not polled), hand `save` and
 *   `failures` to the writer, forget the agent.
 * - Events of an older generation (the API changed the agent meanwhile) are VRE_STALE: nothing
 *   changes and nothing is written.
 * - vround_report is what the writer tells a hook after the round's writes were committed. */
#ifndef QUINCE_VERIFIER_ROUND_H
#define QUINCE_VERIFIER_ROUND_H

#include <stdbool.h>
#include <stdint.h>
#include "store.h"

typedef enum vround_ev {
    VRE_ACTIVATE = 1,     /* added, reactivated, or resumed at start-up → START, poll at once */
    VRE_QUOTE_PASS,       /* the checks passed; give_v: V is due to the quoted payload key */
    VRE_QUOTE_REBOOT,     /* the agent rebooted: its IMA state was reset, nothing judged */
    VRE_QUOTE_FAIL,       /* the checks failed; invalid_quote picks INVALID_QUOTE over FAILED */
    VRE_COMM_FAIL,        /* the quote request got no usable answer (transport, 408/500/599) */
    VRE_VKEY_DONE,        /* POST /keys/vkey answered 200 */
    VRE_VKEY_COMM_FAIL,   /* POST /keys/vkey got no usable answer (transport, 408/500/599) */
    VRE_VKEY_NO_KEY,      /* PROVIDE_V without a payload key to encrypt V to: quote again */
    VRE_FATAL,            /* cannot poll, bad answer status, V refused: FAILED, no retry */
    VRE_STOP,             /* the tenant stopped it → TENANT_FAILED */
    VRE_DELETE,           /* deleted: forget it */
    VRE_STALE,            /* a result of an older generation */
} vround_ev;

typedef struct vround_cfg {
    double quote_interval;        /* seconds from one quote request's start to the next */
    double retry_interval;        /* back-off base */
    bool exponential_backoff;     /* delay = retry_interval ** n (when retry_interval > 1) */
    long max_retries;             /* communication retries before FAILED */
    double max_backoff;           /* cap of one delay */
} vround_cfg;

/* What the machine remembers about one agent between events. */
typedef struct vround_st {
    int state;                    /* Keylime's operational_state (VSTATE_*) */
    uint32_t retries;             /* communication failures in a row */
    bool polling;
    bool partial0;                /* the next quote asks for the payload key (partial=0) */
} vround_st;

typedef struct vround_event {
    vround_ev kind;
    bool give_v;                  /* VRE_QUOTE_PASS */
    bool more;                    /* VRE_QUOTE_PASS on a piece of the IMA list that did not reach
                                     PCR 10 yet (vattest_out.ima_pending): ask for the rest at once */
    bool invalid_quote;           /* VRE_QUOTE_FAIL */
    double elapsed;               /* VRE_QUOTE_PASS: seconds since the request started */
} vround_event;

typedef struct vround_out {
    vround_st st;
    double delay;                 /* seconds until the next request; < 0: none */
    bool save;                    /* the round's state is to be written */
    bool failed;                  /* gave up: failure records are written, polling stops */
    bool unreachable;             /* failed because max_retries was reached */
    bool forget;                  /* VRE_DELETE */
    bool ignored;                 /* VRE_STALE, or a result after polling ended: nothing to do */
} vround_out;

void vround_step(const vround_cfg *cfg, const vround_st *in, const vround_event *ev, vround_out *out);
/* The delay before retry n (1-based). */
double vround_backoff(const vround_cfg *cfg, uint32_t retries);
/* The state the API stores for a command and the writer re-asserts after it (START for
 * VRE_ACTIVATE, TENANT_FAILED for VRE_STOP), -1 for other events. */
int vround_api_state(vround_ev kind);
/* Copies the decision into the record to save (operational_state, consecutive_failures). */
void vround_apply(vagent_state *st, const vround_out *out);
/* Logs the transition (module "verifier"); why: the failure's reason, or NULL. */
void vround_log(const char *agent_id, const vround_cfg *cfg, const vround_st *in, const vround_event *ev,
                const vround_out *out, const char *why);
const char *vround_ev_name(vround_ev kind);

/* ---- what a round writes (issue: writes sized for large fleets) ----
 * A saved round's state is written at once when something an operator or a restart needs
 * changed: the operational state, the IMA position and running PCR 10, boot time, the TPM's
 * reset/restart counters, failures and their event id and severity, the learned keyrings, the
 * measured-boot mark, the quoted algorithms. A round that changed only the counters
 * (attestation_count, last_received_quote, last_successful_attestation, the TPM clock) is kept
 * in memory and written as a checkpoint after `rounds` such rounds or `seconds` since the first
 * of them, and when the poller stops. */
typedef struct vround_ckpt {
    long rounds;                  /* 1: every round is written */
    double seconds;
} vround_ckpt;
/* A 64-bit fingerprint of the durable fields above (not the counters). */
uint64_t vround_durable_fp(const vagent_state *st);
/* Write now? durable: the fingerprint, state or failures changed (or algorithms); unsaved: rounds
 * kept in memory so far including this one; since: seconds since the first of them. */
bool vround_write_now(const vround_ckpt *ck, bool durable, long unsaved, double since);

/* Handed to the writer's hook (state_writer.h) after the round's writes were committed. */
typedef struct vround_report {
    const char *agent_id;
    int old_state, new_state;     /* equal when the round changed nothing */
    const char *event_id;         /* the first failure's event id, NULL when none */
    const char *reason;           /* ... and its reason; a retry's reason (event_id NULL) */
    uint64_t attestation_count;   /* the saved state's */
    uint64_t rounds;              /* rounds completed by this verifier process */
    uint64_t requests;            /* requests sent to the agent by this verifier process */
    double round_seconds;         /* quote request sent -> state saved; < 0 when the round sent none */
    double store_seconds;         /* the commit that saved this batch of rounds (first report of a
                                     batch only); < 0 otherwise */
} vround_report;

#endif
