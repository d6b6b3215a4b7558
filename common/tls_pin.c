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
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x)
        return qerr_set(err, "certificate pin: the PEM certificate cannot be parsed");
    unsigned char *der = NULL;
    int dl = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    X509_free(x);
    if (dl <= 0)
        return qerr_set(err, "certificate pin: cannot encode the public key");
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned int ml = 0;
    int ok = EVP_Digest(der, (size_t)dl, md, &ml, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok || ml != sizeof md)
        return qerr_set(err, "certificate pin: SHA-256 failed");
    memcpy(out, "sha256//", 8);
    if (qb64_encode(md, sizeof md, out + 8, cap - 8) < 0) {
        out[0] = '\0';
        return qerr_set(err, "certificate pin: base64 failed");
    }
    return 0;
}
