/* tls_tool — test-only: certificates the product never makes, for the mTLS tests, made with
 * common/tls_ca.h (never the openssl program).
 *
 *   tls_tool leaf --ca-dir DIR --cn CN --eku client|server --cert OUT --key OUT [--san NAME ...]
 *                 [--expired]
 *
 * A new EC key and a leaf certificate signed by DIR/cacert.pem with DIR/cakey.pem: for example an
 * expired client certificate (--expired: valid from 30 days ago to 1 day ago) or a server
 * certificate whose names are not the server's address (--san wrong.example). Exit status 0, or
 * 1 with one line on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls_ca.h"

#define MAX_SANS 8

static int usage(void)
{
    fprintf(stderr, "usage: tls_tool leaf --ca-dir DIR --cn CN --eku client|server --cert OUT --key OUT "
                    "[--san NAME ...] [--expired]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "leaf") != 0)
        return usage();
    const char *dir = NULL, *cn = NULL, *eku = NULL, *cert = NULL, *key = NULL;
    const char *sans[MAX_SANS + 1] = { 0 };
    size_t nsans = 0;
    int expired = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--expired") == 0) {
            expired = 1;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--ca-dir") == 0)
            dir = v;
        else if (strcmp(a, "--cn") == 0)
            cn = v;
        else if (strcmp(a, "--eku") == 0)
            eku = v;
        else if (strcmp(a, "--cert") == 0)
            cert = v;
        else if (strcmp(a, "--key") == 0)
            key = v;
        else if (strcmp(a, "--san") == 0 && nsans < MAX_SANS)
            sans[nsans++] = v;
        else
            return usage();
    }
    if (!dir || !cn || !eku || !cert || !key || (strcmp(eku, "client") != 0 && strcmp(eku, "server") != 0))
        return usage();

    char cp[4096], kp[4096];
    snprintf(cp, sizeof cp, "%s/%s", dir, QTLS_F_CA_CERT);
    snprintf(kp, sizeof kp, "%s/%s", dir, QTLS_F_CA_KEY);
    qerr e = { 0 };
    X509 *ca = NULL, *leaf = NULL;
    EVP_PKEY *ca_key = NULL, *k = NULL;
    int rc = 1;
    qtls_cert_opts o = { .cn = cn, .names = nsans ? sans : NULL,
                         .eku = strcmp(eku, "client") == 0 ? QTLS_EKU_CLIENT : QTLS_EKU_SERVER };
    if (expired) {
        o.not_before_s = -30 * QTLS_DAY_S;
        o.not_after_s = -QTLS_DAY_S;
    }
    if (qtls_load_pair(cp, kp, &ca, &ca_key, &e) == 0 && (k = qtls_key_new(QTLS_KEY_EC_P256, &e)) &&
        (leaf = qtls_make_cert(&o, k, ca, ca_key, &e)) && qtls_write_cert(cert, leaf, QTLS_REPLACE, &e) == 0 &&
        qtls_write_key(key, k, QTLS_REPLACE, &e) == 0)
        rc = 0;
    if (rc)
        fprintf(stderr, "tls_tool: %s\n", e.msg);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(k);
    return rc;
}
