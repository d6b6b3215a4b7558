/* api.h — the agent's REST API (Keylime agent API v2.1–2.6): /version, /v{v}/agent/info (2.2+),
 * /v{v}/keys/pubkey, /v{v}/quotes/identity and /v{v}/quotes/integrity. */
#ifndef QUINCE_AGENT_API_H
#define QUINCE_AGENT_API_H

#include <stddef.h>
#include "agent.h"
#include "http_server.h"

/* Fills routes (capacity cap) for the given context; returns the number of routes. */
size_t agent_api_routes(agent_ctx *a, qhttp_route *routes, size_t cap);

/* /keys/ukey, /keys/vkey, /keys/verify (keys_api.c). */
void agent_h_ukey(qhttp_req *r, void *ctx);
void agent_h_vkey(qhttp_req *r, void *ctx);
void agent_h_verify(qhttp_req *r, void *ctx);
/* POST /v{ver}/notifications/revocation (revocation_actions.c). */
void agent_h_revocation(qhttp_req *r, void *ctx);

/* Parameter checks, exposed for unit tests. Each returns 0 or -1 with Keylime's message. */
int agent_api_check_nonce(const char *nonce, qerr *err);
int agent_api_parse_mask(const char *mask, uint32_t *out, qerr *err);
/* "2.1".."2.6" → 0; otherwise -1 ("API version not supported: v<ver>"). *minor gets the minor number. */
int agent_api_version(const char *ver, int *minor, qerr *err);

#endif
