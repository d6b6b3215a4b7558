/* attest_pool.c — attestation workers (attest_pool.h). */
#include "attest_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

#define MOD "verifier"

struct vpool {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    vjob *jobs, **tail;
    bool quit;
    pthread_t *threads;
    unsigned n;
    vattest_opts ao;
    vpolicy_cache *policies;
    vpool_done_fn done;
    void *ctx;
};

void vjob_free(vjob *j)
{
    if (!j)
        return;
    free(j->body);
    vattest_out_free(&j->out);
    free(j);
}

static void judge(vpool *p, vattest_ctx *ctx, const char *ctx_err, vjob *j)
{
    int64_t now = (int64_t)time(NULL);
    cJSON *json = cJSON_ParseWithLength(j->body, j->len);
    const cJSON *results = cJSON_IsObject(json) ? cJSON_GetObjectItemCaseSensitive(json, "results") : NULL;
    vpolicy_ref *pol = NULL;
    qerr perr = { 0 };
    if (!ctx) {
        vattest_fail(&j->out, j->rec, now, VATTEST_FAILED, "internal.verifier.exception", ctx_err);
    } else if (!(pol = vpolicy_cache_get(p->policies, j->rec->policy_id, &perr))) {
        qlog(QLOG_ERROR, MOD, "agent %s: runtime policy %ld unusable: %s", j->rec->agent_id, j->rec->policy_id,
             perr.msg);
        vattest_fail(&j->out, j->rec, now, VATTEST_FAILED, "internal.verifier.exception", perr.msg);
    } else {
        vattest_in in = {
            .agent = j->rec,
            .nonce = j->nonce,
            .requested_entry = j->requested,
            .results = results,
            .policy = pol,
            .now = now,
        };
        vattest_round(ctx, &in, j->mem, &j->out);
    }
    vpolicy_ref_release(pol);
    cJSON_Delete(json);
    free(j->body);
    j->body = NULL;
}

static void *worker_main(void *arg)
{
    vpool *p = arg;
    qerr err = { 0 };
    vattest_ctx *ctx = vattest_ctx_new(&p->ao, &err);
    if (!ctx)
        qlog(QLOG_ERROR, MOD, "attestation worker: %s", err.msg);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->jobs && !p->quit)
            pthread_cond_wait(&p->cond, &p->mu);
        vjob *j = p->jobs;
        if (!j) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        p->jobs = j->next;
        if (!p->jobs)
            p->tail = &p->jobs;
        pthread_mutex_unlock(&p->mu);
        j->next = NULL;
        judge(p, ctx, "attestation worker unavailable", j);
        p->done(p->ctx, j);
    }
    vattest_ctx_free(ctx);
    return NULL;
}

vpool *vpool_start(unsigned nworkers, const vattest_opts *ao, vpolicy_cache *policies, vpool_done_fn done,
                   void *ctx, qerr *err)
{
    vpool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc(nworkers ? nworkers : 1, sizeof *p->threads))) {
        free(p);
        qerr_set(err, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0 || pthread_cond_init(&p->cond, NULL) != 0) {
        free(p->threads);
        free(p);
        qerr_set(err, "cannot initialise the workers' lock");
        return NULL;
    }
    p->tail = &p->jobs;
    p->ao = *ao;
    p->policies = policies;
    p->done = done;
    p->ctx = ctx;
    for (; p->n < nworkers; p->n++)
        if (pthread_create(&p->threads[p->n], NULL, worker_main, p) != 0)
            break;
    if (p->n == 0) {
        vpool_stop(p);
        qerr_set(err, "cannot start attestation workers");
        return NULL;
    }
    if (p->n < nworkers)
        qlog(QLOG_WARNING, MOD, "started %u of %u attestation workers", p->n, nworkers);
    return p;
}

void vpool_push(vpool *p, vjob *j)
{
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    *p->tail = j;
    p->tail = &j->next;
    pthread_mutex_unlock(&p->mu);
    /* After the unlock: a worker woken while the lock is still held blocks on it at once and
     * has to be woken a second time. */
    pthread_cond_signal(&p->cond);
}

unsigned vpool_size(const vpool *p)
{
    return p ? p->n : 0;
}

void vpool_stop(vpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    while (p->jobs) {             /* only when no worker ever ran */
        vjob *nx = p->jobs->next;
        vjob_free(p->jobs);
        p->jobs = nx;
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
