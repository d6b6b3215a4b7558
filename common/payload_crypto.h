/* payload_crypto.h — the cryptography of Keylime's secure payload (agent-protocol §6,
 * keylime-formats §5.3/§6), with OpenSSL EVP only. Shared by the tenant and the agent.
 *
 * Contract:
 * - Bootstrap key K: 32 random bytes; V: 32 random bytes; U = K xor V. Keys of 16 bytes are
 *   accepted on input (AES-128-GCM), as Keylime's agents accept them; Quince makes 32.
 * - Sealed payload: iv(16) || AES-GCM(K) ciphertext || tag(16), no additional data. The 16-byte
 *   IV is set with EVP_CTRL_GCM_SET_IVLEN (GCM hashes IVs that are not 12 bytes long).
 *   Opening checks the tag: any change to iv, ciphertext or tag, a truncation or a wrong key
 *   fails with "payload authentication failed (...)" and no plaintext is returned.
 * - auth_tag = lower-case hex of HMAC-SHA384(key = K, msg = agent uuid) (96 characters). Every
 *   HMAC comparison here is constant time (CRYPTO_memcmp) on the decoded bytes.
 * - Half keys travel encrypted with RSA-OAEP (SHA-1 digest and MGF1-SHA-1) to the agent's
 *   payload key, given as a SubjectPublicKeyInfo PEM (agent/payload_key.c decrypts).
 * - Key file (-k/--key, as keylime_tenant reads it): three lines of standard base64, K, U, V
 *   (CR/blank padding around a line is ignored; nothing else may follow). All three have the
 *   same length (16 or 32) and K must equal U xor V; since xor is symmetric, a file written with
 *   U and V swapped (Keylime's user_data_encrypt writes K, V, U) is read just as well. At most
 *   QPAY_KEYFILE_MAX bytes. Written files are created new with mode 0600.
 * - Library rules: no output, no exit; -1 with a qerr message. Stack buffers that held key
 *   material are cleansed before returning. Thread-safe (no shared state). */
#ifndef QUINCE_PAYLOAD_CRYPTO_H
#define QUINCE_PAYLOAD_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define QPAY_KEY_LEN       32                  /* K, U, V as Quince makes them */
#define QPAY_KEY_MAX       32
#define QPAY_IV_LEN        16
#define QPAY_TAG_LEN       16
#define QPAY_OVERHEAD      (QPAY_IV_LEN + QPAY_TAG_LEN)
#define QPAY_HMAC_LEN      48                  /* SHA-384 */
#define QPAY_HMAC_HEX      (2 * QPAY_HMAC_LEN) /* 96 characters, + 1 for the NUL */
#define QPAY_KEYFILE_MAX   4096
#define QPAY_RSA_MAX       512                 /* RSA ciphertext bytes (up to 4096-bit keys) */

/* K with its two halves. */
typedef struct qpay_keys {
    uint8_t k[QPAY_KEY_MAX], u[QPAY_KEY_MAX], v[QPAY_KEY_MAX];
    size_t len;                                /* 16 or 32 */
} qpay_keys;

/* 16 or 32. */
bool qpay_key_len_ok(size_t n);
/* out[i] = a[i] ^ b[i] (out may alias a or b). */
void qpay_xor(const uint8_t *a, const uint8_t *b, size_t n, uint8_t *out);
/* n bytes from the OpenSSL CSPRNG. */
int qpay_random(uint8_t *out, size_t n, qerr *err);
/* Fresh K and V (32 random bytes each), U = K xor V. */
int qpay_keys_new(qpay_keys *out, qerr *err);
/* Cleanse. */
void qpay_keys_clear(qpay_keys *ks);

/* Sealed size for n plaintext bytes (n + 32). */
size_t qpay_sealed_size(size_t n);
/* Seal n bytes with K (16 or 32 bytes) and a fresh random IV into out (cap >= n + 32).
 * *out_len gets n + 32. */
int qpay_seal(const uint8_t *k, size_t klen, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
              size_t *out_len, qerr *err);
/* Open a sealed payload (n >= 32) into out (cap >= n - 32); *out_len gets the plaintext size.
 * On any failure out is cleansed. */
int qpay_open(const uint8_t *k, size_t klen, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
              size_t *out_len, qerr *err);

/* HMAC-SHA384(key, msg) into out (48 bytes). */
int qpay_hmac(const uint8_t *key, size_t klen, const void *msg, size_t n, uint8_t out[QPAY_HMAC_LEN],
              qerr *err);
/* Same as lower-case hex into out (QPAY_HMAC_HEX + 1 bytes). */
int qpay_hmac_hex(const uint8_t *key, size_t klen, const void *msg, size_t n, char out[QPAY_HMAC_HEX + 1],
                  qerr *err);
/* auth_tag for K and an agent uuid (hex, as sent in /keys/ukey). */
int qpay_auth_tag(const uint8_t *k, size_t klen, const char *uuid, char out[QPAY_HMAC_HEX + 1], qerr *err);
/* true when HMAC-SHA384(key, msg) equals want (48 raw bytes); constant-time compare. */
bool qpay_hmac_check(const uint8_t *key, size_t klen, const void *msg, size_t n,
                     const uint8_t want[QPAY_HMAC_LEN]);
/* Same with want as hex text of n_hex characters (any case). 0 on a match; -1 with "... does not
 * match" or a message saying why the text is not a 96-character hex HMAC. */
int qpay_hmac_check_hex(const uint8_t *key, size_t klen, const void *msg, size_t n, const char *want_hex,
                        size_t n_hex, qerr *err);

/* RSA-OAEP (SHA-1) encryption of n bytes to the RSA public key in `pem` (SPKI PEM, pem_len bytes,
 * need not be NUL-terminated). Returns the ciphertext length (written to out, cap bytes) or -1. */
long qpay_rsa_encrypt(const char *pem, size_t pem_len, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                      qerr *err);
/* Same, returned as malloc'd base64 (the "encrypted_key" of /keys/ukey and /keys/vkey). */
char *qpay_rsa_encrypt_b64(const char *pem, size_t pem_len, const uint8_t *in, size_t n, qerr *err);

/* Key file text (see above) → keys. */
int qpay_keyfile_parse(const char *text, size_t n, qpay_keys *out, qerr *err);
/* Read and parse a key file; messages name the path. */
int qpay_keyfile_read(const char *path, qpay_keys *out, qerr *err);
/* Write "b64(K)\nb64(U)\nb64(V)\n" to a new file (O_EXCL, 0600). */
int qpay_keyfile_write(const char *path, const qpay_keys *ks, qerr *err);

#endif
