/* swquote.h — test-only, header-only: quotes made and signed in software, the way a TPM would
 * (an RSA-2048 or ECC P-256 "AK" wrapped as TPM2B_PUBLIC, TPMS_ATTEST and TPMT_SIGNATURE marshalled with
 * tss2-mu, the PCR blob from qpcrblob_build, the string from qquote_build), plus a software PCR
 * bank replaying IMA lines and the PCR 16 payload-key binding.
 * Shared by tests/unit/test_attest.c, tests/tools/fake_agent.c and the fleet simulator. Every function returns 0 / a
 * pointer on success and -1 / NULL on failure; nothing here asserts or exits. */
#ifndef QUINCE_TESTS_SWQUOTE_H
#define QUINCE_TESTS_SWQUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include "b64.h"
#include "hex.h"
#include "ima_entry.h"
#include "pcr_bank.h"
#include "quote.h"

#define SWQ_AK_ATTRS (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | \
                      TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH)

typedef struct swq_key {
    EVP_PKEY *pkey;
    uint8_t pub[1024];          /* marshalled TPM2B_PUBLIC */
    size_t pub_len;
    char *pub_b64;              /* its base64 (the registrar's aik_tpm) */
    uint8_t name[QTPM_NAME_MAX];
    size_t name_len;
} swq_key;

static inline void swq_key_free(swq_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k->pub_b64);
    memset(k, 0, sizeof *k);
}

/* Wraps pkey (taken over, freed on failure too) as an AK: RSA-2048 with RSASSA-SHA256, or
 * ECC P-256 with ECDSA-SHA256. */
static inline int swq_key_from_pkey(swq_key *k, EVP_PKEY *pkey)
{
    memset(k, 0, sizeof *k);
    k->pkey = pkey;
    if (!k->pkey)
        return -1;
    TPM2B_PUBLIC pub;
    memset(&pub, 0, sizeof pub);
    TPMT_PUBLIC *p = &pub.publicArea;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = SWQ_AK_ATTRS;
    BIGNUM *n = NULL, *y = NULL;
    int ok;
    if (EVP_PKEY_is_a(pkey, "EC")) {
        p->type = TPM2_ALG_ECC;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
        p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        p->unique.ecc.x.size = 32;
        p->unique.ecc.y.size = 32;
        ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &n) == 1 &&
             EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 &&
             BN_bn2binpad(n, p->unique.ecc.x.buffer, 32) == 32 && BN_bn2binpad(y, p->unique.ecc.y.buffer, 32) == 32;
    } else {
        p->type = TPM2_ALG_RSA;
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
        p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
        p->parameters.rsaDetail.keyBits = 2048;
        p->parameters.rsaDetail.exponent = 0;
        p->unique.rsa.size = 256;
        ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
             BN_bn2binpad(n, p->unique.rsa.buffer, 256) == 256;
    }
    BN_free(n);
    BN_free(y);
    if (!ok)
        goto fail;
    size_t off = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, k->pub, sizeof k->pub, &off) != TSS2_RC_SUCCESS)
        goto fail;
    k->pub_len = off;
    k->pub_b64 = qb64_encode_alloc(k->pub, k->pub_len);
    if (!k->pub_b64 || qtpmpub_name(&pub, k->name, sizeof k->name, &k->name_len, NULL) < 0)
        goto fail;
    return 0;
fail:
    swq_key_free(k);
    return -1;
}

/* A fresh RSA-2048 AK with RSASSA-SHA256 as its scheme. */
static inline int swq_key_new(swq_key *k)
{
    return swq_key_from_pkey(k, EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
}

/* The TPMT_SIGNATURE of a DER signature by key (RSASSA, or ECDSA with r and s 32 bytes wide). */
static inline int swq_signature(const swq_key *key, qhash_alg bank, const uint8_t *der, size_t dlen,
                                TPMT_SIGNATURE *sig)
{
    memset(sig, 0, sizeof *sig);
    if (EVP_PKEY_is_a(key->pkey, "EC")) {
        const uint8_t *q = der;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)dlen);
        int ok = es != NULL;
        sig->sigAlg = TPM2_ALG_ECDSA;
        sig->signature.ecdsa.hash = qhash_tpm_id(bank);
        sig->signature.ecdsa.signatureR.size = 32;
        sig->signature.ecdsa.signatureS.size = 32;
        ok = ok && BN_bn2binpad(ECDSA_SIG_get0_r(es), sig->signature.ecdsa.signatureR.buffer, 32) == 32 &&
             BN_bn2binpad(ECDSA_SIG_get0_s(es), sig->signature.ecdsa.signatureS.buffer, 32) == 32;
        ECDSA_SIG_free(es);
        return ok ? 0 : -1;
    }
    if (dlen > sizeof sig->signature.rsassa.sig.buffer)
        return -1;
    sig->sigAlg = TPM2_ALG_RSASSA;
    sig->signature.rsassa.hash = qhash_tpm_id(bank);
    sig->signature.rsassa.sig.size = (uint16_t)dlen;
    memcpy(sig->signature.rsassa.sig.buffer, der, dlen);
    return 0;
}

