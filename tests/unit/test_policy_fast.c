/* Unit tests for common/policy_json_fast.c: the quick way into a runtime policy's tables gives
 * the same policy, or the same error, as loading the whole document with cJSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

#define A40 "3f786850e387550fdab836ed7e6dc881de23001b"
#define B64 "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7"
#define REST "\"excludes\": [\"^/tmp/.*$\"], \"keyrings\": {\".ima\": [\"aa" A40 "\"]}, " \
             "\"ima\": {\"ignored_keyrings\": [], \"log_hash_alg\": \"sha256\", \"dm_policy\": null}, " \
             "\"ima-buf\": {\"kexec-cmdline\": [\"" A40 "\"]}, \"verification-keys\": \"\""
#define META "\"meta\": {\"version\": 1, \"generator\": 1, \"timestamp\": \"t\"}, \"release\": 0, "

/* Both loads of text agree; returns whether they loaded. */
static bool same_both_ways(const char *text, size_t len)
{
    qerr e1 = { 0 }, e2 = { 0 };
    qpolicy *a = qpolicy_from_json(text, len, "p.json", &e1);
    qpolicy *b = qpol_from_json_cjson(text, len, &e2);
    if (!a != !b)
        fail_msg("one load failed: '%s' / '%s' for %.200s", a ? "" : e1.msg, b ? "" : e2.msg, text);
    if (!a) {
        assert_string_equal(e1.msg, e2.msg);
        return false;
    }
    char *ja = qpolicy_to_json(a, false, &e1), *jb = qpolicy_to_json(b, false, &e2);
    assert_non_null(ja);
    assert_non_null(jb);
    assert_string_equal(ja, jb);
    for (int t = 0; t < QPOL_NTABLES; t++)
        assert_int_equal(qpolicy_count(a, (qpol_table)t), qpolicy_count(b, (qpol_table)t));
    free(ja);
    free(jb);
    qpolicy_free(a);
    qpolicy_free(b);
    return true;
}

static bool same(const char *text)
{
    return same_both_ways(text, strlen(text));
}

/* Does the quick way take text (rather than leave it to cJSON)? */
static bool quick_takes(const char *text)
{
    qerr e = { 0 };
    qpolicy *p = qpolicy_empty(&e);
    assert_non_null(p);
    char *skel = NULL;
    size_t n = 0;
    int rc = qpol_fast_tables(p, text, strlen(text), &skel, &n);
    if (rc == 0) {
        assert_non_null(skel);
        assert_int_equal(strlen(skel), n);
        assert_null(strstr(skel, A40 "\""));    /* the tables' digests are not in the copy */
    } else {
        assert_null(skel);
    }
    free(skel);
    qpolicy_free(p);
    return rc == 0;
}

static void test_plain_documents(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{" META "\"digests\": {\"/a\": [\"" A40 "\"], \"/b\": [\"" B64 "\", \"" A40 "\"]}, " REST "}",
        /* whitespace of every kind, a UTF-8 path, an empty path, a path given twice */
        "\n{\r\n\t" META "\"digests\" :\n{ \"/usr/bin/\xc3\xa9t\xc3\xa9\" : [ \"" A40 "\" ] ,\n"
        "\"\": [\"" B64 "\"], \"/usr/bin/\xc3\xa9t\xc3\xa9\": [\"" B64 "\"] } , " REST " }\n",
        /* tables before meta, odd digit count */
        "{\"ima-buf\": {}, \"keyrings\": {}, \"digests\": {\"/a\": [\"" A40 "0\"]}, " META
        "\"excludes\": [], \"ima\": {\"ignored_keyrings\": [], \"log_hash_alg\": \"sha1\", "
        "\"dm_policy\": null}, \"verification-keys\": \"\"}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        assert_true(quick_takes(docs[i]));
        assert_true(same(docs[i]));
    }
}

/* Outside the plain spelling: cJSON loads it, with the same result. */
static void test_left_to_cjson(void **state)
{
    (void)state;
    static const char *const loads[] = {
        "{" META "\"digests\": {\"/a\\u00e9\": [\"" A40 "\"]}, " REST "}",             /* escape */
        "{" META "\"digests\": {\"/a\\\"b\": [\"" A40 "\"]}, " REST "}",              /* \" */
        "{" META "\"digests\": {\"/a\": [\"" A40 "\"]}, " REST ", \"digests\": {\"/b\": [\"" A40 "\"]}}",
        "{" META "\"dig\\u0065sts\": {\"/a\": [\"" A40 "\"]}, " REST "}",            /* key escape */
        "{" META "\"digests\": {\"/a\": [\"" A40 "\"]}, " REST "}\f",                /* cJSON's whitespace */
        "\xef\xbb\xbf{" META "\"digests\": {}, " REST "}",                            /* BOM */
        "{" META "\"digests\": {\"/a\t\": [\"" A40 "\"]}, " REST "}",    /* raw tab: cJSON takes it */
    };
    for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++)
        same(loads[i]);
    static const char nul_after[] = "{" META "\"digests\": {\"/a\": [\"" A40 "\"]}, " REST "}\n\0x";
    assert_true(same_both_ways(nul_after, sizeof nul_after - 1));
    assert_false(quick_takes(loads[0]));
    assert_false(quick_takes(loads[2]));
    assert_false(quick_takes(loads[3]));
    assert_false(quick_takes(loads[6]));
    assert_true(same(loads[0]));
    assert_true(same(loads[2]));
    assert_true(same(loads[6]));
}

