/* curl_conf.h — the one place where a libcurl easy handle gets its transport and TLS options,
 * shared by the REST client (http_client.c) and the verifier's agent client (agent_client.c).
 *
 * Contract: qcurl_configure sets, and checks every result of: no signals, the error buffer, the
 * write callback, connect/total timeouts, the answer size bound, http/https only, no redirects,
 * TLS 1.2 or later with the peer verified (against ca_pem, else ca_file, else the system store;
 * with ca_pem the system's CA directory is not consulted), optional client certificate/key and
 * pinned public key, host name check unless no_verify_host. 0, or -1 with "libcurl option
 * <name> rejected: <reason>".
 * The client certificate and key are parsed once per process and put into each connection's
 * TLS context from memory (tls_creds.h; files that do not parse are handed to libcurl by name,
 * as before). libcurl does not tell such connections apart by their client certificate, so
 * handles that share a connection cache (one multi handle) must present the same one. With
 * ca_cert (and tls) the hook also makes that certificate the connection's only trust anchor,
 * which saves libcurl parsing ca_pem again for every connection. */
#ifndef QUINCE_CURL_CONF_H
#define QUINCE_CURL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <curl/curl.h>
#include <openssl/types.h>
#include "err.h"

/* What the TLS-context hook puts into each new connection when the trust anchor comes parsed
 * (qcurl_conf.ca_cert): storage owned by the handle's owner, kept (with the certificate) as long
 * as the handle may open connections. */
typedef struct qcurl_tls {
    struct qtls_creds *creds;         /* client certificate and key, or NULL */
    X509 *anchor;
    bool release;
} qcurl_tls;

typedef struct qcurl_conf {
    long connect_timeout_ms;
    long timeout_ms;
    curl_off_t max_filesize;          /* 0: none (the write callback may bound it) */
    char *errbuf;                     /* CURL_ERROR_SIZE bytes, or NULL */
    size_t (*write_fn)(char *ptr, size_t size, size_t nmemb, void *ud);
    void *write_data;                 /* NULL: set per request */
    const char *ca_pem;               /* trust anchors as PEM text (copied), or NULL */
    X509 *ca_cert;                    /* or the one trust anchor, parsed: wins over ca_pem when the */
    qcurl_tls *tls;                   /* TLS back-end has the context hook (give ca_pem as well) */
    const char *ca_file;
    const char *cert_file, *key_file;
    const char *pinned_pubkey;        /* CURLOPT_PINNEDPUBLICKEY syntax, or NULL */
    bool no_verify_host;
    bool tcp_keepalive;
    /* Memory and CPU of clients that keep many connections (the verifier's agent client):
     * release_tls_buffers frees a kept-alive TLS connection's read/write buffers while it is
     * idle (OpenSSL's SSL_MODE_RELEASE_BUFFERS, about 34 KB a connection; ignored by other TLS
     * back-ends); dns_cache_forever keeps resolved names for good (CURLOPT_DNS_CACHE_TIMEOUT
     * -1): meant for IP-literal hosts only, where libcurl 7.88 otherwise walks its whole DNS
     * cache on every request to prune it. */
    bool release_tls_buffers;
    bool dns_cache_forever;
} qcurl_conf;

int qcurl_configure(CURL *e, const qcurl_conf *c, qerr *err);

/* curl_easy_setopt with its result turned into a message: 0 or -1 ("libcurl option <what>
 * rejected: <reason>"). */
#define QCURL_SET(e, opt, val, err) qcurl_check(curl_easy_setopt((e), opt, (val)), #opt, (err))
int qcurl_check(CURLcode rc, const char *what, qerr *err);

#endif
