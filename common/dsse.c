/* dsse.c — DSSE envelopes for runtime policies: parse, PAE, sign and verify (OpenSSL EVP). */
#include "dsse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "b64.h"
#include "buf.h"
#include "hex.h"

#define MAX_ENVELOPE (512u * 1024 * 1024)

static int no_pass(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

static bool truthy(const cJSON *v)
{
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
        return false;
    if (cJSON_IsString(v))
        return v->valuestring[0] != '\0';
    if (cJSON_IsNumber(v))
        return v->valuedouble != 0;
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        return v->child != NULL;
    return true;
}

bool qdsse_is_envelope(const char *text, size_t len)
{
    if (!text || len == 0 || len > MAX_ENVELOPE)
        return false;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i == len || text[i] != '{')
        return false;
    /* A plain policy is usually large and holds no "payload" key: skip the full parse. */
    if (!memmem(text, len, "\"payload\"", 9))
        return false;
    cJSON *j = cJSON_ParseWithLength(text, len);
    bool r = j && cJSON_IsObject(j) && truthy(cJSON_GetObjectItemCaseSensitive(j, "payload"));
    cJSON_Delete(j);
    return r;
}

uint8_t *qdsse_b64dec(const char *s, size_t n, size_t max, size_t *out_len)
{
    *out_len = 0;
    if (!s)
        return NULL;
    if (n > 0 && n % 2 == 0 && qhex_valid(s, n)) {
        if (n / 2 > max)
            return NULL;
        uint8_t *out = malloc(n / 2 + 1);
        if (!out)
            return NULL;
        long k = qhex_decode(s, n, out, n / 2);
        if (k < 0) {
            free(out);
            return NULL;
        }
        *out_len = (size_t)k;
        return out;
    }
    uint8_t *out = qb64_decode_alloc(s, n, max, out_len);
    if (out)
        return out;
    char *t = malloc(n + 1);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n; i++)
        t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    t[n] = '\0';
    out = qb64_decode_alloc(t, n, max, out_len);
    free(t);
    return out;
}

void qdsse_env_clear(qdsse_env *e)
{
    if (!e)
        return;
    free(e->payload_type);
    free(e->payload);
    for (size_t i = 0; i < e->nsigs; i++) {
        free(e->sigs[i].keyid);
        free(e->sigs[i].sig);
    }
    memset(e, 0, sizeof *e);
}

static const cJSON *str_member(const cJSON *o, const char *key, bool required, qerr *err, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) {
            *bad = 1;
            qerr_set(err, "DSSE envelope: missing \"%s\"", key);
        }
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        *bad = 1;
        qerr_set(err, "DSSE envelope: \"%s\" must be a string", key);
        return NULL;
    }
    return v;
}

int qdsse_parse(const char *text, size_t len, qdsse_env *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    if (!text || len == 0 || len > MAX_ENVELOPE)
        return qerr_set(err, "DSSE envelope: empty or too large");
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return qerr_set(err, "DSSE envelope: not a JSON object");
    }
    int bad = 0;
    const cJSON *pt = str_member(j, "payloadType", true, err, &bad);
    const cJSON *pl = bad ? NULL : str_member(j, "payload", true, err, &bad);
    const cJSON *sigs = cJSON_GetObjectItemCaseSensitive(j, "signatures");
    if (!bad && !cJSON_IsArray(sigs)) {
        bad = 1;
        qerr_set(err, "DSSE envelope: \"signatures\" must be an array");
    }
    if (!bad && cJSON_GetArraySize(sigs) > QDSSE_MAX_SIGS) {
        bad = 1;
        qerr_set(err, "DSSE envelope: more than %d signatures", QDSSE_MAX_SIGS);
    }
    if (!bad) {
        out->payload_type = strdup(pt->valuestring);
        size_t n = strlen(pl->valuestring);
        uint8_t *p = qdsse_b64dec(pl->valuestring, n, MAX_ENVELOPE, &out->payload_len);
        if (p) {
            out->payload = realloc(p, out->payload_len + 1);
            if (!out->payload) {
                free(p);
            } else {
                out->payload[out->payload_len] = 0;
            }
        }
        if (!out->payload_type || !out->payload) {
            bad = 1;
            qerr_set(err, "DSSE envelope: \"payload\" is not valid base64");
        }
    }
    const cJSON *s;
    if (!bad) {
        cJSON_ArrayForEach(s, sigs) {
            if (!cJSON_IsObject(s)) {
                bad = 1;
                qerr_set(err, "DSSE envelope: a signature must be an object");
                break;
            }
            const cJSON *kid = str_member(s, "keyid", false, err, &bad);
            const cJSON *sg = bad ? NULL : str_member(s, "sig", true, err, &bad);
            if (bad)
                break;
            qdsse_sig *d = &out->sigs[out->nsigs++];
            if (kid && !(d->keyid = strdup(kid->valuestring))) {
                bad = 1;
                qerr_set(err, "out of memory");
                break;
            }
            d->sig = qdsse_b64dec(sg->valuestring, strlen(sg->valuestring), 4096, &d->sig_len);
            if (!d->sig) {
                bad = 1;
                qerr_set(err, "DSSE envelope: \"sig\" is not valid base64");
                break;
            }
        }
    }
    cJSON_Delete(j);
    if (bad) {
        qdsse_env_clear(out);
        return -1;
    }
    return 0;
}

