/* test_http.c — http_server and http_client against each other on loopback (ephemeral ports):
 * routes, envelope, 404/405/413/414, query args, JSON bodies, limits, timeouts, refused
 * connections, mutual TLS with certificates made in the test, and streamed replies (JSON escaping
 * as cJSON does it, bodies streamed through the server and parsed by the client, cut streams). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "http_client.h"
#include "http_server.h"
#include "http_fixture.h"

/* ---- handlers ----------------------------------------------------------------------------- */

static void h_version(qhttp_req *r, void *ctx)
{
    (void)ctx;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "supported_version", "2.6");
    qhttp_reply(r, 200, o);
}

static void h_quote(qhttp_req *r, void *ctx)
{
    (void)ctx;
    cJSON *o = cJSON_CreateObject();
    const char *n = qhttp_req_query(r, "nonce"), *m = qhttp_req_query(r, "mask");
    const char *flag = qhttp_req_query(r, "flag");
    cJSON_AddStringToObject(o, "ver", qhttp_req_param(r, "ver"));
    cJSON_AddStringToObject(o, "nonce", n ? n : "(absent)");
    cJSON_AddStringToObject(o, "mask", m ? m : "(absent)");
    cJSON_AddStringToObject(o, "flag", flag ? (flag[0] ? flag : "(empty)") : "(absent)");
    cJSON_AddStringToObject(o, "peer", qhttp_req_peer(r));
    cJSON_AddStringToObject(o, "path", qhttp_req_path(r));
    qhttp_reply(r, 200, o);
}

static void h_agent_post(qhttp_req *r, void *ctx)
{
    (void)ctx;
    qerr e = {0};
    const cJSON *j = qhttp_req_json(r, &e);
    if (!j) {
        qhttp_reply_error(r, 400, "Bad Request: %s", e.msg);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", qhttp_req_param(r, "id"));
    cJSON_AddStringToObject(o, "method", qhttp_req_method(r));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "a");
    cJSON_AddNumberToObject(o, "a", cJSON_IsNumber(a) ? a->valuedouble : -1);
    size_t len;
    qhttp_req_body(r, &len);
    cJSON_AddNumberToObject(o, "len", (double)len);
    qhttp_reply_status(r, 201, NULL, o);
}

static void h_agent_delete(qhttp_req *r, void *ctx)
{
    (void)ctx;
    qhttp_reply(r, 200, NULL);
}

static void h_sleep(qhttp_req *r, void *ctx)
{
    (void)ctx;
    usleep(200 * 1000);
    qhttp_reply(r, 200, NULL);
}

static void h_big(qhttp_req *r, void *ctx)
{
    (void)ctx;
    char buf[1000];
    memset(buf, 'x', sizeof buf);
    qhttp_reply_raw(r, 200, "text/plain", buf, sizeof buf);
}

static void h_html(qhttp_req *r, void *ctx)
{
    (void)ctx;
    static const char page[] = "<html>hi</html>";
    qhttp_reply_raw(r, 200, "text/html; charset=utf-8", page, sizeof page - 1);
    qhttp_reply_header(r, "X-Quince", "yes");
}

static void h_noreply(qhttp_req *r, void *ctx)
{
    (void)r;
    (void)ctx;
}

static void h_whoami(qhttp_req *r, void *ctx)
{
    (void)ctx;
    cJSON *o = cJSON_CreateObject();
    const char *dn = qhttp_req_client_dn(r);
    cJSON_AddStringToObject(o, "dn", dn ? dn : "(none)");
    qhttp_reply(r, 200, o);
}

/* Echoes the request's Content-Type (or "(none)") and its body length. */
static void h_ctype(qhttp_req *r, void *ctx)
{
    (void)ctx;
    const char *ct = qhttp_req_header(r, "Content-Type");
    size_t len = 0;
    qhttp_req_body(r, &len);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ctype", ct ? ct : "(none)");
    cJSON_AddNumberToObject(o, "len", (double)len);
    qhttp_reply(r, 200, o);
}

/* Streamed replies: a source in memory handed out in small pieces; ?mode= makes it end early
 * ("short") or fail ("error") half-way. Every context is counted when freed. */
static char *g_src;
static size_t g_src_len;
static volatile int g_freed;

typedef struct src_ctx { size_t len; int mode; } src_ctx;   /* mode 0 ok, 1 short, 2 error */

static long src_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
    src_ctx *c = ctx;
    if (c->mode && pos >= c->len / 2)
        return c->mode == 1 ? QHTTP_STREAM_END : QHTTP_STREAM_ERROR;
    size_t n = c->len - (size_t)pos;
    if (n > max)
        n = max;
    if (n > 999)
        n = 999;     /* odd sizes: escapes straddle the caller's buffer */
    memcpy(buf, g_src + pos, n);
    return n ? (long)n : QHTTP_STREAM_END;
}

static void src_free(void *ctx)
{
    free(ctx);
    __atomic_add_fetch(&g_freed, 1, __ATOMIC_SEQ_CST);
}

static src_ctx *src_new(qhttp_req *r, size_t len)
{
    src_ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    const char *m = qhttp_req_query(r, "mode");
    c->len = len;
    c->mode = !m ? 0 : strcmp(m, "short") == 0 ? 1 : strcmp(m, "error") == 0 ? 2 : 0;
    return c;
}

static void h_stream_json(qhttp_req *r, void *ctx)
{
    (void)ctx;
    const char *n = qhttp_req_query(r, "len");
    size_t len = n ? strtoul(n, NULL, 10) : g_src_len;
    cJSON *o = NULL;
    if (!qhttp_req_query(r, "bare")) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "quote", "r\"AAA:BBB");
        cJSON_AddNumberToObject(o, "ima_measurement_list_entry", 12345);
    }
    qhttp_reply_json_stream(r, 200, o, "ima_measurement_list", len, src_read, src_new(r, len), src_free);
    qhttp_reply_header(r, "X-Streamed", "1");
}

