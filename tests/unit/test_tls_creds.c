/* test_tls_creds.c — the client certificate and key parsed once per process (common/tls_creds.c)
 * and put into each connection from memory, and a pinned peer's certificate parsed once and used
 * as the trust anchor (qhttp_client_opts.ca_cert): requests succeed with them; a pair rewritten
 * on disk is used by the next connection (another CA's: refused); files that do not parse leave
 * libcurl to read them, with its usual error; the parsed anchor really is the only one. */
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
#include "tls_creds.h"
#include "tls_pin.h"

typedef struct fixture {
    char dir[64], cert[128], key[128];
    EVP_PKEY *cak, *ca2k;
    X509 *ca, *ca2;                 /* the server trusts ca; ca2 is another CA */
    char *ca_pem;
    char *srv_cert, *srv_key, *other_cert;
    qhttp_server *s;
    char url[128];
} fixture;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* A fresh key and a certificate for it, signed by ca (NULL: self-signed); PEM texts. */
static void make_pair(const char *cn, unsigned eku, X509 *ca, EVP_PKEY *cak, char **cert, char **key)
{
    qerr e = { 0 };
    static const char *const names[] = { "127.0.0.1", NULL };
    qtls_cert_opts o = { .cn = cn, .names = names, .eku = eku };
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_EC_P256, &e);
    assert_non_null(k);
    X509 *c = qtls_make_cert(&o, k, ca, cak, &e);
    if (!c)
        fail_msg("certificate: %s", e.msg);
    *cert = qtls_cert_pem(c, NULL, &e);
    *key = qtls_key_pem(k, NULL, &e);
    assert_non_null(*cert);
    assert_non_null(*key);
    X509_free(c);
    EVP_PKEY_free(k);
}

/* The client pair files from ca (or ca2 when other_ca). */
static void write_client(fixture *f, bool other_ca)
{
    char *c = NULL, *k = NULL;
    make_pair("tenant", QTLS_EKU_CLIENT, other_ca ? f->ca2 : f->ca, other_ca ? f->ca2k : f->cak, &c, &k);
    write_file(f->cert, c);
    write_file(f->key, k);
    free(c);
    qtls_free_secret(k);
}

static void h_ok(qhttp_req *r, void *ctx)
{
    (void)ctx;
    qhttp_reply(r, 200, NULL);
}

static const qhttp_route g_routes[] = { { "GET", "/version", h_ok, NULL } };

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/quince-test-creds.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cert, sizeof f->cert, "%s/cli.pem", f->dir);
    snprintf(f->key, sizeof f->key, "%s/cli.key", f->dir);
    qerr e = { 0 };
    f->cak = qtls_key_new(QTLS_KEY_EC_P256, &e);
    f->ca2k = qtls_key_new(QTLS_KEY_EC_P256, &e);
    f->ca = qtls_make_ca(f->cak, "creds test CA", 0, &e);
    f->ca2 = qtls_make_ca(f->ca2k, "another CA", 0, &e);
    assert_non_null(f->ca);
    assert_non_null(f->ca2);
    f->ca_pem = qtls_cert_pem(f->ca, NULL, &e);
    char *ok = NULL;
    make_pair("agent", QTLS_EKU_SERVER | QTLS_EKU_CLIENT, NULL, NULL, &f->srv_cert, &f->srv_key);
    make_pair("impostor", QTLS_EKU_SERVER | QTLS_EKU_CLIENT, NULL, NULL, &f->other_cert, &ok);
    qtls_free_secret(ok);
    write_client(f, false);
    qhttp_server_opts so = { .ip = "127.0.0.1", .tls_cert_pem = f->srv_cert, .tls_key_pem = f->srv_key,
                             .tls_ca_pem = f->ca_pem, .require_client_cert = true };
    f->s = qhttp_server_start(&so, g_routes, 1, &e);
    if (!f->s)
        fail_msg("server: %s", e.msg);
    snprintf(f->url, sizeof f->url, "https://127.0.0.1:%u/version", qhttp_server_port(f->s));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    qhttp_server_stop(f->s);
    unlink(f->cert);
    unlink(f->key);
    rmdir(f->dir);
    free(f->ca_pem);
    free(f->srv_cert);
    qtls_free_secret(f->srv_key);
    free(f->other_cert);
    X509_free(f->ca);
    X509_free(f->ca2);
    EVP_PKEY_free(f->cak);
    EVP_PKEY_free(f->ca2k);
    free(f);
    return 0;
}

/* GET with a client pinned to anchor_pem (its public key), the anchor given as PEM text or,
 * with parsed, as the certificate qtls_pin_cert parsed; pin_pem's key is the one pinned. */
