/* poller.c — the attestation loop's event thread and the API's commands (poller.h).
 *
 * Threads:
 *  - the event thread owns the libcurl multi handles (curl_loop.h), the schedule (sched.h) and
 *    every agent's round bookkeeping; it sends the requests (agent_client.h), hands complete 200 quote
 *    answers to the workers (attest_pool.h), turns every outcome into a round event, runs the
 *    round machine (round.h) and does what it says: reschedule, and hand the round's result to
 *    the writer (state_writer.h) as one owned value;
 *  - the requests in flight plus the jobs queued or running never exceed MAX_INFLIGHT.
 * Consistency with the API: each vpoller_agent_* call gives the agent a new generation number.
 * Results and writes carry the generation of the round they belong to and are dropped when it
 * changed; the notification itself queues a re-assertion of the state the API just stored, so
 * whatever order the writer and the API raced in, the API's state wins. */
#include "poller_int.h"

#include <errno.h>
#include <math.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store_lease.h"

#define MOD "verifier"
#define MAX_BACKOFF 3600.0           /* seconds */
#define IDLE_HANDLES 128             /* easy handles kept between requests (agent_client.h) */
#define SHARDS 64                    /* multi handles (curl_loop.h); each agent stays in one */
/* The event thread's wake-ups fall on a grid of TICK seconds: a round starts at the grid point
 * nearest its due time (at most TICK/2 early or late, so the schedule does not drift), and the
 * results of the workers are picked up at the next grid point (the workers do not wake the
 * thread). With a thousand agents every 2 s, a wake-up per request and per result was about
 * one sleep and wake-up of the event thread per round. */
#define TICK 0.010

enum { CMD_ADD = 1, CMD_REACTIVATE, CMD_STOP, CMD_REMOVE, CMD_LEASE, CMD_DROP };

/* Idle agent connections kept open: one per agent up to what the open-file limit allows (1,024
 * descriptors stay for the servers, the database and the rest). A connection evicted from the
 * cache costs the next round a TCP and TLS handshake on both sides, which beyond a thousand
 * agents was most of the verifier's CPU per attestation. */
static long conn_cache_size(void)
{
    struct rlimit rl;
    long n = MAX_INFLIGHT;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        n = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536 + 1024 ? 65536 : (long)rl.rlim_cur - 1024;
    return n < MAX_INFLIGHT ? MAX_INFLIGHT : n;
}

/* ---- commands (event thread) ------------------------------------------------------------------ */

static pagent *pagent_new(vpoller *p, const char *id)
{
    size_t len = strlen(id);
    pagent *a = calloc(1, sizeof *a + len + 1);
    if (!a)
        return NULL;
    memcpy(a->id, id, len + 1);
    vsched_node_init(&a->node, a->id);
    a->shard = vcl_shard_of(p->loop, id);
    a->rec.st.pcr10_alg = QHASH_NONE;
    return a;
}

static bool resumable(int state)
{
    return state == VSTATE_START || state == VSTATE_GET_QUOTE || state == VSTATE_GET_QUOTE_RETRY ||
           state == VSTATE_PROVIDE_V || state == VSTATE_PROVIDE_V_RETRY;
}

