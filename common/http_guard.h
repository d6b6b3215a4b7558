/* http_guard.h — per-connection state of http_server.c (internal to it): the request-header
 * deadline that ends slowloris connections, and the verified client certificate cache.
 *
 * Contract:
 * - Every accepted connection gets a qhttp_conn (qhttp_guard_open) until it closes
 *   (qhttp_guard_close). A connection is "waiting for headers" from its start, and again from
 *   the end of each request, until libmicrohttpd hands over a complete header block
 *   (qhttp_guard_headers_done). One guard thread per server wakes once a second and shuts down
 *   (shutdown(2), so libmicrohttpd sees EOF and closes it itself) every connection that has been
 *   waiting longer than header_timeout_s: idle kept-alive connections and clients that trickle
 *   their headers alike. One warning per sweep says how many that never completed a request were
 *   closed and from where; idle kept-alive ones are logged at debug level.
 * - The fd is only touched under the guard's lock, and libmicrohttpd reports a connection closed
 *   before it closes its socket, so a shut-down fd is never one reused by another connection.
 * - Thread-safe; qhttp_guard_stop joins the thread and frees connections still listed. */
#ifndef QUINCE_HTTP_GUARD_H
#define QUINCE_HTTP_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "err.h"

#define QHTTP_DN_MAX 512

typedef struct qhttp_conn {
    /* guard bookkeeping (under the guard's lock) */
    struct qhttp_conn *prev, *next;
    int fd;
    bool waiting;               /* for a complete header block */
    bool shut;                  /* shut down by the guard */
    unsigned long requests;     /* completed on this connection */
    time_t since;               /* CLOCK_MONOTONIC seconds */
    char peer[INET6_ADDRSTRLEN];
    /* verified client certificate (used by the connection's own worker only) */
    bool verified;
    time_t verified_at;
    unsigned char *der;
    size_t der_len;
    char dn[QHTTP_DN_MAX];
    bool has_dn;
    void *user;                 /* qhttp_server_opts.conn_open's result */
} qhttp_conn;

typedef struct qhttp_guard qhttp_guard;

qhttp_guard *qhttp_guard_start(unsigned header_timeout_s, const char *module, qerr *err);
void qhttp_guard_stop(qhttp_guard *g);
/* NULL when out of memory (the connection then just goes unguarded). */
qhttp_conn *qhttp_guard_open(qhttp_guard *g, int fd, const char *peer);
void qhttp_guard_close(qhttp_guard *g, qhttp_conn *c);
void qhttp_guard_headers_done(qhttp_guard *g, qhttp_conn *c);
void qhttp_guard_request_done(qhttp_guard *g, qhttp_conn *c);
time_t qhttp_mono_s(void);

#endif
