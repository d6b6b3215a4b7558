/* test_tls_ca.c — common/tls_ca.c and tls_ca_dir.c: the CA directory made in a temp dir (file
 * modes, extensions, SANs, purposes checked with X509_verify_cert), refused inputs (mismatched
 * pairs, loose permissions, half pairs, encrypted or garbage keys), idempotence (inode and mtime
 * unchanged), reset, client issuance, expired certificates, and end-to-end mutual TLS between
 * common/http_server and common/http_client on 127.0.0.1 with the generated files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "http_client.h"
#include "http_server.h"
#include "tls_ca.h"

static char g_tmp[64];
static char g_ca[128];       /* g_tmp/ca, made by setup */

static const char *const ALL_FILES[] = { QTLS_F_CA_CERT, QTLS_F_CA_KEY, QTLS_F_SERVER_CERT, QTLS_F_SERVER_KEY,
                                         QTLS_F_CLIENT_CERT, QTLS_F_CLIENT_KEY, QTLS_F_TENANT_CERT,
                                         QTLS_F_TENANT_KEY };
#define NFILES (sizeof ALL_FILES / sizeof ALL_FILES[0])

static const char *const SERVER_NAMES[] = { "10.1.2.3", "verifier.example", "0.0.0.0", NULL };

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *P(const char *dir, const char *name)
{
    static char buf[8][512];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static X509 *cert(const char *dir, const char *name)
{
    qerr e = { 0 };
    X509 *x = qtls_read_cert(P(dir, name), &e);
    if (!x)
        fail_msg("%s", e.msg);
    return x;
}

static EVP_PKEY *key(const char *dir, const char *name)
{
    qerr e = { 0 };
    EVP_PKEY *k = qtls_read_key(P(dir, name), &e);
    if (!k)
        fail_msg("%s", e.msg);
    return k;
}

static bool has(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/quince-test-tlsca.XXXXXX");
    if (!mkdtemp(g_tmp))
        return -1;
    snprintf(g_ca, sizeof g_ca, "%s/ca", g_tmp);
    qerr e = { 0 };
    qtls_ca_report r;
    if (qtls_ensure_ca_dir(g_ca, SERVER_NAMES, NULL, NULL, &r, &e) < 0) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    return r.created == NFILES ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(g_tmp);
    return 0;
}

/* A fresh sub-directory of g_tmp (mode 0700). */
static const char *subdir(const char *name)
{
    static char buf[8][256];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", g_tmp, name);
    rm_rf(b);
    assert_int_equal(mkdir(b, 0700), 0);
    return b;
}

/* ---- the CA directory --------------------------------------------------------------------- */

static void test_files_and_modes(void **state)
{
    (void)state;
    assert_int_equal(mode_of(g_ca), 0700);
    for (size_t i = 0; i < NFILES; i++) {
        bool is_key = strstr(ALL_FILES[i], "key") != NULL;
        assert_int_equal(mode_of(P(g_ca, ALL_FILES[i])), is_key ? 0600 : 0644);
    }
    /* Keys are PKCS#8 PEM; no temporary files are left behind. */
    FILE *f = fopen(P(g_ca, QTLS_F_CA_KEY), "r");
    assert_non_null(f);
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "-----BEGIN PRIVATE KEY-----\n");
    DIR *d = opendir(g_ca);
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') {
            assert_null(strstr(de->d_name, ".tmp"));
            n++;
        }
    closedir(d);
    assert_int_equal(n, NFILES);
}

static void test_ca_certificate(void **state)
{
    (void)state;
    X509 *ca = cert(g_ca, QTLS_F_CA_CERT);
    EVP_PKEY *k = key(g_ca, QTLS_F_CA_KEY);
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
    assert_int_equal(X509_check_ca(ca), 1);
    /* basicConstraints critical CA:TRUE */
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_true(bc->ca);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(ca));
    assert_non_null(X509_get0_authority_key_id(ca));
    assert_int_equal(ASN1_STRING_cmp(X509_get0_subject_key_id(ca), X509_get0_authority_key_id(ca)), 0);
    /* 128-bit-wide positive serial, 10 years */
    const ASN1_INTEGER *sn = X509_get0_serialNumber(ca);
    assert_int_equal(ASN1_STRING_length(sn), 16);
    assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER);
    qtls_cert_info info;
    assert_int_equal(qtls_cert_info_get(ca, &info, NULL), 0);
    assert_true(info.is_ca);
    assert_true(info.self_signed);
    long days = (long)((info.na - info.nb) / QTLS_DAY_S);
    assert_true(days == QTLS_CA_DAYS);
    assert_true(has(info.subject, "CN=Quince CA "));
    assert_string_equal(info.key_desc, "EC P-256");
    /* the self-check */
    qerr e = { 0 };
    assert_int_equal(qtls_verify(ca, ca, 0, &e), 0);
    X509_free(ca);
    EVP_PKEY_free(k);
}

