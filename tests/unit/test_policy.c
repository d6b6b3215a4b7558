/* Unit tests for common/policy*.c */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "hex.h"

#define H1 "da39a3ee5e6b4b0d3255bfef95601890afd80709"                          /* sha1 */
#define H2 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  /* sha256 */
#define H3 "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define H2U "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"

static const char EMPTY_POLICY[] =
    "{\"meta\": {\"version\": 1, \"generator\": 1}, \"release\": 0, \"digests\": {}, "
    "\"excludes\": [], \"keyrings\": {}, \"ima\": {\"ignored_keyrings\": [], \"log_hash_alg\": "
    "\"sha1\", \"dm_policy\": null}, \"ima-buf\": {}, \"verification-keys\": \"\"}";

static qpolicy *flat(const char *text)
{
    qerr e = { 0 };
    qpolicy *p = qpolicy_from_allowlist(text, strlen(text), "al.txt", &e);
    if (!p)
        fail_msg("allowlist failed: %s", e.msg);
    return p;
}

static qpolicy *rt(const char *text)
{
    qerr e = { 0 };
    qpolicy *p = qpolicy_from_json(text, strlen(text), "policy.json", &e);
    if (!p)
        fail_msg("policy failed: %s", e.msg);
    return p;
}

/* Fails to load; returns the message in a static buffer. */
static const char *rt_err(const char *text)
{
    static qerr e;
    memset(&e, 0, sizeof e);
    qpolicy *p = qpolicy_from_json(text, strlen(text), "policy.json", &e);
    if (p) {
        qpolicy_free(p);
        fail_msg("policy unexpectedly loaded: %s", text);
    }
    return e.msg;
}

static qpol_result look(const qpolicy *p, qpol_table t, const char *name, const char *hex)
{
    uint8_t d[64];
    long n = qhex_decode(hex, strlen(hex), d, sizeof d);
    assert_true(n > 0);
    return qpolicy_lookup(p, t, name, strlen(name), d, (size_t)n);
}

/* ---- flat allowlist ---- */

static void test_flat_basic(void **state)
{
    (void)state;
    qpolicy *p = flat(H2 "  /usr/bin/ls\n"
                      H1 " /usr/lib/with space/lib.so\n"
                      "\n   \n"
                      H3 "\t/usr/bin/ls\n"
                      "#\n"
                      "lonely-token\n"
                      H2U "  /upper\r\n"
                      H1 "  %keyring:.ima\n"
                      "   " H1 "   /indented  \n");
    assert_int_equal(qpolicy_generator(p), 3);
    assert_int_equal(qpolicy_count(p, QPOL_DIGESTS), 4);
    assert_int_equal(qpolicy_count(p, QPOL_KEYRINGS), 1);
    assert_int_equal(qpolicy_count(p, QPOL_IMABUF), 0);
    assert_int_equal(look(p, QPOL_DIGESTS, "/usr/bin/ls", H2), QPOL_MATCH);
    assert_int_equal(look(p, QPOL_DIGESTS, "/usr/bin/ls", H3), QPOL_MATCH);
    assert_int_equal(look(p, QPOL_DIGESTS, "/usr/bin/ls", H1), QPOL_HASH_MISMATCH);
    assert_int_equal(look(p, QPOL_DIGESTS, "/usr/lib/with space/lib.so", H1), QPOL_MATCH);
    assert_int_equal(look(p, QPOL_DIGESTS, "/upper", H2), QPOL_MATCH);      /* CRLF stripped */
    assert_int_equal(look(p, QPOL_DIGESTS, "/indented", H1), QPOL_MATCH);
    assert_int_equal(look(p, QPOL_DIGESTS, "/usr/bin/cat", H2), QPOL_NOT_FOUND);
    assert_int_equal(look(p, QPOL_KEYRINGS, ".ima", H1), QPOL_MATCH);
    assert_int_equal(look(p, QPOL_DIGESTS, "%keyring:.ima", H1), QPOL_NOT_FOUND);
    assert_int_equal(look(p, QPOL_IMABUF, ".ima", H1), QPOL_NOT_FOUND);
    assert_null(qpolicy_excludes(p));
    assert_null(qpolicy_keyring(p));
    assert_int_equal(qpolicy_log_hash_alg(p), QHASH_SHA1);
    qpolicy_free(p);
}

