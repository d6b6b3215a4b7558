/* store_lease.h — the store's side of agent leases (docs/high-availability.md).
 *
 * Tables: verifiers (instance, verifier_id, expiry: a verifier process's heartbeat) and leases
 * (agent_id, owner instance or NULL, epoch). An agent's lease is held while its owner's
 * heartbeat has not expired; renewing every lease is one write of the owner's own row, whatever
 * the number of agents. Expiry is judged by the database's clock (q_now_ms(): milliseconds since 1970),
 * never by a verifier's. Taking a lease, and every API change of an agent, raise its epoch;
 * round saves are fenced by (owner, epoch) (vstore_round.lease_owner in store.h).
 * A verifier's "cluster" is its verifier_id: it takes only agents whose verifier_id is its own or
 * empty. All calls: 0 (or a count) on success, -1 with the reason. */
#ifndef QUINCE_VERIFIER_STORE_LEASE_H
#define QUINCE_VERIFIER_STORE_LEASE_H

#include <stddef.h>
#include <stdint.h>
#include "store.h"

typedef struct vlease_row {
    char agent_id[VSTORE_ID_MAX];
    uint64_t epoch;
} vlease_row;

/* Heartbeat: the instance's expiry becomes db-now + ttl_ms. *live gets the number of unexpired
 * verifiers of the cluster (this one included), *agents the agents of the cluster. */
int vstore_lease_beat(vstore *s, const char *instance, const char *verifier_id, int64_t ttl_ms, long *live,
                      long *agents, qerr *err);
/* Start-up: agents without a lease row get one (unowned), and the leases this instance still
 * holds from an earlier run get a new epoch (a write of that run can never land). */
int vstore_lease_reclaim(vstore *s, const char *instance, qerr *err);
/* Takes up to n leases that are unowned or whose owner's heartbeat expired (epoch + 1). */
int vstore_lease_take(vstore *s, const char *instance, const char *verifier_id, long n, qerr *err);
/* The leases the instance holds, sorted by agent id: *rows (malloc'd, free()) and *n. */
int vstore_lease_mine(vstore *s, const char *instance, vlease_row **rows, size_t *n, qerr *err);
/* Gives leases up (only those still held at that epoch), one transaction. */
int vstore_lease_release(vstore *s, const char *instance, const vlease_row *rows, size_t n, qerr *err);
/* Clean stop: every lease of the instance released and its heartbeat row removed. */
int vstore_lease_leave(vstore *s, const char *instance, qerr *err);
/* An API change of an agent: its epoch is raised (so a round in flight on its owner is refused),
 * and with take (agent added) the lease row is created or taken by this instance. owner (cap
 * VSTORE_ID_MAX) gets the owner ("" = none) and *epoch the new epoch. 1 done, 0 no such agent. */
int vstore_lease_touch(vstore *s, const char *agent_id, const char *instance, bool take, char *owner,
                       uint64_t *epoch, qerr *err);

#endif
