/* credential.h — the registrar's side of MakeCredential/ActivateCredential, in software
 * (OpenSSL 3 EVP only), and Keylime's auth_tag.
 *
 * Contract (agent-protocol §2.3, §2.5; TPM 2.0 Part 1 §24 "Credential Protection"):
 * - The challenge is 32 characters from [A-Za-z0-9] (RAND_bytes, rejection sampling: no bias);
 *   its ASCII bytes are the credential, base64 of them is the auth_tag key the registrar stores.
 * - qcred_make builds the tpm2-tools credential blob (big-endian):
 *     u32 0xBADCC0DE ‖ u32 1 ‖ u16 N ‖ TPM2B_ID_OBJECT body (N) ‖ u16 M ‖ encrypted seed (M)
 *   for an EK given as TPM2B_PUBLIC: H = the EK's nameAlg, the symmetric key = the EK's
 *   symmetric definition (AES-128 or AES-256, CFB). RSA EKs: seed = digest-size random bytes,
 *   RSA-OAEP(H, MGF1-H, label "IDENTITY\0"). ECC EKs (NIST P-256/P-384): ephemeral ECDH,
 *   seed = KDFe(H, Z.x, "IDENTITY", ephemeral.x, EK.x), secret = marshalled TPMS_ECC_POINT.
 *   Then symKey = KDFa(H, seed, "STORAGE", name, "", keyBits), encIdentity =
 *   AES-CFB(symKey, IV 0)(u16 len ‖ credential), hmacKey = KDFa(H, seed, "INTEGRITY", "", "",
 *   digest bits), integrity = HMAC-H(hmacKey, encIdentity ‖ name).
 * - auth_tag = lower-case hex(HMAC-SHA384(key = ASCII base64(challenge), msg = agent id));
 *   qcred_auth_tag_ok decodes the offered tag (either case) and compares in constant time.
 * - Library code: no logging, no exit; -1 with a one-line qerr. Nothing is allocated beyond
 *   OpenSSL's per-call contexts; secrets on the stack are cleansed before return. */
#ifndef QUINCE_CREDENTIAL_H
#define QUINCE_CREDENTIAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "err.h"
#include "pcr_bank.h"

#define QCRED_CHALLENGE_LEN  32                   /* characters, [A-Za-z0-9] */
#define QCRED_BLOB_MAGIC     0xBADCC0DEu
#define QCRED_BLOB_VERSION   1u
#define QCRED_BLOB_MAX       1024                 /* >= 12 + 4 + 2 * 64 + sizeof(TPMU_ENCRYPTED_SECRET) */
#define QCRED_AUTH_TAG_HEX   96                   /* hex characters of an HMAC-SHA384 */

/* A fresh challenge: QCRED_CHALLENGE_LEN characters plus a NUL. */
int qcred_challenge(char out[QCRED_CHALLENGE_LEN + 1], qerr *err);

/* KDFa (SP800-108 counter mode, HMAC-alg; TPM 2.0 Part 1 §11.4.10.2) of out_len bytes:
 * blocks HMAC(key, u32 i ‖ label ‖ 0x00 ‖ ctx_u ‖ ctx_v ‖ u32 bits). Contexts may be empty. */
int qcred_kdfa(qhash_alg alg, const uint8_t *key, size_t key_len, const char *label, const uint8_t *ctx_u,
               size_t u_len, const uint8_t *ctx_v, size_t v_len, uint8_t *out, size_t out_len, qerr *err);

/* MakeCredential for the EK `ek` and the object name `name` (nameAlg ‖ digest, e.g. from
 * qtpmpub_name of the AK); the credential is at most the EK nameAlg's digest size. Writes the
 * tpm2-tools blob into blob (capacity cap, QCRED_BLOB_MAX is always enough), its size to *len. */
int qcred_make(const TPM2B_PUBLIC *ek, const uint8_t *name, size_t name_len, const uint8_t *cred,
               size_t cred_len, uint8_t *blob, size_t cap, size_t *len, qerr *err);

/* ActivateCredential in software, for simulated TPMs (tests, the fleet simulator): recovers the
 * credential of a qcred_make blob with the RSA EK's private key, its nameAlg `alg` and AES key
 * size sym_bits, for the object name it was made for; the integrity HMAC is checked first. */
int qcred_activate_rsa(EVP_PKEY *ek, qhash_alg alg, unsigned sym_bits, const uint8_t *name, size_t name_len,
                       const uint8_t *blob, size_t len, uint8_t *cred, size_t cap, size_t *cred_len, qerr *err);

/* auth_tag over agent_id with the stored key text (base64 of the challenge) into out (NUL-ended). */
int qcred_auth_tag(const char *key, size_t key_len, const char *agent_id, char out[QCRED_AUTH_TAG_HEX + 1],
                   qerr *err);
/* true when tag (tag_len characters) is the auth_tag of agent_id under key; constant time in the
 * tag's contents. */
bool qcred_auth_tag_ok(const char *key, size_t key_len, const char *agent_id, const char *tag, size_t tag_len);

#endif
