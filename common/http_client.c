/* http_client.c — libcurl easy-interface wrapper for JSON REST calls (see http_client.h). */
#include "http_client.h"
#include "curl_conf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <openssl/x509.h>

#include "buf.h"

struct qhttp_client {
    CURL *h;
    struct curl_slist *headers;         /* requests without a body */
    struct curl_slist *headers_body;    /* with a body: adds Content-Type */
    long connect_ms, timeout_ms;
    size_t max;
    X509 *anchor;                       /* opts.ca_cert, up-referenced */
    qcurl_tls tls;                      /* the TLS-context hook's data (curl_conf.h) */
    char err[CURL_ERROR_SIZE];
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct sink {
    qbuf b;
    size_t max;
    bool over;
} sink;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t len = size * n;
    if (s->b.len + len > s->max) {
        s->over = true;
        return 0; /* aborts the transfer */
    }
    if (qbuf_append(&s->b, p, len) < 0)
        return 0;
    return len;
}

void qhttp_client_free(qhttp_client *c)
{
    if (!c)
        return;
    if (c->h)
        curl_easy_cleanup(c->h);
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->headers_body);
    X509_free(c->anchor);
    free(c);
}

qhttp_client *qhttp_client_new(const qhttp_client_opts *o, qerr *err)
{
    static const qhttp_client_opts defaults = { 0 };
    if (!o)
        o = &defaults;
    pthread_once(&g_once, global_init);
    if (g_init_rc != CURLE_OK) {
        qerr_set(err, "libcurl initialisation failed: %s", curl_easy_strerror(g_init_rc));
        return NULL;
    }
    qhttp_client *c = calloc(1, sizeof *c);
    if (!c || !(c->h = curl_easy_init())) {
        qerr_set(err, "libcurl: cannot create a handle");
        qhttp_client_free(c);
        return NULL;
    }
    c->connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : QHTTP_CLIENT_DEFAULT_CONNECT_MS;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : QHTTP_CLIENT_DEFAULT_TIMEOUT_MS;
    c->max = o->max_response ? o->max_response : QHTTP_CLIENT_DEFAULT_MAX;
    /* Content-Type only on requests that carry a body: Keylime's servers try to decode the body
     * of any request that declares one, and answer a bodiless GET/DELETE with 400. */
    static const char *hdrs[] = { "Accept: application/json", "Expect:" };
    struct curl_slist *t = NULL;
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        if (!(t = curl_slist_append(c->headers, hdrs[i])) || !(c->headers = t) ||
            !(t = curl_slist_append(c->headers_body, hdrs[i])) || !(c->headers_body = t))
            break;
    }
    /* "Content-Type:" with no value stops curl adding its form type to an empty POST. */
    if (!t || !(t = curl_slist_append(c->headers_body, "Content-Type: application/json")) ||
        !(c->headers_body = t) || !(t = curl_slist_append(c->headers, "Content-Type:")) || !(c->headers = t)) {
        qerr_set(err, "out of memory");
        qhttp_client_free(c);
        return NULL;
    }

    qcurl_conf cc = {
        .connect_timeout_ms = c->connect_ms,
        .timeout_ms = c->timeout_ms,
        .max_filesize = (curl_off_t)c->max,
        .errbuf = c->err,
        .write_fn = on_data,
        .ca_pem = o->ca_pem,
        .tls = &c->tls,
        .ca_file = o->ca_file,
        .cert_file = o->cert_file,
        .key_file = o->key_file,
        .pinned_pubkey = o->pinned_pubkey,
        .no_verify_host = o->no_verify_host,
    };
    if (o->ca_cert && o->ca_pem) {
        if (X509_up_ref(o->ca_cert) != 1) {
            qerr_set(err, "out of memory");
            qhttp_client_free(c);
            return NULL;
        }
        c->anchor = cc.ca_cert = o->ca_cert;
    }
    char iface[80];
    snprintf(iface, sizeof iface, "host!%s", o->local_ip ? o->local_ip : "");
    if (qcurl_configure(c->h, &cc, err) < 0 || QCURL_SET(c->h, CURLOPT_HTTPHEADER, c->headers, err) < 0 ||
        (o->local_ip && QCURL_SET(c->h, CURLOPT_INTERFACE, iface, err) < 0)) {
        qhttp_client_free(c);
        return NULL;
    }
    return c;
}