static void h_stream_raw(qhttp_req *r, void *ctx)
{
    (void)ctx;
    bool known = qhttp_req_query(r, "known") != NULL;
    qhttp_reply_stream(r, 200, "text/plain", known ? g_src_len : QHTTP_SIZE_UNKNOWN, src_read,
                       src_new(r, g_src_len), src_free);
}

static void h_stream_replaced(qhttp_req *r, void *ctx)
{
    (void)ctx;
    qhttp_reply_stream(r, 200, "text/plain", QHTTP_SIZE_UNKNOWN, src_read, src_new(r, g_src_len), src_free);
    qhttp_reply_error(r, 503, "changed my mind");
}

static const qhttp_route g_routes[] = {
    { "GET", "/version", h_version, NULL },
    { "GET", "/v{ver}/quotes/integrity", h_quote, NULL },
    { "POST", "/v{ver}/agents/{id}", h_agent_post, NULL },
    { "PUT", "/v{ver}/agents/{id}", h_agent_post, NULL },
    { "DELETE", "/v{ver}/agents/{id}", h_agent_delete, NULL },
    { "GET", "/sleep", h_sleep, NULL },
    { "GET", "/big", h_big, NULL },
    { "GET", "/", h_html, NULL },
    { "GET", "/noreply", h_noreply, NULL },
    { "GET", "/whoami", h_whoami, NULL },
    { "GET", "/stream/json", h_stream_json, NULL },
    { "GET", "/stream/raw", h_stream_raw, NULL },
    { "GET", "/stream/replaced", h_stream_replaced, NULL },
    { "GET", "/ctype", h_ctype, NULL },
    { "POST", "/ctype", h_ctype, NULL },
    { "PUT", "/ctype", h_ctype, NULL },
    { "DELETE", "/ctype", h_ctype, NULL },
};
#define NROUTES (sizeof g_routes / sizeof g_routes[0])

