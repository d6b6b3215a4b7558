/* poll_agent.c — one agent's rounds on the poller's event thread: send the request (quote or
 * V), turn its outcome (curl/HTTP result, the workers' findings) into a round event, run the
 * round machine (round.h) and do what it says: reschedule, drop the connection, and hand the
 * round's result to the writer as one owned value (state_writer.h). */
#include "poller_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define MOD "verifier"

double vpoll_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

pagent *vpoll_find(vpoller *p, const char *id)
{
    return (pagent *)(void *)vsched_find(&p->sched, id);
}

static void set_http_active(vpoller *p, pagent *a, bool on)
{
    pthread_mutex_lock(&p->mu);
    a->http_active = on;
    if (on)
        a->requests++;
    else
        pthread_cond_broadcast(&p->idle_cond);
    pthread_mutex_unlock(&p->mu);
}

/* ---- agents (event thread) ------------------------------------------------------------------- */

void vpoll_drop_request(vpoller *p, pagent *a)
{
    if (!a->http.easy) {
        vac_free(&a->http, p->handles);     /* the pin, which a new record may change */
        return;
    }
    pthread_mutex_lock(&p->mu);
    bool active = a->http_active;
    pthread_mutex_unlock(&p->mu);
    if (active) {
        curl_multi_remove_handle(vcl_multi(p->loop, a->shard), a->http.easy);
        p->inflight--;
        set_http_active(p, a, false);
    }
    vac_free(&a->http, p->handles);
}

void vpoll_free_rec(vagent *r)
{
    if (r) {
        vagent_free(r);
        free(r);
    }
}

void vpoll_agent_free(vpoller *p, pagent *a)
{
    if (!a)
        return;
    vsched_cancel(&p->sched, &a->node);
    vpoll_drop_request(p, a);
    vattest_mem_clear(&a->mem);
    vagent_free(&a->rec);
    vpoll_free_rec(a->next_rec);
    free(a);
}

/* The API's view of the counters (p->mu held). */
static void live_locked(pagent *a)
{
    a->live.attestation_count = a->rec.st.attestation_count;
    a->live.last_received_quote = a->rec.st.last_received_quote;
    a->live.last_successful_attestation = a->rec.st.last_successful_attestation;
}

void vpoll_checkpoint(vpoller *p, pagent *a)
{
    if (a->unsaved == 0 || a->dead)
        return;
    pthread_mutex_lock(&p->mu);
    uint64_t gen = a->gen;
    pthread_mutex_unlock(&p->mu);
    vresult *r = vresult_new(VRES_ROUND, a->node.id, gen);
    if (!r)
        return;
    r->checkpoint = true;
    r->epoch = a->epoch;        /* fenced like a round: a lost lease's counters are not written */
    r->old_state = a->rec.st.operational_state;
    if (vagent_state_copy(&r->st, &a->rec.st) < 0) {
        qlog(QLOG_ERROR, MOD, "out of memory: the counters of agent %s are not saved", a->node.id);
        vresult_free(r);
        return;
    }
    a->unsaved = 0;
    vwriter_push(p->writer, r);
}

/* The algorithms of a passing quote, when they differ from the record's: recorded in rec and r. */
static void take_algs(pagent *a, const vattest_out *out, vresult *r)
{
    char **dst[3] = { &a->rec.hash_alg, &a->rec.enc_alg, &a->rec.sign_alg };
    const char *got[3] = { out->hash_alg, out->enc_alg, out->sign_alg };
    bool differ = false;
    for (int i = 0; i < 3; i++)
        differ |= !*dst[i] || strcmp(*dst[i], got[i]) != 0;
    if (!differ)
        return;
    for (int i = 0; i < 3; i++) {
        char *d = strdup(got[i]);
        if (d) {
            free(*dst[i]);
            *dst[i] = d;
        }
        if (r)
            snprintf(r->algs[i], sizeof r->algs[i], "%s", got[i]);
    }
    if (r)
        r->set_algs = true;
}

/* One event through the round machine, and what it says done. found: the checks' findings
 * (quote events) or NULL; event_id/why: the failure of a VRE_FATAL or a communication event. */
