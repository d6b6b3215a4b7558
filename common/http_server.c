/* http_server.c — libmicrohttpd wrapper: routes, Keylime envelope, body limits, TLS client
 * certificates (see http_server.h). */
#include "http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "buf.h"
#include "log.h"

#define MAX_HEADERS 8
#define DN_MAX 512
#define PEM_MAX (1u << 20)
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

typedef struct seg {
    char *prefix;            /* literal text (whole segment when param is NULL) */
    size_t plen;
    char *param;             /* "{name}" capture of the rest of the segment, or NULL */
} seg;

typedef struct route {
    char *method;
    int nseg;
    seg segs[QHTTP_MAX_SEGMENTS];
    qhttp_handler_fn fn;
    void *ctx;
} route;

struct qhttp_server {
    struct MHD_Daemon *d;
    route *routes;
    size_t nroutes;
    size_t max_body;
    uint16_t port;
    bool tls, require_cert;
    char module[32];
    char *cert, *key, *ca;   /* PEM copies kept for the daemon's life */
};

struct qhttp_req {
    qhttp_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char path[QHTTP_MAX_PATH + 1];
    /* routing */
    char segbuf[QHTTP_MAX_PATH + 1];
    int nsegs;
    char *segs[QHTTP_MAX_SEGMENTS];
    const route *rt;
    int nparams;
    const char *pname[QHTTP_MAX_PARAMS];
    const char *pval[QHTTP_MAX_PARAMS];
    /* body */
    qbuf body;
    bool too_large;
    cJSON *json;
    bool json_done;
    char peer[INET6_ADDRSTRLEN];
    char dn[DN_MAX];
    bool has_dn;
    /* reply */
    bool replied, queued;
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

/* ---- route table -------------------------------------------------------------------------- */

static void route_free(route *r)
{
    free(r->method);
    for (int i = 0; i < r->nseg; i++) {
        free(r->segs[i].prefix);
        free(r->segs[i].param);
    }
}

static int route_compile(route *r, const qhttp_route *in, qerr *err)
{
    memset(r, 0, sizeof *r);
    const char *p = in->pattern;
    if (!in->method || !in->method[0] || !p || p[0] != '/' || !in->fn)
        return qerr_set(err, "route \"%s\": needs a method, a handler and a path starting with '/'",
                        p ? p : "(null)");
    r->method = strdup(in->method);
    r->fn = in->fn;
    r->ctx = in->ctx;
    if (!r->method)
        return qerr_set(err, "out of memory");
    p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0)
            return qerr_set(err, "route \"%s\": empty segment", in->pattern);
        if (r->nseg == QHTTP_MAX_SEGMENTS)
            return qerr_set(err, "route \"%s\": too many segments", in->pattern);
        seg *s = &r->segs[r->nseg++];
        const char *brace = memchr(p, '{', n);
        size_t plen = brace ? (size_t)(brace - p) : n;
        s->prefix = strndup(p, plen);
        s->plen = plen;
        if (!s->prefix)
            return qerr_set(err, "out of memory");
        if (brace) {
            const char *close = memchr(brace, '}', n - plen);
            if (!close || close != p + n - 1 || close == brace + 1)
                return qerr_set(err, "route \"%s\": a {name} must end its segment", in->pattern);
            s->param = strndup(brace + 1, (size_t)(close - brace - 1));
            if (!s->param)
                return qerr_set(err, "out of memory");
        } else if (memchr(p, '}', n)) {
            return qerr_set(err, "route \"%s\": stray '}'", in->pattern);
        }
        p += n;
        if (*p == '/')
            p++;
        if (!*p && end)
            return qerr_set(err, "route \"%s\": trailing '/'", in->pattern);
    }
    return 0;
}

