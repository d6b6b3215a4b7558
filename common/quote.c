/* quote.c — Keylime quote strings, TPM public keys and the quote check (see quote.h; the PCR
 * blob is in pcrblob.c). Binary TPM structures go through tss2-mu; keys and signatures through
 * OpenSSL 3 EVP only. */
#include "quote.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "b64.h"
#include "buf.h"
#include "hex.h"

#define PCR_MASK_ALL ((1u << QQUOTE_NUM_PCRS) - 1)
#define TPMPUB_MARSHAL_MAX 2048

/* ---- quote string ------------------------------------------------------------------------ */

char *qquote_build(const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
                   const uint8_t *pcrblob, size_t pcrblob_len, qerr *err)
{
    if (!attest || !sig || !pcrblob || attest_len == 0 || sig_len == 0 || pcrblob_len == 0) {
        qerr_set(err, "quote build: empty part");
        return NULL;
    }
    if (attest_len > QQUOTE_ATTEST_MAX || sig_len > QQUOTE_SIG_MAX || pcrblob_len > QPCRBLOB_MAX) {
        qerr_set(err, "quote build: part too large (attest %zu, signature %zu, PCR blob %zu bytes)",
                 attest_len, sig_len, pcrblob_len);
        return NULL;
    }
    size_t a = qb64_encoded_size(attest_len) - 1, s = qb64_encoded_size(sig_len) - 1;
    size_t p = qb64_encoded_size(pcrblob_len) - 1;
    size_t total = 1 + a + 1 + s + 1 + p + 1;
    char *out = malloc(total);
    if (!out) {
        qerr_set(err, "quote build: out of memory");
        return NULL;
    }
    char *w = out;
    *w++ = 'r';
    if (qb64_encode(attest, attest_len, w, a + 1) < 0)
        goto fail;
    w += a;
    *w++ = ':';
    if (qb64_encode(sig, sig_len, w, s + 1) < 0)
        goto fail;
    w += s;
    *w++ = ':';
    if (qb64_encode(pcrblob, pcrblob_len, w, p + 1) < 0)
        goto fail;
    return out;
fail:
    free(out);
    qerr_set(err, "quote build: base64 encoding failed");
    return NULL;
}

char *qquote_build_tpm(const TPM2B_ATTEST *attest, const TPMT_SIGNATURE *sig, const uint8_t *pcrblob,
                       size_t pcrblob_len, qerr *err)
{
    if (!attest || !sig) {
        qerr_set(err, "quote build: missing attest or signature");
        return NULL;
    }
    uint8_t sigbuf[QQUOTE_SIG_MAX];
    size_t off = 0;
    TSS2_RC rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sigbuf, sizeof sigbuf, &off);
    if (rc != TSS2_RC_SUCCESS) {
        qerr_set(err, "quote build: cannot marshal TPMT_SIGNATURE: %s", Tss2_RC_Decode(rc));
        return NULL;
    }
    if (attest->size > sizeof attest->attestationData) {
        qerr_set(err, "quote build: bad TPM2B_ATTEST size %u", attest->size);
        return NULL;
    }
    return qquote_build(attest->attestationData, attest->size, sigbuf, off, pcrblob, pcrblob_len, err);
}

/* Decode one base64 part into out (capacity cap). */
static int decode_part(const char *what, const char *s, size_t n, uint8_t *out, size_t cap,
                       size_t *outlen, qerr *err)
{
    if (n == 0)
        return qerr_set(err, "quote %s part is empty", what);
    if (n > QQUOTE_B64LEN(cap))
        return qerr_set(err, "quote %s part too large (%zu base64 characters, at most %zu bytes allowed)",
                        what, n, cap);
    long r = qb64_decode(s, n, out, cap);
    if (r < 0)
        return qerr_set(err, "quote %s part is not valid base64", what);
    if (r == 0)
        return qerr_set(err, "quote %s part is empty", what);
    if ((size_t)r > cap)
        return qerr_set(err, "quote %s part too large (%ld bytes, at most %zu)", what, r, cap);
    *outlen = (size_t)r;
    return 0;
}

