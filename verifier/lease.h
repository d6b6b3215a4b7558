/* lease.h — which agents this verifier process polls: leases held in the store, renewed by one
 * thread (docs/high-availability.md).
 *
 * Contract:
 * - Every ttl/3 seconds the thread renews this instance's heartbeat (one row), counts the live
 *   verifiers and the agents of the cluster, and moves towards its fair share
 *   ceil(agents / live verifiers): it takes free leases (unowned, or whose owner's heartbeat
 *   expired) when below it, releases its surplus when above it. It then compares the leases it
 *   holds in the store with the ones it knew: a new lease → adopt(id, epoch); a lease gone →
 *   drop(id) before anything else; a lease still held at another epoch (an API change through
 *   some verifier) → adopt(id, new epoch), which reloads the agent.
 * - valid(ctx, until) after every successful renewal: the leases hold until `until` (CLOCK_MONOTONIC
 *   seconds: the renewal's start plus 0.9 ttl), safely before any other verifier may take them.
 *   Past it, the poller sends nothing. Renewal failures are logged once per outage.
 * - vlease_start runs the first cycle before it returns (its adopt calls included) after giving
 *   agents without a lease row one and raising the epoch of the leases an earlier run of the same
 *   instance left behind. vlease_stop ends the thread; vlease_leave then releases every lease and
 *   removes the heartbeat so the others take over at once (clean stop only).
 * - Callbacks run on the lease thread (or the caller of vlease_start) and must not call back.
 * - vlease_note records an epoch this instance learned itself (its own API change), so that the
 *   next comparison does not reload the agent again. Thread-safe. */
#ifndef QUINCE_VERIFIER_LEASE_H
#define QUINCE_VERIFIER_LEASE_H

#include <stdint.h>
#include "err.h"
#include "store.h"

typedef struct vlease_opts {
    const char *instance;         /* this process's id in the store (unique among running verifiers) */
    const char *verifier_id;      /* the cluster */
    double ttl;                   /* seconds */
    void (*adopt)(void *ctx, const char *agent_id, uint64_t epoch);
    void (*drop)(void *ctx, const char *agent_id);
    void (*valid)(void *ctx, double until);
    void *ctx;
} vlease_opts;

typedef struct vlease vlease;

vlease *vlease_start(vstore *store, const vlease_opts *o, qerr *err);
void vlease_stop(vlease *l);                   /* joins the thread; the leases stay held */
void vlease_leave(vlease *l);                  /* after vlease_stop: release all, free */
void vlease_note(vlease *l, const char *agent_id, uint64_t epoch);
/* Process-wide: leases held at the last renewal, and taken / lost / released since start. */
void vlease_stats(unsigned long long *held, unsigned long long *taken, unsigned long long *lost,
                  unsigned long long *released);

#endif
