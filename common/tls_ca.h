/* tls_ca.h — keys, X.509 certificates and the verifier's built-in certificate authority, made
 * with OpenSSL 3's API (never the `openssl` program).
 *
 * Contract:
 * - Keys: EC P-256 by default. It gives the same ~128-bit strength as RSA-3072 with keys made in
 *   about a millisecond (RSA-3072 takes a fraction of a second to seconds, with a long tail),
 *   smaller certificates and cheaper handshakes (the verifier opens connections to thousands of
 *   agents), and every TLS stack Quince and Keylime use (OpenSSL, GnuTLS, rustls) supports it.
 *   RSA-3072 is available for sites whose policy requires RSA.
 * - Certificates: X.509 v3, signed with SHA-256, a random positive 128-bit-wide serial (127 random
 *   bits), subject O=Quince + CN, subjectKeyIdentifier on all and authorityKeyIdentifier (key id)
 *   on all. CA: basicConstraints CA:TRUE critical, keyUsage keyCertSign|cRLSign critical.
 *   Leaves: basicConstraints CA:FALSE critical, keyUsage digitalSignature (+keyEncipherment for
 *   RSA) critical, extendedKeyUsage from qtls_cert_opts.eku, subjectAltName from names.
 *   notBefore defaults to now - QTLS_SKEW_S (clock skew between machines).
 * - Files: keys are unencrypted PKCS#8 PEM, mode 0600; certificates PEM, mode 0644. Each is
 *   written to a fresh temporary file beside the target (open O_CREAT|O_EXCL with the final
 *   mode, fchmod against the umask, write, fsync), then linked into place, so an existing file
 *   is never overwritten (error "X already exists"), or renamed over it with QTLS_REPLACE.
 *   Readers are bounded (QTLS_FILE_MAX) and never prompt for a pass phrase.
 * - Permissions: a TLS directory must be a directory owned by the running user and not writable
 *   by group or others. A key file must not be writable by group nor accessible by others.
 * - The CA directory (qtls_ensure_ca_dir): see below. Files are named QTLS_F_*.
 * - Library code: never exits or prints; -1/NULL with a one-line qerr naming the file. */
#ifndef QUINCE_TLS_CA_H
#define QUINCE_TLS_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <sys/stat.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

#define QTLS_MAX_NAMES   32              /* subjectAltName entries per certificate */
#define QTLS_NAME_MAX    253             /* one DNS name or IP address text */
#define QTLS_CN_MAX      64              /* X.520 upper bound for a CN */
#define QTLS_FILE_MAX    (256u * 1024)   /* largest key or certificate file read */
#define QTLS_SKEW_S      300L
#define QTLS_CA_DAYS     3650L           /* 10 years */
#define QTLS_LEAF_DAYS   730L            /* 2 years */
#define QTLS_DAY_S       86400L

#define QTLS_EKU_SERVER  1u
#define QTLS_EKU_CLIENT  2u

#define QTLS_REPLACE     1u              /* qtls_write_*: rename over an existing file */

/* The CA directory's files. */
#define QTLS_F_CA_CERT      "cacert.pem"
#define QTLS_F_CA_KEY       "cakey.pem"
#define QTLS_F_SERVER_CERT  "server-cert.pem"
#define QTLS_F_SERVER_KEY   "server-key.pem"
#define QTLS_F_CLIENT_CERT  "client-cert.pem"    /* the verifier's own client certificate */
#define QTLS_F_CLIENT_KEY   "client-key.pem"
#define QTLS_F_TENANT_CERT  "tenant-cert.pem"
#define QTLS_F_TENANT_KEY   "tenant-key.pem"
#define QTLS_VERIFIER_CN    "quince-verifier"
#define QTLS_TENANT_CN      "quince-tenant"

typedef enum qtls_key_type { QTLS_KEY_EC_P256 = 0, QTLS_KEY_RSA_3072 = 1 } qtls_key_type;

/* A certificate to make. Times are seconds relative to now and may lie in the past (tests make
 * expired certificates that way). */
typedef struct qtls_cert_opts {
    const char *cn;                 /* subject CN, 1..QTLS_CN_MAX bytes (required) */
    const char *const *names;       /* subjectAltName, NULL-terminated or NULL: "IP:a.b.c.d",
                                       "DNS:host", or bare (an IPv4/IPv6 literal → IP, else DNS) */
    unsigned eku;                   /* QTLS_EKU_* bits */
    long not_before_s;              /* 0 → -QTLS_SKEW_S */
    long not_after_s;               /* 0 → QTLS_LEAF_DAYS days */
} qtls_cert_opts;

/* What a certificate says, for listings and checks. */
typedef struct qtls_cert_info {
    char subject[256], issuer[256];
    char serial[80];                /* hex */
    char not_before[32], not_after[32];   /* "2026-01-02 03:04:05 UTC" */
    time_t nb, na;
    bool is_ca, self_signed;
    unsigned eku;                   /* QTLS_EKU_* bits found */
    char key_desc[32];              /* "EC P-256", "RSA 3072", ... */
    size_t nnames;
    char names[QTLS_MAX_NAMES][QTLS_NAME_MAX + 5];   /* "IP:..." / "DNS:..." */
} qtls_cert_info;

/* ---- keys and certificates ----------------------------------------------------------------- */
EVP_PKEY *qtls_key_new(qtls_key_type type, qerr *err);
/* "ec", "ec-p256", "p256", "rsa", "rsa-3072", "rsa3072" (any case). Returns 0 or -1. */
int qtls_key_type_parse(const char *s, qtls_key_type *out);
/* A self-signed CA certificate for key. cn NULL → "Quince CA <first 8 hex digits of SHA-256(public key)>";
 * days 0 → QTLS_CA_DAYS. */