int qquote_split(const char *s, size_t len, qquote_parts *out, qerr *err)
{
    if (!s || !out)
        return qerr_set(err, "quote: missing input");
    if (len == 0)
        return qerr_set(err, "quote is empty");
    if (len > QQUOTE_STRING_MAX)
        return qerr_set(err, "quote too long (%zu characters, at most %d)", len, (int)QQUOTE_STRING_MAX);
    if (s[0] != 'r')
        return qerr_set(err, "quote does not start with 'r'");
    const char *c1 = memchr(s + 1, ':', len - 1);
    if (!c1)
        return qerr_set(err, "quote has no ':' separators (expected 3 parts)");
    const char *end = s + len;
    const char *c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
    if (!c2)
        return qerr_set(err, "quote has 2 parts (expected 3)");
    if (memchr(c2 + 1, ':', (size_t)(end - c2 - 1)))
        return qerr_set(err, "quote has more than 3 parts");
    if (decode_part("attest", s + 1, (size_t)(c1 - s - 1), out->attest, sizeof out->attest,
                    &out->attest_len, err) < 0 ||
        decode_part("signature", c1 + 1, (size_t)(c2 - c1 - 1), out->sig, sizeof out->sig,
                    &out->sig_len, err) < 0 ||
        decode_part("PCR blob", c2 + 1, (size_t)(end - c2 - 1), out->pcrblob, sizeof out->pcrblob,
                    &out->pcrblob_len, err) < 0)
        return -1;
    return 0;
}

/* ---- TPMS_ATTEST ------------------------------------------------------------------------- */

int qattest_parse(const uint8_t *attest, size_t len, qattest *out, qerr *err)
{
    if (!attest || !out)
        return qerr_set(err, "TPMS_ATTEST: missing input");
    if (len > QQUOTE_ATTEST_MAX)
        return qerr_set(err, "TPMS_ATTEST too large (%zu bytes)", len);
    qrd r;
    qrd_init(&r, attest, len);
    uint32_t magic = qrd_u32be(&r);
    uint16_t type = qrd_u16be(&r);
    if (!qrd_ok(&r))
        return qerr_set(err, "TPMS_ATTEST truncated (%zu bytes)", len);
    if (magic != TPM2_GENERATED_VALUE)
        return qerr_set(err, "TPMS_ATTEST magic is 0x%08x, not 0xff544347 (not TPM-generated)", magic);
    if (type != TPM2_ST_ATTEST_QUOTE)
        return qerr_set(err, "TPMS_ATTEST type is 0x%04x, not 0x8018 (quote)", type);
    TPMS_ATTEST a;
    size_t off = 0;
    TSS2_RC rc = Tss2_MU_TPMS_ATTEST_Unmarshal(attest, len, &off, &a);
    if (rc != TSS2_RC_SUCCESS)
        return qerr_set(err, "TPMS_ATTEST does not unmarshal: %s", Tss2_RC_Decode(rc));
    if (off != len)
        return qerr_set(err, "TPMS_ATTEST has %zu trailing bytes", len - off);
    const TPMS_QUOTE_INFO *q = &a.attested.quote;
    if (q->pcrSelect.count != 1)
        return qerr_set(err, "quote selects %u PCR banks (exactly one is supported)", q->pcrSelect.count);
    const TPMS_PCR_SELECTION *s = &q->pcrSelect.pcrSelections[0];
    qhash_alg bank;
    if (qhash_from_tpm_id(s->hash, &bank) < 0)
        return qerr_set(err, "quote PCR bank 0x%04x is not a supported hash algorithm", s->hash);
    if (s->sizeofSelect > 4)
        return qerr_set(err, "quote sizeofSelect %u too large", s->sizeofSelect);
    uint32_t mask = 0;
    for (unsigned i = 0; i < s->sizeofSelect; i++)
        mask |= (uint32_t)s->pcrSelect[i] << (8 * i);
    if (mask & ~PCR_MASK_ALL)
        return qerr_set(err, "quote selects a PCR above 23 (mask 0x%08x)", mask);
    if (a.qualifiedSigner.size > sizeof out->signer || a.extraData.size > sizeof out->extra ||
        q->pcrDigest.size > sizeof out->pcr_digest)
        return qerr_set(err, "TPMS_ATTEST field too large");
    memcpy(out->signer, a.qualifiedSigner.name, a.qualifiedSigner.size);
    out->signer_len = a.qualifiedSigner.size;
    memcpy(out->extra, a.extraData.buffer, a.extraData.size);
    out->extra_len = a.extraData.size;
    out->clock.clock = a.clockInfo.clock;
    out->clock.reset_count = a.clockInfo.resetCount;
    out->clock.restart_count = a.clockInfo.restartCount;
    out->clock.safe = a.clockInfo.safe;
    out->firmware = a.firmwareVersion;
    out->bank = bank;
    out->mask = mask;
    memcpy(out->pcr_digest, q->pcrDigest.buffer, q->pcrDigest.size);
    out->pcr_digest_len = q->pcrDigest.size;
    return 0;
}

