/* api.h — the verifier REST API (Keylime's verifier API v2.0–2.6) as a route table for
 * qhttp_server (keylime-formats §5.1–5.2):
 *   GET /version
 *   GET /v{v}/agents[/?bulk=True&verifier=<id>]          list ({"uuids": [["id"], ...]}) or bulk status
 *   GET|POST|DELETE /v{v}/agents/{id}                    status / add / delete
 *   PUT /v{v}/agents/{id}/reactivate | /stop
 *   GET /v{v}/allowlists                                 {"runtimepolicy names": [...]}
 *   GET|POST|PUT|DELETE /v{v}/allowlists/{name}          runtime policies
 *
 * Contract:
 * - Agent ids are normalised to lower case on every route to find the agent (the registrar, the
 *   verifier and the store all key agents by the lower-case id, so "ABC" and "abc" are one agent).
 *   Answers show the id as added (list, bulk keys) or as the request spelled it (messages), as
 *   Keylime does. Ids must match Keylime's [\w.-]+ and be shorter than VSTORE_ID_MAX.
 * - The AK of an added agent is always the registrar's record in the store (the agent must be
 *   registered and active); an ak_tpm in the request is ignored. So is its mtls_cert: the verifier
 *   pins the certificate the agent registered. An agent registered with mtls_cert "disabled" (or
 *   none) is refused, 400 "mTLS certificate for agent is required!", unless
 *   cfg->allow_agent_plain_http.
 * - Runtime policies are validated (schema, digests, excludes compiled) before they are stored;
 *   errors are 400 with the validator's message.
 * - Request bodies larger than cfg->max_upload_size get 413 from the server: start the server with
 *   max_body = cfg->max_upload_size.
 * - poller may be NULL (unit tests): the store is updated and nothing is polled.
 * - Handlers are thread-safe (the store serialises itself; the context is read-only). */
#ifndef QUINCE_VERIFIER_API_H
#define QUINCE_VERIFIER_API_H

#include <stddef.h>
#include "http_server.h"
#include "poller.h"
#include "store.h"
#include "vconfig.h"

#define VAPI_MAX_ROUTES 32
#define VAPI_CURRENT_VERSION "2.6"

typedef struct vapi_ctx {
    vstore *store;
    vpoller *poller;          /* NULL: no polling */
    const vconfig *cfg;
    struct vops *ops;         /* NULL: no retry errors to show (ops_hooks.h) */
} vapi_ctx;

/* Fills routes (capacity cap) for the context; returns the number of routes. */
size_t vapi_routes(vapi_ctx *c, qhttp_route *routes, size_t cap);

/* Exposed for unit tests. */
/* 1 if "2.0".."2.6" (the text after the 'v' of the path), else 0. */
int vapi_version_supported(const char *ver);
/* Validate an agent id ([\w.-]+, shorter than VSTORE_ID_MAX) and write it in lower case.
 * Returns 0, or -1 with "agent_id not valid". */
int vapi_normalise_id(const char *in, char out[VSTORE_ID_MAX], qerr *err);

#endif
