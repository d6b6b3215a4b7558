/* test_mtls_cert.c — agent/mtls_cert.c: the agent's key and self-signed certificate made once in
 * a temp state_dir (modes, CN, SANs, purposes), reused (inode and mtime unchanged), the
 * certificate remade with the same key when the contact address or uuid changes or it expires,
 * refused states (half pairs, mismatched or open keys, bad contact), an existing RSA key kept, and
 * pinning end to end: a TLS server with the agent's certificate that accepts only clients of the
 * verifier's CA, reached by a client that trusts exactly that certificate; an impostor with
 * another key at the same address is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../../agent/mtls_cert.h"
#include "http_client.h"
#include "http_server.h"
#include "tls_ca.h"

#define UUID "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"

static char g_tmp[64];

static const char *P(const char *dir, const char *name)
{
    static char buf[8][512];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static const char *subdir(const char *name)
{
    static char buf[8][256];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", g_tmp, name);
    nftw(b, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(mkdir(b, 0700), 0);
    return b;
}

static bool has(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

static X509 *pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void ensure_ok(const char *dir, const char *uuid, const char *contact, agent_mtls *m)
{
    qerr e = { 0 };
    if (agent_mtls_ensure(dir, uuid, contact, m, &e) < 0)
        fail_msg("agent_mtls_ensure: %s", e.msg);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/quince-test-mtls.XXXXXX");
    return mkdtemp(g_tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(g_tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_first_start(void **state)
{
    (void)state;
    const char *d = subdir("first");
    agent_mtls m;
    ensure_ok(d, UUID, "10.0.0.5", &m);
    assert_true(m.key_created);
    assert_true(m.cert_created);
    assert_string_equal(m.why, "new key");
    assert_string_equal(m.cert_path, P(d, AGENT_MTLS_CERT_FILE));
    assert_string_equal(m.key_path, P(d, AGENT_MTLS_KEY_FILE));
    struct stat st;
    assert_int_equal(stat(m.key_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(m.cert_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    /* the PEM returned is the file, and the key PEM is PKCS#8 */
    assert_string_equal(m.cert_pem, slurp(m.cert_path));
    assert_int_equal(strlen(m.cert_pem), m.cert_pem_len);
    assert_true(has(m.cert_pem, "-----BEGIN CERTIFICATE-----\n"));
    assert_true(has(m.key_pem, "-----BEGIN PRIVATE KEY-----\n"));
    assert_int_equal(strlen(m.key_pem), m.key_pem_len);

    X509 *c = pem_cert(m.cert_pem);
    qtls_cert_info info;
    assert_int_equal(qtls_cert_info_get(c, &info, NULL), 0);
    assert_true(info.self_signed);
    assert_false(info.is_ca);
    assert_int_equal(info.eku, QTLS_EKU_SERVER | QTLS_EKU_CLIENT);
    assert_string_equal(info.key_desc, "EC P-256");
    assert_string_equal(info.subject, "CN=" UUID ",O=Quince");
    assert_int_equal(info.nnames, 4);
    assert_string_equal(info.names[0], "IP:10.0.0.5");
    assert_true(qtls_cert_has_name(c, "localhost"));
    assert_true(qtls_cert_has_name(c, "127.0.0.1"));
    assert_true(qtls_cert_has_name(c, "::1"));
    assert_true((info.na - info.nb) / QTLS_DAY_S >= AGENT_MTLS_DAYS);
    /* it verifies as its own trust anchor, for both purposes (what pinning relies on) */
    qerr e = { 0 };
    if (qtls_verify(c, c, QTLS_EKU_SERVER | QTLS_EKU_CLIENT, &e) < 0)
        fail_msg("self-verification: %s", e.msg);
    X509_free(c);
    agent_mtls_free(&m);
    agent_mtls_free(&m);     /* twice is harmless */
}

