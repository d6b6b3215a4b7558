/* curl_conf.c — shared libcurl easy-handle configuration (curl_conf.h). */
#include "curl_conf.h"

#include <string.h>
#include <openssl/ssl.h>

int qcurl_check(CURLcode rc, const char *what, qerr *err)
{
    if (rc == CURLE_OK)
        return 0;
    return qerr_set(err, "libcurl option %s rejected: %s", what, curl_easy_strerror(rc));
}

/* CURLOPT_SSL_CTX_FUNCTION: called with each connection's SSL_CTX before its handshake. */
static CURLcode release_buffers(CURL *e, void *ssl_ctx, void *ud)
{
    (void)e;
    (void)ud;
    SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    return CURLE_OK;
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
    if (c->ca_pem) {
        struct curl_blob blob = { .data = (void *)c->ca_pem, .len = strlen(c->ca_pem), .flags = CURL_BLOB_COPY };
        SET(CURLOPT_CAINFO_BLOB, &blob);
        SET(CURLOPT_CAPATH, (char *)NULL);
    } else if (c->ca_file) {
        SET(CURLOPT_CAINFO, c->ca_file);
    }
    if (c->cert_file)
        SET(CURLOPT_SSLCERT, c->cert_file);
    if (c->key_file)
        SET(CURLOPT_SSLKEY, c->key_file);
    if (c->pinned_pubkey)
        SET(CURLOPT_PINNEDPUBLICKEY, c->pinned_pubkey);
    if (c->dns_cache_forever)
        SET(CURLOPT_DNS_CACHE_TIMEOUT, -1L);
    if (rc == 0 && c->release_tls_buffers) {
        /* Only libcurl's OpenSSL (and wolfSSL) back-ends have the hook; elsewhere the buffers
         * simply stay, which costs memory, not correctness. */
        CURLcode cc = curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, release_buffers);
        if (cc != CURLE_NOT_BUILT_IN && cc != CURLE_UNKNOWN_OPTION)
            rc = qcurl_check(cc, "CURLOPT_SSL_CTX_FUNCTION", err);
    }
#undef SET
    return rc;
}
