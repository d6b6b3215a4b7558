/* quote.h — Keylime quote strings, PCR blobs, TPM public keys and the verifier's quote check.
 * Pure code: no TPM access; tss2-mu (un)marshals, OpenSSL 3 EVP verifies.
 *
 * Wire form of a quote:  "r" b64(TPMS_ATTEST) ":" b64(TPMT_SIGNATURE) ":" b64(pcrblob)
 *   TPMS_ATTEST    the TPM-marshalled (big-endian) attestation body, without the TPM2B size;
 *   TPMT_SIGNATURE Tss2_MU_TPMT_SIGNATURE_Marshal output;
 *   pcrblob        tpm2-tools' little-endian in-memory dump: TPML_PCR_SELECTION (132 bytes),
 *                  u32 n, n x TPML_DIGEST (532 bytes). Quince accepts exactly one bank.
 * Every part is size-bounded (QQUOTE_*_MAX) and base64 is strict. Every failing check returns -1
 * with a one-line qerr message naming what did not match (used as failure context).
 * qquote_check allocates nothing but OpenSSL's per-call contexts; a loaded qak keeps its
 * verification context and is used by one thread at a time (the verifier: one agent's round). Checked against tpm2-tools 5.4 + swtpm quotes (RSA and ECC AKs). */
#ifndef QUINCE_QUOTE_H
#define QUINCE_QUOTE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "err.h"
#include "pcr_bank.h"

#define QQUOTE_NUM_PCRS     24
#define QQUOTE_ATTEST_MAX   1024                       /* marshalled TPMS_ATTEST */
#define QQUOTE_SIG_MAX      1024                       /* marshalled TPMT_SIGNATURE */
#define QPCRBLOB_SEL_SIZE   132                        /* sizeof(TPML_PCR_SELECTION) */
#define QPCRBLOB_DIGEST_SIZE 532                       /* sizeof(TPML_DIGEST) */
#define QPCRBLOB_MAX        (QPCRBLOB_SEL_SIZE + 4 + QQUOTE_NUM_PCRS * QPCRBLOB_DIGEST_SIZE)
#define QQUOTE_B64LEN(n)    ((((n) + 2) / 3) * 4)
#define QQUOTE_STRING_MAX   (1 + QQUOTE_B64LEN(QQUOTE_ATTEST_MAX) + 1 + QQUOTE_B64LEN(QQUOTE_SIG_MAX) + \
                             1 + QQUOTE_B64LEN(QPCRBLOB_MAX))
#define QQUOTE_NONCE_MAX    64                         /* TPM2B_DATA capacity */
#define QTPM_NAME_MAX       (2 + QHASH_MAX_SIZE)

/* ---- quote string ------------------------------------------------------------------------ */

/* The three decoded parts of a quote string (fixed buffers: no allocation). */
typedef struct qquote_parts {
    uint8_t attest[QQUOTE_ATTEST_MAX];
    size_t attest_len;
    uint8_t sig[QQUOTE_SIG_MAX];
    size_t sig_len;
    uint8_t pcrblob[QPCRBLOB_MAX];
    size_t pcrblob_len;
} qquote_parts;

/* Malloc'd quote string from the marshalled parts; NULL on error (sizes over the maxima). */
char *qquote_build(const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
                   const uint8_t *pcrblob, size_t pcrblob_len, qerr *err);
/* Same from tss2 structures (the agent's Esys_Quote output): marshals the signature. */
char *qquote_build_tpm(const TPM2B_ATTEST *attest, const TPMT_SIGNATURE *sig, const uint8_t *pcrblob,
                       size_t pcrblob_len, qerr *err);
/* Split and decode "r<b64>:<b64>:<b64>" (s need not be NUL-terminated). */
int qquote_split(const char *s, size_t len, qquote_parts *out, qerr *err);

/* ---- PCR blob ---------------------------------------------------------------------------- */

/* One bank's selected PCR values. Bit i of mask selects PCR i (i < 24); value[i] holds
 * qhash_size(bank) bytes for each selected PCR. */
typedef struct qpcrblob {
    qhash_alg bank;
    uint32_t mask;
    uint8_t value[QQUOTE_NUM_PCRS][QHASH_MAX_SIZE];
} qpcrblob;

/* Parse a tpm2-tools PCR blob: exactly one selection (count 1, sizeofSelect 3; every slot's
 * sizeofSelect in {0,3}), a known bank, n records of 1..8 digests of the bank's size, unused
 * digest slots zero-sized, as many values as selected PCRs, and the length consumed exactly. */
int qpcrblob_parse(const uint8_t *blob, size_t len, qpcrblob *out, qerr *err);
/* Build the blob (8 digests per record, ascending PCR order, zero padding). *len gets the size;
 * cap must be >= 136 + 532 * ceil(#PCRs / 8). */
int qpcrblob_build(const qpcrblob *in, uint8_t *out, size_t cap, size_t *len, qerr *err);
/* H_alg(concatenation of the selected values, ascending index) into out (qhash_size(alg) bytes).
 * ctx is a caller-owned reusable EVP_MD_CTX (NULL: one is allocated for the call). */
int qpcrblob_digest(const qpcrblob *p, qhash_alg alg, EVP_MD_CTX *ctx, uint8_t *out, qerr *err);
/* Expected PCR 16 = H(zeros || H(pem)) where pem is the exact pubkey string sent by the agent. */
int qquote_pcr16_expected(qhash_alg bank, const char *pem, size_t pem_len, uint8_t *out, qerr *err);