static void test_server_certificate(void **state)
{
    (void)state;
    X509 *ca = cert(g_ca, QTLS_F_CA_CERT);
    X509 *srv = cert(g_ca, QTLS_F_SERVER_CERT);
    /* X509_verify_cert directly, as a TLS server */
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, ca);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, st, srv, NULL);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    qerr e = { 0 };
    assert_int_equal(qtls_verify(srv, ca, QTLS_EKU_SERVER, &e), 0);
    /* not a client certificate */
    assert_int_equal(qtls_verify(srv, ca, QTLS_EKU_CLIENT, &e), -1);
    assert_true(has(e.msg, "purpose"));
    /* SANs: the configured names (not the wildcard) + loopback */
    const char *want[] = { "10.1.2.3", "verifier.example", "localhost", "127.0.0.1", "::1", "IP:10.1.2.3",
                           "DNS:verifier.example" };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!qtls_cert_has_name(srv, want[i]))
            fail_msg("server certificate lacks %s", want[i]);
    assert_false(qtls_cert_has_name(srv, "0.0.0.0"));
    assert_false(qtls_cert_has_name(srv, "other.example"));
    qtls_cert_info info;
    assert_int_equal(qtls_cert_info_get(srv, &info, NULL), 0);
    assert_int_equal(info.nnames, 5);
    assert_string_equal(info.names[0], "IP:10.1.2.3");
    assert_string_equal(info.names[1], "DNS:verifier.example");
    assert_int_equal(info.eku, QTLS_EKU_SERVER);
    assert_false(info.is_ca);
    assert_false(info.self_signed);
    assert_true(has(info.subject, "CN=10.1.2.3"));
    assert_true((info.na - info.nb) / QTLS_DAY_S == QTLS_LEAF_DAYS);
    assert_int_equal(ASN1_STRING_cmp(X509_get0_authority_key_id(srv), X509_get0_subject_key_id(ca)), 0);
    assert_int_equal(X509_get_key_usage(srv), KU_DIGITAL_SIGNATURE);
    X509_free(srv);
    X509_free(ca);
}

static void test_client_certificates(void **state)
{
    (void)state;
    X509 *ca = cert(g_ca, QTLS_F_CA_CERT);
    const char *files[] = { QTLS_F_CLIENT_CERT, QTLS_F_TENANT_CERT };
    const char *cns[] = { "CN=quince-verifier", "CN=quince-tenant" };
    for (int i = 0; i < 2; i++) {
        X509 *c = cert(g_ca, files[i]);
        qerr e = { 0 };
        if (qtls_verify(c, ca, QTLS_EKU_CLIENT, &e) < 0)
            fail_msg("%s: %s", files[i], e.msg);
        assert_int_equal(qtls_verify(c, ca, QTLS_EKU_SERVER, &e), -1);
        qtls_cert_info info;
        assert_int_equal(qtls_cert_info_get(c, &info, NULL), 0);
        assert_int_equal(info.eku, QTLS_EKU_CLIENT);
        assert_true(X509_get_extended_key_usage(c) & XKU_SSL_CLIENT);
        assert_true(has(info.subject, cns[i]));
        X509_free(c);
    }
    X509_free(ca);
}

static void test_mismatched_pair(void **state)
{
    (void)state;
    qerr e = { 0 };
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    assert_int_equal(qtls_load_pair(P(g_ca, QTLS_F_CLIENT_CERT), P(g_ca, QTLS_F_SERVER_KEY), &x, &k, &e), -1);
    assert_null(x);
    assert_null(k);
    char want[600];
    snprintf(want, sizeof want, "key %s does not match certificate %s", P(g_ca, QTLS_F_SERVER_KEY),
             P(g_ca, QTLS_F_CLIENT_CERT));
    assert_string_equal(e.msg, want);
    assert_int_equal(qtls_load_pair(P(g_ca, QTLS_F_CLIENT_CERT), P(g_ca, QTLS_F_CLIENT_KEY), &x, &k, &e), 0);
    X509_free(x);
    EVP_PKEY_free(k);

    /* The same mismatch inside a CA directory is found by ensure. */
    const char *d = subdir("mismatch");
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, NULL, &e), 0);
    assert_int_equal(unlink(P(d, QTLS_F_CLIENT_KEY)), 0);
    EVP_PKEY *other = qtls_key_new(QTLS_KEY_EC_P256, &e);
    assert_int_equal(qtls_write_key(P(d, QTLS_F_CLIENT_KEY), other, 0, &e), 0);
    EVP_PKEY_free(other);
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, NULL, &e), -1);
    assert_true(has(e.msg, "does not match certificate"));
}

