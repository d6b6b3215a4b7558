/* tls_pin.c — pin strings for a peer's certificate; see tls_pin.h. */
#include "tls_pin.h"

#include <ctype.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "b64.h"

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"

bool qtls_is_cert_pem(const char *s)
{
    if (!s)
        return false;
    while (isspace((unsigned char)*s))
        s++;
    return strncmp(s, PEM_BEGIN, strlen(PEM_BEGIN)) == 0;
}

X509 *qtls_pin_cert(const char *pem, char *out, size_t cap, qerr *err)
{
    if (!out || cap < QTLS_PIN_MAX) {
        qerr_set(err, "certificate pin: output buffer too small");
        return NULL;
    }
    out[0] = '\0';
    if (!qtls_is_cert_pem(pem)) {
        qerr_set(err, "certificate pin: not a PEM certificate");
        return NULL;
    }
    size_t n = strnlen(pem, QTLS_PIN_PEM_MAX + 1);
    if (n > QTLS_PIN_PEM_MAX) {
        qerr_set(err, "certificate pin: certificate PEM over %u bytes", QTLS_PIN_PEM_MAX);
        return NULL;
    }
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x) {
        qerr_set(err, "certificate pin: the PEM certificate cannot be parsed");
        return NULL;
    }
    unsigned char *der = NULL;
    int dl = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned int ml = 0;
    const char *fail = NULL;
    if (dl <= 0)
        fail = "cannot encode the public key";
    else if (!EVP_Digest(der, (size_t)dl, md, &ml, EVP_sha256(), NULL) || ml != sizeof md)
        fail = "SHA-256 failed";
    OPENSSL_free(der);
    if (!fail) {
        memcpy(out, "sha256//", 8);
        if (qb64_encode(md, sizeof md, out + 8, cap - 8) < 0)
            fail = "base64 failed";
    }
    if (fail) {
        out[0] = '\0';
        X509_free(x);
        qerr_set(err, "certificate pin: %s", fail);
        return NULL;
    }
    return x;
}

int qtls_pin_sha256(const char *pem, char *out, size_t cap, qerr *err)
{
    X509 *x = qtls_pin_cert(pem, out, cap, err);
    X509_free(x);
    return x ? 0 : -1;
}
