/* http_server.c — libmicrohttpd wrapper: routes, Keylime envelope, body limits, connection
 * limits (see http_server.h). The client-certificate check is in http_peer_cert.c, the
 * per-connection deadline in http_guard.c, streamed JSON envelopes in http_json_stream.c. */
#include "http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "buf.h"
#include "http_guard.h"
#include "http_peer_cert.h"
#include "http_route.h"
#include "http_setup.h"
#include "log.h"

#define MAX_HEADERS 8
#define DN_MAX QHTTP_DN_MAX
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct qhttp_server {
    struct MHD_Daemon *d;
    qhttp_guard *guard;
    unsigned long limit_hits;    /* refused connections not yet logged */
    time_t limit_logged;         /* when the last "refused" line was logged */
    qroute *routes;
    size_t nroutes;
    size_t max_body;
    uint16_t port;
    bool tls, require_cert;
    char module[32];
    char *cert, *key, *ca;   /* PEM copies kept for the daemon's life */
    void *(*conn_open)(void *arg, int fd, void *tls_session);
    void *conn_arg;
    bool allow_hold;
};

struct qhttp_req {
    qhttp_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char path[QHTTP_MAX_PATH + 1];
    /* routing */
    qroute_path rp;
    const qroute *rt;
    /* body */
    qbuf body;
    bool too_large;
    cJSON *json;
    bool json_done;
    char peer[INET6_ADDRSTRLEN];
    char dn[DN_MAX];
    bool has_dn;
    /* reply */
    bool replied, queued, held, hangup;
    int status;
    char *data;
    size_t len;
    void (*data_free)(void *);
    const char *ctype;
    char ctype_buf[128];
    int nhdr;
    char *hname[MAX_HEADERS], *hval[MAX_HEADERS];
    struct stream *stream;   /* streamed body, until handed to MHD */
};

/* ---- streamed bodies ---------------------------------------------------------------------- */

/* A streamed body as MHD sees it: the caller's reader plus the bookkeeping that turns an early
 * end or an error into a truncated transfer and a log line. */
typedef struct stream {
    qhttp_read_fn read;
    void *ctx;
    qhttp_free_fn free_ctx;
    uint64_t total, sent;
    char module[32];
    char what[224];          /* "METHOD /path" for log lines */
} stream;

static void stream_free(void *cls)
{
    stream *st = cls;
    if (!st)
        return;
    if (st->free_ctx)
        st->free_ctx(st->ctx);
    free(st);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos; /* == st->sent: MHD asks for the body in order */
    stream *st = cls;
    if (st->total != QHTTP_SIZE_UNKNOWN && st->total - st->sent < max)
        max = (size_t)(st->total - st->sent);
    if (max > QHTTP_STREAM_BLOCK)
        max = QHTTP_STREAM_BLOCK;
    long n = max ? st->read(st->ctx, st->sent, buf, max) : QHTTP_STREAM_END;
    if (n > 0 && (size_t)n <= max) {
        st->sent += (uint64_t)n;
        return (ssize_t)n;
    }
    if (n == QHTTP_STREAM_END && (st->total == QHTTP_SIZE_UNKNOWN || st->sent == st->total))
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == QHTTP_STREAM_END)
        qlog(QLOG_ERROR, st->module, "%s: streamed reply ended after %llu of %llu bytes; connection closed",
             st->what, (unsigned long long)st->sent, (unsigned long long)st->total);
    else
        qlog(QLOG_ERROR, st->module, "%s: streamed reply failed after %llu bytes; connection closed",
             st->what, (unsigned long long)st->sent);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* ---- replies ------------------------------------------------------------------------------ */

const char *qhttp_status_text(int status)
{
    if (status == 200)
        return "Success";
    const char *t = MHD_get_reason_phrase_for((unsigned)status);
    return (t && t[0]) ? t : "Unknown";
}

static void stream_free(void *cls);

static void reply_clear(qhttp_req *r)
{
    stream_free(r->stream);
    r->stream = NULL;
    if (r->data && r->data_free)
        r->data_free(r->data);
    r->data = NULL;
    r->len = 0;
    r->data_free = NULL;
    r->replied = false;
}