static void test_dir_permissions(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *d = subdir("perm");
    assert_int_equal(chmod(d, 0770), 0);
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, NULL, &e), -1);
    assert_true(has(e.msg, "writable by group or others"));
    assert_int_equal(access(P(d, QTLS_F_CA_KEY), F_OK), -1);   /* nothing written */
    assert_int_equal(chmod(d, 0702), 0);
    assert_int_equal(qtls_check_dir(d, &e), -1);
    assert_int_equal(chmod(d, 0755), 0);                       /* readable is fine */
    assert_int_equal(qtls_check_dir(d, &e), 0);
    /* not owned by the running user */
    if (geteuid() == 0) {
        assert_int_equal(chown(d, 65534, 65534), 0);
        assert_int_equal(qtls_check_dir(d, &e), -1);
        assert_int_equal(chown(d, 0, 0), 0);
    } else {
        assert_int_equal(qtls_check_dir("/", &e), -1);
    }
    assert_true(has(e.msg, "not by the running user"));
    /* not a directory */
    assert_int_equal(qtls_check_dir(P(g_ca, QTLS_F_CA_CERT), &e), -1);
    assert_true(has(e.msg, "is not a directory"));
    /* a key file open to others */
    assert_int_equal(chmod(P(g_ca, QTLS_F_TENANT_KEY), 0644), 0);
    assert_null(qtls_read_key(P(g_ca, QTLS_F_TENANT_KEY), &e));
    assert_true(has(e.msg, "chmod 600"));
    assert_int_equal(qtls_ensure_ca_dir(g_ca, SERVER_NAMES, NULL, NULL, NULL, &e), -1);
    assert_int_equal(chmod(P(g_ca, QTLS_F_TENANT_KEY), 0600), 0);
}

static void test_idempotent(void **state)
{
    (void)state;
    struct stat before[NFILES], after[NFILES];
    for (size_t i = 0; i < NFILES; i++)
        assert_int_equal(stat(P(g_ca, ALL_FILES[i]), &before[i]), 0);
    qerr e = { 0 };
    qtls_ca_report r;
    if (qtls_ensure_ca_dir(g_ca, SERVER_NAMES, NULL, NULL, &r, &e) < 0)
        fail_msg("%s", e.msg);
    assert_int_equal(r.created, 0);
    assert_int_equal(r.kept, NFILES);
    assert_string_equal(r.warning, "");
    for (size_t i = 0; i < NFILES; i++) {
        assert_int_equal(stat(P(g_ca, ALL_FILES[i]), &after[i]), 0);
        assert_int_equal(before[i].st_ino, after[i].st_ino);
        assert_int_equal(before[i].st_mtim.tv_sec, after[i].st_mtim.tv_sec);
        assert_int_equal(before[i].st_mtim.tv_nsec, after[i].st_mtim.tv_nsec);
    }
    /* a configured name the existing server certificate lacks: a warning, files untouched */
    const char *more[] = { "10.1.2.3", "10.7.7.7", NULL };
    assert_int_equal(qtls_ensure_ca_dir(g_ca, more, NULL, NULL, &r, &e), 0);
    assert_int_equal(r.created, 0);
    assert_true(has(r.warning, "does not name 10.7.7.7"));
    struct stat s;
    assert_int_equal(stat(P(g_ca, QTLS_F_SERVER_CERT), &s), 0);
    assert_int_equal(s.st_ino, before[2].st_ino);
}

