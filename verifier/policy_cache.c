/* policy_cache.c — parsed runtime policies by checksum, shared between workers (policy_cache.h). */
#include "policy_cache.h"
#include "policy_signature.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vpolicy_ref {
    atomic_long refs;
    qpolicy *pol;
    uint64_t serial;
    char checksum[65];      /* "" for the empty policy and wrapped ones */
    uint64_t last_used;     /* cache tick (under the cache mutex) */
};

typedef struct idmap {
    long id;
    vpolicy_ref *e;
} idmap;

struct vpolicy_cache {
    pthread_mutex_t mu;
    vstore *store;
    size_t max;
    vpolicy_ref **ents;     /* cached parses (each holds one reference) */
    size_t n, cap;
    idmap *ids;             /* sorted by id */
    size_t nids, idcap;
    vpolicy_ref *empty;
    uint64_t tick;
    uint64_t epoch;         /* bumped by every invalidation */
};

static atomic_uint_fast64_t g_serial = 1;

static vpolicy_ref *ref_new(qpolicy *p, const char *checksum)
{
    vpolicy_ref *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    r->pol = p;
    r->serial = atomic_fetch_add(&g_serial, 1);
    if (checksum)
        snprintf(r->checksum, sizeof r->checksum, "%s", checksum);
    return r;
}

vpolicy_ref *vpolicy_ref_wrap(qpolicy *p, qerr *err)
{
    if (!p) {
        qerr_set(err, "no policy to wrap");
        return NULL;
    }
    vpolicy_ref *r = ref_new(p, NULL);
    if (!r)
        qerr_set(err, "out of memory");
    return r;
}

vpolicy_ref *vpolicy_ref_retain(vpolicy_ref *r)
{
    if (r)
        atomic_fetch_add(&r->refs, 1);
    return r;
}

void vpolicy_ref_release(vpolicy_ref *r)
{
    if (!r)
        return;
    if (atomic_fetch_sub(&r->refs, 1) == 1) {
        qpolicy_free(r->pol);
        free(r);
    }
}

const qpolicy *vpolicy_ref_policy(const vpolicy_ref *r)
{
    return r ? r->pol : NULL;
}

uint64_t vpolicy_ref_serial(const vpolicy_ref *r)
{
    return r ? r->serial : 0;
}

