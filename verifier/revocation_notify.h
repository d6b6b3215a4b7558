/* revocation_notify.h — what the verifier does when an agent fails, as Keylime does it
 * ([revocations] enabled_revocation_notifications): "webhook" posts Keylime's revocation
 * message (revocation.h) to webhook_url on the webhook thread (revocation_webhook.h). The event
 * is built from the stored agent (ip, port, tpm_policy, meta_data) and its first failure record
 * (context: message, event_id, entry, path), on the caller's thread, without network I/O.
 * "agent" posts it to every other attested agent (revocation_agents.h). Messages are signed with
 * signing_key when set (required for "agent": agents refuse unsigned messages). "zeromq" is not
 * offered: the configuration refuses it with a clear line rather than pretending. */
#ifndef QUINCE_VERIFIER_REVOCATION_NOTIFY_H
#define QUINCE_VERIFIER_REVOCATION_NOTIFY_H

#include <stdbool.h>
#include "config.h"
#include "err.h"
#include "store.h"

typedef struct vrevoc_config {
    bool webhook;                   /* "webhook" in enabled_revocation_notifications */
    bool agents;                    /* "agent" */
    char signing_key[1024];         /* PEM RSA private key signing the messages ("" = unsigned) */
    char webhook_url[1024];
    char webhook_ca_cert[1024];     /* CA for an https receiver ("" = system store) */
    long webhook_max_retries;       /* attempts per event (3) */
    long webhook_retry_interval_ms; /* first back-off, doubled each attempt (1000) */
    long webhook_timeout_ms;        /* per attempt (5000) */
} vrevoc_config;

/* [revocations]; an unknown channel or a webhook without webhook_url is an error. */
int vrevoc_config_load(const qconfig *c, vrevoc_config *o, qerr *err);

typedef struct vrevoc vrevoc;
/* NULL without error when no channel is enabled (check err->msg[0] to tell). */
/* cert/key: the verifier's client certificate towards agents; allow_plain_http as the poller's. */
vrevoc *vrevoc_start(const vrevoc_config *cfg, vstore *store, const char *cert, const char *key,
                     bool allow_plain_http, qerr *err);
/* A committed round: notifies when the agent just entered FAILED or INVALID_QUOTE. */
void vrevoc_on_round(vrevoc *n, const char *agent_id, int old_state, int new_state, const char *event_id,
                     const char *reason);
/* Counters for metrics (zero when n is NULL). */
void vrevoc_stats(vrevoc *n, unsigned long long *sent, unsigned long long *failed_attempts,
                  unsigned long long *dropped);
void vrevoc_stop(vrevoc *n);

#endif
