/* state_writer.c — the poller's single writer (state_writer.h). */
#include "state_writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

#define MOD "verifier"
#define MAX_BATCH 512              /* round results per transaction */

struct vwriter {
    vstore *store;
    vwriter_current_fn current;
    void *current_ctx;
    vwriter_hook_fn hook;
    void *hook_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    vresult *ops, **tail;
    bool quit;
    pthread_t thread;
    char fence_owner[VSTORE_ID_MAX];   /* "" = not fenced */
    uint64_t fenced;                   /* mu */
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
    for (size_t i = 0; i < n; i++) {
        const vresult *r = batch[i];
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
            .store_seconds = i == 0 ? took : -1,
        };
        w->hook(w->hook_ctx, &rep);
    }
}

static void flush(vwriter *w, vresult **batch, size_t *n)
{
    if (*n == 0)
        return;
    vstore_round rounds[MAX_BATCH];
    const vstore_round *ptrs[MAX_BATCH];
    bool refused[MAX_BATCH];
    for (size_t i = 0; i < *n; i++) {
        const vresult *r = batch[i];
        rounds[i] = (vstore_round){
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
        refused[i] = false;
        ptrs[i] = &rounds[i];
    }
    qerr err = { 0 };
    double t0 = mono();
    int rc = vstore_round_save_batch(w->store, ptrs, *n, &err);
    double t1 = mono();
    if (rc < 0) {
        qlog(QLOG_ERROR, MOD, "saving the rounds of %zu agent(s) failed: %s", *n, err.msg);
        *n = 0;
        return;
    }
    /* Rounds the lease fence refused are not reported: nothing of them was applied. */
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        if (refused[i]) {
            qlog(QLOG_WARNING, MOD, "agent %s: round result refused: the lease (epoch %llu) is no longer this "
                 "verifier's", batch[i]->agent_id, (unsigned long long)batch[i]->epoch);
            pthread_mutex_lock(&w->mu);
            w->fenced++;
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        batch[kept++] = batch[i];
    }
    report(w, batch, kept, t1, t1 - t0);
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
        if (vstore_set_state(w->store, r->agent_id, r->state, &err) < 0)
            qlog(QLOG_ERROR, MOD, "saving the state of agent %s failed: %s", r->agent_id, err.msg);
    }
    flush(w, batch, &n);
    while (list) {
        vresult *nx = list->next;
        vresult_free(list);
        list = nx;
    }
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
        vresult *list = w->ops;
        w->ops = NULL;
        w->tail = &w->ops;
        pthread_mutex_unlock(&w->mu);
        write_list(w, list);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
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
    if (pthread_mutex_init(&w->mu, NULL) != 0 || pthread_cond_init(&w->cond, NULL) != 0) {
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
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

void vwriter_set_fence(vwriter *w, const char *owner)
{
    if (w)
        snprintf(w->fence_owner, sizeof w->fence_owner, "%s", owner ? owner : "");
}

uint64_t vwriter_fenced(vwriter *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    uint64_t n = w->fenced;
    pthread_mutex_unlock(&w->mu);
    return n;
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
