/* tpm_ak.c — the AK: a restricted signing child of the EK (RSA 2048 RSASSA or ECC P-256 ECDSA),
 * created under a PolicySecret(endorsement) session, stored as marshalled TPM2B_PUBLIC +
 * TPM2B_PRIVATE (bound to the EK's name) and re-loaded after restarts; ActivateCredential. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "buf.h"
#include "tpm_int.h"

#define AK_FILE_MAGIC "QAK1"
#define AK_FILE_MAX   8192
#define CRED_MAGIC    0xBADCC0DEu

/* ---- AK ------------------------------------------------------------------------------------ */

static void ak_template(const qtpm_ak_params *p, TPM2B_PUBLIC *in)
{
    memset(in, 0, sizeof(*in));
    TPMT_PUBLIC *a = &in->publicArea;
    TPMI_ALG_HASH h = qhash_tpm_id(p->hash);
    a->nameAlg = h;
    a->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                          TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
    if (p->type == QTPM_KEY_ECC_P256) {
        a->type = TPM2_ALG_ECC;
        a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        a->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
        a->parameters.eccDetail.scheme.details.ecdsa.hashAlg = h;
        a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    } else {
        a->type = TPM2_ALG_RSA;
        a->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        a->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
        a->parameters.rsaDetail.scheme.details.rsassa.hashAlg = h;
        a->parameters.rsaDetail.keyBits = 2048;
        a->parameters.rsaDetail.exponent = 0;
    }
}

/* Load j->ak under the loaded EK, then save its context into j->ak.ctx. */
static int ak_load_under(ESYS_CONTEXT *esys, qtpm_job *j, ESYS_TR ek, ESYS_TR sess, ESYS_TR *ak, TSS2_RC *tpm_rc)
{
    *tpm_rc = TSS2_RC_SUCCESS;
    if (qtpm__ek_policy(esys, j, sess) != 0)
        return -1;
    TSS2_RC rc = Esys_Load(esys, ek, sess, ESYS_TR_NONE, ESYS_TR_NONE, &j->ak.priv, &j->ak.pub, ak);
    if (rc != TSS2_RC_SUCCESS) {
        *ak = ESYS_TR_NONE;
        *tpm_rc = rc;
        return qtpm__rc(j, "TPM2_Load(AK)", rc);
    }
    qtpm__track(j, *ak, false);
    TPM2B_NAME *name = NULL;
    rc = Esys_TR_GetName(esys, *ak, &name);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "Esys_TR_GetName(AK)", rc);
    j->ak.name = *name;
    Esys_Free(name);
    TPMS_CONTEXT *ctx = NULL;
    rc = Esys_ContextSave(esys, *ak, &ctx);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "TPM2_ContextSave(AK)", rc);
    j->ak.ctx = *ctx;
    j->ak.have_ctx = true;
    Esys_Free(ctx);
    return 0;
}

int qtpm__ak_load(ESYS_CONTEXT *esys, qtpm_job *j, ESYS_TR *ak)
{
    *ak = ESYS_TR_NONE;
    if (!j->ak.have)
        return qerr_set(&j->err, "no AK: qtpm_ak_ensure was not called");
    if (j->ak.have_ctx) {
        TSS2_RC rc = Esys_ContextLoad(esys, &j->ak.ctx, ak);
        if (rc == TSS2_RC_SUCCESS) {
            qtpm__track(j, *ak, false);
            return 0;
        }
        *ak = ESYS_TR_NONE;
        if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER)
            return qtpm__rc(j, "TPM2_ContextLoad(AK)", rc);
        j->ak.have_ctx = false;      /* stale (TPM reset): load it again under the EK */
    }
    ESYS_TR ek, sess;
    TSS2_RC trc;
    if (qtpm__ek_load(esys, j, &ek, NULL) != 0 || qtpm__ek_session(esys, j, &sess) != 0)
        return -1;
    if (ak_load_under(esys, j, ek, sess, ak, &trc) != 0)
        return -1;
    /* The EK and the session are not needed any more: free their slots now. */
    qtpm__untrack(j, sess);
    Esys_FlushContext(esys, sess);
    if (!j->cfg.ek_handle) {
        qtpm__untrack(j, ek);
        Esys_FlushContext(esys, ek);
    }
    return 0;
}

