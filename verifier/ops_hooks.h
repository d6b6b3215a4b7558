/* ops_hooks.h — the operators' side channels of the verifier, started with it and fed by the
 * poller's round hook: revocation notifications (revocation_notify.h) and metrics (vmetrics.h).
 * Both are optional ([revocations], [verifier] metrics_listen); with neither this does nothing. */
#ifndef QUINCE_VERIFIER_OPS_HOOKS_H
#define QUINCE_VERIFIER_OPS_HOOKS_H

#include "err.h"
#include "revocation_notify.h"
#include "store.h"
#include "vconfig.h"
#include "vmetrics.h"

typedef struct vops {
    vrevoc *revoc;
    vmetrics *metrics;
} vops;

int vops_start(vops *o, const vconfig *cfg, vstore *store, qerr *err);
/* A committed round (old and new operational_state, the first failure's event id or NULL). */
void vops_round(vops *o, const char *agent_id, int old_state, int new_state, const char *event_id,
                const char *reason);
void vops_stop(vops *o);

#endif