static void handle_cmd(vpoller *p, cmd *c)
{
    pthread_mutex_lock(&p->mu);
    pagent *a = vpoll_find(p, c->id);
    if (a && a->gen < c->gen)
        a->gen = c->gen;
    uint64_t gen = a ? a->gen : c->gen;
    bool holding = a && a->job_active;
    pthread_mutex_unlock(&p->mu);
    switch (c->type) {
    case CMD_LEASE:
        /* a lease won, or an agent of ours changed through another verifier's API */
        if (!c->rec || !resumable(c->rec->st.operational_state)) {
            if (a && a->rs.polling)
                vpoll_event(p, a, gen, VRE_STOP, NULL, NULL);   /* in memory only: the store has it */
            break;
        }
        /* fall through */
    case CMD_ADD:
    case CMD_REACTIVATE:
        if (!c->rec)
            break;
        if (!a) {
            /* normally created by notify(); this is the fallback when that allocation failed */
            a = pagent_new(p, c->id);
            pthread_mutex_lock(&p->mu);
            int rc = a ? vsched_insert(&p->sched, &a->node) : -1;
            if (rc == 0)
                a->gen = c->gen;
            pthread_mutex_unlock(&p->mu);
            if (rc < 0) {
                free(a);
                qlog(QLOG_ERROR, MOD, "out of memory: agent %s not polled", c->id);
                break;
            }
        }
        a->epoch = c->epoch;
        a->dropping = false;
        if (holding) {
            vpoll_free_rec(a->next_rec);
            a->next_rec = c->rec;    /* taken over when the job comes back */
        } else {
            vpoll_restart(p, a, c->rec, gen);
        }
        c->rec = NULL;
        break;
    case CMD_STOP:
        if (a) {
            vpoll_event(p, a, gen, VRE_STOP, NULL, NULL);
            vpoll_free_rec(a->next_rec);
            a->next_rec = NULL;
        }
        break;
    case CMD_DROP:
        /* The lease went: no new request from here on. A round in flight is finished and its
         * result sent to the writer, where the lease fence refuses it; then it is forgotten. */
        if (!a)
            break;
        pthread_mutex_lock(&p->mu);
        bool inflight = a->http_active || a->job_active;
        pthread_mutex_unlock(&p->mu);
        if (inflight) {
            vsched_cancel(&p->sched, &a->node);
            a->dropping = true;
            p->ndropping++;
            break;
        }
        /* fall through */
    case CMD_REMOVE:
        if (!a)
            break;
        pthread_mutex_lock(&p->mu);
        vsched_remove(&p->sched, a->node.id);
        bool busy = a->job_active;
        pthread_mutex_unlock(&p->mu);
        vpoll_event(p, a, gen, VRE_DELETE, NULL, NULL);
        if (busy)
            a->dead = true;          /* freed when its job comes back */
        else
            vpoll_agent_free(p, a);
        break;
    default:
        break;
    }
}

static void queue_set_state(vpoller *p, const char *id, uint64_t gen, int state)
{
    vresult *r = vresult_new(VRES_SET_STATE, id, gen);
    if (r)
        r->state = state;
    vwriter_push(p->writer, r);
}

/* An API change on the lease's side (API thread): the epoch goes up, so that a round the owner
 * still has in flight cannot overwrite what the API stored; an added agent is taken by this
 * verifier at once (the others get their share at the next renewals). *ours: this process holds
 * the lease, and *epoch is its new epoch. */
static int lease_touch(vpoller *p, int type, const char *agent_id, uint64_t *epoch, bool *ours)
{
    char owner[VSTORE_ID_MAX];
    qerr err = { 0 };
    int rc = vstore_lease_touch(p->store, agent_id, p->instance, type == CMD_ADD, owner, epoch, &err);
    if (rc < 0) {
        qlog(QLOG_ERROR, MOD, "agent %s: its lease could not be updated: %s", agent_id, err.msg);
        return -1;
    }
    *ours = rc > 0 && strcmp(owner, p->instance) == 0;
    if (*ours)
        vlease_note(p->lease, agent_id, *epoch);
    /* A round of the old owner saved between the API's write and the new epoch is overwritten
     * here; any later one is refused by the fence. */
    else if (rc > 0 && type == CMD_REACTIVATE && vstore_set_state(p->store, agent_id, VSTATE_START, &err) < 0)
        qlog(QLOG_ERROR, MOD, "saving the state of agent %s failed: %s", agent_id, err.msg);
    return 0;
}

