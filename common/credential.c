/* credential.c — software MakeCredential and the auth_tag; see credential.h. */
#include "credential.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/bn.h>

#include "hex.h"
#include "quote.h"

#define KDF_CTX_MAX   (2 * QTPM_NAME_MAX)
#define ECC_FIELD_MAX 48

/* ---- challenge -------------------------------------------------------------------------------- */

int qcred_challenge(char out[QCRED_CHALLENGE_LEN + 1], qerr *err)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    enum { NCHARS = sizeof alnum - 1, LIMIT = 256 - 256 % NCHARS };   /* 62, 248 */
    size_t n = 0;
    uint8_t rnd[64];
    while (n < QCRED_CHALLENGE_LEN) {
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return qerr_set(err, "random number generator failed");
        for (size_t i = 0; i < sizeof rnd && n < QCRED_CHALLENGE_LEN; i++)
            if (rnd[i] < LIMIT)
                out[n++] = alnum[rnd[i] % NCHARS];
    }
    out[n] = '\0';
    OPENSSL_cleanse(rnd, sizeof rnd);
    return 0;
}

/* ---- KDFs ------------------------------------------------------------------------------------- */

static const char *md_name(qhash_alg alg)
{
    const EVP_MD *md = qhash_md(alg);
    return md ? EVP_MD_get0_name(md) : NULL;
}

/* An EK context set up for the TPM's credential OAEP (label "IDENTITY" with its NUL, the
 * name algorithm for OAEP and MGF1), for encryption or decryption; NULL on failure. */
/* RSA-OAEP with the TPM's label "IDENTITY" (its NUL included) and the name algorithm's digest
 * for both OAEP and MGF1. Set through the control setters rather than init_ex's parameters: they
 * also reach a key with an RSA method of its own, which OpenSSL 3.0 keeps on its legacy path and
 * where parameters are ignored (quince-fleet's software EKs, which skip blinding). */
static EVP_PKEY_CTX *oaep_ctx(EVP_PKEY *ek, qhash_alg alg, bool encrypt)
{
    static const char LABEL[] = "IDENTITY";
    const char *mdn = md_name(alg);
    const EVP_MD *md = mdn ? EVP_get_digestbyname(mdn) : NULL;
    unsigned char *label = OPENSSL_memdup(LABEL, sizeof LABEL);
    EVP_PKEY_CTX *pc = md && label ? EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL) : NULL;
    if (!pc || (encrypt ? EVP_PKEY_encrypt_init(pc) : EVP_PKEY_decrypt_init(pc)) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) != 1 || EVP_PKEY_CTX_set_rsa_oaep_md(pc, md) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) != 1 ||
        EVP_PKEY_CTX_set0_rsa_oaep_label(pc, label, (int)sizeof LABEL) != 1) {
        OPENSSL_free(label);          /* not taken: set0 is the last step */
        EVP_PKEY_CTX_free(pc);
        return NULL;
    }
    return pc;
}

int qcred_kdfa(qhash_alg alg, const uint8_t *key, size_t key_len, const char *label, const uint8_t *ctx_u,
               size_t u_len, const uint8_t *ctx_v, size_t v_len, uint8_t *out, size_t out_len, qerr *err)
{
    const char *md = md_name(alg);
    if (!md || !key || !key_len || !label || !out || !out_len || out_len > 1024 || u_len + v_len > KDF_CTX_MAX ||
        (u_len && !ctx_u) || (v_len && !ctx_v))
        return qerr_set(err, "KDFa: bad arguments");
    uint8_t context[KDF_CTX_MAX];
    if (u_len)
        memcpy(context, ctx_u, u_len);
    if (v_len)
        memcpy(context + u_len, ctx_v, v_len);
    /* OpenSSL's KBKDF in counter mode with the defaults (32-bit counter first, 0x00 separator,
     * 32-bit L = out_len * 8 last) is exactly KDFa. */
    OSSL_PARAM p[7], *q = p;
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, "counter", 0);
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, "HMAC", 0);
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)label, strlen(label));
    if (u_len + v_len)
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, context, u_len + v_len);
    *q = OSSL_PARAM_construct_end();
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int ok = kc && EVP_KDF_derive(kc, out, out_len, p) == 1;
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    ERR_clear_error();
    return ok ? 0 : qerr_set(err, "KDFa (%s, \"%s\") failed", md, label);
}

