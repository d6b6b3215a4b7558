/* test_round.c — every transition of the round machine (verifier/round.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../verifier/round.h"

static const vround_cfg CFG = { .quote_interval = 2, .retry_interval = 3, .exponential_backoff = true,
                                .max_retries = 2, .max_backoff = 3600 };

static vround_st polling(int state)
{
    return (vround_st){ .state = state, .polling = true };
}

static vround_out step(const vround_st *in, vround_ev kind)
{
    vround_event ev = { .kind = kind };
    vround_out o;
    vround_step(&CFG, in, &ev, &o);
    return o;
}

static void test_activate(void **state)
{
    (void)state;
    vround_st in = { .state = VSTATE_FAILED, .retries = 4 };
    vround_out o = step(&in, VRE_ACTIVATE);
    assert_int_equal(o.st.state, VSTATE_START);
    assert_true(o.st.polling);
    assert_true(o.st.partial0);
    assert_int_equal(o.st.retries, 0);
    assert_true(o.delay == 0);
    assert_false(o.save);             /* the API stored START */
    assert_int_equal(vround_api_state(VRE_ACTIVATE), VSTATE_START);
}

static void test_reactivate_after_stop(void **state)
{
    (void)state;
    vround_st in = polling(VSTATE_GET_QUOTE);
    vround_out o = step(&in, VRE_STOP);
    assert_int_equal(o.st.state, VSTATE_TENANT_FAILED);
    assert_false(o.st.polling);
    assert_true(o.delay < 0);
    assert_false(o.save);
    assert_int_equal(vround_api_state(VRE_STOP), VSTATE_TENANT_FAILED);
    vround_out r = step(&o.st, VRE_ACTIVATE);
    assert_int_equal(r.st.state, VSTATE_START);
    assert_true(r.st.polling);
    assert_true(r.delay == 0);
}

static void test_pass(void **state)
{
    (void)state;
    vround_st in = polling(VSTATE_START);
    in.partial0 = true;
    vround_event ev = { .kind = VRE_QUOTE_PASS, .elapsed = 0.5 };
    vround_out o;
    vround_step(&CFG, &in, &ev, &o);
    assert_int_equal(o.st.state, VSTATE_GET_QUOTE);
    assert_false(o.st.partial0);
    assert_true(o.save);
    assert_false(o.failed);
    assert_true(o.delay > 1.49 && o.delay < 1.51);   /* quote_interval after the request started */
    ev.elapsed = 5;                                  /* a slow answer: the next one at once */
    vround_step(&CFG, &in, &ev, &o);
    assert_true(o.delay == 0);
}

/* A piece of a long IMA list: the state stays (START until the whole list is attested), the
 * rest is asked for at once, the round is saved; no V yet. */
static void test_pass_piece(void **state)
{
    (void)state;
    vround_st in = polling(VSTATE_START);
    in.partial0 = true;
    vround_event ev = { .kind = VRE_QUOTE_PASS, .more = true, .elapsed = 0.1 };
    vround_out o;
    vround_step(&CFG, &in, &ev, &o);
    assert_int_equal(o.st.state, VSTATE_START);
    assert_false(o.st.partial0);
    assert_true(o.delay == 0);
    assert_true(o.save);
    assert_false(o.failed);
    ev.more = false;                    /* the last piece reaches PCR 10 */
    vround_out d;
    vround_step(&CFG, &o.st, &ev, &d);
    assert_int_equal(d.st.state, VSTATE_GET_QUOTE);
    assert_true(d.delay > 1.89 && d.delay < 1.91);   /* quote_interval - elapsed */
    in = polling(VSTATE_GET_QUOTE_RETRY);
    ev.more = true;
    vround_step(&CFG, &in, &ev, &o);
    assert_int_equal(o.st.state, VSTATE_GET_QUOTE);
    assert_int_equal(o.st.retries, 0);
}

static void test_pass_gives_v(void **state)
{
    (void)state;
    vround_st in = polling(VSTATE_START);
    vround_event ev = { .kind = VRE_QUOTE_PASS, .give_v = true, .elapsed = 0.1 };
    vround_out o;
    vround_step(&CFG, &in, &ev, &o);
    assert_int_equal(o.st.state, VSTATE_PROVIDE_V);
    assert_true(o.delay == 0);          /* V goes at once */
    assert_true(o.save);
    vround_out d = step(&o.st, VRE_VKEY_DONE);
    assert_int_equal(d.st.state, VSTATE_GET_QUOTE);
    assert_true(d.delay == CFG.quote_interval);
    assert_true(d.save);
}

static void test_provide_v_retry_then_done(void **state)
{
    (void)state;
    vround_st in = polling(VSTATE_PROVIDE_V);
    vround_out o = step(&in, VRE_VKEY_COMM_FAIL);
    assert_int_equal(o.st.state, VSTATE_PROVIDE_V_RETRY);
    assert_int_equal(o.st.retries, 1);
    assert_true(o.delay == 3);          /* 3 ** 1 */
    assert_true(o.save);
    vround_out d = step(&o.st, VRE_VKEY_DONE);
    assert_int_equal(d.st.state, VSTATE_GET_QUOTE);
    assert_int_equal(d.st.retries, 0);
}

