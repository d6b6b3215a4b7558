/* payload.h — the tenant's half of secure payload delivery (keylime-formats §6: -f, -k, -p,
 * --verify; agent-protocol §6). Files and crypto only: no network.
 *
 * Contract:
 * - -f FILE: the file's bytes are sealed (common/payload_crypto.h) with a fresh K; V random,
 *   U = K xor V. -k KEYFILE [-p PAYLOAD]: K, U, V from the key file (three base64 lines K, U, V,
 *   K = U xor V); the payload file holds the sealed payload as base64 text (what Keylime's
 *   user_data_encrypt writes; surrounding white space is ignored) or as raw bytes
 *   iv || ct || tag (then it is base64-encoded here), and it must open with K (checked here, so a
 *   mismatched key file is caught before anything is sent). -k without -p sends no payload.
 * - max_payload_size (0 → TPAYLOAD_DEFAULT_MAX) bounds the payload's base64 text, which is what
 *   keylime_tenant measures and what /keys/ukey carries; a file that cannot fit is refused
 *   before it is read whole and always before anything is sent: "payload size N exceeds
 *   max_payload_size (M bytes)". (A 1 MiB limit thus admits files up to 786,400 bytes.)
 * - auth_tag = hex HMAC-SHA384(K, uuid) with the agent id exactly as the agent knows it.
 * - The /keys/ukey body is {"auth_tag", "encrypted_key": b64(RSA-OAEP-SHA1(U) to the agent's
 *   payload key), "payload"?}; the verifier's add request carries "v": b64(V).
 * - --verify: GET /keys/verify?challenge=<20 random alphanumerics> must answer
 *   {"hmac": hex HMAC-SHA384(K, challenge)}; tpayload_verify_reply compares in constant time.
 * - Errors: -1 with a one-line qerr whose code is the CLI exit status: 2 for a bad option or
 *   file (unreadable, too large, bad key file, payload that does not open), 1 for a failed
 *   check (wrong or missing hmac, a public key that cannot be used).
 * - Wiring (tenant/cli_add.c): after the identity quote and its PCR 16 check,
 *   body = tpayload_ukey_body(&p, uuid, pubkey_pem, &e) → POST /v{a}/keys/ukey; the add request
 *   gets "v": tpayload_v_b64(&p); with --verify poll GET /v{a}/keys/verify?challenge=c with
 *   tpayload_challenge(c) until tpayload_verify_reply(...) == 0 (400 "Bootstrap key not yet
 *   available." means "not yet"), with a timeout. tpayload_free at the end. */
#ifndef QUINCE_TENANT_PAYLOAD_H
#define QUINCE_TENANT_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "payload_crypto.h"

#define TPAYLOAD_DEFAULT_MAX   1048576u     /* [tenant] max_payload_size */
#define TPAYLOAD_CHALLENGE_LEN 20

typedef struct tpayload {
    qpay_keys keys;            /* K, U, V */
    char *payload_b64;         /* the sealed payload as sent (malloc'd); NULL: no payload */
    size_t payload_b64_len;
} tpayload;

/* -f FILE. */
int tpayload_from_file(const char *path, size_t max_payload_size, tpayload *out, qerr *err);
/* -k KEYFILE with an optional -p PAYLOAD (NULL: none). */
int tpayload_from_keyfile(const char *keyfile, const char *payload_path, size_t max_payload_size, tpayload *out,
                          qerr *err);
/* Cleanse and free. Safe on a zeroed or already freed struct. */
void tpayload_free(tpayload *p);

/* The /keys/ukey body for agent `uuid` whose payload public key (SPKI PEM, as in the identity
 * quote's "pubkey") is pubkey_pem. NULL on error. */
cJSON *tpayload_ukey_body(const tpayload *p, const char *uuid, const char *pubkey_pem, qerr *err);
/* base64 of V for the verifier's add request (malloc'd; NULL on allocation failure). */
char *tpayload_v_b64(const tpayload *p);

/* TPAYLOAD_CHALLENGE_LEN random alphanumerics + NUL into out (cap >= 21). */
int tpayload_challenge(char *out, size_t cap, qerr *err);
/* The results object of a /keys/verify answer: 0 when its "hmac" is HMAC-SHA384(K, challenge). */
int tpayload_verify_reply(const tpayload *p, const char *challenge, const cJSON *results, qerr *err);

#endif