static void test_half_pairs(void **state)
{
    (void)state;
    qerr e = { 0 };
    qtls_ca_report r;
    const char *d = subdir("half");
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, &r, &e), 0);
    /* a certificate without its key */
    assert_int_equal(unlink(P(d, QTLS_F_SERVER_KEY)), 0);
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, &r, &e), -1);
    assert_true(has(e.msg, "exists without"));
    assert_true(has(e.msg, QTLS_F_SERVER_KEY));
    /* both gone: re-issued from the existing CA, nothing else touched */
    assert_int_equal(unlink(P(d, QTLS_F_SERVER_CERT)), 0);
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, &r, &e), 0);
    assert_int_equal(r.created, 2);
    assert_string_equal(r.created_files, "server-key.pem server-cert.pem");
    /* the CA key without its certificate */
    assert_int_equal(unlink(P(d, QTLS_F_CA_CERT)), 0);
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, &r, &e), -1);
    assert_true(has(e.msg, "ca reset"));
    /* a certificate that is not a CA in the CA's place */
    assert_int_equal(rename(P(d, QTLS_F_TENANT_CERT), P(d, QTLS_F_CA_CERT)), 0);
    assert_int_equal(rename(P(d, QTLS_F_TENANT_KEY), P(d, QTLS_F_CA_KEY)), 0);
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, &r, &e), -1);
    assert_true(has(e.msg, "is not a CA certificate"));
}

static void test_reset(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *d = subdir("reset");
    const char *extra[] = { "alice", NULL };
    qtls_ca_report r;
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, extra, NULL, &r, &e), 0);
    assert_int_equal(r.created, NFILES + 2);
    X509 *old_ca = cert(d, QTLS_F_CA_CERT);
    char moved[512];
    assert_int_equal(qtls_reset_ca_dir(d, moved, sizeof moved, &e), 0);
    assert_true(has(moved, "/old-"));
    assert_int_equal(mode_of(moved), 0700);
    for (size_t i = 0; i < NFILES; i++) {
        assert_int_equal(access(P(d, ALL_FILES[i]), F_OK), -1);
        assert_int_equal(access(P(moved, ALL_FILES[i]), F_OK), 0);
    }
    assert_int_equal(access(P(moved, "alice-cert.pem"), F_OK), 0);
    assert_int_equal(access(P(moved, "alice-key.pem"), F_OK), 0);
    assert_int_equal(mode_of(P(moved, QTLS_F_CA_KEY)), 0600);
    /* a new CA: the old server certificate no longer verifies */
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, &r, &e), 0);
    assert_int_equal(r.created, NFILES);
    X509 *new_ca = cert(d, QTLS_F_CA_CERT);
    assert_int_not_equal(X509_cmp(old_ca, new_ca), 0);
    X509 *old_srv = cert(moved, QTLS_F_SERVER_CERT);
    assert_int_equal(qtls_verify(old_srv, new_ca, QTLS_EKU_SERVER, &e), -1);
    assert_int_equal(qtls_verify(old_srv, old_ca, QTLS_EKU_SERVER, &e), 0);
    /* a second reset the same second gets its own directory */
    char moved2[512];
    assert_int_equal(qtls_reset_ca_dir(d, moved2, sizeof moved2, &e), 0);
    assert_string_not_equal(moved, moved2);
    /* an empty directory: nothing to move, no old-* made */
    assert_int_equal(qtls_reset_ca_dir(subdir("empty"), moved, sizeof moved, &e), 0);
    assert_string_equal(moved, "");
    X509_free(old_srv);
    X509_free(old_ca);
    X509_free(new_ca);
}

static void test_issue_client(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *out = subdir("issued");
    char cp[512], kp[512];
    if (qtls_issue_client(g_ca, "ops-laptop", out, NULL, cp, kp, sizeof cp, &e) < 0)
        fail_msg("%s", e.msg);
    assert_string_equal(cp, P(out, "ops-laptop-cert.pem"));
    assert_string_equal(kp, P(out, "ops-laptop-key.pem"));
    assert_int_equal(mode_of(kp), 0600);
    assert_int_equal(mode_of(cp), 0644);
    X509 *ca = cert(g_ca, QTLS_F_CA_CERT), *c = NULL;
    assert_int_equal(qtls_load_pair(cp, kp, &c, NULL, &e), 0);
    assert_int_equal(qtls_verify(c, ca, QTLS_EKU_CLIENT, &e), 0);
    X509_free(c);
    X509_free(ca);
    /* never replaced */
    assert_int_equal(qtls_issue_client(g_ca, "ops-laptop", out, NULL, NULL, NULL, 0, &e), -1);
    assert_true(has(e.msg, "already exists"));
    /* bad names */
    const char *bad[] = { "", ".hidden", "a/b", "a b", "x\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(qtls_issue_client(g_ca, bad[i], out, NULL, NULL, NULL, 0, &e), -1);
        assert_true(has(e.msg, "invalid client name"));
    }
    /* no CA there */
    assert_int_equal(qtls_issue_client(subdir("noca"), "bob", out, NULL, NULL, NULL, 0, &e), -1);
    assert_true(has(e.msg, "cacert.pem"));
}