static void notify(vpoller *p, int type, const char *agent_id)
{
    if (!p || !agent_id || strlen(agent_id) >= VSTORE_ID_MAX)
        return;
    cmd *c = calloc(1, sizeof *c);
    if (!c) {
        qlog(QLOG_ERROR, MOD, "out of memory: change of agent %s not applied", agent_id);
        return;
    }
    c->type = type;
    snprintf(c->id, sizeof c->id, "%s", agent_id);
    bool activate = type == CMD_ADD || type == CMD_REACTIVATE;
    bool ours = true;
    if (type != CMD_REMOVE && lease_touch(p, type, agent_id, &c->epoch, &ours) < 0) {
        free(c);
        return;
    }
    if (!ours) {
        /* another verifier polls it and sees the new epoch at its next renewal */
        free(c);
        return;
    }
    if (activate) {
        c->rec = calloc(1, sizeof *c->rec);
        qerr err = { 0 };
        int rc = c->rec ? vstore_agent_get(p->store, agent_id, c->rec, &err) : -1;
        if (rc != 1) {
            if (rc < 0)
                qlog(QLOG_ERROR, MOD, "agent %s not polled: %s", agent_id, c->rec ? err.msg : "out of memory");
            else
                qlog(QLOG_WARNING, MOD, "agent %s not polled: not in the store", agent_id);
            vpoll_free_rec(c->rec);
            free(c);
            return;
        }
    }
    /* An added or reactivated agent gets its entry now, so that its generation is in place
     * before any later notification or write is looked at. */
    pagent *fresh = activate ? pagent_new(p, agent_id) : NULL;
    pthread_mutex_lock(&p->mu);
    uint64_t gen = c->gen = ++p->gen_counter;
    pagent *a = vpoll_find(p, agent_id);
    if (!a && fresh && vsched_insert(&p->sched, &fresh->node) == 0) {
        a = fresh;
        fresh = NULL;
    }
    if (a)
        a->gen = gen;            /* results and writes of earlier rounds are now stale */
    *p->cmds_tail = c;
    p->cmds_tail = &c->next;
    c = NULL;                    /* the event thread owns (and frees) it from here on */
    pthread_mutex_unlock(&p->mu);
    free(fresh);
    /* Re-assert what the API stored, after anything of ours that may still be queued. */
    int st = vround_api_state(type == CMD_STOP ? VRE_STOP : activate ? VRE_ACTIVATE : VRE_DELETE);
    if (st >= 0)
        queue_set_state(p, agent_id, gen, st);
    vcl_wake(p->loop);
}

void vpoller_agent_added(vpoller *p, const char *agent_id)
{
    notify(p, CMD_ADD, agent_id);
}

void vpoller_agent_reactivated(vpoller *p, const char *agent_id)
{
    notify(p, CMD_REACTIVATE, agent_id);
}

void vpoller_agent_stopped(vpoller *p, const char *agent_id)
{
    notify(p, CMD_STOP, agent_id);
}

void vpoller_agent_removed(vpoller *p, const char *agent_id)
{
    notify(p, CMD_REMOVE, agent_id);
}

bool vpoller_agent_busy(vpoller *p, const char *agent_id)
{
    if (!p || !agent_id)
        return false;
    pthread_mutex_lock(&p->mu);
    pagent *a = vpoll_find(p, agent_id);
    bool busy = a && (a->http_active || a->job_active);
    pthread_mutex_unlock(&p->mu);
    return busy;
}

bool vpoller_agent_wait_idle(vpoller *p, const char *agent_id, long timeout_ms)
{
    if (!p || !agent_id)
        return true;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    pagent *a;
    while ((a = vpoll_find(p, agent_id)) && (a->http_active || a->job_active))
        if (pthread_cond_timedwait(&p->idle_cond, &p->mu, &dl) == ETIMEDOUT)
            break;
    a = vpoll_find(p, agent_id);
    bool idle = !a || !(a->http_active || a->job_active);
    pthread_mutex_unlock(&p->mu);
    return idle;
}