uint8_t *qdsse_pae(const char *type, const uint8_t *payload, size_t payload_len, size_t *out_len)
{
    qbuf b;
    qbuf_init(&b, 0);
    size_t tl = strlen(type);
    if (qbuf_printf(&b, "DSSEv1 %zu ", tl) < 0 || qbuf_append(&b, type, tl) < 0 ||
        qbuf_printf(&b, " %zu ", payload_len) < 0 || qbuf_append(&b, payload, payload_len) < 0) {
        qbuf_free(&b);
        return NULL;
    }
    *out_len = b.len;
    return b.data;
}

static bool supported(const EVP_PKEY *k)
{
    return EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_is_a(k, "EC");
}

static EVP_PKEY *load(const uint8_t *data, size_t len, bool want_private, qerr *err)
{
    if (!data || len == 0 || len > QDSSE_MAX_KEY) {
        qerr_set(err, "key: empty or larger than %u bytes", QDSSE_MAX_KEY);
        return NULL;
    }
    EVP_PKEY *k = NULL;
    const unsigned char *q = data;
    BIO *bio = NULL;
    if (!want_private) {
        X509 *x = d2i_X509(NULL, &q, (long)len);
        if (!x && (bio = BIO_new_mem_buf(data, (int)len))) {
            x = PEM_read_bio_X509(bio, NULL, no_pass, NULL);
            BIO_free(bio);
        }
        if (x) {
            k = X509_get_pubkey(x);
            X509_free(x);
        }
        if (!k) {
            q = data;
            k = d2i_PUBKEY(NULL, &q, (long)len);
        }
        if (!k && (bio = BIO_new_mem_buf(data, (int)len))) {
            k = PEM_read_bio_PUBKEY(bio, NULL, no_pass, NULL);
            BIO_free(bio);
        }
    }
    if (!k) {
        q = data;
        k = d2i_AutoPrivateKey(NULL, &q, (long)len);
    }
    if (!k && (bio = BIO_new_mem_buf(data, (int)len))) {
        k = PEM_read_bio_PrivateKey(bio, NULL, no_pass, NULL);
        BIO_free(bio);
    }
    ERR_clear_error();
    if (!k) {
        qerr_set(err, want_private ? "not a private key (PEM or DER, unencrypted)"
                                   : "not a public key, certificate or private key (PEM or DER)");
        return NULL;
    }
    if (!supported(k)) {
        EVP_PKEY_free(k);
        qerr_set(err, "Unsupported key type (only EC and RSA keys sign policies)");
        return NULL;
    }
    return k;
}

EVP_PKEY *qdsse_load_public(const uint8_t *data, size_t len, qerr *err)
{
    return load(data, len, false, err);
}

EVP_PKEY *qdsse_load_private(const uint8_t *data, size_t len, qerr *err)
{
    return load(data, len, true, err);
}

/* Sets the padding a signature of this key type uses. */
static int set_padding(EVP_PKEY *k, EVP_PKEY_CTX *pctx, bool signing)
{
    if (!EVP_PKEY_is_a(k, "RSA"))
        return 1;
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
        return 0;
    return EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, signing ? RSA_PSS_SALTLEN_DIGEST : RSA_PSS_SALTLEN_AUTO) > 0;
}