/* Errors: the quick way gives up and cJSON's path words them, as before. */
static void test_errors_same(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{" META "\"digests\": {\"/a\": []}, " REST "}",                               /* too short */
        "{" META "\"digests\": {\"/a\": [\"" "3F786850e387550fdab836ed7e6dc881de23001b" "\"]}, " REST "}",
        "{" META "\"digests\": {\"/a\": [\"abc\"]}, " REST "}",
        "{" META "\"digests\": {\"/a\": [7]}, " REST "}",
        "{" META "\"digests\": {\"/a\": \"" A40 "\"}, " REST "}",
        "{" META "\"digests\": [], " REST "}",
        "{" META "\"digests\": {\"/a\": [\"" A40 "\"]} " REST "}",                     /* no comma */
        "{" META "\"digests\": {\"/a\": [\"" A40 "\"]}, " REST "} x",                  /* extra data */
        "{" META "\"digests\": {\"/a\": [\"" A40 "\"]}, " REST,                         /* cut short */
        "{" META "\"digests\": {\"/\xff\": [\"" A40 "\"]}, " REST "}",                 /* not UTF-8 */
        "{\"meta\": {\"version\": 2, \"generator\": 1}, \"release\": 0, \"digests\": {}, " REST "}",
        "{" META "\"digests\": {\"/a\": [\"" A40 "\"]}, \"excludes\": [\"(\"], \"keyrings\": {}, "
        "\"ima\": {\"ignored_keyrings\": [], \"log_hash_alg\": \"sha1\", \"dm_policy\": null}, "
        "\"ima-buf\": {}, \"verification-keys\": \"\"}",
        "{" META "\"digests\": {\"/a\": [\"" A40 "\"]}}",                              /* keys missing */
        "{\"payload\": \"x\", " META "\"digests\": {\"/a\": [\"" A40 "\"]}, " REST "}",
        "[]", "{}", "{\"digests\": {\"/a\": [\"" A40 "\"]}", "{\"digests\": {\"/a\": [\"" A40 "\"",
        "{\"a\": [[[{\"b\": \"\\\"]}\"}]]], \"digests\": {}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (same(bad[i]))
            fail_msg("bad[%zu] loaded", i);
    assert_false(same_both_ways("", 0));
    assert_false(same_both_ways(NULL, 0));
}

/* Every prefix of a document: never a crash, never a read past its end, always agreement. */
static void test_prefixes(void **state)
{
    (void)state;
    const char *doc = "{" META "\"digests\": {\"/a\": [\"" A40 "\"], \"/b\": [\"" B64 "\", \"" A40
                      "\"]}, " REST "}";
    size_t n = strlen(doc);
    for (size_t k = 0; k <= n; k++) {
        char *cut = malloc(k ? k : 1);   /* exactly k bytes: ASan catches a read past them */
        assert_non_null(cut);
        memcpy(cut, doc, k);
        same_both_ways(cut, k);
        free(cut);
    }
}

/* A larger table (more than one index growth of the cJSON path's sizing). */
static void test_many_paths(void **state)
{
    (void)state;
    size_t cap = 6000 * 120 + 4096, len = 0;
    char *doc = malloc(cap);
    assert_non_null(doc);
    len += (size_t)snprintf(doc + len, cap - len, "{" META "\"digests\": {");
    for (int i = 0; i < 6000; i++)
        len += (size_t)snprintf(doc + len, cap - len, "%s\"/usr/lib/f%d.so\": [\"%064x\"]", i ? ", " : "",
                                i % 5000, i * 7919);
    len += (size_t)snprintf(doc + len, cap - len, "}, " REST "}");
    assert_true(len < cap);
    assert_true(quick_takes(doc));
    assert_true(same(doc));
    qerr e = { 0 };
    qpolicy *p = qpolicy_from_json(doc, len, "p.json", &e);
    assert_non_null(p);
    assert_int_equal(qpolicy_count(p, QPOL_DIGESTS), 5000);
    uint8_t d[32] = { 0 };
    unsigned v = 5000u * 7919u;    /* /usr/lib/f0.so was given again last by entry 5000 */
    for (int i = 0; i < 4; i++)
        d[28 + i] = (uint8_t)(v >> (24 - 8 * i));
    assert_int_equal(qpolicy_lookup(p, QPOL_DIGESTS, "/usr/lib/f0.so", 14, d, 32), QPOL_MATCH);
    memset(d, 0, sizeof d);
    assert_int_equal(qpolicy_lookup(p, QPOL_DIGESTS, "/usr/lib/f0.so", 14, d, 32), QPOL_HASH_MISMATCH);
    qpolicy_free(p);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_documents), cmocka_unit_test(test_left_to_cjson),
        cmocka_unit_test(test_errors_same),     cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_many_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
