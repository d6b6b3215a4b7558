/* Unit tests of verifier/api_validate.c: the add-agent field checks (issue 11, item 8). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../verifier/api_validate.h"

#define D40 "0123456789abcdef0123456789abcdef01234567"
#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_host(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *good[] = { "127.0.0.1", "::1", "fe80::1", "agent-1.example.org", "localhost", "a", "x1" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (vapi_check_host("cloudagent_ip", good[i], &e) != 0)
            fail_msg("%s refused: %s", good[i], e.msg);
    const char *bad[] = { "", "127.0.0.1/evil#", "a@127.0.0.1", "127.0.0.1\r\nX: y", "[::1]", "1.2.3.999",
                          "-a.b", "a..b", "a_b", "a b", "fe80::1%eth0", "h\xc3\xa9", "127.0.0.1:80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (vapi_check_host("cloudagent_ip", bad[i], &e) != -1)
            fail_msg("'%s' accepted", bad[i]);
        assert_string_equal(e.msg, "cloudagent_ip must be an IP address or a host name");
    }
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(vapi_check_host("verifier_ip", longname, &e), -1);
    assert_int_equal(vapi_check_host("verifier_ip", NULL, &e), -1);
}

static void test_tpm_policy(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *good[] = { "{}", "{\"mask\": \"0x400\"}", "{\"mask\": \"ffffff\"}",
                           "{\"0\": \"" D40 "\", \"23\": [\"" D64 "\", \"" D40 "\"], \"mask\": \"0x800001\"}" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (vapi_check_tpm_policy(good[i], &e) != 0)
            fail_msg("%s refused: %s", good[i], e.msg);
    struct { const char *in, *msg; } bad[] = {
        { "[]", "tpm_policy must hold a JSON object" },
        { "{\"99\": \"" D40 "\"}", "Invalid tpm policy pcr number: 99 (PCRs are 0 to 23)" },
        { "{\"-1\": \"" D40 "\"}", "Invalid tpm policy pcr number: -1 (PCRs are 0 to 23)" },
        { "{\"24\": \"" D40 "\"}", "Invalid tpm policy pcr number: 24 (PCRs are 0 to 23)" },
        { "{\"07\": \"" D40 "\"}", "Invalid tpm policy pcr number: 07 (PCRs are 0 to 23)" },
        { "{\"pcr\": \"" D40 "\"}", "Invalid tpm policy pcr number: pcr (PCRs are 0 to 23)" },
        { "{\"mask\": \"0x1000000\"}", "tpm_policy: mask 0x1000000 selects PCRs above 23" },
        { "{\"mask\": \"0xffffffffff\"}", "tpm_policy: mask must be a string such as \"0x400\"" },
        { "{\"mask\": 1024}", "tpm_policy: mask must be a string such as \"0x400\"" },
        { "{\"mask\": \"0x\"}", "tpm_policy: mask must be a string such as \"0x400\"" },
        { "{\"15\": \"00\"}", NULL },
        { "{\"15\": []}", NULL },
        { "{\"15\": [1]}", NULL },
        { "{\"15\": {\"a\": 1}}", NULL },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (vapi_check_tpm_policy(bad[i].in, &e) != -1)
            fail_msg("%s accepted", bad[i].in);
        if (bad[i].msg)
            assert_string_equal(e.msg, bad[i].msg);
        else
            assert_non_null(strstr(e.msg, "tpm_policy: PCR 15: each value must be a hex digest"));
    }
    /* 65 digests for one PCR: over the limit. */
    char *big = malloc(65 * 44 + 64);
    assert_non_null(big);
    strcpy(big, "{\"1\": [");
    for (int i = 0; i < 65; i++)
        strcat(strcat(big, i ? ",\"" : "\""), D40 "\"");
    strcat(big, "]}");
    assert_int_equal(vapi_check_tpm_policy(big, &e), -1);
    free(big);
}

static void test_metadata(void **state)
{
    (void)state;
    qerr e = { 0 };
    assert_int_equal(vapi_check_metadata("{}", &e), 0);
    assert_int_equal(vapi_check_metadata("{\"a\": [1, 2]}", &e), 0);
    assert_int_equal(vapi_check_metadata("[1]", &e), -1);
    assert_string_equal(e.msg, "metadata must hold a JSON object");
    size_t n = 5u << 20;
    char *m = malloc(n + 16);
    assert_non_null(m);
    memcpy(m, "{\"k\": \"", 7);
    memset(m + 7, 'a', n);
    memcpy(m + 7 + n, "\"}", 3);
    assert_int_equal(vapi_check_metadata(m, &e), -1);
    assert_string_equal(e.msg, "metadata is larger than 65536 bytes");
    free(m);
}

static void test_algs(void **state)
{
    (void)state;
    qerr e = { 0 };
    cJSON *a = cJSON_Parse("[\"sha256\", \"sha1\", \"sm3_256\"]");
    assert_int_equal(vapi_check_algs("accept_tpm_hash_algs", a, &e), 0);
    assert_int_equal(vapi_check_algs("accept_tpm_signing_algs", a, &e), -1);
    assert_string_equal(e.msg, "accept_tpm_signing_algs: unknown algorithm 'sha256' (known: rsassa, rsapss, ecdsa, "
                               "ecdaa, ecschnorr, sm2)");
    cJSON_Delete(a);
    a = cJSON_Parse("[\"md5\"]");
    assert_int_equal(vapi_check_algs("accept_tpm_hash_algs", a, &e), -1);
    cJSON_Delete(a);
    a = cJSON_Parse("[\"ecc\", \"rsa2048\"]");
    assert_int_equal(vapi_check_algs("accept_tpm_encryption_algs", a, &e), 0);
    cJSON_Delete(a);
    a = cJSON_CreateArray();
    assert_int_equal(vapi_check_algs("accept_tpm_hash_algs", a, &e), -1);
    for (int i = 0; i < 100000; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString("sha256"));
    assert_int_equal(vapi_check_algs("accept_tpm_hash_algs", a, &e), -1);
    assert_string_equal(e.msg, "accept_tpm_hash_algs must be a list of 1 to 16 algorithm names");
    cJSON_Delete(a);
    assert_int_equal(vapi_check_algs("accept_tpm_hash_algs", NULL, &e), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_tpm_policy),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_algs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