static void transition(vpoller *p, pagent *a, uint64_t gen, const vround_event *ev, vattest_out *found,
                       const char *event_id, const char *why)
{
    vround_out o;
    vround_st old = a->rs;
    int old_state = a->rec.st.operational_state;
    vround_step(&p->rcfg, &old, ev, &o);
    if (o.ignored)
        return;
    vround_log(a->node.id, &p->rcfg, &old, ev, &o, why);
    a->rs = o.st;
    vattest_out made;
    memset(&made, 0, sizeof made);
    if (o.failed && !found) {
        char reason[QERR_MSG_MAX + 64];
        if (o.unreachable)
            snprintf(reason, sizeof reason, "agent unreachable after %ld retries: %s", p->o.max_retries, why);
        else
            snprintf(reason, sizeof reason, "%s", why ? why : "failed");
        vattest_fail(&made, &a->rec, (int64_t)time(NULL), VATTEST_FAILED,
                     o.unreachable ? "internal.verifier.not_reachable" : event_id, reason);
        found = &made;
    }
    vresult *r = o.save ? vresult_new(VRES_ROUND, a->node.id, gen) : NULL;
    if (found) {
        if (o.failed) {
            /* the learned keyrings stay with the stored IMA state */
            free(found->st.learned_ima_keyrings);
            found->st.learned_ima_keyrings = a->rec.st.learned_ima_keyrings;
            a->rec.st.learned_ima_keyrings = NULL;
        } else if (ev->kind == VRE_QUOTE_PASS) {
            take_algs(a, found, r);
        }
        vagent_state_move(&a->rec.st, &found->st);
        snprintf(a->rec.st.agent_id, sizeof a->rec.st.agent_id, "%s", a->node.id);
    }
    vround_apply(&a->rec.st, &o);
    bool counted = ev->kind != VRE_ACTIVATE && ev->kind != VRE_STOP && ev->kind != VRE_DELETE &&
                   ev->kind != VRE_VKEY_NO_KEY;
    pthread_mutex_lock(&p->mu);
    if (counted)
        a->rounds++;
    uint64_t rounds = a->rounds, requests = a->requests;
    bool resave = a->resave;
    a->resave = false;
    live_locked(a);
    pthread_mutex_unlock(&p->mu);
    if (counted)
        qlog(QLOG_DEBUG, MOD, "agent %s: round %" PRIu64 " done (%s, %s), %" PRIu64 " requests sent", a->node.id,
             rounds, vround_ev_name(ev->kind), vstate_name(a->rec.st.operational_state), requests);
    if (r) {
        r->epoch = a->epoch;
        r->old_state = old_state;
        r->rounds = rounds;
        r->requests = requests;
        if (ev->kind == VRE_QUOTE_PASS || ev->kind == VRE_QUOTE_FAIL || ev->kind == VRE_QUOTE_REBOOT)
            r->sent_at = a->started;     /* the answered request's send time */
        /* Write it, or keep its counters in memory until the next checkpoint (round.h). */
        uint64_t fp = vround_durable_fp(&a->rec.st);
        bool durable = resave || o.failed || r->set_algs || (found && found->nfailures) ||
                       old_state != a->rec.st.operational_state || fp != a->saved_fp;
        double now = vpoll_mono();
        if (!durable && a->unsaved++ == 0)
            a->unsaved_since = now;
        if (!vround_write_now(&p->o.checkpoint, durable, a->unsaved, now - a->unsaved_since)) {
            r->memory_only = true;
            r->st.operational_state = a->rec.st.operational_state;
            r->st.attestation_count = a->rec.st.attestation_count;
        } else if (vagent_state_copy(&r->st, &a->rec.st) < 0) {
            qlog(QLOG_ERROR, MOD, "out of memory: the round of agent %s is not saved", a->node.id);
            vresult_free(r);
            r = NULL;
        } else {
            a->saved_fp = fp;
            a->unsaved = 0;
            if (o.failed && found) {
                r->set_failures = true;
                r->failures = found->failures;
                r->nfailures = found->nfailures;
                found->failures = NULL;
                found->nfailures = 0;
            }
        }
        if (r && !o.failed && why)
            snprintf(r->reason, sizeof r->reason, "%s", why);
        vwriter_push(p->writer, r);
    }
    vattest_out_free(&made);
    if (!o.st.polling) {
        vsched_cancel(&p->sched, &a->node);
        vpoll_drop_request(p, a);
    } else if (o.delay >= 0 && vsched_at(&p->sched, &a->node, vpoll_mono() + o.delay) < 0) {
        qlog(QLOG_ERROR, MOD, "out of memory scheduling agent %s", a->node.id);
    }
}