/* KDFe (TPM 2.0 Part 1 §11.4.10.3) = SP800-56A concatenation KDF: H(u32 i ‖ Z ‖ label ‖ 0 ‖ U ‖ V). */
static int kdfe(qhash_alg alg, const uint8_t *z, size_t z_len, const char *label, const uint8_t *u, size_t u_len,
                const uint8_t *v, size_t v_len, uint8_t *out, size_t out_len, qerr *err)
{
    const char *md = md_name(alg);
    uint8_t info[32 + 2 * ECC_FIELD_MAX];
    size_t ll = strlen(label) + 1;
    if (!md || ll + u_len + v_len > sizeof info)
        return qerr_set(err, "KDFe: bad arguments");
    memcpy(info, label, ll);
    memcpy(info + ll, u, u_len);
    memcpy(info + ll + u_len, v, v_len);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, z_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, ll + u_len + v_len),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SSKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int ok = kc && EVP_KDF_derive(kc, out, out_len, p) == 1;
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    ERR_clear_error();
    return ok ? 0 : qerr_set(err, "KDFe (%s) failed", md);
}

/* ---- seed and its encryption to the EK -------------------------------------------------------- */

static void put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* RSA: seed = random, secret = OAEP(EK, H, MGF1-H, "IDENTITY\0")(seed). */
static int rsa_seed(EVP_PKEY *ek, qhash_alg alg, uint8_t *seed, size_t seed_len, uint8_t *secret, size_t cap,
                    size_t *secret_len, qerr *err)
{
    if (RAND_bytes(seed, (int)seed_len) != 1)
        return qerr_set(err, "random number generator failed");
    EVP_PKEY_CTX *pc = oaep_ctx(ek, alg, true);
    size_t n = cap;
    int ok = pc && EVP_PKEY_encrypt(pc, secret, &n, seed, seed_len) == 1;
    EVP_PKEY_CTX_free(pc);
    ERR_clear_error();
    if (!ok)
        return qerr_set(err, "RSA-OAEP encryption of the seed to the EK failed");
    *secret_len = n;
    return 0;
}

static int bn_param(EVP_PKEY *k, const char *name, uint8_t *out, size_t width)
{
    BIGNUM *bn = NULL;
    int ok = EVP_PKEY_get_bn_param(k, name, &bn) == 1 && BN_bn2binpad(bn, out, (int)width) == (int)width;
    BN_free(bn);
    return ok ? 0 : -1;
}

/* ECC: ephemeral key on the EK's curve; seed = KDFe(H, Z, "IDENTITY", eph.x, EK.x);
 * secret = TPMS_ECC_POINT of the ephemeral public key (u16 ‖ x ‖ u16 ‖ y, field-size wide). */
static int ecc_seed(EVP_PKEY *ek, const TPM2B_PUBLIC *pub, qhash_alg alg, uint8_t *seed, size_t seed_len,
                    uint8_t *secret, size_t cap, size_t *secret_len, qerr *err)
{
    const char *group;
    size_t fs;
    switch (pub->publicArea.parameters.eccDetail.curveID) {
    case TPM2_ECC_NIST_P256: group = "P-256"; fs = 32; break;
    case TPM2_ECC_NIST_P384: group = "P-384"; fs = 48; break;
    default: return qerr_set(err, "EK curve not supported");
    }
    if (cap < 4 + 2 * fs)
        return qerr_set(err, "EK secret buffer too small");
    EVP_PKEY *eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
    EVP_PKEY_CTX *dc = eph ? EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL) : NULL;
    uint8_t z[ECC_FIELD_MAX], x[ECC_FIELD_MAX], y[ECC_FIELD_MAX];
    size_t zl = sizeof z;
    int rc = -1;
    if (!dc || EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, ek) != 1 ||
        EVP_PKEY_derive(dc, z, &zl) != 1 || zl != fs || bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_X, x, fs) < 0 ||
        bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_Y, y, fs) < 0) {
        qerr_set(err, "ECDH with the EK failed");
        goto out;
    }
    const TPM2B_ECC_PARAMETER *ekx = &pub->publicArea.unique.ecc.x;
    if (kdfe(alg, z, fs, "IDENTITY", x, fs, ekx->buffer, ekx->size, seed, seed_len, err) < 0)
        goto out;
    put16(secret, fs);
    memcpy(secret + 2, x, fs);
    put16(secret + 2 + fs, fs);
    memcpy(secret + 4 + fs, y, fs);
    *secret_len = 4 + 2 * fs;
    rc = 0;