void qhttp_reply_status(qhttp_req *r, int status, const char *status_text, cJSON *results)
{
    if (!r) {
        cJSON_Delete(results);
        return;
    }
    reply_clear(r);
    if (status < 100 || status > 599)
        status = 500;
    cJSON *env = cJSON_CreateObject();
    if (!results)
        results = cJSON_CreateObject();
    char *s = NULL;
    if (env && results && cJSON_AddNumberToObject(env, "code", status) &&
        cJSON_AddStringToObject(env, "status", status_text ? status_text : qhttp_status_text(status))) {
        cJSON_AddItemToObject(env, "results", results);
        results = NULL;
        s = cJSON_PrintUnformatted(env);
    }
    cJSON_Delete(results);
    cJSON_Delete(env);
    r->replied = true;
    r->ctype = "application/json";
    if (s) {
        r->status = status;
        r->data = s;
        r->len = strlen(s);
        r->data_free = cJSON_free;
    } else {
        static const char oom[] = "{\"code\": 500, \"status\": \"Internal Server Error\", \"results\": {}}";
        r->status = 500;
        r->data = (char *)oom;
        r->len = sizeof oom - 1;
    }
}

void qhttp_reply(qhttp_req *r, int status, cJSON *results)
{
    qhttp_reply_status(r, status, NULL, results);
}

void qhttp_reply_error(qhttp_req *r, int status, const char *fmt, ...)
{
    char msg[QERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qhttp_reply_status(r, status, msg, NULL);
}

void qhttp_reply_raw(qhttp_req *r, int status, const char *content_type, const void *body, size_t len)
{
    if (!r)
        return;
    reply_clear(r);
    r->replied = true;
    r->status = (status < 100 || status > 599) ? 500 : status;
    snprintf(r->ctype_buf, sizeof r->ctype_buf, "%s", content_type ? content_type : "application/octet-stream");
    r->ctype = r->ctype_buf;
    if (len == 0)
        return;
    char *d = malloc(len);
    if (!d) {
        qhttp_reply_error(r, 500, "Out of memory");
        return;
    }
    memcpy(d, body, len);
    r->data = d;
    r->len = len;
    r->data_free = free;
}

void qhttp_reply_stream(qhttp_req *r, int status, const char *content_type, uint64_t total,
                        qhttp_read_fn read, void *ctx, qhttp_free_fn free_ctx)
{
    if (!r || !read) {
        if (free_ctx)
            free_ctx(ctx);
        if (r)
            qhttp_reply_error(r, 500, "Internal Server Error");
        return;
    }
    reply_clear(r);
    stream *st = calloc(1, sizeof *st);
    if (!st) {
        if (free_ctx)
            free_ctx(ctx);
        qhttp_reply_error(r, 500, "Out of memory");
        return;
    }
    st->read = read;
    st->ctx = ctx;
    st->free_ctx = free_ctx;
    st->total = total;
    snprintf(st->module, sizeof st->module, "%s", r->srv ? r->srv->module : "http");
    r->stream = st;
    r->replied = true;
    r->status = (status < 100 || status > 599) ? 500 : status;
    snprintf(r->ctype_buf, sizeof r->ctype_buf, "%s", content_type ? content_type : "application/octet-stream");
    r->ctype = r->ctype_buf;
}

int qhttp_reply_header(qhttp_req *r, const char *name, const char *value)
{
    if (!r || !name || !value || r->nhdr == MAX_HEADERS)
        return -1;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    r->hname[r->nhdr] = n;
    r->hval[r->nhdr] = v;
    r->nhdr++;
    return 0;
}

void qhttp_reply_hangup(qhttp_req *r)
{
    reply_clear(r);
    r->replied = r->hangup = true;
}

static enum MHD_Result queue_reply(qhttp_req *r)
{
    if (r->hangup)
        return MHD_NO;
    if (!r->replied)
        qhttp_reply_error(r, 500, "Internal Server Error");
    struct MHD_Response *resp;
    if (r->stream) {
        snprintf(r->stream->what, sizeof r->stream->what, "%s %.200s", r->method, r->path);
        resp = MHD_create_response_from_callback(r->stream->total, QHTTP_STREAM_BLOCK, stream_read, r->stream,
                                                 stream_free);
        if (resp)
            r->stream = NULL; /* MHD owns it now and calls stream_free */
    } else if (r->len == 0)
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    else if (r->data_free)
        resp = MHD_create_response_from_buffer_with_free_callback(r->len, r->data, r->data_free);
    else
        resp = MHD_create_response_from_buffer(r->len, r->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO; /* r->data still owned by r, freed at completion */
    r->data = NULL;
    r->data_free = NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    for (int i = 0; i < r->nhdr; i++)
        MHD_add_response_header(resp, r->hname[i], r->hval[i]);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->queued = true;
    qlog(QLOG_DEBUG, r->srv->module, "%s %s from %s: %d", r->method, r->path, r->peer, r->status);
    return ret;
}

/* ---- request accessors -------------------------------------------------------------------- */

const char *qhttp_req_method(const qhttp_req *r) { return r->method; }
const char *qhttp_req_path(const qhttp_req *r) { return r->path; }
const char *qhttp_req_peer(const qhttp_req *r) { return r->peer; }
const char *qhttp_req_client_dn(const qhttp_req *r) { return r->has_dn ? r->dn : NULL; }

const char *qhttp_req_param(const qhttp_req *r, const char *name)
{
    for (int i = 0; name && i < r->rp.nparams; i++)
        if (strcmp(r->rp.pname[i], name) == 0)
            return r->rp.pval[i];
    return NULL;
}

const char *qhttp_req_query(const qhttp_req *r, const char *name)
{
    if (!name)
        return NULL;
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    if (v)
        return v;
    /* "?name" without '=' is reported by MHD with a NULL value: tell it apart from absent. */
    const char *dummy = NULL;
    bool present = MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name),
                                                 &dummy, NULL) == MHD_YES;
    return present ? "" : NULL;
}

