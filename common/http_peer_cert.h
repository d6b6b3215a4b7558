/* http_peer_cert.h — http_server.c's check of a TLS client certificate (internal to it).
 *
 * Contract: 0 when the peer of conn presented a certificate that verifies against the server's
 * CA and whose extended key usage includes clientAuth (or that has none); dn gets its subject DN
 * and *has_dn is set. -1 with a one-line reason in why otherwise ("no client certificate",
 * "client certificate rejected: ... does not match the intended purpose"). The result is kept in
 * the connection's state cc (may be NULL) with the verified leaf certificate: a later request on
 * the same connection whose peer certificate is the same bytes, within 60 s, reuses it, so a
 * kept-alive client costs no public-key operation per request. */
#ifndef QUINCE_HTTP_PEER_CERT_H
#define QUINCE_HTTP_PEER_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <microhttpd.h>

#include "http_guard.h"

int qhttp_peer_cert_check(struct MHD_Connection *conn, qhttp_conn *cc, char *dn, size_t dncap, bool *has_dn,
                          char *why, size_t cap);

#endif
