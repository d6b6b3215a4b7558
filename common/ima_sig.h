/* ima_sig.h — IMA keyrings and ima-sig signature checks (keylime-formats §2.6).
 * A keyring holds public keys (RSA or EC) by keyidv2. Keyring JSON:
 *   {"pubkeys": [base64(DER SubjectPublicKeyInfo), ...], "keyids": [u32, ...]}
 * (a value that is itself a JSON string is decoded twice). Verification of a signature_v2_hdr
 * (type 3 or 5, version 2, hash_algo, keyid BE, sig_size BE, sig) against the file digest:
 * RSA PKCS#1 v1.5 or ECDSA over the prehashed digest; any failure → false. */
#ifndef QUINCE_IMA_SIG_H
#define QUINCE_IMA_SIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "err.h"

typedef struct qkeyring qkeyring;

qkeyring *qkeyring_new(void);
void qkeyring_free(qkeyring *k);
size_t qkeyring_count(const qkeyring *k);
/* Parse keyring JSON text (see above); an empty string gives an empty keyring. */
qkeyring *qkeyring_from_json(const char *text, size_t len, qerr *err);
/* Add a key given as DER or PEM (certificate, public key or private key); only RSA/EC.
 * Returns 0 or -1 ("Unsupported key type", unparsable). */
int qkeyring_add_key(qkeyring *k, const uint8_t *data, size_t len, qerr *err);
/* Like qkeyring_add_key, but a key already held (same keyid and same public key) is not added
 * again. At most max_keys keys (0 → the keyring's own bound): a new key beyond that fails with
 * "keyring full". Returns 1 (added), 0 (already held) or -1. */
int qkeyring_add_key_once(qkeyring *k, const uint8_t *data, size_t len, size_t max_keys, qerr *err);
/* The keyring as keyring JSON text {"pubkeys": [base64 DER SPKI, ...], "keyids": [u32, ...]} in
 * key order (malloc'd, free()); qkeyring_from_json gives the same keys and keyids back. NULL on
 * error (out of memory, a key without a DER encoding). */
char *qkeyring_to_json(const qkeyring *k, qerr *err);
/* true if `data` parses as an RSA/EC key (used by the ima-buf rule); *supported=false when it is
 * a key of another type. */
bool qkeyring_is_key(const uint8_t *data, size_t len, bool *supported);
/* keyidv2 of a DER/PEM key (last 4 bytes of SHA-1 over the PKCS#1 RSAPublicKey or the EC point). */
int qkeyring_keyid(const uint8_t *data, size_t len, uint32_t *keyid, qerr *err);
/* Verify a signature_v2_hdr blob over the file digest whose algorithm name is digest_alg.
 * Looks the keyid up in each of the given keyrings (NULL entries skipped). */
bool qkeyring_verify(const qkeyring *const *rings, size_t nrings, const uint8_t *sig, size_t sig_len,
                     const char *digest_alg, const uint8_t *digest, size_t digest_len);

#endif
