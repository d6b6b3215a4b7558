/* Revocation messages (common/revocation.c): Keylime's shape, signed and checked; a forged or
 * unsigned message is refused. The webhook sender (verifier/revocation_webhook.c): delivers to a
 * local receiver, retries a failing one with back-off, and never blocks the caller. The
 * Prometheus registry (common/prom.c) renders the text format. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_server.h"
#include "log.h"
#include "prom.h"
#include "revocation.h"
#include "../../verifier/revocation_webhook.h"
#include "tls_ca.h"

static void keypair(char **key_pem, char **cert_pem)
{
    qerr e = {0};
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_RSA_3072, &e);
    assert_non_null(k);
    X509 *c = qtls_make_ca(k, "RevocationNotifier", 30, &e);
    assert_non_null(c);
    size_t n;
    *key_pem = qtls_key_pem(k, &n, &e);
    *cert_pem = qtls_cert_pem(c, &n, &e);
    assert_non_null(*key_pem);
    assert_non_null(*cert_pem);
    X509_free(c);
    EVP_PKEY_free(k);
}

static char *sample_msg(void)
{
    cJSON *ctx = cJSON_CreateObject();
    cJSON_AddStringToObject(ctx, "message", "File not found in allowlist: /usr/bin/evil");
    cJSON_AddNumberToObject(ctx, "entry", 17);
    qrevoc_event ev = {.type = "revocation", .agent_id = "a1", .ip = "127.0.0.1", .port = 9002,
                       .tpm_policy = "{\"mask\": \"0x400\"}", .meta_data = "{}", .event_time = 0,
                       .event_id = "ima.file_not_found", .severity_label = "emergency", .context = ctx};
    qerr e = {0};
    char *m = qrevoc_msg_text(&ev, &e);
    cJSON_Delete(ctx);
    assert_non_null(m);
    return m;
}

static void test_msg_shape(void **state)
{
    (void)state;
    char *m = sample_msg();
    cJSON *j = cJSON_Parse(m);
    assert_non_null(j);
    static const char *const keys[] = {"type", "ip", "agent_id", "port", "tpm_policy", "meta_data",
                                       "event_time", "event_id", "severity_label", "context"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(cJSON_GetObjectItemCaseSensitive(j, keys[i]));
    assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "revocation");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "tpm_policy")));     /* JSON text, as Keylime */
    assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetObjectItem(j, "context"), "entry")->valuedouble, 17);
    cJSON_Delete(j);
    qerr e = {0};
    char *b = qrevoc_body(m, NULL, &e);
    assert_non_null(b);
    assert_non_null(strstr(b, "\"signature\":\"\""));
    free(b);
    free(m);
}

static void test_sign_verify_forged_unsigned(void **state)
{
    (void)state;
    char *key, *cert, *key2, *cert2;
    keypair(&key, &cert);
    keypair(&key2, &cert2);
    char *m = sample_msg();
    qerr e = {0};
    char *body = qrevoc_body(m, key, &e);
    assert_non_null(body);
    cJSON *msg = NULL;
    assert_int_equal(qrevoc_verify(body, strlen(body), cert, &msg, &e), 0);
    assert_non_null(msg);
    assert_string_equal(cJSON_GetObjectItem(msg, "agent_id")->valuestring, "a1");
    cJSON_Delete(msg);

    /* Signed by another key: refused. */
    char *forged = qrevoc_body(m, key2, &e);
    assert_int_equal(qrevoc_verify(forged, strlen(forged), cert, &msg, &e), -1);
    assert_non_null(strstr(e.msg, "does not verify"));
    assert_null(msg);
    /* Unsigned: refused. */
    char *unsigned_body = qrevoc_body(m, NULL, &e);
    assert_int_equal(qrevoc_verify(unsigned_body, strlen(unsigned_body), cert, &msg, &e), -1);
    assert_non_null(strstr(e.msg, "not signed"));
    /* A changed msg under the original signature: refused. */
    cJSON *b = cJSON_Parse(body);
    char *m2 = strdup(cJSON_GetObjectItem(b, "msg")->valuestring);
    m2[strlen(m2) - 3] ^= 1;
    cJSON_ReplaceItemInObject(b, "msg", cJSON_CreateString(m2));
    char *tampered = cJSON_PrintUnformatted(b);
    assert_int_equal(qrevoc_verify(tampered, strlen(tampered), cert, &msg, &e), -1);
    /* Not JSON. */
    assert_int_equal(qrevoc_verify("nope", 4, cert, &msg, &e), -1);
    free(tampered);
    free(m2);
    cJSON_Delete(b);
    free(unsigned_body);
    free(forged);
    free(body);
    free(m);
    qtls_free_secret(key);
    qtls_free_secret(key2);
    free(cert);
    free(cert2);
}

/* ---- webhook ---- */
typedef struct {
    pthread_mutex_t lock;
    int hits, fail_first;
    char last[4096];
} recv_t;

