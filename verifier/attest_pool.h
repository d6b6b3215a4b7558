/* attest_pool.h — the worker threads that judge quote answers (attest.c).
 *
 * Contract:
 * - vpool_push queues a job (never blocks, never fails: the poller bounds the jobs in flight);
 *   a worker parses the answer, looks the agent's runtime policy up in the shared cache, runs
 *   vattest_round and hands the job back through done(ctx, job) on the worker's thread.
 * - While a job is out, the worker reads job->rec, job->nonce and uses job->mem: the poller
 *   does not touch them until the job came back.
 * - vpool_stop lets the workers finish every queued job, then joins them. */
#ifndef QUINCE_VERIFIER_ATTEST_POOL_H
#define QUINCE_VERIFIER_ATTEST_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "attest.h"
#include "err.h"
#include "policy_cache.h"

typedef struct vjob {
    void *owner;                  /* the poller's agent */
    uint64_t gen;                 /* the generation of the round */
    char *body;                   /* the answer (owned; freed by the worker) */
    size_t len;
    const vagent *rec;
    vattest_mem *mem;
    const char *nonce;
    uint64_t requested;           /* ima_ml_entry asked for */
    vattest_out out;              /* the findings */
    struct vjob *next;
} vjob;

typedef struct vpool vpool;
typedef void (*vpool_done_fn)(void *ctx, vjob *job);

vpool *vpool_start(unsigned nworkers, const vattest_opts *ao, vpolicy_cache *policies, vpool_done_fn done,
                   void *ctx, qerr *err);
void vpool_push(vpool *p, vjob *job);
unsigned vpool_size(const vpool *p);
void vpool_stop(vpool *p);
void vjob_free(vjob *j);

#endif
