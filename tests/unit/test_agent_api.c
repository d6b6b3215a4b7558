/* Unit tests of the agent's request checks (agent/api.c), its config (agent/agent_config.c),
 * uuid handling (agent/identity.c) and the registration auth_tag (agent/register.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../agent/agent_config.h"
#include "../../agent/api.h"
#include "../../agent/identity.h"
#include "../../agent/register.h"

static void test_nonce(void **state)
{
    (void)state;
    qerr e;
    assert_int_equal(agent_api_check_nonce("abcDEF0123456789abcd", &e), 0);
    char n64[65];
    memset(n64, 'a', 64);
    n64[64] = '\0';
    assert_int_equal(agent_api_check_nonce(n64, &e), 0);
    char n65[66];
    memset(n65, 'a', 65);
    n65[65] = '\0';
    assert_int_equal(agent_api_check_nonce(n65, &e), -1);
    assert_non_null(strstr(e.msg, "too long"));
    assert_int_equal(agent_api_check_nonce("abc-def", &e), -1);
    assert_non_null(strstr(e.msg, "alphanumeric"));
    assert_int_equal(agent_api_check_nonce("", &e), -1);
    assert_int_equal(agent_api_check_nonce(NULL, &e), -1);
    assert_int_equal(e.code, 400);
}

static void test_mask(void **state)
{
    (void)state;
    qerr e;
    uint32_t m = 0;
    assert_int_equal(agent_api_parse_mask("0x400", &m, &e), 0);
    assert_int_equal(m, 0x400);
    assert_int_equal(agent_api_parse_mask("10401", &m, &e), 0);
    assert_int_equal(m, 0x10401);
    assert_int_equal(agent_api_parse_mask("0xFFFFFF", &m, &e), 0);
    assert_int_equal(m, 0xffffff);
    assert_int_equal(agent_api_parse_mask("0x1000000", &m, &e), -1);   /* PCR 24 */
    assert_int_equal(agent_api_parse_mask("0x", &m, &e), -1);
    assert_int_equal(agent_api_parse_mask("0xzz", &m, &e), -1);
    assert_int_equal(agent_api_parse_mask("0x123456789", &m, &e), -1);
    assert_int_equal(agent_api_parse_mask("", &m, &e), -1);
    assert_int_equal(agent_api_parse_mask(NULL, &m, &e), -1);
}

static void test_version(void **state)
{
    (void)state;
    qerr e;
    int minor = 0;
    assert_int_equal(agent_api_version("2.1", &minor, &e), 0);
    assert_int_equal(minor, 1);
    assert_int_equal(agent_api_version("2.6", &minor, &e), 0);
    assert_int_equal(minor, 6);
    assert_int_equal(agent_api_version("2.9", &minor, &e), -1);
    assert_string_equal(e.msg, "API version not supported: v2.9");
    assert_int_equal(agent_api_version("1.0", &minor, &e), -1);
    assert_int_equal(agent_api_version("", &minor, &e), -1);
}

