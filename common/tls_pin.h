/* tls_pin.h — pinning a peer's exact certificate (the agent's registered `mtls_cert`).
 *
 * Contract:
 * - A pinned peer is trusted only through its own certificate: the PEM is the single trust
 *   anchor of the connection (curl CAINFO_BLOB) and its public key is pinned as well
 *   (CURLOPT_PINNEDPUBLICKEY "sha256//<base64 of SHA-256 of the SubjectPublicKeyInfo DER>"), so a
 *   machine that takes over the peer's address with any other certificate is refused during the
 *   handshake, before a request is sent.
 * - Only the first certificate of the PEM text is used; its length is bounded by QTLS_PIN_PEM_MAX.
 * - Library code: -1 with a one-line qerr; never prints. */
#ifndef QUINCE_TLS_PIN_H
#define QUINCE_TLS_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/types.h>
#include "err.h"

#define QTLS_PIN_PEM_MAX (64u * 1024)   /* largest certificate PEM accepted */
#define QTLS_PIN_MAX     64              /* "sha256//" + 44 base64 characters + NUL fits */

/* Does s look like a PEM certificate ("-----BEGIN CERTIFICATE-----" after optional blanks)?
 * NULL, "", "disabled" → false. */
bool qtls_is_cert_pem(const char *s);
/* The curl pin string of the first certificate in pem, into out (cap >= QTLS_PIN_MAX). */
int qtls_pin_sha256(const char *pem, char *out, size_t cap, qerr *err);
/* The same, also returning that certificate parsed (the caller frees it), so a client can make
 * it the connection's trust anchor without parsing the PEM again (qhttp_client_opts.ca_cert). */
X509 *qtls_pin_cert(const char *pem, char *out, size_t cap, qerr *err);

#endif
