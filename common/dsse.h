/* dsse.h — signed runtime policies in Keylime's DSSE form (keylime-formats §2.7).
 * Envelope: {"payload": base64(policy bytes), "payloadType": "application/vnd.keylime+json",
 *            "signatures": [{"keyid": <id>, "sig": base64(signature)}, ...]}
 * Each signature covers PAE = "DSSEv1 <len(type)> <type> <len(payload)> <payload>" (decimal
 * lengths, single spaces). EC keys (P-256, P-384, any curve) sign with ECDSA-SHA256 (DER), RSA
 * keys with RSA-PSS-SHA256 (MGF1-SHA256, salt = 32 bytes; any salt length is accepted when
 * verifying). An envelope verifies when any one of its signatures verifies with the given key;
 * the keyid is informative only (as in Keylime), and a certificate named by a keyid is never
 * trusted by itself. Field decoding follows Keylime's b64dec: hex first, then base64, then
 * URL-safe base64. Keys: PEM or DER; public key, X.509 certificate or private key. */
#ifndef QUINCE_DSSE_H
#define QUINCE_DSSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "err.h"

#define QDSSE_PAYLOAD_TYPE "application/vnd.keylime+json"
#define QDSSE_MAX_SIGS 16
#define QDSSE_MAX_KEY 65536

typedef struct qdsse_sig {
    char *keyid;        /* may be NULL */
    uint8_t *sig;
    size_t sig_len;
} qdsse_sig;

typedef struct qdsse_env {
    char *payload_type;
    uint8_t *payload;   /* NUL-terminated for convenience (not counted in payload_len) */
    size_t payload_len;
    qdsse_sig sigs[QDSSE_MAX_SIGS];
    size_t nsigs;
} qdsse_env;

/* true when text is a JSON object whose "payload" member is truthy (Keylime's detection). */
bool qdsse_is_envelope(const char *text, size_t len);
/* Parse an envelope; a missing/ill-typed member or undecodable field is an error naming it.
 * Release with qdsse_env_clear (also safe on a failed parse). */
int qdsse_parse(const char *text, size_t len, qdsse_env *out, qerr *err);
void qdsse_env_clear(qdsse_env *e);
/* The pre-authentication encoding (malloc'd, length in *out_len); NULL when out of memory. */
uint8_t *qdsse_pae(const char *type, const uint8_t *payload, size_t payload_len, size_t *out_len);

/* A public key from a key, certificate or private key (PEM or DER); RSA or EC only. */
EVP_PKEY *qdsse_load_public(const uint8_t *data, size_t len, qerr *err);
/* A private key (PEM or DER, unencrypted); RSA or EC only. */
EVP_PKEY *qdsse_load_private(const uint8_t *data, size_t len, qerr *err);

/* 1 when a signature verifies with pub, 0 when none does, -1 on an internal error. */
int qdsse_verify(const qdsse_env *e, EVP_PKEY *pub, qerr *err);
/* Sign payload with priv; keyid = hex SHA-256 of the signer's PEM SubjectPublicKeyInfo, or,
 * when cert_pem is given (its key must match priv), base64 of the PEM certificate. Returns the
 * envelope text in json.dumps layout (malloc'd) or NULL. */
char *qdsse_sign(const uint8_t *payload, size_t payload_len, EVP_PKEY *priv, const char *cert_pem,
                 qerr *err);
/* Keylime's b64dec (hex, base64, URL-safe base64); malloc'd, at most max bytes. */
uint8_t *qdsse_b64dec(const char *s, size_t n, size_t max, size_t *out_len);

#endif