bool vpoller_agent_counts(vpoller *p, const char *agent_id, uint64_t *rounds, uint64_t *requests)
{
    if (!p || !agent_id)
        return false;
    pthread_mutex_lock(&p->mu);
    pagent *a = vpoll_find(p, agent_id);
    if (a) {
        *rounds = a->rounds;
        *requests = a->requests;
    }
    pthread_mutex_unlock(&p->mu);
    return a != NULL;
}

bool vpoller_agent_live(vpoller *p, const char *agent_id, vpoller_live *out)
{
    if (!p || !agent_id)
        return false;
    pthread_mutex_lock(&p->mu);
    pagent *a = vpoll_find(p, agent_id);
    if (a)
        *out = a->live;
    pthread_mutex_unlock(&p->mu);
    return a != NULL;
}

void vpoller_policy_changed(vpoller *p, long policy_id)
{
    if (p)
        vpolicy_cache_invalidate(p->policies, policy_id);
}

/* ---- the event loop ---------------------------------------------------------------------------- */

/* Give freed heap pages back to the system now and then. Connecting to a thousand agents at
 * once (TLS handshakes, certificate parsing, the API's JSON) leaves tens of MB of free chunks in
 * the arenas that glibc keeps unless asked; without this the RSS per agent was about twice the
 * memory in use. */
#define TRIM_EVERY 10.0              /* seconds */
static void trim_heap(vpoller *p, double now, double *last)
{
    if (now - *last < TRIM_EVERY)
        return;
    *last = now;
    vac_pool_shrink(p->handles);     /* idle easy handles unused for a whole period */
#ifdef __GLIBC__
    (void)malloc_trim(0);            /* 1 when memory was released, 0 when there was none: both fine */
#endif
}

/* Commands and finished jobs. */
static void drain(vpoller *p)
{
    pthread_mutex_lock(&p->mu);
    cmd *cmds = p->cmds;
    p->cmds = NULL;
    p->cmds_tail = &p->cmds;
    vjob *done = p->done;
    p->done = NULL;
    p->done_tail = &p->done;
    pthread_mutex_unlock(&p->mu);
    while (cmds) {
        cmd *nx = cmds->next;
        handle_cmd(p, cmds);
        vpoll_free_rec(cmds->rec);
        free(cmds);
        cmds = nx;
    }
    while (done) {
        vjob *nx = done->next;
        vpoll_apply_result(p, done);
        vjob_free(done);
        done = nx;
    }
}

/* Agents whose lease went while a round was in flight: forgotten once that round is over. */
static void sweep_dropped(vpoller *p)
{
    size_t left = 0;
    for (size_t i = vsched_count(&p->sched); i-- > 0;) {
        pagent *a = (pagent *)(void *)vsched_nth(&p->sched, i);
        if (!a->dropping)
            continue;
        pthread_mutex_lock(&p->mu);
        bool idle = !a->http_active && !a->job_active;
        if (idle)
            vsched_remove(&p->sched, a->node.id);
        pthread_mutex_unlock(&p->mu);
        if (idle)
            vpoll_agent_free(p, a);
        else
            left++;
    }
    p->ndropping = left;
}

static bool any_job(vpoller *p)      /* p->mu held */
{
    for (size_t i = 0; i < vsched_count(&p->sched); i++)
        if (((pagent *)(void *)vsched_nth(&p->sched, i))->job_active)
            return true;
    return false;
}

static void on_done(void *ctx, CURL *e, CURLcode rc)
{
    vpoll_request_done(ctx, e, rc);
}

