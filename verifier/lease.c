/* lease.c — the lease thread (lease.h); the SQL is in store_lease.c.
 *
 * Timing, with T = lease_ttl: the heartbeat is renewed every T/5 and expires T/2 after a
 * renewal (by the database's clock); this process trusts its leases for 0.45 T from the moment
 * it sent the renewal (by its own monotonic clock), so it has stopped polling before any other
 * verifier can see the heartbeat expired. A verifier that dies is seen dead within T/2, and the
 * others take its agents at their next renewal (T/5 later, or one more if two of them picked
 * the same rows): within T. */
#include "lease.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store_lease.h"

#define MOD "verifier"

/* Process-wide figures (vlease_stats): /metrics reads them. */
static unsigned long long stat_held, stat_taken, stat_lost, stat_released;

struct vlease {
    vstore *store;
    vlease_opts o;
    char instance[VSTORE_ID_MAX], verifier_id[VSTORE_ID_MAX];
    pthread_mutex_t mu;          /* known, quit */
    pthread_cond_t cond;
    vlease_row *known;           /* the leases held, sorted by id */
    size_t nknown;
    vlease_row *noted;           /* vlease_note calls since the last read of the store */
    size_t nnoted;
    bool quit, failing, started;
    pthread_t thread;
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const vlease_row *)a)->agent_id, ((const vlease_row *)b)->agent_id);
}

static vlease_row *find(vlease_row *rows, size_t n, const char *id)
{
    if (n == 0)
        return NULL;
    vlease_row key;
    snprintf(key.agent_id, sizeof key.agent_id, "%s", id);
    return bsearch(&key, rows, n, sizeof *rows, row_cmp);
}

/* known := mine plus what vlease_note recorded since mine was read (an agent added through this
 * verifier's API meanwhile), telling the poller what changed. Takes ownership of mine (freed). */
static void reconcile(vlease *l, vlease_row *mine, size_t n, size_t *won, size_t *lost)
{
    pthread_mutex_lock(&l->mu);
    vlease_row *grown = realloc(mine, (n + l->nnoted + 1) * sizeof *grown);
    if (grown) {
        mine = grown;
        size_t m = n;
        for (size_t i = 0; i < l->nnoted; i++) {
            vlease_row *r = find(mine, n, l->noted[i].agent_id);
            if (!r)
                mine[m++] = l->noted[i];
            else if (r->epoch < l->noted[i].epoch)
                r->epoch = l->noted[i].epoch;   /* epochs only grow: the store was read before */
        }
        n = m;
        qsort(mine, n, sizeof *mine, row_cmp);
    }
    /* known is the lock's (vlease_note reallocates it); the comparison below uses mine, a copy
     * of this thread's own. */
    vlease_row *known = malloc((n ? n : 1) * sizeof *known);
    if (!known) {
        pthread_mutex_unlock(&l->mu);
        free(mine);
        qlog(QLOG_ERROR, MOD, "leases: out of memory comparing leases (tried again at the next renewal)");
        return;
    }
    if (n)
        memcpy(known, mine, n * sizeof *known);
    vlease_row *old = l->known;
    size_t nold = l->nknown;
    l->known = known;
    l->nknown = n;
    pthread_mutex_unlock(&l->mu);
    /* Losses first: an agent is never polled past the moment its loss is seen. */
    for (size_t i = 0; i < nold; i++)
        if (!find(mine, n, old[i].agent_id)) {
            l->o.drop(l->o.ctx, old[i].agent_id);
            (*lost)++;
        }
    for (size_t i = 0; i < n; i++) {
        vlease_row *k = find(old, nold, mine[i].agent_id);
        if (!k)
            (*won)++;
        if (!k || k->epoch != mine[i].epoch)
            l->o.adopt(l->o.ctx, mine[i].agent_id, mine[i].epoch);
    }
    free(old);
    free(mine);
}

/* Gives up the last `surplus` leases held. */
static size_t release_surplus(vlease *l, size_t surplus)
{
    pthread_mutex_lock(&l->mu);
    if (surplus > l->nknown)
        surplus = l->nknown;
    size_t first = l->nknown - surplus;
    vlease_row *rel = surplus ? malloc(surplus * sizeof *rel) : NULL;
    if (rel) {
        memcpy(rel, l->known + first, surplus * sizeof *rel);
        l->nknown = first;
    }
    pthread_mutex_unlock(&l->mu);
    if (!rel)
        return 0;
    for (size_t i = 0; i < surplus; i++)
        l->o.drop(l->o.ctx, rel[i].agent_id);   /* not polled from here on, then released */
    qerr err = { 0 };
    if (vstore_lease_release(l->store, l->instance, rel, surplus, &err) < 0)
        qlog(QLOG_ERROR, MOD, "leases: releasing %zu agent(s) failed (they return when their lease expires): %s",
             surplus, err.msg);
    free(rel);
    return surplus;
}

