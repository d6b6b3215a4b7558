/* policy_signature.h — signed (DSSE) runtime policies in the verifier (keylime-formats §2.7).
 * A policy from the API is checked with common/policy_sig (Keylime's codes and messages) using
 * the base64 runtime_policy_key of the request and [verifier] require_allow_list_signatures;
 * the envelope is what is stored, with the key it verified against, and a stored envelope is
 * verified again with that key every time it is loaded. */
#ifndef QUINCE_VERIFIER_POLICY_SIGNATURE_H
#define QUINCE_VERIFIER_POLICY_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>
#include "err.h"
#include "policy_sig.h"
#include "store.h"

#define VPSIG_MAX_KEY_B64 (128u * 1024)

/* Check a decoded runtime policy text. key_b64 may be NULL or "". On success returns 0 with
 * res->payload the policy to validate; otherwise returns the HTTP status (400/401/500) with
 * res->message, logged. */
int vpsig_check_upload(const char *text, size_t len, const char *key_b64, bool require, qpsig_result *res);
/* The policy text to parse for a stored policy: a plain body as is, an envelope unwrapped after
 * verifying it with the stored key (when one was stored). Malloc'd; NULL with a message. */
char *vpsig_stored_payload(const vpolicy *vp, size_t *len, qerr *err);

#endif
