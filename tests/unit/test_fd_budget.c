/* test_fd_budget.c — connection limits derived from RLIMIT_NOFILE. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/resource.h>

#include "fd_budget.h"

static void test_split(void **state)
{
    (void)state;
    /* the systemd default soft limit, the verifier's reserve: too small → the minimum */
    assert_int_equal(qfd_conn_limit(1024, QFD_BASE_RESERVE + 1024, 50), QFD_MIN_CONN);
    /* 4096 - 1152 = 2944: half of it, 30 %, 20 % */
    assert_int_equal(qfd_conn_limit(4096, 1152, 50), 1472);
    assert_int_equal(qfd_conn_limit(4096, 1152, 30), 883);
    assert_int_equal(qfd_conn_limit(4096, 1152, 20), 588);
    /* plenty of descriptors: capped */
    assert_int_equal(qfd_conn_limit(1L << 30, 1152, 50), QFD_MAX_CONN);
    assert_int_equal(qfd_conn_limit(1000, 128, 0), QFD_MIN_CONN);
    assert_int_equal(qfd_conn_limit(1000, 128, 250), 872);   /* share over 100 % → 100 % */
}

static void test_raise(void **state)
{
    (void)state;
    struct rlimit before;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
    long was = 0, now = qfd_raise_nofile(&was);
    struct rlimit after;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &after), 0);
    assert_true(after.rlim_cur == after.rlim_max);               /* soft raised to hard */
    if (before.rlim_cur != RLIM_INFINITY)
        assert_int_equal(was, (long)before.rlim_cur);
    if (after.rlim_cur != RLIM_INFINITY && after.rlim_cur < (rlim_t)(1L << 30))
        assert_int_equal(now, (long)after.rlim_cur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_raise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