int qclock_check(const qclockinfo *prev, const qclockinfo *now, qerr *err)
{
    if (!prev || !now)
        return qerr_set(err, "clock check: missing input");
    if (now->reset_count < prev->reset_count)
        return qerr_set(err, "TPM resetCount went backwards (%u, last seen %u)", now->reset_count,
                        prev->reset_count);
    if (now->reset_count == prev->reset_count && now->restart_count < prev->restart_count)
        return qerr_set(err, "TPM restartCount went backwards (%u, last seen %u)", now->restart_count,
                        prev->restart_count);
    if (now->safe != 1)
        return qerr_set(err, "TPM clock is not safe (safe = %u)", now->safe);
    bool both = now->reset_count != prev->reset_count && now->restart_count != prev->restart_count;
    if (!both && now->clock <= prev->clock)
        return qerr_set(err, "TPM clock did not advance (%llu ms, last seen %llu ms): old or replayed quote",
                        (unsigned long long)now->clock, (unsigned long long)prev->clock);
    return 0;
}

/* ---- TPM public keys --------------------------------------------------------------------- */

int qtpmpub_parse(const uint8_t *buf, size_t len, TPM2B_PUBLIC *out, qerr *err)
{
    if (!buf || !out)
        return qerr_set(err, "TPM2B_PUBLIC: missing input");
    if (len < 2 || len > TPMPUB_MARSHAL_MAX)
        return qerr_set(err, "TPM2B_PUBLIC has a bad length (%zu bytes)", len);
    size_t off = 0;
    memset(out, 0, sizeof *out);
    TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, out);
    if (rc != TSS2_RC_SUCCESS)
        return qerr_set(err, "TPM2B_PUBLIC does not unmarshal: %s", Tss2_RC_Decode(rc));
    if (off != len)
        return qerr_set(err, "TPM2B_PUBLIC has %zu trailing bytes", len - off);
    if ((size_t)out->size + 2 != len)
        return qerr_set(err, "TPM2B_PUBLIC size field %u does not match its %zu-byte body", out->size,
                        len - 2);
    return 0;
}