/* What a quote says. */
typedef struct swq_spec {
    const swq_key *key;         /* signs */
    const char *nonce;          /* extraData (ASCII bytes) */
    qhash_alg bank;             /* bank of the selection, the values and the signature hash */
    const qpcrblob *pcrs;       /* selected PCRs and values (pcrs->bank must equal bank) */
    uint32_t blob_mask;         /* 0: the blob selects pcrs->mask; else relabel the same values */
    qclockinfo clock;
} swq_spec;

/* The malloc'd quote string. */
static inline char *swq_quote(const swq_spec *s)
{
    size_t hs = qhash_size(s->bank);
    if (!hs || !s->pcrs || s->pcrs->bank != s->bank || !s->nonce || strlen(s->nonce) > QQUOTE_NONCE_MAX)
        return NULL;
    uint8_t digest[QHASH_MAX_SIZE];
    if (qpcrblob_digest(s->pcrs, s->bank, NULL, digest, NULL) < 0)
        return NULL;

    TPMS_ATTEST a;
    memset(&a, 0, sizeof a);
    a.magic = TPM2_GENERATED_VALUE;
    a.type = TPM2_ST_ATTEST_QUOTE;
    a.qualifiedSigner.size = (uint16_t)s->key->name_len;
    memcpy(a.qualifiedSigner.name, s->key->name, s->key->name_len);
    a.extraData.size = (uint16_t)strlen(s->nonce);
    memcpy(a.extraData.buffer, s->nonce, a.extraData.size);
    a.clockInfo.clock = s->clock.clock;
    a.clockInfo.resetCount = s->clock.reset_count;
    a.clockInfo.restartCount = s->clock.restart_count;
    a.clockInfo.safe = s->clock.safe;
    a.firmwareVersion = 0x2023031500000001ull;
    TPMS_QUOTE_INFO *qi = &a.attested.quote;
    qi->pcrSelect.count = 1;
    qi->pcrSelect.pcrSelections[0].hash = qhash_tpm_id(s->bank);
    qi->pcrSelect.pcrSelections[0].sizeofSelect = 3;
    for (int i = 0; i < 3; i++)
        qi->pcrSelect.pcrSelections[0].pcrSelect[i] = (uint8_t)(s->pcrs->mask >> (8 * i));
    qi->pcrDigest.size = (uint16_t)hs;
    memcpy(qi->pcrDigest.buffer, digest, hs);
    uint8_t attest[QQUOTE_ATTEST_MAX];
    size_t alen = 0;
    if (Tss2_MU_TPMS_ATTEST_Marshal(&a, attest, sizeof attest, &alen) != TSS2_RC_SUCCESS)
        return NULL;

    uint8_t der[512];
    size_t dlen = sizeof der;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, qhash_md(s->bank), NULL, s->key->pkey) == 1 &&
             EVP_DigestSign(ctx, der, &dlen, attest, alen) == 1;
    EVP_MD_CTX_free(ctx);
    TPMT_SIGNATURE sig;
    if (!ok || swq_signature(s->key, s->bank, der, dlen, &sig) < 0)
        return NULL;
    uint8_t sigbuf[QQUOTE_SIG_MAX];
    size_t slen = 0;
    if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, sigbuf, sizeof sigbuf, &slen) != TSS2_RC_SUCCESS)
        return NULL;

    qpcrblob blob = *s->pcrs;
    if (s->blob_mask) {
        /* Same values in the same order, labelled with other PCR indexes. */
        qpcrblob re;
        memset(&re, 0, sizeof re);
        re.bank = blob.bank;
        re.mask = s->blob_mask;
        int j = 0;
        for (int i = 0; i < QQUOTE_NUM_PCRS; i++) {
            if (!(s->blob_mask & (1u << i)))
                continue;
            while (j < QQUOTE_NUM_PCRS && !(blob.mask & (1u << j)))
                j++;
            if (j < QQUOTE_NUM_PCRS)
                memcpy(re.value[i], blob.value[j++], hs);
        }
        blob = re;
    }
    uint8_t pb[QPCRBLOB_MAX];
    size_t plen = 0;
    if (qpcrblob_build(&blob, pb, sizeof pb, &plen, NULL) < 0)
        return NULL;
    return qquote_build(attest, alen, sigbuf, slen, pb, plen, NULL);
}

