/* tpm_keys.c — the EK (TCG default templates L-1/L-2 or a persistent handle), the policy session
 * that authorises it (PolicySecret(endorsement)) and its certificate in NV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509.h>
#include <tss2/tss2_rc.h>

#include "tpm_int.h"

/* TCG EK Credential Profile: PolicySecret(TPM_RH_ENDORSEMENT), SHA-256 ("policy A"). */
static const uint8_t ek_policy_a_sha256[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

static bool rc_is_tpm(TSS2_RC rc, TPM2_RC code)
{
    if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER)
        return false;
    if (rc & TPM2_RC_FMT1)
        return (rc & 0x3f) == (code & 0x3f) && (code & TPM2_RC_FMT1);
    return (rc & 0xfff) == code;
}

/* ---- EK ------------------------------------------------------------------------------------ */

static void ek_template(qtpm_key_type type, TPM2B_PUBLIC *in)
{
    memset(in, 0, sizeof(*in));
    TPMT_PUBLIC *p = &in->publicArea;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                          TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    p->authPolicy.size = sizeof(ek_policy_a_sha256);
    memcpy(p->authPolicy.buffer, ek_policy_a_sha256, sizeof(ek_policy_a_sha256));
    if (type == QTPM_KEY_ECC_P256) {           /* L-2 */
        p->type = TPM2_ALG_ECC;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.eccDetail.symmetric.keyBits.aes = 128;
        p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        p->unique.ecc.x.size = 32;
        p->unique.ecc.y.size = 32;
    } else {                                   /* L-1 */
        p->type = TPM2_ALG_RSA;
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
        p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.rsaDetail.keyBits = 2048;
        p->parameters.rsaDetail.exponent = 0;
        p->unique.rsa.size = 256;
    }
}

int qtpm__ek_load(ESYS_CONTEXT *esys, qtpm_job *j, ESYS_TR *ek, TPM2B_PUBLIC *pub_out)
{
    TSS2_RC rc;
    *ek = ESYS_TR_NONE;
    if (j->cfg.ek_handle) {
        rc = Esys_TR_FromTPMPublic(esys, j->cfg.ek_handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ek);
        if (rc != TSS2_RC_SUCCESS) {
            char what[64];
            snprintf(what, sizeof(what), "persistent EK 0x%08x", j->cfg.ek_handle);
            return qtpm__rc(j, what, rc);
        }
        qtpm__track(j, *ek, true);
        if (pub_out) {
            TPM2B_PUBLIC *pub = NULL;
            rc = Esys_ReadPublic(esys, *ek, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL, NULL);
            if (rc != TSS2_RC_SUCCESS)
                return qtpm__rc(j, "TPM2_ReadPublic(EK)", rc);
            *pub_out = *pub;
            Esys_Free(pub);
        }
        return 0;
    }
    TPM2B_SENSITIVE_CREATE sens = { 0 };
    TPM2B_PUBLIC tmpl;
    TPM2B_DATA outside = { 0 };
    TPML_PCR_SELECTION creation_pcr = { 0 };
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_CREATION_DATA *cd = NULL;
    TPM2B_DIGEST *ch = NULL;
    TPMT_TK_CREATION *ct = NULL;
    ek_template(j->cfg.ek_type, &tmpl);
    rc = Esys_CreatePrimary(esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                            &tmpl, &outside, &creation_pcr, ek, &pub, &cd, &ch, &ct);
    if (rc != TSS2_RC_SUCCESS) {
        *ek = ESYS_TR_NONE;
        return qtpm__rc(j, "TPM2_CreatePrimary(EK)", rc);
    }
    qtpm__track(j, *ek, false);
    if (pub_out)
        *pub_out = *pub;
    Esys_Free(pub);
    Esys_Free(cd);
    Esys_Free(ch);
    Esys_Free(ct);
    return 0;
}

/* A policy session (continued, so it is flushed by the job, never by surprise). */
int qtpm__ek_session(ESYS_CONTEXT *esys, qtpm_job *j, ESYS_TR *sess)
{
    TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB };
    TSS2_RC rc = Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, sess);
    if (rc != TSS2_RC_SUCCESS) {
        *sess = ESYS_TR_NONE;
        return qtpm__rc(j, "TPM2_StartAuthSession(policy)", rc);
    }
    qtpm__track(j, *sess, false);
    rc = Esys_TRSess_SetAttributes(esys, *sess, TPMA_SESSION_CONTINUESESSION, 0xff);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "Esys_TRSess_SetAttributes", rc);
    return 0;
}

/* PolicySecret(ENDORSEMENT) on the session: satisfies the EK's policy A for one command. */
int qtpm__ek_policy(ESYS_CONTEXT *esys, qtpm_job *j, ESYS_TR sess)
{
    TPM2B_NONCE nonce = { 0 };
    TPM2B_DIGEST cp = { 0 };
    TPM2B_NONCE ref = { 0 };
    TPM2B_TIMEOUT *to = NULL;
    TPMT_TK_AUTH *tk = NULL;
    TSS2_RC rc = Esys_PolicySecret(esys, ESYS_TR_RH_ENDORSEMENT, sess, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, &nonce, &cp, &ref, 0, &to, &tk);
    Esys_Free(to);
    Esys_Free(tk);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "TPM2_PolicySecret(endorsement)", rc);
    return 0;
}

/* ---- EK public and certificate ------------------------------------------------------------- */

