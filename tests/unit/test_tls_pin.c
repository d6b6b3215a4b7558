/* test_tls_pin.c — pinning a peer's own certificate (common/tls_pin.c) end to end with the HTTP
 * client and server: the pinned agent answers; another certificate at the same address, a plain
 * client on a TLS port and a TLS client on a plain port are refused with a clear message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_client.h"
#include "http_server.h"
#include "tls_ca.h"
#include "tls_pin.h"

typedef struct pair {
    char *cert_pem, *key_pem;
} pair;

/* A key and a certificate: self-signed (ca NULL) or signed by ca/ca_key. */
static void make_pair(pair *p, const char *cn, unsigned eku, X509 *ca, EVP_PKEY *ca_key, X509 **crt_out,
                      EVP_PKEY **key_out)
{
    qerr e = { 0 };
    static const char *const names[] = { "127.0.0.1", "localhost", NULL };
    qtls_cert_opts o = { .cn = cn, .names = names, .eku = eku };
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_EC_P256, &e);
    assert_non_null(k);
    X509 *c = qtls_make_cert(&o, k, ca, ca_key, &e);
    if (!c)
        fail_msg("certificate: %s", e.msg);
    p->cert_pem = qtls_cert_pem(c, NULL, &e);
    p->key_pem = qtls_key_pem(k, NULL, &e);
    assert_non_null(p->cert_pem);
    assert_non_null(p->key_pem);
    if (crt_out)
        *crt_out = c;
    else
        X509_free(c);
    if (key_out)
        *key_out = k;
    else
        EVP_PKEY_free(k);
}

