/* tpm.h — the agent's TPM: EK, AK, credential activation, PCRs and quotes over ESAPI (tss2-tctildr).
 *
 * Contract:
 * - One qtpm per TPM. Calls are serialised by an internal mutex (thread-safe, one at a time).
 * - Connection: every call opens the ESAPI context lazily (TCTI string, Esys_Startup(CLEAR) which is
 *   harmless on a started TPM). qtpm_close() drops it so another process (ima-emulator, tools) can
 *   use a raw swtpm, which serves one client connection at a time; the next call reconnects.
 * - Time: every call is one command sequence run on a worker thread and bounded by timeout_ms
 *   (tcti-swtpm ignores ESAPI timeouts, its reads block). On expiry the call fails with
 *   "TPM did not answer within N ms", the context is abandoned (its thread finishes, flushes and
 *   frees on its own once the TPM answers) and the next call opens a new one.
 * - Objects: nothing stays loaded between calls. Every transient object and session a call loads is
 *   flushed before it returns, on error paths too. The AK is kept as a saved context
 *   (ContextSave/ContextLoad); if that is no longer valid (TPM reset) it is re-loaded under the EK.
 *   A persistent EK (ek_handle) is never flushed.
 * - Errors: -1 with a one-line qerr naming the command and the Tss2_RC_Decode text.
 * - Output: TPMS_ATTEST bytes without the TPM2B size; TPMT_SIGNATURE as Tss2_MU marshals it;
 *   PCR values as a qpcrblob (quote.h), value[i] = PCR i. */
#ifndef QUINCE_AGENT_TPM_H
#define QUINCE_AGENT_TPM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <tss2/tss2_tpm2_types.h>

#include "err.h"
#include "pcr_bank.h"
#include "quote.h"

#define QTPM_DEFAULT_TCTI       "device:/dev/tpmrm0"
#define QTPM_DEFAULT_TIMEOUT_MS 10000u
#define QTPM_TCTI_MAX           256
#define QTPM_AUTH_MAX           64          /* endorsement hierarchy auth bytes */
#define QTPM_EK_CERT_MAX        8192
#define QTPM_SECRET_MAX         64          /* activated credential (Keylime: 32 ASCII bytes) */
#define QTPM_CREDBLOB_MAX       1024
#define QTPM_EK_CERT_NV_RSA     0x01c00002u
#define QTPM_EK_CERT_NV_ECC     0x01c0000au

typedef struct qtpm qtpm;

typedef enum { QTPM_KEY_RSA2048 = 0, QTPM_KEY_ECC_P256 } qtpm_key_type;

typedef struct qtpm_opts {
    const char *tcti;              /* NULL or "" -> QTPM_DEFAULT_TCTI */
    unsigned timeout_ms;           /* per call; 0 -> QTPM_DEFAULT_TIMEOUT_MS */
    uint32_t ek_handle;            /* 0: CreatePrimary from the TCG template; else a persistent EK */
    qtpm_key_type ek_type;         /* template L-1 (RSA 2048) or L-2 (ECC P-256) */
    const uint8_t *eh_auth;        /* endorsement hierarchy auth (NULL: empty) */
    size_t eh_auth_len;
} qtpm_opts;

typedef struct qtpm_ak_params {
    qtpm_key_type type;            /* RSA 2048 RSASSA or ECC P-256 ECDSA */
    qhash_alg hash;                /* nameAlg and signing hash (sha256 for Keylime) */
} qtpm_ak_params;

typedef struct qtpm_info {
    uint32_t manufacturer;         /* TPM2_PT_MANUFACTURER, e.g. 0x49424D00 "IBM" for swtpm */
    char manufacturer_str[5];      /* printable, NULs dropped */
    char vendor[17];               /* TPM2_PT_VENDOR_STRING_1..4, NULs dropped, trailing blanks cut */
    uint64_t firmware;
    uint32_t pcr10_banks;          /* bit qhash_alg set: that bank is active for PCR 10 */
} qtpm_info;

/* Digests for one PCR_Extend: one value per bank (TPML_DIGEST_VALUES). */
typedef struct qtpm_digests {
    unsigned count;
    qhash_alg alg[QHASH_COUNT];
    uint8_t value[QHASH_COUNT][QHASH_MAX_SIZE];
} qtpm_digests;

typedef struct qtpm_quote_out {
    uint8_t attest[QQUOTE_ATTEST_MAX];  /* TPMS_ATTEST, marshalled, no size prefix */
    size_t attest_len;
    uint8_t sig[QQUOTE_SIG_MAX];        /* TPMT_SIGNATURE, marshalled */
    size_t sig_len;
    qpcrblob pcrs;                      /* the quoted values (consistent with pcrDigest) */
} qtpm_quote_out;