out:
    OPENSSL_cleanse(z, sizeof z);
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_free(eph);
    ERR_clear_error();
    return rc;
}

/* ---- MakeCredential --------------------------------------------------------------------------- */

static int hmac2(qhash_alg alg, const uint8_t *key, size_t key_len, const uint8_t *a, size_t al, const uint8_t *b,
                 size_t bl, uint8_t *out, size_t out_len)
{
    const char *md = md_name(alg);
    OSSL_PARAM p[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0),
                       OSSL_PARAM_construct_end() };
    EVP_MAC *mac = md ? EVP_MAC_fetch(NULL, "HMAC", NULL) : NULL;
    EVP_MAC_CTX *mc = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t n = 0;
    int ok = mc && EVP_MAC_init(mc, key, key_len, p) == 1 && EVP_MAC_update(mc, a, al) == 1 &&
             EVP_MAC_update(mc, b, bl) == 1 && EVP_MAC_final(mc, out, &n, out_len) == 1 && n == out_len;
    EVP_MAC_CTX_free(mc);
    EVP_MAC_free(mac);
    ERR_clear_error();
    return ok ? 0 : -1;
}

/* enc = 1 encrypts, 0 decrypts. */
static int aes_cfb(unsigned bits, int enc, const uint8_t *key, const uint8_t *in, size_t n, uint8_t *out)
{
    static const uint8_t iv[16];
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, bits == 256 ? "AES-256-CFB" : "AES-128-CFB", NULL);
    EVP_CIPHER_CTX *cc = c ? EVP_CIPHER_CTX_new() : NULL;
    int l1 = 0, l2 = 0;
    int ok = cc && EVP_CipherInit_ex2(cc, c, key, iv, enc, NULL) == 1 && EVP_CipherUpdate(cc, out, &l1, in, (int)n) == 1 &&
             EVP_CipherFinal_ex(cc, out + l1, &l2) == 1 && (size_t)(l1 + l2) == n;
    EVP_CIPHER_CTX_free(cc);
    EVP_CIPHER_free(c);
    ERR_clear_error();
    return ok ? 0 : -1;
}