const char *qhttp_req_header(const qhttp_req *r, const char *name)
{
    return name ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *qhttp_req_body(const qhttp_req *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.len ? (const char *)r->body.data : "";
}

const cJSON *qhttp_req_json(qhttp_req *r, qerr *err)
{
    if (!r->json_done) {
        r->json_done = true;
        if (r->body.len > 0) {
            const char *end = NULL;
            r->json = cJSON_ParseWithLengthOpts((const char *)r->body.data, r->body.len, &end, false);
            if (r->json && end) {
                while ((size_t)(end - (const char *)r->body.data) < r->body.len &&
                       (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
                    end++;
                if ((size_t)(end - (const char *)r->body.data) != r->body.len) {
                    cJSON_Delete(r->json);
                    r->json = NULL;
                }
            }
        }
    }
    if (!r->json) {
        if (r->body.len == 0)
            qerr_set(err, "request body is empty");
        else
            qerr_set(err, "request body is not valid JSON");
    }
    return r->json;
}

/* ---- per-connection state --------------------------------------------------------------- */

static qhttp_conn *conn_of(const qhttp_req *r)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void *qhttp_req_conn_ctx(const qhttp_req *r)
{
    qhttp_conn *c = conn_of(r);
    return c ? c->user : NULL;
}

void qhttp_req_hold(qhttp_req *r) { r->held = true; }
void qhttp_req_release(qhttp_req *r) { MHD_resume_connection(r->conn); }

/* ---- MHD callbacks ------------------------------------------------------------------------ */

/* URL unescaping as libmicrohttpd's own, except that "%00" stays as its three characters: a
 * decoded NUL would cut the path short ("/agents/abc%00def" would reach the handler as
 * "/agents/abc"), so the id arrives whole and fails the handler's check with 400. The result
 * is never longer than the input, so it is written in place. */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *c, char *val)
{
    (void)cls;
    (void)c;
    char *out = val;
    const char *in = val;
    for (;;) {
        const char *nul = strstr(in, "%00");
        size_t len = nul ? (size_t)(nul - in) : strlen(in);
        memmove(out, in, len);
        out[len] = '\0';
        out += MHD_http_unescape(out);
        if (!nul)
            break;
        memcpy(out, "%00", 3);
        out += 3;
        in = nul + 3;
    }
    *out = '\0';
    return (size_t)(out - val);
}

static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)cap);
}

