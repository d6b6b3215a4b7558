/* revocation_agents.h — the "agent" revocation channel: when an agent fails, the verifier POSTs
 * Keylime's signed revocation message to /v<version>/notifications/revocation of every other
 * agent it attests (agent-protocol §7), on a thread of its own: over mTLS with the verifier's
 * client certificate and each agent's registered certificate pinned (plain HTTP only for agents
 * without one, and only with allow_plain_http), each request bounded by timeout_ms and one
 * event's fan-out by 60 s. Every delivery and refusal is logged naming both agents. A bounded
 * queue (64 events) drops with an ERROR line when full; posting never blocks the caller. */
#ifndef QUINCE_VERIFIER_REVOCATION_AGENTS_H
#define QUINCE_VERIFIER_REVOCATION_AGENTS_H

#include <stdbool.h>
#include "err.h"
#include "store.h"

typedef struct vragents_opts {
    vstore *store;
    const char *cert_file, *key_file;   /* the verifier's client certificate (to agents) */
    bool allow_plain_http;
    long timeout_ms;                    /* per agent (0 → 5000) */
} vragents_opts;

typedef struct vragents vragents;

vragents *vragents_start(const vragents_opts *o, qerr *err);
/* Queue the body for every agent but failed_agent. 0, or -1 (queue full / memory; logged). */
int vragents_post(vragents *r, const char *failed_agent, const char *body);
void vragents_stop(vragents *r);

#endif