int qtpmpub_parse_b64(const char *b64, size_t len, TPM2B_PUBLIC *out, qerr *err)
{
    uint8_t buf[TPMPUB_MARSHAL_MAX];
    if (!b64 || len > QQUOTE_B64LEN(sizeof buf))
        return qerr_set(err, "TPM2B_PUBLIC base64 too long (%zu characters)", len);
    long n = qb64_decode(b64, len, buf, sizeof buf);
    if (n < 0)
        return qerr_set(err, "TPM2B_PUBLIC is not valid base64");
    return qtpmpub_parse(buf, (size_t)n, out, err);
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, qerr *err)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        qerr_set(err, "%s public key rejected by OpenSSL", type);
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (!pkey)
        return NULL;
    /* EC: the point is on the curve (the quick check; P-256 and P-384 have cofactor 1, so that
     * also puts it in the prime-order group). RSA: rsa_pkey checked the size, the top bit, and
     * checks an odd modulus and exponent; OpenSSL's full SP 800-56B check adds a primality test
     * of n that costs ~6 ms a key (a registration parses the EK twice, a verifier loads AKs) and
     * protects nothing here: trust in an EK or AK comes from the EK certificate and the
     * credential activation, never from the form of the key. */
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!ctx || (strcmp(type, "RSA") != 0 && EVP_PKEY_public_check_quick(ctx) != 1)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        qerr_set(err, "%s public key fails validation", type);
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static EVP_PKEY *rsa_pkey(const TPMT_PUBLIC *p, qerr *err)
{
    const TPMS_RSA_PARMS *rp = &p->parameters.rsaDetail;
    const TPM2B_PUBLIC_KEY_RSA *n = &p->unique.rsa;
    if (rp->keyBits != 2048 && rp->keyBits != 3072 && rp->keyBits != 4096) {
        qerr_set(err, "RSA key size %u not supported (2048, 3072 or 4096)", rp->keyBits);
        return NULL;
    }
    if ((size_t)n->size * 8 != rp->keyBits || (n->buffer[0] & 0x80) == 0) {
        qerr_set(err, "RSA modulus is %u bytes, not a %u-bit modulus", n->size, rp->keyBits);
        return NULL;
    }
    uint32_t e = rp->exponent ? rp->exponent : 65537;
    if ((n->buffer[n->size - 1] & 1) == 0 || (e & 1) == 0 || e < 3) {
        qerr_set(err, "RSA public key fails validation (even modulus or bad exponent %u)", e);
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(n->buffer, n->size, NULL);
    BIGNUM *be = BN_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn && be && bld && BN_set_word(be, e) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
        pkey = pkey_fromdata("RSA", bld, err);
    else
        qerr_set(err, "RSA key: out of memory");
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pkey;
}

static EVP_PKEY *ecc_pkey(const TPMT_PUBLIC *p, qerr *err)
{
    const char *group;
    size_t fsize;
    switch (p->parameters.eccDetail.curveID) {
    case TPM2_ECC_NIST_P256: group = "prime256v1"; fsize = 32; break;
    case TPM2_ECC_NIST_P384: group = "secp384r1"; fsize = 48; break;
    default:
        qerr_set(err, "ECC curve 0x%04x not supported (NIST P-256 or P-384)",
                 p->parameters.eccDetail.curveID);
        return NULL;
    }
    const TPM2B_ECC_PARAMETER *x = &p->unique.ecc.x, *y = &p->unique.ecc.y;
    if (x->size == 0 || y->size == 0 || x->size > fsize || y->size > fsize) {
        qerr_set(err, "ECC point coordinates have bad sizes (%u, %u; field is %zu bytes)", x->size,
                 y->size, fsize);
        return NULL;
    }
    uint8_t pt[1 + 2 * 48] = {0};
    pt[0] = 0x04; /* uncompressed; coordinates left-padded to the field size */
    memcpy(pt + 1 + fsize - x->size, x->buffer, x->size);
    memcpy(pt + 1 + 2 * fsize - y->size, y->buffer, y->size);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * fsize) == 1)
        pkey = pkey_fromdata("EC", bld, err);
    else
        qerr_set(err, "EC key: out of memory");
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

EVP_PKEY *qtpmpub_pkey(const TPM2B_PUBLIC *pub, qerr *err)
{
    if (!pub) {
        qerr_set(err, "TPM public key: missing input");
        return NULL;
    }
    EVP_PKEY *k = NULL;
    switch (pub->publicArea.type) {
    case TPM2_ALG_RSA: k = rsa_pkey(&pub->publicArea, err); break;
    case TPM2_ALG_ECC: k = ecc_pkey(&pub->publicArea, err); break;
    default:
        qerr_set(err, "TPM key type 0x%04x is neither RSA nor ECC", pub->publicArea.type);
        return NULL;
    }
    ERR_clear_error();
    return k;
}

