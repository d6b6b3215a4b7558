/* registrar_client.h — agent records from an external Keylime-compatible registrar
 * ([verifier] registrar_url), read by the verifier when the tenant adds an agent.
 *
 * Contract:
 * - vregc_get: GET <url>/version, then GET <url>/v<ver>/agents/<id> with the newest 2.x version
 *   both sides list (2.1 when the registrar lists none, logged). https: the registrar's
 *   certificate checked against ca_file (host name included) and the verifier's client
 *   certificate presented; http only when the caller allows it (insecure).
 * - Returns 1 with *out filled (owned copies; active = true, since a registrar answers 200 only
 *   for an activated agent), 0 when the registrar answers 404 (unknown or not activated), -1 with
 *   a one-line message for anything else (unreachable, another status, a record without an AK).
 * - The answer is bounded (VREGC_MAX_RESPONSE); aik_tpm comes only from the registrar, never from
 *   the add request. Safe to call from several threads (one client per call). */
#ifndef QUINCE_VERIFIER_REGISTRAR_CLIENT_H
#define QUINCE_VERIFIER_REGISTRAR_CLIENT_H

#include "err.h"
#include "store.h"

#define VREGC_MAX_RESPONSE (256u * 1024)

typedef struct vregc_opts {
    const char *url;          /* "https://host:port", no trailing path */
    const char *ca_file;      /* the registrar's CA */
    const char *cert_file;    /* the verifier's client certificate and key */
    const char *key_file;
    long timeout_ms;
} vregc_opts;

int vregc_get(const vregc_opts *o, const char *agent_id, vreg_agent *out, qerr *err);

#endif
