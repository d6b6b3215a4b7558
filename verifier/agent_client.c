/* agent_client.c — one agent's HTTP client (agent_client.h). */
#include "agent_client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cjson/cJSON.h>

#include "curl_conf.h"
#include "tls_pin.h"

#define DEFAULT_VERSION "2.1"
#define URL_MAX 512

static bool use_tls(const vagent *rec)
{
    return qtls_is_cert_pem(rec->mtls_cert);
}

int vac_target_ok(const vac_opts *o, const vagent *rec, char *why, size_t cap)
{
    if (!rec->ip || !*rec->ip || rec->port <= 0 || rec->port > 65535) {
        snprintf(why, cap, "the agent has no contact address");
        return -1;
    }
    if (!use_tls(rec) && !o->allow_plain_http) {
        snprintf(why, cap, "mTLS certificate for agent is required! (it registered mtls_cert \"%.40s\"; plain HTTP "
                 "only with [verifier] allow_agent_plain_http or insecure)", rec->mtls_cert ? rec->mtls_cert : "null");
        return -1;
    }
    return 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    vac_handle *h = ud;
    size_t n = size * nmemb;
    if (h->resp.max && h->resp.len + n > h->resp.max) {
        h->too_big = true;
        return 0;
    }
    if (qbuf_append(&h->resp, ptr, n) < 0)
        return 0;
    return n;
}

/* ---- the handle pool -------------------------------------------------------------------------- */

struct vac_pool {
    vac_handle *idle;
    size_t nidle, keep;
    size_t low;                      /* fewest idle handles since the last vac_pool_shrink */
};

static unsigned long long stat_connects;

unsigned long long vac_connects(void)
{
    return __atomic_load_n(&stat_connects, __ATOMIC_RELAXED);
}

vac_pool *vac_pool_new(size_t keep)
{
    vac_pool *p = calloc(1, sizeof *p);
    if (p)
        p->keep = keep;
    return p;
}

static void handle_free(vac_handle *h)
{
    if (!h)
        return;
    if (h->easy)
        curl_easy_cleanup(h->easy);
    qbuf_free(&h->resp);
    free(h);
}

void vac_pool_free(vac_pool *p)
{
    if (!p)
        return;
    while (p->idle) {
        vac_handle *nx = p->idle->next;
        handle_free(p->idle);
        p->idle = nx;
    }
    free(p);
}

/* An idle handle (still configured as for its last request: setup decides whether to reset
 * it), or a new one. Connections and the DNS and TLS session caches stay with libcurl. */
static vac_handle *pool_get(vac_pool *p)
{
    vac_handle *h = p->idle;
    if (h) {
        p->idle = h->next;
        p->nidle--;
        if (p->nidle < p->low)
            p->low = p->nidle;
        h->next = NULL;
        return h;
    }
    p->low = 0;
    if (!(h = calloc(1, sizeof *h)))
        return NULL;
    if (!(h->easy = curl_easy_init())) {
        free(h);
        return NULL;
    }
    return h;
}

static void pool_put(vac_pool *p, vac_handle *h)
{
    qbuf_free(&h->resp);             /* answers are handed on; an idle handle holds no buffer */
    if (!h->clean)
        h->conf_for = NULL;          /* a V body, or an abandoned transfer: reset before reuse */
    h->clean = false;
    if (p->nidle >= p->keep) {
        handle_free(h);
        return;
    }
    h->next = p->idle;
    p->idle = h;
    p->nidle++;
}

void vac_pool_shrink(vac_pool *p)
{
    for (; p->low > 0 && p->idle; p->low--) {
        vac_handle *h = p->idle;
        p->idle = h->next;
        p->nidle--;
        handle_free(h);
    }
    p->low = p->nidle;
}

size_t vac_pool_idle(const vac_pool *p)
{
    return p->nidle;
}

void vac_release(vac *c, vac_pool *pool)
{
    if (c->h) {
        long n = 0;
        if (curl_easy_getinfo(c->h->easy, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK && n > 0)
            __atomic_add_fetch(&stat_connects, (unsigned long long)n, __ATOMIC_RELAXED);
        pool_put(pool, c->h);
    }
    c->h = NULL;
    c->easy = NULL;
    c->vkey = false;
}

void vac_free(vac *c, vac_pool *pool)
{
    vac_release(c, pool);
    free(c->pin);
    c->pin = NULL;
}

/* An IP literal needs no name resolution, so its DNS cache entry can live for good. */
static bool ip_literal(const char *ip)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, ip, a) == 1 || inet_pton(AF_INET6, ip, a) == 1;
}