static void test_expired(void **state)
{
    (void)state;
    qerr e = { 0 };
    X509 *ca = cert(g_ca, QTLS_F_CA_CERT);
    EVP_PKEY *cak = key(g_ca, QTLS_F_CA_KEY);
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_EC_P256, &e);
    qtls_cert_opts o = { .cn = "old", .eku = QTLS_EKU_CLIENT, .not_before_s = -2 * QTLS_DAY_S,
                         .not_after_s = -QTLS_DAY_S };
    X509 *c = qtls_make_cert(&o, k, ca, cak, &e);
    assert_non_null(c);
    assert_int_equal(qtls_verify(c, ca, QTLS_EKU_CLIENT, &e), -1);
    assert_string_equal(e.msg, "certificate has expired");
    X509_free(c);
    qtls_cert_opts future = { .cn = "later", .eku = QTLS_EKU_CLIENT, .not_before_s = QTLS_DAY_S,
                              .not_after_s = 2 * QTLS_DAY_S };
    c = qtls_make_cert(&future, k, ca, cak, &e);
    assert_int_equal(qtls_verify(c, ca, QTLS_EKU_CLIENT, &e), -1);
    assert_string_equal(e.msg, "certificate is not yet valid");
    X509_free(c);
    /* an expired leaf in the directory stops ensure with a remedy */
    const char *d = subdir("expired");
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, NULL, &e), 0);
    X509 *dca = cert(d, QTLS_F_CA_CERT);
    EVP_PKEY *dcak = key(d, QTLS_F_CA_KEY), *tk = key(d, QTLS_F_TENANT_KEY);
    o.cn = QTLS_TENANT_CN;
    c = qtls_make_cert(&o, tk, dca, dcak, &e);
    assert_int_equal(qtls_write_cert(P(d, QTLS_F_TENANT_CERT), c, QTLS_REPLACE, &e), 0);
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, NULL, NULL, NULL, &e), -1);
    assert_true(has(e.msg, "certificate has expired"));
    assert_true(has(e.msg, "re-issued"));
    X509_free(c);
    X509_free(dca);
    EVP_PKEY_free(dcak);
    EVP_PKEY_free(tk);
    /* not after before not before */
    qtls_cert_opts inverted = { .cn = "x", .not_before_s = 10, .not_after_s = 5 };
    assert_null(qtls_make_cert(&inverted, k, ca, cak, &e));
    EVP_PKEY_free(k);
    EVP_PKEY_free(cak);
    X509_free(ca);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    qerr e = { 0 };
    /* invalid names are refused before anything is made */
    char d[256];
    snprintf(d, sizeof d, "%s/never", g_tmp);
    const char *bad_srv[] = { "ok.example", "bad name", NULL };
    assert_int_equal(qtls_ensure_ca_dir(d, bad_srv, NULL, NULL, NULL, &e), -1);
    assert_true(has(e.msg, "invalid server name \"bad name\""));
    const char *bad_cli[] = { "server", NULL };
    assert_int_equal(qtls_ensure_ca_dir(d, NULL, bad_cli, NULL, NULL, &e), -1);
    assert_true(has(e.msg, "reserved"));
    assert_int_equal(access(d, F_OK), -1);
    assert_false(qtls_name_valid("a,DNS:b"));
    assert_false(qtls_name_valid("IP:not-an-ip"));
    assert_false(qtls_name_valid(""));
    assert_false(qtls_name_valid("-x.example"));
    assert_true(qtls_name_valid("fe80::1"));
    assert_true(qtls_name_valid("DNS:host-1.example"));
    /* the parent must exist */
    assert_int_equal(qtls_ensure_ca_dir("/nonexistent-quince/ca", NULL, NULL, NULL, NULL, &e), -1);
    assert_true(has(e.msg, "cannot create the CA directory"));
    /* a CN too long, too many names */
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_EC_P256, &e);
    char longcn[80];
    memset(longcn, 'a', sizeof longcn - 1);
    longcn[sizeof longcn - 1] = '\0';
    qtls_cert_opts o = { .cn = longcn };
    assert_null(qtls_make_cert(&o, k, NULL, NULL, &e));
    assert_true(has(e.msg, "common name"));
    const char *many[QTLS_MAX_NAMES + 2];
    for (int i = 0; i < QTLS_MAX_NAMES + 1; i++)
        many[i] = "h.example";
    many[QTLS_MAX_NAMES + 1] = NULL;
    o.cn = "x";
    o.names = many;
    assert_null(qtls_make_cert(&o, k, NULL, NULL, &e));
    assert_true(has(e.msg, "subject alternative names"));
    /* garbage, missing and encrypted keys; a key in place of a certificate */
    const char *g = P(subdir("garbage"), "g.pem");
    FILE *f = fopen(g, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nnot base64 !!\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    chmod(g, 0600);
    assert_null(qtls_read_key(g, &e));
    assert_true(has(e.msg, "no usable PEM private key"));
    assert_null(qtls_read_cert(g, &e));
    assert_true(has(e.msg, "holds no PEM certificate"));
    assert_null(qtls_read_key("/nonexistent-quince/k.pem", &e));
    assert_true(has(e.msg, "cannot read /nonexistent-quince/k.pem"));
    const char *enc = P(g_tmp, "garbage/enc.pem");
    f = fopen(enc, "w");
    assert_int_equal(PEM_write_PKCS8PrivateKey(f, k, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)"secret"), 1);
    fclose(f);
    chmod(enc, 0600);
    assert_null(qtls_read_key(enc, &e));       /* refused, never prompted */
    assert_true(has(e.msg, "encrypted"));
    assert_null(qtls_read_cert(P(g_ca, QTLS_F_CA_KEY), &e));
    /* a file too large */
    const char *big = P(g_tmp, "garbage/big.pem");
    f = fopen(big, "w");
    for (unsigned i = 0; i < QTLS_FILE_MAX / 64 + 2; i++)
        fputs("0123456789012345678901234567890123456789012345678901234567890123", f);
    fclose(f);
    assert_null(qtls_read_cert(big, &e));
    assert_true(has(e.msg, "larger than"));
    EVP_PKEY_free(k);
    /* key types */
    qtls_key_type t;
    assert_int_equal(qtls_key_type_parse("RSA", &t), 0);
    assert_int_equal(t, QTLS_KEY_RSA_3072);
    assert_int_equal(qtls_key_type_parse("ec", &t), 0);
    assert_int_equal(t, QTLS_KEY_EC_P256);
    assert_int_equal(qtls_key_type_parse("dsa", &t), -1);
}

