/* registrar.h — Keylime's registrar REST API (API 1.0, 2.0–2.6) as a route table for qhttp_server
 * (agent-protocol §2, keylime-formats §5.4), served on two ports of its own: plain HTTP (default
 * 8890: version, register and activate only, see plain_only) and mTLS (default 8891: everything):
 *   GET    /version                          {"current_version": "2.6", "supported_versions": [...]}
 *   GET    /v{v}/agents[/]                   {"uuids": ["id", ...]} (every registered id, sorted)
 *   POST   /v{v}/agents/{id}                 register: {"blob": b64(credential blob)}
 *   PUT    /v{v}/agents/{id}[/activate]      activate with {"auth_tag": hex}; also POST .../activate
 *   GET    /v{v}/agents/{id}                 {agent_id, ek_tpm, ekcert, aik_tpm, mtls_cert, ip, port,
 *                                             regcount}; 404 while unknown or not yet activated
 *   DELETE /v{v}/agents/{id}                 200 / 404
 * Keylime's v3.0 shapes (POST /v3.0/agents with the id in the body) are not served, so 3.0 is
 * not advertised; any version outside the list gets 404 "API Version not supported" (as Keylime).
 *
 * Contract:
 * - Agent ids: Keylime's [\w.-]+ taken as ASCII [A-Za-z0-9_.-], 1..VSTORE_ID_MAX-1 characters
 *   (400 otherwise). Identity is case-insensitive: the store keys records by the lower-case id,
 *   so "ABC" and "abc" are one agent (a registration differing only in case is a re-registration).
 *   Answers echo the id as first registered (list, record's agent_id) or as the request spelled it
 *   (error messages), as Keylime does. The auth_tag is computed over the id exactly as the agent
 *   sent it in the activation URL (that is what the agent HMACs).
 * - Registration checks, each a 400 "Could not register agent with invalid data: <reason>":
 *   a JSON object; aik_tpm (required) a base64 TPM2B_PUBLIC passing qtpmpub_check_ak — a
 *   non-restricted or decrypting AK is refused here with the list of wrong attributes, because
 *   ActivateCredential would otherwise vouch for a key that can sign forged quotes; ek_tpm
 *   (required; IAK/IDevID-only registration is not supported) an RSA or NIST-P ECC restricted
 *   decryption key that MakeCredential accepts; ekcert (optional: absent, null or "") a base64 DER
 *   or PEM certificate whose public key equals ek_tpm, chaining to tpm_cert_store when that is
 *   set (every certificate in it is a trust anchor), and required when require_ek_cert;
 *   mtls_cert absent, null, "disabled" or a PEM certificate; ip absent, null or an address/host
 *   name; port absent, null, or 1..65535 as a number or a digit string.
 * - Limits (registrar_policy.h, checked before anything is parsed or stored): 429 "Too many
 *   registrations from <address>" past registrations_per_minute; 503 when max_pending pending
 *   registrations exist; pending registrations older than pending_max_age are expired first.
 * - Re-registration of a known id with a different ek_tpm, ekcert or aik_tpm is 403 naming the
 *   changed fields: the first EK bound to an id stays bound until the record is deleted on the
 *   TLS port. Otherwise a fresh challenge is issued. A never-activated record takes the new data
 *   (regcount += 1, key = base64(challenge)). An active record stays active and unchanged, in use
 *   by the verifier and tenant; the new mtls_cert, ip, port and challenge wait beside it
 *   (pending_*) until activated, which proves possession of the EK and AK.
 * - Activation answers the pending challenge when there is one, else the record's. Right: the
 *   record becomes active, or the pending data replace the active data (regcount += 1). Wrong:
 *   400 "Auth tag '<tag>' for agent '<id>' does not match expected value. ..."; an active record is
 *   never deleted or changed; a pending challenge is dropped after max_failed_activations wrong
 *   tags (a never-activated record is then deleted).
 * - Stored values are canonical: ek_tpm/aik_tpm re-marshalled base64, ekcert base64 DER.
 * - Every registration, activation, refusal and deletion is logged (module "registrar").
 * - Ports: see registrar_ctx.plain_only. Start one server per port, each with its own context.
 * - Handlers are thread-safe: the context is read-only; read-modify-write sequences on the
 *   store run under one registrar mutex. tpm_cert_store is read on every registration, so CA
 *   changes apply without restart. Start the server with max_body = REGISTRAR_MAX_BODY. */
#ifndef QUINCE_VERIFIER_REGISTRAR_H
#define QUINCE_VERIFIER_REGISTRAR_H

#include <stdbool.h>
#include <stddef.h>
#include "http_server.h"
#include "registrar_policy.h"
#include "store.h"

#define REGISTRAR_DEFAULT_PORT    8890
#define REGISTRAR_NUM_ROUTES      8
#define REGISTRAR_CURRENT_VERSION "2.6"
#define REGISTRAR_MAX_BODY        (64u * 1024)   /* a registration is a few KiB */
#define REGISTRAR_CERT_MAX        16384          /* ekcert / mtls_cert text */

typedef struct registrar_ctx {
    vstore *store;
    const char *tpm_cert_store;   /* directory or file of CA certificates (PEM or DER); NULL/"": none */
    bool require_ek_cert;         /* refuse registrations without an EK certificate */
    /* The plain-HTTP port serves only what agents need (version, register, activate): show, list
     * and delete answer 403 "... is served only on the registrar's TLS port N ..." there, because
     * the records carry the AK and certificate the tenant and verifier trust. false: everything
     * (the TLS port, or [verifier] insecure). */
    bool plain_only;
    long tls_port;                /* named in the 403 message */
    const reg_limits *limits;     /* NULL: REG_LIMITS_DEFAULT */
    reg_rate *rate;               /* registrations per client address; NULL: no limit. Share one
                                     between the plain and TLS contexts. */
} registrar_ctx;

/* Fill out (capacity cap >= REGISTRAR_NUM_ROUTES) with the routes bound to c; returns the count,
 * 0 when cap is too small. c must outlive the server. */
size_t registrar_routes(registrar_ctx *c, qhttp_route *out, size_t cap);

#endif