/* ---- TPMS_ATTEST ------------------------------------------------------------------------- */

typedef struct qclockinfo {
    uint64_t clock;          /* ms */
    uint32_t reset_count;
    uint32_t restart_count;
    uint8_t safe;            /* 1 = yes */
} qclockinfo;

/* The fields of a quote attestation that the checks use. */
typedef struct qattest {
    uint8_t signer[QTPM_NAME_MAX];       /* qualifiedSigner (TPM2B_NAME body) */
    size_t signer_len;
    uint8_t extra[QQUOTE_NONCE_MAX];     /* extraData (the nonce) */
    size_t extra_len;
    qclockinfo clock;
    uint64_t firmware;
    qhash_alg bank;                      /* pcrSelect: exactly one bank */
    uint32_t mask;                       /* pcrSelect bitmap, bit i = PCR i */
    uint8_t pcr_digest[QHASH_MAX_SIZE];
    size_t pcr_digest_len;
} qattest;

/* Unmarshal a quote TPMS_ATTEST: exact length, magic 0xFF544347, type 0x8018 (quote), one bank
 * with sizeofSelect <= 4 and no PCR >= 24. */
int qattest_parse(const uint8_t *attest, size_t len, qattest *out, qerr *err);

/* The verifier's clock rule against the last stored clock info (initial {0,0,0,1}):
 * resetCount must not decrease; restartCount must not decrease while resetCount is unchanged
 * (a TPM Reset zeroes it); safe must be 1; unless both counters changed (a reboot) the clock must
 * strictly increase. On success the caller stores `now` as the new reference. (Keylime skips the
 * store when both counters changed, which leaves its check stuck at the initial value for TPMs
 * with non-zero counters; Quince always stores.) */
int qclock_check(const qclockinfo *prev, const qclockinfo *now, qerr *err);

/* ---- TPM public keys (TPM2B_PUBLIC) ------------------------------------------------------- */

/* Unmarshal a marshalled TPM2B_PUBLIC; the whole buffer must be consumed. */
int qtpmpub_parse(const uint8_t *buf, size_t len, TPM2B_PUBLIC *out, qerr *err);
/* Same from base64 text (the registrar's aik_tpm / ek_tpm). */
int qtpmpub_parse_b64(const char *b64, size_t len, TPM2B_PUBLIC *out, qerr *err);
/* The key as an EVP_PKEY: RSA (n, e; e = 0 means 65537) or ECC NIST P-256/P-384 (x, y; point
 * validated). Caller frees with EVP_PKEY_free. */
EVP_PKEY *qtpmpub_pkey(const TPM2B_PUBLIC *pub, qerr *err);
/* Malloc'd SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----\n...\n") of any EVP_PKEY. */
char *qpkey_pem(EVP_PKEY *pkey, qerr *err);
/* TPM name: nameAlg (u16 BE) || H_nameAlg(marshalled TPMT_PUBLIC). out holds QTPM_NAME_MAX. */
int qtpmpub_name(const TPM2B_PUBLIC *pub, uint8_t *out, size_t cap, size_t *len, qerr *err);
/* The registrar's AK rule: RSA or ECC; restricted, sign, fixedTPM, fixedParent and
 * sensitiveDataOrigin set; decrypt clear. The message lists every violated attribute. */
int qtpmpub_check_ak(const TPM2B_PUBLIC *pub, qerr *err);

/* ---- verification ------------------------------------------------------------------------ */

/* An AK loaded once and reused for every quote of an agent. The key and its verification
 * context are set up at load (OpenSSL 3 fetches the algorithm and builds an operation context per
 * EVP_DigestVerifyInit: ~10 us a quote); a loaded qak is therefore used by one thread at a time. */
typedef struct qak {
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *vctx;               /* EVP_PKEY_verify_init'ed once; the digest is set per quote */
    bool ecc;                         /* false: RSA */
    uint8_t name[QTPM_NAME_MAX];
    size_t name_len;
} qak;

/* Load from a marshalled TPM2B_PUBLIC or its base64 text. qak_free releases (safe on zeroed). */
int qak_load(qak *ak, const uint8_t *tpm2b_public, size_t len, qerr *err);
int qak_load_b64(qak *ak, const char *b64, size_t len, qerr *err);
void qak_free(qak *ak);

/* Verify a marshalled TPMT_SIGNATURE over the attest bytes: RSA keys only with RSASSA, EC keys
 * only with ECDSA (r,s -> DER); the signature's hash must equal hash_alg (downgrade check). */
int qquote_verify_sig(const qak *ak, const uint8_t *attest, size_t attest_len, const uint8_t *sig,
                      size_t sig_len, qhash_alg hash_alg, qerr *err);

/* Everything the verifier needs from a checked quote. */
typedef struct qquote_result {
    qattest attest;    /* clock info for qclock_check, signer name, ... */
    qpcrblob pcrs;     /* the quoted PCR values (bank = hash_alg) */
} qquote_result;

/* The full quote check, in order: split; signature (qquote_verify_sig); TPMS_ATTEST
 * (qattest_parse; extraData == nonce bytes); PCR blob (qpcrblob_parse; bank == hash_alg);
 * blob selection == attest pcrSelect; H_hash_alg(values) == pcrDigest.
 * Any failure is a quote-validation failure; out is filled only on success. */
int qquote_check(const qak *ak, const char *quote, size_t quote_len, const uint8_t *nonce,
                 size_t nonce_len, qhash_alg hash_alg, qquote_result *out, qerr *err);

#endif