static void test_write_no_clobber(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *d = subdir("write");
    X509 *ca = cert(g_ca, QTLS_F_CA_CERT), *srv = cert(g_ca, QTLS_F_SERVER_CERT);
    assert_int_equal(qtls_write_cert(P(d, "c.pem"), ca, 0, &e), 0);
    assert_int_equal(qtls_write_cert(P(d, "c.pem"), srv, 0, &e), -1);
    assert_true(has(e.msg, "already exists"));
    X509 *back = cert(d, "c.pem");
    assert_int_equal(X509_cmp(back, ca), 0);
    X509_free(back);
    assert_int_equal(qtls_write_cert(P(d, "c.pem"), srv, QTLS_REPLACE, &e), 0);
    back = cert(d, "c.pem");
    assert_int_equal(X509_cmp(back, srv), 0);
    X509_free(back);
    /* the umask does not change the modes */
    mode_t old = umask(0077);
    assert_int_equal(qtls_write_cert(P(d, "u.pem"), ca, 0, &e), 0);
    umask(old);
    assert_int_equal(mode_of(P(d, "u.pem")), 0644);
    /* no temporary files left */
    DIR *dir = opendir(d);
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        assert_null(strstr(de->d_name, ".tmp"));
    closedir(dir);
    /* a missing directory */
    assert_int_equal(qtls_write_cert(P(d, "no/such.pem"), ca, 0, &e), -1);
    assert_true(has(e.msg, "cannot create"));
    X509_free(ca);
    X509_free(srv);
}

static void test_rsa(void **state)
{
    (void)state;
    qerr e = { 0 };
    const char *d = subdir("rsa");
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_RSA_3072, &e);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_bits(k), 3072);
    X509 *ca = qtls_make_ca(k, "RSA test CA", 30, &e);
    assert_non_null(ca);
    assert_int_equal(qtls_write_key(P(d, "k.pem"), k, 0, &e), 0);
    assert_int_equal(qtls_write_cert(P(d, "c.pem"), ca, 0, &e), 0);
    assert_int_equal(qtls_load_pair(P(d, "c.pem"), P(d, "k.pem"), NULL, NULL, &e), 0);
    qtls_cert_info info;
    assert_int_equal(qtls_cert_info_get(ca, &info, NULL), 0);
    assert_string_equal(info.key_desc, "RSA 3072");
    assert_true(has(info.subject, "CN=RSA test CA"));
    X509_free(ca);
    EVP_PKEY_free(k);
}