void qhttp_result_free(qhttp_result *r)
{
    if (!r)
        return;
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

const char *qhttp_result_describe(const qhttp_result *r, char *buf, size_t cap)
{
    if (!r || !buf || cap == 0)
        return "";
    const char *t = r->status_text;
    if (!t)
        t = r->status >= 200 && r->status < 300 ? "OK" : "error";
    snprintf(buf, cap, "%ld %s", r->status, t);
    return buf;
}

/* "host:port" of a URL for messages. */
static void url_target(const char *url, char *out, size_t cap)
{
    snprintf(out, cap, "%s", url);
    CURLU *u = curl_url();
    if (!u)
        return;
    char *host = NULL, *port = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
        snprintf(out, cap, "%s:%s", host, port);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

static int transport_error(qhttp_client *c, CURLcode rc, const sink *s, const char *url, qerr *err)
{
    char target[300];
    url_target(url, target, sizeof target);
    const char *detail = c->err[0] ? c->err : curl_easy_strerror(rc);
    long oserr = 0;
    curl_easy_getinfo(c->h, CURLINFO_OS_ERRNO, &oserr);
    if (s->over || rc == CURLE_FILESIZE_EXCEEDED)
        return qerr_set(err, "response over %zu bytes", c->max);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: {
        curl_off_t conn_us = 0;
        curl_easy_getinfo(c->h, CURLINFO_CONNECT_TIME_T, &conn_us);
        if (conn_us == 0 && c->connect_ms < c->timeout_ms)
            return qerr_set(err, "connection to %s timed out after %ld ms", target, c->connect_ms);
        return qerr_set(err, "timed out after %ld ms", c->timeout_ms);
    }
    case CURLE_COULDNT_CONNECT:
        if (oserr == ECONNREFUSED)
            return qerr_set(err, "connection refused to %s", target);
        return qerr_set(err, "cannot connect to %s: %s", target, oserr ? strerror((int)oserr) : detail);
    case CURLE_COULDNT_RESOLVE_HOST:
        return qerr_set(err, "cannot resolve the host of %s", target);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return qerr_set(err, "bad URL %s", url);
    case CURLE_SSL_CONNECT_ERROR:
        /* The handshake itself failed (not a certificate check): a plain-HTTP server answers a
         * ClientHello with text ("wrong version number") or just closes the connection (an
         * unexpected EOF / SSL_ERROR_SYSCALL, depending on timing), so say what to check. */
        return qerr_set(err, "TLS error with %s: %s (does the server speak TLS? a plain-HTTP port "
                             "needs http://)", target, detail);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
        return qerr_set(err, "TLS error with %s: %s", target, detail);
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        if (strncmp(url, "http://", 7) == 0 && rc != CURLE_PARTIAL_FILE)
            return qerr_set(err, "%s closed the connection: %s (is it a TLS port? use https)", target, detail);
        if (strncmp(url, "https://", 8) == 0 && rc != CURLE_PARTIAL_FILE)
            return qerr_set(err, "%s closed the connection: %s (does the server speak TLS? a plain-HTTP "
                                 "port needs http://)", target, detail);
        return qerr_set(err, "%s closed the connection: %s", target, detail);
    default:
        return qerr_set(err, "request to %s failed: %s", target, detail);
    }
}

int qhttp_request(qhttp_client *c, const char *method, const char *url, const char *body, size_t body_len,
                  qhttp_result *out, qerr *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!c || !method || !url || !out)
        return qerr_set(err, "http request: missing argument");
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0 &&
        strcmp(method, "DELETE") != 0 && strcmp(method, "PATCH") != 0)
        return qerr_set(err, "http request: method %s not supported", method);
    CURL *e = c->h;
    sink s;
    qbuf_init(&s.b, c->max);
    s.max = c->max;
    s.over = false;
    c->err[0] = '\0';
    CURLcode rc = curl_easy_setopt(e, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, body ? c->headers_body : c->headers);
    if (rc == CURLE_OK && body) {
        rc = curl_easy_setopt(e, CURLOPT_POST, 1L);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    } else if (rc == CURLE_OK) {
        rc = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
                              (strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0) ? NULL : method);
    if (rc == CURLE_OK && !body && strcmp(method, "POST") == 0) {
        /* POST without a body: an empty one. */
        rc = curl_easy_setopt(e, CURLOPT_POST, 1L);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    }
    if (rc == CURLE_OK)
        rc = curl_easy_perform(e);
    /* Never keep pointers to caller memory in the handle. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
    if (rc != CURLE_OK) {
        int r = transport_error(c, rc, &s, url, err);
        qbuf_free(&s.b);
        return r;
    }
    if (!qbuf_cstr(&s.b)) {
        qbuf_free(&s.b);
        return qerr_set(err, "out of memory");
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = (char *)s.b.data;
    out->body_len = s.b.len;
    out->json = cJSON_ParseWithLength(out->body, out->body_len);
    if (cJSON_IsObject(out->json)) {
        out->results = cJSON_GetObjectItemCaseSensitive(out->json, "results");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(out->json, "status");
        if (cJSON_IsString(st))
            out->status_text = st->valuestring;
    }
    return 0;
}

int qhttp_request_json(qhttp_client *c, const char *method, const char *url, const cJSON *body,
                       qhttp_result *out, qerr *err)
{
    if (!body)
        return qhttp_request(c, method, url, NULL, 0, out, err);
    char *s = cJSON_PrintUnformatted(body);
    if (!s) {
        if (out)
            memset(out, 0, sizeof *out);
        return qerr_set(err, "out of memory");
    }
    int rc = qhttp_request(c, method, url, s, strlen(s), out, err);
    cJSON_free(s);
    return rc;
}

int qhttp_get(qhttp_client *c, const char *url, qhttp_result *out, qerr *err)
{
    return qhttp_request(c, "GET", url, NULL, 0, out, err);
}

int qhttp_delete(qhttp_client *c, const char *url, qhttp_result *out, qerr *err)
{
    return qhttp_request(c, "DELETE", url, NULL, 0, out, err);
}

int qhttp_post(qhttp_client *c, const char *url, const cJSON *body, qhttp_result *out, qerr *err)
{
    return qhttp_request_json(c, "POST", url, body, out, err);
}

int qhttp_put(qhttp_client *c, const char *url, const cJSON *body, qhttp_result *out, qerr *err)
{
    return qhttp_request_json(c, "PUT", url, body, out, err);
}
