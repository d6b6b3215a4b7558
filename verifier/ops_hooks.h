/* ops_hooks.h — the operators' side channels of the verifier, started with it and fed by the
 * poller's round hook: revocation notifications (revocation_notify.h) and metrics (vmetrics.h).
 * Both are optional ([revocations], [verifier] metrics_listen); with neither this does nothing. */
#ifndef QUINCE_VERIFIER_OPS_HOOKS_H
#define QUINCE_VERIFIER_OPS_HOOKS_H

#include <pthread.h>
#include <stdbool.h>
#include "err.h"
#include "revocation_notify.h"
#include "store.h"
#include "vconfig.h"
#include "vmetrics.h"

#define VOPS_ERR_SLOTS 4096
#define VOPS_ERR_MAX   256

typedef struct vops_err {            /* the last communication error of an agent in retry */
    char agent_id[VSTORE_ID_MAX];
    char reason[VOPS_ERR_MAX];
} vops_err;

typedef struct vops {
    vrevoc *revoc;
    vmetrics *metrics;
    pthread_mutex_t lock;            /* guards errs */
    bool lock_ready;
    vops_err *errs;                  /* VOPS_ERR_SLOTS, open addressing by agent id (bounded) */
} vops;

int vops_start(vops *o, const vconfig *cfg, vstore *store, qerr *err);
/* A committed round (old and new operational_state, the first failure's event id or NULL). */
void vops_round(vops *o, const char *agent_id, int old_state, int new_state, const char *event_id,
                const char *reason);
void vops_stop(vops *o);
/* The poller's round hook (poller.h on_round): ctx is the vops. */
struct vround_report;
void vops_on_round_report(void *ctx, const struct vround_report *r);
/* The last error of an agent now retrying ("" when none known): for its status. */
void vops_last_error(vops *o, const char *agent_id, char *out, size_t cap);

#endif