static void test_reused(void **state)
{
    (void)state;
    const char *d = subdir("reuse");
    agent_mtls a, b;
    ensure_ok(d, UUID, "10.0.0.5", &a);
    struct stat k1, c1, k2, c2;
    assert_int_equal(stat(a.key_path, &k1), 0);
    assert_int_equal(stat(a.cert_path, &c1), 0);
    ensure_ok(d, UUID, "10.0.0.5", &b);
    assert_false(b.key_created);
    assert_false(b.cert_created);
    assert_string_equal(b.why, "");
    assert_string_equal(a.cert_pem, b.cert_pem);
    assert_string_equal(a.key_pem, b.key_pem);
    assert_int_equal(stat(b.key_path, &k2), 0);
    assert_int_equal(stat(b.cert_path, &c2), 0);
    assert_int_equal(k1.st_ino, k2.st_ino);
    assert_int_equal(c1.st_ino, c2.st_ino);
    assert_int_equal(c1.st_mtim.tv_sec, c2.st_mtim.tv_sec);
    assert_int_equal(c1.st_mtim.tv_nsec, c2.st_mtim.tv_nsec);
    agent_mtls_free(&a);
    agent_mtls_free(&b);
}

static void test_remade_on_change(void **state)
{
    (void)state;
    const char *d = subdir("change");
    agent_mtls a, b, c;
    ensure_ok(d, UUID, "10.0.0.5", &a);
    /* the contact address changed: a new certificate, the same key */
    ensure_ok(d, UUID, "10.0.0.6", &b);
    assert_false(b.key_created);
    assert_true(b.cert_created);
    assert_true(has(b.why, "contact address changed to 10.0.0.6"));
    assert_string_equal(a.key_pem, b.key_pem);
    assert_string_not_equal(a.cert_pem, b.cert_pem);
    X509 *x = pem_cert(b.cert_pem);
    assert_true(qtls_cert_has_name(x, "10.0.0.6"));
    assert_false(qtls_cert_has_name(x, "10.0.0.5"));
    X509_free(x);
    assert_string_equal(b.cert_pem, slurp(b.cert_path));
    /* a host name as contact → DNS SAN; the uuid changed → remade */
    ensure_ok(d, "other-uuid", "agent1.example", &c);
    assert_true(c.cert_created);
    assert_string_equal(c.why, "uuid changed");
    x = pem_cert(c.cert_pem);
    assert_true(qtls_cert_has_name(x, "DNS:agent1.example"));
    qtls_cert_info info;
    assert_int_equal(qtls_cert_info_get(x, &info, NULL), 0);
    assert_string_equal(info.subject, "CN=other-uuid,O=Quince");
    X509_free(x);
    agent_mtls_free(&a);
    agent_mtls_free(&b);
    agent_mtls_free(&c);
    /* a wildcard or empty contact: only the loopback names, and any certificate will do */
    const char *w = subdir("wild");
    agent_mtls m;
    ensure_ok(w, UUID, "0.0.0.0", &m);
    x = pem_cert(m.cert_pem);
    assert_int_equal(qtls_cert_info_get(x, &info, NULL), 0);
    assert_int_equal(info.nnames, 3);
    X509_free(x);
    agent_mtls_free(&m);
    ensure_ok(w, UUID, NULL, &m);
    assert_false(m.cert_created);
    agent_mtls_free(&m);
}

static void test_remade_when_expiring(void **state)
{
    (void)state;
    const char *d = subdir("expiring");
    agent_mtls m;
    ensure_ok(d, UUID, "10.0.0.5", &m);
    agent_mtls_free(&m);
    qerr e = { 0 };
    EVP_PKEY *k = qtls_read_key(P(d, AGENT_MTLS_KEY_FILE), &e);
    assert_non_null(k);
    const char *names[] = { "10.0.0.5", NULL };
    /* expires in 10 days (inside the renewal window) */
    qtls_cert_opts o = { .cn = UUID, .names = names, .eku = QTLS_EKU_SERVER | QTLS_EKU_CLIENT,
                         .not_after_s = 10 * QTLS_DAY_S };
    X509 *x = qtls_make_cert(&o, k, NULL, NULL, &e);
    assert_int_equal(qtls_write_cert(P(d, AGENT_MTLS_CERT_FILE), x, QTLS_REPLACE, &e), 0);
    X509_free(x);
    ensure_ok(d, UUID, "10.0.0.5", &m);
    assert_true(m.cert_created);
    assert_false(m.key_created);
    assert_true(has(m.why, "certificate expires on"));
    agent_mtls_free(&m);
    /* expired */
    o.not_before_s = -3 * QTLS_DAY_S;
    o.not_after_s = -QTLS_DAY_S;
    x = qtls_make_cert(&o, k, NULL, NULL, &e);
    assert_int_equal(qtls_write_cert(P(d, AGENT_MTLS_CERT_FILE), x, QTLS_REPLACE, &e), 0);
    X509_free(x);
    ensure_ok(d, UUID, "10.0.0.5", &m);
    assert_true(m.cert_created);
    assert_true(has(m.why, "certificate expired on"));
    x = pem_cert(m.cert_pem);
    assert_int_equal(qtls_verify(x, x, QTLS_EKU_SERVER, &e), 0);
    X509_free(x);
    agent_mtls_free(&m);
    EVP_PKEY_free(k);
}