static int job_ak_ensure(ESYS_CONTEXT *esys, qtpm_job *j)
{
    ESYS_TR ek, sess, ak;
    TSS2_RC trc;
    if (qtpm__ek_load(esys, j, &ek, &j->u.akj.ek_pub) != 0)
        return -1;
    TPM2B_NAME *ekn = NULL;
    TSS2_RC rc = Esys_TR_GetName(esys, ek, &ekn);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "Esys_TR_GetName(EK)", rc);
    j->u.akj.ek_name = *ekn;
    Esys_Free(ekn);
    if (qtpm__ek_session(esys, j, &sess) != 0)
        return -1;
    const TPM2B_NAME *a = &j->u.akj.ek_name, *b = &j->u.akj.ek_name_file;
    if (j->u.akj.try_load && a->size == b->size && memcmp(a->name, b->name, a->size) == 0) {
        if (ak_load_under(esys, j, ek, sess, &ak, &trc) == 0)
            return 0;
        if (trc == TSS2_RC_SUCCESS || (trc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER)
            return -1;               /* not a refusal of the blob by the TPM */
        qerr_clear(&j->err);         /* the TPM refused the stored AK: make a new one */
    }
    if (!qtpm__alive(j))
        return qtpm__abandoned(j);
    if (qtpm__ek_policy(esys, j, sess) != 0)
        return -1;
    TPM2B_SENSITIVE_CREATE sens = { 0 };
    TPM2B_PUBLIC tmpl;
    TPM2B_DATA outside = { 0 };
    TPML_PCR_SELECTION creation_pcr = { 0 };
    TPM2B_PRIVATE *priv = NULL;
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_CREATION_DATA *cd = NULL;
    TPM2B_DIGEST *ch = NULL;
    TPMT_TK_CREATION *ct = NULL;
    ak_template(&j->ak.p, &tmpl);
    rc = Esys_Create(esys, ek, sess, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &creation_pcr,
                     &priv, &pub, &cd, &ch, &ct);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "TPM2_Create(AK)", rc);
    j->ak.priv = *priv;
    j->ak.pub = *pub;
    j->ak.have = true;
    j->ak.have_ctx = false;
    j->u.akj.created = true;
    Esys_Free(priv);
    Esys_Free(pub);
    Esys_Free(cd);
    Esys_Free(ch);
    Esys_Free(ct);
    if (!qtpm__alive(j))
        return qtpm__abandoned(j);
    return ak_load_under(esys, j, ek, sess, &ak, &trc);
}

/* File: "QAK1" u16 type u16 hashAlg, TPM2B_NAME (EK), TPM2B_PUBLIC, TPM2B_PRIVATE (Tss2_MU). */
static int ak_file_parse(const uint8_t *d, size_t n, qtpm_ak_params *p, TPM2B_NAME *ekname, TPM2B_PUBLIC *pub,
                         TPM2B_PRIVATE *priv)
{
    if (n < 8 || memcmp(d, AK_FILE_MAGIC, 4) != 0)
        return -1;
    uint16_t type = (uint16_t)(d[4] << 8 | d[5]), h = (uint16_t)(d[6] << 8 | d[7]);
    if (type > QTPM_KEY_ECC_P256 || qhash_from_tpm_id(h, &p->hash) != 0)
        return -1;
    p->type = (qtpm_key_type)type;
    size_t off = 8;
    memset(ekname, 0, sizeof(*ekname));
    memset(pub, 0, sizeof(*pub));
    memset(priv, 0, sizeof(*priv));
    if (Tss2_MU_TPM2B_NAME_Unmarshal(d, n, &off, ekname) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PUBLIC_Unmarshal(d, n, &off, pub) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Unmarshal(d, n, &off, priv) != TSS2_RC_SUCCESS || off != n)
        return -1;
    return 0;
}