static void peer_text(qhttp_req *r)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    addr_text(ci ? ci->client_addr : NULL, r->peer, sizeof r->peer);
}

/* First call for a request: decide everything that does not need the body. Returns true when a
 * reply (error) is ready to be queued now. */
static bool first_call(qhttp_req *r, const char *url)
{
    qhttp_server *srv = r->srv;
    peer_text(r);
    if (strlen(url) > QHTTP_MAX_PATH) {
        snprintf(r->path, sizeof r->path, "%.*s...", 64, url);
        qhttp_reply_error(r, 414, "URI Too Long");
        return true;
    }
    snprintf(r->path, sizeof r->path, "%s", url);
    if (srv->require_cert) {
        char why[256];
        if (qhttp_peer_cert_check(r->conn, conn_of(r), r->dn, sizeof r->dn, &r->has_dn, why, sizeof why) < 0) {
            qlog(QLOG_WARNING, srv->module, "%s %s from %s refused: %s", r->method, r->path, r->peer, why);
            qhttp_reply_error(r, 403, "Forbidden: %s", why);    /* Keylime's code */
            return true;
        }
    }
    if (qroute_split(&r->rp, r->path) < 0) {
        qhttp_reply_error(r, 404, "Not Found");
        return true;
    }
    char allow[128] = "";
    for (size_t i = 0; i < srv->nroutes; i++) {
        const qroute *rt = &srv->routes[i];
        if (!qroute_matches(rt, &r->rp, false))
            continue;
        if (strcmp(rt->method, r->method) == 0) {
            qroute_matches(rt, &r->rp, true);
            r->rt = rt;
            break;
        }
        size_t used = strlen(allow);
        if (!strstr(allow, rt->method) && used + strlen(rt->method) + 3 < sizeof allow)
            snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", rt->method);
    }
    if (!r->rt) {
        if (allow[0]) {
            qhttp_reply_error(r, 405, "Method Not Allowed");
            qhttp_reply_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        } else {
            qhttp_reply_error(r, 404, "Not Found");
        }
        return true;
    }
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (end != cl && v > srv->max_body) {
            qhttp_reply_error(r, 413, "Request body too large");
            return true;
        }
    }
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    qhttp_server *srv = cls;
    qhttp_req *r = *con_cls;
    if (!r) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        qhttp_conn *cc = ci ? ci->socket_context : NULL;
        if (srv->conn_open && !(cc && cc->user))
            return MHD_NO;          /* refused by the hook: close */
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        qbuf_init(&r->body, srv->max_body);
        *con_cls = r;
        qhttp_guard_headers_done(srv->guard, conn_of(r));
        if (first_call(r, url ? url : "/"))
            return queue_reply(r);
        return MHD_YES;
    }
    if (r->queued) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->held) {                  /* resumed by qhttp_req_release */
        r->held = false;
        return queue_reply(r);
    }
    if (*upload_data_size) {
        if (!r->too_large && qbuf_append(&r->body, upload_data, *upload_data_size) < 0)
            r->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_large) {
        qhttp_reply_error(r, 413, "Request body too large");
        return queue_reply(r);
    }
    if (!qbuf_cstr(&r->body) && r->body.len) {
        qhttp_reply_error(r, 500, "Out of memory");
        return queue_reply(r);
    }
    r->rt->fn(r, r->rt->ctx);
    if (r->held && srv->allow_hold && r->replied && !r->hangup) {
        MHD_suspend_connection(conn);
        return MHD_YES;
    }
    r->held = false;
    return queue_reply(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    qhttp_server *srv = cls;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    qhttp_guard_request_done(srv->guard, ci ? ci->socket_context : NULL);
    qhttp_req *r = *con_cls;
    if (!r)
        return;
    reply_clear(r);
    for (int i = 0; i < r->nhdr; i++) {
        free(r->hname[i]);
        free(r->hval[i]);
    }
    cJSON_Delete(r->json);
    qbuf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    qhttp_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        char peer[INET6_ADDRSTRLEN];
        addr_text(ai ? ai->client_addr : NULL, peer, sizeof peer);
        /* NULL (out of memory): the connection is served unguarded, without the cache */
        qhttp_conn *c = qhttp_guard_open(srv->guard, fi ? fi->connect_fd : -1, peer);
        *socket_context = c;
        if (srv->conn_open && c) {
            const union MHD_ConnectionInfo *ti = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
            c->user = srv->conn_open(srv->conn_arg, c->fd, ti ? ti->tls_session : NULL);
        }
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        qhttp_guard_close(srv->guard, *socket_context);
        *socket_context = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    qhttp_server *srv = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* Clients that close or talk nonsense are no news; a connection flood would make one message
     * per connection: the rest are at most MHD_LOG_BURST per minute, then a count. */
    if (strstr(msg, "is closed when") || strstr(msg, "closed by remote side") ||
        strstr(msg, "out of context") || strstr(msg, "connection limit")) {
        qlog(QLOG_DEBUG, srv->module, "libmicrohttpd: %s", msg);
        if (!strstr(msg, "connection limit"))
            return;
        time_t now = qhttp_mono_s();
        unsigned long hits = __atomic_add_fetch(&srv->limit_hits, 1, __ATOMIC_RELAXED);
        time_t last = __atomic_load_n(&srv->limit_logged, __ATOMIC_RELAXED);
        if (last && now - last < 60)
            return;
        __atomic_store_n(&srv->limit_logged, now ? now : 1, __ATOMIC_RELAXED);
        __atomic_store_n(&srv->limit_hits, 0, __ATOMIC_RELAXED);
        qlog(QLOG_WARNING, srv->module, "connection refused: the limit of connections in all or from one address "
             "is reached (%lu refused since the last such message; at most one a minute)", hits);
        return;
    }
    qlog(QLOG_WARNING, srv->module, "libmicrohttpd: %s", msg);
}