static void test_refused(void **state)
{
    (void)state;
    qerr e = { 0 };
    agent_mtls m;
    const char *d = subdir("refused");
    /* a certificate without its key: never a silent new identity */
    ensure_ok(d, UUID, "10.0.0.5", &m);
    agent_mtls_free(&m);
    assert_int_equal(unlink(P(d, AGENT_MTLS_KEY_FILE)), 0);
    assert_int_equal(agent_mtls_ensure(d, UUID, "10.0.0.5", &m, &e), -1);
    assert_true(has(e.msg, "exists without"));
    assert_null(m.cert_pem);
    assert_null(m.key_pem);
    /* a key that does not match */
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_EC_P256, &e);
    assert_int_equal(qtls_write_key(P(d, AGENT_MTLS_KEY_FILE), k, 0, &e), 0);
    EVP_PKEY_free(k);
    assert_int_equal(agent_mtls_ensure(d, UUID, "10.0.0.5", &m, &e), -1);
    assert_true(has(e.msg, "does not match certificate"));
    /* a key open to others */
    assert_int_equal(unlink(P(d, AGENT_MTLS_CERT_FILE)), 0);
    assert_int_equal(unlink(P(d, AGENT_MTLS_KEY_FILE)), 0);
    ensure_ok(d, UUID, "10.0.0.5", &m);
    agent_mtls_free(&m);
    assert_int_equal(chmod(P(d, AGENT_MTLS_KEY_FILE), 0644), 0);
    assert_int_equal(agent_mtls_ensure(d, UUID, "10.0.0.5", &m, &e), -1);
    assert_true(has(e.msg, "chmod 600"));
    assert_int_equal(chmod(P(d, AGENT_MTLS_KEY_FILE), 0600), 0);
    /* garbage in the certificate file */
    FILE *f = fopen(P(d, AGENT_MTLS_CERT_FILE), "w");
    fputs("not a certificate\n", f);
    fclose(f);
    assert_int_equal(agent_mtls_ensure(d, UUID, "10.0.0.5", &m, &e), -1);
    assert_true(has(e.msg, "holds no PEM certificate"));
    /* bad arguments */
    assert_int_equal(agent_mtls_ensure(d, UUID, "not an address", &m, &e), -1);
    assert_true(has(e.msg, "neither an IP address nor a host name"));
    assert_int_equal(agent_mtls_ensure(d, "", "10.0.0.5", &m, &e), -1);
    assert_int_equal(agent_mtls_ensure(NULL, UUID, "10.0.0.5", &m, &e), -1);
    assert_int_equal(agent_mtls_ensure(P(g_tmp, "missing-dir"), UUID, "10.0.0.5", &m, &e), -1);
    assert_true(has(e.msg, "cannot create"));
}

static void test_existing_rsa_key(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *d = subdir("rsa");
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(k);
    assert_int_equal(qtls_write_key(P(d, AGENT_MTLS_KEY_FILE), k, 0, &e), 0);
    const char *names[] = { "10.0.0.5", NULL };
    qtls_cert_opts o = { .cn = UUID, .names = names, .eku = QTLS_EKU_SERVER | QTLS_EKU_CLIENT,
                         .not_after_s = 365 * QTLS_DAY_S };
    X509 *x = qtls_make_cert(&o, k, NULL, NULL, &e);
    assert_int_equal(qtls_write_cert(P(d, AGENT_MTLS_CERT_FILE), x, 0, &e), 0);
    X509_free(x);
    agent_mtls m;
    ensure_ok(d, UUID, "10.0.0.5", &m);
    assert_false(m.key_created);
    assert_false(m.cert_created);
    /* a contact change keeps the RSA key */
    agent_mtls_free(&m);
    ensure_ok(d, UUID, "10.0.0.9", &m);
    assert_true(m.cert_created);
    x = pem_cert(m.cert_pem);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);
    X509_free(x);
    agent_mtls_free(&m);
    EVP_PKEY_free(k);
}

