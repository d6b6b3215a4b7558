/* agent_tls.h — the agent's side of mTLS: [agent] trusted_client_ca and insecure, its own
 * certificate (mtls_cert.h), and the REST server's TLS settings.
 *
 * Contract (the order is main.c's):
 * - agent_tls_load_ca, first thing at start-up: reads trusted_client_ca into a->trusted_ca_pem
 *   (at most QTLS_FILE_MAX bytes; the first certificate must parse), so that a bad file stops
 *   the agent at once with one line, and the file need not be readable after privileges are
 *   dropped. With insecure = true nothing is read and a WARNING is logged (on every start).
 * - agent_tls_ensure_cert, once the uuid is known and before privileges are dropped:
 *   agent_mtls_ensure(state_dir, uuid, contact_ip) into *m, then a->mtls_cert_pem (sent at
 *   registration as mtls_cert) and a->mtls_key_pem point into *m. Insecure: nothing, and the
 *   registration says mtls_cert "disabled".
 * - agent_tls_server_opts: the REST server serves TLS 1.2+ with that certificate and key and
 *   requires, on every request, a client certificate that verifies against the trusted CA
 *   (401 otherwise, before any handler). Insecure: plain HTTP, options untouched.
 * - agent_tls_free releases what these calls made (the key text is wiped). */
#ifndef QUINCE_AGENT_TLS_H
#define QUINCE_AGENT_TLS_H

#include "agent.h"
#include "http_server.h"
#include "mtls_cert.h"

int agent_tls_load_ca(agent_ctx *a, qerr *err);
int agent_tls_ensure_cert(agent_ctx *a, agent_mtls *m, qerr *err);
void agent_tls_server_opts(const agent_ctx *a, qhttp_server_opts *so);
void agent_tls_free(agent_ctx *a, agent_mtls *m);

#endif