int qcred_make(const TPM2B_PUBLIC *ek, const uint8_t *name, size_t name_len, const uint8_t *cred,
               size_t cred_len, uint8_t *blob, size_t cap, size_t *len, qerr *err)
{
    if (!ek || !name || !cred || !blob || !len)
        return qerr_set(err, "MakeCredential: missing argument");
    const TPMT_PUBLIC *p = &ek->publicArea;
    qhash_alg alg;
    if (qhash_from_tpm_id(p->nameAlg, &alg) < 0 || alg == QHASH_SHA1)
        return qerr_set(err, "EK nameAlg 0x%04x not supported (sha256, sha384 or sha512)", p->nameAlg);
    const TPMT_SYM_DEF_OBJECT *sym = p->type == TPM2_ALG_RSA ? &p->parameters.rsaDetail.symmetric
                                     : p->type == TPM2_ALG_ECC ? &p->parameters.eccDetail.symmetric : NULL;
    if (!sym)
        return qerr_set(err, "EK type 0x%04x is neither RSA nor ECC", p->type);
    if (!(p->objectAttributes & TPMA_OBJECT_RESTRICTED) || !(p->objectAttributes & TPMA_OBJECT_DECRYPT))
        return qerr_set(err, "EK is not a restricted decryption key (attributes 0x%08x)", p->objectAttributes);
    if (sym->algorithm != TPM2_ALG_AES || sym->mode.aes != TPM2_ALG_CFB ||
        (sym->keyBits.aes != 128 && sym->keyBits.aes != 256))
        return qerr_set(err, "EK symmetric definition (alg 0x%04x) is not AES-128/256-CFB", sym->algorithm);
    size_t hs = qhash_size(alg);
    if (name_len < 4 || name_len > QTPM_NAME_MAX)
        return qerr_set(err, "object name has a bad size (%zu bytes)", name_len);
    if (cred_len == 0 || cred_len > hs)
        return qerr_set(err, "credential must be 1..%zu bytes, not %zu", hs, cred_len);

    EVP_PKEY *pk = qtpmpub_pkey(ek, err);
    if (!pk)
        return qerr_prefix(err, "EK");
    uint8_t seed[QHASH_MAX_SIZE], secret[sizeof(TPMU_ENCRYPTED_SECRET)], sym_key[32], hmac_key[QHASH_MAX_SIZE];
    uint8_t plain[2 + QHASH_MAX_SIZE];
    size_t secret_len = 0;
    int rc = p->type == TPM2_ALG_RSA ? rsa_seed(pk, alg, seed, hs, secret, sizeof secret, &secret_len, err)
                                     : ecc_seed(pk, ek, alg, seed, hs, secret, sizeof secret, &secret_len, err);
    EVP_PKEY_free(pk);
    if (rc < 0)
        goto out;
    rc = -1;
    size_t id_len = 2 + hs + 2 + cred_len;              /* TPM2B_ID_OBJECT body */
    size_t total = 8 + 2 + id_len + 2 + secret_len;
    if (cap < total) {
        qerr_set(err, "credential blob buffer too small (%zu < %zu bytes)", cap, total);
        goto out;
    }
    unsigned bits = sym->keyBits.aes;
    if (qcred_kdfa(alg, seed, hs, "STORAGE", name, name_len, NULL, 0, sym_key, bits / 8, err) < 0 ||
        qcred_kdfa(alg, seed, hs, "INTEGRITY", NULL, 0, NULL, 0, hmac_key, hs, err) < 0)
        goto out;
    uint8_t *w = blob;
    put32(w, QCRED_BLOB_MAGIC);
    put32(w + 4, QCRED_BLOB_VERSION);
    put16(w + 8, id_len);
    put16(w + 10, hs);
    uint8_t *integrity = w + 12, *enc = w + 12 + hs;
    put16(plain, cred_len);
    memcpy(plain + 2, cred, cred_len);
    if (aes_cfb(bits, 1, sym_key, plain, 2 + cred_len, enc) < 0) {
        qerr_set(err, "AES-CFB encryption of the credential failed");
        goto out;
    }
    if (hmac2(alg, hmac_key, hs, enc, 2 + cred_len, name, name_len, integrity, hs) < 0) {
        qerr_set(err, "integrity HMAC failed");
        goto out;
    }
    put16(w + 10 + id_len, secret_len);
    memcpy(w + 12 + id_len, secret, secret_len);
    *len = total;
    rc = 0;
out:
    OPENSSL_cleanse(seed, sizeof seed);
    OPENSSL_cleanse(sym_key, sizeof sym_key);
    OPENSSL_cleanse(hmac_key, sizeof hmac_key);
    OPENSSL_cleanse(plain, sizeof plain);
    return rc;
}

/* ---- ActivateCredential in software (RSA EKs) -------------------------------------------------- */

static size_t get16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