static void test_provide_v_gives_up(void **state)
{
    (void)state;
    vround_st s = polling(VSTATE_PROVIDE_V);
    vround_out o;
    for (int i = 0; i < 2; i++) {
        o = step(&s, VRE_VKEY_COMM_FAIL);
        assert_int_equal(o.st.state, VSTATE_PROVIDE_V_RETRY);
        s = o.st;
    }
    o = step(&s, VRE_VKEY_COMM_FAIL);
    assert_int_equal(o.st.state, VSTATE_FAILED);
    assert_true(o.failed);
    assert_true(o.unreachable);
    assert_false(o.st.polling);
}

static void test_provide_v_without_key(void **state)
{
    (void)state;
    vround_st in = polling(VSTATE_PROVIDE_V);
    vround_out o = step(&in, VRE_VKEY_NO_KEY);
    assert_int_equal(o.st.state, VSTATE_GET_QUOTE);
    assert_true(o.st.partial0);
    assert_true(o.delay == 0);
}

static void test_retry_backoff_give_up(void **state)
{
    (void)state;
    vround_st s = polling(VSTATE_GET_QUOTE);
    vround_out o = step(&s, VRE_COMM_FAIL);
    assert_int_equal(o.st.state, VSTATE_GET_QUOTE_RETRY);
    assert_int_equal(o.st.retries, 1);
    assert_true(o.st.partial0);
    assert_true(o.delay == 3);
    assert_true(o.save);
    assert_false(o.failed);
    o = step(&o.st, VRE_COMM_FAIL);
    assert_int_equal(o.st.retries, 2);
    assert_true(o.delay == 9);          /* 3 ** 2: exponential back-off */
    o = step(&o.st, VRE_COMM_FAIL);     /* max_retries (2) exceeded */
    assert_int_equal(o.st.state, VSTATE_FAILED);
    assert_true(o.failed);
    assert_true(o.unreachable);
    assert_true(o.save);
    assert_false(o.st.polling);
    assert_true(o.delay < 0);
}

static void test_retry_then_pass(void **state)
{
    (void)state;
    vround_st s = polling(VSTATE_GET_QUOTE);
    vround_out o = step(&s, VRE_COMM_FAIL);
    vround_event ev = { .kind = VRE_QUOTE_PASS };
    vround_step(&CFG, &o.st, &ev, &o);
    assert_int_equal(o.st.state, VSTATE_GET_QUOTE);
    assert_int_equal(o.st.retries, 0);
}

static void test_backoff(void **state)
{
    (void)state;
    vround_cfg c = CFG;
    assert_true(vround_backoff(&c, 3) == 27);
    c.exponential_backoff = false;
    assert_true(vround_backoff(&c, 3) == 3);
    c.exponential_backoff = true;
    c.retry_interval = 0.2;             /* a base <= 1 does not grow */
    assert_true(vround_backoff(&c, 5) == 0.2);
    c.retry_interval = 10;
    c.max_backoff = 50;
    assert_true(vround_backoff(&c, 4) == 50);
}

static void test_reboot(void **state)
{
    (void)state;
    vround_st s = polling(VSTATE_GET_QUOTE_RETRY);
    s.retries = 2;
    vround_out o = step(&s, VRE_QUOTE_REBOOT);
    assert_int_equal(o.st.state, VSTATE_GET_QUOTE);
    assert_int_equal(o.st.retries, 0);
    assert_true(o.st.partial0);         /* the next answer must carry the (maybe new) key */
    assert_true(o.delay == 0);
    assert_true(o.save);
    assert_false(o.failed);
    s = polling(VSTATE_START);
    o = step(&s, VRE_QUOTE_REBOOT);
    assert_int_equal(o.st.state, VSTATE_START);
}

static void test_quote_fail(void **state)
{
    (void)state;
    vround_st s = polling(VSTATE_GET_QUOTE);
    vround_event ev = { .kind = VRE_QUOTE_FAIL, .invalid_quote = true };
    vround_out o;
    vround_step(&CFG, &s, &ev, &o);
    assert_int_equal(o.st.state, VSTATE_INVALID_QUOTE);
    assert_true(o.failed);
    assert_false(o.unreachable);
    assert_false(o.st.polling);
    ev.invalid_quote = false;
    vround_step(&CFG, &s, &ev, &o);
    assert_int_equal(o.st.state, VSTATE_FAILED);
}

static void test_fatal(void **state)
{
    (void)state;
    vround_st s = polling(VSTATE_PROVIDE_V);
    vround_out o = step(&s, VRE_FATAL);
    assert_int_equal(o.st.state, VSTATE_FAILED);
    assert_true(o.failed);
    assert_true(o.save);
    assert_false(o.st.polling);
}