static void test_flat_errors(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *t1 = H2 "  /ok\n\n# some comment\n";
    assert_null(qpolicy_from_allowlist(t1, strlen(t1), "al.txt", &e));
    assert_string_equal(e.msg, "al.txt:3: not an allowlist line (expected '<hex digest>  <path>')");
    const char *t2 = H2 "  /ok\nsha256:" H2 "  /bad\n";
    assert_null(qpolicy_from_allowlist(t2, strlen(t2), "al.txt", &e));
    assert_non_null(strstr(e.msg, "al.txt:2: not an allowlist line"));
    const char *t3 = "0123456789abcdef0123456789abcdef0123456  /short\n";   /* 39 digits */
    assert_null(qpolicy_from_allowlist(t3, strlen(t3), "al.txt", &e));
    assert_non_null(strstr(e.msg, "al.txt:1:"));
    const char *t4 = "zz39a3ee5e6b4b0d3255bfef95601890afd80709  /nothex\n";
    assert_null(qpolicy_from_allowlist(t4, strlen(t4), "al.txt", &e));
    assert_non_null(strstr(e.msg, "al.txt:1: not an allowlist line"));
}

static void test_flat_empty_and_nolf(void **state)
{
    (void)state;
    qpolicy *p = flat("");
    assert_int_equal(qpolicy_count(p, QPOL_DIGESTS), 0);
    qpolicy_free(p);
    p = flat(H1 "  /no/newline");
    assert_int_equal(look(p, QPOL_DIGESTS, "/no/newline", H1), QPOL_MATCH);
    qpolicy_free(p);
}

/* ---- legacy JSON allowlist ---- */

static void test_legacy_json(void **state)
{
    (void)state;
    const char *t = "  {\"meta\": {\"version\": 1, \"generator\": \"x\"}, \"release\": 2,"
                    " \"hashes\": {\"/bin/a\": [\"" H1 "\", \"" H2U "\"]},"
                    " \"keyrings\": {\".ima\": [\"" H2 "\"]},"
                    " \"excludes\": [\"/tmp/.*\"],"
                    " \"ima\": {\"ignored_keyrings\": [\".builtin_trusted_keys\"], \"log_hash_alg\": \"sha256\"}}";
    qpolicy *p = flat(t);
    assert_int_equal(qpolicy_generator(p), 3);
    assert_int_equal(look(p, QPOL_DIGESTS, "/bin/a", H1), QPOL_MATCH);
    assert_int_equal(look(p, QPOL_DIGESTS, "/bin/a", H2), QPOL_MATCH);
    assert_int_equal(look(p, QPOL_KEYRINGS, ".ima", H2), QPOL_MATCH);
    assert_non_null(qpolicy_excludes(p));
    assert_int_equal(qpolicy_log_hash_alg(p), QHASH_SHA256);
    assert_true(qpolicy_keyring_ignored(p, ".builtin_trusted_keys", 21));
    assert_false(qpolicy_keyring_ignored(p, ".ima", 4));
    char *j = qpolicy_to_json(p, false, NULL);
    assert_non_null(j);
    assert_non_null(strstr(j, "\"release\": 2, \"digests\": {\"/bin/a\": [\"" H1 "\", \"" H2 "\"]}"));
    assert_non_null(strstr(j, "\"generator\": 3, \"timestamp\": \""));
    free(j);
    qpolicy_free(p);

    qerr e = { 0 };
    const char *bad = "{\"digests\": {}}";
    assert_null(qpolicy_from_allowlist(bad, strlen(bad), "a.json", &e));
    assert_non_null(strstr(e.msg, "a.json: "));
    const char *nohashes = "{\"meta\": {}}";
    assert_null(qpolicy_from_allowlist(nohashes, strlen(nohashes), "a.json", &e));
    assert_non_null(strstr(e.msg, "'hashes'"));
    const char *badhex = "{\"hashes\": {\"/x\": [\"nothex\"]}}";
    assert_null(qpolicy_from_allowlist(badhex, strlen(badhex), "a.json", &e));
    assert_non_null(strstr(e.msg, "a.json: 'nothex' is not a hex digest"));
}

/* ---- runtime policy JSON ---- */

/* A valid policy with one member replaced: key is a top-level key, val its JSON text (NULL =
 * leave it out). */