void vpoll_event(vpoller *p, pagent *a, uint64_t gen, vround_ev kind, const char *event_id, const char *why)
{
    vround_event ev = { .kind = kind };
    transition(p, a, gen, &ev, NULL, event_id, why);
}

/* Take over a fresh record (state START) and poll at once. V already delivered to the agent's
 * current key is not sent again, unless the record brings another V. */
void vpoll_restart(vpoller *p, pagent *a, vagent *rec, uint64_t gen)
{
    vprov_v_changed(&a->v, a->rec.v, rec->v);
    /* The stored counters may be a checkpoint behind the ones in memory: they never go back. */
    vagent_state *ns = &rec->st;
    const vagent_state *os = &a->rec.st;
    if (os->attestation_count > ns->attestation_count)
        ns->attestation_count = os->attestation_count;
    if (os->last_received_quote > ns->last_received_quote)
        ns->last_received_quote = os->last_received_quote;
    if (os->last_successful_attestation > ns->last_successful_attestation)
        ns->last_successful_attestation = os->last_successful_attestation;
    /* What no round reads stays in the store only (revocation events and the API read it there). */
    free(rec->meta_data);
    free(rec->verifier_id);
    free(rec->verifier_ip);
    rec->meta_data = rec->verifier_id = rec->verifier_ip = NULL;
    vagent_move(&a->rec, rec);
    free(rec);
    a->saved_fp = vround_durable_fp(&a->rec.st);    /* what the store holds */
    a->unsaved = 0;
    pthread_mutex_lock(&p->mu);
    live_locked(a);
    pthread_mutex_unlock(&p->mu);
    snprintf(a->rec.st.agent_id, sizeof a->rec.st.agent_id, "%s", a->node.id);
    vattest_mem_clear(&a->mem);  /* everything parsed from the old record goes */
    a->mask = vattest_mask(a->rec.tpm_policy, false);
    if (a->rec.mb_policy)
        a->mask |= VATTEST_MB_PCRS;       /* a reference state is never left unchecked by a narrow mask */
    vpoll_drop_request(p, a);             /* a new address or certificate may come with the record */
    vpoll_event(p, a, gen, VRE_ACTIVATE, NULL, NULL);
}

/* ---- requests (event thread) ------------------------------------------------------------------ */

void vpoll_start_request(vpoller *p, pagent *a)
{
    pthread_mutex_lock(&p->mu);
    uint64_t gen = a->gen;
    pthread_mutex_unlock(&p->mu);
    bool vkey = a->rs.state == VSTATE_PROVIDE_V || a->rs.state == VSTATE_PROVIDE_V_RETRY;
    if (vkey && (!a->mem.pubkey || !a->rec.v || !*a->rec.v)) {
        vpoll_event(p, a, gen, VRE_VKEY_NO_KEY, NULL, NULL);
        return;
    }
    char why[QERR_MSG_MAX];
    if (vac_target_ok(&p->vo, &a->rec, why, sizeof why) < 0) {
        vpoll_event(p, a, gen, VRE_FATAL, "internal.verifier.no_quote", why);
        return;
    }
    bool fatal = false;
    int rc;
    if (vkey) {
        char *body = vprov_body(&a->v, a->rec.v, a->mem.pubkey, why, sizeof why);
        if (!body) {
            vpoll_event(p, a, gen, VRE_FATAL, "internal.verifier.no_v", why);
            return;
        }
        rc = vac_vkey(&a->http, p->handles, &p->vo, &a->rec, a, body, &fatal, why, sizeof why);
        free(body);
    } else {
        if (vattest_nonce(a->nonce, VATTEST_NONCE_LEN) < 0) {
            vpoll_event(p, a, gen, VRE_COMM_FAIL, NULL, "random generator failed");
            return;
        }
        a->requested = a->rec.st.next_ima_ml_entry;
        rc = vac_quote(&a->http, p->handles, &p->vo, &a->rec, a, a->nonce, a->mask, a->rs.partial0, a->requested,
                       &fatal, why, sizeof why);
    }
    if (rc == 0 && curl_multi_add_handle(vcl_multi(p->loop, a->shard), a->http.easy) != CURLM_OK) {
        snprintf(why, sizeof why, "cannot start the request");
        rc = -1;
    }
    if (rc < 0) {
        vac_release(&a->http, p->handles);
        if (fatal)
            vpoll_event(p, a, gen, VRE_FATAL, vkey ? "internal.verifier.no_v" : "internal.verifier.no_quote", why);
        else
            vpoll_event(p, a, gen, vkey ? VRE_VKEY_COMM_FAIL : VRE_COMM_FAIL, NULL, why);
        return;
    }
    a->flight_gen = gen;
    a->started = vpoll_mono();
    set_http_active(p, a, true);
    p->inflight++;
}

