/* ops_hooks.c — see ops_hooks.h. */
#include "ops_hooks.h"
#include "round.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vops_start(vops *o, const vconfig *cfg, vstore *store, qerr *err)
{
    memset(o, 0, sizeof *o);
    qerr e = {0};
    if (!(o->errs = calloc(VOPS_ERR_SLOTS, sizeof *o->errs)))
        return qerr_set(err, "out of memory");
    pthread_mutex_init(&o->lock, NULL);
    o->lock_ready = true;
    o->revoc = vrevoc_start(&cfg->revocations, store, cfg->client_cert, cfg->client_key, cfg->allow_agent_plain_http,
                            &e);
    if (!o->revoc && e.msg[0]) {
        qerr_set(err, "revocation notifications: %s", e.msg);
        vops_stop(o);
        return -1;
    }
    if (cfg->metrics_listen[0] && !(o->metrics = vmetrics_start(cfg->metrics_listen, store, o->revoc, err))) {
        qerr_prefix(err, "metrics on %s", cfg->metrics_listen);
        vops_stop(o);
        return -1;
    }
    return 0;
}

/* The slot of an agent id (its own, or a free one; a full table reuses the home slot). */
static vops_err *slot(vops *o, const char *agent_id, bool create)
{
    uint32_t h = 2166136261u;
    for (const char *p = agent_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (unsigned i = 0; i < 64; i++) {
        vops_err *s = &o->errs[(h + i) % VOPS_ERR_SLOTS];
        if (strcmp(s->agent_id, agent_id) == 0)
            return s;
        if (!s->agent_id[0])
            return create ? s : NULL;
    }
    return create ? &o->errs[h % VOPS_ERR_SLOTS] : NULL;
}

static void note_error(vops *o, const char *agent_id, int new_state, const char *reason)
{
    if (!o->errs || !agent_id)
        return;
    bool retry = new_state == VSTATE_GET_QUOTE_RETRY || new_state == VSTATE_PROVIDE_V_RETRY;
    pthread_mutex_lock(&o->lock);
    vops_err *s = slot(o, agent_id, retry && reason && *reason);
    if (s && retry && reason && *reason) {
        snprintf(s->agent_id, sizeof s->agent_id, "%s", agent_id);
        snprintf(s->reason, sizeof s->reason, "%s", reason);
    } else if (s && !retry) {
        s->reason[0] = '\0';     /* the slot stays claimed: probes past it keep working */
    }
    pthread_mutex_unlock(&o->lock);
}

void vops_last_error(vops *o, const char *agent_id, char *out, size_t cap)
{
    out[0] = '\0';
    if (!o || !o->errs || !agent_id)
        return;
    pthread_mutex_lock(&o->lock);
    const vops_err *s = slot(o, agent_id, false);
    if (s)
        snprintf(out, cap, "%s", s->reason);
    pthread_mutex_unlock(&o->lock);
}

void vops_round(vops *o, const char *agent_id, int old_state, int new_state, const char *event_id,
                const char *reason)
{
    if (!o)
        return;
    note_error(o, agent_id, new_state, reason);
    vmetrics_on_round(o->metrics, old_state, new_state, event_id);
    vrevoc_on_round(o->revoc, agent_id, old_state, new_state, event_id, reason);
}

void vops_on_round_report(void *ctx, const vround_report *r)
{
    /* A retry's cause is the communication error; a failure's is its first failure record. */
    vops *o = ctx;
    vops_round(o, r->agent_id, r->old_state, r->new_state, r->event_id, r->reason);
    if (o && r->round_seconds >= 0)
        vmetrics_round_seconds(o->metrics, r->round_seconds);
    if (o && r->store_seconds >= 0)
        vmetrics_store_write_seconds(o->metrics, r->store_seconds);
}

void vops_stop(vops *o)
{
    if (!o)
        return;
    vmetrics_stop(o->metrics);
    vrevoc_stop(o->revoc);
    if (o->lock_ready)
        pthread_mutex_destroy(&o->lock);
    free(o->errs);
    memset(o, 0, sizeof *o);
}