static void *event_main(void *arg)
{
    vpoller *p = arg;
    double trimmed = vpoll_mono();
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stopping = p->stopping;
        double until = p->lease_until;
        pthread_mutex_unlock(&p->mu);
        if (stopping)
            break;
        drain(p);
        double now = vpoll_mono();
        trim_heap(p, now, &trimmed);
        /* Past the leases' end (renewals failing, or this process was stopped): send nothing
         * until they are renewed; the agents may be another verifier's by now. */
        bool leased = now < until;
        vsched_node *n;
        while (leased && (n = vsched_first(&p->sched)) && n->due <= now + TICK / 2 && p->inflight < MAX_INFLIGHT) {
            vsched_cancel(&p->sched, n);
            if (!((pagent *)(void *)n)->dropping)
                vpoll_start_request(p, (pagent *)(void *)n);
        }
        if (p->ndropping)
            sweep_dropped(p);
        /* Past the leases' end nothing is sent: wake for the leases, not for the schedule. */
        double wait = 1.0;               /* seconds */
        now = vpoll_mono();
        if (leased && (n = vsched_first(&p->sched)) && p->inflight < MAX_INFLIGHT) {
            double at = ceil((n->due - TICK / 2) / TICK) * TICK;     /* its grid point */
            double d = (at < until ? at : until) - now;
            if (d < wait)
                wait = d;
        }
        if (p->njobs > 0) {              /* results come back without a wake-up */
            double d = (floor(now / TICK) + 1) * TICK - now;
            if (d < wait)
                wait = d;
        }
        vcl_run(p->loop, wait, on_done, p);
    }
    /* Stop: abandon requests in flight (those rounds simply did not happen), then wait for the
     * jobs the workers hold and apply their results so they are saved. */
    for (size_t i = 0; i < vsched_count(&p->sched); i++)
        vpoll_drop_request(p, (pagent *)(void *)vsched_nth(&p->sched, i));
    pthread_mutex_lock(&p->mu);
    while (any_job(p) || p->done) {
        if (!p->done)
            pthread_cond_wait(&p->done_cond, &p->mu);
        pthread_mutex_unlock(&p->mu);
        drain(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    drain(p);
    return NULL;
}

/* ---- start / stop --------------------------------------------------------------------------------- */

/* ---- leases (lease.h; called on the lease thread) ---------------------------------------------- */

/* bump: results and writes of earlier rounds become stale (a lease won or changed). A lease
 * lost does not bump: what is already on its way to the writer meets the fence and is refused
 * there (logged, counted) rather than dropped unseen. */
static void queue_cmd(vpoller *p, cmd *c, bool bump)
{
    pthread_mutex_lock(&p->mu);
    c->gen = bump ? ++p->gen_counter : 0;
    pagent *a = vpoll_find(p, c->id);
    if (a && bump)
        a->gen = c->gen;
    *p->cmds_tail = c;
    p->cmds_tail = &c->next;
    pthread_mutex_unlock(&p->mu);
    vcl_wake(p->loop);
}

static void lease_adopt(void *ctx, const char *agent_id, uint64_t epoch)
{
    vpoller *p = ctx;
    cmd *c = calloc(1, sizeof *c);
    vagent *rec = c ? calloc(1, sizeof *rec) : NULL;
    qerr err = { 0 };
    int rc = rec ? vstore_agent_get(p->store, agent_id, rec, &err) : qerr_set(&err, "out of memory");
    if (rc <= 0) {
        if (rc < 0)
            qlog(QLOG_ERROR, MOD, "agent %s: lease taken but the agent could not be loaded: %s", agent_id, err.msg);
        vpoll_free_rec(rec);
        free(c);
        return;
    }
    c->type = CMD_LEASE;
    snprintf(c->id, sizeof c->id, "%s", agent_id);
    c->epoch = epoch;
    c->rec = rec;
    if (resumable(rec->st.operational_state) && ++p->adopted)
        qlog(QLOG_DEBUG, MOD, "agent %s: lease held (epoch %llu), polled by this verifier", agent_id,
             (unsigned long long)epoch);
    queue_cmd(p, c, true);
}

static void lease_drop(void *ctx, const char *agent_id)
{
    vpoller *p = ctx;
    cmd *c = calloc(1, sizeof *c);
    if (!c) {
        qlog(QLOG_ERROR, MOD, "out of memory: agent %s is still polled after its lease went", agent_id);
        return;
    }
    c->type = CMD_DROP;
    snprintf(c->id, sizeof c->id, "%s", agent_id);
    qlog(QLOG_DEBUG, MOD, "agent %s: lease gone, no longer polled by this verifier", agent_id);
    queue_cmd(p, c, false);
}

static void lease_valid(void *ctx, double until)
{
    vpoller *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->lease_until = until;
    pthread_mutex_unlock(&p->mu);
    vcl_wake(p->loop);
}

static int start_leases(vpoller *p, qerr *err)
{
    if (p->o.instance_id && *p->o.instance_id) {
        snprintf(p->instance, sizeof p->instance, "%s", p->o.instance_id);
    } else {
        char host[128] = "localhost";
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = '\0';
        snprintf(p->instance, sizeof p->instance, "%s:%ld", host, (long)getpid());
    }
    vwriter_set_fence(p->writer, p->instance);
    vlease_opts lo = { .instance = p->instance, .verifier_id = p->verifier_id,
                       .ttl = p->o.lease_ttl > 0 ? p->o.lease_ttl : 10.0, .adopt = lease_adopt,
                       .drop = lease_drop, .valid = lease_valid, .ctx = p };
    p->lease = vlease_start(p->store, &lo, err);
    if (p->lease && p->adopted)
        qlog(QLOG_INFO, MOD, "resuming attestation of %zu agent(s)", p->adopted);
    return p->lease ? 0 : -1;
}

static bool writer_current(void *ctx, const char *agent_id, uint64_t gen)
{
    vpoller *p = ctx;
    pthread_mutex_lock(&p->mu);
    pagent *a = vpoll_find(p, agent_id);
    /* An agent no longer here was deleted (its row and lease are gone) or its lease was lost:
     * either way the lease fence decides, and refuses. */
    bool ok = a ? a->gen == gen : true;
    if (a && !ok)
        a->resave = true;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void free_all(vpoller *p)
{
    for (size_t i = 0; i < vsched_count(&p->sched); i++)
        vpoll_agent_free(p, (pagent *)(void *)vsched_nth(&p->sched, i));
    vsched_free(&p->sched);
    while (p->cmds) {
        cmd *nx = p->cmds->next;
        vpoll_free_rec(p->cmds->rec);
        free(p->cmds);
        p->cmds = nx;
    }
    vcl_free(p->loop);
    vac_pool_free(p->handles);
    curl_slist_free_all(p->json_hdr);
    vpolicy_cache_free(p->policies);
    free(p->tls_cert);
    free(p->tls_key);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->done_cond);
    pthread_cond_destroy(&p->idle_cond);
    free(p);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_opt(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static void set_defaults(vpoller *p, const vpoller_opts *o)
{
    p->o = *o;
    if (!(p->o.quote_interval >= 0))
        p->o.quote_interval = 2;
    if (p->o.max_retries < 0)
        p->o.max_retries = 5;
    if (!(p->o.retry_interval >= 0))
        p->o.retry_interval = 2;
    if (p->o.request_timeout_ms <= 0)
        p->o.request_timeout_ms = 30000;
    if (p->o.max_response_bytes <= 0)
        p->o.max_response_bytes = 128L << 20;
    if (p->o.checkpoint.rounds < 1)
        p->o.checkpoint.rounds = 1;
    snprintf(p->verifier_id, sizeof p->verifier_id, "%s", o->verifier_id && *o->verifier_id ? o->verifier_id : "default");
    p->o.verifier_id = p->verifier_id;
    p->tls_cert = dup_opt(o->tls_cert_file);
    p->tls_key = dup_opt(o->tls_key_file);
    p->o.tls_cert_file = p->tls_cert;
    p->o.tls_key_file = p->tls_key;
    p->rcfg = (vround_cfg){ .quote_interval = p->o.quote_interval, .retry_interval = p->o.retry_interval,
                            .exponential_backoff = p->o.exponential_backoff, .max_retries = p->o.max_retries,
                            .max_backoff = MAX_BACKOFF };
    p->vo = (vac_opts){ .request_timeout_ms = p->o.request_timeout_ms, .max_response_bytes = p->o.max_response_bytes,
                        .tls_cert_file = p->tls_cert, .tls_key_file = p->tls_key,
                        .allow_plain_http = p->o.allow_plain_http };
}

vpoller *vpoller_start(const vpoller_opts *o, vstore *store, qerr *err)
{
    if (!o || !store) {
        qerr_set(err, "poller: missing options or store");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        qerr_set(err, "poller: libcurl initialisation failed: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    vpoller *p = calloc(1, sizeof *p);
    if (!p) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    set_defaults(p, o);
    p->store = store;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->done_cond, NULL);
    pthread_cond_init(&p->idle_cond, NULL);
    p->cmds_tail = &p->cmds;
    p->done_tail = &p->done;

    unsigned nw = o->num_workers;
    if (nw == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nw = c > 0 ? (unsigned)c : 2;
    }
    if (nw > 256)
        nw = 256;
    p->policies = vpolicy_cache_new(store, 0, err);
    long conns = conn_cache_size();
    p->loop = p->policies ? vcl_new(SHARDS, conns / SHARDS + conns / (4 * SHARDS) + 16, err) : NULL;
    p->handles = vac_pool_new(IDLE_HANDLES);
    p->json_hdr = curl_slist_append(NULL, "Content-Type: application/json");
    p->vo.json_hdr = p->json_hdr;
    if (!p->policies || !p->loop || !p->handles || !p->json_hdr) {
        if (p->loop)
            qerr_set(err, "out of memory");
        free_all(p);
        return NULL;
    }
    if (!(p->writer = vwriter_start(store, writer_current, p, o->on_round, o->on_round_ctx, err))) {
        free_all(p);
        return NULL;
    }
    if (start_leases(p, err) < 0) {
        qerr_prefix(err, "poller");
        vwriter_stop(p->writer);
        free_all(p);
        return NULL;
    }
    vattest_opts ao = { .violations_fail = p->o.violations_fail, .log = true,
                        .mb_accept_all = p->o.mb_accept_all, .mb_evaluate_always = p->o.mb_evaluate_always };
    p->pool = vpool_start(nw, &ao, p->policies, vpoll_job_done, p, err);
    if (!p->pool || pthread_create(&p->ev, NULL, event_main, p) != 0) {
        if (p->pool)
            qerr_set(err, "poller: cannot start the event thread");
        vlease_stop(p->lease);
        vpool_stop(p->pool);
        vwriter_stop(p->writer);
        vlease_leave(p->lease);
        free_all(p);
        return NULL;
    }
    qlog(QLOG_DEBUG, MOD, "poller started: %u workers, quote interval %.3f s", vpool_size(p->pool),
         p->o.quote_interval);
    return p;
}

void vpoller_stop(vpoller *p)
{
    if (!p)
        return;
    vlease_stop(p->lease);      /* no more agents won or lost */
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_mutex_unlock(&p->mu);
    vcl_wake(p->loop);
    pthread_join(p->ev, NULL);
    vpool_stop(p->pool);        /* the workers finish the jobs they hold */
    drain(p);                   /* their results, and commands that came after the loop ended */
    /* The event thread is gone: its agents are this thread's now. Counters kept in memory since
     * the last checkpoint are written, so a restart resumes from them. */
    for (size_t i = 0; i < vsched_count(&p->sched); i++)
        vpoll_checkpoint(p, (pagent *)(void *)vsched_nth(&p->sched, i));
    vwriter_stop(p->writer);    /* everything queued is written */
    p->writer = NULL;
    vlease_leave(p->lease);     /* the others take over at once */
    free_all(p);
}
