/* round.c — the round state machine (round.h); the table is in docs/verifier-rounds.md. */
#include "round.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define MOD "verifier"

double vround_backoff(const vround_cfg *cfg, uint32_t retries)
{
    double delay = cfg->retry_interval;
    if (cfg->exponential_backoff && cfg->retry_interval > 1)
        delay = pow(cfg->retry_interval, (double)retries);
    if (cfg->max_backoff > 0 && delay > cfg->max_backoff)
        delay = cfg->max_backoff;
    if (!(delay >= 0))
        delay = 0;
    return delay;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

uint64_t vround_durable_fp(const vagent_state *st)
{
    uint64_t h = 14695981039346656037ull;
    int32_t ints[6] = { st->operational_state, (int32_t)st->pcr10_alg, st->severity_level, st->clock_set,
                        st->mb_evaluated, (int32_t)st->consecutive_failures };
    uint64_t longs[5] = { st->next_ima_ml_entry, st->boottime, st->reset_count, st->restart_count,
                          st->ima_good_total };
    h = fnv(h, ints, sizeof ints);
    h = fnv(h, longs, sizeof longs);
    h = fnv(h, st->pcr10, sizeof st->pcr10);
    h = fnv(h, st->last_event_id, strnlen(st->last_event_id, sizeof st->last_event_id));
    if (st->learned_ima_keyrings)
        h = fnv(h, st->learned_ima_keyrings, strlen(st->learned_ima_keyrings) + 1);
    return h;
}

bool vround_write_now(const vround_ckpt *ck, bool durable, long unsaved, double since)
{
    if (durable || !ck || ck->rounds <= 1)
        return true;
    return unsaved >= ck->rounds || since >= ck->seconds;
}

int vround_api_state(vround_ev kind)
{
    switch (kind) {
    case VRE_ACTIVATE: return VSTATE_START;
    case VRE_STOP: return VSTATE_TENANT_FAILED;
    default: return -1;
    }
}

static void fail(vround_out *o, int state)
{
    o->st.state = state;
    o->st.polling = false;
    o->delay = -1;
    o->save = true;
    o->failed = true;
}

/* A communication failure: retry with back-off in retry_state, or give up (FAILED). */
static void retry(const vround_cfg *cfg, vround_out *o, int retry_state)
{
    o->st.retries++;
    if ((long)o->st.retries > cfg->max_retries) {
        fail(o, VSTATE_FAILED);
        o->unreachable = true;
        return;
    }
    o->st.state = retry_state;
    o->delay = vround_backoff(cfg, o->st.retries);
    o->save = true;
}

void vround_step(const vround_cfg *cfg, const vround_st *in_, const vround_event *ev_, vround_out *o)
{
    const vround_st in_copy = *in_;           /* in may point into o */
    const vround_event ev_copy = *ev_;
    const vround_st *in = &in_copy;
    const vround_event *ev = &ev_copy;
    memset(o, 0, sizeof *o);
    o->st = *in;
    o->delay = -1;
    /* Results arriving after polling ended (a stop, a failure) change nothing. */
    bool result = ev->kind != VRE_ACTIVATE && ev->kind != VRE_STOP && ev->kind != VRE_DELETE;
    if (ev->kind == VRE_STALE || (result && !in->polling)) {
        o->ignored = true;
        return;
    }
    switch (ev->kind) {
    case VRE_ACTIVATE:
        o->st.state = VSTATE_START;
        o->st.retries = 0;
        o->st.polling = true;
        o->st.partial0 = true;
        o->delay = 0;
        break;          /* the API stored START already */
    case VRE_QUOTE_PASS:
        o->st.retries = 0;
        o->st.partial0 = false;
        if (ev->more) {
            /* A piece of a long list: not attested yet; the rest is asked for at once. */
            o->st.state = in->state == VSTATE_GET_QUOTE_RETRY ? VSTATE_GET_QUOTE : in->state;
            o->delay = 0;
            o->save = true;
            break;
        }
        o->st.state = ev->give_v ? VSTATE_PROVIDE_V : VSTATE_GET_QUOTE;
        o->delay = ev->give_v ? 0 : cfg->quote_interval - ev->elapsed;     /* V goes at once */
        if (o->delay < 0)
            o->delay = 0;
        o->save = true;
        break;
    case VRE_QUOTE_REBOOT:
        /* Nothing was judged: ask again at once, from entry 0 and with the (maybe new) key. */
        o->st.retries = 0;
        o->st.partial0 = true;
        if (in->state == VSTATE_GET_QUOTE_RETRY)
            o->st.state = VSTATE_GET_QUOTE;
        o->delay = 0;
        o->save = true;
        break;
    case VRE_QUOTE_FAIL:
        fail(o, ev->invalid_quote ? VSTATE_INVALID_QUOTE : VSTATE_FAILED);
        break;
    case VRE_COMM_FAIL:
        o->st.partial0 = true;
        retry(cfg, o, VSTATE_GET_QUOTE_RETRY);
        break;
    case VRE_VKEY_COMM_FAIL:
        retry(cfg, o, VSTATE_PROVIDE_V_RETRY);
        break;
    case VRE_VKEY_DONE:
        o->st.retries = 0;
        o->st.state = VSTATE_GET_QUOTE;
        o->delay = cfg->quote_interval;
        o->save = true;
        break;
    case VRE_VKEY_NO_KEY:
        o->st.state = VSTATE_GET_QUOTE;
        o->st.partial0 = true;
        o->delay = 0;
        o->save = true;
        break;
    case VRE_FATAL:
        fail(o, VSTATE_FAILED);
        break;
    case VRE_STOP:
        o->st.state = VSTATE_TENANT_FAILED;
        o->st.polling = false;
        break;          /* the API stored TENANT_FAILED already */
    case VRE_DELETE:
        o->st.polling = false;
        o->forget = true;
        break;
    case VRE_STALE:
        break;
    }
}

void vround_apply(vagent_state *st, const vround_out *out)
{
    st->operational_state = out->st.state;
    st->consecutive_failures = out->st.retries;
}

const char *vround_ev_name(vround_ev kind)
{
    switch (kind) {
    case VRE_ACTIVATE: return "activate";
    case VRE_QUOTE_PASS: return "quote passed";
    case VRE_QUOTE_REBOOT: return "reboot";
    case VRE_QUOTE_FAIL: return "quote failed";
    case VRE_COMM_FAIL: return "quote request failed";
    case VRE_VKEY_DONE: return "V delivered";
    case VRE_VKEY_COMM_FAIL: return "V delivery failed";
    case VRE_VKEY_NO_KEY: return "no payload key for V";
    case VRE_FATAL: return "fatal";
    case VRE_STOP: return "stop";
    case VRE_DELETE: return "delete";
    case VRE_STALE: return "stale";
    }
    return "unknown";
}

void vround_log(const char *id, const vround_cfg *cfg, const vround_st *in, const vround_event *ev,
                const vround_out *out, const char *why)
{
    const char *reason = why && *why ? why : "no reason given";
    switch (ev->kind) {
    case VRE_QUOTE_PASS:
        if (ev->more)
            qlog(QLOG_DEBUG, MOD, "agent %s: a piece of the measurement list checked, asking for the rest", id);
        else if (in->state != VSTATE_GET_QUOTE || ev->give_v)
            qlog(QLOG_INFO, MOD, "agent %s attested (%s)", id, vstate_name(out->st.state));
        break;
    case VRE_COMM_FAIL:
    case VRE_VKEY_COMM_FAIL:
        if (out->unreachable)
            qlog(QLOG_ERROR, MOD, "agent %s unreachable after %ld retries (%s)", id, cfg->max_retries, reason);
        else if (out->st.polling)
            qlog(QLOG_WARNING, MOD, "agent %s: %s failed (%s); retry %u of %ld in %.1f s", id,
                 ev->kind == VRE_VKEY_COMM_FAIL ? "delivering V" : "quote request", reason, out->st.retries,
                 cfg->max_retries, out->delay);
        break;
    case VRE_VKEY_DONE:
        qlog(QLOG_INFO, MOD, "agent %s: V delivered (%s → %s)", id, vstate_name(in->state),
             vstate_name(out->st.state));
        break;
    case VRE_VKEY_NO_KEY:
        qlog(QLOG_WARNING, MOD, "agent %s: no payload key to encrypt V to; quoting again with partial=0", id);
        break;
    case VRE_FATAL:
        if (why)
            qlog(QLOG_ERROR, MOD, "agent %s: %s", id, why);
        break;
    default:
        break;
    }
    if (out->failed)
        qlog(QLOG_ERROR, MOD, "agent %s failed, stopping polling", id);
    if (in->state != out->st.state)
        qlog(QLOG_DEBUG, MOD, "agent %s: %s → %s (%s)", id, vstate_name(in->state), vstate_name(out->st.state),
             vround_ev_name(ev->kind));
}