/* Split the request path into segments (in r->segbuf). Returns -1 if it has empty or too many. */
static int split_path(qhttp_req *r)
{
    size_t n = strlen(r->path);
    memcpy(r->segbuf, r->path, n + 1);
    if (n > 1 && r->segbuf[n - 1] == '/')
        r->segbuf[--n] = '\0';
    r->nsegs = 0;
    if (r->segbuf[0] != '/')
        return -1;
    char *p = r->segbuf + 1;
    if (!*p)
        return 0;
    for (;;) {
        if (r->nsegs == QHTTP_MAX_SEGMENTS)
            return -1;
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (!*p)
            return -1;
        r->segs[r->nsegs++] = p;
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

static bool route_matches(const route *rt, qhttp_req *r, bool capture)
{
    if (rt->nseg != r->nsegs)
        return false;
    int np = 0;
    for (int i = 0; i < rt->nseg; i++) {
        const seg *s = &rt->segs[i];
        const char *v = r->segs[i];
        if (!s->param) {
            if (strcmp(v, s->prefix) != 0)
                return false;
            continue;
        }
        if (strncmp(v, s->prefix, s->plen) != 0 || v[s->plen] == '\0')
            return false;
        if (capture && np < QHTTP_MAX_PARAMS) {
            r->pname[np] = s->param;
            r->pval[np] = v + s->plen;
            np++;
        }
    }
    if (capture)
        r->nparams = np;
    return true;
}

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

size_t qhttp_json_escape(const char *in, size_t in_len, char *out, size_t cap, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;
    while (i < in_len && o < cap) {
        /* A run of bytes printed as they are. */
        size_t run = 0, lim = in_len - i < cap - o ? in_len - i : cap - o;
        while (run < lim && p[i + run] > 31 && p[i + run] != '"' && p[i + run] != '\\')
            run++;
        if (run) {
            memcpy(out + o, p + i, run);
            i += run;
            o += run;
            continue;
        }
        if (i == in_len)
            break;
        unsigned char c = p[i];
        char e = c == '"' ? '"' : c == '\\' ? '\\' : c == '\b' ? 'b' : c == '\f' ? 'f'
               : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 0;
        if (e) {
            if (cap - o < 2)
                break;
            out[o++] = '\\';
            out[o++] = e;
        } else if (c <= 31) {
            if (cap - o < 6)
                break;
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            break; /* not reached: a plain byte that did not fit (o == cap) */
        }
        i++;
    }
    if (used)
        *used = i;
    return o;
}

/* A JSON envelope streamed as prefix + escaped source + suffix. */
#define JS_RAW (QHTTP_STREAM_BLOCK / 4)
typedef struct jstream {
    char *prefix;            /* envelope up to and including the member's opening quote */
    size_t prefix_len;
    qhttp_read_fn src;
    void *ctx;
    qhttp_free_fn free_ctx;
    uint64_t src_len, src_pos;
    int phase;               /* 0 prefix, 1 member value, 2 suffix, 3 done */
    size_t off;              /* position inside the prefix or the suffix */
    char pend[8];            /* one escape that did not fit the caller's buffer */
    size_t pend_len, pend_off;
    size_t raw_pos, raw_len;
    char raw[JS_RAW];
} jstream;

static const char js_suffix[] = "\"}}";

static void jstream_free(void *cls)
{
    jstream *js = cls;
    if (!js)
        return;
    if (js->free_ctx)
        js->free_ctx(js->ctx);
    free(js->prefix);
    free(js);
}

static size_t copy_part(const char *from, size_t len, size_t *off, char *buf, size_t room)
{
    size_t n = len - *off < room ? len - *off : room;
    memcpy(buf, from + *off, n);
    *off += n;
    return n;
}

static long jstream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    jstream *js = cls;
    size_t w = 0;
    while (w < max && js->phase < 3) {
        if (js->phase == 0) {
            w += copy_part(js->prefix, js->prefix_len, &js->off, buf + w, max - w);
            if (js->off == js->prefix_len)
                js->phase = 1;
        } else if (js->phase == 1) {
            if (js->pend_off < js->pend_len) {
                w += copy_part(js->pend, js->pend_len, &js->pend_off, buf + w, max - w);
                continue;
            }
            if (js->raw_pos == js->raw_len) {
                if (js->src_pos == js->src_len) {
                    js->phase = 2;
                    js->off = 0;
                    continue;
                }
                size_t want = js->src_len - js->src_pos < JS_RAW ? (size_t)(js->src_len - js->src_pos) : JS_RAW;
                long n = js->src(js->ctx, js->src_pos, js->raw, want);
                if (n <= 0 || (size_t)n > want)
                    return QHTTP_STREAM_ERROR; /* early end or error: never close the JSON */
                js->raw_pos = 0;
                js->raw_len = (size_t)n;
                js->src_pos += (uint64_t)n;
            }
            size_t used = 0;
            w += qhttp_json_escape(js->raw + js->raw_pos, js->raw_len - js->raw_pos, buf + w, max - w, &used);
            js->raw_pos += used;
            if (used == 0 && w < max) {
                /* The next escape does not fit: keep it and send it in pieces. */
                js->pend_len = qhttp_json_escape(js->raw + js->raw_pos, 1, js->pend, sizeof js->pend, &used);
                js->pend_off = 0;
                js->raw_pos += used;
            }
        } else {
            w += copy_part(js_suffix, sizeof js_suffix - 1, &js->off, buf + w, max - w);
            if (js->off == sizeof js_suffix - 1)
                js->phase = 3;
        }
    }
    return w ? (long)w : QHTTP_STREAM_END;
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

void qhttp_reply_json_stream(qhttp_req *r, int status, cJSON *results, const char *name, uint64_t src_len,
                             qhttp_read_fn src, void *ctx, qhttp_free_fn free_ctx)
{
    if (status < 100 || status > 599)
        status = 500;
    jstream *js = calloc(1, sizeof *js);
    cJSON *env = cJSON_CreateObject();
    if (!results)
        results = cJSON_CreateObject();
    char *s = NULL;
    if (js && env && results && name && src && cJSON_AddNumberToObject(env, "code", status) &&
        cJSON_AddStringToObject(env, "status", qhttp_status_text(status))) {
        cJSON_AddItemToObject(env, "results", results);
        results = NULL;
        s = cJSON_PrintUnformatted(env);
    }
    cJSON_Delete(results);
    cJSON_Delete(env);
    size_t len = s ? strlen(s) : 0, nlen = name ? strlen(name) : 0;
    /* s ends with the "}}" closing results and the envelope; the member goes before them. */
    if (js && s && len >= 4 && strcmp(s + len - 2, "}}") == 0 && (js->prefix = malloc(len + 6 * nlen + 8))) {
        bool empty = s[len - 3] == '{';
        memcpy(js->prefix, s, len - 2);
        size_t o = len - 2;
        if (!empty)
            js->prefix[o++] = ',';
        js->prefix[o++] = '"';
        o += qhttp_json_escape(name, nlen, js->prefix + o, 6 * nlen, NULL);
        memcpy(js->prefix + o, "\":\"", 3);
        js->prefix_len = o + 3;
        js->src = src;
        js->ctx = ctx;
        js->free_ctx = free_ctx;
        js->src_len = src_len;
        cJSON_free(s);
        qhttp_reply_stream(r, status, "application/json", QHTTP_SIZE_UNKNOWN, jstream_read, js, jstream_free);
        return;
    }
    cJSON_free(s);
    if (js)
        free(js->prefix);
    free(js);
    if (free_ctx)
        free_ctx(ctx);
    if (r)
        qhttp_reply_error(r, 500, (src && name) ? "Out of memory" : "Internal Server Error");
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

static enum MHD_Result queue_reply(qhttp_req *r)
{
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
    for (int i = 0; name && i < r->nparams; i++)
        if (strcmp(r->pname[i], name) == 0)
            return r->pval[i];
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

/* ---- TLS client certificate --------------------------------------------------------------- */

/* 0 when the peer presented a certificate that verifies against the CA; fills r->dn. */
static int check_client_cert(qhttp_req *r, char *why, size_t cap)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) {
        snprintf(why, cap, "no TLS session");
        return -1;
    }
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || n == 0) {
        snprintf(why, cap, "no client certificate");
        return -1;
    }
    unsigned status = 0;
    int rc = gnutls_certificate_verify_peers2(s, &status);
    if (rc < 0 || status != 0) {
        gnutls_datum_t out = { NULL, 0 };
        if (rc >= 0 &&
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
            snprintf(why, cap, "client certificate rejected: %s", (const char *)out.data);
            gnutls_free(out.data);
            size_t wl = strlen(why);
            while (wl > 0 && why[wl - 1] == ' ')
                why[--wl] = '\0';
        } else {
            snprintf(why, cap, "client certificate rejected: %s", gnutls_strerror(rc));
        }
        return -1;
    }
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) == 0) {
        gnutls_datum_t dn = { NULL, 0 };
        if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
            gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
            snprintf(r->dn, sizeof r->dn, "%.*s", (int)dn.size, (const char *)dn.data);
            r->has_dn = true;
            gnutls_free(dn.data);
        }
        gnutls_x509_crt_deinit(crt);
    }
    return 0;
}