typedef struct fx {
    qhttp_server *srv;
    qhttp_client *cli;
    char base[64];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    qhttp_server_opts o = { .ip = "127.0.0.1", .port = 0, .max_body = 1024, .threads = 2 };
    if (hfx_start(&o, g_routes, NROUTES, &f->srv, &f->cli, f->base, sizeof f->base) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    qhttp_client_free(f->cli);
    qhttp_server_stop(f->srv);
    free(f);
    return 0;
}

static char *url(const fx *f, const char *path)
{
    static __thread char buf[512];
    snprintf(buf, sizeof buf, "%s%s", f->base, path);
    return buf;
}

static const char *res_str(const qhttp_result *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->results, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_envelope_and_routes(void **state)
{
    fx *f = *state;
    qhttp_result r;
    qerr e = {0};
    assert_int_equal(qhttp_get(f->cli, url(f, "/version"), &r, &e), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"code\":200,\"status\":\"Success\",\"results\":{\"supported_version\":\"2.6\"}}");
    assert_string_equal(r.status_text, "Success");
    assert_string_equal(res_str(&r, "supported_version"), "2.6");
    qhttp_result_free(&r);

    assert_int_equal(qhttp_get(f->cli, url(f, "/version/"), &r, &e), 0); /* trailing '/' */
    assert_int_equal(r.status, 200);
    qhttp_result_free(&r);

    assert_int_equal(qhttp_get(f->cli, url(f, "/v2.1/quotes/integrity?nonce=abc123&mask=0x400"), &r, &e), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(res_str(&r, "ver"), "2.1");
    assert_string_equal(res_str(&r, "nonce"), "abc123");
    assert_string_equal(res_str(&r, "mask"), "0x400");
    assert_string_equal(res_str(&r, "flag"), "(absent)");
    assert_string_equal(res_str(&r, "peer"), "127.0.0.1");
    assert_string_equal(res_str(&r, "path"), "/v2.1/quotes/integrity");
    qhttp_result_free(&r);

    /* query: empty values, percent-decoding */
    assert_int_equal(qhttp_get(f->cli, url(f, "/v2.6/quotes/integrity?flag&nonce=a%20b&mask="), &r, &e), 0);
    assert_string_equal(res_str(&r, "flag"), "(empty)");
    assert_string_equal(res_str(&r, "nonce"), "a b");
    assert_string_equal(res_str(&r, "mask"), "");
    qhttp_result_free(&r);

    /* raw reply with an extra header */
    assert_int_equal(qhttp_get(f->cli, url(f, "/"), &r, &e), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "<html>hi</html>");
    assert_null(r.json);
    assert_null(r.results);
    qhttp_result_free(&r);
}

static void test_not_found(void **state)
{
    fx *f = *state;
    qhttp_result r;
    qerr e = {0};
    static const char *paths[] = { "/nope", "/v/quotes/integrity", "/x2.1/quotes/integrity",
                                   "/v2.1/quotes/integrity/more", "/v2.1//quotes", "//version" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        assert_int_equal(qhttp_get(f->cli, url(f, paths[i]), &r, &e), 0);
        if (r.status != 404)
            fail_msg("%s: status %ld", paths[i], r.status);
        assert_string_equal(r.body, "{\"code\":404,\"status\":\"Not Found\",\"results\":{}}");
        qhttp_result_free(&r);
    }
}

/* Raw curl call capturing headers, to look at Allow and Content-Type. */
typedef struct raw { char hdrs[2048]; size_t hl; char body[4096]; size_t bl; } raw;

static size_t raw_hdr(char *p, size_t s, size_t n, void *ud)
{
    raw *r = ud;
    size_t len = s * n;
    if (r->hl + len < sizeof r->hdrs) {
        memcpy(r->hdrs + r->hl, p, len);
        r->hl += len;
        r->hdrs[r->hl] = 0;
    }
    return len;
}

static size_t raw_body(char *p, size_t s, size_t n, void *ud)
{
    raw *r = ud;
    size_t len = s * n;
    if (r->bl + len < sizeof r->body) {
        memcpy(r->body + r->bl, p, len);
        r->bl += len;
        r->body[r->bl] = 0;
    }
    return len;
}

typedef struct chunker { size_t left; } chunker;

static size_t chunk_read(char *buf, size_t s, size_t n, void *ud)
{
    chunker *c = ud;
    size_t len = s * n < c->left ? s * n : c->left;
    if (len > 300)
        len = 300;
    memset(buf, 'a', len);
    c->left -= len;
    return len;
}

static long raw_call(const char *u, const char *method, size_t chunked_len, raw *out)
{
    memset(out, 0, sizeof *out);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    struct curl_slist *hl = NULL;
    chunker ck = { chunked_len };
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, raw_hdr);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, raw_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (chunked_len) {
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
        hl = curl_slist_append(hl, "Expect:");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, chunk_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &ck);
    }
    if (method)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(h);
    long status = -1;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "raw curl: %s\n", curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return status;
}

static void test_method_not_allowed(void **state)
{
    fx *f = *state;
    qhttp_result r;
    qerr e = {0};
    cJSON *b = cJSON_Parse("{\"a\":1}");
    assert_int_equal(qhttp_post(f->cli, url(f, "/version"), b, &r, &e), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.status_text, "Method Not Allowed");
    assert_true(cJSON_IsObject(r.results));
    assert_null(r.results->child);
    qhttp_result_free(&r);
    cJSON_Delete(b);

    raw rw;
    assert_int_equal(raw_call(url(f, "/v2.1/agents/abc"), "GET", 0, &rw), 405);
    assert_non_null(strstr(rw.hdrs, "Allow: POST, PUT, DELETE"));
    assert_non_null(strcasestr(rw.hdrs, "Content-Type: application/json"));
    assert_int_equal(raw_call(url(f, "/"), NULL, 0, &rw), 200);
    assert_non_null(strstr(rw.hdrs, "text/html; charset=utf-8"));
    assert_non_null(strstr(rw.hdrs, "X-Quince: yes"));
}

static void test_json_body(void **state)
{
    fx *f = *state;
    qhttp_result r;
    qerr e = {0};
    cJSON *b = cJSON_Parse("{\"a\":42,\"b\":\"x\"}");
    assert_int_equal(qhttp_post(f->cli, url(f, "/v2.2/agents/d432fbb3-d2f1"), b, &r, &e), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.status_text, "Created");
    assert_string_equal(res_str(&r, "id"), "d432fbb3-d2f1");
    assert_string_equal(res_str(&r, "method"), "POST");
    assert_int_equal(cJSON_GetObjectItem(r.results, "a")->valueint, 42);
    assert_int_equal(cJSON_GetObjectItem(r.results, "len")->valueint, 16);
    qhttp_result_free(&r);

    assert_int_equal(qhttp_put(f->cli, url(f, "/v2.2/agents/x"), b, &r, &e), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(res_str(&r, "method"), "PUT");
    qhttp_result_free(&r);
    cJSON_Delete(b);

    assert_int_equal(qhttp_request(f->cli, "POST", url(f, "/v2.2/agents/x"), "{bad", 4, &r, &e), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.status_text, "Bad Request: request body is not valid JSON");
    qhttp_result_free(&r);
    assert_int_equal(qhttp_request(f->cli, "POST", url(f, "/v2.2/agents/x"), "{} x", 4, &r, &e), 0);
    assert_int_equal(r.status, 400);
    qhttp_result_free(&r);
    assert_int_equal(qhttp_request(f->cli, "POST", url(f, "/v2.2/agents/x"), NULL, 0, &r, &e), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.status_text, "Bad Request: request body is empty");
    qhttp_result_free(&r);

    assert_int_equal(qhttp_delete(f->cli, url(f, "/v2.2/agents/x"), &r, &e), 0);
    assert_int_equal(r.status, 200);
    qhttp_result_free(&r);
}

/* Content-Type only with a body: Keylime's servers answer a bodiless request that declares JSON
 * with 400. */
static void test_content_type_only_with_body(void **state)
{
    fx *f = *state;
    qhttp_result r;
    qerr e = {0};
    static const char *bodiless[] = { "GET", "DELETE", "PUT", "POST" };
    for (size_t i = 0; i < sizeof bodiless / sizeof bodiless[0]; i++) {
        assert_int_equal(qhttp_request(f->cli, bodiless[i], url(f, "/ctype"), NULL, 0, &r, &e), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(res_str(&r, "ctype"), "(none)");
        qhttp_result_free(&r);
    }
    cJSON *b = cJSON_Parse("{\"a\":1}");
    assert_int_equal(qhttp_put(f->cli, url(f, "/ctype"), b, &r, &e), 0);
    assert_string_equal(res_str(&r, "ctype"), "application/json");
    qhttp_result_free(&r);
    /* The same handle, bodiless again: the header does not stick. */
    assert_int_equal(qhttp_get(f->cli, url(f, "/ctype"), &r, &e), 0);
    assert_string_equal(res_str(&r, "ctype"), "(none)");
    qhttp_result_free(&r);
    assert_int_equal(qhttp_post(f->cli, url(f, "/ctype"), b, &r, &e), 0);
    assert_string_equal(res_str(&r, "ctype"), "application/json");
    assert_int_equal(cJSON_GetObjectItem(r.results, "len")->valueint, 7);
    qhttp_result_free(&r);
    cJSON_Delete(b);
}

static void test_body_too_large(void **state)
{
    fx *f = *state;
    qhttp_result r;
    qerr e = {0};
    char *big = malloc(4000);
    assert_non_null(big);
    memset(big, ' ', 4000);
    big[0] = '{';
    big[3999] = '}';
    assert_int_equal(qhttp_request(f->cli, "POST", url(f, "/v2.2/agents/x"), big, 4000, &r, &e), 0);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.status_text, "Request body too large");
    qhttp_result_free(&r);
    /* exactly at the limit is fine */
    big[2976] = '{';
    assert_int_equal(qhttp_request(f->cli, "POST", url(f, "/v2.2/agents/x"), big + 2976, 1024, &r, &e), 0);
    assert_int_equal(r.status, 201);
    assert_int_equal(cJSON_GetObjectItem(r.results, "len")->valueint, 1024);
    qhttp_result_free(&r);
    free(big);
    /* chunked upload without Content-Length */
    raw rw;
    assert_int_equal(raw_call(url(f, "/v2.2/agents/x"), NULL, 3000, &rw), 413);
    assert_non_null(strstr(rw.body, "Request body too large"));
    /* the client still works afterwards */
    assert_int_equal(qhttp_get(f->cli, url(f, "/version"), &r, &e), 0);
    assert_int_equal(r.status, 200);
    qhttp_result_free(&r);
}

static void test_no_reply_is_500(void **state)
{
    fx *f = *state;
    qhttp_result r;
    qerr e = {0};
    assert_int_equal(qhttp_get(f->cli, url(f, "/noreply"), &r, &e), 0);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.status_text, "Internal Server Error");
    qhttp_result_free(&r);
}

static void test_long_uri(void **state)
{
    fx *f = *state;
    qhttp_result r;
    qerr e = {0};
    char path[1400];
    path[0] = '/';
    memset(path + 1, 'a', sizeof path - 2);
    path[sizeof path - 1] = 0;
    char u[1500];
    snprintf(u, sizeof u, "%s%s", f->base, path);
    assert_int_equal(qhttp_get(f->cli, u, &r, &e), 0);
    assert_int_equal(r.status, 414);
    qhttp_result_free(&r);
}

static void test_client_timeout(void **state)
{
    fx *f = *state;
    qhttp_client_opts co = { .timeout_ms = 50 };
    qerr e = {0};
    qhttp_client *c = qhttp_client_new(&co, &e);
    assert_non_null(c);
    qhttp_result r;
    assert_int_equal(qhttp_get(c, url(f, "/sleep"), &r, &e), -1);
    assert_string_equal(e.msg, "timed out after 50 ms");
    qhttp_result_free(&r);
    qhttp_client_free(c);
}

static void test_response_limit(void **state)
{
    fx *f = *state;
    qhttp_client_opts co = { .max_response = 100 };
    qerr e = {0};
    qhttp_client *c = qhttp_client_new(&co, &e);
    assert_non_null(c);
    qhttp_result r;
    assert_int_equal(qhttp_get(c, url(f, "/big"), &r, &e), -1);
    assert_string_equal(e.msg, "response over 100 bytes");
    qhttp_result_free(&r);
    assert_int_equal(qhttp_get(c, url(f, "/version"), &r, &e), 0);
    assert_int_equal(r.status, 200);
    qhttp_result_free(&r);
    qhttp_client_free(c);
}

static void test_connection_refused(void **state)
{
    (void)state;
    qhttp_server_opts o = { .ip = "127.0.0.1" };
    qerr e = {0};
    qhttp_server *s = qhttp_server_start(&o, g_routes, NROUTES, &e);
    assert_non_null(s);
    unsigned port = qhttp_server_port(s);
    assert_true(port > 0);
    qhttp_server_stop(s);
    qhttp_client *c = qhttp_client_new(NULL, &e);
    assert_non_null(c);
    char u[128], want[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%u/version", port);
    snprintf(want, sizeof want, "connection refused to 127.0.0.1:%u", port);
    qhttp_result r;
    assert_int_equal(qhttp_get(c, u, &r, &e), -1);
    assert_string_equal(e.msg, want);
    qhttp_result_free(&r);
    assert_int_equal(qhttp_get(c, "ftp://127.0.0.1/x", &r, &e), -1);
    assert_non_null(strstr(e.msg, "bad URL"));
    assert_int_equal(qhttp_request(c, "HEAD", u, NULL, 0, &r, &e), -1);
    assert_string_equal(e.msg, "http request: method HEAD not supported");
    qhttp_client_free(c);
}

static void test_bad_routes_and_addresses(void **state)
{
    (void)state;
    qerr e = {0};
    qhttp_server_opts o = { .ip = "127.0.0.1" };
    static const char *bad[] = { "nope", "/a//b", "/a/{x", "/a/{}", "/a/{x}y", "/a/", "/a}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qhttp_route rt = { "GET", bad[i], h_version, NULL };
        assert_null(qhttp_server_start(&o, &rt, 1, &e));
        if (!strstr(e.msg, "route"))
            fail_msg("%s: %s", bad[i], e.msg);
    }
    qhttp_server_opts bad_ip = { .ip = "300.1.2.3" };
    assert_null(qhttp_server_start(&bad_ip, g_routes, NROUTES, &e));
    assert_non_null(strstr(e.msg, "listen address"));
    qhttp_server_opts tls_half = { .ip = "127.0.0.1", .tls_cert_pem = "x" };
    assert_null(qhttp_server_start(&tls_half, g_routes, NROUTES, &e));
    assert_non_null(strstr(e.msg, "both a certificate and a key"));
}

static void test_ipv6(void **state)
{
    (void)state;
    qhttp_server_opts o = { .ip = "::1" };
    qerr e = {0};
    qhttp_server *s = qhttp_server_start(&o, g_routes, NROUTES, &e);
    if (!s) {
        skip(); /* no IPv6 loopback in this environment */
        return;
    }
    qhttp_client *c = qhttp_client_new(NULL, &e);
    assert_non_null(c);
    char u[128];
    snprintf(u, sizeof u, "http://[::1]:%u/v2.1/quotes/integrity?nonce=x", qhttp_server_port(s));
    qhttp_result r;
    assert_int_equal(qhttp_get(c, u, &r, &e), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(res_str(&r, "peer"), "::1");
    qhttp_result_free(&r);
    qhttp_client_free(c);
    qhttp_server_stop(s);
}

/* ---- TLS ----------------------------------------------------------------------------------- */

typedef struct pki {
    char dir[64];
    char ca[128], srv_cert[128], srv_key[128], cli_cert[128], cli_key[128], rogue_cert[128], rogue_key[128];
    char *ca_pem, *srv_cert_pem, *srv_key_pem;
} pki;

static EVP_PKEY *new_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static void add_ext(X509 *crt, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, crt, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ex);
    X509_add_ext(crt, ex, -1);
    X509_EXTENSION_free(ex);
}

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca, long serial,
                       const char *eku)
{
    X509 *c = X509_new();
    assert_non_null(c);
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 3600L * 24);
    X509_set_pubkey(c, key);
    X509_NAME *n = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Quince test", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n);
    X509 *iss = issuer ? issuer : c;
    if (ca) {
        add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c, iss, NID_basic_constraints, "CA:FALSE");
        add_ext(c, iss, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
        add_ext(c, iss, NID_ext_key_usage, eku);
    }
    assert_true(X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return c;
}

static char *write_pem(const char *path, X509 *crt, EVP_PKEY *key)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    if (crt)
        PEM_write_X509(fp, crt);
    else
        PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    BIO *b = BIO_new(BIO_s_mem());
    if (crt)
        PEM_write_bio_X509(b, crt);
    else
        PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static void make_pki(pki *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/quince-test-http.XXXXXX");
    assert_non_null(mkdtemp(p->dir));
#define P(field, name) snprintf(p->field, sizeof p->field, "%s/%s", p->dir, name)
    P(ca, "ca.pem"); P(srv_cert, "srv.pem"); P(srv_key, "srv.key"); P(cli_cert, "cli.pem");
    P(cli_key, "cli.key"); P(rogue_cert, "rogue.pem"); P(rogue_key, "rogue.key");
#undef P
    EVP_PKEY *cak = new_key(), *sk = new_key(), *ck = new_key(), *rk = new_key();
    assert_non_null(cak);
    X509 *ca = make_cert("Quince test CA", cak, NULL, NULL, true, 1, NULL);
    X509 *sc = make_cert("server", sk, ca, cak, false, 2, "serverAuth");
    X509 *cc = make_cert("client", ck, ca, cak, false, 3, "clientAuth");
    X509 *rc = make_cert("rogue", rk, NULL, NULL, false, 4, "serverAuth,clientAuth");
    p->ca_pem = write_pem(p->ca, ca, NULL);
    p->srv_cert_pem = write_pem(p->srv_cert, sc, NULL);
    p->srv_key_pem = write_pem(p->srv_key, NULL, sk);
    free(write_pem(p->cli_cert, cc, NULL));
    free(write_pem(p->cli_key, NULL, ck));
    free(write_pem(p->rogue_cert, rc, NULL));
    free(write_pem(p->rogue_key, NULL, rk));
    X509_free(ca);
    X509_free(sc);
    X509_free(cc);
    X509_free(rc);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
    EVP_PKEY_free(rk);
}

static void free_pki(pki *p)
{
    const char *files[] = { p->ca, p->srv_cert, p->srv_key, p->cli_cert, p->cli_key, p->rogue_cert, p->rogue_key };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    rmdir(p->dir);
    free(p->ca_pem);
    free(p->srv_cert_pem);
    free(p->srv_key_pem);
}

static void test_mtls(void **state)
{
    (void)state;
    pki p;
    make_pki(&p);
    qerr e = {0};
    /* PEM in memory for the cert, files for key and CA */
    qhttp_server_opts o = { .ip = "127.0.0.1", .tls_cert_pem = p.srv_cert_pem, .tls_key_file = p.srv_key,
                            .tls_ca_file = p.ca, .require_client_cert = true };
    qhttp_server *s = qhttp_server_start(&o, g_routes, NROUTES, &e);
    if (!s)
        fail_msg("TLS server: %s", e.msg);
    assert_true(qhttp_server_tls(s));
    char u[128];
    snprintf(u, sizeof u, "https://127.0.0.1:%u/whoami", qhttp_server_port(s));
    qhttp_result r;

    /* good client */
    qhttp_client_opts co = { .ca_file = p.ca, .cert_file = p.cli_cert, .key_file = p.cli_key };
    qhttp_client *c = qhttp_client_new(&co, &e);
    assert_non_null(c);
    if (qhttp_get(c, u, &r, &e) != 0)
        fail_msg("mTLS request: %s", e.msg);
    assert_int_equal(r.status, 200);
    assert_string_equal(res_str(&r, "dn"), "CN=client,O=Quince test");
    qhttp_result_free(&r);
    qhttp_client_free(c);

    /* no client certificate → 403 (Keylime's code) */
    qhttp_client_opts nocert = { .ca_file = p.ca };
    c = qhttp_client_new(&nocert, &e);
    assert_int_equal(qhttp_get(c, u, &r, &e), 0);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.status_text, "no client certificate"));
    qhttp_result_free(&r);
    qhttp_client_free(c);

    /* self-signed rogue client certificate → refused (403 or a TLS alert) */
    qhttp_client_opts rogue = { .ca_file = p.ca, .cert_file = p.rogue_cert, .key_file = p.rogue_key };
    c = qhttp_client_new(&rogue, &e);
    int rc = qhttp_get(c, u, &r, &e);
    if (rc == 0) {
        assert_int_equal(r.status, 403);
        assert_non_null(strstr(r.status_text, "client certificate rejected"));
    }
    qhttp_result_free(&r);
    qhttp_client_free(c);

    /* the server's own certificate (extended key usage serverAuth only) as a client
     * certificate → refused (403): it is not meant for clients */
    qhttp_client_opts srvcert = { .ca_file = p.ca, .cert_file = p.srv_cert, .key_file = p.srv_key };
    c = qhttp_client_new(&srvcert, &e);
    assert_int_equal(qhttp_get(c, u, &r, &e), 0);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.status_text, "client certificate rejected"));
    qhttp_result_free(&r);
    qhttp_client_free(c);

    /* a kept-alive connection reuses its verified certificate: many requests, each 200 with the DN */
    c = qhttp_client_new(&co, &e);
    assert_non_null(c);
    for (int i = 0; i < 20; i++) {
        if (qhttp_get(c, u, &r, &e) != 0)
            fail_msg("mTLS request %d: %s", i, e.msg);
        assert_int_equal(r.status, 200);
        assert_string_equal(res_str(&r, "dn"), "CN=client,O=Quince test");
        qhttp_result_free(&r);
    }
    qhttp_client_free(c);

    /* client that does not trust the server's CA */
    qhttp_client_opts untrusting = { .ca_file = p.rogue_cert, .cert_file = p.cli_cert, .key_file = p.cli_key };
    c = qhttp_client_new(&untrusting, &e);
    assert_int_equal(qhttp_get(c, u, &r, &e), -1);
    assert_non_null(strstr(e.msg, "TLS error with 127.0.0.1:"));
    qhttp_result_free(&r);
    qhttp_client_free(c);

    /* pinned key mismatch */
    qhttp_client_opts pinned = { .ca_file = p.ca, .cert_file = p.cli_cert, .key_file = p.cli_key,
                                 .pinned_pubkey = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" };
    c = qhttp_client_new(&pinned, &e);
    assert_int_equal(qhttp_get(c, u, &r, &e), -1);
    assert_non_null(strstr(e.msg, "TLS error"));
    qhttp_result_free(&r);
    qhttp_client_free(c);

    /* plain http to a TLS port fails cleanly */
    c = qhttp_client_new(NULL, &e);
    snprintf(u, sizeof u, "http://127.0.0.1:%u/whoami", qhttp_server_port(s));
    qhttp_get(c, u, &r, &e);
    qhttp_result_free(&r);
    qhttp_client_free(c);

    qhttp_server_stop(s);

    /* a server whose certificate is for clients only (clientAuth) → the client refuses it */
    qhttp_server_opts o2 = { .ip = "127.0.0.1", .tls_cert_file = p.cli_cert, .tls_key_file = p.cli_key,
                             .tls_ca_file = p.ca, .require_client_cert = true };
    s = qhttp_server_start(&o2, g_routes, NROUTES, &e);
    if (!s)
        fail_msg("TLS server with a client certificate: %s", e.msg);
    snprintf(u, sizeof u, "https://127.0.0.1:%u/whoami", qhttp_server_port(s));
    qhttp_client_opts nohost = { .ca_file = p.ca, .cert_file = p.cli_cert, .key_file = p.cli_key,
                                 .no_verify_host = true };
    c = qhttp_client_new(&nohost, &e);
    assert_int_equal(qhttp_get(c, u, &r, &e), -1);
    assert_non_null(strstr(e.msg, "TLS error"));
    qhttp_result_free(&r);
    qhttp_client_free(c);
    qhttp_server_stop(s);
    free_pki(&p);
}

