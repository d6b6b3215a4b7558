/* http_server.h — a small REST server over libmicrohttpd with Keylime's JSON envelope.
 *
 * Contract:
 * - Threads: MHD's internal poll() polling with a fixed pool of `threads` workers
 *   (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL + MHD_OPTION_THREAD_POOL_SIZE). Thread count
 *   stays bounded whatever the number of clients, and a handler that blocks (TPM, SQLite) holds
 *   up only its own worker. Handlers therefore run concurrently on several threads and must be
 *   thread-safe. Not epoll: libmicrohttpd 0.9.75 spins in epoll mode while a TLS client is slow
 *   to finish its handshake (see http_server.c).
 * - A TLS client certificate is verified once per connection (and again after 60 s or when the
 *   peer's certificate changes), not once per request: a kept-alive client costs no public-key
 *   operation per request. It must verify against the CA and carry extended key usage
 *   clientAuth (or no extended key usage at all): a server's certificate is refused (403).
 * - Routes: method + pattern. A pattern is '/'-separated segments; a segment is a literal or a
 *   literal prefix followed by one "{name}" that captures the (non-empty) rest of the segment,
 *   e.g. "/v{ver}/quotes/integrity", "/agents/{id}". One trailing '/' in the URL is ignored.
 *   First match wins. Unknown path → 404; known path with another method → 405 with Allow.
 * - Body: collected up to max_body bytes; beyond it → 413 "Request body too large" (answered
 *   before reading when Content-Length says so).
 * - Reply: the handler calls one qhttp_reply* function (a later call replaces an earlier one);
 *   none → 500. JSON replies are {"code": N, "status": "<text>", "results": {...}} with
 *   Content-Type application/json; status text defaults to "Success" for 200, else the HTTP
 *   reason phrase.
 * - TLS (optional): server cert/key (+ CA to request client certificates) in PEM, given in
 *   memory or as files; TLS 1.2+ only. With require_client_cert, every request whose peer did
 *   not present a certificate that verifies against the CA gets 403 before routing (Keylime's
 *   code for it).
 * - Slow or idle clients (slowloris): at most per_ip_limit connections from one address (more are
 *   refused at accept), conn_limit in all, and a connection that has not delivered a complete
 *   header block header_timeout_s after it opened (or after its previous request) is closed
 *   (http_guard.h), however slowly it trickles bytes. conn_timeout_s closes connections idle
 *   in any phase (TLS handshake, body, reply).
 * - Errors from libmicrohttpd go to qlog (module log_module). Library code never exits. */
#ifndef QUINCE_HTTP_SERVER_H
#define QUINCE_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <cjson/cJSON.h>

#include "err.h"

#define QHTTP_MAX_ROUTES     64
#define QHTTP_MAX_SEGMENTS   16
#define QHTTP_MAX_PARAMS     8
#define QHTTP_MAX_PATH       1024     /* longer URLs → 414 */
#define QHTTP_DEFAULT_BODY   (1u << 20)
#define QHTTP_DEFAULT_CONN_LIMIT     512
#define QHTTP_DEFAULT_PER_IP         64
#define QHTTP_DEFAULT_HEADER_TIMEOUT 15

typedef struct qhttp_server qhttp_server;
typedef struct qhttp_req qhttp_req;    /* one request and its reply; valid during the handler */

typedef void (*qhttp_handler_fn)(qhttp_req *req, void *ctx);

typedef struct qhttp_route {
    const char *method;       /* "GET", "POST", "PUT", "DELETE", ... */
    const char *pattern;      /* see above */
    qhttp_handler_fn fn;
    void *ctx;
} qhttp_route;