int qcred_activate_rsa(EVP_PKEY *ek, qhash_alg alg, unsigned sym_bits, const uint8_t *name, size_t name_len,
                       const uint8_t *blob, size_t len, uint8_t *cred, size_t cap, size_t *cred_len, qerr *err)
{
    size_t hs = qhash_size(alg);
    if (!ek || !name || !blob || !cred || !cred_len || !hs || (sym_bits != 128 && sym_bits != 256))
        return qerr_set(err, "ActivateCredential: bad arguments");
    if (len < 12 || get16(blob) != 0xBADC || get16(blob + 2) != 0xC0DE || get16(blob + 4) != 0 ||
        get16(blob + 6) != QCRED_BLOB_VERSION)
        return qerr_set(err, "credential blob: bad magic or version");
    size_t id_len = get16(blob + 8);
    if (10 + id_len + 2 > len || id_len < 2 + hs + 2 || get16(blob + 10) != hs)
        return qerr_set(err, "credential blob: bad TPM2B_ID_OBJECT");
    const uint8_t *integrity = blob + 12, *enc = blob + 12 + hs;
    size_t enc_len = id_len - 2 - hs;
    size_t secret_len = get16(blob + 10 + id_len);
    const uint8_t *secret = blob + 12 + id_len;
    if (12 + id_len + secret_len != len || enc_len > 2 + QHASH_MAX_SIZE)
        return qerr_set(err, "credential blob: bad sizes");

    uint8_t seed[512], sym_key[32], hmac_key[QHASH_MAX_SIZE], mac[QHASH_MAX_SIZE], plain[2 + QHASH_MAX_SIZE];
    EVP_PKEY_CTX *pc = oaep_ctx(ek, alg, false);
    size_t n = sizeof seed;
    int ok = pc && EVP_PKEY_decrypt(pc, seed, &n, secret, secret_len) == 1;
    EVP_PKEY_CTX_free(pc);
    ERR_clear_error();
    int rc = -1;
    if (!ok || n != hs) {
        qerr_set(err, "the seed does not decrypt with the EK");
        goto out;
    }
    if (qcred_kdfa(alg, seed, hs, "STORAGE", name, name_len, NULL, 0, sym_key, sym_bits / 8, err) < 0 ||
        qcred_kdfa(alg, seed, hs, "INTEGRITY", NULL, 0, NULL, 0, hmac_key, hs, err) < 0)
        goto out;
    if (hmac2(alg, hmac_key, hs, enc, enc_len, name, name_len, mac, hs) < 0 || CRYPTO_memcmp(mac, integrity, hs) != 0) {
        qerr_set(err, "credential integrity check failed (another object name or EK)");
        goto out;
    }
    if (aes_cfb(sym_bits, 0, sym_key, enc, enc_len, plain) < 0 || get16(plain) != enc_len - 2 || enc_len - 2 > cap) {
        qerr_set(err, "credential does not decrypt");
        goto out;
    }
    memcpy(cred, plain + 2, enc_len - 2);
    *cred_len = enc_len - 2;
    rc = 0;
out:
    OPENSSL_cleanse(seed, sizeof seed);
    OPENSSL_cleanse(sym_key, sizeof sym_key);
    OPENSSL_cleanse(hmac_key, sizeof hmac_key);
    OPENSSL_cleanse(plain, sizeof plain);
    return rc;
}

/* ---- auth_tag --------------------------------------------------------------------------------- */

static int auth_mac(const char *key, size_t key_len, const char *agent_id, uint8_t out[48])
{
    size_t n = 0;
    if (!key || !agent_id)
        return -1;
    const uint8_t *r = EVP_Q_mac(NULL, "HMAC", NULL, "SHA384", NULL, key, key_len, (const uint8_t *)agent_id,
                                 strlen(agent_id), out, 48, &n);
    ERR_clear_error();
    return r && n == 48 ? 0 : -1;
}

int qcred_auth_tag(const char *key, size_t key_len, const char *agent_id, char out[QCRED_AUTH_TAG_HEX + 1],
                   qerr *err)
{
    uint8_t mac[48];
    if (auth_mac(key, key_len, agent_id, mac) < 0)
        return qerr_set(err, "HMAC-SHA384 failed");
    qhex_encode(mac, sizeof mac, out);
    return 0;
}

bool qcred_auth_tag_ok(const char *key, size_t key_len, const char *agent_id, const char *tag, size_t tag_len)
{
    uint8_t want[48], got[48];
    if (!tag || tag_len != QCRED_AUTH_TAG_HEX || qhex_decode(tag, tag_len, got, sizeof got) != 48)
        return false;
    if (auth_mac(key, key_len, agent_id, want) < 0)
        return false;
    return CRYPTO_memcmp(want, got, sizeof want) == 0;
}