char *qpkey_pem(EVP_PKEY *pkey, qerr *err)
{
    if (!pkey) {
        qerr_set(err, "PEM: missing key");
        return NULL;
    }
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio && PEM_write_bio_PUBKEY(bio, pkey) == 1) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (out = malloc((size_t)n + 1))) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    if (!out)
        qerr_set(err, "PEM: cannot encode the public key");
    return out;
}

int qtpmpub_name(const TPM2B_PUBLIC *pub, uint8_t *out, size_t cap, size_t *len, qerr *err)
{
    if (!pub || !out || !len)
        return qerr_set(err, "TPM name: missing argument");
    qhash_alg alg;
    if (qhash_from_tpm_id(pub->publicArea.nameAlg, &alg) < 0)
        return qerr_set(err, "TPM name: nameAlg 0x%04x not supported", pub->publicArea.nameAlg);
    size_t hs = qhash_size(alg);
    if (cap < 2 + hs)
        return qerr_set(err, "TPM name: buffer too small");
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t off = 0;
    TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, buf, sizeof buf, &off);
    if (rc != TSS2_RC_SUCCESS)
        return qerr_set(err, "TPM name: cannot marshal TPMT_PUBLIC: %s", Tss2_RC_Decode(rc));
    const EVP_MD *md = qhash_md(alg);
    if (!md || EVP_Digest(buf, off, out + 2, NULL, md, NULL) != 1)
        return qerr_set(err, "TPM name: hashing failed");
    out[0] = (uint8_t)(pub->publicArea.nameAlg >> 8);
    out[1] = (uint8_t)pub->publicArea.nameAlg;
    *len = 2 + hs;
    return 0;
}

int qtpmpub_check_ak(const TPM2B_PUBLIC *pub, qerr *err)
{
    if (!pub)
        return qerr_set(err, "AK: missing key");
    const TPMT_PUBLIC *p = &pub->publicArea;
    if (p->type != TPM2_ALG_RSA && p->type != TPM2_ALG_ECC)
        return qerr_set(err, "AK type 0x%04x is neither RSA nor ECC", p->type);
    static const struct { TPMA_OBJECT bit; const char *name; } need[] = {
        { TPMA_OBJECT_RESTRICTED, "restricted" },
        { TPMA_OBJECT_SIGN_ENCRYPT, "sign" },
        { TPMA_OBJECT_FIXEDTPM, "fixedTPM" },
        { TPMA_OBJECT_FIXEDPARENT, "fixedParent" },
        { TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin" },
    };
    char bad[160] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (!(p->objectAttributes & need[i].bit))
            used += (size_t)snprintf(bad + used, sizeof bad - used, "%s%s not set", used ? ", " : "",
                                     need[i].name);
    }
    if (p->objectAttributes & TPMA_OBJECT_DECRYPT)
        snprintf(bad + used, sizeof bad - used, "%sdecrypt set", used ? ", " : "");
    if (bad[0])
        return qerr_set(err, "AK attributes 0x%08x are not those of an attestation key: %s",
                        p->objectAttributes, bad);
    return 0;
}

/* ---- verification ------------------------------------------------------------------------ */

void qak_free(qak *ak)
{
    if (!ak)
        return;
    EVP_PKEY_CTX_free(ak->vctx);
    EVP_PKEY_free(ak->pkey);
    memset(ak, 0, sizeof *ak);
}

static int ak_from_pub(qak *ak, const TPM2B_PUBLIC *pub, qerr *err)
{
    memset(ak, 0, sizeof *ak);
    if (qtpmpub_name(pub, ak->name, sizeof ak->name, &ak->name_len, err) < 0)
        return qerr_prefix(err, "AK");
    ak->pkey = qtpmpub_pkey(pub, err);
    if (!ak->pkey)
        return qerr_prefix(err, "AK");
    ak->ecc = pub->publicArea.type == TPM2_ALG_ECC;
    if (!(ak->vctx = EVP_PKEY_CTX_new_from_pkey(NULL, ak->pkey, NULL)) || EVP_PKEY_verify_init(ak->vctx) != 1 ||
        (!ak->ecc && EVP_PKEY_CTX_set_rsa_padding(ak->vctx, RSA_PKCS1_PADDING) != 1)) {
        ERR_clear_error();
        qak_free(ak);
        return qerr_set(err, "AK: OpenSSL cannot set up its verification");
    }
    return 0;
}