typedef struct qhttp_server_opts {
    const char *ip;           /* numeric IPv4/IPv6 or a host name; NULL/"" → 0.0.0.0 */
    uint16_t port;            /* 0 → ephemeral, see qhttp_server_port */
    size_t max_body;          /* 0 → QHTTP_DEFAULT_BODY */
    unsigned threads;         /* worker pool size; 0 → 4 */
    unsigned conn_limit;      /* connections at once; 0 → QHTTP_DEFAULT_CONN_LIMIT (see fd_budget.h) */
    unsigned per_ip_limit;    /* connections at once from one client address; 0 → QHTTP_DEFAULT_PER_IP */
    unsigned conn_timeout_s;  /* idle timeout; 0 → 30 */
    unsigned header_timeout_s;/* a request's headers must be complete this long after the connection
                                 opened or its previous request ended; 0 → QHTTP_DEFAULT_HEADER_TIMEOUT */
    const char *log_module;   /* NULL → "http" */
    /* TLS: PEM text, or a file read at start when the *_pem field is NULL. */
    const char *tls_cert_pem, *tls_key_pem, *tls_ca_pem;
    const char *tls_cert_file, *tls_key_file, *tls_ca_file;
    bool require_client_cert; /* needs a CA */
    /* No thread at all: the caller polls qhttp_server_poll_fd (an epoll fd, readable when the
     * server has work) in its own loop and calls qhttp_server_run, on one thread. For programs
     * that serve thousands of servers from one event loop (the fleet simulator). */
    bool external_loop;
    /* One listener for many identities (the fleet simulator: every agent behind one wildcard
     * socket). Called on the serving thread when a connection opens, with its socket and, with
     * TLS, its gnutls_session_t before the handshake: the hook may set the session's
     * credentials (a certificate chosen by the connection's local address, getsockname(fd)).
     * Its result is the connection's context (qhttp_req_conn_ctx); NULL refuses the
     * connection: it is closed at its first request. */
    void *(*conn_open)(void *arg, int fd, void *tls_session);
    void *conn_arg;
    bool allow_hold;          /* handlers may hold their reply (qhttp_req_hold) */
} qhttp_server_opts;

/* For a process whose TLS servers all trust the same CA and see the same few client
 * certificates on thousands of connections (the fleet simulator, one server identity per
 * simulated agent): remember process-wide the last few client certificates that verified (exact
 * bytes, for 60 s, as a connection remembers its own), so a new connection presenting one costs
 * no chain verification. Off by default; never for servers with different CAs. */
void qhttp_server_share_peer_checks(bool on);

/* Start listening. Routes (and their strings) are copied. */
qhttp_server *qhttp_server_start(const qhttp_server_opts *o, const qhttp_route *routes, size_t nroutes,
                                 qerr *err);
uint16_t qhttp_server_port(const qhttp_server *s);   /* the bound port */
bool qhttp_server_tls(const qhttp_server *s);
/* external_loop servers: the fd to poll for reading, and one round of work (accept, read,
 * handlers, write, timeouts) without blocking. Returns 0, 1 when work is left that the fd will
 * not signal (run again soon), or -1 when the server failed. */
int qhttp_server_poll_fd(const qhttp_server *s);
int qhttp_server_run(qhttp_server *s);
/* Stop accepting, wait for running handlers, free everything. NULL is fine. */
void qhttp_server_stop(qhttp_server *s);

/* ---- request ------------------------------------------------------------------------------ */
const char *qhttp_req_method(const qhttp_req *r);
const char *qhttp_req_path(const qhttp_req *r);
/* Value of a "{name}" path segment, NULL if the route has none of that name. */
const char *qhttp_req_param(const qhttp_req *r, const char *name);
/* Query argument (URL-decoded); NULL when absent, "" for "?name" or "?name=". */
const char *qhttp_req_query(const qhttp_req *r, const char *name);
const char *qhttp_req_header(const qhttp_req *r, const char *name);
/* The body (NUL-terminated; not counted in *len). Never NULL: "" when empty. */
const char *qhttp_req_body(const qhttp_req *r, size_t *len);
/* The body parsed as JSON (cached; owned by the request). NULL with a message when empty or
 * not JSON. */
