/* ops_hooks.c — see ops_hooks.h. */
#include "ops_hooks.h"

#include <string.h>

int vops_start(vops *o, const vconfig *cfg, vstore *store, qerr *err)
{
    memset(o, 0, sizeof *o);
    qerr e = {0};
    o->revoc = vrevoc_start(&cfg->revocations, store, &e);
    if (!o->revoc && e.msg[0]) {
        qerr_set(err, "revocation notifications: %s", e.msg);
        return -1;
    }
    if (cfg->metrics_listen[0] && !(o->metrics = vmetrics_start(cfg->metrics_listen, store, o->revoc, err))) {
        qerr_prefix(err, "metrics on %s", cfg->metrics_listen);
        vrevoc_stop(o->revoc);
        o->revoc = NULL;
        return -1;
    }
    return 0;
}

void vops_round(vops *o, const char *agent_id, int old_state, int new_state, const char *event_id,
                const char *reason)
{
    if (!o)
        return;
    vmetrics_on_round(o->metrics, old_state, new_state, event_id);
    vrevoc_on_round(o->revoc, agent_id, old_state, new_state, event_id, reason);
}

void vops_stop(vops *o)
{
    if (!o)
        return;
    vmetrics_stop(o->metrics);
    vrevoc_stop(o->revoc);
    memset(o, 0, sizeof *o);
}
