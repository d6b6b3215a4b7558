/* tls_pin.c — pin strings for a peer's certificate; see tls_pin.h. */
#include "tls_pin.h"

#include <ctype.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
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

/* GnuTLS parses a certificate in about a third of OpenSSL 3.0's time (which decodes the public
 * key through its provider decoders on every parse), and its SHA-256 key id is exactly the pin:
 * the hash of the SubjectPublicKeyInfo DER. The verifier computes a pin for every agent. */
int qtls_pin_sha256(const char *pem, char *out, size_t cap, qerr *err)
{
    if (!out || cap < QTLS_PIN_MAX)
        return qerr_set(err, "certificate pin: output buffer too small");
    out[0] = '\0';
    if (!qtls_is_cert_pem(pem))
        return qerr_set(err, "certificate pin: not a PEM certificate");
    size_t n = strnlen(pem, QTLS_PIN_PEM_MAX + 1);
    if (n > QTLS_PIN_PEM_MAX)
        return qerr_set(err, "certificate pin: certificate PEM over %u bytes", QTLS_PIN_PEM_MAX);
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return qerr_set(err, "certificate pin: out of memory");
    gnutls_datum_t d = { (unsigned char *)pem, (unsigned)n };
    unsigned char md[32];
    size_t ml = sizeof md;
    int rc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    if (rc == 0)
        rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, md, &ml);
    gnutls_x509_crt_deinit(crt);
    if (rc < 0 || ml != sizeof md)
        return qerr_set(err, "certificate pin: the PEM certificate cannot be parsed");
    memcpy(out, "sha256//", 8);
    if (qb64_encode(md, sizeof md, out + 8, cap - 8) < 0) {
        out[0] = '\0';
        return qerr_set(err, "certificate pin: base64 failed");
    }
    return 0;
}
