/* state_writer.h — the single writer of the poller's results: one thread, one queue, in order.
 *
 * Contract:
 * - A vresult is one round's result as one owned value: the state to save (its own copy), the
 *   failure records when the round failed, the quoted algorithms when they changed. The writer
 *   saves each whole; every result waiting when it wakes goes into one transaction
 *   (vstore_round_save_batch). A VRES_SET_STATE (the state the API just stored, re-asserted
 *   after anything of the poller's still queued) is written on its own, in queue order.
 * - Before writing, current(ctx, agent_id, gen) is asked: results of a generation the API has
 *   since replaced are dropped.
 * - THE HOOK: after a batch is committed, hook(hook_ctx, &report) is called on the writer's
 *   thread once per saved round result, in order (vround_report in round.h: agent id, old and
 *   new operational_state, the first failure's event id and reason — or, for a retry, its
 *   reason without an event id — and the counters). old_state !=
 *   new_state marks a state change. It is where notifications and metrics attach; it must be
 *   quick and must not call back into the poller's writer (it may read the store). The report
 *   and its strings are valid during the call only.
 * - A VRES_ROUND may be memory_only (its counters stay in the poller's memory, round.h
 *   vround_write_now): nothing is written, the hook is still called (round_seconds then ends
 *   when the writer took the result), store_seconds < 0. A checkpoint is written and not
 *   reported (the rounds it covers were reported already).
 * - Batching by time: the writer collects results for up to VWRITER_WINDOW_MS after the first
 *   one arrives (or MAX_BATCH of them) before one transaction writes them all, so transactions
 *   per second stay bounded whatever the round rate.
 * - vwriter_stop writes everything queued, then joins the thread. */
#ifndef QUINCE_VERIFIER_STATE_WRITER_H
#define QUINCE_VERIFIER_STATE_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "round.h"
#include "store.h"

#define VWRITER_WINDOW_MS 50

typedef enum { VRES_ROUND = 1, VRES_SET_STATE } vres_kind;

typedef struct vresult {
    vres_kind kind;
    char agent_id[VSTORE_ID_MAX];
    uint64_t gen;
    uint64_t epoch;               /* VRES_ROUND: the lease epoch it is saved under (vwriter_set_fence) */
    int old_state;                /* VRES_ROUND: the state before the round */
    vagent_state st;              /* VRES_ROUND: owned (vagent_state_clear) */
    bool set_failures;
    vfailure *failures;           /* owned */
    size_t nfailures;
    bool set_algs;
    char algs[3][16];             /* hash, encryption, signing */
    uint64_t rounds, requests;    /* the agent's counters after this round */
    char reason[256];             /* VRES_ROUND without failure records: a retry's reason, or "" */
    double sent_at;               /* VRES_ROUND: CLOCK_MONOTONIC seconds its quote request was sent, 0 = none */
    bool memory_only;             /* VRES_ROUND: report it, write nothing (st: state and count only) */
    bool checkpoint;              /* VRES_ROUND: write it, do not report it */
    int state;                    /* VRES_SET_STATE */
    struct vresult *next;
} vresult;

vresult *vresult_new(vres_kind kind, const char *agent_id, uint64_t gen);   /* NULL: out of memory */
void vresult_free(vresult *r);

typedef bool (*vwriter_current_fn)(void *ctx, const char *agent_id, uint64_t gen);
typedef void (*vwriter_hook_fn)(void *ctx, const vround_report *report);

typedef struct vwriter vwriter;
vwriter *vwriter_start(vstore *store, vwriter_current_fn current, void *current_ctx, vwriter_hook_fn hook,
                       void *hook_ctx, qerr *err);
void vwriter_push(vwriter *w, vresult *r);          /* takes ownership; NULL is ignored */
/* Fencing: from now on a round is saved only while the agent's lease names owner at the
 * result's epoch (store.h vstore_round); a refused round is logged and counted, never applied,
 * and not reported to the hook. Call before the first push. */
void vwriter_set_fence(vwriter *w, const char *owner);
unsigned long long vwriter_fenced(void);            /* rounds refused so far, process-wide */
void vwriter_stop(vwriter *w);
/* Since the process started, over every writer: write transactions committed and rows written
 * (an agent's state row, each failure record, each re-asserted state). */
void vwriter_stats(unsigned long long *transactions, unsigned long long *rows);

#endif