static int write_all_fd(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int ak_file_write(const char *path, const qtpm_akmat *ak, const TPM2B_NAME *ekname, qerr *err)
{
    uint8_t buf[AK_FILE_MAX];
    size_t off = 8;
    memcpy(buf, AK_FILE_MAGIC, 4);
    uint16_t h = qhash_tpm_id(ak->p.hash);
    buf[4] = 0;
    buf[5] = (uint8_t)ak->p.type;
    buf[6] = (uint8_t)(h >> 8);
    buf[7] = (uint8_t)h;
    if (Tss2_MU_TPM2B_NAME_Marshal(ekname, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PUBLIC_Marshal(&ak->pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Marshal(&ak->priv, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
        return qerr_set(err, "cannot marshal the AK for %s", path);
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return qerr_set(err, "AK path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return qerr_set(err, "cannot create %s: %s", tmp, strerror(errno));
    if (fchmod(fd, 0600) != 0 || write_all_fd(fd, buf, off) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return qerr_set(err, "cannot write %s: %s", tmp, strerror(e));
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return qerr_set(err, "cannot store the AK as %s: %s", path, strerror(e));
    }
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

int qtpm_ak_ensure(qtpm *t, const char *path, const qtpm_ak_params *p, bool *created, qerr *err)
{
    if (p->type != QTPM_KEY_RSA2048 && p->type != QTPM_KEY_ECC_P256)
        return qerr_set(err, "unknown AK key type %d", (int)p->type);
    if (!qhash_name(p->hash) || qhash_tpm_id(p->hash) == 0)
        return qerr_set(err, "unknown AK hash algorithm %d", (int)p->hash);
    qbuf fb;
    qbuf_init(&fb, AK_FILE_MAX);
    bool have_file = false;
    qtpm_ak_params fp = { 0 };
    TPM2B_NAME fekname;
    TPM2B_PUBLIC fpub;
    TPM2B_PRIVATE fpriv;
    if (qbuf_read_file(&fb, path, AK_FILE_MAX) == 0) {
        have_file = ak_file_parse(fb.data, fb.len, &fp, &fekname, &fpub, &fpriv) == 0 &&
                    fp.type == p->type && fp.hash == p->hash;
    } else if (errno != ENOENT) {
        int e = errno;
        qbuf_free(&fb);
        return qerr_set(err, "cannot read the AK file %s: %s", path, strerror(e));
    }
    qbuf_free(&fb);

    pthread_mutex_lock(&t->mu);
    qtpm_job *j = qtpm__job_new(t, job_ak_ensure, err);
    int rc = -1;
    if (j) {
        memset(&j->ak, 0, sizeof(j->ak));
        j->ak.p = *p;
        if (have_file) {
            j->ak.have = true;
            j->ak.pub = fpub;
            j->ak.priv = fpriv;
            j->u.akj.try_load = true;
            j->u.akj.ek_name_file = fekname;
        }
        rc = qtpm__run(t, &j, err);
    }
    if (rc == 0) {
        t->ek_pub = j->u.akj.ek_pub;
        t->have_ek = true;
        if (j->u.akj.created)
            rc = ak_file_write(path, &j->ak, &j->u.akj.ek_name, err);
        if (rc == 0)
            t->ak = j->ak;
        if (created)
            *created = j->u.akj.created;
    }
    qtpm__job_release(j);
    pthread_mutex_unlock(&t->mu);
    explicit_bzero(&fpriv, sizeof(fpriv));
    return rc;
}

int qtpm_ak_public(qtpm *t, TPM2B_PUBLIC *out, qerr *err)
{
    pthread_mutex_lock(&t->mu);
    int rc = t->ak.have ? 0 : qerr_set(err, "no AK: qtpm_ak_ensure was not called");
    if (rc == 0)
        *out = t->ak.pub;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int qtpm_ak_name(qtpm *t, uint8_t *out, size_t cap, size_t *len, qerr *err)
{
    pthread_mutex_lock(&t->mu);
    int rc = 0;
    if (!t->ak.have || t->ak.name.size == 0)
        rc = qerr_set(err, "no AK: qtpm_ak_ensure was not called");
    else if (t->ak.name.size > cap)
        rc = qerr_set(err, "AK name buffer too small");
    else {
        memcpy(out, t->ak.name.name, t->ak.name.size);
        *len = t->ak.name.size;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* ---- ActivateCredential -------------------------------------------------------------------- */

static int job_activate(ESYS_CONTEXT *esys, qtpm_job *j)
{
    ESYS_TR ak, ek, sess;
    if (qtpm__ak_load(esys, j, &ak) != 0)
        return -1;
    if (qtpm__ek_load(esys, j, &ek, NULL) != 0 || qtpm__ek_session(esys, j, &sess) != 0 ||
        qtpm__ek_policy(esys, j, sess) != 0)
        return -1;
    if (!qtpm__alive(j))
        return qtpm__abandoned(j);
    TPM2B_DIGEST *cert = NULL;
    TSS2_RC rc = Esys_ActivateCredential(esys, ak, ek, ESYS_TR_PASSWORD, sess, ESYS_TR_NONE, &j->u.act.id,
                                         &j->u.act.secret, &cert);
    if (rc != TSS2_RC_SUCCESS)
        return qtpm__rc(j, "TPM2_ActivateCredential", rc);
    j->u.act.out = *cert;
    explicit_bzero(cert, sizeof(*cert));
    Esys_Free(cert);
    return 0;
}

int qtpm_activate_credential(qtpm *t, const uint8_t *blob, size_t blob_len, uint8_t *out, size_t cap,
                             size_t *len, qerr *err)
{
    if (blob_len > QTPM_CREDBLOB_MAX)
        return qerr_set(err, "credential blob too large (%zu bytes)", blob_len);
    qrd r;
    qrd_init(&r, blob, blob_len);
    uint32_t magic = qrd_u32be(&r), version = qrd_u32be(&r);
    if (!qrd_ok(&r) || magic != CRED_MAGIC)
        return qerr_set(err, "credential blob: bad magic (want 0xBADCC0DE)");
    if (version != 1)
        return qerr_set(err, "credential blob: unsupported version %u", version);
    TPM2B_ID_OBJECT id = { 0 };
    TPM2B_ENCRYPTED_SECRET sec = { 0 };
    size_t n1 = 0, n2 = 0;
    const uint8_t *p1 = qrd_tpm2b(&r, sizeof(id.credential), &n1);
    const uint8_t *p2 = p1 ? qrd_tpm2b(&r, sizeof(sec.secret), &n2) : NULL;
    if (!p1 || !p2 || !qrd_ok(&r) || qrd_left(&r) != 0)
        return qerr_set(err, "credential blob: malformed TPM2B_ID_OBJECT / TPM2B_ENCRYPTED_SECRET");
    id.size = (UINT16)n1;
    memcpy(id.credential, p1, n1);
    sec.size = (UINT16)n2;
    memcpy(sec.secret, p2, n2);

    pthread_mutex_lock(&t->mu);
    qtpm_job *j = qtpm__job_new(t, job_activate, err);
    int rc = -1;
    if (j) {
        j->u.act.id = id;
        j->u.act.secret = sec;
        rc = qtpm__run(t, &j, err);
    }
    if (rc == 0) {
        t->ak = j->ak;
        if (j->u.act.out.size > cap)
            rc = qerr_set(err, "activated secret (%u bytes) larger than the buffer", (unsigned)j->u.act.out.size);
        else {
            memcpy(out, j->u.act.out.buffer, j->u.act.out.size);
            *len = j->u.act.out.size;
        }
        explicit_bzero(&j->u.act.out, sizeof(j->u.act.out));
    }
    qtpm__job_release(j);
    pthread_mutex_unlock(&t->mu);
    return rc;
}
