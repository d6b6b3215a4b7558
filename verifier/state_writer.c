/* state_writer.c — the poller's single writer (state_writer.h). */
#include "state_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

#define MOD "verifier"
#define MAX_BATCH 512              /* round results per transaction */

/* Process-wide write counters (vwriter_stats): the bench and /metrics read them. */
static unsigned long long stat_tx, stat_rows, stat_fenced;

struct vwriter {
    vstore *store;
    vwriter_current_fn current;
    void *current_ctx;
    vwriter_hook_fn hook;
    void *hook_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    vresult *ops, **tail;
    size_t nops;
    bool quit;
    pthread_t thread;
    char fence_owner[VSTORE_ID_MAX];   /* "" = not fenced */
};

vresult *vresult_new(vres_kind kind, const char *agent_id, uint64_t gen)
{
    vresult *r = calloc(1, sizeof *r);
    if (!r) {
        qlog(QLOG_ERROR, MOD, "out of memory: the round of agent %s is not saved", agent_id);
        return NULL;
    }
    r->kind = kind;
    snprintf(r->agent_id, sizeof r->agent_id, "%s", agent_id);
    r->gen = gen;
    r->st.pcr10_alg = QHASH_NONE;
    return r;
}

void vresult_free(vresult *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nfailures; i++)
        vfailure_free(&r->failures[i]);
    free(r->failures);
    vagent_state_clear(&r->st);
    free(r);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* saved: when the batch's commit ended; took: how long it took (both monotonic seconds). */
static void report(vwriter *w, vresult *const *batch, size_t n, double saved, double took)
{
    if (!w->hook)
        return;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        const vresult *r = batch[i];
        if (r->checkpoint)
            continue;
        const vfailure *f = r->set_failures && r->nfailures ? &r->failures[0] : NULL;
        vround_report rep = {
            .agent_id = r->agent_id,
            .old_state = r->old_state,
            .new_state = r->st.operational_state,
            .event_id = f ? f->event_id : NULL,
            .reason = f ? f->reason : r->reason[0] ? r->reason : NULL,
            .attestation_count = r->st.attestation_count,
            .rounds = r->rounds,
            .requests = r->requests,
            .round_seconds = r->sent_at > 0 ? saved - r->sent_at : -1,
            .store_seconds = first && took >= 0 ? took : -1,
        };
        first = false;
        w->hook(w->hook_ctx, &rep);
    }
}

/* Saves one batch. A database that cannot be reached (code 503) keeps the batch: it is tried
 * again, 0.5 s after the first failure and up to 5 s apart later, until it is saved or the
 * writer stops, so no round result is dropped during a database restart. */
static int save_batch(vwriter *w, const vstore_round *const *rounds, size_t n, qerr *err)
{
    double wait = 0.5;
    bool said = false;
    for (;;) {
        for (size_t i = 0; i < n; i++)     /* a failed attempt may have set some */
            if (rounds[i]->fenced)
                *rounds[i]->fenced = false;
        int rc = vstore_round_save_batch(w->store, rounds, n, err);
        if (rc == 0 && said)
            qlog(QLOG_INFO, MOD, "database reachable again: the kept rounds of %zu agent(s) are saved", n);
        if (rc == 0 || err->code != 503)
            return rc;
        if (!said)
            qlog(QLOG_WARNING, MOD, "%s; keeping the rounds of %zu agent(s) and retrying", err->msg, n);
        said = true;
        struct timespec until;                 /* w->cond runs on CLOCK_MONOTONIC */
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)wait;
        until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&w->mu);
        while (!w->quit && pthread_cond_timedwait(&w->cond, &w->mu, &until) == 0)
            ;   /* woken by a push: keep waiting */
        bool quit = w->quit;
        pthread_mutex_unlock(&w->mu);
        if (quit)
            return rc;
        wait = wait * 2 > 5 ? 5 : wait * 2;
        *err = (qerr){ 0 };
    }
}

