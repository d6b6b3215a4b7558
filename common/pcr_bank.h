/* pcr_bank.h — hash algorithms of PCR banks and the running value of one PCR.
 * The EVP_MD for each algorithm is fetched once per process (EVP_MD_fetch) and shared; callers
 * pass a reusable EVP_MD_CTX. OpenSSL 3.0 still allocates a provider context on every digest
 * init, so per-entry hot paths hash with qhash_direct (hash_direct.h) instead.
 * Extend rule: new = H(old || digest). A fresh PCR 0..16 is all zeros. */
#ifndef QUINCE_PCR_BANK_H
#define QUINCE_PCR_BANK_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <openssl/evp.h>

#define QHASH_MAX_SIZE 64

typedef enum { QHASH_SHA1 = 0, QHASH_SHA256, QHASH_SHA384, QHASH_SHA512, QHASH_COUNT, QHASH_NONE = -1 } qhash_alg;

const char *qhash_name(qhash_alg a);               /* "sha1", "sha256", ... */
int qhash_from_name(const char *s, qhash_alg *out); /* exact lower-case name; 0 or -1 */
size_t qhash_size(qhash_alg a);                     /* 20, 32, 48, 64 */
/* Algorithm by digest size (20/32/48/64 bytes); -1 otherwise. */
int qhash_from_size(size_t n, qhash_alg *out);
/* TPM2_ALG_* id (0x0004 sha1, 0x000B sha256, 0x000C sha384, 0x000D sha512) and back. */
uint16_t qhash_tpm_id(qhash_alg a);
int qhash_from_tpm_id(uint16_t id, qhash_alg *out);
/* The process-wide fetched EVP_MD (thread-safe, never freed by callers); NULL if unavailable. */
const EVP_MD *qhash_md(qhash_alg a);
/* One-shot digest with a caller-owned reusable ctx. Returns 0 or -1. */
int qhash_digest(EVP_MD_CTX *ctx, qhash_alg a, const void *data, size_t len, uint8_t *out);

typedef struct qpcr {
    qhash_alg alg;
    uint8_t value[QHASH_MAX_SIZE];
} qpcr;

void qpcr_init(qpcr *p, qhash_alg alg);          /* all zeros */
/* value = H(value || digest); digest is qhash_size(alg) bytes. Returns 0 or -1. */
int qpcr_extend(qpcr *p, EVP_MD_CTX *ctx, const uint8_t *digest);
/* Extend with the all-ones value (IMA violation). */
int qpcr_extend_ff(qpcr *p, EVP_MD_CTX *ctx);
bool qpcr_equals(const qpcr *p, const uint8_t *value, size_t len);

#endif
