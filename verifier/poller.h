/* poller.h — the attestation loop: one event thread drives libcurl multi (non-blocking,
 * keep-alive) for every agent on its own quote_interval; a pool of worker threads checks the
 * quotes and runs the IMA engine from the stored state; results are written to the store in
 * batches.
 *
 * Contract:
 * - vpoller_start takes its share of the agents' leases (lease.h; one verifier alone takes them
 *   all) and resumes those in states START, GET_QUOTE, GET_QUOTE_RETRY, PROVIDE_V,
 *   PROVIDE_V_RETRY (Keylime's APPROVED_REACTIVATE_STATES) from their stored state; others are
 *   not polled. Leases won or lost later add or drop agents while it runs.
 * - The API calls the vpoller_agent_* functions after it changed the store; they are thread-safe
 *   and return immediately (the event thread picks the change up).
 * - Round: GET /v<ver>/quotes/integrity?nonce=<fresh>&mask=<mask>&partial=<0|1>&ima_ml_entry=<n>
 *   → quote check (AK from the store, accept_tpm_*_algs, nonce, PCR selection/digest, clock info,
 *   PCR 16, tpm_policy PCRs) → IMA replay (policy cached by checksum) → state saved.
 * - Communication errors: GET_QUOTE_RETRY with exponential back-off (retry_interval ** n, up to
 *   max_retries), then FAILED with internal.verifier.not_reachable ("unreachable", not tampered).
 *   A peer whose certificate is not the pinned one counts as unreachable, logged as "the agent's
 *   TLS certificate did not match the certificate it registered".
 * - Attestation failure: INVALID_QUOTE (quote) or FAILED, polling stops, failure records saved,
 *   log lines "File not found in allowlist: ...", "IMA ERRORS: template-hash ... good N",
 *   "agent <uuid> failed, stopping polling".
 * - PROVIDE_V (agents added with a "v"): the first quote that passes, and later any passing quote
 *   that brought a payload key other than the one V went to, leads to PROVIDE_V and at once to
 *   POST /v<ver>/keys/vkey {"encrypted_key": b64(RSA-OAEP-SHA1(V))} to that key, over the same
 *   pinned client. 200 → GET_QUOTE; no answer or 408/500/599 → PROVIDE_V_RETRY with the same
 *   back-off and max_retries, then FAILED (internal.verifier.not_reachable); any other status →
 *   FAILED (internal.verifier.no_v). An agent whose quotes fail never gets V; V is never logged.
 * - vpoller_stop finishes in-flight work, commits and returns (SIGTERM path).
 * The pieces: poller.c (event loop, commands), curl_loop.c (libcurl on epoll), poll_agent.c (one
 * agent's requests and results), round.c (the state machine, docs/verifier-rounds.md),
 * agent_client.c (curl), attest_pool.c (workers), state_writer.c (the single writer and the round
 * hook), provide_v.c, sched.c. */
#ifndef QUINCE_VERIFIER_POLLER_H
#define QUINCE_VERIFIER_POLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "round.h"
#include "store.h"

typedef struct vpoller_opts {
    double quote_interval;        /* seconds between rounds of one agent (fractions allowed); default 2 */
    long max_retries;             /* communication retries before FAILED; default 5 */
    double retry_interval;        /* back-off base in seconds; default 2 */
    bool exponential_backoff;     /* default true */
    long request_timeout_ms;      /* per quote request; default 30000 */
    long max_response_bytes;      /* largest agent answer accepted; default 128 MiB */
    bool violations_fail;         /* ima_violations = fail */
    bool mb_accept_all;           /* measured_boot_policy_name = accept-all */
    bool mb_evaluate_always;      /* measured_boot_evaluate = always */
    unsigned num_workers;         /* 0 → number of cores */
    const char *verifier_id;      /* "default" */
    /* TLS towards agents: the verifier's client certificate and key (PEM files). An agent that
     * registered a certificate (mtls_cert PEM) is polled over https with that certificate pinned
     * (tls_pin.h: the only trust anchor and the pinned public key; the host name is not checked,
     * the pin is stronger). One that registered "disabled" (or none) is polled over plain HTTP
     * only with allow_plain_http, else it fails at once (internal.verifier.no_quote). */
    const char *tls_cert_file, *tls_key_file;
    bool allow_plain_http;
    /* The round hook (state_writer.h): called on the writer's thread after each round's result
     * was committed, with the agent id, the old and new operational_state, the first failure
     * and the agent's counters. NULL: none. Notifications and metrics attach here. */
    void (*on_round)(void *ctx, const vround_report *report);
    void *on_round_ctx;
    /* Rounds that changed only counters are written every checkpoint.rounds rounds or
     * checkpoint.seconds (round.h vround_write_now); {0, 0}: every round. */
    vround_ckpt checkpoint;
    /* Leases (lease.h, docs/high-availability.md): this process polls only the agents it holds a
     * lease on, and saves a round only while it still holds that lease at the same epoch.
     * instance_id names this process among the verifiers sharing the database (NULL:
     * "<host>:<pid>"); lease_ttl bounds how long a dead verifier's agents wait (default 10 s). */
    const char *instance_id;
    double lease_ttl;
} vpoller_opts;

typedef struct vpoller vpoller;

vpoller *vpoller_start(const vpoller_opts *o, vstore *store, qerr *err);
void vpoller_stop(vpoller *p);

void vpoller_agent_added(vpoller *p, const char *agent_id);        /* state START: poll now */
void vpoller_agent_reactivated(vpoller *p, const char *agent_id);  /* state START again */
void vpoller_agent_stopped(vpoller *p, const char *agent_id);      /* TENANT_FAILED: stop polling */
void vpoller_agent_removed(vpoller *p, const char *agent_id);      /* forget it (after delete) */
/* true while a request or a check for the agent is in flight. */
bool vpoller_agent_busy(vpoller *p, const char *agent_id);
/* Blocks (on a condition variable, no polling) until the agent has no request or check in
 * flight, or timeout_ms passed; true when idle. */
bool vpoller_agent_wait_idle(vpoller *p, const char *agent_id, long timeout_ms);
/* The agent's counters since this verifier started: rounds completed (a request's outcome was
 * judged: quote checked, V delivered, or a failure) and requests sent. false: not known. */
bool vpoller_agent_counts(vpoller *p, const char *agent_id, uint64_t *rounds, uint64_t *requests);
/* The counters of a polled agent as they are now, which the store may not have yet (checkpoint
 * above): the API shows these. false: not polled by this verifier. */
typedef struct vpoller_live {
    uint64_t attestation_count;
    int64_t last_received_quote, last_successful_attestation;
} vpoller_live;
bool vpoller_agent_live(vpoller *p, const char *agent_id, vpoller_live *out);
/* The policy cache is shared with the API: drop a policy whose text changed. */
void vpoller_policy_changed(vpoller *p, long policy_id);

#endif