/* Process CPU time (all threads: the server runs in this process) in microseconds. */
static long long cpu_us(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static long long wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* A client that starts a TLS handshake and stalls (one record header, then nothing) must not
 * make the server spin: the server waits for it without using CPU until the connection timeout
 * closes it. With libmicrohttpd's epoll mode a worker spun on epoll_wait + recv → EAGAIN for the
 * whole time, burning a core; this waits for the server to close the socket (an event) and
 * compares the process's CPU time with the time waited. */
static void test_tls_stalled_handshake(void **state)
{
    (void)state;
    pki p;
    make_pki(&p);
    qerr e = {0};
    qhttp_server_opts o = { .ip = "127.0.0.1", .tls_cert_file = p.srv_cert, .tls_key_file = p.srv_key,
                            .tls_ca_file = p.ca, .require_client_cert = true, .conn_timeout_s = 2 };
    qhttp_server *s = qhttp_server_start(&o, g_routes, NROUTES, &e);
    if (!s)
        fail_msg("TLS server: %s", e.msg);
    int fd = raw_connect(qhttp_server_port(s));
    static const unsigned char hdr[] = { 0x16, 0x03, 0x01, 0x02, 0x00 }; /* handshake record, 512 bytes announced */
    assert_int_equal(send(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
    long long c0 = cpu_us(), w0 = wall_us();
    char buf[256];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        ;                      /* an alert, then EOF when the server gives up on us */
    long long cpu = cpu_us() - c0, wall = wall_us() - w0;
    close(fd);
    print_message("stalled handshake: closed by the server after %lld ms, %lld ms of CPU meanwhile\n",
                  wall / 1000, cpu / 1000);
    assert_true(wall >= 1000000);          /* it was the timeout that closed it */
    assert_true(cpu * 4 < wall);           /* a spinning worker uses about all of it */
    qhttp_server_stop(s);
    free_pki(&p);
}

static int raw_connect_from(const char *src, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in from = { .sin_family = AF_INET };
    assert_int_equal(inet_pton(AF_INET, src, &from.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof from), 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Wait up to ms for fd to be readable; then read: >0 bytes, 0 EOF, -1 error/reset, -2 timeout. */
static ssize_t wait_read(int fd, char *buf, size_t cap, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n = poll(&p, 1, ms);
    if (n == 0)
        return -2;
    ssize_t r = recv(fd, buf, cap, 0);
    return r < 0 ? -1 : r;
}

#define SLOW_CLIENTS 4

/* Slowloris: clients that open connections and trickle their headers one byte at a time. At
 * most per_ip_limit of them get a connection (more are closed at once), a client from another
 * address is still served at once, and the trickling connections are closed when the header
 * deadline passes, although each sends a byte every 200 ms (the idle timeout never fires). */
static void test_slowloris(void **state)
{
    (void)state;
    qerr e = {0};
    qhttp_server_opts o = { .ip = "127.0.0.1", .per_ip_limit = SLOW_CLIENTS, .header_timeout_s = 2,
                            .conn_timeout_s = 60 };
    qhttp_server *s = qhttp_server_start(&o, g_routes, NROUTES, &e);
    if (!s)
        fail_msg("server: %s", e.msg);
    uint16_t port = qhttp_server_port(s);
    /* one more than the limit from 127.0.0.1: one of them is closed at accept */
    int slow[SLOW_CLIENTS + 1];
    for (int i = 0; i <= SLOW_CLIENTS; i++) {
        slow[i] = raw_connect_from("127.0.0.1", port);
        send(slow[i], "GET /version HTTP/1.1\r\n", 23, MSG_NOSIGNAL);
    }
    long long t0 = wall_us();
    char buf[512];
    /* another address: served at once */
    int good = raw_connect_from("127.0.0.2", port);
    const char req[] = "GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(good, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
    ssize_t n = wait_read(good, buf, sizeof buf - 1, 10000);
    assert_true(n > 12);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    close(good);
    /* trickle a byte every 200 ms until the server closes them all (bounded by 15 s) */
    int open_n = SLOW_CLIENTS + 1;
    long long closed_at[SLOW_CLIENTS + 1] = { 0 };
    while (open_n > 0 && wall_us() - t0 < 15000000) {
        for (int i = 0; i <= SLOW_CLIENTS; i++) {
            if (closed_at[i])
                continue;
            n = wait_read(slow[i], buf, sizeof buf, 200 / (SLOW_CLIENTS + 1));
            if (n == 0 || n == -1) {
                closed_at[i] = wall_us() - t0;
                open_n--;
            } else if (n == -2) {
                send(slow[i], "X", 1, MSG_NOSIGNAL);
            }
        }
    }
    assert_int_equal(open_n, 0);
    int at_once = 0;
    for (int i = 0; i <= SLOW_CLIENTS; i++) {
        close(slow[i]);
        print_message("trickling client %d closed by the server after %lld ms\n", i, closed_at[i] / 1000);
        if (closed_at[i] < 1000000)
            at_once++;       /* the one over the per-address limit */
    }
    assert_int_equal(at_once, 1);   /* the others lasted until the header deadline, not longer */
    qhttp_server_stop(s);
}

/* ---- streamed replies ---------------------------------------------------------------------- */

/* An IMA-like source of about 3 MB with every byte value but NUL in it. */
static void make_source(void)
{
    if (g_src)
        return;
    size_t cap = 3u << 20;
    g_src = malloc(cap + 512);
    assert_non_null(g_src);
    size_t n = 0;
    for (unsigned i = 0; n < cap; i++) {
        n += (size_t)sprintf(g_src + n, "10 %040x ima-ng sha256:%064x /usr/bin/f%u \"q\" \\x\ty\x01\x1f\x7f "
                             "\xc3\xa9\r\b\f/", i, i * 7919u, i);
        if (i % 1000 == 0)
            for (int b = 1; b < 256; b++)
                if (b != '\n')
                    g_src[n++] = (char)b;
        g_src[n++] = '\n';
    }
    g_src_len = n;
    g_src[n] = '\0';
}

static bool wait_freed(int want)
{
    for (int i = 0; i < 200; i++) {
        if (__atomic_load_n(&g_freed, __ATOMIC_SEQ_CST) >= want)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

static void test_json_escape(void **state)
{
    (void)state;
    /* Every byte 1..255 escaped as cJSON prints it. */
    char in[256], out[2048];
    for (int i = 1; i < 256; i++)
        in[i - 1] = (char)i;
    in[255] = '\0';
    cJSON *str = cJSON_CreateString(in);
    char *want = cJSON_PrintUnformatted(str);
    size_t used = 0, n = qhttp_json_escape(in, 255, out, sizeof out, &used);
    assert_int_equal(used, 255);
    assert_int_equal(n, strlen(want) - 2);
    assert_memory_equal(out, want + 1, n);
    cJSON_free(want);
    cJSON_Delete(str);

    n = qhttp_json_escape("a\0b", 3, out, sizeof out, &used);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "a\\u0000b", 8);
    /* An escape that does not fit is left for the next call. */
    n = qhttp_json_escape("ab\ncd", 5, out, 3, &used);
    assert_int_equal(n, 2);
    assert_int_equal(used, 2);
    n = qhttp_json_escape("\x01", 1, out, 5, &used);
    assert_int_equal(n, 0);
    assert_int_equal(used, 0);
    n = qhttp_json_escape("\x01", 1, out, 6, &used);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "\\u0001", 6);
    n = qhttp_json_escape("plain", 5, out, 0, &used);
    assert_int_equal(n, 0);
    assert_int_equal(used, 0);
    assert_int_equal(qhttp_json_escape("", 0, out, 10, &used), 0);
}

static void test_stream_json(void **state)
{
    fx *f = *state;
    make_source();
    int freed = __atomic_load_n(&g_freed, __ATOMIC_SEQ_CST);
    qhttp_result r;
    qerr e = {0};
    assert_int_equal(qhttp_get(f->cli, url(f, "/stream/json"), &r, &e), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(r.results);
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(r.results, "ima_measurement_list");
    assert_true(cJSON_IsString(l));
    assert_int_equal(strlen(l->valuestring), g_src_len);
    assert_memory_equal(l->valuestring, g_src, g_src_len);
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(r.results, "ima_measurement_list_entry");
    assert_true(cJSON_IsNumber(en));
    assert_int_equal(en->valueint, 12345);
    assert_string_equal(res_str(&r, "quote"), "r\"AAA:BBB");
    assert_string_equal(r.status_text, "Success");

    /* Byte for byte what cJSON prints with the member added last. */
    cJSON *res = cJSON_CreateObject(), *env = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "quote", "r\"AAA:BBB");
    cJSON_AddNumberToObject(res, "ima_measurement_list_entry", 12345);
    cJSON_AddStringToObject(res, "ima_measurement_list", g_src);
    cJSON_AddNumberToObject(env, "code", 200);
    cJSON_AddStringToObject(env, "status", "Success");
    cJSON_AddItemToObject(env, "results", res);
    char *want = cJSON_PrintUnformatted(env);
    assert_int_equal(r.body_len, strlen(want));
    assert_memory_equal(r.body, want, r.body_len);
    cJSON_free(want);
    cJSON_Delete(env);
    qhttp_result_free(&r);
    assert_true(wait_freed(freed + 1));

    /* No other results, and an empty member. */
    assert_int_equal(qhttp_get(f->cli, url(f, "/stream/json?bare&len=0"), &r, &e), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"code\":200,\"status\":\"Success\",\"results\":{\"ima_measurement_list\":\"\"}}");
    qhttp_result_free(&r);
    assert_int_equal(qhttp_get(f->cli, url(f, "/stream/json?bare&len=1"), &r, &e), 0);
    assert_string_equal(r.body, "{\"code\":200,\"status\":\"Success\",\"results\":{\"ima_measurement_list\":\"1\"}}");
    qhttp_result_free(&r);
    assert_true(wait_freed(freed + 3));
}

static void test_stream_raw(void **state)
{
    fx *f = *state;
    make_source();
    int freed = __atomic_load_n(&g_freed, __ATOMIC_SEQ_CST);
    qhttp_result r;
    qerr e = {0};
    assert_int_equal(qhttp_get(f->cli, url(f, "/stream/raw?known"), &r, &e), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, g_src_len);
    assert_memory_equal(r.body, g_src, g_src_len);
    qhttp_result_free(&r);
    assert_int_equal(qhttp_get(f->cli, url(f, "/stream/raw"), &r, &e), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, g_src_len);
    assert_memory_equal(r.body, g_src, g_src_len);
    qhttp_result_free(&r);
    /* A later reply replaces the stream, whose context is freed at once. */
    assert_int_equal(qhttp_get(f->cli, url(f, "/stream/replaced"), &r, &e), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.status_text, "changed my mind");
    qhttp_result_free(&r);
    assert_true(wait_freed(freed + 3));
}

static void test_stream_broken(void **state)
{
    fx *f = *state;
    make_source();
    int freed = __atomic_load_n(&g_freed, __ATOMIC_SEQ_CST);
    static const char *paths[] = { "/stream/json?mode=short", "/stream/json?mode=error",
                                   "/stream/raw?known&mode=short", "/stream/raw?known&mode=error",
                                   "/stream/raw?mode=error" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        qhttp_result r;
        qerr e = {0};
        /* The transfer is cut: never a body that parses as a complete reply. */
        int rc = qhttp_get(f->cli, url(f, paths[i]), &r, &e);
        if (rc == 0 && r.json)
            fail_msg("%s: a cut stream gave a complete JSON body", paths[i]);
        assert_int_equal(rc, -1);
        qhttp_result_free(&r);
        /* The server carries on. */
        assert_int_equal(qhttp_get(f->cli, url(f, "/version"), &r, &e), 0);
        assert_int_equal(r.status, 200);
        qhttp_result_free(&r);
    }
    assert_true(wait_freed(freed + 5));
}

/* "%00" in a path is not decoded to a NUL (which would cut "abc%00def" to "abc"): the handler
 * gets the three characters and its id check refuses them. Other escapes still decode. */
static void test_nul_in_path(void **state)
{
    fx *f = *state;
    qhttp_result r;
    qerr e = {0};
    cJSON *b = cJSON_Parse("{}");
    assert_int_equal(qhttp_post(f->cli, url(f, "/v2.2/agents/abc%00def"), b, &r, &e), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(res_str(&r, "id"), "abc%00def");
    qhttp_result_free(&r);
    assert_int_equal(qhttp_post(f->cli, url(f, "/v2.2/agents/a%41%00%00b%42%00"), b, &r, &e), 0);
    assert_string_equal(res_str(&r, "id"), "aA%00%00bB%00");
    qhttp_result_free(&r);
    cJSON_Delete(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_envelope_and_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_in_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_type_only_with_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_reply_is_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_limit, setup, teardown),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_bad_routes_and_addresses),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_mtls),
        cmocka_unit_test(test_tls_stalled_handshake),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test_setup_teardown(test_stream_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_broken, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_src);
    return rc;
}