static void test_stale(void **state)
{
    (void)state;
    vround_st s = polling(VSTATE_GET_QUOTE);
    s.retries = 1;
    vround_out o = step(&s, VRE_STALE);
    assert_true(o.ignored);
    assert_false(o.save);
    assert_true(o.delay < 0);
    assert_memory_equal(&o.st, &s, sizeof s);
}

static void test_result_after_stop_ignored(void **state)
{
    (void)state;
    vround_st s = { .state = VSTATE_TENANT_FAILED, .polling = false };
    vround_ev kinds[] = { VRE_QUOTE_PASS, VRE_QUOTE_FAIL, VRE_COMM_FAIL, VRE_VKEY_DONE, VRE_FATAL };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        vround_out o = step(&s, kinds[i]);
        assert_true(o.ignored);
        assert_int_equal(o.st.state, VSTATE_TENANT_FAILED);
        assert_false(o.save);
    }
}

static void test_delete(void **state)
{
    (void)state;
    vround_st s = polling(VSTATE_GET_QUOTE_RETRY);
    vround_out o = step(&s, VRE_DELETE);
    assert_true(o.forget);
    assert_false(o.st.polling);
    assert_false(o.save);
    assert_true(o.delay < 0);
    assert_int_equal(vround_api_state(VRE_DELETE), -1);
}

static void test_apply(void **state)
{
    (void)state;
    vagent_state st;
    memset(&st, 0, sizeof st);
    vround_st s = polling(VSTATE_GET_QUOTE);
    vround_out o = step(&s, VRE_COMM_FAIL);
    vround_apply(&st, &o);
    assert_int_equal(st.operational_state, VSTATE_GET_QUOTE_RETRY);
    assert_int_equal(st.consecutive_failures, 1);
}

/* What a round writes: counters only → kept in memory until a checkpoint; anything durable →
 * written at once. */
static void test_durable_fp(void **state)
{
    (void)state;
    vagent_state a;
    memset(&a, 0, sizeof a);
    a.operational_state = VSTATE_GET_QUOTE;
    a.next_ima_ml_entry = 12;
    a.severity_level = -1;
    vagent_state b = a;
    b.attestation_count = 99;
    b.last_received_quote = 1234;
    b.last_successful_attestation = 1234;
    b.clock = 777;
    assert_true(vround_durable_fp(&a) == vround_durable_fp(&b));     /* counters are not durable */
    const vagent_state base = b;
    b.next_ima_ml_entry = 13;
    assert_true(vround_durable_fp(&a) != vround_durable_fp(&b));
    b = base;
    b.pcr10[31] = 1;
    assert_true(vround_durable_fp(&a) != vround_durable_fp(&b));
    b = base;
    b.reset_count = 1;
    assert_true(vround_durable_fp(&a) != vround_durable_fp(&b));
    b = base;
    b.boottime = 5;
    assert_true(vround_durable_fp(&a) != vround_durable_fp(&b));
    b = base;
    b.consecutive_failures = 1;
    assert_true(vround_durable_fp(&a) != vround_durable_fp(&b));
    b = base;
    b.operational_state = VSTATE_INVALID_QUOTE;
    assert_true(vround_durable_fp(&a) != vround_durable_fp(&b));
    b = base;
    b.learned_ima_keyrings = (char *)"{}";
    assert_true(vround_durable_fp(&a) != vround_durable_fp(&b));
}

static void test_write_now(void **state)
{
    (void)state;
    vround_ckpt ck = { .rounds = 3, .seconds = 10 };
    assert_true(vround_write_now(&ck, true, 0, 0));       /* durable: always */
    assert_false(vround_write_now(&ck, false, 1, 0));
    assert_false(vround_write_now(&ck, false, 2, 9.9));
    assert_true(vround_write_now(&ck, false, 3, 0));      /* the N-th round */
    assert_true(vround_write_now(&ck, false, 1, 10));     /* T seconds */
    vround_ckpt every = { .rounds = 1, .seconds = 60 };
    assert_true(vround_write_now(&every, false, 1, 0));
    assert_true(vround_write_now(NULL, false, 1, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activate),
        cmocka_unit_test(test_reactivate_after_stop),
        cmocka_unit_test(test_pass),
        cmocka_unit_test(test_pass_piece),
        cmocka_unit_test(test_pass_gives_v),
        cmocka_unit_test(test_provide_v_retry_then_done),
        cmocka_unit_test(test_provide_v_gives_up),
        cmocka_unit_test(test_provide_v_without_key),
        cmocka_unit_test(test_retry_backoff_give_up),
        cmocka_unit_test(test_retry_then_pass),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_reboot),
        cmocka_unit_test(test_quote_fail),
        cmocka_unit_test(test_fatal),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_result_after_stop_ignored),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_durable_fp),
        cmocka_unit_test(test_write_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