int qak_load(qak *ak, const uint8_t *tpm2b_public, size_t len, qerr *err)
{
    TPM2B_PUBLIC pub;
    if (!ak)
        return qerr_set(err, "AK: missing output");
    memset(ak, 0, sizeof *ak);
    if (qtpmpub_parse(tpm2b_public, len, &pub, err) < 0)
        return qerr_prefix(err, "AK");
    return ak_from_pub(ak, &pub, err);
}

int qak_load_b64(qak *ak, const char *b64, size_t len, qerr *err)
{
    TPM2B_PUBLIC pub;
    if (!ak)
        return qerr_set(err, "AK: missing output");
    memset(ak, 0, sizeof *ak);
    if (qtpmpub_parse_b64(b64, len, &pub, err) < 0)
        return qerr_prefix(err, "AK");
    return ak_from_pub(ak, &pub, err);
}

/* DER-encode an ECDSA (r, s) pair; returns the length or -1. */
static int ecdsa_der(const TPMS_SIGNATURE_ECC *e, uint8_t *out, size_t cap)
{
    if (e->signatureR.size == 0 || e->signatureS.size == 0)
        return -1;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
    BIGNUM *ss = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
    int n = -1;
    if (s && r && ss && ECDSA_SIG_set0(s, r, ss) == 1) {
        r = ss = NULL; /* owned by s now */
        if (i2d_ECDSA_SIG(s, NULL) <= (int)cap) {
            unsigned char *p = out;
            n = i2d_ECDSA_SIG(s, &p);
        }
    }
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(s);
    return n;
}

int qquote_verify_sig(const qak *ak, const uint8_t *attest, size_t attest_len, const uint8_t *sig,
                      size_t sig_len, qhash_alg hash_alg, qerr *err)
{
    if (!ak || !ak->pkey || !attest || !sig)
        return qerr_set(err, "signature check: missing input");
    const EVP_MD *md = qhash_md(hash_alg);
    if (!md)
        return qerr_set(err, "signature check: unsupported hash algorithm");
    if (sig_len > QQUOTE_SIG_MAX)
        return qerr_set(err, "quote signature too large (%zu bytes)", sig_len);
    TPMT_SIGNATURE ts;
    size_t off = 0;
    TSS2_RC rc = Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &off, &ts);
    if (rc != TSS2_RC_SUCCESS)
        return qerr_set(err, "quote signature does not unmarshal: %s", Tss2_RC_Decode(rc));
    if (off != sig_len)
        return qerr_set(err, "quote signature has %zu trailing bytes", sig_len - off);

    uint16_t want_alg = ak->ecc ? TPM2_ALG_ECDSA : TPM2_ALG_RSASSA;
    if (ts.sigAlg != want_alg)
        return qerr_set(err, "quote signature algorithm 0x%04x not allowed for an %s AK (%s required)",
                        ts.sigAlg, ak->ecc ? "ECC" : "RSA", ak->ecc ? "ECDSA" : "RSASSA");
    uint16_t h = ak->ecc ? ts.signature.ecdsa.hash : ts.signature.rsassa.hash;
    qhash_alg got;
    if (qhash_from_tpm_id(h, &got) < 0 || got != hash_alg)
        return qerr_set(err, "quote signature hash %s (0x%04x) differs from the expected %s",
                        qhash_from_tpm_id(h, &got) == 0 ? qhash_name(got) : "unknown", h,
                        qhash_name(hash_alg));

    uint8_t der[2 * 72 + 16];
    const uint8_t *s;
    size_t slen;
    if (ak->ecc) {
        int n = ecdsa_der(&ts.signature.ecdsa, der, sizeof der);
        if (n <= 0)
            return qerr_set(err, "quote ECDSA signature is malformed");
        s = der;
        slen = (size_t)n;
    } else {
        s = ts.signature.rsassa.sig.buffer;
        slen = ts.signature.rsassa.sig.size;
    }
    /* The digest here, the signature check on the context set up at load. */
    uint8_t dg[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int ok = ak->vctx && EVP_Digest(attest, attest_len, dg, &dlen, md, NULL) == 1 &&
             EVP_PKEY_CTX_set_signature_md(ak->vctx, md) == 1 && EVP_PKEY_verify(ak->vctx, s, slen, dg, dlen) == 1;
    ERR_clear_error();
    if (!ok)
        return qerr_set(err, "quote signature does not verify with the AK");
    return 0;
}

