/* registrar_policy.c — per-address registration rate limit; see registrar_policy.h. */
#include "registrar_policy.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ADDR_MAX 64   /* INET6_ADDRSTRLEN and then some */

typedef struct bucket {
    char addr[ADDR_MAX];   /* "" = free slot */
    double tokens;
    double last;           /* time of the last refill */
} bucket;

struct reg_rate {
    pthread_mutex_t mu;
    double per_sec, burst;
    bucket b[REGRATE_CLIENTS];
};

reg_rate *reg_rate_new(long per_minute)
{
    reg_rate *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return NULL;
    }
    r->per_sec = per_minute > 0 ? (double)per_minute / 60.0 : 0;
    r->burst = per_minute > 0 ? (double)per_minute : 0;
    return r;
}

void reg_rate_free(reg_rate *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* The address's bucket; a free slot or the least recently seen one when it is new. */
static bucket *find(reg_rate *r, const char *addr)
{
    bucket *oldest = &r->b[0];
    for (size_t i = 0; i < REGRATE_CLIENTS; i++) {
        bucket *b = &r->b[i];
        if (!b->addr[0]) {
            oldest = b;
            break;
        }
        if (strncmp(b->addr, addr, ADDR_MAX) == 0)
            return b;
        if (b->last < oldest->last)
            oldest = b;
    }
    size_t n = strnlen(addr, ADDR_MAX - 1);
    memcpy(oldest->addr, addr, n);
    oldest->addr[n] = '\0';
    oldest->tokens = r->burst;
    oldest->last = -1;
    return oldest;
}

bool reg_rate_take(reg_rate *r, const char *addr, double now, long *retry_after)
{
    if (retry_after)
        *retry_after = 0;
    if (!r || r->per_sec <= 0)
        return true;
    pthread_mutex_lock(&r->mu);
    bucket *b = find(r, addr && addr[0] ? addr : "?");
    if (b->last >= 0 && now > b->last)
        b->tokens = fmin(r->burst, b->tokens + (now - b->last) * r->per_sec);
    if (b->last < 0 || now > b->last)
        b->last = now;
    bool ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    else if (retry_after)
        *retry_after = (long)ceil((1.0 - b->tokens) / r->per_sec);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* ---- pending registrations -------------------------------------------------------------------- */

const char *regpol_key(const vreg_agent *a)
{
    return a->pending_key ? a->pending_key : a->key;
}

bool regpol_adds_pending(const vreg_agent *a, bool exists)
{
    return !exists || (a->active && !a->pending_key);
}

/* *dst = copy of src (NULL stays NULL); false when out of memory. The old value is freed. */
static bool set_str(char **dst, const char *src)
{
    char *c = src ? strdup(src) : NULL;
    if (src && !c)
        return false;
    free(*dst);
    *dst = c;
    return true;
}

static void clear_pending(vreg_agent *a)
{
    free(a->pending_mtls_cert);
    free(a->pending_ip);
    free(a->pending_key);
    a->pending_mtls_cert = a->pending_ip = a->pending_key = NULL;
    a->pending_port = 0;
    a->failed_activations = 0;
}

int regpol_register(vreg_agent *a, bool exists, const char *mtls_cert, const char *ip, long port, const char *key,
                    int64_t now)
{
    bool ok;
    if (exists && a->active) {
        ok = set_str(&a->pending_mtls_cert, mtls_cert) && set_str(&a->pending_ip, ip) &&
             set_str(&a->pending_key, key);
        a->pending_port = port;
    } else {
        ok = set_str(&a->mtls_cert, mtls_cert) && set_str(&a->ip, ip) && set_str(&a->key, key);
        a->port = port;
        a->regcount = exists ? a->regcount + 1 : 1;
        a->active = false;
    }
    a->registered_at = now;
    a->failed_activations = 0;
    return ok ? 0 : -1;
}

regact regpol_activate(vreg_agent *a, bool tag_ok, long max_failed)
{
    bool pending = a->pending_key != NULL;
    if (tag_ok) {
        if (pending) {
            /* Ownership moves from the pending fields to the active ones. */
            free(a->mtls_cert);
            free(a->ip);
            free(a->key);
            a->mtls_cert = a->pending_mtls_cert;
            a->ip = a->pending_ip;
            a->key = a->pending_key;
            a->port = a->pending_port;
            a->pending_mtls_cert = a->pending_ip = a->pending_key = NULL;
            a->pending_port = 0;
            a->regcount++;
            a->failed_activations = 0;
            return REGACT_PROMOTED;
        }
        if (a->active)
            return REGACT_ALREADY_ACTIVE;
        a->active = true;
        a->failed_activations = 0;
        return REGACT_ACTIVATED;
    }
    if (a->active && !pending)
        return REGACT_FAILED_IGNORED;
    a->failed_activations++;
    if (a->failed_activations < (max_failed > 0 ? max_failed : 1))
        return REGACT_FAILED_COUNTED;
    if (a->active) {
        clear_pending(a);
        return REGACT_FAILED_DROPPED;
    }
    return REGACT_FAILED_DELETE;
}
