/* curl_conf.c — shared libcurl easy-handle configuration (curl_conf.h). */
#include "curl_conf.h"

#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_creds.h"

int qcurl_check(CURLcode rc, const char *what, qerr *err)
{
    if (rc == CURLE_OK)
        return 0;
    return qerr_set(err, "libcurl option %s rejected: %s", what, curl_easy_strerror(rc));
}

/* CURLOPT_SSL_CTX_FUNCTION: called with each connection's SSL_CTX before its handshake (after
 * libcurl's own certificate and CA set-up). ud: the client certificate and key parsed once
 * (tls_creds.h) or NULL; for ctx_full a qcurl_tls. */
static CURLcode ctx_creds(CURL *e, void *ssl_ctx, void *ud)
{
    (void)e;
    return ud && qtls_creds_install(ud, ssl_ctx) < 0 ? CURLE_SSL_CERTPROBLEM : CURLE_OK;
}

static CURLcode ctx_creds_release(CURL *e, void *ssl_ctx, void *ud)
{
    SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx_creds(e, ssl_ctx, ud);
}

static CURLcode ctx_full(CURL *e, void *ssl_ctx, void *ud)
{
    const qcurl_tls *t = ud;
    if (t->release)
        SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    X509_STORE *st = SSL_CTX_get_cert_store((SSL_CTX *)ssl_ctx);
    if (!st || X509_STORE_add_cert(st, t->anchor) != 1) {
        ERR_clear_error();
        return CURLE_SSL_CACERT_BADFILE;
    }
    return ctx_creds(e, ssl_ctx, t->creds);
}

/* The TLS-context hook, the client certificate and key, and the trust anchors. The certificate
 * and key go in from memory through the hook when they parse (the usual case), else as file
 * names for libcurl to read per connection, which then reports what is wrong with them as it
 * always did. The hook also releases idle buffers when asked, and installs a parsed anchor. */
static int tls_setup(CURL *e, const qcurl_conf *c, qerr *err)
{
    qtls_creds *creds = c->cert_file && c->key_file ? qtls_creds_get(c->cert_file, c->key_file, NULL) : NULL;
    bool anchor = c->ca_cert && c->tls;
    curl_ssl_ctx_callback fn = anchor ? ctx_full : c->release_tls_buffers ? ctx_creds_release : creds ? ctx_creds : NULL;
    void *ud = creds;
    if (anchor) {
        c->tls->creds = creds;
        c->tls->anchor = c->ca_cert;
        c->tls->release = c->release_tls_buffers;
        ud = c->tls;
    }
    if (fn) {
        CURLcode cc = curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, fn);
        if (cc == CURLE_NOT_BUILT_IN || cc == CURLE_UNKNOWN_OPTION) {
            creds = NULL;        /* no hook in this TLS back-end: the files and the PEM text */
            anchor = false;
        } else if (qcurl_check(cc, "CURLOPT_SSL_CTX_FUNCTION", err) < 0 ||
                   QCURL_SET(e, CURLOPT_SSL_CTX_DATA, ud, err) < 0) {
            return -1;
        }
    }
    if (anchor) {
        /* Nothing but the anchor: not the system's bundle, which libcurl loads by default. */
        if (QCURL_SET(e, CURLOPT_CAINFO, (char *)NULL, err) < 0 || QCURL_SET(e, CURLOPT_CAPATH, (char *)NULL, err) < 0 ||
            QCURL_SET(e, CURLOPT_CAINFO_BLOB, (struct curl_blob *)NULL, err) < 0)
            return -1;
    } else if (c->ca_pem) {
        struct curl_blob blob = { .data = (void *)c->ca_pem, .len = strlen(c->ca_pem), .flags = CURL_BLOB_COPY };
        if (QCURL_SET(e, CURLOPT_CAINFO_BLOB, &blob, err) < 0 || QCURL_SET(e, CURLOPT_CAPATH, (char *)NULL, err) < 0)
            return -1;
    } else if (c->ca_file && QCURL_SET(e, CURLOPT_CAINFO, c->ca_file, err) < 0) {
        return -1;
    }
    if (creds) {
        /* A pooled handle may carry a previous configuration's file names. */
        return QCURL_SET(e, CURLOPT_SSLCERT, (char *)NULL, err) < 0 ? -1
               : QCURL_SET(e, CURLOPT_SSLKEY, (char *)NULL, err);
    }
    if (c->cert_file && QCURL_SET(e, CURLOPT_SSLCERT, c->cert_file, err) < 0)
        return -1;
    return c->key_file ? QCURL_SET(e, CURLOPT_SSLKEY, c->key_file, err) : 0;
}

int qcurl_configure(CURL *e, const qcurl_conf *c, qerr *err)
{
    if (!e || !c)
        return qerr_set(err, "libcurl: no handle to configure");
    int rc = 0;
#define SET(opt, val) do { if (rc == 0) rc = QCURL_SET(e, opt, val, err); } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    if (c->errbuf)
        SET(CURLOPT_ERRORBUFFER, c->errbuf);
    if (c->write_fn)
        SET(CURLOPT_WRITEFUNCTION, c->write_fn);
    if (c->write_data)
        SET(CURLOPT_WRITEDATA, c->write_data);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, c->timeout_ms);
    if (c->max_filesize > 0)
        SET(CURLOPT_MAXFILESIZE_LARGE, c->max_filesize);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    if (c->tcp_keepalive)
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, c->no_verify_host ? 0L : 2L);
    if (c->pinned_pubkey)
        SET(CURLOPT_PINNEDPUBLICKEY, c->pinned_pubkey);
    if (c->dns_cache_forever)
        SET(CURLOPT_DNS_CACHE_TIMEOUT, -1L);
    if (rc == 0)
        rc = tls_setup(e, c, err);
#undef SET
    return rc;
}