/* ---- life cycle --------------------------------------------------------------------------- */
qtpm *qtpm_new(const qtpm_opts *o, qerr *err);           /* no TPM traffic yet */
void qtpm_free(qtpm *t);                                  /* waits (bounded) for abandoned calls */
int qtpm_open(qtpm *t, qerr *err);                        /* connect now (calls also connect lazily) */
void qtpm_close(qtpm *t);                                 /* release the connection */
/* Start-up hygiene on a TPM without resource manager: flush every transient object and loaded
 * session (left by crashed processes or tools). *flushed (may be NULL) gets the count. */
int qtpm_flush_leftovers(qtpm *t, unsigned *flushed, qerr *err);

/* ---- identity ----------------------------------------------------------------------------- */
int qtpm_get_info(qtpm *t, qtpm_info *out, qerr *err);
/* A software TPM: vendor string contains "SW" or manufacturer is "IBM" (swtpm: "IBM", "SW   TPM"). */
bool qtpm_is_software(const qtpm_info *info);

/* ---- EK ----------------------------------------------------------------------------------- */
int qtpm_ek_public(qtpm *t, TPM2B_PUBLIC *out, qerr *err);  /* cached after the first call */
/* The EK certificate (DER, NV padding stripped) from nv_index (0: the index of ek_type).
 * Returns 0, 1 when the index does not exist, -1 on error. */
int qtpm_ek_cert(qtpm *t, uint32_t nv_index, uint8_t *out, size_t cap, size_t *len, qerr *err);

/* ---- AK ----------------------------------------------------------------------------------- */
/* Use the AK stored at path (marshalled TPM2B_PUBLIC + TPM2B_PRIVATE, bound to this EK and these
 * params) or create a new one under the EK and store it (mode 0600, written atomically).
 * *created (may be NULL) tells which. Leaves the AK ready for quotes. */
int qtpm_ak_ensure(qtpm *t, const char *path, const qtpm_ak_params *p, bool *created, qerr *err);
int qtpm_ak_public(qtpm *t, TPM2B_PUBLIC *out, qerr *err);  /* after qtpm_ak_ensure */
/* The AK name (nameAlg || H(TPMT_PUBLIC)) as the TPM reported it on load. */
int qtpm_ak_name(qtpm *t, uint8_t *out, size_t cap, size_t *len, qerr *err);

/* ---- credential --------------------------------------------------------------------------- */
/* TPM2_ActivateCredential(AK, EK) on a tpm2-tools blob (u32 0xBADCC0DE, u32 1, TPM2B_ID_OBJECT,
 * TPM2B_ENCRYPTED_SECRET; big-endian). The secret goes to out (cap bytes), its size to *len. */
int qtpm_activate_credential(qtpm *t, const uint8_t *blob, size_t blob_len, uint8_t *out, size_t cap,
                             size_t *len, qerr *err);

/* ---- PCRs and quotes ---------------------------------------------------------------------- */
int qtpm_pcr_reset(qtpm *t, unsigned pcr, qerr *err);
/* PCR_Reset(16) then PCR_Extend(16, bank: H_bank(data)). */
int qtpm_pcr16_bind(qtpm *t, qhash_alg bank, const void *data, size_t len, qerr *err);
/* n PCR_Extend commands in one sequence (n <= QTPM_EXTEND_BATCH). *done (may be NULL) gets how many
 * were applied; after a timeout it is unknown (set to 0): read the PCR again to know. */
#define QTPM_EXTEND_BATCH 64
int qtpm_pcr_extend(qtpm *t, unsigned pcr, const qtpm_digests *d, size_t n, size_t *done, qerr *err);
/* Read the PCRs in mask (bit i = PCR i) of one bank. A bank not active for a selected PCR is an
 * error naming it. */
int qtpm_pcr_read(qtpm *t, qhash_alg bank, uint32_t mask, qpcrblob *out, qerr *err);
/* Quote the PCRs in mask of one bank with the AK; nonce up to QQUOTE_NONCE_MAX bytes. The values
 * are read after the quote and must hash to its pcrDigest (retried up to 5 times otherwise). */
int qtpm_quote(qtpm *t, qhash_alg bank, uint32_t mask, const uint8_t *nonce, size_t nonce_len,
               qtpm_quote_out *out, qerr *err);

#endif