/* ---- end-to-end mutual TLS ---------------------------------------------------------------- */

static void h_whoami(qhttp_req *r, void *ctx)
{
    (void)ctx;
    cJSON *o = cJSON_CreateObject();
    const char *dn = qhttp_req_client_dn(r);
    cJSON_AddStringToObject(o, "dn", dn ? dn : "");
    qhttp_reply(r, 200, o);
}

static const qhttp_route ROUTES[] = { { "GET", "/whoami", h_whoami, NULL } };

static qhttp_server *start_server(const char *cert_file, const char *key_file)
{
    qerr e = { 0 };
    qhttp_server_opts o = { .ip = "127.0.0.1", .threads = 2, .tls_cert_file = cert_file, .tls_key_file = key_file,
                            .tls_ca_file = P(g_ca, QTLS_F_CA_CERT), .require_client_cert = true,
                            .log_module = "test" };
    qhttp_server *s = qhttp_server_start(&o, ROUTES, 1, &e);
    if (!s)
        fail_msg("TLS server: %s", e.msg);
    return s;
}

/* GET with the given client certificate; returns the status, or -1 with e filled. */
static long get(qhttp_server *s, const char *scheme, const char *cert_file, const char *key_file, bool no_host,
                qerr *e, char *dn, size_t dncap)
{
    char url[128];
    snprintf(url, sizeof url, "%s://127.0.0.1:%u/whoami", scheme, qhttp_server_port(s));
    qhttp_client_opts co = { .ca_file = P(g_ca, QTLS_F_CA_CERT), .cert_file = cert_file, .key_file = key_file,
                             .no_verify_host = no_host, .timeout_ms = 10000 };
    qhttp_client *c = qhttp_client_new(&co, e);
    assert_non_null(c);
    qhttp_result r;
    long status = -1;
    if (qhttp_get(c, url, &r, e) == 0) {
        status = r.status;
        if (dn && dncap) {
            const cJSON *v = r.results ? cJSON_GetObjectItemCaseSensitive(r.results, "dn") : NULL;
            snprintf(dn, dncap, "%s", cJSON_IsString(v) ? v->valuestring : "");
        }
        if (status != 200)
            snprintf(e->msg, sizeof e->msg, "%s", r.status_text ? r.status_text : "");
    }
    qhttp_result_free(&r);
    qhttp_client_free(c);
    return status;
}

