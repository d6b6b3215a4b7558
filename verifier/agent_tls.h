/* agent_tls.h — the verifier's client certificate and key towards agents, read and parsed once.
 *
 * libcurl 7.88 builds an SSL_CTX for every connection it opens and, given file names, reads and
 * parses the client certificate and key into it again each time (about 0.5 ms of CPU and 2 KB
 * kept per connection). Through CURLOPT_SSL_CTX_FUNCTION (vac_tls_ctx_fn, data: the vac_tls)
 * each new context gets the same parsed objects by reference instead. The certificate file's
 * further certificates are sent as the chain, as libcurl does with a PEM file. The files are
 * read when the poller starts: a renewed certificate is used after a restart.
 * Threads: made before the poller's threads start, then only read (OpenSSL reference counts). */
#ifndef QUINCE_VERIFIER_AGENT_TLS_H
#define QUINCE_VERIFIER_AGENT_TLS_H

#include <curl/curl.h>
#include "err.h"

typedef struct vac_tls vac_tls;

/* The pair must match (qtls_load_pair's checks, file permissions included). NULL with err. */
vac_tls *vac_tls_load(const char *cert_file, const char *key_file, qerr *err);
void vac_tls_free(vac_tls *t);
/* CURLOPT_SSL_CTX_FUNCTION: the certificate, its chain and the key into the connection's
 * SSL_CTX, and SSL_MODE_RELEASE_BUFFERS (idle connections keep no TLS buffers). */
CURLcode vac_tls_ctx_fn(CURL *e, void *ssl_ctx, void *tls);

#endif
