/* tls_creds.c — client certificate and key parsed once per process (tls_creds.h). */
#include "tls_creds.h"
#include "tls_ca.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define CREDS_MAX      8                  /* distinct (cert, key) pairs a process uses: 1 or 2 */

typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_id;

struct qtls_creds {
    char *cert_path, *key_path;
    file_id cert_id, key_id;
    X509 *leaf;
    STACK_OF(X509) *chain;              /* the certificates after the leaf, possibly empty */
    EVP_PKEY *key;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static qtls_creds g_creds[CREDS_MAX];
static size_t g_n;

static void id_of(const struct stat *st, file_id *id)
{
    memset(id, 0, sizeof *id);
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtime = st->st_mtim;
    id->ctime = st->st_ctim;
}

static bool id_eq(const file_id *a, const file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
           a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Read and cleanse (a key's text is wiped) through tls_ca.h's bounded reader; the identity of
 * what was read comes from the fstat of the open file. */
static BIO *read_file(const char *path, file_id *id, char **buf, size_t *len, qerr *err)
{
    struct stat st;
    BIO *b = qtls_read_file(path, false, &st, buf, len, err);
    if (b)
        id_of(&st, id);
    return b;
}

static void file_free(BIO *b, char *buf, size_t len)
{
    BIO_free(b);
    if (buf)
        OPENSSL_cleanse(buf, len);
    free(buf);
}

static void parsed_free(qtls_creds *c)
{
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    EVP_PKEY_free(c->key);
    c->leaf = NULL;
    c->chain = NULL;
    c->key = NULL;
}

/* Parse both files into c (replacing what it held only on success). */
static int parse(qtls_creds *c, qerr *err)
{
    qtls_creds n;
    memset(&n, 0, sizeof n);
    size_t clen = 0, klen = 0;
    char *ct = NULL, *kt = NULL;
    BIO *cb = read_file(c->cert_path, &n.cert_id, &ct, &clen, err);
    BIO *kb = cb ? read_file(c->key_path, &n.key_id, &kt, &klen, err) : NULL;
    int rc = -1;
    if (!kb)
        goto out;
    if (!(n.leaf = PEM_read_bio_X509_AUX(cb, NULL, qtls_no_passphrase, NULL))) {
        qerr_set(err, "%s: no PEM certificate", c->cert_path);
        goto out;
    }
    if (!(n.chain = sk_X509_new_null())) {
        qerr_set(err, "out of memory");
        goto out;
    }
    for (;;) {
        X509 *x = PEM_read_bio_X509(cb, NULL, qtls_no_passphrase, NULL);
        if (!x)
            break;
        if (!sk_X509_push(n.chain, x)) {
            X509_free(x);
            qerr_set(err, "out of memory");
            goto out;
        }
    }
    /* The end of the file is the only acceptable way out of the loop. */
    unsigned long e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        qerr_set(err, "%s: a certificate after the first cannot be read", c->cert_path);
        goto out;
    }
    ERR_clear_error();
    if (!(n.key = PEM_read_bio_PrivateKey(kb, NULL, qtls_no_passphrase, NULL))) {
        qerr_set(err, "%s: no PEM private key (or an encrypted one)", c->key_path);
        goto out;
    }
    if (X509_check_private_key(n.leaf, n.key) != 1) {
        qerr_set(err, "key %s does not match certificate %s", c->key_path, c->cert_path);
        goto out;
    }
    parsed_free(c);
    c->leaf = n.leaf;
    c->chain = n.chain;
    c->key = n.key;
    c->cert_id = n.cert_id;
    c->key_id = n.key_id;
    memset(&n, 0, sizeof n);
    rc = 0;
out:
    ERR_clear_error();
    parsed_free(&n);
    file_free(cb, ct, clen);
    file_free(kb, kt, klen);
    return rc;
}

qtls_creds *qtls_creds_get(const char *cert_file, const char *key_file, qerr *err)
{
    if (!cert_file || !key_file || !*cert_file || !*key_file) {
        qerr_set(err, "no client certificate and key");
        return NULL;
    }
    qtls_creds *found = NULL;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_n && !found; i++)
        if (strcmp(g_creds[i].cert_path, cert_file) == 0 && strcmp(g_creds[i].key_path, key_file) == 0)
            found = &g_creds[i];
    if (!found && g_n == CREDS_MAX)
        qerr_set(err, "more than %d client certificates in one process", CREDS_MAX);
    else if (!found) {
        qtls_creds *c = &g_creds[g_n];
        memset(c, 0, sizeof *c);
        if (!(c->cert_path = strdup(cert_file)) || !(c->key_path = strdup(key_file))) {
            qerr_set(err, "out of memory");
        } else if (parse(c, err) == 0) {
            found = c;
            g_n++;
        }
        if (!found) {
            free(c->cert_path);
            free(c->key_path);
            memset(c, 0, sizeof *c);
        }
    } else if (!found->leaf) {
        /* A pair that failed a re-parse (rewritten while in use): try again, else the caller
         * falls back to the files. */
        if (parse(found, err) < 0)
            found = NULL;
    }
    pthread_mutex_unlock(&g_mu);
    return found;
}

/* Both files still the ones parsed? (stat, not open: a few microseconds a connection.) */
static bool unchanged(const qtls_creds *c)
{
    struct stat a, b;
    file_id ia, ib;
    if (stat(c->cert_path, &a) < 0 || stat(c->key_path, &b) < 0)
        return false;
    id_of(&a, &ia);
    id_of(&b, &ib);
    return id_eq(&ia, &c->cert_id) && id_eq(&ib, &c->key_id);
}

int qtls_creds_install(qtls_creds *c, SSL_CTX *ctx)
{
    if (!c || !ctx)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&g_mu);
    if (!c->leaf || !unchanged(c)) {
        qerr e;
        if (parse(c, &e) < 0)
            parsed_free(c);           /* unusable now: fail this connection, re-parse on the next */
    }
    if (c->leaf && SSL_CTX_use_certificate(ctx, c->leaf) == 1 && SSL_CTX_clear_chain_certs(ctx) == 1) {
        rc = 0;
        for (int i = 0; rc == 0 && i < sk_X509_num(c->chain); i++)
            if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(c->chain, i)) != 1)
                rc = -1;
        if (rc == 0 && SSL_CTX_use_PrivateKey(ctx, c->key) != 1)
            rc = -1;
    }
    pthread_mutex_unlock(&g_mu);
    ERR_clear_error();
    return rc;
}
