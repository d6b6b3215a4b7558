/* test_peer_share.c — qhttp_server_share_peer_checks (common/http_peer_cert.c): with it on, a
 * client certificate verified on one connection is accepted on the next ones without a new chain
 * verification, but only that exact certificate: another CA's certificate, or none, is still
 * refused on every connection, before and after a good one; two certificates in turn are each
 * verified once (counted); switched off, every connection verifies again. */
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

static void write_pair(const char *dir, const char *name, X509 *ca, EVP_PKEY *cak, char *cert, char *key, size_t cap)
{
    qerr e = { 0 };
    static const char *const names[] = { "127.0.0.1", NULL };
    qtls_cert_opts o = { .cn = name, .names = names, .eku = QTLS_EKU_CLIENT | QTLS_EKU_SERVER };
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_EC_P256, &e);
    assert_non_null(k);
    X509 *c = qtls_make_cert(&o, k, ca, cak, &e);
    if (!c)
        fail_msg("certificate: %s", e.msg);
    snprintf(cert, cap, "%s/%s.pem", dir, name);
    snprintf(key, cap, "%s/%s.key", dir, name);
    assert_int_equal(qtls_write_cert(cert, c, QTLS_REPLACE, &e), 0);
    assert_int_equal(qtls_write_key(key, k, QTLS_REPLACE, &e), 0);
    X509_free(c);
    EVP_PKEY_free(k);
}

static void h_ok(qhttp_req *r, void *ctx)
{
    (void)ctx;
    qhttp_reply(r, 200, NULL);
}

static const qhttp_route g_routes[] = { { "GET", "/version", h_ok, NULL } };

/* One request on a new connection: the HTTP status, or 0 when the TLS handshake failed. */
static long status_of(const char *url, const char *ca, const char *cert, const char *key)
{
    qerr e = { 0 };
    qhttp_client_opts o = { .connect_timeout_ms = 2000, .timeout_ms = 5000, .ca_file = ca, .cert_file = cert,
                            .key_file = key };
    qhttp_client *c = qhttp_client_new(&o, &e);
    assert_non_null(c);
    qhttp_result r;
    long st = qhttp_get(c, url, &r, &e) == 0 ? r.status : 0;
    qhttp_result_free(&r);
    qhttp_client_free(c);
    return st;
}

static void test_shared_checks(void **state)
{
    (void)state;
    char dir[] = "/tmp/quince-test-peer.XXXXXX";
    assert_non_null(mkdtemp(dir));
    qerr e = { 0 };
    EVP_PKEY *cak = qtls_key_new(QTLS_KEY_EC_P256, &e), *ca2k = qtls_key_new(QTLS_KEY_EC_P256, &e);
    X509 *ca = qtls_make_ca(cak, "share test CA", 0, &e), *ca2 = qtls_make_ca(ca2k, "another CA", 0, &e);
    assert_non_null(ca);
    assert_non_null(ca2);
    char ca_path[128], srv_c[128], srv_k[128], good_c[128], good_k[128], good2_c[128], good2_k[128], bad_c[128],
        bad_k[128];
    snprintf(ca_path, sizeof ca_path, "%s/ca.pem", dir);
    assert_int_equal(qtls_write_cert(ca_path, ca, QTLS_REPLACE, &e), 0);
    write_pair(dir, "server", ca, cak, srv_c, srv_k, sizeof srv_c);
    write_pair(dir, "good", ca, cak, good_c, good_k, sizeof good_c);
    write_pair(dir, "good2", ca, cak, good2_c, good2_k, sizeof good2_c);
    write_pair(dir, "bad", ca2, ca2k, bad_c, bad_k, sizeof bad_c);

    qhttp_server_opts so = { .ip = "127.0.0.1", .tls_cert_file = srv_c, .tls_key_file = srv_k,
                             .tls_ca_file = ca_path, .require_client_cert = true };
    qhttp_server *s = qhttp_server_start(&so, g_routes, 1, &e);
    if (!s)
        fail_msg("server: %s", e.msg);
    char url[96];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/version", qhttp_server_port(s));

    for (int on = 1; on >= 0; on--) {
        qhttp_server_share_peer_checks(on);
        long bad0 = status_of(url, ca_path, bad_c, bad_k);
        assert_true(bad0 == 403 || bad0 == 0);
        /* Two good certificates in turn on new connections (the fleet's verifier and tenant):
         * each verified once when shared, on every connection when not. */
        unsigned long v0 = qhttp_server_peer_verifications();
        for (int i = 0; i < 3; i++) {
            assert_int_equal(status_of(url, ca_path, good_c, good_k), 200);
            assert_int_equal(status_of(url, ca_path, good2_c, good2_k), 200);
        }
        assert_int_equal(qhttp_server_peer_verifications() - v0, on ? 2 : 6);
        long bad1 = status_of(url, ca_path, bad_c, bad_k);
        assert_true(bad1 == 403 || bad1 == 0);
        assert_int_equal(status_of(url, ca_path, NULL, NULL), 403);
    }
    qhttp_server_stop(s);
    const char *files[] = { ca_path, srv_c, srv_k, good_c, good_k, good2_c, good2_k, bad_c, bad_k };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    rmdir(dir);
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(ca2k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