static int get(fixture *f, const char *anchor_pem, const char *pin_pem, bool parsed, qhttp_result *r, qerr *e)
{
    char pin[QTLS_PIN_MAX], unused[QTLS_PIN_MAX];
    assert_int_equal(qtls_pin_sha256(pin_pem, pin, sizeof pin, e), 0);
    X509 *x = parsed ? qtls_pin_cert(anchor_pem, unused, sizeof unused, e) : NULL;
    if (parsed)
        assert_non_null(x);
    qhttp_client_opts o = { .connect_timeout_ms = 2000, .timeout_ms = 5000, .cert_file = f->cert,
                            .key_file = f->key, .ca_pem = anchor_pem, .ca_cert = x, .pinned_pubkey = pin,
                            .no_verify_host = true };
    qhttp_client *c = qhttp_client_new(&o, e);
    X509_free(x);                   /* the client keeps its own reference */
    assert_non_null(c);
    int rc = qhttp_get(c, f->url, r, e);
    qhttp_client_free(c);
    return rc;
}

static void test_parsed_once(void **state)
{
    fixture *f = *state;
    qerr e = { 0 };
    qtls_creds *a = qtls_creds_get(f->cert, f->key, &e);
    assert_non_null(a);
    assert_ptr_equal(qtls_creds_get(f->cert, f->key, &e), a);      /* one entry per pair */
    qhttp_result r;
    for (int parsed = 0; parsed < 2; parsed++) {
        if (get(f, f->srv_cert, f->srv_cert, parsed, &r, &e) != 0)
            fail_msg("request (parsed anchor %d): %s", parsed, e.msg);
        assert_int_equal(r.status, 200);
        qhttp_result_free(&r);
    }
    /* The parsed anchor is the only one: another certificate as anchor, the right key pinned. */
    assert_int_equal(get(f, f->other_cert, f->srv_cert, true, &r, &e), -1);
    assert_non_null(strstr(e.msg, "TLS error with 127.0.0.1:"));
    qhttp_result_free(&r);
    /* And the right anchor with another key pinned. */
    assert_int_equal(get(f, f->srv_cert, f->other_cert, true, &r, &e), -1);
    assert_non_null(strstr(e.msg, "TLS error with 127.0.0.1:"));
    qhttp_result_free(&r);
}

static void test_rewritten_files(void **state)
{
    fixture *f = *state;
    qerr e = { 0 };
    qhttp_result r;
    assert_int_equal(get(f, f->srv_cert, f->srv_cert, true, &r, &e), 0);
    assert_int_equal(r.status, 200);
    qhttp_result_free(&r);
    /* A pair from another CA written over the files: the next connection presents it. */
    write_client(f, true);
    int rc = get(f, f->srv_cert, f->srv_cert, true, &r, &e);
    assert_true(rc == -1 || r.status == 403);
    qhttp_result_free(&r);
    /* Back to a good pair: accepted again. */
    write_client(f, false);
    if (get(f, f->srv_cert, f->srv_cert, true, &r, &e) != 0)
        fail_msg("request after the rewrite: %s", e.msg);
    assert_int_equal(r.status, 200);
    qhttp_result_free(&r);
}

static void test_unusable_files(void **state)
{
    fixture *f = *state;
    qerr e = { 0 };
    char other_key[160], missing[160];
    snprintf(other_key, sizeof other_key, "%s/other.key", f->dir);
    snprintf(missing, sizeof missing, "%s/missing.pem", f->dir);
    char *c = NULL, *k = NULL;
    make_pair("x", QTLS_EKU_CLIENT, f->ca, f->cak, &c, &k);
    write_file(other_key, k);
    free(c);
    qtls_free_secret(k);
    assert_null(qtls_creds_get(f->cert, other_key, &e));             /* key of another certificate */
    assert_non_null(strstr(e.msg, "does not match"));
    assert_null(qtls_creds_get(missing, f->key, &e));
    assert_null(qtls_creds_get(f->cert, f->cert, &e));                /* a certificate as the key */
    /* A client with a key that does not parse: libcurl reads the files and the request fails in
     * TLS, as before. */
    write_file(other_key, "not a key\n");
    qhttp_client_opts o = { .connect_timeout_ms = 2000, .timeout_ms = 5000, .cert_file = f->cert,
                            .key_file = other_key, .ca_pem = f->srv_cert, .no_verify_host = true };
    qhttp_client *cl = qhttp_client_new(&o, &e);
    assert_non_null(cl);
    qhttp_result r;
    assert_int_equal(qhttp_get(cl, f->url, &r, &e), -1);
    assert_non_null(strstr(e.msg, "TLS error with 127.0.0.1:"));
    qhttp_result_free(&r);
    qhttp_client_free(cl);
    unlink(other_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parsed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewritten_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
