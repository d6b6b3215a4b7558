/* mtls_cert.h — the agent's own TLS key and self-signed certificate.
 *
 * Contract:
 * - Kept in state_dir as mtls-key.pem (PKCS#8 PEM, mode 0600) and mtls-cert.pem (0644). The key
 *   is EC P-256 when made here; an existing RSA or EC key is kept as it is.
 * - The certificate is self-signed: CN = the agent's uuid, subjectAltName = the contact address
 *   (IP, or DNS for a host name; left out when it is empty or a wildcard such as 0.0.0.0) plus
 *   DNS:localhost, IP:127.0.0.1 and IP:::1; extendedKeyUsage serverAuth+clientAuth; valid for
 *   AGENT_MTLS_DAYS from 5 minutes ago. The verifier and the tenant do not chain it to a CA:
 *   they pin this exact certificate, received from the registrar (`mtls_cert` at registration).
 * - Reused across restarts. The certificate (never the key) is made anew, with the same key,
 *   when: the contact address is not among its names (the address changed), its CN is not the
 *   uuid, or it has expired or expires within AGENT_MTLS_RENEW_DAYS. The new certificate is sent
 *   at the next registration; the verifier pins whatever the registrar holds when the agent is
 *   added, so after a change the operator updates the agent on the verifier (tenant -c update).
 * - Errors (never a silent new identity): a key without a certificate or the reverse, unreadable
 *   or unparsable files, a key that does not match the certificate, a key file open to others.
 *   Remove both files to have a new pair made. */
#ifndef QUINCE_AGENT_MTLS_CERT_H
#define QUINCE_AGENT_MTLS_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include "err.h"

#define AGENT_MTLS_KEY_FILE    "mtls-key.pem"
#define AGENT_MTLS_CERT_FILE   "mtls-cert.pem"
#define AGENT_MTLS_DAYS        3650L    /* pinned, not chained: rotation means re-pinning */
#define AGENT_MTLS_RENEW_DAYS  30L

typedef struct agent_mtls {
    char cert_path[1100], key_path[1100];
    char *cert_pem;            /* the certificate PEM, as sent in `mtls_cert` */
    size_t cert_pem_len;
    char *key_pem;             /* the private key PEM (for an in-memory TLS server); secret */
    size_t key_pem_len;
    bool key_created;          /* a new key was made by this call */
    bool cert_created;         /* a new certificate was made by this call */
    char why[128];             /* why the certificate was (re)made: "new key", "contact address changed", ... */
} agent_mtls;

/* Load or make the pair in state_dir (which must exist). contact may be NULL or "". */
int agent_mtls_ensure(const char *state_dir, const char *uuid, const char *contact, agent_mtls *out, qerr *err);
/* Free the PEM texts (the key's is wiped). */
void agent_mtls_free(agent_mtls *m);

#endif