static char *with(const char *key, const char *val)
{
    static const char *const keys[] = { "meta", "release", "digests", "excludes", "keyrings",
                                        "ima", "ima-buf", "verification-keys" };
    static const char *const vals[] = {
        "{\"version\": 1, \"generator\": 2}", "0", "{\"/a\": [\"" H1 "\"]}", "[]", "{}",
        "{\"ignored_keyrings\": [], \"log_hash_alg\": \"sha1\", \"dm_policy\": null}", "{}", "\"\"",
    };
    char *out = malloc(4096);
    assert_non_null(out);
    size_t o = 0;
    out[o++] = '{';
    bool first = true;
    for (size_t i = 0; i < 8; i++) {
        const char *v = strcmp(keys[i], key) == 0 ? val : vals[i];
        if (!v)
            continue;
        o += (size_t)snprintf(out + o, 4096 - o, "%s\"%s\": %s", first ? "" : ", ", keys[i], v);
        first = false;
    }
    snprintf(out + o, 4096 - o, "}");
    return out;
}

static void expect_err(const char *key, const char *val, const char *want)
{
    char *t = with(key, val);
    const char *msg = rt_err(t);
    if (!strstr(msg, want))
        fail_msg("for %s=%s: got '%s', wanted '%s'", key, val ? val : "(none)", msg, want);
    if (strncmp(msg, "Runtime policy is malformatted: ", 32) != 0)
        fail_msg("missing prefix: %s", msg);
    free(t);
}

static void test_runtime_valid(void **state)
{
    (void)state;
    char *t = with("excludes", "[\"/tmp/.*\", \"/var/log/\"]");
    qpolicy *p = rt(t);
    free(t);
    assert_int_equal(qpolicy_generator(p), 2);
    assert_int_equal(look(p, QPOL_DIGESTS, "/a", H1), QPOL_MATCH);
    const qexcludes *x = qpolicy_excludes(p);
    assert_non_null(x);
    qexcludes_md *md = qexcludes_md_new();
    assert_true(qexcludes_match(x, md, "/tmp/z", 6));
    assert_false(qexcludes_match(x, md, "/a", 2));
    qexcludes_md_free(md);
    qpolicy_free(p);

    t = with("ima", "{\"ignored_keyrings\": [\"*\"], \"log_hash_alg\": \"sha512\", \"dm_policy\": null}");
    p = rt(t);
    free(t);
    assert_int_equal(qpolicy_log_hash_alg(p), QHASH_SHA512);
    assert_true(qpolicy_keyring_ignored(p, ".ima", 4));
    qpolicy_free(p);

    /* additional keys are allowed; repeated keys: the last one wins (Python's json) */
    t = with("digests", "{\"/a\": [\"" H1 "\"], \"/b\": [\"" H2 "\"], \"/a\": [\"" H3 "\"]}");
    char *t2 = malloc(strlen(t) + 32);
    sprintf(t2, "{\"extra\": [1, 2], %s", t + 1);
    p = rt(t2);
    free(t);
    free(t2);
    assert_int_equal(qpolicy_count(p, QPOL_DIGESTS), 2);
    assert_int_equal(look(p, QPOL_DIGESTS, "/a", H3), QPOL_MATCH);
    assert_int_equal(look(p, QPOL_DIGESTS, "/a", H1), QPOL_HASH_MISMATCH);
    qpolicy_free(p);
}