vpolicy_cache *vpolicy_cache_new(vstore *store, size_t max_entries, qerr *err)
{
    vpolicy_cache *c = calloc(1, sizeof *c);
    if (!c) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    c->store = store;
    c->max = max_entries ? max_entries : VPOLICY_CACHE_DEFAULT_MAX;
    qpolicy *e = qpolicy_empty(err);
    if (!e) {
        free(c);
        return NULL;
    }
    c->empty = ref_new(e, NULL);
    if (!c->empty) {
        qpolicy_free(e);
        free(c);
        qerr_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void vpolicy_cache_free(vpolicy_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        vpolicy_ref_release(c->ents[i]);
    free(c->ents);
    free(c->ids);
    vpolicy_ref_release(c->empty);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

size_t vpolicy_cache_size(vpolicy_cache *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->n + 1;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- maps (caller holds the mutex) ------------------------------------------------------- */

/* Index of id in the sorted id map, or where it would go (*found tells). */
static size_t id_pos(vpolicy_cache *c, long id, bool *found)
{
    size_t lo = 0, hi = c->nids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->ids[mid].id == id) {
            *found = true;
            return mid;
        }
        if (c->ids[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static vpolicy_ref *find_id(vpolicy_cache *c, long id)
{
    bool found;
    size_t i = id_pos(c, id, &found);
    return found ? c->ids[i].e : NULL;
}

static vpolicy_ref *find_checksum(vpolicy_cache *c, const char *sum)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->ents[i]->checksum, sum) == 0)
            return c->ents[i];
    return NULL;
}

static void drop_id(vpolicy_cache *c, long id)
{
    bool found;
    size_t i = id_pos(c, id, &found);
    if (!found)
        return;
    memmove(&c->ids[i], &c->ids[i + 1], (c->nids - i - 1) * sizeof *c->ids);
    c->nids--;
}

static void add_id(vpolicy_cache *c, long id, vpolicy_ref *e)
{
    bool found;
    size_t i = id_pos(c, id, &found);
    if (found) {
        c->ids[i].e = e;
        return;
    }
    if (c->nids == c->idcap) {
        size_t ncap = c->idcap ? 2 * c->idcap : 16;
        idmap *m = realloc(c->ids, ncap * sizeof *m);
        if (!m)
            return;     /* not remembered: the next round loads it again */
        c->ids = m;
        c->idcap = ncap;
    }
    memmove(&c->ids[i + 1], &c->ids[i], (c->nids - i) * sizeof *c->ids);
    c->ids[i] = (idmap){ id, e };
    c->nids++;
}

/* Evict least recently used entries nobody else holds while over the limit. */
static void evict(vpolicy_cache *c)
{
    while (c->n > c->max) {
        size_t victim = SIZE_MAX;
        for (size_t i = 0; i < c->n; i++) {
            if (atomic_load(&c->ents[i]->refs) != 1)
                continue;
            if (victim == SIZE_MAX || c->ents[i]->last_used < c->ents[victim]->last_used)
                victim = i;
        }
        if (victim == SIZE_MAX)
            return;
        vpolicy_ref *e = c->ents[victim];
        c->ents[victim] = c->ents[--c->n];
        size_t k = 0;
        for (size_t i = 0; i < c->nids; i++)      /* compact, keeping the order */
            if (c->ids[i].e != e)
                c->ids[k++] = c->ids[i];
        c->nids = k;
        vpolicy_ref_release(e);
    }
}

static bool insert(vpolicy_cache *c, vpolicy_ref *e)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? 2 * c->cap : 8;
        vpolicy_ref **a = realloc(c->ents, ncap * sizeof *a);
        if (!a)
            return false;
        c->ents = a;
        c->cap = ncap;
    }
    c->ents[c->n++] = e;
    return true;
}

/* ---- lookups ---------------------------------------------------------------------------- */

static qpolicy *parse_text(const vpolicy *vp, const char *b, size_t len, qerr *err);

/* A signed body is verified again with its stored key before it is parsed. */
static qpolicy *parse_body(const vpolicy *vp, qerr *err)
{
    size_t len = 0;
    char *text = vpsig_stored_payload(vp, &len, err);
    if (!text)
        return NULL;
    qpolicy *p = parse_text(vp, text, len, err);
    free(text);
    return p;
}

static qpolicy *parse_text(const vpolicy *vp, const char *b, size_t len, qerr *err)
{
    size_t i = 0;
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
        i++;
    char src[VSTORE_ID_MAX + 16];
    snprintf(src, sizeof src, "policy %s", vp->name);
    /* Stored bodies are runtime-policy JSON; a flat allowlist text is accepted as well. */
    if (i < len && b[i] == '{')
        return qpolicy_from_json(b, len, src, err);
    return qpolicy_from_allowlist(b, len, src, err);
}

/* Process-wide lookup counters for metrics (all caches of the process together). */
static uint64_t g_hits, g_misses;

void vpolicy_cache_stats(uint64_t *hits, uint64_t *misses)
{
    *hits = __atomic_load_n(&g_hits, __ATOMIC_RELAXED);
    *misses = __atomic_load_n(&g_misses, __ATOMIC_RELAXED);
}

vpolicy_ref *vpolicy_cache_get(vpolicy_cache *c, long policy_id, qerr *err)
{
    if (!c) {
        qerr_set(err, "policy cache: missing");
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    if (policy_id <= 0 || !c->store) {
        vpolicy_ref *r = vpolicy_ref_retain(c->empty);
        pthread_mutex_unlock(&c->mu);
        return r;
    }
    vpolicy_ref *hit = find_id(c, policy_id);
    if (hit) {
        hit->last_used = ++c->tick;
        vpolicy_ref_retain(hit);
        pthread_mutex_unlock(&c->mu);
        __atomic_add_fetch(&g_hits, 1, __ATOMIC_RELAXED);
        return hit;
    }
    uint64_t epoch = c->epoch;
    pthread_mutex_unlock(&c->mu);

    vpolicy vp;
    memset(&vp, 0, sizeof vp);
    int rc = vstore_policy_get_by_id(c->store, policy_id, &vp, err);
    if (rc < 0)
        return NULL;
    if (rc == 0) {
        vpolicy_free(&vp);
        return vpolicy_ref_retain(c->empty);
    }
    char sum[65];
    if (vp.checksum[0])
        snprintf(sum, sizeof sum, "%s", vp.checksum);
    else
        qpolicy_checksum(vp.body ? vp.body : "", vp.body ? strlen(vp.body) : 0, sum);

    pthread_mutex_lock(&c->mu);
    vpolicy_ref *e = find_checksum(c, sum);
    if (e) {
        if (c->epoch == epoch)
            add_id(c, policy_id, e);
        e->last_used = ++c->tick;
        vpolicy_ref_retain(e);
        pthread_mutex_unlock(&c->mu);
        vpolicy_free(&vp);
        return e;
    }
    pthread_mutex_unlock(&c->mu);

    __atomic_add_fetch(&g_misses, 1, __ATOMIC_RELAXED);
    qpolicy *p = parse_body(&vp, err);
    vpolicy_free(&vp);
    if (!p)
        return NULL;
    vpolicy_ref *n = ref_new(p, sum);
    if (!n) {
        qpolicy_free(p);
        qerr_set(err, "out of memory");
        return NULL;
    }

    pthread_mutex_lock(&c->mu);
    e = find_checksum(c, sum);          /* another worker may have parsed it meanwhile */
    if (e) {
        vpolicy_ref_release(n);
    } else if (insert(c, n)) {
        e = n;                          /* the cache keeps n's first reference */
    } else {
        pthread_mutex_unlock(&c->mu);
        return n;                       /* uncached: the caller holds the only reference */
    }
    if (c->epoch == epoch)
        add_id(c, policy_id, e);
    e->last_used = ++c->tick;
    vpolicy_ref_retain(e);
    evict(c);
    pthread_mutex_unlock(&c->mu);
    return e;
}

void vpolicy_cache_invalidate(vpolicy_cache *c, long policy_id)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->epoch++;
    drop_id(c, policy_id);
    evict(c);
    pthread_mutex_unlock(&c->mu);
}
