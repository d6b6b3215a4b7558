/* Unit tests for quince-tenant's keylime_tenant options (tenant/cli_opts.c) and the local parts of
 * the commands (tenant/cli_policy.c, tenant/cli_http.c): single-dash long options, defaults,
 * every refusal, --tpm_policy, the [tenant] section, the policy built from files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64.h"
#include "../../tenant/cli.h"
#include "policy.h"

#define MAXARGS 32

/* Parse a NULL-terminated argument list (argv[0] is added). */
static int parse_v(tcli_opts *o, qerr *e, const char *first, va_list ap)
{
    char *argv[MAXARGS + 2];
    int argc = 0;
    argv[argc++] = (char *)"quince-tenant";
    for (const char *a = first; a && argc < MAXARGS; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    argv[argc] = NULL;
    memset(e, 0, sizeof *e);
    return tcli_parse(argc, argv, o, e);
}

static int parse(tcli_opts *o, qerr *e, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    int rc = parse_v(o, e, first, ap);
    va_end(ap);
    return rc;
}

/* Expect a usage error (code 2) whose message contains want. */
static void refused(const char *want, const char *first, ...)
{
    tcli_opts o;
    qerr e;
    va_list ap;
    va_start(ap, first);
    int rc = parse_v(&o, &e, first, ap);
    va_end(ap);
    if (rc != -1 || !strstr(e.msg, want))
        fail_msg("wanted an error with '%s', got rc %d: '%s'", want, rc, e.msg);
    assert_int_equal(e.code, TCLI_EUSAGE);
    assert_null(strchr(e.msg, '\n'));
    tcli_opts_free(&o);
}

static int setup(void **state)
{
    (void)state;
    static const char *vars[] = { "QUINCE_CONFIG", "QUINCE_TENANT_VERIFIER_IP", "QUINCE_TENANT_VERIFIER_PORT",
                                  "QUINCE_TENANT_REGISTRAR_IP", "QUINCE_TENANT_REGISTRAR_PORT",
                                  "QUINCE_TENANT_ALLOWLIST", "QUINCE_TENANT_IMA_EXCLUDELIST",
                                  "QUINCE_TENANT_TPM_POLICY", "QUINCE_TENANT_ACCEPT_TPM_HASH_ALGS",
                                  "QUINCE_TENANT_ACCEPT_TPM_ENCRYPTION_ALGS", "QUINCE_TENANT_ACCEPT_TPM_SIGNING_ALGS",
                                  "QUINCE_TENANT_VERIFIER_ID", "QUINCE_TENANT_REQUEST_TIMEOUT_MS",
                                  "QUINCE_TENANT_CONNECT_TIMEOUT_MS", "QUINCE_TENANT_MAX_PAYLOAD_SIZE",
                                  "QUINCE_TENANT_VERIFY_TIMEOUT_MS" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    return 0;
}

/* ---- parsing ------------------------------------------------------------------------------------ */

static void test_defaults(void **state)
{
    (void)state;
    tcli_opts o;
    qerr e;
    assert_int_equal(parse(&o, &e, NULL), 0);
    assert_int_equal(o.cmd, TCMD_ADD);
    assert_string_equal(o.command, "add");
    assert_true(o.uuid_default);
    assert_string_equal(o.uuid, TCLI_DEFAULT_UUID);
    assert_null(o.cv_ip);
    assert_int_equal(o.cv_port, 0);
    assert_int_equal(o.reg_port, 0);
    assert_false(o.no_verifier_check);
    assert_false(o.help);
    assert_null(o.allowlist);
    assert_null(o.tpm_policy_obj);
    tcli_opts_free(&o);
}

static void test_single_dash_long(void **state)
{
    (void)state;
    tcli_opts o;
    qerr e;
    assert_int_equal(parse(&o, &e, "-vp", "9881", "-tp", "9002", "-rp", "9890", "-vi", "v2", "-nvc", "-c", "delete",
                           "-uuid", "ABC", "-allowlist", "a.txt", "-exclude", "x.txt", NULL), 0);
    assert_int_equal(o.cv_port, 9881);
    assert_int_equal(o.agent_port, 9002);
    assert_int_equal(o.reg_port, 9890);
    assert_string_equal(o.cv_id, "v2");
    assert_true(o.no_verifier_check);
    assert_int_equal(o.cmd, TCMD_DELETE);
    assert_string_equal(o.uuid, "ABC");   /* as given */
    assert_string_equal(o.allowlist, "a.txt");
    assert_string_equal(o.exclude, "x.txt");
    tcli_opts_free(&o);
    /* the double-dash forms and "=value" */
    assert_int_equal(parse(&o, &e, "--cvport=1", "--targetport", "2", "--registrarport", "3", "--cvid", "x",
                           "--no-verifier-check", "--command=status", NULL), 0);
    assert_int_equal(o.cv_port, 1);
    assert_int_equal(o.agent_port, 2);
    assert_int_equal(o.reg_port, 3);
    assert_true(o.no_verifier_check);
    assert_int_equal(o.cmd, TCMD_STATUS);
    tcli_opts_free(&o);
}

static void test_seed_options(void **state)
{
    (void)state;
    tcli_opts o;
    qerr e;
    assert_int_equal(parse(&o, &e, "-v", "127.0.0.1", "-t", "127.0.0.1", "--uuid",
                           "D432FBB3-D2F1-4A97-9EF7-75BD81C00000",
                           "--allowlist", "allowlist.txt", "--exclude", "excludes.txt", NULL), 0);
    assert_int_equal(o.cmd, TCMD_ADD);
    assert_string_equal(o.cv_ip, "127.0.0.1");
    assert_string_equal(o.agent_ip, "127.0.0.1");
    assert_string_equal(o.uuid, "D432FBB3-D2F1-4A97-9EF7-75BD81C00000");
    assert_false(o.uuid_default);
    tcli_opts_free(&o);
    assert_int_equal(parse(&o, &e, "-r", "reg.example", "--cv_targethost", "10.0.0.2", "-cstatus", NULL), 0);
    assert_string_equal(o.reg_ip, "reg.example");
    assert_string_equal(o.cv_agent_ip, "10.0.0.2");
    assert_int_equal(o.cmd, TCMD_STATUS);
    tcli_opts_free(&o);
}

static void test_payload_options(void **state)
{
    (void)state;
    tcli_opts o;
    qerr e;
    /* the seed's command with -f */
    assert_int_equal(parse(&o, &e, "-v", "127.0.0.1", "-t", "127.0.0.1", "--uuid",
                           "D432FBB3-D2F1-4A97-9EF7-75BD81C00000", "-f", "payload.zip", "--allowlist",
                           "allowlist.txt", "--exclude", "excludes.txt", NULL), 0);
    assert_string_equal(o.file, "payload.zip");
    assert_null(o.keyfile);
    assert_null(o.payload);
    assert_false(o.verify);
    tcli_opts_free(&o);
    assert_int_equal(parse(&o, &e, "-c", "update", "--file", "p.bin", "--verify", NULL), 0);
    assert_string_equal(o.file, "p.bin");
    assert_true(o.verify);
    assert_int_equal(o.cmd, TCMD_UPDATE);
    tcli_opts_free(&o);
    assert_int_equal(parse(&o, &e, "-k", "keys.txt", "-p", "sealed.b64", "-verify", NULL), 0);
    assert_string_equal(o.keyfile, "keys.txt");
    assert_string_equal(o.payload, "sealed.b64");
    assert_true(o.verify);
    tcli_opts_free(&o);
    assert_int_equal(parse(&o, &e, "--key", "keys.txt", NULL), 0);      /* a key without a payload */
    assert_string_equal(o.keyfile, "keys.txt");
    assert_null(o.payload);
    tcli_opts_free(&o);

    /* [tenant] max_payload_size and verify_timeout_ms */
    tcli_conf c;
    assert_int_equal(parse(&o, &e, NULL), 0);
    assert_int_equal(tcli_resolve(&o, NULL, &c, &e), 0);
    assert_int_equal(c.max_payload_size, 1048576);
    assert_int_equal(c.verify_timeout_ms, 30000);
    tcli_conf_free(&c);
    const char *text = "[tenant]\nmax_payload_size = 4096\nverify_timeout_ms = 1500\n";
    qconfig *cfg = qconfig_parse(text, strlen(text), "t.conf", &e);
    assert_non_null(cfg);
    assert_int_equal(tcli_resolve(&o, cfg, &c, &e), 0);
    assert_int_equal(c.max_payload_size, 4096);
    assert_int_equal(c.verify_timeout_ms, 1500);
    tcli_conf_free(&c);
    qconfig_free(cfg);
    text = "[tenant]\nverify_timeout_ms = 0\n";
    cfg = qconfig_parse(text, strlen(text), "t.conf", &e);
    assert_non_null(cfg);
    assert_int_equal(tcli_resolve(&o, cfg, &c, &e), -1);
    assert_int_equal(e.code, TCLI_EUSAGE);
    assert_non_null(strstr(e.msg, "verify_timeout_ms"));
    tcli_conf_free(&c);
    qconfig_free(cfg);
    tcli_opts_free(&o);
}

static void test_commands(void **state)
{
    (void)state;
    static const struct { const char *name; tcli_cmd cmd; bool dep; } C[] = {
        {"add", TCMD_ADD, false}, {"update", TCMD_UPDATE, false}, {"delete", TCMD_DELETE, false},
        {"status", TCMD_STATUS, false}, {"cvstatus", TCMD_CVSTATUS, false}, {"cvlist", TCMD_CVLIST, false},
        {"bulkinfo", TCMD_BULKINFO, false}, {"reglist", TCMD_REGLIST, false}, {"regstatus", TCMD_REGSTATUS, false},
        {"regdelete", TCMD_REGDELETE, false}, {"reactivate", TCMD_REACTIVATE, false},
        {"listruntimepolicy", TCMD_LISTPOLICY, false}, {"showallowlist", TCMD_SHOWPOLICY, true},
        {"deleteallowlist", TCMD_DELETEPOLICY, true}, {"addmbpolicy", TCMD_ADDMB, false},
        {"showmbpolicy", TCMD_SHOWMB, false}, {"deletembpolicy", TCMD_DELETEMB, false},
        {"updatembpolicy", TCMD_UPDATEMB, false}, {"listmbpolicy", TCMD_LISTMB, false},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        tcli_opts o;
        qerr e;
        assert_int_equal(parse(&o, &e, "-c", C[i].name, "--runtime-policy-name", "p", NULL), 0);
        assert_int_equal(o.cmd, C[i].cmd);
        assert_int_equal(o.deprecated, C[i].dep);
        tcli_opts_free(&o);
    }
    assert_string_equal(tcli_cmd_name(TCMD_SHOWPOLICY), "showruntimepolicy");
    tcli_opts o;
    qerr e;
    assert_int_equal(parse(&o, &e, "-c", "addallowlist", "--allowlist-name", "n", "--allowlist", "a", NULL), 0);
    assert_int_equal(o.cmd, TCMD_ADDPOLICY);
    assert_true(o.deprecated);
    assert_string_equal(o.runtime_policy_name, "n");
    tcli_opts_free(&o);
    refused("unknown command 'list'", "-c", "list", NULL);
    assert_int_equal(parse(&o, &e, "--mb-policy", "ref.json", "--mb-policy-name", "mb1", NULL), 0);
    assert_string_equal(o.mb_policy, "ref.json");
    assert_string_equal(o.mb_policy_name, "mb1");
    tcli_opts_free(&o);
    assert_int_equal(parse(&o, &e, "--mb_refstate", "default", NULL), 0);
    assert_string_equal(o.mb_policy, "default");
    tcli_opts_free(&o);
    refused("invalid policy name", "--mb-policy-name", "a/b", NULL);
}

static void test_uuid(void **state)
{
    (void)state;
    char out[TCLI_ID_MAX + 1];
    qerr e;
    assert_int_equal(tcli_uuid_check("Agent_1.x-Y", out, sizeof out, &e), 0);
    assert_string_equal(out, "Agent_1.x-Y");     /* as given */
    assert_int_equal(tcli_uuid_check("", out, sizeof out, &e), -1);
    assert_int_equal(tcli_uuid_check("a/b", out, sizeof out, &e), -1);
    assert_int_equal(tcli_uuid_check("caf\xc3\xa9", out, sizeof out, &e), -1);
    char long_id[TCLI_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(tcli_uuid_check(long_id, out, sizeof out, &e), -1);
    long_id[TCLI_ID_MAX] = '\0';
    assert_int_equal(tcli_uuid_check(long_id, out, sizeof out, &e), 0);
    refused("invalid agent uuid 'a b'", "-u", "a b", NULL);
}

static void test_option_errors(void **state)
{
    (void)state;
    refused("--exclude cannot be used without an --allowlist", "--exclude", "x", NULL);
    refused("--exclude cannot be used without an --allowlist", "--exclude", "default", NULL);
    refused("cannot be used together", "--allowlist", "a", "--runtime-policy", "b", NULL);
    refused("--runtime-policy-checksum needs --runtime-policy", "--runtime-policy-checksum",
            "0000000000000000000000000000000000000000000000000000000000000000", NULL);
    refused("SHA-256 digest", "--runtime-policy", "p", "--runtime-policy-checksum", "abc", NULL);
    refused("-f/--file and -k/--key cannot be used together", "-f", "payload.txt", "-k", "k", NULL);
    refused("-p/--payload needs -k/--key", "-p", "p", NULL);
    refused("-p/--payload needs -k/--key", "--file", "x", "-p", "p", NULL);
    refused("--verify checks a delivered payload key: it needs -f/--file or -k/--key", "--verify", NULL);
    refused("delivers a payload with -c add or -c update, not -c status", "-c", "status", "-f", "x", NULL);
    refused("delivers a payload with -c add or -c update, not -c delete", "-k", "k", "-c", "delete", NULL);
    refused("-f/--file needs a file name", "-f", "", NULL);
    refused("certificate packages (--cert) are not supported", "--cert", "default", NULL);
    refused("certificate packages (--include) are not supported", "--include", "d", NULL);
    refused("--runtime-policy-sig-key needs --runtime-policy", "--runtime-policy-sig-key", "k.pem", NULL);
    refused("only http:// and https:// URLs", "--signature-verification-key-url", "file:///etc/k.pem", NULL);
    refused("goes with -c add or -c update", "-c", "status", "--signature-verification-key", "k.pem", NULL);
    refused("GPG-signed IMA signature keys", "--signature-verification-key-sig", "k.sig", NULL);
    refused("not supported", "--runtime-policy-url", "http://x", NULL);
    refused("unknown option '--bogus'", "--bogus", NULL);
    refused("unknown option '-x'", "-x", NULL);
    refused("is ambiguous", "--t", "x", NULL);
    refused("does not take a value", "--nvc=1", NULL);
    refused("option '-c' needs a value", "-c", NULL);
    refused("option '--uuid' needs a value", "--uuid", NULL);
    refused("unexpected argument 'extra'", "-c", "status", "extra", NULL);
    refused("invalid port '0' for -vp/--cvport", "-vp", "0", NULL);
    refused("invalid port '65536' for -rp/--registrarport", "-rp", "65536", NULL);
    refused("invalid port '12x' for -tp/--targetport", "-tp", "12x", NULL);
    refused("invalid port '-1'", "-vp", "-1", NULL);
    refused("invalid host", "-v", "a/b", NULL);
    refused("invalid host", "-t", "", NULL);
    refused("invalid verifier id", "-vi", "a b", NULL);
    refused("needs a file name", "--allowlist", "", NULL);
    refused("invalid policy name", "--runtime-policy-name", "a/b", NULL);
    refused("--runtime-policy-name is required to add a runtime policy", "-c", "addruntimepolicy", "--allowlist",
            "a", NULL);
    refused("--allowlist or --runtime-policy is required to add a runtime policy", "-c", "addruntimepolicy",
            "--runtime-policy-name", "n", NULL);
    refused("--runtime-policy-name is required to update", "-c", "updateruntimepolicy", "--runtime-policy", "p", NULL);
    refused("--runtime-policy-name is required to show", "-c", "showruntimepolicy", NULL);
    refused("--runtime-policy-name is required to delete", "-c", "deleteallowlist", NULL);
}

static void test_help(void **state)
{
    (void)state;
    tcli_opts o;
    qerr e;
    assert_int_equal(parse(&o, &e, "-c", "status", "--help", NULL), 0);
    assert_true(o.help);
    tcli_opts_free(&o);
    /* help wins over an option error anywhere on the line */
    assert_int_equal(parse(&o, &e, "-f", "x", "-h", NULL), 0);
    assert_true(o.help);
    tcli_opts_free(&o);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    tenant_cli_usage(f);
    fclose(f);
    static const char *must[] = { "-vp, --cvport", "-nvc", "--allowlist FILE|default", "--exclude FILE|default",
                                  "--runtime-policy-name", "--tpm_policy", "not case-sensitive", "create-allowlist",
                                  "check-log", "addruntimepolicy", "--mb-policy FILE|default", "addmbpolicy",
                                  "Exit status" };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (!strstr(buf, must[i]))
            fail_msg("--help lacks '%s'", must[i]);
    free(buf);
}

/* ---- --tpm_policy ------------------------------------------------------------------------------- */

static void test_tpm_policy(void **state)
{
    (void)state;
    static const char D1[] = "ABCDEF0123456789ABCDEF0123456789ABCDEF01";
    cJSON *p;
    uint32_t mask;
    qerr e;
    char text[512];
    snprintf(text, sizeof text, "{\"15\": \"%s\", \"07\": [\"%s\", \"%s\"]}", D1, D1, D1);
    assert_int_equal(tcli_tpm_policy_parse(text, &p, &mask, &e), 0);
    assert_int_equal(mask, (1u << 15) | (1u << 7));
    const cJSON *l15 = cJSON_GetObjectItemCaseSensitive(p, "15");
    assert_true(cJSON_IsArray(l15));
    assert_int_equal(cJSON_GetArraySize(l15), 1);
    assert_string_equal(cJSON_GetArrayItem(l15, 0)->valuestring, "abcdef0123456789abcdef0123456789abcdef01");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p, "7")), 2);
    cJSON_Delete(p);

    assert_int_equal(tcli_tpm_policy_parse("{}", &p, &mask, &e), 0);
    assert_int_equal(mask, 0);
    cJSON_Delete(p);

    static const struct { const char *text, *want; } BAD[] = {
        {"{\"10\": \"00\"}", "PCR 10 is used by IMA"},
        {"{\"16\": [\"00\"]}", "PCR 16"},
        {"{\"24\": \"00\"}", "invalid PCR number '24'"},
        {"{\"mask\": \"0x400\"}", "invalid PCR number 'mask'"},
        {"{\"-1\": \"00\"}", "invalid PCR number '-1'"},
        {"{\"100\": \"00\"}", "invalid PCR number '100'"},
        {"{\"1\": \"xyz\"}", "hex digest"},
        {"{\"1\": \"abcd\"}", "hex digest"},
        {"{\"1\": 5}", "hex digest"},
        {"{\"1\": [5]}", "hex digest"},
        {"{\"1\": []}", "no digest given"},
        {"[1, 2]", "must be a JSON object"},
        {"not json", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        memset(&e, 0, sizeof e);
        if (tcli_tpm_policy_parse(BAD[i].text, &p, &mask, &e) != -1 || !strstr(e.msg, BAD[i].want))
            fail_msg("%s: wanted '%s', got '%s'", BAD[i].text, BAD[i].want, e.msg);
        assert_null(p);
        assert_int_equal(e.code, TCLI_EUSAGE);
    }
    snprintf(text, sizeof text, "{\"5\": \"%s\", \"05\": \"%s\"}", D1, D1);
    assert_int_equal(tcli_tpm_policy_parse(text, &p, &mask, &e), -1);
    assert_non_null(strstr(e.msg, "given twice"));

    /* through the option, and the text sent with the mask */
    tcli_opts o;
    snprintf(text, sizeof text, "{\"15\": \"%s\"}", D1);
    assert_int_equal(parse(&o, &e, "--tpm_policy", text, NULL), 0);
    assert_int_equal(o.tpm_mask, 1u << 15);
    tcli_conf c;
    assert_int_equal(tcli_resolve(&o, NULL, &c, &e), 0);
    char *s = tcli_tpm_policy_text(&c, true);
    cJSON *j = cJSON_Parse(s);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "mask")->valuestring, "0x8400");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "15"));
    cJSON_Delete(j);
    cJSON_free(s);
    s = tcli_tpm_policy_text(&c, false);
    assert_non_null(strstr(s, "\"mask\":\"0x8000\""));
    cJSON_free(s);
    tcli_conf_free(&c);
    tcli_opts_free(&o);
    refused("PCR 10", "--tpm_policy", "{\"10\": \"00\"}", NULL);
}

