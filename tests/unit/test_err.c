/* Unit tests for common/err.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "err.h"

static void test_set_and_code(void **state)
{
    (void)state;
    qerr e = { 0 };
    assert_int_equal(qerr_set(&e, "bad %s at %d", "thing", 7), -1);
    assert_string_equal(e.msg, "bad thing at 7");
    assert_int_equal(e.code, 0);
    assert_int_equal(qerr_setc(&e, 404, "no agent %s", "x"), -1);
    assert_string_equal(e.msg, "no agent x");
    assert_int_equal(e.code, 404);
    qerr_set(&e, "plain");
    assert_int_equal(e.code, 0);
}

static void test_null_allowed(void **state)
{
    (void)state;
    assert_int_equal(qerr_set(NULL, "x %d", 1), -1);
    assert_int_equal(qerr_setc(NULL, 3, "x"), -1);
    assert_int_equal(qerr_prefix(NULL, "p"), -1);
    qerr_clear(NULL);
}

static void test_prefix(void **state)
{
    (void)state;
    qerr e = { 0 };
    qerr_setc(&e, 400, "bad line");
    assert_int_equal(qerr_prefix(&e, "policy %s", "p1"), -1);
    assert_string_equal(e.msg, "policy p1: bad line");
    assert_int_equal(e.code, 400);
    qerr_prefix(&e, "upload");
    assert_string_equal(e.msg, "upload: policy p1: bad line");
    qerr_clear(&e);
    qerr_prefix(&e, "only");
    assert_string_equal(e.msg, "only");
}

static void test_one_line_and_truncation(void **state)
{
    (void)state;
    qerr e = { 0 };
    qerr_set(&e, "trailing newline\n");
    assert_string_equal(e.msg, "trailing newline");
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    qerr_set(&e, "%s", big);
    assert_int_equal(strlen(e.msg), QERR_MSG_MAX - 1);
    qerr_prefix(&e, "pre");
    assert_int_equal(strlen(e.msg), QERR_MSG_MAX - 1);
    assert_memory_equal(e.msg, "pre: aaa", 8);
    qerr_set(&e, "x");
    qerr_prefix(&e, "%s", big);
    assert_int_equal(strlen(e.msg), QERR_MSG_MAX - 1);
    qerr_clear(&e);
    assert_string_equal(e.msg, "");
    assert_int_equal(e.code, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_and_code),
        cmocka_unit_test(test_null_allowed),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_one_line_and_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
