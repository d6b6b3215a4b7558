/* revocation_agents.c — see revocation_agents.h. */
#include "revocation_agents.h"
#include "http_client.h"
#include "log.h"
#include "tls_pin.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOGM "revocation"
#define QUEUE_MAX 64
#define FANOUT_MS 60000
#define MAX_TARGETS 100000

typedef struct ra_item {
    struct ra_item *next;
    char failed[VSTORE_ID_MAX];
    char body[];
} ra_item;

struct vragents {
    vragents_opts o;
    char *cert, *key;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    ra_item *head, *tail;
    size_t queued;
    bool stop;
};

typedef struct ids {
    char (*id)[VSTORE_ID_MAX];
    size_t n, cap;
} ids;

static int collect(void *ctx, const char *agent_id)
{
    ids *l = ctx;
    if (l->n >= MAX_TARGETS)
        return 1;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        void *p = realloc(l->id, nc * sizeof *l->id);
        if (!p)
            return 1;
        l->id = p;
        l->cap = nc;
    }
    snprintf(l->id[l->n++], VSTORE_ID_MAX, "%s", agent_id);
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One agent: 1 delivered, 0 skipped, -1 failed (logged). */
static int post_one(vragents *r, const vagent *a, const char *failed, const char *body)
{
    int st = a->st.operational_state;
    if (st != VSTATE_GET_QUOTE && st != VSTATE_GET_QUOTE_RETRY && st != VSTATE_PROVIDE_V &&
        st != VSTATE_PROVIDE_V_RETRY)
        return 0;       /* not being attested: it would not be trusted to act on it either */
    bool tls = a->mtls_cert && *a->mtls_cert && strcmp(a->mtls_cert, "disabled") != 0;
    if (!tls && !r->o.allow_plain_http)
        return 0;
    char pin[256], url[1024];
    qerr e = {0};
    if (tls && qtls_pin_sha256(a->mtls_cert, pin, sizeof pin, &e) < 0) {
        qlog(QLOG_WARNING, LOGM, "agent %s: revocation of agent %s not sent: its certificate: %s", a->agent_id, failed,
             e.msg);
        return -1;
    }
    const char *ip = a->ip ? a->ip : "";
    bool v6 = strchr(ip, ':') != NULL;
    snprintf(url, sizeof url, "%s://%s%s%s:%ld/v%s/notifications/revocation", tls ? "https" : "http", v6 ? "[" : "",
             ip, v6 ? "]" : "", a->port, a->supported_version && *a->supported_version ? a->supported_version : "2.1");
    qhttp_client_opts co = {.connect_timeout_ms = r->o.timeout_ms, .timeout_ms = r->o.timeout_ms,
                            .max_response = 64 * 1024};
    if (tls) {
        co.ca_pem = a->mtls_cert;
        co.pinned_pubkey = pin;
        co.no_verify_host = true;
        co.cert_file = r->cert;
        co.key_file = r->key;
    }
    qhttp_client *h = qhttp_client_new(&co, &e);
    if (!h) {
        qlog(QLOG_WARNING, LOGM, "agent %s: revocation of agent %s not sent: %s", a->agent_id, failed, e.msg);
        return -1;
    }
    qhttp_result res;
    int rc = qhttp_request(h, "POST", url, body, strlen(body), &res, &e);
    char d[256];
    int out;
    if (rc < 0) {
        qlog(QLOG_WARNING, LOGM, "agent %s: revocation of agent %s not delivered: %s", a->agent_id, failed, e.msg);
        out = -1;
    } else if (res.status != 200) {
        qlog(QLOG_WARNING, LOGM, "agent %s: refused the revocation of agent %s: %s", a->agent_id, failed,
             qhttp_result_describe(&res, d, sizeof d));
        out = -1;
    } else {
        qlog(QLOG_INFO, LOGM, "agent %s: revocation of agent %s delivered", a->agent_id, failed);
        out = 1;
    }
    qhttp_result_free(&res);
    qhttp_client_free(h);
    return out;
}

static void fan_out(vragents *r, const ra_item *it)
{
    ids l = {0};
    qerr e = {0};
    if (vstore_agent_list(r->o.store, collect, &l, &e) < 0)
        qlog(QLOG_ERROR, LOGM, "revocation of agent %s: cannot list the agents: %s", it->failed, e.msg);
    long long deadline = now_ms() + FANOUT_MS;
    size_t sent = 0, failed = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(l.id[i], it->failed) == 0)
            continue;
        pthread_mutex_lock(&r->lock);
        bool stop = r->stop;
        pthread_mutex_unlock(&r->lock);
        if (stop || now_ms() > deadline) {
            qlog(QLOG_WARNING, LOGM, "revocation of agent %s: %zu agents not reached (%s)", it->failed, l.n - i,
                 stop ? "stopping" : "60 s bound");
            break;
        }
        vagent a;
        memset(&a, 0, sizeof a);
        if (vstore_agent_get(r->o.store, l.id[i], &a, &e) > 0) {
            int rc = post_one(r, &a, it->failed, it->body);
            sent += rc > 0;
            failed += rc < 0;
        }
        vagent_free(&a);
    }
    qlog(QLOG_INFO, LOGM, "agent %s: revocation sent to %zu other agent(s), %zu failed", it->failed, sent, failed);
    free(l.id);
}

static void *run(void *arg)
{
    vragents *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        while (!r->stop && !r->head)
            pthread_cond_wait(&r->cond, &r->lock);
        if (r->stop) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        ra_item *it = r->head;
        r->head = it->next;
        if (!r->head)
            r->tail = NULL;
        r->queued--;
        pthread_mutex_unlock(&r->lock);
        fan_out(r, it);
        free(it);
    }
    return NULL;
}

vragents *vragents_start(const vragents_opts *o, qerr *err)
{
    vragents *r = calloc(1, sizeof *r);
    if (!r || (o->cert_file && !(r->cert = strdup(o->cert_file))) || (o->key_file && !(r->key = strdup(o->key_file)))) {
        if (r) {
            free(r->cert);
            free(r->key);
        }
        free(r);
        qerr_set(err, "out of memory");
        return NULL;
    }
    r->o = *o;
    if (r->o.timeout_ms <= 0)
        r->o.timeout_ms = 5000;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (pthread_create(&r->thread, NULL, run, r) != 0) {
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r->cert);
        free(r->key);
        free(r);
        qerr_set(err, "cannot start the revocation thread");
        return NULL;
    }
    return r;
}

int vragents_post(vragents *r, const char *failed_agent, const char *body)
{
    if (!r || !body || !failed_agent)
        return -1;
    size_t n = strlen(body);
    ra_item *it = malloc(sizeof *it + n + 1);
    if (!it) {
        qlog(QLOG_ERROR, LOGM, "agent %s: out of memory: revocation not sent to the other agents", failed_agent);
        return -1;
    }
    it->next = NULL;
    snprintf(it->failed, sizeof it->failed, "%s", failed_agent);
    memcpy(it->body, body, n + 1);
    pthread_mutex_lock(&r->lock);
    if (r->queued >= QUEUE_MAX) {
        pthread_mutex_unlock(&r->lock);
        free(it);
        qlog(QLOG_ERROR, LOGM, "agent %s: revocation queue full (%d events): not sent to the other agents",
             failed_agent, QUEUE_MAX);
        return -1;
    }
    if (r->tail)
        r->tail->next = it;
    else
        r->head = it;
    r->tail = it;
    r->queued++;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

void vragents_stop(vragents *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    while (r->head) {
        ra_item *n = r->head->next;
        free(r->head);
        r->head = n;
    }
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r->cert);
    free(r->key);
    free(r);
}
