/* http_guard.c — request-header deadline for http_server.c connections (see http_guard.h). */
#include "http_guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

struct qhttp_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stop;
    unsigned timeout_s;
    qhttp_conn *head;
    char module[32];
};

time_t qhttp_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* One sweep: shut down the connections past the deadline. Called with g->mu held. A kept-alive
 * connection that served requests and then went quiet is ordinary (a debug line); one that never
 * completed a request is what a slow or stalled client looks like (a warning). */
static void sweep(qhttp_guard *g)
{
    time_t now = qhttp_mono_s();
    unsigned fresh = 0, idle = 0;
    char first[INET6_ADDRSTRLEN] = "";
    bool several = false;
    for (qhttp_conn *c = g->head; c; c = c->next) {
        if (!c->waiting || c->shut || now - c->since < (time_t)g->timeout_s)
            continue;
        c->shut = true;
        if (c->fd >= 0 && shutdown(c->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
            qlog(QLOG_DEBUG, g->module, "shutdown of a connection from %s: %s", c->peer, strerror(errno));
        if (c->requests) {
            idle++;
            continue;
        }
        if (!first[0])
            snprintf(first, sizeof first, "%s", c->peer);
        else if (strcmp(first, c->peer) != 0)
            several = true;
        fresh++;
    }
    if (fresh)
        qlog(QLOG_WARNING, g->module, "closed %u connection%s from %s%s: no complete request headers within %u s",
             fresh, fresh == 1 ? "" : "s", first, several ? " and other addresses" : "", g->timeout_s);
    if (idle)
        qlog(QLOG_DEBUG, g->module, "closed %u kept-alive connection%s idle for %u s", idle, idle == 1 ? "" : "s",
             g->timeout_s);
}

static void *guard_main(void *arg)
{
    qhttp_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += 1;
        pthread_cond_timedwait(&g->cv, &g->mu, &dl);
        if (!g->stop)
            sweep(g);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

qhttp_guard *qhttp_guard_start(unsigned header_timeout_s, const char *module, qerr *err)
{
    qhttp_guard *g = calloc(1, sizeof *g);
    if (!g) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    g->timeout_s = header_timeout_s ? header_timeout_s : 1;
    snprintf(g->module, sizeof g->module, "%s", module ? module : "http");
    pthread_condattr_t a;
    bool ok = pthread_mutex_init(&g->mu, NULL) == 0;
    if (ok && pthread_condattr_init(&a) == 0) {
        ok = pthread_condattr_setclock(&a, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&g->cv, &a) == 0;
        pthread_condattr_destroy(&a);
        if (ok && pthread_create(&g->thread, NULL, guard_main, g) != 0) {
            pthread_cond_destroy(&g->cv);
            ok = false;
        }
        if (!ok)
            pthread_mutex_destroy(&g->mu);
    } else if (ok) {
        pthread_mutex_destroy(&g->mu);
        ok = false;
    }
    if (!ok) {
        free(g);
        qerr_set(err, "cannot start the connection guard thread");
        return NULL;
    }
    return g;
}

static void conn_free(qhttp_conn *c)
{
    free(c->der);
    free(c);
}

void qhttp_guard_stop(qhttp_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    while (g->head) {
        qhttp_conn *c = g->head;
        g->head = c->next;
        conn_free(c);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

qhttp_conn *qhttp_guard_open(qhttp_guard *g, int fd, const char *peer)
{
    qhttp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->waiting = true;
    c->since = qhttp_mono_s();
    snprintf(c->peer, sizeof c->peer, "%s", peer ? peer : "?");
    pthread_mutex_lock(&g->mu);
    c->next = g->head;
    if (g->head)
        g->head->prev = c;
    g->head = c;
    pthread_mutex_unlock(&g->mu);
    return c;
}

void qhttp_guard_close(qhttp_guard *g, qhttp_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&g->mu);
    conn_free(c);
}

void qhttp_guard_headers_done(qhttp_guard *g, qhttp_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->waiting = false;
    pthread_mutex_unlock(&g->mu);
}

void qhttp_guard_request_done(qhttp_guard *g, qhttp_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->waiting = true;
    c->requests++;
    c->since = qhttp_mono_s();
    pthread_mutex_unlock(&g->mu);
}