void vpoll_request_done(vpoller *p, CURL *e, CURLcode rc)
{
    char *priv = NULL;
    if (curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
        return;
    pagent *a = (pagent *)(void *)priv;
    long status = 0;
    if (curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    curl_multi_remove_handle(vcl_multi(p->loop, a->shard), e);
    p->inflight--;
    set_http_active(p, a, false);
    pthread_mutex_lock(&p->mu);
    bool stale = a->gen != a->flight_gen;
    pthread_mutex_unlock(&p->mu);
    if (stale || !a->rs.polling) {
        vac_release(&a->http, p->handles);
        return;
    }
    uint64_t gen = a->flight_gen;
    bool vkey = a->http.vkey;
    vac_result r;
    vac_finish(&a->http, rc, status, p->o.max_response_bytes, &r);
    size_t body_len = 0;
    char *body = r.kind == VAC_ANSWER && !vkey ? vac_take_body(&a->http, &body_len) : NULL;
    vac_release(&a->http, p->handles);      /* the connection stays in the multi handle's cache */
    if (r.kind == VAC_FATAL) {
        vpoll_event(p, a, gen, VRE_FATAL, r.event_id, r.why);
    } else if (r.kind == VAC_RETRY) {
        vpoll_event(p, a, gen, vkey ? VRE_VKEY_COMM_FAIL : VRE_COMM_FAIL, NULL, r.why);
    } else if (vkey) {
        vprov_done(&a->v);
        vpoll_event(p, a, gen, VRE_VKEY_DONE, NULL, NULL);
    } else {
        vjob *j = body ? calloc(1, sizeof *j) : NULL;
        if (!j) {
            free(body);
            vpoll_event(p, a, gen, VRE_COMM_FAIL, NULL, "out of memory");
            return;
        }
        j->owner = a;
        j->gen = gen;
        j->body = body;
        j->len = body_len;
        j->rec = &a->rec;
        j->mem = &a->mem;
        j->nonce = a->nonce;
        j->requested = a->requested;
        pthread_mutex_lock(&p->mu);
        a->job_active = true;
        pthread_mutex_unlock(&p->mu);
        p->inflight++;
        p->njobs++;
        vpool_push(p->pool, j);
    }
}

/* A worker finished a job (worker thread). */
void vpoll_job_done(void *ctx, vjob *j)
{
    vpoller *p = ctx;
    /* No wake-up: while jobs are out, the event thread waits at most until its next tick
     * (poller.c) and takes the whole list then. */
    pthread_mutex_lock(&p->mu);
    *p->done_tail = j;
    p->done_tail = &j->next;
    pthread_cond_signal(&p->done_cond);
    pthread_mutex_unlock(&p->mu);
}

void vpoll_apply_result(vpoller *p, vjob *j)
{
    pagent *a = j->owner;
    pthread_mutex_lock(&p->mu);
    a->job_active = false;
    uint64_t cur = a->gen;
    bool stale = cur != j->gen;
    pthread_cond_broadcast(&p->idle_cond);
    pthread_mutex_unlock(&p->mu);
    p->inflight--;
    p->njobs--;
    if (a->dead) {
        vpoll_agent_free(p, a);
        return;
    }
    if (stale) {
        vagent *r = a->next_rec;
        a->next_rec = NULL;
        if (r)
            vpoll_restart(p, a, r, cur);
        return;
    }
    vround_event ev = { .kind = VRE_QUOTE_FAIL };
    switch (j->out.outcome) {
    case VATTEST_PASS:
        ev.kind = VRE_QUOTE_PASS;
        ev.more = j->out.ima_pending;     /* V only once the whole list has been attested */
        ev.give_v = !ev.more && vprov_needed(&a->v, a->rec.v, a->mem.pubkey);
        ev.elapsed = vpoll_mono() - a->started;
        break;
    case VATTEST_REBOOT:
        ev.kind = VRE_QUOTE_REBOOT;
        break;
    default:
        ev.invalid_quote = j->out.outcome == VATTEST_INVALID_QUOTE;
        break;
    }
    transition(p, a, j->gen, &ev, &j->out, NULL, NULL);
}

