/* register.h — registration with the registrar (agent-protocol §2): /version negotiation,
 * POST /v{v}/agents/{uuid} with EK, EK certificate, AK and contact address, ActivateCredential of
 * the returned blob, then PUT /v{v}/agents/{uuid}/activate with the auth_tag.
 * Unreachable registrar or 5xx: retried with exponential back-off (logged). 403 (a changed
 * EK/AK) and other 4xx answers are final: -1 with a message that says why. */
#ifndef QUINCE_AGENT_REGISTER_H
#define QUINCE_AGENT_REGISTER_H

#include <stddef.h>
#include <stdint.h>
#include "agent.h"

int agent_register(agent_ctx *a, qerr *err);

/* hex(HMAC-SHA384(key = base64(secret) as ASCII, msg = uuid)) into out (97 bytes). */
int agent_auth_tag(const uint8_t *secret, size_t secret_len, const char *uuid, char out[97], qerr *err);

#endif