static void free_pair(pair *p)
{
    free(p->cert_pem);
    qtls_free_secret(p->key_pem);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void test_is_cert_pem(void **state)
{
    (void)state;
    assert_false(qtls_is_cert_pem(NULL));
    assert_false(qtls_is_cert_pem(""));
    assert_false(qtls_is_cert_pem("disabled"));
    assert_false(qtls_is_cert_pem("-----BEGIN PUBLIC KEY-----\n"));
    assert_true(qtls_is_cert_pem("-----BEGIN CERTIFICATE-----\nMII..."));
    assert_true(qtls_is_cert_pem("\n  -----BEGIN CERTIFICATE-----\nMII..."));
}

static void test_pin(void **state)
{
    (void)state;
    pair a, b;
    make_pair(&a, "agent-a", QTLS_EKU_SERVER | QTLS_EKU_CLIENT, NULL, NULL, NULL, NULL);
    make_pair(&b, "agent-b", QTLS_EKU_SERVER | QTLS_EKU_CLIENT, NULL, NULL, NULL, NULL);
    char p1[QTLS_PIN_MAX], p2[QTLS_PIN_MAX], p3[QTLS_PIN_MAX];
    qerr e = { 0 };
    assert_int_equal(qtls_pin_sha256(a.cert_pem, p1, sizeof p1, &e), 0);
    assert_int_equal(qtls_pin_sha256(a.cert_pem, p2, sizeof p2, &e), 0);
    assert_int_equal(qtls_pin_sha256(b.cert_pem, p3, sizeof p3, &e), 0);
    assert_int_equal(strncmp(p1, "sha256//", 8), 0);
    assert_int_equal(strlen(p1), 8 + 44);
    assert_string_equal(p1, p2);
    assert_string_not_equal(p1, p3);
    assert_int_equal(qtls_pin_sha256("disabled", p1, sizeof p1, &e), -1);
    assert_int_equal(p1[0], '\0');
    assert_int_equal(qtls_pin_sha256("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n", p1,
                                     sizeof p1, &e), -1);
    assert_non_null(strstr(e.msg, "cannot be parsed"));
    assert_int_equal(qtls_pin_sha256(a.cert_pem, p1, 10, &e), -1);
    /* qtls_pin_cert (OpenSSL, which also gives the parsed certificate) and qtls_pin_sha256
     * (GnuTLS's SHA-256 key id) are the same pin, for EC and RSA keys. */
    for (int rsa = 0; rsa < 2; rsa++) {
        qtls_cert_opts o = { .cn = "pin", .eku = QTLS_EKU_SERVER };
        EVP_PKEY *k = qtls_key_new(rsa ? QTLS_KEY_RSA_3072 : QTLS_KEY_EC_P256, &e);
        assert_non_null(k);
        X509 *c = qtls_make_cert(&o, k, NULL, NULL, &e);
        assert_non_null(c);
        char *pem = qtls_cert_pem(c, NULL, &e);
        assert_non_null(pem);
        X509 *x = qtls_pin_cert(pem, p1, sizeof p1, &e);
        assert_non_null(x);
        assert_int_equal(X509_cmp(x, c), 0);
        assert_int_equal(qtls_pin_sha256(pem, p2, sizeof p2, &e), 0);
        assert_string_equal(p1, p2);
        X509_free(x);
        X509_free(c);
        EVP_PKEY_free(k);
        free(pem);
    }
    assert_null(qtls_pin_cert("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n", p1, sizeof p1, &e));
    assert_non_null(strstr(e.msg, "cannot be parsed"));
    free_pair(&a);
    free_pair(&b);
}

static void h_ok(qhttp_req *r, void *ctx)
{
    (void)ctx;
    qhttp_reply(r, 200, NULL);
}

static const qhttp_route g_routes[] = { { "GET", "/version", h_ok, NULL } };

/* GET url with a client pinned to pin_pem (NULL: a plain client without TLS options). */
static int get(const char *url, const char *pin_pem, const char *cert, const char *key, qhttp_result *r, qerr *e)
{
    char pin[QTLS_PIN_MAX];
    qhttp_client_opts o = { .connect_timeout_ms = 2000, .timeout_ms = 5000, .cert_file = cert, .key_file = key };
    if (pin_pem) {
        assert_int_equal(qtls_pin_sha256(pin_pem, pin, sizeof pin, e), 0);
        o.ca_pem = pin_pem;
        o.pinned_pubkey = pin;
        o.no_verify_host = true;
    }
    qhttp_client *c = qhttp_client_new(&o, e);
    assert_non_null(c);
    int rc = qhttp_get(c, url, r, e);
    qhttp_client_free(c);
    return rc;
}

static void test_pinned_peer(void **state)
{
    (void)state;
    char dir[] = "/tmp/quince-test-pin.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char ca_path[128], cli_cert[128], cli_key[128];
    snprintf(ca_path, sizeof ca_path, "%s/ca.pem", dir);
    snprintf(cli_cert, sizeof cli_cert, "%s/cli.pem", dir);
    snprintf(cli_key, sizeof cli_key, "%s/cli.key", dir);

    /* A CA and a client certificate from it (the tenant's); two agents with their own certs. */
    qerr e = { 0 };
    EVP_PKEY *cak = qtls_key_new(QTLS_KEY_EC_P256, &e);
    X509 *ca = qtls_make_ca(cak, "pin test CA", 0, &e);
    assert_non_null(ca);
    char *ca_pem = qtls_cert_pem(ca, NULL, &e);
    write_file(ca_path, ca_pem);
    pair cli, ag, other;
    EVP_PKEY *ck = NULL;
    make_pair(&cli, "tenant", QTLS_EKU_CLIENT, ca, cak, NULL, &ck);
    write_file(cli_cert, cli.cert_pem);
    assert_int_equal(qtls_write_key(cli_key, ck, QTLS_REPLACE, &e), 0);
    EVP_PKEY_free(ck);
    make_pair(&ag, "agent", QTLS_EKU_SERVER | QTLS_EKU_CLIENT, NULL, NULL, NULL, NULL);
    make_pair(&other, "impostor", QTLS_EKU_SERVER | QTLS_EKU_CLIENT, NULL, NULL, NULL, NULL);

    qhttp_server_opts so = { .ip = "127.0.0.1", .tls_cert_pem = ag.cert_pem, .tls_key_pem = ag.key_pem,
                             .tls_ca_pem = ca_pem, .require_client_cert = true };
    qhttp_server *s = qhttp_server_start(&so, g_routes, 1, &e);
    if (!s)
        fail_msg("server: %s", e.msg);
    char url[128], plain_url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/version", qhttp_server_port(s));
    snprintf(plain_url, sizeof plain_url, "http://127.0.0.1:%u/version", qhttp_server_port(s));
    qhttp_result r;

    /* The pinned agent with the tenant's certificate: 200. */
    if (get(url, ag.cert_pem, cli_cert, cli_key, &r, &e) != 0)
        fail_msg("pinned request: %s", e.msg);
    assert_int_equal(r.status, 200);
    qhttp_result_free(&r);
    /* Without a client certificate: 403 from the agent. */
    assert_int_equal(get(url, ag.cert_pem, NULL, NULL, &r, &e), 0);
    assert_int_equal(r.status, 403);
    qhttp_result_free(&r);
    /* Pinned to another certificate (a machine that took over the address): refused in the handshake. */
    assert_int_equal(get(url, other.cert_pem, cli_cert, cli_key, &r, &e), -1);
    assert_non_null(strstr(e.msg, "TLS error with 127.0.0.1:"));
    qhttp_result_free(&r);
    /* Plain HTTP to the TLS port: an error that says so, never a fall-back. */
    assert_int_equal(get(plain_url, NULL, NULL, NULL, &r, &e), -1);
    assert_non_null(strstr(e.msg, "is it a TLS port? use https"));
    qhttp_result_free(&r);
    /* The server survived both. */
    assert_int_equal(get(url, ag.cert_pem, cli_cert, cli_key, &r, &e), 0);
    assert_int_equal(r.status, 200);
    qhttp_result_free(&r);
    qhttp_server_stop(s);

    /* TLS to a plain-HTTP port. */
    qhttp_server_opts po = { .ip = "127.0.0.1" };
    s = qhttp_server_start(&po, g_routes, 1, &e);
    assert_non_null(s);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/version", qhttp_server_port(s));
    assert_int_equal(get(url, ag.cert_pem, cli_cert, cli_key, &r, &e), -1);
    assert_non_null(strstr(e.msg, "does the server speak TLS?"));
    qhttp_result_free(&r);
    qhttp_server_stop(s);

    free_pair(&cli);
    free_pair(&ag);
    free_pair(&other);
    free(ca_pem);
    X509_free(ca);
    EVP_PKEY_free(cak);
    unlink(ca_path);
    unlink(cli_cert);
    unlink(cli_key);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_cert_pem),
        cmocka_unit_test(test_pin),
        cmocka_unit_test(test_pinned_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
