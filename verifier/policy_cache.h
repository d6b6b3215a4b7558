/* policy_cache.h — parsed runtime policies, shared read-only between the attestation workers.
 *
 * Contract:
 * - vpolicy_cache_get(c, id) returns a counted reference to the parsed runtime policy `id`,
 *   loaded from the store and parsed on first use. id 0, or a policy the store does not hold,
 *   gives the shared empty policy (Keylime's EMPTY_RUNTIME_POLICY: every file is "not found").
 *   Release every reference with vpolicy_ref_release.
 * - Parses are keyed by body checksum, so names sharing one body share one parsed policy; the
 *   id → checksum mapping is remembered until vpolicy_cache_invalidate(id) (the API changed or
 *   deleted the policy). References already handed out stay valid until released.
 * - At most max_entries parsed policies are kept while unreferenced (least recently used are
 *   evicted first); referenced ones are never freed under a holder.
 * - Thread-safe: one mutex guards the maps; the store read and the parse run outside it.
 * - A reference's serial is unique per parsed policy for the life of the process (never reused),
 *   so callers may key their own per-policy state (e.g. engines) by it. */
#ifndef QUINCE_VERIFIER_POLICY_CACHE_H
#define QUINCE_VERIFIER_POLICY_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "policy.h"
#include "store.h"

#define VPOLICY_CACHE_DEFAULT_MAX 64

typedef struct vpolicy_cache vpolicy_cache;
typedef struct vpolicy_ref vpolicy_ref;

/* store may be NULL (then every id gives the empty policy). max_entries 0 → default. */
vpolicy_cache *vpolicy_cache_new(vstore *store, size_t max_entries, qerr *err);
/* All references must have been released. NULL is fine. */
void vpolicy_cache_free(vpolicy_cache *c);
/* NULL with a message on a store error or an unparsable stored policy. */
vpolicy_ref *vpolicy_cache_get(vpolicy_cache *c, long policy_id, qerr *err);
void vpolicy_cache_invalidate(vpolicy_cache *c, long policy_id);
/* Lookups of stored policies answered from the cache, and those that had to parse, since the
 * process started (every cache together; for metrics). */
void vpolicy_cache_stats(uint64_t *hits, uint64_t *misses);
/* Number of parsed policies currently cached (the empty policy included). */
size_t vpolicy_cache_size(vpolicy_cache *c);

/* A standalone reference that owns p (tests, callers without a store); NULL if p is NULL. */
vpolicy_ref *vpolicy_ref_wrap(qpolicy *p, qerr *err);
vpolicy_ref *vpolicy_ref_retain(vpolicy_ref *r);
void vpolicy_ref_release(vpolicy_ref *r);        /* NULL is fine */
const qpolicy *vpolicy_ref_policy(const vpolicy_ref *r);
uint64_t vpolicy_ref_serial(const vpolicy_ref *r);

#endif