static void test_runtime_schema_errors(void **state)
{
    (void)state;
    const char *keys[] = { "meta", "release", "digests", "excludes", "keyrings", "ima", "ima-buf",
                           "verification-keys" };
    for (size_t i = 0; i < 8; i++) {
        char want[64];
        snprintf(want, sizeof want, "'%s' is a required property", keys[i]);
        expect_err(keys[i], NULL, want);
    }
    expect_err("meta", "[]", "[] is not of type 'object' (at meta)");
    expect_err("meta", "{\"generator\": 1}", "'version' is a required property (at meta)");
    expect_err("meta", "{\"version\": 1}", "'generator' is a required property (at meta)");
    expect_err("meta", "{\"version\": \"1\", \"generator\": 1}", "'1' is not of type 'integer' (at meta.version)");
    expect_err("meta", "{\"version\": 2, \"generator\": 1}", "unsupported version 2");
    expect_err("meta", "{\"version\": -1, \"generator\": 1}", "-1 is less than the minimum of 0");
    expect_err("meta", "{\"version\": 1, \"generator\": 4}", "4 is greater than the maximum of 3 (at meta.generator)");
    expect_err("meta", "{\"version\": 1, \"generator\": 1.5}", "1.5 is not of type 'integer'");
    expect_err("meta", "{\"version\": 1, \"generator\": true}", "True is not of type 'integer'");
    expect_err("meta", "{\"version\": 1, \"generator\": 1, \"timestamp\": 5}", "5 is not of type 'string' (at meta.timestamp)");
    expect_err("release", "-3", "-3 is less than the minimum of 0 (at release)");
    expect_err("release", "null", "None is not of type 'integer' (at release)");
    expect_err("digests", "[]", "[] is not of type 'object' (at digests)");
    expect_err("digests", "{\"/a\": \"" H1 "\"}", "is not of type 'array' (at digests['/a'])");
    expect_err("digests", "{\"/a\": []}", "[] is too short (at digests['/a'])");
    expect_err("digests", "{\"/a\": [\"" H1 "\", \"XYZ\"]}",
               "'XYZ' does not match '^[0-9a-f]{40,128}$' (at digests['/a'][1])");
    expect_err("digests", "{\"/a\": [\"" H2U "\"]}", "does not match '^[0-9a-f]{40,128}$'");
    expect_err("digests", "{\"/a\": [7]}", "7 is not of type 'string' (at digests['/a'][0])");
    expect_err("keyrings", "{\".ima\": [\"abc\"]}", "'abc' does not match '^[0-9a-f]{40,128}$' (at keyrings['.ima'][0])");
    expect_err("ima-buf", "{\"x\": []}", "[] is too short (at ima-buf['x'])");
    expect_err("excludes", "{}", "{} is not of type 'array' (at excludes)");
    expect_err("excludes", "[\"/ok\", 3]", "3 is not of type 'string' (at excludes[1])");
    expect_err("excludes", "[\"/ok\", \"/bad(\"]", "excludes:2: invalid exclude regex '/bad(': ");
    expect_err("excludes", "[\"/ok\", \"^(a+)+$\"]", "excludes:2: exclude regex '^(a+)+$' refused: it backtracks catastrophically");
    expect_err("ima", "{\"log_hash_alg\": \"sha1\", \"dm_policy\": null}", "'ignored_keyrings' is a required property (at ima)");
    expect_err("ima", "{\"ignored_keyrings\": [], \"dm_policy\": null}", "'log_hash_alg' is a required property (at ima)");
    expect_err("ima", "{\"ignored_keyrings\": [], \"log_hash_alg\": \"sha1\"}", "'dm_policy' is a required property (at ima)");
    expect_err("ima", "{\"ignored_keyrings\": [1], \"log_hash_alg\": \"sha1\", \"dm_policy\": null}", "1 is not of type 'string' (at ima.ignored_keyrings[0])");
    expect_err("ima", "{\"ignored_keyrings\": [], \"log_hash_alg\": \"md5\", \"dm_policy\": null}",
               "'md5' is not one of ['sha1', 'sha256', 'sha384', 'sha512'] (at ima.log_hash_alg)");
    expect_err("ima", "{\"ignored_keyrings\": [], \"log_hash_alg\": \"sha1\", \"dm_policy\": {}}", "{} is not of type 'null' (at ima.dm_policy)");
    expect_err("verification-keys", "[]", "[] is not of type 'string' (at verification-keys)");
    expect_err("verification-keys", "\"{not json\"", "verification-keys: ");

    assert_string_equal(rt_err("[1, 2]"), "Runtime policy is malformatted: [1, 2] is not of type 'object'");
    assert_non_null(strstr(rt_err("{\"meta\": "), "not valid JSON"));
    assert_non_null(strstr(rt_err("{} x"), "not valid JSON"));
    assert_non_null(strstr(rt_err(""), "Runtime policy is malformatted: "));
    assert_non_null(strstr(rt_err("{\"payload\": \"e30=\", \"payloadType\": \"application/vnd.keylime+json\", \"signatures\": []}"),
                           "DSSE"));
}

static void test_empty_policy_exact(void **state)
{
    (void)state;
    qpolicy *p = qpolicy_empty(NULL);
    assert_non_null(p);
    assert_int_equal(qpolicy_generator(p), 1);
    char *j = qpolicy_to_json(p, false, NULL);
    assert_string_equal(j, EMPTY_POLICY);
    free(j);
    j = qpolicy_to_json(p, true, NULL);
    assert_string_equal(j, EMPTY_POLICY);
    free(j);
    qpolicy_free(p);
    /* and it loads back to the same text */
    p = rt(EMPTY_POLICY);
    j = qpolicy_to_json(p, false, NULL);
    assert_string_equal(j, EMPTY_POLICY);
    free(j);
    qpolicy_free(p);
}