static void h_hook(qhttp_req *r, void *ctx)
{
    recv_t *rv = ctx;
    pthread_mutex_lock(&rv->lock);
    rv->hits++;
    bool fail = rv->hits <= rv->fail_first;
    size_t n = 0;
    const char *b = qhttp_req_body(r, &n);
    snprintf(rv->last, sizeof rv->last, "%.*s", (int)(n < 4000 ? n : 4000), b ? b : "");
    pthread_mutex_unlock(&rv->lock);
    if (fail)
        qhttp_reply_error(r, 503, "busy");
    else
        qhttp_reply(r, 200, NULL);
}

static int hits(recv_t *rv)
{
    pthread_mutex_lock(&rv->lock);
    int h = rv->hits;
    pthread_mutex_unlock(&rv->lock);
    return h;
}

static void wait_hits(recv_t *rv, int want)
{
    for (int i = 0; i < 1000 && hits(rv) < want; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void test_webhook_delivers_and_retries(void **state)
{
    (void)state;
    recv_t rv = {.fail_first = 2};
    pthread_mutex_init(&rv.lock, NULL);
    qhttp_route routes[] = {{"POST", "/hook", h_hook, &rv}};
    qhttp_server_opts so = {.ip = "127.0.0.1", .port = 0, .threads = 1};
    qerr e = {0};
    qhttp_server *srv = qhttp_server_start(&so, routes, 1, &e);
    assert_non_null(srv);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hook", qhttp_server_port(srv));
    vwebhook_opts wo = {.url = url, .attempts = 3, .retry_ms = 20, .timeout_ms = 2000};
    vwebhook *w = vwebhook_start(&wo, &e);
    assert_non_null(w);
    assert_int_equal(vwebhook_post(w, "a1", "{\"msg\": \"x\", \"signature\": \"\"}"), 0);
    wait_hits(&rv, 3);
    vwebhook_stats st;
    for (int i = 0; i < 500; i++) {
        vwebhook_stats_get(w, &st);
        if (st.sent == 1)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(hits(&rv), 3);       /* two 503s, then delivered */
    assert_int_equal(st.sent, 1);
    assert_int_equal(st.failed_attempts, 2);
    assert_non_null(strstr(rv.last, "\"signature\""));
    vwebhook_stop(w);
    qhttp_server_stop(srv);
    pthread_mutex_destroy(&rv.lock);
}

static void test_webhook_dead_never_blocks(void **state)
{
    (void)state;
    /* Nothing listens on port 1: posting 100 events returns at once; the queue bound drops the rest. */
    vwebhook_opts wo = {.url = "http://127.0.0.1:1/hook", .attempts = 2, .retry_ms = 50, .timeout_ms = 200,
                        .queue_max = 8};
    qerr e = {0};
    vwebhook *w = vwebhook_start(&wo, &e);
    assert_non_null(w);
    qlog_level old = qlog_get_level();
    qlog_set_level(QLOG_CRITICAL);       /* 90 "queue full" lines are expected */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int dropped = 0;
    for (int i = 0; i < 100; i++)
        dropped += vwebhook_post(w, "a1", "{}") < 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms < 1000.0);       /* no network wait in the caller (a single attempt takes 200 ms) */
    assert_true(dropped >= 100 - 9);
    vwebhook_stop(w);
    qlog_set_level(old);
}

static void test_prom_render(void **state)
{
    (void)state;
    qprom *p = qprom_new();
    assert_non_null(p);
    qprom_counter_add(p, "quince_failures_total", "failures", "event_id", "ima.file_not_found", 1);
    qprom_counter_add(p, "quince_failures_total", "failures", "event_id", "ima.file_not_found", 2);
    qprom_counter_add(p, "quince_failures_total", "failures", "event_id", "we\"ird\\", 1);
    qprom_gauge_set(p, "quince_agents", "agents", "state", "Get Quote", 4);
    qprom_hist_observe(p, "quince_round_seconds", "rounds", 0.02);
    qprom_hist_observe(p, "quince_round_seconds", "rounds", 3);
    size_t n = 0;
    char *t = qprom_render(p, &n);
    assert_non_null(t);
    assert_int_equal(strlen(t), n);
    assert_non_null(strstr(t, "# TYPE quince_failures_total counter\n"));
    assert_non_null(strstr(t, "quince_failures_total{event_id=\"ima.file_not_found\"} 3\n"));
    assert_non_null(strstr(t, "quince_failures_total{event_id=\"we\\\"ird\\\\\"} 1\n"));
    assert_non_null(strstr(t, "quince_agents{state=\"Get Quote\"} 4\n"));
    assert_non_null(strstr(t, "quince_round_seconds_bucket{le=\"0.025\"} 1\n"));
    assert_non_null(strstr(t, "quince_round_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(t, "quince_round_seconds_count 2\n"));
    free(t);
    qprom_gauge_reset(p, "quince_agents");
    t = qprom_render(p, &n);
    assert_null(strstr(t, "quince_agents{"));
    free(t);
    qprom_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_shape),
        cmocka_unit_test(test_sign_verify_forged_unsigned),
        cmocka_unit_test(test_webhook_delivers_and_retries),
        cmocka_unit_test(test_webhook_dead_never_blocks),
        cmocka_unit_test(test_prom_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