static void test_config(void **state)
{
    (void)state;
    qerr e;
    const char *text = "[agent]\nport = 9100\ntpm_hash_alg = sha1\ntcti = swtpm:path=/tmp/x\n"
                       "trusted_client_ca = /etc/quince/cacert.pem\n";
    qconfig *c = qconfig_parse(text, strlen(text), "t.conf", &e);
    assert_non_null(c);
    agent_config a;
    assert_int_equal(agent_config_load(c, &a, &e), 0);
    assert_int_equal(a.port, 9100);
    assert_int_equal(a.contact_port, 9100);
    assert_int_equal(a.registrar_port, 8890);
    assert_int_equal(a.tpm_hash_alg, QHASH_SHA1);
    assert_string_equal(a.tcti, "swtpm:path=/tmp/x");
    assert_string_equal(a.tpm_signing_alg, "rsassa");
    assert_string_equal(a.uuid, "generate");
    assert_string_equal(a.trusted_client_ca, "/etc/quince/cacert.pem");
    assert_false(a.insecure);
    qconfig_free(c);

    /* insecure = true runs without a CA (plain HTTP, for debugging). */
    const char *plain = "[agent]\ninsecure = true\n";
    c = qconfig_parse(plain, strlen(plain), "t.conf", &e);
    assert_non_null(c);
    assert_int_equal(agent_config_load(c, &a, &e), 0);
    assert_true(a.insecure);
    assert_string_equal(a.trusted_client_ca, "");
    qconfig_free(c);

#define CA "trusted_client_ca = /ca.pem\n"
    const char *bad[] = {
        "[agent]\n" CA "port = 70000\n",
        "[agent]\n" CA "tpm_hash_alg = md5\n",
        "[agent]\n" CA "tpm_encryption_alg = ecc\ntpm_signing_alg = rsassa\n",
        "[agent]\n" CA "uuid = bad/uuid\n",
        "[agent]\n" CA "ek_handle = 0x1234\n",
        "[agent]\n" CA "log_level = loud\n",
        "[agent]\nport = 9100\n",                  /* no trusted_client_ca */
        "[agent]\n" CA "insecure = maybe\n",
    };
#undef CA
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = qconfig_parse(bad[i], strlen(bad[i]), "bad.conf", &e);
        assert_non_null(c);
        assert_int_equal(agent_config_load(c, &a, &e), -1);
        assert_non_null(strstr(e.msg, "[agent]"));
        qconfig_free(c);
    }
}

static void test_uuid(void **state)
{
    (void)state;
    char dir[] = "/tmp/quince-agent-id-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    qerr e;
    assert_int_equal(agent_state_dir_ensure(sub, &e), 0);
    /* A state_dir others can write is refused (issue 11, item 10). */
    assert_int_equal(chmod(sub, 0777), 0);
    assert_int_equal(agent_state_dir_ensure(sub, &e), -1);
    assert_non_null(strstr(e.msg, "writable by group or others (mode 0777)"));
    assert_int_equal(chmod(sub, 0700), 0);
    char u1[64], u2[64];
    assert_int_equal(agent_uuid_resolve("generate", sub, NULL, u1, sizeof u1, &e), 0);
    assert_int_equal(strlen(u1), 36);
    assert_int_equal(u1[14], '4');
    assert_int_equal(agent_uuid_resolve("generate", sub, NULL, u2, sizeof u2, &e), 0);
    assert_string_equal(u1, u2);     /* kept across restarts */
    assert_int_equal(agent_uuid_resolve("D432FBB3-D2F1-4A97-9EF7-75BD81C00000", sub, NULL, u2, sizeof u2, &e), 0);
    assert_string_equal(u2, "D432FBB3-D2F1-4A97-9EF7-75BD81C00000");   /* kept as configured */
    assert_int_equal(agent_uuid_resolve("hash_ek", sub, NULL, u2, sizeof u2, &e), -1);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_auth_tag(void **state)
{
    (void)state;
    /* HMAC-SHA384(key = "YWJj" (base64 of "abc"), msg = "agent-1"), computed independently with
     * python3: hmac.new(b"YWJj", b"agent-1", hashlib.sha384).hexdigest() */
    char tag[97];
    qerr e;
    assert_int_equal(agent_auth_tag((const uint8_t *)"abc", 3, "agent-1", tag, &e), 0);
    assert_int_equal(strlen(tag), 96);
    FILE *p = popen("printf agent-1 | openssl dgst -sha384 -hmac YWJj -r 2>/dev/null | cut -c1-96", "r");
    if (p) {
        char want[128] = "";
        if (fgets(want, sizeof want, p)) {
            want[strcspn(want, "\n")] = '\0';
            if (strlen(want) == 96)
                assert_string_equal(tag, want);
        }
        pclose(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonce),  cmocka_unit_test(test_mask), cmocka_unit_test(test_version),
        cmocka_unit_test(test_config), cmocka_unit_test(test_uuid), cmocka_unit_test(test_auth_tag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