/* Printable form of extraData for messages. */
static void nonce_text(const uint8_t *p, size_t n, char *out, size_t cap)
{
    bool printable = true;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == '"')
            printable = false;
    if (printable && n + 3 <= cap) {
        snprintf(out, cap, "\"%.*s\"", (int)n, (const char *)p);
    } else if (2 * n + 5 <= cap) {
        memcpy(out, "hex ", 4);
        qhex_encode(p, n, out + 4);
    } else {
        snprintf(out, cap, "%zu bytes", n);
    }
}

int qquote_check(const qak *ak, const char *quote, size_t quote_len, const uint8_t *nonce,
                 size_t nonce_len, qhash_alg hash_alg, qquote_result *out, qerr *err)
{
    if (!ak || !quote || (!nonce && nonce_len) || !out)
        return qerr_set(err, "quote check: missing input");
    size_t hsize = qhash_size(hash_alg);
    if (hsize == 0)
        return qerr_set(err, "quote check: unsupported hash algorithm");
    qquote_parts parts;
    if (qquote_split(quote, quote_len, &parts, err) < 0)
        return -1;
    if (qquote_verify_sig(ak, parts.attest, parts.attest_len, parts.sig, parts.sig_len, hash_alg,
                          err) < 0)
        return -1;
    qquote_result res;
    if (qattest_parse(parts.attest, parts.attest_len, &res.attest, err) < 0)
        return -1;
    if (res.attest.extra_len != nonce_len || memcmp(res.attest.extra, nonce, nonce_len) != 0) {
        char got[2 * QQUOTE_NONCE_MAX + 8], want[2 * QQUOTE_NONCE_MAX + 8];
        nonce_text(res.attest.extra, res.attest.extra_len, got, sizeof got);
        nonce_text(nonce, nonce_len > QQUOTE_NONCE_MAX ? QQUOTE_NONCE_MAX : nonce_len, want, sizeof want);
        return qerr_set(err, "quote nonce mismatch: extraData is %s, expected %s", got, want);
    }
    if (qpcrblob_parse(parts.pcrblob, parts.pcrblob_len, &res.pcrs, err) < 0)
        return -1;
    if (res.pcrs.bank != hash_alg)
        return qerr_set(err, "PCR blob bank %s differs from the quote hash algorithm %s",
                        qhash_name(res.pcrs.bank), qhash_name(hash_alg));
    if (res.attest.bank != res.pcrs.bank || res.attest.mask != res.pcrs.mask)
        return qerr_set(err, "PCR selection of the quote (%s:0x%06x) differs from the PCR blob's (%s:0x%06x)",
                        qhash_name(res.attest.bank), res.attest.mask, qhash_name(res.pcrs.bank),
                        res.pcrs.mask);
    if (res.attest.pcr_digest_len != hsize)
        return qerr_set(err, "quote pcrDigest is %zu bytes (%s needs %zu)", res.attest.pcr_digest_len,
                        qhash_name(hash_alg), hsize);
    uint8_t d[QHASH_MAX_SIZE];
    if (qpcrblob_digest(&res.pcrs, hash_alg, NULL, d, err) < 0)
        return -1;
    if (memcmp(d, res.attest.pcr_digest, hsize) != 0)
        return qerr_set(err, "PCR digest mismatch: the PCR blob values do not hash to the quoted pcrDigest");
    *out = res;
    return 0;
}