const cJSON *qhttp_req_json(qhttp_req *r, qerr *err);
const char *qhttp_req_peer(const qhttp_req *r);       /* client IP address text */
/* Subject DN of the verified TLS client certificate; NULL without one. */
const char *qhttp_req_client_dn(const qhttp_req *r);
/* What conn_open returned for the request's connection (NULL without the hook). */
void *qhttp_req_conn_ctx(const qhttp_req *r);
/* allow_hold servers: a handler that has set its reply may hold it (elsewhere a hold is
 * ignored); the connection then waits, without timeout, until qhttp_req_release(r) (serving
 * thread only; r stays valid until then), which sends the reply. Used to answer late without
 * blocking the thread. */
void qhttp_req_hold(qhttp_req *r);
void qhttp_req_release(qhttp_req *r);

/* ---- reply -------------------------------------------------------------------------------- */
/* Envelope reply; takes ownership of results (NULL → {}). */
void qhttp_reply(qhttp_req *r, int status, cJSON *results);
/* Same with an explicit status text. */
void qhttp_reply_status(qhttp_req *r, int status, const char *status_text, cJSON *results);
/* Error envelope: status text = the formatted message, results {}. */
void qhttp_reply_error(qhttp_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A non-envelope body (copied), e.g. text/html. */
void qhttp_reply_raw(qhttp_req *r, int status, const char *content_type, const void *body, size_t len);
/* No reply: the connection is closed (a simulated dead peer). */
void qhttp_reply_hangup(qhttp_req *r);
/* An extra response header (copied; up to 8 per reply). Returns 0 or -1. */
int qhttp_reply_header(qhttp_req *r, const char *name, const char *value);

/* ---- streamed replies ---------------------------------------------------------------------- */
/* A body produced piece by piece while it is sent, for large bodies that should not be copied into
 * memory (a measurement list of several MB). The read callback runs on an MHD worker thread after
 * the handler returned, one call at a time, with pos = bytes of this source delivered so far; it
 * writes at most max bytes to buf and returns how many (> 0), QHTTP_STREAM_END when the source is
 * done, or QHTTP_STREAM_ERROR. An error (or a source that ends before the announced length) ends
 * the response by closing the connection, so the client sees a truncated transfer, never a body
 * that looks complete; it is logged. free_ctx (may be NULL) is called once on ctx when the reply is
 * done, replaced or could not be sent. total = QHTTP_SIZE_UNKNOWN sends HTTP/1.1 chunked. */
#define QHTTP_SIZE_UNKNOWN  UINT64_MAX
#define QHTTP_STREAM_END    0
#define QHTTP_STREAM_ERROR  (-1)
#define QHTTP_STREAM_BLOCK  (64u * 1024)       /* bytes asked of a read callback at most */
typedef long (*qhttp_read_fn)(void *ctx, uint64_t pos, char *buf, size_t max);
typedef void (*qhttp_free_fn)(void *ctx);

void qhttp_reply_stream(qhttp_req *r, int status, const char *content_type, uint64_t total,
                        qhttp_read_fn read, void *ctx, qhttp_free_fn free_ctx);

/* Envelope reply whose results are `results` (owned, NULL → {}) plus one string member `name`,
 * placed last, whose value is src_len raw bytes read from `src` (pos/buf/max as above; it must
 * deliver exactly src_len bytes) and JSON-escaped on the fly exactly as cJSON prints strings.
 * The body is byte-identical to qhttp_reply with the member added last by cJSON; it is sent
 * chunked. Memory stays bounded (a few QHTTP_STREAM_BLOCKs per reply) whatever src_len is. */
void qhttp_reply_json_stream(qhttp_req *r, int status, cJSON *results, const char *name, uint64_t src_len,
                             qhttp_read_fn src, void *ctx, qhttp_free_fn free_ctx);

/* JSON string escaping as cJSON does it ('"', '\\', \b \f \n \r \t, other bytes below 0x20 as
 * \u00xx, everything else as is), without quotes. Escapes in[0..in_len) into out (cap bytes),
 * stopping before an escape that does not fit; *used gets the input bytes consumed. Returns the
 * bytes written. */
size_t qhttp_json_escape(const char *in, size_t in_len, char *out, size_t cap, size_t *used);

/* Default status text: "Success" for 200, else the HTTP reason phrase ("Not Found", ...). */
const char *qhttp_status_text(int status);

#endif