static int verify_one(EVP_PKEY *pub, const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;
    if (md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pub) == 1 && set_padding(pub, pctx, false))
        ok = EVP_DigestVerify(md, sig, sig_len, msg, msg_len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

int qdsse_verify(const qdsse_env *e, EVP_PKEY *pub, qerr *err)
{
    if (!e || !e->payload_type || !pub)
        return qerr_set(err, "DSSE: no envelope or no key");
    size_t n = 0;
    uint8_t *pae = qdsse_pae(e->payload_type, e->payload, e->payload_len, &n);
    if (!pae)
        return qerr_set(err, "out of memory");
    int ok = 0;
    for (size_t i = 0; i < e->nsigs && !ok; i++)
        ok = verify_one(pub, pae, n, e->sigs[i].sig, e->sigs[i].sig_len);
    free(pae);
    return ok;
}

/* PEM text of the public key (malloc'd). */
static char *pubkey_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio && PEM_write_bio_PUBKEY(bio, k) == 1) {
        char *p = NULL;
        long n = BIO_get_mem_data(bio, &p);
        if (n > 0 && (out = malloc((size_t)n + 1))) {
            memcpy(out, p, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

static char *make_keyid(EVP_PKEY *priv, const char *cert_pem, qerr *err)
{
    if (cert_pem) {
        BIO *bio = BIO_new_mem_buf(cert_pem, -1);
        X509 *x = bio ? PEM_read_bio_X509(bio, NULL, no_pass, NULL) : NULL;
        BIO_free(bio);
        EVP_PKEY *cpub = x ? X509_get0_pubkey(x) : NULL;
        bool match = cpub && EVP_PKEY_eq(cpub, priv) == 1;
        X509_free(x);
        ERR_clear_error();
        if (!cpub) {
            qerr_set(err, "certificate: not a PEM X.509 certificate");
            return NULL;
        }
        if (!match) {
            qerr_set(err, "certificate: its public key does not match the signing key");
            return NULL;
        }
        char *id = qb64_encode_alloc((const uint8_t *)cert_pem, strlen(cert_pem));
        if (!id)
            qerr_set(err, "out of memory");
        return id;
    }
    char *pem = pubkey_pem(priv);
    if (!pem) {
        qerr_set(err, "cannot encode the public key");
        return NULL;
    }
    uint8_t d[32];
    unsigned int dl = 0;
    char *id = malloc(65);
    if (!id || EVP_Digest(pem, strlen(pem), d, &dl, EVP_sha256(), NULL) != 1) {
        free(pem);
        free(id);
        qerr_set(err, "cannot hash the public key");
        return NULL;
    }
    free(pem);
    qhex_encode(d, dl, id);
    return id;
}

char *qdsse_sign(const uint8_t *payload, size_t payload_len, EVP_PKEY *priv, const char *cert_pem, qerr *err)
{
    if (!priv || !supported(priv)) {
        qerr_set(err, "Unsupported key type (only EC and RSA keys sign policies)");
        return NULL;
    }
    char *keyid = make_keyid(priv, cert_pem, err);
    if (!keyid)
        return NULL;
    size_t n = 0;
    uint8_t *pae = qdsse_pae(QDSSE_PAYLOAD_TYPE, payload, payload_len, &n);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    char *out = NULL, *sig64 = NULL, *pl64 = NULL;
    if (!pae || !md || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, priv) != 1 ||
        !set_padding(priv, pctx, true) || EVP_DigestSign(md, NULL, &sig_len, pae, n) != 1 ||
        !(sig = malloc(sig_len)) || EVP_DigestSign(md, sig, &sig_len, pae, n) != 1) {
        qerr_set(err, "signing failed");
        goto done;
    }
    sig64 = qb64_encode_alloc(sig, sig_len);
    pl64 = qb64_encode_alloc(payload, payload_len);
    qbuf b;
    qbuf_init(&b, 0);
    if (!sig64 || !pl64 ||
        qbuf_printf(&b, "{\"payload\": \"%s\", \"payloadType\": \"%s\", \"signatures\": [{\"keyid\": \"%s\", \"sig\": \"%s\"}]}",
                    pl64, QDSSE_PAYLOAD_TYPE, keyid, sig64) < 0 || qbuf_u8(&b, 0) < 0) {
        qbuf_free(&b);
        qerr_set(err, "out of memory");
        goto done;
    }
    out = (char *)b.data;
done:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    free(pae);
    free(sig);
    free(sig64);
    free(pl64);
    free(keyid);
    return out;
}