/* ---- configuration ------------------------------------------------------------------------------ */

static void test_resolve_defaults(void **state)
{
    (void)state;
    tcli_opts o;
    tcli_conf c;
    qerr e;
    assert_int_equal(parse(&o, &e, NULL), 0);
    assert_int_equal(tcli_resolve(&o, NULL, &c, &e), 0);
    assert_string_equal(c.cv_ip, "127.0.0.1");
    assert_int_equal(c.cv_port, 8881);
    assert_string_equal(c.reg_ip, "127.0.0.1");
    assert_int_equal(c.reg_port, 8891);             /* the registrar's TLS port */
    assert_false(c.insecure);
    assert_string_equal(c.ca_cert, "/var/lib/quince/tls/cacert.pem");
    assert_string_equal(c.client_cert, "/var/lib/quince/tls/tenant-cert.pem");
    assert_string_equal(c.client_key, "/var/lib/quince/tls/tenant-key.pem");
    assert_string_equal(c.cv_id, "default");
    assert_null(c.allowlist);
    assert_int_equal(c.hash.n, 3);
    assert_string_equal(c.hash.name[0], "sha512");
    assert_string_equal(c.hash.name[2], "sha256");
    assert_int_equal(c.enc.n, 2);
    assert_string_equal(c.enc.name[0], "ecc");
    assert_int_equal(c.sign.n, 2);
    assert_string_equal(c.sign.name[0], "ecschnorr");
    assert_string_equal(c.sign.name[1], "rsassa");
    assert_true(c.timeout_ms > 0 && c.connect_ms > 0);
    char *s = tcli_tpm_policy_text(&c, false);
    assert_string_equal(s, "{\"mask\":\"0x0\"}");
    cJSON_free(s);
    s = tcli_tpm_policy_text(&c, true);
    assert_string_equal(s, "{\"mask\":\"0x400\"}");
    cJSON_free(s);
    tcli_conf_free(&c);
    tcli_opts_free(&o);
}