static void test_round_trip(void **state)
{
    (void)state;
    qpolicy *a = flat(H2 "  /b/x y\n" H1 "  /a\n" H3 "  /b/x y\n" H2 "  /b/x y\n" H1 "  %keyring:.ima\n");
    qerr e = { 0 };
    const char *ex = "# excludes\n/tmp/.*\n";
    assert_int_equal(qpolicy_add_excludes(a, ex, strlen(ex), "ex.txt", &e), 0);
    char *j1 = qpolicy_to_json(a, false, &e);
    assert_non_null(j1);
    assert_non_null(strstr(j1, "\"digests\": {\"/b/x y\": [\"" H2 "\", \"" H3 "\", \"" H2 "\"], \"/a\": [\"" H1 "\"]}, "
                               "\"excludes\": [\"/tmp/.*\"], \"keyrings\": {\".ima\": [\"" H1 "\"]}, "));
    qpolicy *b = rt(j1);
    char *j2 = qpolicy_to_json(b, false, &e);
    assert_string_equal(j1, j2);                              /* byte-identical round trip */
    assert_int_equal(look(b, QPOL_DIGESTS, "/b/x y", H3), QPOL_MATCH);
    assert_int_equal(look(b, QPOL_KEYRINGS, ".ima", H1), QPOL_MATCH);
    char *s = qpolicy_to_json(b, true, &e);
    assert_non_null(strstr(s, "\"digests\": {\"/a\": [\"" H1 "\"], \"/b/x y\": [\"" H3 "\", \"" H2 "\"]}"));
    free(j1);
    free(j2);
    free(s);
    qpolicy_free(a);
    qpolicy_free(b);
}

static void test_escaping(void **state)
{
    (void)state;
    /* json.dumps(ensure_ascii=True): \u escapes in lower case, surrogate pairs, short escapes */
    const char *t = "{\"meta\": {\"version\": 1, \"generator\": 0, \"timestamp\": \"t\\\"q\"}, \"release\": 5, "
                    "\"digests\": {\"/caf\\u00e9/\\ud83d\\ude00\\t\\u0001\\\\\\/x\\u007f\": [\"" H1 "\"]}, "
                    "\"excludes\": [\"^/a\\\\.b$\"], \"keyrings\": {}, \"ima\": {\"ignored_keyrings\": [\"\\u00e9\"], "
                    "\"log_hash_alg\": \"sha256\", \"dm_policy\": null}, \"ima-buf\": {}, \"verification-keys\": \"\"}";
    qpolicy *p = rt(t);
    assert_int_equal(look(p, QPOL_DIGESTS, "/caf\xc3\xa9/\xf0\x9f\x98\x80\t\x01\\/x\x7f", H1), QPOL_MATCH);
    char *j = qpolicy_to_json(p, false, NULL);
    const char *want = "{\"meta\": {\"version\": 1, \"generator\": 0, \"timestamp\": \"t\\\"q\"}, \"release\": 5, "
                       "\"digests\": {\"/caf\\u00e9/\\ud83d\\ude00\\t\\u0001\\\\/x\\u007f\": [\"" H1 "\"]}, "
                       "\"excludes\": [\"^/a\\\\.b$\"], \"keyrings\": {}, \"ima\": {\"ignored_keyrings\": [\"\\u00e9\"], "
                       "\"log_hash_alg\": \"sha256\", \"dm_policy\": null}, \"ima-buf\": {}, \"verification-keys\": \"\"}";
    assert_string_equal(j, want);
    free(j);
    qpolicy_free(p);
}

static void test_expected_repr(void **state)
{
    (void)state;
    qpolicy *p = flat(H1 "  /x\n" H2 "  /x\n");
    char out[256];
    size_t n = qpolicy_expected_repr(p, QPOL_DIGESTS, "/x", 2, out, sizeof out);
    assert_string_equal(out, "['" H1 "', '" H2 "']");
    assert_int_equal(n, strlen(out));
    n = qpolicy_expected_repr(p, QPOL_DIGESTS, "/nope", 5, out, sizeof out);
    assert_string_equal(out, "[]");
    char small[20];
    n = qpolicy_expected_repr(p, QPOL_DIGESTS, "/x", 2, small, sizeof small);
    assert_int_equal(n, sizeof small - 1);
    assert_string_equal(small, "['da39a3ee5e6b4b...");
    assert_int_equal(qpolicy_expected_repr(p, QPOL_DIGESTS, "/x", 2, small, 0), 0);
    qpolicy_free(p);
}

