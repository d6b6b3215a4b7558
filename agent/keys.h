/* keys.h — the agent's bootstrap-key state for /keys/ukey, /keys/vkey and /keys/verify
 * (agent-protocol §3.2 and §6). Memory only: nothing here is ever written to disk, and every
 * buffer that held U, V, K or an auth_tag is cleansed (OPENSSL_cleanse) before it is freed.
 *
 * Contract:
 * - One agent_keys per agent, shared by the REST workers: every call is thread-safe (one mutex).
 * - ukey: {"encrypted_key": b64(RSA-OAEP-SHA1(U)), "auth_tag": hex(HMAC-SHA384(K, uuid)),
 *   "payload"?: b64(iv16 || AES-GCM ct || tag16)}. Checked: a JSON object; strict base64 and hex;
 *   U decrypts with the payload key to 16 or 32 bytes; auth_tag is 96 hex characters; the payload
 *   text is at most max_payload_size characters (keylime_tenant's limit, which applies to the same
 *   base64 text) and decodes to at least 32 bytes. The entry is kept until a V matches it.
 *   At most AGENT_KEYS_MAX_U entries wait for their V: one more evicts the oldest waiting entry
 *   (logged), so junk posts (random auth_tags, which any client holding a certificate can send)
 *   cannot block a later delivery; a real U is lost only if AGENT_KEYS_MAX_U more arrive before
 *   its V. A ukey whose auth_tag equals a waiting entry's replaces that entry (a resent
 *   U). Entries leave the set when they match, and a match also drops every older waiting entry
 *   (superseded), so repeated `-c update` (delete + add with a new U) never fills the set.
 *   Memory is thus bounded by AGENT_KEYS_MAX_U decoded payloads (about 8 x 0.75 MiB by default).
 * - vkey: {"encrypted_key": b64(RSA-OAEP-SHA1(V))}, same checks on the key. A V that arrives
 *   before any matching U (Keylime accepts either order) is kept, never used on its own, and
 *   matched when the U arrives. At most AGENT_KEYS_MAX_V unmatched V halves are kept; beyond
 *   that the oldest is dropped (logged): a stale V is useless and a fresh one must not be refused.
 * - Matching (both directions): a pair (U, V) of equal length matches when
 *   HMAC-SHA384(U xor V, uuid) == auth_tag (constant-time compare). A new U is tried against the
 *   waiting V halves and a new V against the waiting U entries, newest first. On a match K
 *   becomes U xor V (replacing an earlier K: the newest matching pair wins), the matched U and V
 *   and every older U are removed, and the hook is called with K and that entry's payload.
 *   A wrong auth_tag therefore never yields a K.
 * - verify: challenge non-empty, alphanumeric, at most AGENT_KEYS_CHALLENGE_MAX characters →
 *   hex(HMAC-SHA384(K, challenge)); before any K: 400 "Bootstrap key not yet available.".
 * - Errors: -1 with err->code = the HTTP status (400 bad input, 500 internal) and a one-line
 *   message; the REST layer answers qhttp_reply_error(req, err.code, "%s", err.msg). Success → 200
 *   with results {} (ukey, vkey) or {"hmac": hex} (verify). Key material is never logged.
 * - Wiring (agent/api.c): POST /v{ver}/keys/ukey → agent_keys_ukey(ks, qhttp_req_json(req), &e);
 *   POST /v{ver}/keys/vkey → agent_keys_vkey; GET /v{ver}/keys/verify →
 *   agent_keys_verify(ks, qhttp_req_query(req, "challenge"), hex, sizeof hex, &e). The HTTP
 *   server's max_body must exceed max_payload_size plus about 1 KiB for the rest of the body. */
#ifndef QUINCE_AGENT_KEYS_H
#define QUINCE_AGENT_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "payload_key.h"

#define AGENT_KEYS_MAX_U                8
#define AGENT_KEYS_MAX_V                8
#define AGENT_KEYS_CHALLENGE_MAX        128
#define AGENT_KEYS_DEFAULT_MAX_PAYLOAD  1048576u     /* Keylime's max_payload_size */

typedef struct agent_keys agent_keys;

/* Called (under the state lock, so calls never overlap and come in derivation order) each time
 * K is derived: k/klen is K; payload/payload_len is the sealed payload (iv || ct || tag, already
 * base64-decoded) that came with the matching U, or NULL/0 when it had none. The pointers are
 * valid only during the call: copy what you keep. It must be quick (hand the work to a thread,
 * e.g. agent_payload_on_key in payload.h) and must not call agent_keys_* (deadlock). */
typedef void (*agent_keys_hook_fn)(void *ctx, const uint8_t *k, size_t klen, const uint8_t *payload,
                                   size_t payload_len);

/* pk (the payload key: kept by pointer, must outlive ks) decrypts the halves; uuid is copied;
 * max_payload_size bounds the payload's base64 text (0 → AGENT_KEYS_DEFAULT_MAX_PAYLOAD). */
agent_keys *agent_keys_new(const agent_payload_key *pk, const char *uuid, size_t max_payload_size, qerr *err);
/* Cleanse and free everything. NULL is fine. */
void agent_keys_free(agent_keys *ks);
/* Install (or with fn NULL remove) the hook called when K is derived. */
void agent_keys_set_hook(agent_keys *ks, agent_keys_hook_fn fn, void *ctx);

/* POST /keys/ukey with the parsed body (NULL → 400). 0 or -1 (err->code 400/500). */
int agent_keys_ukey(agent_keys *ks, const cJSON *body, qerr *err);
/* POST /keys/vkey with the parsed body. 0 or -1. */
int agent_keys_vkey(agent_keys *ks, const cJSON *body, qerr *err);
/* GET /keys/verify: hex HMAC-SHA384(K, challenge) into hex_out (cap >= 97). 0 or -1. */
int agent_keys_verify(agent_keys *ks, const char *challenge, char *hex_out, size_t cap, qerr *err);

/* Whether K has been derived. */
bool agent_keys_have_k(agent_keys *ks);
/* Waiting U entries and unmatched V halves (for status lines and tests). */
void agent_keys_counts(agent_keys *ks, size_t *n_u, size_t *n_v);

#endif
