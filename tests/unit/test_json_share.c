/* test_json_share.c — records' JSON texts parsed once and shared (verifier/json_share.h): equal
 * texts give the same tree, others their own, the last reference frees it, bad text is none. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../verifier/json_share.h"

static void test_equal_texts_share(void **state)
{
    (void)state;
    size_t base = vjson_share_count();
    vjson_shared *a = vjson_share_get("[\"sha256\",\"sha1\"]");
    vjson_shared *b = vjson_share_get("[\"sha256\",\"sha1\"]");
    vjson_shared *c = vjson_share_get("[\"sha256\"]");
    assert_non_null(a);
    assert_non_null(c);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_int_equal(vjson_share_count(), base + 2);
    const cJSON *j = vjson_share_json(a);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 2);
    assert_string_equal(cJSON_GetArrayItem(j, 1)->valuestring, "sha1");
    vjson_share_put(a);
    assert_int_equal(vjson_share_count(), base + 2);     /* b still holds it */
    assert_true(cJSON_IsArray(vjson_share_json(b)));
    vjson_share_put(b);
    assert_int_equal(vjson_share_count(), base + 1);
    vjson_share_put(c);
    assert_int_equal(vjson_share_count(), base);
}

static void test_none(void **state)
{
    (void)state;
    size_t base = vjson_share_count();
    assert_null(vjson_share_get(NULL));
    assert_null(vjson_share_get("[\"sha256\""));
    assert_null(vjson_share_get(""));
    assert_null(vjson_share_json(NULL));
    vjson_share_put(NULL);
    assert_int_equal(vjson_share_count(), base);
}

/* A text made again after its last holder went is parsed afresh, and texts that differ in one
 * byte stay apart (same bucket or not). */
static void test_again_and_near(void **state)
{
    (void)state;
    vjson_shared *a = vjson_share_get("{\"mask\":\"0x400\"}");
    assert_non_null(a);
    vjson_share_put(a);
    vjson_shared *b = vjson_share_get("{\"mask\":\"0x400\"}");
    vjson_shared *c = vjson_share_get("{\"mask\":\"0x401\"}");
    assert_non_null(b);
    assert_non_null(c);
    assert_ptr_not_equal(b, c);
    assert_string_equal(cJSON_GetObjectItem(vjson_share_json(c), "mask")->valuestring, "0x401");
    vjson_share_put(b);
    vjson_share_put(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_texts_share),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_again_and_near),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
