/* tls_creds.h — a client certificate (with its chain) and private key parsed once per process
 * and installed into each new TLS context from memory.
 *
 * Why: libcurl 7.88 builds an OpenSSL SSL_CTX for every connection and, given CURLOPT_SSLCERT and
 * CURLOPT_SSLKEY, reads and decodes both PEM files again each time; with OpenSSL 3's decoders
 * that was about a sixth of the tenant's CPU per agent added and as much of the verifier's CPU
 * per new agent connection.
 *
 * Contract:
 * - qtls_creds_get(cert, key) returns the process-wide entry for that pair of paths, parsed
 *   (PEM; the first certificate is the leaf, any others its chain, as
 *   SSL_CTX_use_certificate_chain_file reads them; an encrypted key is never prompted for), or
 *   NULL when the files cannot be used that way (unreadable, not PEM, key not matching the
 *   certificate, over QTLS_FILE_MAX, too many distinct pairs): the caller then hands the paths to the TLS
 *   library as before, whose own messages report the problem. Entries live until the process
 *   ends; thread-safe.
 * - qtls_creds_install(entry, ctx) puts the leaf, chain and key into an OpenSSL SSL_CTX (all
 *   up-referenced, nothing copied). Before that it compares both files' identity (device, inode,
 *   size, modification and change times) with what was parsed and parses them again when either
 *   changed, so a renewed certificate is used by the next connection, as when the files were
 *   read per connection. 0, or -1 (the files are no longer usable: the connection fails). */
#ifndef QUINCE_TLS_CREDS_H
#define QUINCE_TLS_CREDS_H

#include <openssl/ssl.h>
#include "err.h"

typedef struct qtls_creds qtls_creds;

qtls_creds *qtls_creds_get(const char *cert_file, const char *key_file, qerr *err);
int qtls_creds_install(qtls_creds *c, SSL_CTX *ctx);

#endif
