/* revocation_webhook.c — the webhook sender thread (see revocation_webhook.h). */
#include "revocation_webhook.h"
#include "http_client.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOGM "revocation"
#define AGENT_ID_MAX 255

typedef struct wh_item {
    struct wh_item *next;
    char agent[AGENT_ID_MAX + 1];
    char body[];
} wh_item;

struct vwebhook {
    vwebhook_opts o;
    char *url, *ca;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    wh_item *head, *tail;
    size_t queued;
    bool stop;
    vwebhook_stats stats;
};

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Sleep ms unless stopped; true when stopped. Lock held. */
static bool wait_or_stop(vwebhook *w, long ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    while (!w->stop)
        if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
            break;
    return w->stop;
}

static void deliver(vwebhook *w, qhttp_client *http, const wh_item *it)
{
    long delay = w->o.retry_ms;
    for (unsigned attempt = 1; attempt <= w->o.attempts; attempt++) {
        qhttp_result r;
        qerr e = {0};
        int rc = qhttp_request(http, "POST", w->url, it->body, strlen(it->body), &r, &e);
        bool ok = rc == 0 && r.status >= 200 && r.status < 300;
        char why[sizeof e.msg];
        if (rc < 0)
            snprintf(why, sizeof why, "%s", e.msg);
        else
            qhttp_result_describe(&r, why, sizeof why);
        qhttp_result_free(&r);
        pthread_mutex_lock(&w->lock);
        if (ok) {
            w->stats.sent++;
            pthread_mutex_unlock(&w->lock);
            qlog(QLOG_INFO, LOGM, "agent %s: revocation webhook delivered to %s", it->agent, w->url);
            return;
        }
        w->stats.failed_attempts++;
        bool last = attempt == w->o.attempts;
        if (last)
            w->stats.given_up++;
        pthread_mutex_unlock(&w->lock);
        qlog(last ? QLOG_ERROR : QLOG_WARNING, LOGM, "agent %s: revocation webhook %s: attempt %u of %u failed: %s%s",
             it->agent, w->url, attempt, w->o.attempts, why, last ? "; giving up on this event" : "");
        if (last)
            return;
        pthread_mutex_lock(&w->lock);
        bool stopped = wait_or_stop(w, delay);
        pthread_mutex_unlock(&w->lock);
        if (stopped)
            return;
        if (delay < 60000)
            delay *= 2;
    }
}

static void *run(void *arg)
{
    vwebhook *w = arg;
    qerr e = {0};
    qhttp_client_opts co = {.connect_timeout_ms = w->o.timeout_ms, .timeout_ms = w->o.timeout_ms,
                            .max_response = 64 * 1024, .ca_file = w->ca};
    qhttp_client *http = qhttp_client_new(&co, &e);
    if (!http)
        qlog(QLOG_ERROR, LOGM, "revocation webhook: no HTTP client: %s; events will be dropped", e.msg);
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->stop && !w->head)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->stop) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        wh_item *it = w->head;
        w->head = it->next;
        if (!w->head)
            w->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&w->lock);
        if (http)
            deliver(w, http, it);
        free(it);
    }
    qhttp_client_free(http);
    return NULL;
}

vwebhook *vwebhook_start(const vwebhook_opts *o, qerr *err)
{
    if (!o || !o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)) {
        qerr_set(err, "[revocations] webhook_url must be an http:// or https:// URL");
        return NULL;
    }
    vwebhook *w = calloc(1, sizeof *w);
    if (!w || !(w->url = strdup(o->url)) || (o->ca_file && *o->ca_file && !(w->ca = strdup(o->ca_file)))) {
        if (w)
            free(w->url);
        free(w);
        qerr_set(err, "out of memory");
        return NULL;
    }
    w->o = *o;
    w->o.attempts = o->attempts ? o->attempts : 3;
    w->o.retry_ms = o->retry_ms > 0 ? o->retry_ms : 1000;
    w->o.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    w->o.queue_max = o->queue_max ? o->queue_max : 1024;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w->ca);
        free(w->url);
        free(w);
        qerr_set(err, "cannot start the revocation webhook thread");
        return NULL;
    }
    return w;
}

int vwebhook_post(vwebhook *w, const char *agent_id, const char *body)
{
    if (!w || !body)
        return -1;
    size_t n = strlen(body);
    pthread_mutex_lock(&w->lock);
    bool full = w->queued >= w->o.queue_max;
    if (full)
        w->stats.dropped++;
    pthread_mutex_unlock(&w->lock);
    if (full) {
        qlog(QLOG_ERROR, LOGM, "agent %s: revocation webhook queue full (%zu events): event dropped", agent_id,
             w->o.queue_max);
        return -1;
    }
    wh_item *it = malloc(sizeof *it + n + 1);
    if (!it) {
        qlog(QLOG_ERROR, LOGM, "agent %s: out of memory: revocation event dropped", agent_id);
        return -1;
    }
    it->next = NULL;
    snprintf(it->agent, sizeof it->agent, "%s", agent_id ? agent_id : "");
    memcpy(it->body, body, n + 1);
    pthread_mutex_lock(&w->lock);
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    w->queued++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

void vwebhook_stats_get(vwebhook *w, vwebhook_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}

void vwebhook_stop(vwebhook *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    while (w->head) {
        wh_item *n = w->head->next;
        free(w->head);
        w->head = n;
    }
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w->ca);
    free(w->url);
    free(w);
}