/* ---- pinning end to end ------------------------------------------------------------------- */

static void h_ok(qhttp_req *r, void *ctx)
{
    (void)ctx;
    qhttp_reply(r, 200, NULL);
}

static const qhttp_route ROUTES[] = { { "GET", "/version", h_ok, NULL } };

/* An agent-like server: the agent's certificate and key in memory, clients of the CA only. */
static qhttp_server *agent_server(const agent_mtls *m, const char *ca_file)
{
    qerr e = { 0 };
    qhttp_server_opts o = { .ip = "127.0.0.1", .threads = 2, .tls_cert_pem = m->cert_pem, .tls_key_pem = m->key_pem,
                            .tls_ca_file = ca_file, .require_client_cert = true, .log_module = "test" };
    qhttp_server *s = qhttp_server_start(&o, ROUTES, 1, &e);
    if (!s)
        fail_msg("agent server: %s", e.msg);
    return s;
}

/* What the verifier does: its client certificate, and the agent's registered certificate as the
 * only trust anchor. */
static long poll_agent(qhttp_server *s, const char *pinned, const char *cert, const char *key, qerr *e)
{
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/version", qhttp_server_port(s));
    qhttp_client_opts co = { .ca_file = pinned, .cert_file = cert, .key_file = key, .timeout_ms = 10000 };
    qhttp_client *c = qhttp_client_new(&co, e);
    assert_non_null(c);
    qhttp_result r;
    long st = qhttp_get(c, url, &r, e) == 0 ? r.status : -1;
    qhttp_result_free(&r);
    qhttp_client_free(c);
    return st;
}

static void test_pinning_end_to_end(void **state)
{
    (void)state;
    qerr e = { 0 };
    char ca[256];
    snprintf(ca, sizeof ca, "%s/verifier-ca", g_tmp);
    if (qtls_ensure_ca_dir(ca, NULL, NULL, NULL, NULL, &e) < 0)
        fail_msg("%s", e.msg);
    char cacert[512], cli[512], clikey[512];
    snprintf(cacert, sizeof cacert, "%s", P(ca, QTLS_F_CA_CERT));
    snprintf(cli, sizeof cli, "%s", P(ca, QTLS_F_CLIENT_CERT));
    snprintf(clikey, sizeof clikey, "%s", P(ca, QTLS_F_CLIENT_KEY));

    const char *real = subdir("agent-real"), *fake = subdir("agent-impostor");
    agent_mtls a, b;
    ensure_ok(real, UUID, "127.0.0.1", &a);
    ensure_ok(fake, UUID, "127.0.0.1", &b);      /* same uuid and address, another key */

    qhttp_server *s = agent_server(&a, cacert);
    long st = poll_agent(s, a.cert_path, cli, clikey, &e);
    if (st != 200)
        fail_msg("pinned poll: %ld %s", st, e.msg);
    /* the tenant's certificate is from the same CA: accepted too */
    st = poll_agent(s, a.cert_path, P(ca, QTLS_F_TENANT_CERT), P(ca, QTLS_F_TENANT_KEY), &e);
    assert_int_equal(st, 200);
    /* a client without a certificate, or with the agent's own self-signed one: refused */
    st = poll_agent(s, a.cert_path, NULL, NULL, &e);
    assert_int_equal(st, 403);
    st = poll_agent(s, a.cert_path, b.cert_path, b.key_path, &e);
    assert_true(st == -1 || st == 403);
    qhttp_server_stop(s);

    /* the impostor answers at the same address: the pinned client refuses it */
    s = agent_server(&b, cacert);
    st = poll_agent(s, a.cert_path, cli, clikey, &e);
    assert_int_equal(st, -1);
    print_message("impostor: %s\n", e.msg);
    assert_true(has(e.msg, "TLS error"));
    /* trusting the CA instead of the agent's certificate does not help an impostor either */
    st = poll_agent(s, cacert, cli, clikey, &e);
    assert_int_equal(st, -1);
    qhttp_server_stop(s);
    agent_mtls_free(&a);
    agent_mtls_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_start),
        cmocka_unit_test(test_reused),
        cmocka_unit_test(test_remade_on_change),
        cmocka_unit_test(test_remade_when_expiring),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_existing_rsa_key),
        cmocka_unit_test(test_pinning_end_to_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