/* A handle for this agent's request: pinned to its registered certificate when it has one. */
static int setup(vac *c, vac_pool *pool, const vac_opts *o, const vagent *rec, bool *fatal, char *why, size_t cap)
{
    if (c->h)
        return 0;
    bool tls = use_tls(rec);
    qerr err = { 0 };
    if (tls && !c->pin) {
        char pin[QTLS_PIN_MAX];
        if (qtls_pin_sha256(rec->mtls_cert, pin, sizeof pin, &err) < 0) {
            snprintf(why, cap, "the agent's registered certificate cannot be used: %.300s", err.msg);
            *fatal = true;
            return -1;
        }
        if (!(c->pin = strdup(pin))) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
    }
    vac_handle *h = pool_get(pool);
    if (!h) {
        snprintf(why, cap, "cannot create a request");
        return -1;
    }
    h->curl_err[0] = '\0';
    bool literal = ip_literal(rec->ip);
    if (h->conf_for == o && h->conf_tls == tls && h->conf_ip_literal == literal) {
        /* Configured for an agent of the same kind: only the agent's certificate and pin differ
         * (curl_easy_reset and the two dozen options of qcurl_configure were about 8 % of the
         * event thread's time per round). */
        if (tls) {
            struct curl_blob blob = { .data = (void *)rec->mtls_cert, .len = strlen(rec->mtls_cert),
                                      .flags = CURL_BLOB_COPY };
            if (QCURL_SET(h->easy, CURLOPT_CAINFO_BLOB, &blob, &err) < 0 ||
                QCURL_SET(h->easy, CURLOPT_PINNEDPUBLICKEY, c->pin, &err) < 0) {
                snprintf(why, cap, "%.400s", err.msg);
                *fatal = true;
                pool_put(pool, h);
                return -1;
            }
        }
        qbuf_init(&h->resp, (size_t)o->max_response_bytes);
        c->h = h;
        c->easy = h->easy;
        return 0;
    }
    if (h->conf_for)
        curl_easy_reset(h->easy);    /* back to libcurl's defaults before the full set-up */
    h->conf_for = NULL;
    qcurl_conf cc = {
        .connect_timeout_ms = o->request_timeout_ms < 10000 ? o->request_timeout_ms : 10000L,
        .timeout_ms = o->request_timeout_ms,
        .errbuf = h->curl_err,
        .write_fn = on_data,
        .write_data = h,
        .tcp_keepalive = true,
        .release_tls_buffers = true,
        .dns_cache_forever = literal,
    };
    if (tls) {
        cc.ca_pem = rec->mtls_cert;
        cc.pinned_pubkey = c->pin;
        cc.no_verify_host = true;
        cc.cert_file = o->tls_cert_file;
        cc.key_file = o->tls_key_file;
    }
    /* libcurl 7.88 copies every request sent over TLS through an upload buffer it allocates per
     * handle and keeps: 64 KB by default, for requests of a few hundred bytes. 16 KB is its
     * minimum. */
    if (qcurl_configure(h->easy, &cc, &err) < 0 ||
        QCURL_SET(h->easy, CURLOPT_UPLOAD_BUFFERSIZE, 16384L, &err) < 0) {
        snprintf(why, cap, "%.400s", err.msg);
        *fatal = true;            /* the same options would be rejected again */
        pool_put(pool, h);
        return -1;
    }
    h->conf_for = o;
    h->conf_tls = tls;
    h->conf_ip_literal = literal;
    qbuf_init(&h->resp, (size_t)o->max_response_bytes);
    c->h = h;
    c->easy = h->easy;
    return 0;
}