/* ---- start / stop ------------------------------------------------------------------------- */

/* After MHD_stop_daemon (the guard outlives every connection). */
static void server_free(qhttp_server *s)
{
    if (!s)
        return;
    qhttp_guard_stop(s->guard);
    for (size_t i = 0; i < s->nroutes; i++)
        qroute_free(&s->routes[i]);
    free(s->routes);
    free(s->cert);
    if (s->key) {
        explicit_bzero(s->key, strlen(s->key));
        free(s->key);
    }
    free(s->ca);
    free(s);
}

qhttp_server *qhttp_server_start(const qhttp_server_opts *o, const qhttp_route *routes, size_t nroutes,
                                 qerr *err)
{
    if (!o || (nroutes && !routes) || nroutes > QHTTP_MAX_ROUTES) {
        qerr_set(err, "http server: bad arguments");
        return NULL;
    }
    qhttp_server *s = calloc(1, sizeof *s);
    if (!s || (nroutes && !(s->routes = calloc(nroutes, sizeof *s->routes)))) {
        qerr_set(err, "out of memory");
        free(s);
        return NULL;
    }
    snprintf(s->module, sizeof s->module, "%s", o->log_module ? o->log_module : "http");
    s->max_body = o->max_body ? o->max_body : QHTTP_DEFAULT_BODY;
    for (size_t i = 0; i < nroutes; i++) {
        s->nroutes = i + 1;
        if (qroute_compile(&s->routes[i], &routes[i], err) < 0) {
            server_free(s);
            return NULL;
        }
    }

    qerr_clear(err);
    s->cert = qhttp_load_pem(o->tls_cert_pem, o->tls_cert_file, "certificate", err);
    s->key = qhttp_load_pem(o->tls_key_pem, o->tls_key_file, "key", err);
    s->ca = qhttp_load_pem(o->tls_ca_pem, o->tls_ca_file, "CA", err);
    if (err && err->msg[0]) {
        server_free(s);
        return NULL;
    }
    s->tls = s->cert || s->key;
    if (s->tls && (!s->cert || !s->key)) {
        qerr_set(err, "http server: TLS needs both a certificate and a key");
        server_free(s);
        return NULL;
    }
    if (o->require_client_cert && (!s->tls || !s->ca)) {
        qerr_set(err, "http server: client certificates need TLS and a CA");
        server_free(s);
        return NULL;
    }
    s->require_cert = o->require_client_cert;
    if (s->tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        qerr_set(err, "http server: libmicrohttpd was built without TLS");
        server_free(s);
        return NULL;
    }

    struct sockaddr_storage ss;
    if (qhttp_resolve(o->ip, o->port, &ss, err) < 0) {
        server_free(s);
        return NULL;
    }
    /* poll(), not epoll: libmicrohttpd 0.9.75's epoll mode keeps a TLS connection whose
     * handshake is waiting for the client (gnutls_handshake → GNUTLS_E_AGAIN) on its ready list,
     * so the worker spins on epoll_wait(timeout 0) + recv → EAGAIN until the handshake completes
     * or the connection times out. poll() asks the connection what it waits for on every turn.
     * Its cost grows with the connections per worker, which the connection limit bounds.
     * external_loop needs epoll (its fd is what the caller polls); the caller bounds the
     * re-runs such a connection asks for (qhttp_server_run). */
    unsigned flags = o->external_loop ? MHD_USE_EPOLL | MHD_USE_ERROR_LOG
                                      : MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (s->tls)
        flags |= MHD_USE_TLS;
    if (o->allow_hold)
        flags |= MHD_ALLOW_SUSPEND_RESUME;
    s->allow_hold = o->allow_hold;
    s->conn_open = o->conn_open;
    s->conn_arg = o->conn_arg;

    struct MHD_OptionItem opts[16];
    int n = 0;
    /* The logger must come first so that option errors reach it too. */
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, s };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, &ss };
    if (!o->external_loop)
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, o->threads ? o->threads : 4, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
                                         o->conn_limit ? o->conn_limit : QHTTP_DEFAULT_CONN_LIMIT, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
                                         o->conn_timeout_s ? o->conn_timeout_s : 30, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape_keep_nul, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                         o->per_ip_limit ? o->per_ip_limit : QHTTP_DEFAULT_PER_IP, NULL };
    if (s->tls) {
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert };
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->key };
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES };
        if (s->ca)
            opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, s->ca };

    }
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };

    s->guard = qhttp_guard_start(o->header_timeout_s ? o->header_timeout_s : QHTTP_DEFAULT_HEADER_TIMEOUT, s->module,
                                 err);
    if (!s->guard) {
        server_free(s);
        return NULL;
    }
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->d) {
        char addr[INET6_ADDRSTRLEN] = "?";
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
        else
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
        qerr_set(err, "cannot listen on %s port %u (address in use, bad TLS material or no permission)",
                 addr, (unsigned)o->port);
        server_free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    return s;
}

uint16_t qhttp_server_port(const qhttp_server *s)
{
    return s ? s->port : 0;
}

int qhttp_server_poll_fd(const qhttp_server *s)
{
    const union MHD_DaemonInfo *di = s ? MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    return di ? di->epoll_fd : -1;
}

int qhttp_server_run(qhttp_server *s)
{
    if (!s || MHD_run(s->d) != MHD_YES)
        return -1;
    /* With epoll, MHD keeps connections that still have buffered work on its own list; its fd
     * does not turn readable again for them, so the caller must run it again at once. */
    MHD_UNSIGNED_LONG_LONG to = 1;
    return MHD_get_timeout(s->d, &to) == MHD_YES && to == 0 ? 1 : 0;
}

bool qhttp_server_tls(const qhttp_server *s)
{
    return s && s->tls;
}

void qhttp_server_stop(qhttp_server *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    server_free(s);
}