static void test_resolve_config(void **state)
{
    (void)state;
    const char *text = "[tenant]\nverifier_ip = 10.0.0.1\nverifier_port = 9881\nregistrar_ip = 10.0.0.2\n"
                       "registrar_port = 9890\nallowlist = /etc/al.txt\nima_excludelist = /etc/ex.txt\n"
                       "accept_tpm_hash_algs = ['sha256', 'SHA1']\naccept_tpm_signing_algs = rsassa, ecdsa\n"
                       "tpm_policy = {\"0\": \"0000000000000000000000000000000000000000\"}\n";
    qerr e;
    qconfig *cfg = qconfig_parse(text, strlen(text), "t.conf", &e);
    assert_non_null(cfg);
    tcli_opts o;
    tcli_conf c;
    assert_int_equal(parse(&o, &e, "--allowlist", "default", "--exclude", "default", NULL), 0);
    assert_int_equal(tcli_resolve(&o, cfg, &c, &e), 0);
    assert_string_equal(c.cv_ip, "10.0.0.1");
    assert_int_equal(c.cv_port, 9881);
    assert_string_equal(c.reg_ip, "10.0.0.2");
    assert_int_equal(c.reg_port, 9890);
    assert_string_equal(c.allowlist, "/etc/al.txt");
    assert_string_equal(c.exclude, "/etc/ex.txt");
    assert_int_equal(c.hash.n, 2);
    assert_string_equal(c.hash.name[1], "sha1");
    assert_string_equal(c.sign.name[1], "ecdsa");
    assert_int_equal(c.tpm_mask, 1);
    tcli_conf_free(&c);
    tcli_opts_free(&o);
    /* options win over the file */
    assert_int_equal(parse(&o, &e, "-v", "h", "-vp", "1", "-r", "r", "-rp", "2", "--allowlist", "mine.txt", NULL), 0);
    assert_int_equal(tcli_resolve(&o, cfg, &c, &e), 0);
    assert_string_equal(c.cv_ip, "h");
    assert_int_equal(c.cv_port, 1);
    assert_string_equal(c.reg_ip, "r");
    assert_int_equal(c.reg_port, 2);
    assert_string_equal(c.allowlist, "mine.txt");
    assert_null(c.exclude);
    tcli_conf_free(&c);
    tcli_opts_free(&o);
    qconfig_free(cfg);

    /* TLS files: tls_dir, or one by one; --insecure / [tenant] insecure: plain HTTP, port 8890. */
    const char *tls = "[tenant]\ntls_dir = /srv/tls\nclient_key = /k.pem\n";
    cfg = qconfig_parse(tls, strlen(tls), "t.conf", &e);
    assert_non_null(cfg);
    assert_int_equal(parse(&o, &e, NULL), 0);
    assert_int_equal(tcli_resolve(&o, cfg, &c, &e), 0);
    assert_string_equal(c.ca_cert, "/srv/tls/cacert.pem");
    assert_string_equal(c.client_cert, "/srv/tls/tenant-cert.pem");
    assert_string_equal(c.client_key, "/k.pem");
    assert_int_equal(tcli_tls_check(&c, &e), -1);      /* no such files */
    assert_int_equal(e.code, TCLI_EUSAGE);
    assert_non_null(strstr(e.msg, "/srv/tls/cacert.pem"));
    tcli_conf_free(&c);
    tcli_opts_free(&o);
    assert_int_equal(parse(&o, &e, "--insecure", NULL), 0);
    assert_true(o.insecure);
    assert_int_equal(tcli_resolve(&o, cfg, &c, &e), 0);
    assert_true(c.insecure);
    assert_int_equal(c.reg_port, 8890);
    assert_int_equal(tcli_tls_check(&c, &e), 0);
    tcli_conf_free(&c);
    tcli_opts_free(&o);
    qconfig_free(cfg);
    const char *ins = "[tenant]\ninsecure = true\n";
    cfg = qconfig_parse(ins, strlen(ins), "t.conf", &e);
    assert_int_equal(parse(&o, &e, NULL), 0);
    assert_int_equal(tcli_resolve(&o, cfg, &c, &e), 0);
    assert_true(c.insecure);
    tcli_conf_free(&c);
    tcli_opts_free(&o);
    qconfig_free(cfg);

    /* 'default' without the key; bad values */
    static const struct { const char *conf, *want; } BAD[] = {
        {"[tenant]\n", "[tenant] allowlist is not set"},
        {"[tenant]\nverifier_port = 70000\n", "verifier_port"},
        {"[tenant]\naccept_tpm_hash_algs = md5\n", "unknown algorithm 'md5'"},
        {"[tenant]\naccept_tpm_signing_algs = ,\n", "no algorithm given"},
        {"[tenant]\ntpm_policy = {\"10\": \"00\"}\n", "PCR 10"},
        {"[tenant]\nrequest_timeout_ms = x\n", "request_timeout_ms"},
        {"[tenant]\ninsecure = sometimes\n", "insecure"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        cfg = qconfig_parse(BAD[i].conf, strlen(BAD[i].conf), "t.conf", &e);
        assert_non_null(cfg);
        assert_int_equal(i == 0 ? parse(&o, &e, "--allowlist", "default", NULL) : parse(&o, &e, NULL), 0);
        memset(&e, 0, sizeof e);
        if (tcli_resolve(&o, cfg, &c, &e) != -1 || !strstr(e.msg, BAD[i].want))
            fail_msg("%s: wanted '%s', got '%s'", BAD[i].conf, BAD[i].want, e.msg);
        assert_int_equal(e.code, TCLI_EUSAGE);
        tcli_conf_free(&c);
        tcli_opts_free(&o);
        qconfig_free(cfg);
    }
}

static void test_algs(void **state)
{
    (void)state;
    static const char *const known[] = {"rsa", "ecc", NULL};
    tcli_algs a;
    qerr e;
    assert_int_equal(tcli_algs_parse("[\"RSA\", 'ecc']", known, "x", &a, &e), 0);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.name[0], "rsa");
    assert_int_equal(tcli_algs_parse("rsa rsa rsa rsa rsa rsa rsa rsa rsa", known, "x", &a, &e), -1);
    assert_non_null(strstr(e.msg, "more than"));
    assert_int_equal(tcli_algs_parse("rsa,dsa", known, "x", &a, &e), -1);
    assert_non_null(strstr(e.msg, "x: unknown algorithm 'dsa'"));
}

