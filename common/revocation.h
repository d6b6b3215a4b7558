/* revocation.h — Keylime's revocation message (keylime-formats "Revocation message"):
 *   {"msg": "<JSON text>", "signature": "<base64 RSA-PSS-SHA256, MGF1-SHA256, max salt>" or ""}
 * msg holds type, ip, agent_id, port, tpm_policy, meta_data, event_time (asctime), event_id,
 * severity_label and context. Building and signing (verifier) and checking (agent) live here so
 * both ends agree byte for byte; receivers written for Keylime take these bodies unchanged. */
#ifndef QUINCE_REVOCATION_H
#define QUINCE_REVOCATION_H

#include <stddef.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "err.h"

#define QREVOC_BODY_MAX (1u << 20)   /* largest body accepted by a receiver */

typedef struct qrevoc_event {
    const char *type;            /* "revocation" (or "comm_error") */
    const char *agent_id;
    const char *ip;
    long port;
    const char *tpm_policy;      /* JSON text as stored, or NULL */
    const char *meta_data;       /* JSON text, or NULL ("{}") */
    time_t event_time;
    const char *event_id;        /* e.g. "ima.file_not_found" */
    const char *severity_label;  /* e.g. "emergency" */
    const cJSON *context;        /* the failure's context, e.g. {"message": ..., "entry": ...}; may be NULL */
} qrevoc_event;

/* The msg text (json.dumps-like, "key": value with ", " separators). Caller frees. */
char *qrevoc_msg_text(const qrevoc_event *ev, qerr *err);
/* The whole body; key_pem may be NULL or "" (unsigned: "signature": ""). Caller frees. */
char *qrevoc_body(const char *msg, const char *key_pem, qerr *err);
/* A receiver's check of a body against the revocation certificate (PEM): 0 with *msg_out (the
 * parsed msg object, caller deletes) when the signature verifies, -1 with the reason otherwise
 * (not JSON, no msg, no or empty signature, bad signature, msg not a JSON object). */
int qrevoc_verify(const char *body, size_t len, const char *cert_pem, cJSON **msg_out, qerr *err);

#endif
