/* Unit tests of verifier/registrar_policy.c: the pending-registration rules and the per-address
 * registration rate limit, with explicit times (no waiting). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../verifier/registrar_policy.h"

static void fill(vreg_agent *a, bool active)
{
    memset(a, 0, sizeof *a);
    snprintf(a->agent_id, sizeof a->agent_id, "x");
    a->ek_tpm = strdup("EK");
    a->aik_tpm = strdup("AK");
    a->mtls_cert = strdup("disabled");
    a->ip = strdup("10.0.0.1");
    a->port = 9002;
    a->key = strdup("OLDKEY");
    a->regcount = 1;
    a->active = active;
}

static void test_reregister_active(void **state)
{
    (void)state;
    vreg_agent a;
    fill(&a, true);
    assert_false(regpol_adds_pending(&a, false) == false);
    assert_true(regpol_adds_pending(&a, true));
    assert_int_equal(regpol_register(&a, true, "PEM", "10.0.0.2", 1234, "NEWKEY", 100), 0);
    assert_false(regpol_adds_pending(&a, true));   /* already pending: not another one */
    /* Nothing active changed. */
    assert_true(a.active);
    assert_string_equal(a.ip, "10.0.0.1");
    assert_string_equal(a.key, "OLDKEY");
    assert_int_equal(a.regcount, 1);
    assert_string_equal(regpol_key(&a), "NEWKEY");
    /* Wrong tags: counted, then the pending data go; the active data never move. */
    assert_int_equal(regpol_activate(&a, false, 2), REGACT_FAILED_COUNTED);
    assert_int_equal(regpol_activate(&a, false, 2), REGACT_FAILED_DROPPED);
    assert_null(a.pending_key);
    assert_string_equal(regpol_key(&a), "OLDKEY");
    assert_int_equal(regpol_activate(&a, false, 2), REGACT_FAILED_IGNORED);
    assert_true(a.active);
    assert_string_equal(a.ip, "10.0.0.1");
    /* Right tag on a new re-registration: promoted. */
    assert_int_equal(regpol_register(&a, true, "PEM", "10.0.0.2", 1234, "NEWKEY", 200), 0);
    assert_int_equal(regpol_activate(&a, true, 2), REGACT_PROMOTED);
    assert_string_equal(a.ip, "10.0.0.2");
    assert_string_equal(a.mtls_cert, "PEM");
    assert_string_equal(a.key, "NEWKEY");
    assert_int_equal(a.port, 1234);
    assert_int_equal(a.regcount, 2);
    assert_null(a.pending_key);
    assert_int_equal(regpol_activate(&a, true, 2), REGACT_ALREADY_ACTIVE);
    vreg_agent_free(&a);
}

static void test_never_activated(void **state)
{
    (void)state;
    vreg_agent a;
    fill(&a, false);
    assert_true(regpol_adds_pending(&a, false));
    assert_false(regpol_adds_pending(&a, true));
    assert_int_equal(regpol_register(&a, true, NULL, NULL, 0, "K2", 50), 0);
    assert_int_equal(a.regcount, 2);
    assert_null(a.ip);
    assert_int_equal(a.registered_at, 50);
    assert_int_equal(regpol_activate(&a, false, 3), REGACT_FAILED_COUNTED);
    assert_int_equal(regpol_activate(&a, false, 3), REGACT_FAILED_COUNTED);
    assert_int_equal(regpol_activate(&a, false, 3), REGACT_FAILED_DELETE);
    vreg_agent_free(&a);
    fill(&a, false);
    assert_int_equal(regpol_activate(&a, false, 3), REGACT_FAILED_COUNTED);
    assert_int_equal(regpol_activate(&a, true, 3), REGACT_ACTIVATED);
    assert_true(a.active);
    assert_int_equal(a.failed_activations, 0);
    vreg_agent_free(&a);
}

static void test_rate(void **state)
{
    (void)state;
    reg_rate *r = reg_rate_new(6);   /* one every 10 s, burst 6 */
    assert_non_null(r);
    long after = 0;
    for (int i = 0; i < 6; i++)
        assert_true(reg_rate_take(r, "10.0.0.1", 100.0, &after));
    assert_false(reg_rate_take(r, "10.0.0.1", 100.0, &after));
    assert_int_equal(after, 10);
    /* Another address has its own bucket. */
    assert_true(reg_rate_take(r, "10.0.0.2", 100.0, NULL));
    /* Tokens come back with time. */
    assert_false(reg_rate_take(r, "10.0.0.1", 105.0, &after));
    assert_int_equal(after, 5);
    assert_true(reg_rate_take(r, "10.0.0.1", 110.5, NULL));
    assert_false(reg_rate_take(r, "10.0.0.1", 110.5, NULL));
    /* A full table forgets the least recently seen address, never refuses a new one. */
    char addr[32];
    for (int i = 0; i < REGRATE_CLIENTS + 10; i++) {
        snprintf(addr, sizeof addr, "fd00::%x", (unsigned)i);
        assert_true(reg_rate_take(r, addr, 200.0 + i, NULL));
    }
    reg_rate_free(r);
    /* 0 = no limit. */
    r = reg_rate_new(0);
    for (int i = 0; i < 1000; i++)
        assert_true(reg_rate_take(r, "10.0.0.1", 1.0, NULL));
    reg_rate_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reregister_active),
        cmocka_unit_test(test_never_activated),
        cmocka_unit_test(test_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