X509 *qtls_make_ca(EVP_PKEY *key, const char *cn, long days, qerr *err);
/* A leaf certificate for key, signed by ca/ca_key, or self-signed when ca is NULL. */
X509 *qtls_make_cert(const qtls_cert_opts *o, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, qerr *err);

/* ---- files -------------------------------------------------------------------------------- */
int qtls_write_key(const char *path, EVP_PKEY *key, unsigned flags, qerr *err);    /* 0600 */
int qtls_write_cert(const char *path, X509 *crt, unsigned flags, qerr *err);       /* 0644 */
/* A whole regular file of at most QTLS_FILE_MAX bytes as a memory BIO over a malloc'd,
 * NUL-terminated buffer (*buf, *len; the caller frees the BIO, then cleanses and frees *buf).
 * key: refuse a file that group may write or others may access. st, if not NULL: the fstat of
 * the file read. */
BIO *qtls_read_file(const char *path, bool key, struct stat *st, char **buf, size_t *len, qerr *err);
/* PEM pass-phrase callback that never gives one: an encrypted key fails to parse. */
int qtls_no_passphrase(char *buf, int size, int rwflag, void *u);
/* The first certificate in a PEM file. */
X509 *qtls_read_cert(const char *path, qerr *err);
/* A PEM private key (PKCS#8 or traditional; an encrypted one is refused, never prompted for);
 * refuses a file that group may write or others may access. */
EVP_PKEY *qtls_read_key(const char *path, qerr *err);
/* Both, and the key must belong to the certificate: "key K does not match certificate C". Either
 * out pointer may be NULL (the object is freed). */
int qtls_load_pair(const char *cert_path, const char *key_path, X509 **crt, EVP_PKEY **key, qerr *err);
/* PEM text (malloc'd, NUL-terminated; *len without the NUL when len is non-NULL). Free a key's
 * text with qtls_free_secret. */
char *qtls_cert_pem(X509 *crt, size_t *len, qerr *err);
char *qtls_key_pem(EVP_PKEY *key, size_t *len, qerr *err);
void qtls_free_secret(char *s);          /* wipe then free; NULL is fine */
/* "dir is owned by uid N, not by the running user (uid M)", "... writable by group or others". */
int qtls_check_dir(const char *dir, qerr *err);

/* ---- checks ------------------------------------------------------------------------------- */
/* Chain check with X509_verify_cert against the single trust anchor ca (dates, signature,
 * purpose: QTLS_EKU_SERVER → TLS server, QTLS_EKU_CLIENT → TLS client, 0 → any). The message is
 * OpenSSL's reason, e.g. "certificate has expired". */
int qtls_verify(X509 *crt, X509 *ca, unsigned eku, qerr *err);
/* Is name acceptable as a subjectAltName entry (see qtls_cert_opts.names)? */
bool qtls_name_valid(const char *name);
/* Does a subjectAltName cover name (IP literal or DNS name; bare or with "IP:"/"DNS:")? */
bool qtls_cert_has_name(X509 *crt, const char *name);
int qtls_cert_info_get(X509 *crt, qtls_cert_info *out, qerr *err);

/* ---- the CA directory --------------------------------------------------------------------- */
typedef struct qtls_ca_opts {
    qtls_key_type key_type;         /* for keys made now */
    long ca_days;                   /* 0 → QTLS_CA_DAYS */
    long leaf_days;                 /* 0 → QTLS_LEAF_DAYS */
    const char *ca_cn;              /* NULL → see qtls_make_ca */
} qtls_ca_opts;

typedef struct qtls_ca_report {
    unsigned created, kept;         /* files made by this call / found and checked */
    char created_files[512];        /* "cacert.pem cakey.pem ..." */
    char warning[512];              /* "" or e.g. a configured address the server cert lacks */
} qtls_ca_report;

/* Make dir a working CA directory. dir is created (0700) when missing, its parent must exist;
 * then qtls_check_dir. Missing files are made: the CA (cacert.pem, cakey.pem); the server
 * certificate (serverAuth; SANs: server_names, skipping wildcard addresses such as 0.0.0.0 and
 * "::", plus localhost, 127.0.0.1 and ::1; CN the first name); the verifier's client certificate
 * (CN quince-verifier, clientAuth) and the tenant's (CN quince-tenant, clientAuth); and one client
 * certificate per extra name in client_names (NULL-terminated or NULL; CN = the name, files
 * <name>-cert.pem / <name>-key.pem; names are [A-Za-z0-9._-], not starting with '.').
 * Existing files are never rewritten but are checked: every key matches its certificate, the CA
 * is a valid CA, every leaf verifies against it for its purpose; a certificate without its key
 * (or the reverse) is an error. A server certificate that lacks a configured name is only a
 * warning in report. opts and report may be NULL. */
int qtls_ensure_ca_dir(const char *dir, const char *const *server_names, const char *const *client_names,
                       const qtls_ca_opts *opts, qtls_ca_report *report, qerr *err);
/* A new client key + certificate signed by dir's CA (CN cn, clientAuth), written to
 * out_dir/<cn>-cert.pem and <cn>-key.pem (out_dir NULL → dir); existing files are not replaced.
 * cert_path/key_path (cap bytes each, may be NULL) receive the paths written. */
int qtls_issue_client(const char *dir, const char *cn, const char *out_dir, const qtls_ca_opts *opts,
                      char *cert_path, char *key_path, size_t cap, qerr *err);
/* Start afresh: move every *.pem in dir into a new dir/old-<YYYYmmdd-HHMMSS>[-N]/ (mode 0700).
 * moved_to (cap bytes, may be NULL) receives that path. Call qtls_ensure_ca_dir next. */
int qtls_reset_ca_dir(const char *dir, char *moved_to, size_t cap, qerr *err);

#endif