static void test_tls_end_to_end(void **state)
{
    (void)state;
    qerr e = { 0 };
    qhttp_server *s = start_server(P(g_ca, QTLS_F_SERVER_CERT), P(g_ca, QTLS_F_SERVER_KEY));
    char dn[256];

    /* the verifier's and the tenant's generated client certificates */
    long st = get(s, "https", P(g_ca, QTLS_F_CLIENT_CERT), P(g_ca, QTLS_F_CLIENT_KEY), false, &e, dn, sizeof dn);
    if (st != 200)
        fail_msg("verifier client: %ld %s", st, e.msg);
    assert_string_equal(dn, "CN=quince-verifier,O=Quince");
    st = get(s, "https", P(g_ca, QTLS_F_TENANT_CERT), P(g_ca, QTLS_F_TENANT_KEY), false, &e, dn, sizeof dn);
    assert_int_equal(st, 200);
    assert_string_equal(dn, "CN=quince-tenant,O=Quince");

    /* no client certificate → 403 */
    st = get(s, "https", NULL, NULL, false, &e, NULL, 0);
    assert_int_equal(st, 403);
    assert_true(has(e.msg, "no client certificate"));

    /* a client certificate from another CA → refused */
    char other[256];
    snprintf(other, sizeof other, "%s/otherca", g_tmp);
    assert_int_equal(qtls_ensure_ca_dir(other, NULL, NULL, NULL, NULL, &e), 0);
    st = get(s, "https", P(other, QTLS_F_CLIENT_CERT), P(other, QTLS_F_CLIENT_KEY), false, &e, NULL, 0);
    assert_true(st == -1 || st == 403);
    if (st == 403)
        assert_true(has(e.msg, "client certificate rejected"));

    /* an expired client certificate from the right CA → refused */
    const char *d = subdir("e2e");
    X509 *ca = cert(g_ca, QTLS_F_CA_CERT);
    EVP_PKEY *cak = key(g_ca, QTLS_F_CA_KEY);
    EVP_PKEY *k = qtls_key_new(QTLS_KEY_EC_P256, &e);
    qtls_cert_opts old = { .cn = "expired-client", .eku = QTLS_EKU_CLIENT, .not_before_s = -3 * QTLS_DAY_S,
                           .not_after_s = -QTLS_DAY_S };
    X509 *c = qtls_make_cert(&old, k, ca, cak, &e);
    assert_int_equal(qtls_write_cert(P(d, "exp-cert.pem"), c, 0, &e), 0);
    assert_int_equal(qtls_write_key(P(d, "exp-key.pem"), k, 0, &e), 0);
    X509_free(c);
    st = get(s, "https", P(d, "exp-cert.pem"), P(d, "exp-key.pem"), false, &e, NULL, 0);
    assert_true(st == -1 || st == 403);
    if (st == 403)
        assert_true(has(e.msg, "expired"));

    /* plain HTTP to the TLS port: a clean error, and the server carries on */
    st = get(s, "http", NULL, NULL, false, &e, NULL, 0);
    assert_int_equal(st, -1);
    print_message("plain HTTP to the TLS port: %s\n", e.msg);
    assert_true(e.msg[0] != '\0');
    st = get(s, "https", P(g_ca, QTLS_F_CLIENT_CERT), P(g_ca, QTLS_F_CLIENT_KEY), false, &e, NULL, 0);
    assert_int_equal(st, 200);
    qhttp_server_stop(s);

    /* a server certificate with a wrong name: refused by name, unless the host check is off */
    const char *wrong[] = { "wrong.example", NULL };
    qtls_cert_opts wo = { .cn = "wrong.example", .names = wrong, .eku = QTLS_EKU_SERVER };
    c = qtls_make_cert(&wo, k, ca, cak, &e);
    assert_int_equal(qtls_write_cert(P(d, "wrong-cert.pem"), c, 0, &e), 0);
    X509_free(c);
    s = start_server(P(d, "wrong-cert.pem"), P(d, "exp-key.pem"));
    st = get(s, "https", P(g_ca, QTLS_F_CLIENT_CERT), P(g_ca, QTLS_F_CLIENT_KEY), false, &e, NULL, 0);
    assert_int_equal(st, -1);
    print_message("wrong server name: %s\n", e.msg);
    assert_true(has(e.msg, "TLS error with 127.0.0.1:"));
    assert_true(has(e.msg, "127.0.0.1'") || has(e.msg, "name"));
    st = get(s, "https", P(g_ca, QTLS_F_CLIENT_CERT), P(g_ca, QTLS_F_CLIENT_KEY), true, &e, NULL, 0);
    assert_int_equal(st, 200);
    qhttp_server_stop(s);

    /* an expired server certificate: the client refuses */
    qtls_cert_opts eo = { .cn = "127.0.0.1", .names = (const char *const[]){ "127.0.0.1", NULL },
                          .eku = QTLS_EKU_SERVER, .not_before_s = -3 * QTLS_DAY_S, .not_after_s = -QTLS_DAY_S };
    c = qtls_make_cert(&eo, k, ca, cak, &e);
    assert_int_equal(qtls_write_cert(P(d, "srvexp-cert.pem"), c, 0, &e), 0);
    X509_free(c);
    s = start_server(P(d, "srvexp-cert.pem"), P(d, "exp-key.pem"));
    st = get(s, "https", P(g_ca, QTLS_F_CLIENT_CERT), P(g_ca, QTLS_F_CLIENT_KEY), true, &e, NULL, 0);
    assert_int_equal(st, -1);
    print_message("expired server certificate: %s\n", e.msg);
    assert_true(has(e.msg, "expired"));
    qhttp_server_stop(s);

    /* mismatched key and certificate: the server does not start */
    qhttp_server_opts bad = { .ip = "127.0.0.1", .tls_cert_file = P(g_ca, QTLS_F_SERVER_CERT),
                              .tls_key_file = P(g_ca, QTLS_F_CLIENT_KEY), .tls_ca_file = P(g_ca, QTLS_F_CA_CERT),
                              .require_client_cert = true };
    assert_null(qhttp_server_start(&bad, ROUTES, 1, &e));

    EVP_PKEY_free(k);
    EVP_PKEY_free(cak);
    X509_free(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_and_modes),
        cmocka_unit_test(test_ca_certificate),
        cmocka_unit_test(test_server_certificate),
        cmocka_unit_test(test_client_certificates),
        cmocka_unit_test(test_mismatched_pair),
        cmocka_unit_test(test_dir_permissions),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_half_pairs),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_issue_client),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_write_no_clobber),
        cmocka_unit_test(test_rsa),
        cmocka_unit_test(test_tls_end_to_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
