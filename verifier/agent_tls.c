/* agent_tls.c — the verifier's client identity parsed once for every agent connection (agent_tls.h). */
#include "agent_tls.h"

#include <stdlib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_ca.h"

#define MAX_CHAIN 8                  /* further certificates taken from the certificate file */

struct vac_tls {
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) *chain;           /* may be empty */
};

void vac_tls_free(vac_tls *t)
{
    if (!t)
        return;
    X509_free(t->cert);
    EVP_PKEY_free(t->key);
    sk_X509_pop_free(t->chain, X509_free);
    free(t);
}

/* The certificates after the first one in the file (qtls_load_pair read and checked the file). */
static int read_chain(vac_tls *t, const char *cert_file, qerr *err)
{
    if (!(t->chain = sk_X509_new_null()))
        return qerr_set(err, "out of memory");
    BIO *b = BIO_new_file(cert_file, "r");
    if (!b)
        return qerr_set(err, "cannot read %s", cert_file);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);     /* the leaf, already held */
    X509_free(x);
    int rc = x ? 0 : qerr_set(err, "no certificate in %s", cert_file);
    while (rc == 0 && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        if (sk_X509_num(t->chain) >= MAX_CHAIN || !sk_X509_push(t->chain, x)) {
            X509_free(x);
            rc = qerr_set(err, "%s: more than %d chain certificates, or out of memory", cert_file, MAX_CHAIN);
        }
    }
    ERR_clear_error();               /* the end of the file reads as an error */
    BIO_free(b);
    return rc;
}

vac_tls *vac_tls_load(const char *cert_file, const char *key_file, qerr *err)
{
    if (!cert_file || !key_file) {
        qerr_set(err, "the verifier's client certificate and key are not configured");
        return NULL;
    }
    vac_tls *t = calloc(1, sizeof *t);
    if (!t) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    if (qtls_load_pair(cert_file, key_file, &t->cert, &t->key, err) < 0 || read_chain(t, cert_file, err) < 0) {
        vac_tls_free(t);
        return NULL;
    }
    return t;
}

CURLcode vac_tls_ctx_fn(CURL *e, void *ssl_ctx, void *tls)
{
    (void)e;
    SSL_CTX *c = ssl_ctx;
    const vac_tls *t = tls;
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate(c, t->cert) != 1 || SSL_CTX_use_PrivateKey(c, t->key) != 1)
        return CURLE_SSL_CERTPROBLEM;
    for (int i = 0; i < sk_X509_num(t->chain); i++)
        if (SSL_CTX_add1_chain_cert(c, sk_X509_value(t->chain, i)) != 1)
            return CURLE_SSL_CERTPROBLEM;
    return CURLE_OK;
}
