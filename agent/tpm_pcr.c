/* tpm_pcr.c — PCR reset, extend and read; quotes with the AK. */
#include <string.h>
#include <tss2/tss2_mu.h>

#include "tpm_int.h"

#define QUOTE_ATTEMPTS 5

static bool bank_ok(qhash_alg a)
{
    return a >= 0 && a < QHASH_COUNT;
}

static int digests_to_tpml(const qtpm_digests *d, TPML_DIGEST_VALUES *v, qerr *err)
{
    memset(v, 0, sizeof(*v));
    if (d->count == 0 || d->count > QHASH_COUNT)
        return qerr_set(err, "PCR extend needs 1..%d digests, got %u", QHASH_COUNT, d->count);
    for (unsigned i = 0; i < d->count; i++) {
        if (!bank_ok(d->alg[i]))
            return qerr_set(err, "PCR extend: unknown bank %d", (int)d->alg[i]);
        v->digests[i].hashAlg = qhash_tpm_id(d->alg[i]);
        memcpy((uint8_t *)&v->digests[i].digest, d->value[i], qhash_size(d->alg[i]));
    }
    v->count = d->count;
    return 0;
}

/* ---- reset / extend ------------------------------------------------------------------------ */

static int job_reset(ESYS_CONTEXT *esys, qtpm_job *j)
{
    unsigned pcr = j->u.reset.pcr;
    TSS2_RC rc = Esys_PCR_Reset(esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS) {
        char what[48];
        snprintf(what, sizeof(what), "TPM2_PCR_Reset(%u)", pcr);
        return qtpm__rc(j, what, rc);
    }
    if (!j->u.reset.bind)
        return 0;
    TPML_DIGEST_VALUES v;
    if (digests_to_tpml(&j->u.reset.d, &v, &j->err) != 0)
        return -1;
    rc = Esys_PCR_Extend(esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v);
    if (rc != TSS2_RC_SUCCESS) {
        char what[48];
        snprintf(what, sizeof(what), "TPM2_PCR_Extend(%u)", pcr);
        return qtpm__rc(j, what, rc);
    }
    return 0;
}

