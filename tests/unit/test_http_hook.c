/* test_http_hook.c — http_server's connection hook, held replies and hang-ups (what quince-fleet
 * builds on): an external_loop server run by a loop thread of the test, a client in the test's
 * own thread. The hook's context reaches the handler; a NULL from the hook closes the
 * connection; a held reply arrives only once released; a hang-up closes without an answer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "http_client.h"
#include "http_server.h"
#include "http_fixture.h"

static char ctx_name[] = "agent-7";

typedef struct fx {
    qhttp_server *srv;
    qhttp_client *cli;
    char base[64];
    pthread_t loop;
    int stop;                    /* atomics: set by the test, read by the loop */
    int refuse;                  /* the hook refuses the next connections */
    int opened;                  /* connections the hook saw with a socket */
    qhttp_req *held;             /* loop thread only */
    int held_total;
} fx;

static fx *g;

static void *hook(void *arg, int fd, void *tls)
{
    fx *f = arg;
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (tls == NULL && fd >= 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && sa.sin_family == AF_INET)
        __atomic_add_fetch(&f->opened, 1, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&f->refuse, __ATOMIC_SEQ_CST) ? NULL : ctx_name;
}

static void h_who(qhttp_req *r, void *ctx)
{
    (void)ctx;
    const char *who = qhttp_req_conn_ctx(r);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "who", who ? who : "(none)");
    qhttp_reply(r, 200, o);
}

static void h_late(qhttp_req *r, void *ctx)
{
    (void)ctx;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "late", "yes");
    qhttp_reply(r, 200, o);
    g->held = r;                 /* the loop thread releases it after its next run */
    g->held_total++;
    qhttp_req_hold(r);
}

static void h_gone(qhttp_req *r, void *ctx)
{
    (void)ctx;
    qhttp_reply_hangup(r);
}

static const qhttp_route routes[] = {
    { "GET", "/who", h_who, NULL },
    { "GET", "/late", h_late, NULL },
    { "GET", "/gone", h_gone, NULL },
};

static void *loop_main(void *arg)
{
    fx *f = arg;
    struct pollfd p = { .fd = qhttp_server_poll_fd(f->srv), .events = POLLIN };
    while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
        poll(&p, 1, 20);
        while (qhttp_server_run(f->srv) == 1)
            ;
        if (f->held) {           /* a held reply waits one more turn of the loop, then goes */
            qhttp_req *r = f->held;
            f->held = NULL;
            qhttp_req_release(r);
        }
    }
    return NULL;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    g = f;
    qhttp_server_opts o = { .ip = "127.0.0.1", .port = 0, .external_loop = true, .conn_open = hook, .conn_arg = f,
                            .allow_hold = true };
    if (hfx_start(&o, routes, sizeof routes / sizeof routes[0], &f->srv, &f->cli, f->base, sizeof f->base) != 0) {
        free(f);
        return -1;
    }
    if (pthread_create(&f->loop, NULL, loop_main, f) != 0) {
        qhttp_client_free(f->cli);
        qhttp_server_stop(f->srv);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    __atomic_store_n(&f->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(f->loop, NULL);
    qhttp_client_free(f->cli);
    qhttp_server_stop(f->srv);
    free(f);
    return 0;
}

static int get(fx *f, const char *path, qhttp_result *r)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    qerr e = { 0 };
    memset(r, 0, sizeof *r);
    return qhttp_get(f->cli, url, r, &e);
}

static void test_hook_context(void **state)
{
    fx *f = *state;
    qhttp_result r;
    assert_int_equal(get(f, "/who", &r), 0);
    assert_int_equal(r.status, 200);
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(r.results, "who");
    assert_true(cJSON_IsString(who));
    assert_string_equal(who->valuestring, ctx_name);
    qhttp_result_free(&r);
    assert_true(__atomic_load_n(&f->opened, __ATOMIC_SEQ_CST) >= 1);
}

static void test_hook_refuses(void **state)
{
    fx *f = *state;
    __atomic_store_n(&f->refuse, 1, __ATOMIC_SEQ_CST);
    qhttp_client_free(f->cli);              /* a new connection, which the hook sees */
    qhttp_client_opts co = { .timeout_ms = 5000 };
    qerr e = { 0 };
    f->cli = qhttp_client_new(&co, &e);
    assert_non_null(f->cli);
    qhttp_result r;
    assert_true(get(f, "/who", &r) < 0);    /* closed without an answer */
    qhttp_result_free(&r);
}

static void test_held_reply(void **state)
{
    fx *f = *state;
    qhttp_result r;
    assert_int_equal(get(f, "/late", &r), 0);
    assert_int_equal(r.status, 200);
    const cJSON *late = cJSON_GetObjectItemCaseSensitive(r.results, "late");
    assert_true(cJSON_IsString(late));
    qhttp_result_free(&r);
    assert_int_equal(f->held_total, 1);
    /* the connection serves the next request as usual */
    assert_int_equal(get(f, "/who", &r), 0);
    assert_int_equal(r.status, 200);
    qhttp_result_free(&r);
}

static void test_hangup(void **state)
{
    fx *f = *state;
    qhttp_result r;
    assert_true(get(f, "/gone", &r) < 0);
    qhttp_result_free(&r);
    assert_int_equal(get(f, "/who", &r), 0);  /* a new connection is served */
    assert_int_equal(r.status, 200);
    qhttp_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hook_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hangup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
