/* test_agent_pool.c — the verifier's pool of idle easy handles (verifier/agent_client.h):
 * handles come back for reuse, at most `keep` are held, and vac_pool_shrink frees only those
 * that stayed idle for a whole period. No request is sent: vac_quote only sets a handle up. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../verifier/agent_client.h"

static vagent g_rec;
static vac_opts g_opts = { .request_timeout_ms = 1000, .max_response_bytes = 4096, .allow_plain_http = true };

static void take(vac *c, vac_pool *pool)
{
    bool fatal = true;
    char why[256] = "";
    assert_int_equal(vac_quote(c, pool, &g_opts, &g_rec, NULL, "abc", 0x400, false, 0, &fatal, why, sizeof why), 0);
    assert_false(fatal);
    assert_non_null(c->easy);
}

static void test_shrink_frees_what_stayed_idle(void **state)
{
    (void)state;
    vac_pool *pool = vac_pool_new(8);
    assert_non_null(pool);
    vac c[3];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 3; i++)
        take(&c[i], pool);
    for (int i = 0; i < 3; i++)
        vac_release(&c[i], pool);
    assert_int_equal(vac_pool_idle(pool), 3);
    vac_pool_shrink(pool);                 /* all three were in use in this period */
    assert_int_equal(vac_pool_idle(pool), 3);
    take(&c[0], pool);                     /* one in use: two stayed idle */
    vac_release(&c[0], pool);
    vac_pool_shrink(pool);
    assert_int_equal(vac_pool_idle(pool), 1);
    vac_pool_shrink(pool);                 /* a period with no request */
    assert_int_equal(vac_pool_idle(pool), 0);
    take(&c[0], pool);                     /* the pool grows again when needed */
    vac_release(&c[0], pool);
    assert_int_equal(vac_pool_idle(pool), 1);
    for (int i = 0; i < 3; i++)
        vac_free(&c[i], pool);
    vac_pool_free(pool);
}

static void test_keep_bounds_idle(void **state)
{
    (void)state;
    vac_pool *pool = vac_pool_new(2);
    assert_non_null(pool);
    vac c[4];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 4; i++)
        take(&c[i], pool);
    for (int i = 0; i < 4; i++)
        vac_release(&c[i], pool);
    assert_int_equal(vac_pool_idle(pool), 2);
    for (int i = 0; i < 4; i++)
        vac_free(&c[i], pool);
    vac_pool_free(pool);
}

int main(void)
{
    g_rec.ip = "127.0.0.1";
    g_rec.port = 9002;
    g_rec.supported_version = "2.2";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shrink_frees_what_stayed_idle),
        cmocka_unit_test(test_keep_bounds_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