static int run_reset(qtpm *t, unsigned pcr, const qtpm_digests *bind, qerr *err)
{
    if (pcr >= QQUOTE_NUM_PCRS)
        return qerr_set(err, "no PCR %u", pcr);
    pthread_mutex_lock(&t->mu);
    qtpm_job *j = qtpm__job_new(t, job_reset, err);
    int rc = -1;
    if (j) {
        j->u.reset.pcr = pcr;
        if (bind) {
            j->u.reset.bind = true;
            j->u.reset.d = *bind;
        }
        rc = qtpm__run(t, &j, err);
    }
    qtpm__job_release(j);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int qtpm_pcr_reset(qtpm *t, unsigned pcr, qerr *err)
{
    return run_reset(t, pcr, NULL, err);
}

int qtpm_pcr16_bind(qtpm *t, qhash_alg bank, const void *data, size_t len, qerr *err)
{
    if (!bank_ok(bank))
        return qerr_set(err, "unknown PCR bank %d", (int)bank);
    qtpm_digests d = { .count = 1, .alg = { bank } };
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = ctx ? qhash_digest(ctx, bank, data, len, d.value[0]) : -1;
    EVP_MD_CTX_free(ctx);
    if (rc != 0)
        return qerr_set(err, "cannot hash the PCR 16 data with %s", qhash_name(bank));
    return run_reset(t, 16, &d, err);
}

static int job_extend(ESYS_CONTEXT *esys, qtpm_job *j)
{
    unsigned pcr = j->u.ext.pcr;
    for (size_t i = 0; i < j->u.ext.n; i++) {
        if (!qtpm__alive(j))
            return qtpm__abandoned(j);
        TPML_DIGEST_VALUES v;
        if (digests_to_tpml(&j->u.ext.d[i], &v, &j->err) != 0)
            return -1;
        TSS2_RC rc = Esys_PCR_Extend(esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v);
        if (rc != TSS2_RC_SUCCESS) {
            char what[48];
            snprintf(what, sizeof(what), "TPM2_PCR_Extend(%u)", pcr);
            return qtpm__rc(j, what, rc);
        }
        j->u.ext.done++;
    }
    return 0;
}

int qtpm_pcr_extend(qtpm *t, unsigned pcr, const qtpm_digests *d, size_t n, size_t *done, qerr *err)
{
    if (done)
        *done = 0;
    if (pcr >= QQUOTE_NUM_PCRS)
        return qerr_set(err, "no PCR %u", pcr);
    if (n > QTPM_EXTEND_BATCH)
        return qerr_set(err, "at most %d extends per call, got %zu", QTPM_EXTEND_BATCH, n);
    if (n == 0)
        return 0;
    pthread_mutex_lock(&t->mu);
    qtpm_job *j = qtpm__job_new(t, job_extend, err);
    int rc = -1;
    if (j) {
        j->u.ext.pcr = pcr;
        j->u.ext.n = n;
        memcpy(j->u.ext.d, d, n * sizeof(*d));
        rc = qtpm__run(t, &j, err);
    }
    if (j && done)
        *done = j->u.ext.done;
    qtpm__job_release(j);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* ---- read ---------------------------------------------------------------------------------- */

static void selection(qhash_alg bank, uint32_t mask, TPML_PCR_SELECTION *s)
{
    memset(s, 0, sizeof(*s));
    s->count = 1;
    s->pcrSelections[0].hash = qhash_tpm_id(bank);
    s->pcrSelections[0].sizeofSelect = 3;
    for (int b = 0; b < 3; b++)
        s->pcrSelections[0].pcrSelect[b] = (uint8_t)(mask >> (8 * b));
}

static void mask_text(uint32_t m, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < QQUOTE_NUM_PCRS && n + 4 < cap; i++)
        if (m & (1u << i))
            n += (size_t)snprintf(out + n, cap - n, "%s%d", n ? "," : "", i);
}

/* PCR_Read returns at most 8 digests per call: repeat with what is left. */
static int read_bank(ESYS_CONTEXT *esys, qtpm_job *j, qhash_alg bank, uint32_t mask, qpcrblob *out)
{
    memset(out, 0, sizeof(*out));
    out->bank = bank;
    out->mask = mask;
    size_t dsz = qhash_size(bank);
    uint16_t id = qhash_tpm_id(bank);
    uint32_t left = mask;
    while (left) {
        TPML_PCR_SELECTION sel, *so = NULL;
        TPML_DIGEST *vals = NULL;
        UINT32 upd;
        selection(bank, left, &sel);
        TSS2_RC rc = Esys_PCR_Read(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &upd, &so, &vals);
        if (rc != TSS2_RC_SUCCESS)
            return qtpm__rc(j, "TPM2_PCR_Read", rc);
        uint32_t got = 0;
        for (UINT32 i = 0; i < so->count; i++) {
            if (so->pcrSelections[i].hash != id)
                continue;
            for (int b = 0; b < so->pcrSelections[i].sizeofSelect && b < 3; b++)
                got |= (uint32_t)so->pcrSelections[i].pcrSelect[b] << (8 * b);
        }
        got &= left;
        int ret = 0;
        UINT32 k = 0;
        for (int i = 0; i < QQUOTE_NUM_PCRS && ret == 0; i++) {
            if (!(got & (1u << i)))
                continue;
            if (k >= vals->count || vals->digests[k].size != dsz)
                ret = qerr_set(&j->err, "TPM2_PCR_Read: bad digest for %s PCR %d", qhash_name(bank), i);
            else
                memcpy(out->value[i], vals->digests[k++].buffer, dsz);
        }
        Esys_Free(so);
        Esys_Free(vals);
        if (ret != 0)
            return -1;
        if (got == 0) {
            char txt[80];
            mask_text(left, txt, sizeof(txt));
            return qerr_set(&j->err, "the TPM has no active %s bank for PCR %s", qhash_name(bank), txt);
        }
        left &= ~got;
    }
    return 0;
}

static int job_read(ESYS_CONTEXT *esys, qtpm_job *j)
{
    return read_bank(esys, j, j->u.read.bank, j->u.read.mask, &j->u.read.out);
}

static int check_sel(qhash_alg bank, uint32_t mask, qerr *err)
{
    if (!bank_ok(bank))
        return qerr_set(err, "unknown PCR bank %d", (int)bank);
    if (mask == 0 || (mask >> QQUOTE_NUM_PCRS) != 0)
        return qerr_set(err, "PCR mask 0x%x selects no PCR or PCRs above 23", mask);
    return 0;
}

int qtpm_pcr_read(qtpm *t, qhash_alg bank, uint32_t mask, qpcrblob *out, qerr *err)
{
    if (check_sel(bank, mask, err) != 0)
        return -1;
    pthread_mutex_lock(&t->mu);
    qtpm_job *j = qtpm__job_new(t, job_read, err);
    int rc = -1;
    if (j) {
        j->u.read.bank = bank;
        j->u.read.mask = mask;
        rc = qtpm__run(t, &j, err);
    }
    if (rc == 0)
        *out = j->u.read.out;
    qtpm__job_release(j);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* ---- quote --------------------------------------------------------------------------------- */

/* Does H(values) equal the attestation's pcrDigest (H = the signature's hash)? 1 yes, 0 no, -1 error. */
static int digest_matches(qtpm_job *j, const TPM2B_ATTEST *quoted, const TPMT_SIGNATURE *sig, const qpcrblob *p)
{
    TPMS_ATTEST a;
    size_t off = 0;
    TSS2_RC rc = Tss2_MU_TPMS_ATTEST_Unmarshal(quoted->attestationData, quoted->size, &off, &a);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "unmarshalling the quote's TPMS_ATTEST", rc);
    qhash_alg h;
    if (qhash_from_tpm_id(sig->signature.any.hashAlg, &h) != 0)
        return qerr_set(&j->err, "quote signed with unsupported hash 0x%04x", sig->signature.any.hashAlg);
    uint8_t cat[QQUOTE_NUM_PCRS * QHASH_MAX_SIZE], md[QHASH_MAX_SIZE];
    size_t n = 0, dsz = qhash_size(p->bank);
    for (int i = 0; i < QQUOTE_NUM_PCRS; i++)
        if (p->mask & (1u << i)) {
            memcpy(cat + n, p->value[i], dsz);
            n += dsz;
        }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx ? qhash_digest(ctx, h, cat, n, md) : -1;
    EVP_MD_CTX_free(ctx);
    if (ok != 0)
        return qerr_set(&j->err, "cannot hash the quoted PCR values");
    const TPM2B_DIGEST *d = &a.attested.quote.pcrDigest;
    return d->size == qhash_size(h) && memcmp(d->buffer, md, d->size) == 0;
}

static int job_quote(ESYS_CONTEXT *esys, qtpm_job *j)
{
    ESYS_TR ak;
    if (qtpm__ak_load(esys, j, &ak) != 0)
        return -1;
    qtpm_quote_out *o = &j->u.quote.out;
    TPML_PCR_SELECTION sel;
    selection(j->u.quote.bank, j->u.quote.mask, &sel);
    TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
    for (int attempt = 0; attempt < QUOTE_ATTEMPTS; attempt++) {
        if (!qtpm__alive(j))
            return qtpm__abandoned(j);
        TPM2B_ATTEST *quoted = NULL;
        TPMT_SIGNATURE *sig = NULL;
        TSS2_RC rc = Esys_Quote(esys, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &j->u.quote.nonce,
                                &scheme, &sel, &quoted, &sig);
        if (rc != TSS2_RC_SUCCESS)
            return qtpm__rc(j, "TPM2_Quote", rc);
        int ret = 0;
        size_t off = 0;
        if (quoted->size > sizeof(o->attest))
            ret = qerr_set(&j->err, "TPM2_Quote: attestation of %u bytes", (unsigned)quoted->size);
        else if ((rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, o->sig, sizeof(o->sig), &off)) != TSS2_RC_SUCCESS)
            ret = qtpm__rc(j, "marshalling the quote signature", rc);
        if (ret == 0) {
            memcpy(o->attest, quoted->attestationData, quoted->size);
            o->attest_len = quoted->size;
            o->sig_len = off;
            ret = read_bank(esys, j, j->u.quote.bank, j->u.quote.mask, &o->pcrs);
        }
        if (ret == 0)
            ret = digest_matches(j, quoted, sig, &o->pcrs);
        Esys_Free(quoted);
        Esys_Free(sig);
        if (ret < 0)
            return -1;
        if (ret == 1)
            return 0;
    }
    return qerr_set(&j->err, "PCR values kept changing during %d quotes (pcrDigest mismatch)", QUOTE_ATTEMPTS);
}

int qtpm_quote(qtpm *t, qhash_alg bank, uint32_t mask, const uint8_t *nonce, size_t nonce_len,
               qtpm_quote_out *out, qerr *err)
{
    if (check_sel(bank, mask, err) != 0)
        return -1;
    if (nonce_len > QQUOTE_NONCE_MAX)
        return qerr_set(err, "nonce longer than %d bytes", QQUOTE_NONCE_MAX);
    pthread_mutex_lock(&t->mu);
    qtpm_job *j = qtpm__job_new(t, job_quote, err);
    int rc = -1;
    if (j) {
        j->u.quote.bank = bank;
        j->u.quote.mask = mask;
        j->u.quote.nonce.size = (UINT16)nonce_len;
        if (nonce_len)
            memcpy(j->u.quote.nonce.buffer, nonce, nonce_len);
        rc = qtpm__run(t, &j, err);
    }
    if (rc == 0) {
        *out = j->u.quote.out;
        t->ak = j->ak;
    }
    qtpm__job_release(j);
    pthread_mutex_unlock(&t->mu);
    return rc;
}