/* ---- policy files -------------------------------------------------------------------------------- */

static char g_dir[64];

static int dir_setup(void **state)
{
    setup(state);
    snprintf(g_dir, sizeof g_dir, "/tmp/test_tenant_opts.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int dir_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file_n(const char *name, const void *data, size_t n)
{
    static char path[4][128];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 128, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return p;
}

static const char *write_file(const char *name, const char *text)
{
    return write_file_n(name, text, strlen(text));
}

static int load(const char *allow, const char *excl, const char *rp, const char *sum, tcli_policy *p, qerr *e)
{
    tcli_opts o;
    memset(&o, 0, sizeof o);
    o.runtime_policy = rp;
    o.runtime_policy_checksum = sum;
    tcli_conf c;
    memset(&c, 0, sizeof c);
    c.allowlist = allow;
    c.exclude = excl;
    memset(e, 0, sizeof *e);
    return tcli_policy_load(&c, &o, p, e);
}

static void test_policy_files(void **state)
{
    (void)state;
    static const char D[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char text[1024];
    snprintf(text, sizeof text, "%s  boot_aggregate\n%s  /usr/bin/a\n%s  /usr/bin/b\n%s  /usr/bin/b\n", D, D, D, D);
    const char *al = write_file("allow.txt", text);
    const char *ex = write_file("ex.txt", "# comment\n/tmp/.*\n\n/var/log/.*\n");
    tcli_policy p;
    qerr e;
    assert_int_equal(load(al, ex, NULL, NULL, &p, &e), 0);
    assert_true(p.present);
    assert_int_equal(p.paths, 3);
    assert_int_equal(p.excludes, 2);
    size_t n;
    uint8_t *json = qb64_decode_alloc(p.b64, strlen(p.b64), 1 << 20, &n);
    assert_non_null(json);
    assert_int_equal(n, p.json_len);
    cJSON *j = cJSON_ParseWithLength((const char *)json, n);
    assert_non_null(j);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "meta");
    const cJSON *digests = cJSON_GetObjectItemCaseSensitive(j, "digests");
    const cJSON *excludes = cJSON_GetObjectItemCaseSensitive(j, "excludes");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(meta, "generator")->valueint, 3);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(digests, "/usr/bin/b")), 2);
    assert_string_equal(cJSON_GetArrayItem(excludes, 1)->valuestring, "/var/log/.*");
    cJSON_Delete(j);
    /* the same policy as a runtime-policy file, with its checksum */
    const char *rp = write_file_n("rp.json", json, n);
    char sum[65];
    qpolicy_checksum((const char *)json, n, sum);
    free(json);
    tcli_policy_free(&p);
    assert_int_equal(load(NULL, NULL, rp, sum, &p, &e), 0);
    assert_true(p.present);
    assert_int_equal(p.paths, 3);
    tcli_policy_free(&p);
    sum[0] = sum[0] == '0' ? '1' : '0';
    assert_int_equal(load(NULL, NULL, rp, sum, &p, &e), -1);
    assert_non_null(strstr(e.msg, "does not match"));
    assert_int_equal(e.code, TCLI_EUSAGE);

    /* errors: junk line, bad regex, missing file, not a policy, none given */
    snprintf(text, sizeof text, "%s  /usr/bin/a\njunk line here\n", D);
    const char *junk = write_file("junk.txt", text);
    assert_int_equal(load(junk, NULL, NULL, NULL, &p, &e), -1);
    assert_non_null(strstr(e.msg, "junk.txt:2:"));
    assert_int_equal(e.code, TCLI_EUSAGE);
    const char *bad = write_file("bad.txt", "/ok\n/bad/([x\n");
    assert_int_equal(load(al, bad, NULL, NULL, &p, &e), -1);
    assert_non_null(strstr(e.msg, "bad.txt:2: invalid exclude regex"));
    assert_int_equal(load("/nonexistent/allow.txt", NULL, NULL, NULL, &p, &e), -1);
    assert_non_null(strstr(e.msg, "cannot read allowlist /nonexistent/allow.txt"));
    assert_int_equal(e.code, TCLI_EUSAGE);
    assert_int_equal(load(NULL, NULL, al, NULL, &p, &e), -1);
    assert_non_null(strstr(e.msg, "runtime policy"));
    assert_int_equal(load(NULL, NULL, NULL, NULL, &p, &e), 0);
    assert_false(p.present);
    tcli_policy_free(&p);
}