/* PCR 16 as the agent sets it: reset, then extend H(pem). */
static inline int swq_pcr16(qhash_alg bank, const char *pem, uint8_t *out)
{
    return qquote_pcr16_expected(bank, pem, strlen(pem), out, NULL);
}

/* Replay up to max_lines non-empty lines of an IMA list onto *p (the kernel's PCR 10 extends:
 * bank digest of the template data, all-ones for a violation). *consumed gets the bytes used
 * (complete lines only), *lines the lines replayed. Unparsable lines are skipped. */
static inline int swq_replay(qpcr *p, const char *list, size_t len, uint64_t max_lines, size_t *consumed,
                             uint64_t *lines)
{
    uint8_t *scratch = malloc(QIMA_SCRATCH_SIZE), *td = malloc(QIMA_SCRATCH_SIZE);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = (scratch && td && ctx) ? 0 : -1;
    size_t off = 0;
    uint64_t n = 0;
    while (rc == 0 && off < len && n < max_lines) {
        const char *nl = memchr(list + off, '\n', len - off);
        if (!nl)
            break;
        size_t ll = (size_t)(nl - (list + off));
        qima_entry e;
        if (ll > 0 && qima_parse_line(list + off, ll, &e, scratch, NULL) == 0) {
            uint8_t d[QHASH_MAX_SIZE];
            long tl = qima_template_data(&e, td, QIMA_SCRATCH_SIZE);
            if (qima_is_violation(&e))
                rc = qpcr_extend_ff(p, ctx);
            else if (tl < 0 || qhash_digest(ctx, p->alg, td, (size_t)tl, d) < 0 || qpcr_extend(p, ctx, d) < 0)
                rc = -1;
        }
        off += ll + 1;
        if (ll > 0)
            n++;
    }
    free(scratch);
    free(td);
    EVP_MD_CTX_free(ctx);
    if (consumed)
        *consumed = off;
    if (lines)
        *lines = n;
    return rc;
}

/* One ima-ng line (with '\n') for path with the sha256 file digest fd, its sha1 template hash
 * computed as the kernel does. Returns the length written, or -1. */
static inline int swq_ima_line(char *out, size_t cap, const char *path, const uint8_t fd[32])
{
    char fhex[65], thex[41];
    qhex_encode(fd, 32, fhex);
    memset(thex, '1', 40);
    thex[40] = '\0';
    int n = snprintf(out, cap, "10 %s ima-ng sha256:%s %s", thex, fhex, path);
    if (n < 0 || (size_t)n + 2 > cap)
        return -1;
    uint8_t *scratch = malloc(QIMA_SCRATCH_SIZE), *td = malloc(QIMA_SCRATCH_SIZE);
    qima_entry e;
    long tl = -1;
    if (scratch && td && qima_parse_line(out, (size_t)n, &e, scratch, NULL) == 0)
        tl = qima_template_data(&e, td, QIMA_SCRATCH_SIZE);
    uint8_t th[20];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = tl >= 0 && ctx && qhash_digest(ctx, QHASH_SHA1, td, (size_t)tl, th) == 0;
    EVP_MD_CTX_free(ctx);
    free(scratch);
    free(td);
    if (!ok)
        return -1;
    qhex_encode(th, 20, thex);
    memcpy(out + 3, thex, 40);
    out[n] = '\n';
    out[n + 1] = '\0';
    return n + 1;
}

#endif