static void test_add_digest_and_excludes(void **state)
{
    (void)state;
    qerr e = { 0 };
    qpolicy *p = qpolicy_empty(&e);
    assert_non_null(p);
    char path[64];
    for (int i = 0; i < 5000; i++) {              /* grows past any initial index size */
        int n = snprintf(path, sizeof path, "/usr/lib/f%d", i);
        assert_int_equal(qpolicy_add_digest(p, QPOL_DIGESTS, path, (size_t)n, i % 2 ? H1 : H2U, &e), 0);
    }
    assert_int_equal(qpolicy_add_digest(p, QPOL_IMABUF, "buf", 3, H3, &e), 0);
    assert_int_equal(qpolicy_add_digest(p, QPOL_DIGESTS, "/x", 2, "abc", &e), -1);
    assert_int_equal(qpolicy_count(p, QPOL_DIGESTS), 5000);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(path, sizeof path, "/usr/lib/f%d", i);
        uint8_t d[32];
        qhex_decode(i % 2 ? H1 : H2, i % 2 ? 40 : 64, d, sizeof d);
        assert_int_equal(qpolicy_lookup(p, QPOL_DIGESTS, path, (size_t)n, d, i % 2 ? 20 : 32), QPOL_MATCH);
    }
    assert_int_equal(look(p, QPOL_IMABUF, "buf", H3), QPOL_MATCH);

    assert_int_equal(qpolicy_add_excludes(p, "/a\n", 3, "e1", &e), 0);
    const char *bad = "/b\n\n/c(\n";
    assert_int_equal(qpolicy_add_excludes(p, bad, strlen(bad), "e2", &e), -1);
    assert_non_null(strstr(e.msg, "e2:3: invalid exclude regex '/c('"));
    assert_int_equal(qexcludes_count(qpolicy_excludes(p)), 1);      /* unchanged */
    assert_int_equal(qpolicy_add_excludes(p, "/b\n", 3, "e3", &e), 0);
    assert_int_equal(qexcludes_count(qpolicy_excludes(p)), 2);
    char *j = qpolicy_to_json(p, false, NULL);
    assert_non_null(strstr(j, "\"excludes\": [\"/a\", \"/b\"]"));
    assert_non_null(strstr(j, "\"ima-buf\": {\"buf\": [\"" H3 "\"]}"));
    free(j);
    qpolicy_free(p);
}

static void test_odd_length_digest(void **state)
{
    (void)state;
    /* 41 digits pass the schema but can never match a real digest; kept verbatim. */
    const char *d41 = "da39a3ee5e6b4b0d3255bfef95601890afd807091";
    char *t = malloc(512);
    snprintf(t, 512, "{\"meta\": {\"version\": 1, \"generator\": 0}, \"release\": 0, \"digests\": {\"/o\": [\"%s\"]}, "
             "\"excludes\": [], \"keyrings\": {}, \"ima\": {\"ignored_keyrings\": [], \"log_hash_alg\": \"sha1\", "
             "\"dm_policy\": null}, \"ima-buf\": {}, \"verification-keys\": \"\"}", d41);
    qpolicy *p = rt(t);
    assert_int_equal(look(p, QPOL_DIGESTS, "/o", H1), QPOL_HASH_MISMATCH);
    char *j = qpolicy_to_json(p, false, NULL);
    assert_string_equal(j, t);
    free(j);
    free(t);
    qpolicy_free(p);
}

static void test_checksum(void **state)
{
    (void)state;
    char out[65];
    qpolicy_checksum("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    qpolicy_checksum("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_basic),
        cmocka_unit_test(test_flat_errors),
        cmocka_unit_test(test_flat_empty_and_nolf),
        cmocka_unit_test(test_legacy_json),
        cmocka_unit_test(test_runtime_valid),
        cmocka_unit_test(test_runtime_schema_errors),
        cmocka_unit_test(test_empty_policy_exact),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_expected_repr),
        cmocka_unit_test(test_add_digest_and_excludes),
        cmocka_unit_test(test_odd_length_digest),
        cmocka_unit_test(test_checksum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
