/* revocation.c — Keylime's revocation message, built, signed and checked (see revocation.h). */
#include "revocation.h"
#include "b64.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>


char *qrevoc_msg_text(const qrevoc_event *ev, qerr *err)
{
    char when[64] = "";
    struct tm tm;
    if (localtime_r(&ev->event_time, &tm))
        strftime(when, sizeof when, "%a %b %e %H:%M:%S %Y", &tm);   /* time.asctime() */
    cJSON *m = cJSON_CreateObject();
    if (!m) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    /* tpm_policy and meta_data are JSON text in Keylime's message, not nested objects. */
    cJSON_AddStringToObject(m, "type", ev->type ? ev->type : "revocation");
    cJSON_AddStringToObject(m, "ip", ev->ip ? ev->ip : "");
    cJSON_AddStringToObject(m, "agent_id", ev->agent_id ? ev->agent_id : "");
    cJSON_AddNumberToObject(m, "port", (double)ev->port);
    cJSON_AddStringToObject(m, "tpm_policy", ev->tpm_policy ? ev->tpm_policy : "{}");
    cJSON_AddStringToObject(m, "meta_data", ev->meta_data ? ev->meta_data : "{}");
    cJSON_AddStringToObject(m, "event_time", when);
    cJSON_AddStringToObject(m, "event_id", ev->event_id ? ev->event_id : "");
    cJSON_AddStringToObject(m, "severity_label", ev->severity_label ? ev->severity_label : "");
    cJSON *ctx = ev->context ? cJSON_Duplicate(ev->context, true) : cJSON_CreateObject();
    if (ctx)
        cJSON_AddItemToObject(m, "context", ctx);
    char *s = ctx ? cJSON_PrintUnformatted(m) : NULL;
    cJSON_Delete(m);
    if (!s)
        qerr_set(err, "out of memory");
    return s;
}

static int pss_params(EVP_PKEY_CTX *pctx)
{
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                   EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1
               ? 0
               : -1;
}

/* base64 RSA-PSS signature of msg with the PEM key; NULL with err on failure. */
static char *sign(const char *msg, const char *key_pem, qerr *err)
{
    BIO *bio = BIO_new_mem_buf(key_pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!key) {
        qerr_set(err, "revocation key: not a PEM private key");
        return NULL;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *sig = NULL;
    size_t slen = 0;
    char *out = NULL;
    if (md && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) == 1 && pss_params(pctx) == 0 &&
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_MAX) == 1 &&
        EVP_DigestSign(md, NULL, &slen, (const unsigned char *)msg, strlen(msg)) == 1 && (sig = malloc(slen)) &&
        EVP_DigestSign(md, sig, &slen, (const unsigned char *)msg, strlen(msg)) == 1)
        out = qb64_encode_alloc(sig, slen);
    if (!out)
        qerr_set(err, "revocation key: cannot sign (an RSA key is needed)");
    free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return out;
}

char *qrevoc_body(const char *msg, const char *key_pem, qerr *err)
{
    char *sig = NULL;
    if (key_pem && *key_pem && !(sig = sign(msg, key_pem, err)))
        return NULL;
    cJSON *b = cJSON_CreateObject();
    char *s = NULL;
    if (b && cJSON_AddStringToObject(b, "msg", msg) && cJSON_AddStringToObject(b, "signature", sig ? sig : ""))
        s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    free(sig);
    if (!s)
        qerr_set(err, "out of memory");
    return s;
}

int qrevoc_verify(const char *body, size_t len, const char *cert_pem, cJSON **msg_out, qerr *err)
{
    *msg_out = NULL;
    if (len > QREVOC_BODY_MAX)
        return qerr_set(err, "revocation message larger than %u bytes", QREVOC_BODY_MAX);
    cJSON *b = cJSON_ParseWithLength(body, len);
    if (!b || !cJSON_IsObject(b)) {
        cJSON_Delete(b);
        return qerr_set(err, "revocation message is not a JSON object");
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(b, "msg");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(b, "signature");
    int rc = -1;
    if (!cJSON_IsString(m) || !cJSON_IsString(s)) {
        qerr_set(err, "revocation message needs string fields msg and signature");
        goto out;
    }
    if (!s->valuestring[0]) {
        qerr_set(err, "revocation message is not signed");
        goto out;
    }
    size_t siglen = 0;
    uint8_t *sig = qb64_decode_alloc(s->valuestring, strlen(s->valuestring), 4096, &siglen);
    if (!sig) {
        qerr_set(err, "revocation signature is not base64");
        goto out;
    }
    BIO *bio = BIO_new_mem_buf(cert_pem, -1);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    EVP_PKEY *pub = cert ? X509_get0_pubkey(cert) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const char *msg = m->valuestring;
    bool good = pub && md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pub) == 1 && pss_params(pctx) == 0 &&
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1 &&
                EVP_DigestVerify(md, sig, siglen, (const unsigned char *)msg, strlen(msg)) == 1;
    EVP_MD_CTX_free(md);
    X509_free(cert);
    free(sig);
    if (!cert) {
        qerr_set(err, "revocation certificate: not a PEM certificate");
        goto out;
    }
    if (!good) {
        qerr_set(err, "revocation signature does not verify with the revocation certificate");
        goto out;
    }
    cJSON *parsed = cJSON_Parse(msg);
    if (!parsed || !cJSON_IsObject(parsed)) {
        cJSON_Delete(parsed);
        qerr_set(err, "revocation msg is not a JSON object");
        goto out;
    }
    *msg_out = parsed;
    rc = 0;
out:
    cJSON_Delete(b);
    return rc;
}