static void cycle(vlease *l)
{
    double t0 = mono();
    long live = 0, agents = 0;
    qerr err = { 0 };
    if (vstore_lease_beat(l->store, l->instance, l->verifier_id, (int64_t)(l->o.ttl * 500), &live, &agents,
                          &err) < 0) {
        if (!l->failing)
            qlog(QLOG_ERROR, MOD, "leases: cannot renew (polling pauses when they run out): %s", err.msg);
        l->failing = true;
        return;
    }
    if (l->failing)
        qlog(QLOG_INFO, MOD, "leases: renewed again");
    l->failing = false;
    l->o.valid(l->o.ctx, t0 + 0.45 * l->o.ttl);
    long share = live > 0 ? (agents + live - 1) / live : agents;
    pthread_mutex_lock(&l->mu);
    long held = (long)l->nknown;
    pthread_mutex_unlock(&l->mu);
    if (held < share && vstore_lease_take(l->store, l->instance, l->verifier_id, share - held, &err) < 0) {
        qlog(QLOG_ERROR, MOD, "leases: taking agents failed: %s", err.msg);
        return;
    }
    vlease_row *mine = NULL;
    size_t n = 0, won = 0, lost = 0, released = 0;
    pthread_mutex_lock(&l->mu);
    l->nnoted = 0;
    pthread_mutex_unlock(&l->mu);
    if (vstore_lease_mine(l->store, l->instance, &mine, &n, &err) < 0) {
        qlog(QLOG_ERROR, MOD, "leases: reading this verifier's leases failed: %s", err.msg);
        return;
    }
    reconcile(l, mine, n, &won, &lost);
    pthread_mutex_lock(&l->mu);
    n = l->nknown;
    pthread_mutex_unlock(&l->mu);
    if ((long)n > share)
        released = release_surplus(l, (size_t)((long)n - share));
    __atomic_store_n(&stat_held, (unsigned long long)(n - released), __ATOMIC_RELAXED);
    __atomic_add_fetch(&stat_taken, won, __ATOMIC_RELAXED);
    __atomic_add_fetch(&stat_lost, lost, __ATOMIC_RELAXED);
    __atomic_add_fetch(&stat_released, released, __ATOMIC_RELAXED);
    if (won || lost || released)
        qlog(QLOG_INFO, MOD, "leases: holding %zu agent(s): %zu taken, %zu lost, %zu released (fair share %ld of %ld "
             "agent(s), %ld live verifier(s))", n - released, won, lost, released, share, agents, live);
}

static void *lease_main(void *arg)
{
    vlease *l = arg;
    double period = l->o.ttl / 5;
    pthread_mutex_lock(&l->mu);
    while (!l->quit) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        double t = (double)dl.tv_sec + (double)dl.tv_nsec / 1e9 + period;
        dl.tv_sec = (time_t)t;
        dl.tv_nsec = (long)((t - floor(t)) * 1e9);
        int rc = 0;
        while (!l->quit && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&l->cond, &l->mu, &dl);
        if (l->quit)
            break;
        pthread_mutex_unlock(&l->mu);
        cycle(l);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

vlease *vlease_start(vstore *store, const vlease_opts *o, qerr *err)
{
    vlease *l = calloc(1, sizeof *l);
    if (!l) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    l->store = store;
    l->o = *o;
    snprintf(l->instance, sizeof l->instance, "%s", o->instance);
    snprintf(l->verifier_id, sizeof l->verifier_id, "%s", o->verifier_id);
    l->o.instance = l->instance;
    l->o.verifier_id = l->verifier_id;
    pthread_condattr_t ca;
    if (pthread_mutex_init(&l->mu, NULL) != 0 || pthread_condattr_init(&ca) != 0) {
        free(l);
        qerr_set(err, "cannot initialise the lease thread's lock");
        return NULL;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (crc != 0) {
        pthread_mutex_destroy(&l->mu);
        free(l);
        qerr_set(err, "cannot initialise the lease thread's lock");
        return NULL;
    }
    if (vstore_lease_reclaim(store, l->instance, err) < 0) {
        qerr_prefix(err, "leases");
        vlease_leave(l);
        return NULL;
    }
    cycle(l);
    if (pthread_create(&l->thread, NULL, lease_main, l) != 0) {
        qerr_set(err, "cannot start the lease thread");
        vlease_leave(l);
        return NULL;
    }
    l->started = true;
    qlog(QLOG_INFO, MOD, "leases: this verifier is %s (cluster %s, lease_ttl %.1f s)", l->instance, l->verifier_id,
         l->o.ttl);
    return l;
}

void vlease_stop(vlease *l)
{
    if (!l || !l->started)
        return;
    pthread_mutex_lock(&l->mu);
    l->quit = true;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->started = false;
}

void vlease_leave(vlease *l)
{
    if (!l)
        return;
    vlease_stop(l);
    qerr err = { 0 };
    if (vstore_lease_leave(l->store, l->instance, &err) < 0)
        qlog(QLOG_WARNING, MOD, "leases: not released (the others take them when they expire): %s", err.msg);
    free(l->known);
    free(l->noted);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void vlease_note(vlease *l, const char *agent_id, uint64_t epoch)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    vlease_row *k = find(l->known, l->nknown, agent_id);
    if (k) {
        k->epoch = epoch;
    } else {
        vlease_row *a = realloc(l->known, (l->nknown + 1) * sizeof *a);
        if (a) {
            l->known = a;
            snprintf(a[l->nknown].agent_id, sizeof a[l->nknown].agent_id, "%s", agent_id);
            a[l->nknown].epoch = epoch;
            l->nknown++;
            qsort(l->known, l->nknown, sizeof *l->known, row_cmp);
        }
    }
    vlease_row *a = realloc(l->noted, (l->nnoted + 1) * sizeof *a);
    if (a) {
        l->noted = a;
        snprintf(a[l->nnoted].agent_id, sizeof a[l->nnoted].agent_id, "%s", agent_id);
        a[l->nnoted].epoch = epoch;
        l->nnoted++;
    }
    pthread_mutex_unlock(&l->mu);
}

void vlease_stats(unsigned long long *held, unsigned long long *taken, unsigned long long *lost,
                  unsigned long long *released)
{
    *held = __atomic_load_n(&stat_held, __ATOMIC_RELAXED);
    *taken = __atomic_load_n(&stat_taken, __ATOMIC_RELAXED);
    *lost = __atomic_load_n(&stat_lost, __ATOMIC_RELAXED);
    *released = __atomic_load_n(&stat_released, __ATOMIC_RELAXED);
}