/* "http(s)://host:port/v<ver>" into out; -1 when it does not fit. */
static int base_url(const vagent *rec, char *out, size_t cap)
{
    bool v6 = strchr(rec->ip, ':') != NULL;
    const char *ver = rec->supported_version && *rec->supported_version ? rec->supported_version : DEFAULT_VERSION;
    int n = snprintf(out, cap, "%s://%s%s%s:%ld/v%s", use_tls(rec) ? "https" : "http", v6 ? "[" : "", rec->ip,
                     v6 ? "]" : "", rec->port, ver);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static void arm(vac *c, bool vkey)
{
    qbuf_reset(&c->h->resp);
    c->h->too_big = false;
    c->h->clean = false;
    c->h->curl_err[0] = '\0';
    c->vkey = vkey;
}

int vac_quote(vac *c, vac_pool *pool, const vac_opts *o, const vagent *rec, void *priv, const char *nonce,
              uint32_t mask, bool partial0, uint64_t entry, bool *fatal, char *why, size_t cap)
{
    *fatal = false;
    if (setup(c, pool, o, rec, fatal, why, cap) < 0)
        return -1;
    char base[URL_MAX], url[URL_MAX];
    int n = base_url(rec, base, sizeof base) < 0 ? -1
            : snprintf(url, sizeof url, "%s/quotes/integrity?nonce=%s&mask=0x%x&partial=%d&ima_ml_entry=%" PRIu64,
                       base, nonce, mask, partial0 ? 0 : 1, entry);
    if (n < 0 || (size_t)n >= sizeof url) {
        snprintf(why, cap, "the agent's address is too long");
        *fatal = true;
        return -1;
    }
    qerr err = { 0 };
    if (QCURL_SET(c->easy, CURLOPT_HTTPGET, 1L, &err) < 0 ||          /* back from a vkey POST */
        QCURL_SET(c->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL, &err) < 0 ||
        QCURL_SET(c->easy, CURLOPT_URL, url, &err) < 0 || QCURL_SET(c->easy, CURLOPT_PRIVATE, priv, &err) < 0) {
        snprintf(why, cap, "%.400s", err.msg);
        return -1;
    }
    arm(c, false);
    return 0;
}

int vac_vkey(vac *c, vac_pool *pool, const vac_opts *o, const vagent *rec, void *priv, const char *body, bool *fatal,
             char *why, size_t cap)
{
    *fatal = false;
    if (setup(c, pool, o, rec, fatal, why, cap) < 0)
        return -1;
    char base[URL_MAX], url[URL_MAX];
    int n = base_url(rec, base, sizeof base) < 0 ? -1 : snprintf(url, sizeof url, "%s/keys/vkey", base);
    if (n < 0 || (size_t)n >= sizeof url) {
        snprintf(why, cap, "the agent's address is too long");
        *fatal = true;
        return -1;
    }
    qerr err = { 0 };
    if (QCURL_SET(c->easy, CURLOPT_URL, url, &err) < 0 ||
        QCURL_SET(c->easy, CURLOPT_HTTPHEADER, o->json_hdr, &err) < 0 ||
        QCURL_SET(c->easy, CURLOPT_POSTFIELDSIZE, -1L, &err) < 0 ||
        QCURL_SET(c->easy, CURLOPT_COPYPOSTFIELDS, body, &err) < 0 ||      /* copied: POST from here on */
        QCURL_SET(c->easy, CURLOPT_PRIVATE, priv, &err) < 0) {
        snprintf(why, cap, "%.400s", err.msg);
        return -1;
    }
    arm(c, true);
    return 0;
}

void vac_finish(vac *c, CURLcode rc, long status, long max_bytes, vac_result *out)
{
    memset(out, 0, sizeof *out);
    if (!c->h) {
        out->kind = VAC_RETRY;
        snprintf(out->why, sizeof out->why, "no request in flight");
        return;
    }
    const char *fatal_id = c->vkey ? "internal.verifier.no_v" : "internal.verifier.no_quote";
    if (c->h->too_big) {
        out->kind = VAC_FATAL;
        out->event_id = c->vkey ? fatal_id : "qoute_validation.invalid_data";
        snprintf(out->why, sizeof out->why, "answer over %ld bytes", max_bytes);
        return;
    }
    if (rc != CURLE_OK) {
        const char *detail = c->h->curl_err[0] ? c->h->curl_err : curl_easy_strerror(rc);
        out->kind = VAC_RETRY;
        if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
            snprintf(out->why, sizeof out->why, "the agent's TLS certificate did not match the certificate it "
                     "registered (another machine may hold its address): %s", detail);
        else if (rc == CURLE_SSL_CONNECT_ERROR)
            snprintf(out->why, sizeof out->why, "TLS handshake with the agent failed: %s", detail);
        else
            snprintf(out->why, sizeof out->why, "%s", detail);
        return;
    }
    if (status == 408 || status == 500 || status == 599) {
        out->kind = VAC_RETRY;
        snprintf(out->why, sizeof out->why, "HTTP %ld", status);
        return;
    }
    if (status == 200) {
        out->kind = VAC_ANSWER;
        c->h->clean = !c->vkey;        /* its options can serve the next agent's quote as they are */
        return;
    }
    out->kind = VAC_FATAL;
    out->event_id = fatal_id;
    if (c->vkey) {
        cJSON *j = cJSON_ParseWithLength((const char *)c->h->resp.data, c->h->resp.len);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
        snprintf(out->why, sizeof out->why, "the agent refused V: HTTP %ld%s%.200s", status,
                 cJSON_IsString(st) ? ": " : "", cJSON_IsString(st) ? st->valuestring : "");
        cJSON_Delete(j);
    } else {
        snprintf(out->why, sizeof out->why, "the agent answered HTTP %ld to the quote request", status);
    }
}

char *vac_take_body(vac *c, size_t *len)
{
    *len = 0;
    if (!c->h)
        return strdup("");
    char *body = (char *)c->h->resp.data;
    *len = c->h->resp.len;
    c->h->resp.data = NULL;
    c->h->resp.len = c->h->resp.cap = 0;
    if (!body) {
        body = strdup("");
        *len = 0;
    }
    return body;
}
