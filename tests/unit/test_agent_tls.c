/* test_agent_tls.c — the verifier's client identity towards agents parsed once
 * (verifier/agent_tls.h): a matching pair loads and goes into an SSL_CTX by reference, with the
 * file's further certificates as the chain; a key of another certificate, or a missing file,
 * is refused with a message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "../../verifier/agent_tls.h"
#include "tls_ca.h"

static char g_dir[64], g_cert[128], g_key[128], g_other_key[128], g_chain[128];
static X509 *g_leaf, *g_ca;

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_agent_tls.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_cert, sizeof g_cert, "%s/cert.pem", g_dir);
    snprintf(g_key, sizeof g_key, "%s/key.pem", g_dir);
    snprintf(g_other_key, sizeof g_other_key, "%s/other.pem", g_dir);
    snprintf(g_chain, sizeof g_chain, "%s/chain.pem", g_dir);
    qerr e = { 0 };
    EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    g_ca = ca_key ? qtls_make_ca(ca_key, "test CA", 30, &e) : NULL;
    qtls_cert_opts o = { .cn = "verifier", .eku = QTLS_EKU_CLIENT };
    g_leaf = k && g_ca ? qtls_make_cert(&o, k, g_ca, ca_key, &e) : NULL;
    int rc = g_leaf && other && qtls_write_cert(g_cert, g_leaf, 0, &e) == 0 && qtls_write_key(g_key, k, 0, &e) == 0 &&
                     qtls_write_key(g_other_key, other, 0, &e) == 0 ? 0 : -1;
    FILE *f = rc == 0 ? fopen(g_chain, "w") : NULL;     /* leaf, then its CA */
    if (!f || !PEM_write_X509(f, g_leaf) || !PEM_write_X509(f, g_ca))
        rc = -1;
    if (f && fclose(f) != 0)
        rc = -1;
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_cert);
    unlink(g_key);
    unlink(g_other_key);
    unlink(g_chain);
    rmdir(g_dir);
    X509_free(g_leaf);
    X509_free(g_ca);
    return 0;
}

static void test_pair_into_ctx(void **state)
{
    (void)state;
    qerr e = { 0 };
    vac_tls *t = vac_tls_load(g_cert, g_key, &e);
    assert_non_null(t);
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    assert_non_null(c);
    assert_int_equal(vac_tls_ctx_fn(NULL, c, t), CURLE_OK);
    assert_int_equal(X509_cmp(SSL_CTX_get0_certificate(c), g_leaf), 0);
    assert_non_null(SSL_CTX_get0_privatekey(c));
    assert_int_equal(SSL_CTX_check_private_key(c), 1);
    assert_true(SSL_CTX_get_mode(c) & SSL_MODE_RELEASE_BUFFERS);
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(SSL_CTX_get0_chain_certs(c, &chain), 1);
    assert_int_equal(chain ? sk_X509_num(chain) : 0, 0);
    SSL_CTX_free(c);
    vac_tls_free(t);      /* the context held its own references */
}

static void test_chain_from_file(void **state)
{
    (void)state;
    qerr e = { 0 };
    vac_tls *t = vac_tls_load(g_chain, g_key, &e);
    assert_non_null(t);
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    assert_non_null(c);
    assert_int_equal(vac_tls_ctx_fn(NULL, c, t), CURLE_OK);
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(SSL_CTX_get0_chain_certs(c, &chain), 1);
    assert_non_null(chain);
    assert_int_equal(sk_X509_num(chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), g_ca), 0);
    SSL_CTX_free(c);
    vac_tls_free(t);
}

static void test_refused(void **state)
{
    (void)state;
    qerr e = { 0 };
    assert_null(vac_tls_load(g_cert, g_other_key, &e));
    assert_non_null(strstr(e.msg, "does not match"));
    memset(&e, 0, sizeof e);
    assert_null(vac_tls_load("/nonexistent/cert.pem", g_key, &e));
    assert_true(e.msg[0] != '\0');
    memset(&e, 0, sizeof e);
    assert_null(vac_tls_load(NULL, g_key, &e));
    assert_true(e.msg[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_into_ctx),
        cmocka_unit_test(test_chain_from_file),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