static void flush(vwriter *w, vresult **batch, size_t *n)
{
    if (*n == 0)
        return;
    vstore_round rounds[MAX_BATCH];
    const vstore_round *ptrs[MAX_BATCH];
    bool refused[MAX_BATCH];
    size_t nw = 0;
    for (size_t i = 0; i < *n; i++) {
        const vresult *r = batch[i];
        refused[i] = false;
        if (r->memory_only)
            continue;
        rounds[nw] = (vstore_round){
            .st = &r->st,
            .hash_alg = r->set_algs ? r->algs[0] : NULL,
            .enc_alg = r->set_algs ? r->algs[1] : NULL,
            .sign_alg = r->set_algs ? r->algs[2] : NULL,
            .set_failures = r->set_failures,
            .failures = r->failures,
            .nfailures = r->nfailures,
            .lease_owner = w->fence_owner[0] ? w->fence_owner : NULL,
            .lease_epoch = r->epoch,
            .fenced = &refused[i],
        };
        ptrs[nw] = &rounds[nw];
        nw++;
    }
    qerr err = { 0 };
    double t0 = mono();
    int rc = nw ? save_batch(w, ptrs, nw, &err) : 0;
    double t1 = mono();
    if (rc < 0) {
        qlog(QLOG_ERROR, MOD, "saving the rounds of %zu agent(s) failed: %s", nw, err.msg);
        *n = 0;
        return;
    }
    /* Rounds the lease fence refused are not reported: nothing of them was applied. */
    unsigned long long rows = 0;
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        if (refused[i]) {
            qlog(QLOG_WARNING, MOD, "agent %s: round result refused: the lease (epoch %llu) is no longer this "
                 "verifier's", batch[i]->agent_id, (unsigned long long)batch[i]->epoch);
            __atomic_add_fetch(&stat_fenced, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (!batch[i]->memory_only)
            rows += 1 + (batch[i]->set_failures ? batch[i]->nfailures : 0);
        batch[kept++] = batch[i];
    }
    if (nw) {
        __atomic_add_fetch(&stat_tx, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&stat_rows, rows, __ATOMIC_RELAXED);
    }
    report(w, batch, kept, t1, nw ? t1 - t0 : -1);
    *n = 0;
}

static void write_list(vwriter *w, vresult *list)
{
    vresult *batch[MAX_BATCH];
    size_t n = 0;
    for (vresult *r = list; r; r = r->next) {
        if (w->current && !w->current(w->current_ctx, r->agent_id, r->gen))
            continue;
        if (r->kind == VRES_ROUND) {
            if (n == MAX_BATCH)
                flush(w, batch, &n);
            batch[n++] = r;
            continue;
        }
        flush(w, batch, &n);     /* keep the order */
        qerr err = { 0 };
        if (vstore_set_state(w->store, r->agent_id, r->state, &err) < 0) {
            qlog(QLOG_ERROR, MOD, "saving the state of agent %s failed: %s", r->agent_id, err.msg);
        } else {
            __atomic_add_fetch(&stat_tx, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&stat_rows, 1, __ATOMIC_RELAXED);
        }
    }
    flush(w, batch, &n);
    while (list) {
        vresult *nx = list->next;
        vresult_free(list);
        list = nx;
    }
}

/* Wait (w->mu held) until the window that opened with the first queued result closed, the
 * queue holds a full batch, or the writer is stopping. */
static void wait_window(vwriter *w)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += VWRITER_WINDOW_MS * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (!w->quit && w->nops < MAX_BATCH)
        if (pthread_cond_timedwait(&w->cond, &w->mu, &dl) == ETIMEDOUT)
            break;
}

static void *writer_main(void *arg)
{
    vwriter *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->ops && !w->quit)
            pthread_cond_wait(&w->cond, &w->mu);
        if (!w->ops)
            break;
        wait_window(w);
        vresult *list = w->ops;
        w->ops = NULL;
        w->tail = &w->ops;
        w->nops = 0;
        pthread_mutex_unlock(&w->mu);
        write_list(w, list);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void vwriter_stats(unsigned long long *transactions, unsigned long long *rows)
{
    *transactions = __atomic_load_n(&stat_tx, __ATOMIC_RELAXED);
    *rows = __atomic_load_n(&stat_rows, __ATOMIC_RELAXED);
}

vwriter *vwriter_start(vstore *store, vwriter_current_fn current, void *current_ctx, vwriter_hook_fn hook,
                       void *hook_ctx, qerr *err)
{
    vwriter *w = calloc(1, sizeof *w);
    if (!w) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    w->store = store;
    w->current = current;
    w->current_ctx = current_ctx;
    w->hook = hook;
    w->hook_ctx = hook_ctx;
    w->tail = &w->ops;
    pthread_condattr_t ca;
    bool ca_ok = pthread_condattr_init(&ca) == 0;
    bool cond_ok = ca_ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                   pthread_cond_init(&w->cond, &ca) == 0;    /* the batching window is monotonic */
    if (ca_ok)
        pthread_condattr_destroy(&ca);
    if (!cond_ok || pthread_mutex_init(&w->mu, NULL) != 0) {
        if (cond_ok)
            pthread_cond_destroy(&w->cond);
        free(w);
        qerr_set(err, "cannot initialise the writer's lock");
        return NULL;
    }
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mu);
        free(w);
        qerr_set(err, "cannot start the writer thread");
        return NULL;
    }
    return w;
}

void vwriter_push(vwriter *w, vresult *r)
{
    if (!r)
        return;
    if (!w) {
        vresult_free(r);
        return;
    }
    r->next = NULL;
    pthread_mutex_lock(&w->mu);
    *w->tail = r;
    w->tail = &r->next;
    /* The first result opens the window; a full batch closes it early. */
    if (w->nops++ == 0 || w->nops == MAX_BATCH)
        pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

void vwriter_set_fence(vwriter *w, const char *owner)
{
    if (w)
        snprintf(w->fence_owner, sizeof w->fence_owner, "%s", owner ? owner : "");
}

unsigned long long vwriter_fenced(void)
{
    return __atomic_load_n(&stat_fenced, __ATOMIC_RELAXED);
}

void vwriter_stop(vwriter *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