/* ---- small helpers ------------------------------------------------------------------------------- */

static void test_helpers(void **state)
{
    (void)state;
    char base[128], where[128];
    tcli_base_url("127.0.0.1", 8881, base, sizeof base, where, sizeof where);
    assert_string_equal(base, "http://127.0.0.1:8881");
    assert_string_equal(where, "127.0.0.1:8881");
    tcli_base_url("::1", 8890, base, sizeof base, where, sizeof where);
    assert_string_equal(base, "http://[::1]:8890");
    tcli_base_url_tls(true, "::1", 8891, base, sizeof base, where, sizeof where);
    assert_string_equal(base, "https://[::1]:8891");
    assert_string_equal(where, "[::1]:8891");
    assert_string_equal(tcli_state_name(3), "Get Quote");
    assert_string_equal(tcli_state_name(9), "Invalid Quote");
    assert_string_equal(tcli_state_name(10), "Tenant Quote Failed");
    assert_string_equal(tcli_state_name(0), "Registered");
    assert_string_equal(tcli_state_name(11), "Unknown");
    assert_string_equal(tcli_server_name(TSRV_REGISTRAR), "registrar");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_single_dash_long, setup),
        cmocka_unit_test_setup(test_seed_options, setup),
        cmocka_unit_test_setup(test_payload_options, setup),
        cmocka_unit_test_setup(test_commands, setup),
        cmocka_unit_test_setup(test_uuid, setup),
        cmocka_unit_test_setup(test_option_errors, setup),
        cmocka_unit_test_setup(test_help, setup),
        cmocka_unit_test_setup(test_tpm_policy, setup),
        cmocka_unit_test_setup(test_resolve_defaults, setup),
        cmocka_unit_test_setup(test_resolve_config, setup),
        cmocka_unit_test_setup(test_algs, setup),
        cmocka_unit_test_setup_teardown(test_policy_files, dir_setup, dir_teardown),
        cmocka_unit_test_setup(test_helpers, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