/* ---- MHD callbacks ------------------------------------------------------------------------ */

static void peer_text(qhttp_req *r)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(r->peer, sizeof r->peer, "?");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r->peer, sizeof r->peer);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, r->peer, sizeof r->peer);
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
        if (check_client_cert(r, why, sizeof why) < 0) {
            qlog(QLOG_WARNING, srv->module, "%s %s from %s refused: %s", r->method, r->path, r->peer, why);
            qhttp_reply_error(r, 401, "Unauthorized: %s", why);
            return true;
        }
    }
    if (split_path(r) < 0) {
        qhttp_reply_error(r, 404, "Not Found");
        return true;
    }
    char allow[128] = "";
    for (size_t i = 0; i < srv->nroutes; i++) {
        const route *rt = &srv->routes[i];
        if (!route_matches(rt, r, false))
            continue;
        if (strcmp(rt->method, r->method) == 0) {
            route_matches(rt, r, true);
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
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        qbuf_init(&r->body, srv->max_body);
        *con_cls = r;
        if (first_call(r, url ? url : "/"))
            return queue_reply(r);
        return MHD_YES;
    }
    if (r->queued) {
        *upload_data_size = 0;
        return MHD_YES;
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
    return queue_reply(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
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

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    qhttp_server *srv = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    qlog(QLOG_WARNING, srv->module, "libmicrohttpd: %s", msg);
}

/* ---- start / stop ------------------------------------------------------------------------- */

static char *load_pem(const char *pem, const char *file, const char *what, qerr *err)
{
    if (pem) {
        char *c = strdup(pem);
        if (!c)
            qerr_set(err, "out of memory");
        return c;
    }
    if (!file || !file[0])
        return NULL;
    qbuf b;
    qbuf_init(&b, PEM_MAX);
    if (qbuf_read_file(&b, file, PEM_MAX) < 0 || !qbuf_cstr(&b)) {
        qbuf_free(&b);
        qerr_set(err, "cannot read TLS %s file %s", what, file);
        return NULL;
    }
    return (char *)b.data; /* NUL-terminated, owned by the caller */
}

static void server_free(qhttp_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nroutes; i++)
        route_free(&s->routes[i]);
    free(s->routes);
    free(s->cert);
    if (s->key) {
        explicit_bzero(s->key, strlen(s->key));
        free(s->key);
    }
    free(s->ca);
    free(s);
}

static int resolve(const char *ip, uint16_t port, struct sockaddr_storage *ss, qerr *err)
{
    const char *host = (ip && ip[0]) ? ip : "0.0.0.0";
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res)
        return qerr_set(err, "cannot resolve listen address %s: %s", host, gai_strerror(rc));
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        return qerr_set(err, "listen address %s is neither IPv4 nor IPv6", host);
    return 0;
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
        if (route_compile(&s->routes[i], &routes[i], err) < 0) {
            server_free(s);
            return NULL;
        }
    }

    qerr_clear(err);
    s->cert = load_pem(o->tls_cert_pem, o->tls_cert_file, "certificate", err);
    s->key = load_pem(o->tls_key_pem, o->tls_key_file, "key", err);
    s->ca = load_pem(o->tls_ca_pem, o->tls_ca_file, "CA", err);
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
    if (resolve(o->ip, o->port, &ss, err) < 0) {
        server_free(s);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (s->tls)
        flags |= MHD_USE_TLS;

    struct MHD_OptionItem opts[16];
    int n = 0;
    /* The logger must come first so that option errors reach it too. */
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, s };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, &ss };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, o->threads ? o->threads : 4, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, o->conn_limit ? o->conn_limit : 512, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
                                         o->conn_timeout_s ? o->conn_timeout_s : 30, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s };
    if (s->tls) {
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert };
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->key };
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES };
        if (s->ca)
            opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, s->ca };
    }
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };

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