static int job_ek_public(ESYS_CONTEXT *esys, qtpm_job *j)
{
    ESYS_TR ek;
    return qtpm__ek_load(esys, j, &ek, &j->u.ek_pub);
}

int qtpm_ek_public(qtpm *t, TPM2B_PUBLIC *out, qerr *err)
{
    pthread_mutex_lock(&t->mu);
    int rc = 0;
    if (!t->have_ek) {
        qtpm_job *j = qtpm__job_new(t, job_ek_public, err);
        rc = j ? qtpm__run(t, &j, err) : -1;
        if (rc == 0) {
            t->ek_pub = j->u.ek_pub;
            t->have_ek = true;
        }
        qtpm__job_release(j);
    }
    if (rc == 0)
        *out = t->ek_pub;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static uint32_t nv_buffer_max(ESYS_CONTEXT *esys)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    uint32_t v = 512;
    if (Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                           TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap) == TSS2_RC_SUCCESS) {
        if (cap->data.tpmProperties.count == 1 &&
            cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX &&
            cap->data.tpmProperties.tpmProperty[0].value > 0)
            v = cap->data.tpmProperties.tpmProperty[0].value;
        Esys_Free(cap);
    }
    return v > sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer) ? sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer) : v;
}

static int job_ek_cert(ESYS_CONTEXT *esys, qtpm_job *j)
{
    ESYS_TR nv = ESYS_TR_NONE;
    char what[64];
    /* Is the index defined? (Asking first keeps ESAPI from logging an error for a missing one.) */
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    TSS2_RC rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                    j->u.cert.index, 1, &more, &cap);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "TPM2_GetCapability(NV indices)", rc);
    bool present = cap->data.handles.count == 1 && cap->data.handles.handle[0] == j->u.cert.index;
    Esys_Free(cap);
    if (!present) {
        j->u.cert.absent = true;
        return 0;
    }
    rc = Esys_TR_FromTPMPublic(esys, j->u.cert.index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
    if (rc != TSS2_RC_SUCCESS) {
        if (rc_is_tpm(rc, TPM2_RC_HANDLE)) {
            j->u.cert.absent = true;
            return 0;
        }
        snprintf(what, sizeof(what), "NV index 0x%08x", j->u.cert.index);
        return qtpm__rc(j, what, rc);
    }
    qtpm__track(j, nv, true);
    TPM2B_NV_PUBLIC *pub = NULL;
    rc = Esys_NV_ReadPublic(esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        snprintf(what, sizeof(what), "TPM2_NV_ReadPublic(0x%08x)", j->u.cert.index);
        return qtpm__rc(j, what, rc);
    }
    size_t total = pub->nvPublic.dataSize;
    Esys_Free(pub);
    if (total > sizeof(j->u.cert.data))
        return qerr_set(&j->err, "NV index 0x%08x holds %zu bytes, more than %zu", j->u.cert.index, total,
                        sizeof(j->u.cert.data));
    uint32_t chunk = nv_buffer_max(esys);
    size_t off = 0;
    while (off < total) {
        if (!qtpm__alive(j))
            return qtpm__abandoned(j);
        UINT16 n = (UINT16)(total - off < chunk ? total - off : chunk);
        TPM2B_MAX_NV_BUFFER *data = NULL;
        rc = Esys_NV_Read(esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n, (UINT16)off, &data);
        if (rc != TSS2_RC_SUCCESS) {
            snprintf(what, sizeof(what), "TPM2_NV_Read(0x%08x, offset %zu)", j->u.cert.index, off);
            return qtpm__rc(j, what, rc);
        }
        if (data->size == 0 || data->size > n) {
            Esys_Free(data);
            return qerr_set(&j->err, "TPM2_NV_Read(0x%08x) returned %u bytes for %u", j->u.cert.index,
                            (unsigned)data->size, (unsigned)n);
        }
        memcpy(j->u.cert.data + off, data->buffer, data->size);
        off += data->size;
        Esys_Free(data);
    }
    j->u.cert.len = total;
    return 0;
}

/* The DER certificate without NV padding (re-encoded by OpenSSL; raw bytes if it does not parse). */
static size_t strip_padding(uint8_t *d, size_t n)
{
    const unsigned char *p = d;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    if (!x)
        return n;
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    X509_free(x);
    if (len > 0 && (size_t)len <= n) {
        memcpy(d, der, (size_t)len);
        n = (size_t)len;
    }
    OPENSSL_free(der);
    return n;
}

int qtpm_ek_cert(qtpm *t, uint32_t nv_index, uint8_t *out, size_t cap, size_t *len, qerr *err)
{
    pthread_mutex_lock(&t->mu);
    qtpm_job *j = qtpm__job_new(t, job_ek_cert, err);
    int rc = -1;
    if (j) {
        j->u.cert.index = nv_index ? nv_index
                          : t->cfg.ek_type == QTPM_KEY_ECC_P256 ? QTPM_EK_CERT_NV_ECC : QTPM_EK_CERT_NV_RSA;
        rc = qtpm__run(t, &j, err);
    }
    if (rc == 0 && j->u.cert.absent) {
        rc = 1;
    } else if (rc == 0) {
        size_t n = strip_padding(j->u.cert.data, j->u.cert.len);
        if (n > cap)
            rc = qerr_set(err, "EK certificate (%zu bytes) larger than the buffer (%zu)", n, cap);
        else {
            memcpy(out, j->u.cert.data, n);
            *len = n;
        }
    }
    qtpm__job_release(j);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

