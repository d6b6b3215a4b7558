/* tls_ca.c — keys, certificates, their files and checks; see tls_ca.h. */
#include "tls_ca.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

/* OpenSSL's reason for the last failure (the error queue is cleared). */
static const char *ossl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, cap, "%s", r ? r : "OpenSSL error");
    ERR_clear_error();
    return buf;
}

/* ---- keys --------------------------------------------------------------------------------- */

EVP_PKEY *qtls_key_new(qtls_key_type type, qerr *err)
{
    EVP_PKEY *k = NULL;
    if (type == QTLS_KEY_EC_P256)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (type == QTLS_KEY_RSA_3072)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    else {
        qerr_set(err, "unknown key type %d", (int)type);
        return NULL;
    }
    if (!k) {
        char why[128];
        qerr_set(err, "cannot generate a %s key: %s", type == QTLS_KEY_EC_P256 ? "EC P-256" : "RSA-3072",
                 ossl_reason(why, sizeof why));
    }
    return k;
}

int qtls_key_type_parse(const char *s, qtls_key_type *out)
{
    if (!s || !out)
        return -1;
    if (!strcasecmp(s, "ec") || !strcasecmp(s, "ec-p256") || !strcasecmp(s, "p256") || !strcasecmp(s, "p-256")) {
        *out = QTLS_KEY_EC_P256;
        return 0;
    }
    if (!strcasecmp(s, "rsa") || !strcasecmp(s, "rsa-3072") || !strcasecmp(s, "rsa3072")) {
        *out = QTLS_KEY_RSA_3072;
        return 0;
    }
    return -1;
}

/* ---- names -------------------------------------------------------------------------------- */

/* Split "IP:x" / "DNS:x" / "x" into a GEN_* type and the value; -1 if invalid. */
static int parse_name(const char *in, int *type, const char **val)
{
    if (!in)
        return -1;
    int t = -1;
    if (!strncasecmp(in, "IP:", 3)) {
        t = GEN_IPADD;
        in += 3;
    } else if (!strncasecmp(in, "DNS:", 4)) {
        t = GEN_DNS;
        in += 4;
    }
    size_t n = strlen(in);
    if (n == 0 || n > QTLS_NAME_MAX)
        return -1;
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, in, ip) == 1 || inet_pton(AF_INET6, in, ip) == 1;
    if (t == GEN_IPADD && !is_ip)
        return -1;
    if (t < 0)
        t = is_ip ? GEN_IPADD : GEN_DNS;
    if (t == GEN_DNS) {
        if (in[0] == '.' || in[0] == '-' || in[n - 1] == '.' || strstr(in, ".."))
            return -1;
        for (const char *p = in; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_' && !(*p == '*' && p == in))
                return -1;
    }
    *type = t;
    *val = in;
    return 0;
}

bool qtls_name_valid(const char *name)
{
    int t;
    const char *v;
    return parse_name(name, &t, &v) == 0;
}

static int add_sans(X509 *c, const char *const *names, qerr *err)
{
    if (!names || !names[0])
        return 0;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return qerr_set(err, "out of memory");
    int rc = 0;
    size_t count = 0;
    for (size_t i = 0; names[i]; i++) {
        int t;
        const char *v;
        if (++count > QTLS_MAX_NAMES) {
            rc = qerr_set(err, "more than %d subject alternative names", QTLS_MAX_NAMES);
            break;
        }
        if (parse_name(names[i], &t, &v) < 0) {
            rc = qerr_set(err, "invalid certificate name \"%.80s\" (an IP address or a DNS name)", names[i]);
            break;
        }
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_STRING *s = NULL;
        if (g && t == GEN_IPADD)
            s = a2i_IPADDRESS(v);
        else if (g) {
            s = ASN1_IA5STRING_new();
            if (s && ASN1_STRING_set(s, v, (int)strlen(v)) != 1) {
                ASN1_STRING_free(s);
                s = NULL;
            }
        }
        if (!g || !s) {
            GENERAL_NAME_free(g);
            rc = qerr_set(err, "cannot encode certificate name %.80s", names[i]);
            break;
        }
        GENERAL_NAME_set0_value(g, t, s);
        if (!sk_GENERAL_NAME_push(gens, g)) {
            GENERAL_NAME_free(g);
            rc = qerr_set(err, "out of memory");
            break;
        }
    }
    if (rc == 0 && X509_add1_ext_i2d(c, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        rc = qerr_set(err, "cannot add subjectAltName");
    GENERAL_NAMES_free(gens);
    return rc;
}

/* ---- certificates ------------------------------------------------------------------------- */

static int set_serial(X509 *c)
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1)
        return -1;
    r[0] &= 0x7f;                    /* positive */
    r[0] |= 0x40;                    /* and a full 16 bytes long */
    BIGNUM *bn = BN_bin2bn(r, sizeof r, NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static int add_conf(X509 *c, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ex && X509_add_ext(c, ex, -1) == 1;
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

static bool cn_valid(const char *cn)
{
    if (!cn || !*cn || strlen(cn) > QTLS_CN_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)cn; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* The common builder: issuer NULL → self-signed. */
static X509 *build(EVP_PKEY *key, const char *cn, long nb, long na, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
                   unsigned eku, const char *const *names, qerr *err)
{
    if (!key || (issuer && !issuer_key)) {
        qerr_set(err, "certificate: missing key");
        return NULL;
    }
    if (!cn_valid(cn)) {
        qerr_set(err, "certificate: invalid common name (1..%d printable bytes)", QTLS_CN_MAX);
        return NULL;
    }
    if (na <= nb) {
        qerr_set(err, "certificate: notAfter must lie after notBefore");
        return NULL;
    }
    if (issuer && X509_check_private_key(issuer, issuer_key) != 1) {
        ERR_clear_error();
        qerr_set(err, "certificate: the issuer key does not match the issuer certificate");
        return NULL;
    }
    X509 *c = X509_new();
    X509_NAME *n = X509_NAME_new();
    const char *step = "out of memory";
    if (!c || !n)
        goto fail;
    step = "cannot fill in the certificate";
    if (X509_set_version(c, X509_VERSION_3) != 1 || set_serial(c) < 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(c), nb) || !X509_gmtime_adj(X509_getm_notAfter(c), na) ||
        X509_set_pubkey(c, key) != 1 ||
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"Quince", -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_set_subject_name(c, n) != 1 || X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n) != 1)
        goto fail;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : c, c, NULL, NULL, 0);
    step = "cannot add the certificate extensions";
    bool rsa = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
    const char *ku = ca ? "critical,keyCertSign,cRLSign"
                        : rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
    if (add_conf(c, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") < 0 ||
        add_conf(c, &ctx, NID_key_usage, ku) < 0 || add_conf(c, &ctx, NID_subject_key_identifier, "hash") < 0 ||
        add_conf(c, &ctx, NID_authority_key_identifier, "keyid:always") < 0)
        goto fail;
    const char *xku = (eku & QTLS_EKU_SERVER) && (eku & QTLS_EKU_CLIENT) ? "serverAuth,clientAuth"
                      : (eku & QTLS_EKU_SERVER)                          ? "serverAuth"
                      : (eku & QTLS_EKU_CLIENT)                          ? "clientAuth" : NULL;
    if (xku && add_conf(c, &ctx, NID_ext_key_usage, xku) < 0)
        goto fail;
    if (add_sans(c, names, err) < 0) {
        X509_free(c);
        X509_NAME_free(n);
        ERR_clear_error();
        return NULL;
    }
    step = "cannot sign the certificate";
    if (X509_sign(c, issuer ? issuer_key : key, EVP_sha256()) <= 0)
        goto fail;
    X509_NAME_free(n);
    return c;
fail: {
        char why[128];
        qerr_set(err, "%s: %s", step, ossl_reason(why, sizeof why));
    }
    X509_free(c);
    X509_NAME_free(n);
    return NULL;
}

X509 *qtls_make_ca(EVP_PKEY *key, const char *cn, long days, qerr *err)
{
    char def[QTLS_CN_MAX + 1];
    if (!key) {
        qerr_set(err, "CA: missing key");
        return NULL;
    }
    if (!cn) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        unsigned char *der = NULL;
        int dl = i2d_PUBKEY(key, &der);
        if (dl <= 0 || EVP_Digest(der, (size_t)dl, md, &mdlen, EVP_sha256(), NULL) != 1) {
            OPENSSL_free(der);
            qerr_set(err, "CA: cannot hash the public key");
            return NULL;
        }
        OPENSSL_free(der);
        snprintf(def, sizeof def, "Quince CA %02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
        cn = def;
    }
    if (days <= 0)
        days = QTLS_CA_DAYS;
    return build(key, cn, -QTLS_SKEW_S, days * QTLS_DAY_S, NULL, NULL, true, 0, NULL, err);
}

X509 *qtls_make_cert(const qtls_cert_opts *o, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, qerr *err)
{
    if (!o) {
        qerr_set(err, "certificate: missing options");
        return NULL;
    }
    long nb = o->not_before_s ? o->not_before_s : -QTLS_SKEW_S;
    long na = o->not_after_s ? o->not_after_s : QTLS_LEAF_DAYS * QTLS_DAY_S;
    return build(key, o->cn, nb, na, ca, ca_key, false, o->eku, o->names, err);
}

/* ---- PEM text ----------------------------------------------------------------------------- */

static char *bio_text(BIO *b, size_t *len, bool secret, qerr *err)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) {
        qerr_set(err, "out of memory");
    } else {
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    if (secret && n > 0)
        OPENSSL_cleanse(data, (size_t)n);
    return s;
}

char *qtls_cert_pem(X509 *crt, size_t *len, qerr *err)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || !crt || PEM_write_bio_X509(b, crt) != 1) {
        BIO_free(b);
        ERR_clear_error();
        qerr_set(err, "cannot encode the certificate as PEM");
        return NULL;
    }
    char *s = bio_text(b, len, false, err);
    BIO_free(b);
    return s;
}

char *qtls_key_pem(EVP_PKEY *key, size_t *len, qerr *err)
{
    BIO *b = BIO_new(BIO_s_secmem());
    if (!b)
        b = BIO_new(BIO_s_mem());
    /* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3. */
    if (!b || !key || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(b);
        ERR_clear_error();
        qerr_set(err, "cannot encode the key as PEM");
        return NULL;
    }
    char *s = bio_text(b, len, true, err);
    BIO_free(b);
    return s;
}

void qtls_free_secret(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* ---- files -------------------------------------------------------------------------------- */

static void fsync_parent(const char *path)
{
    char d[PATH_MAX];
    if (snprintf(d, sizeof d, "%s", path) >= (int)sizeof d)
        return;
    int fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Write data to a new temporary file beside path, then link it into place (or rename over). */
static int write_atomic(const char *path, mode_t mode, const char *data, size_t len, unsigned flags, qerr *err)
{
    static unsigned counter;
    char tmp[PATH_MAX];
    int fd = -1;
    for (int i = 0; i < 32 && fd < 0; i++) {
        unsigned k = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), k) >= (int)sizeof tmp)
            return qerr_set(err, "path too long: %.200s", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST)
            return qerr_set(err, "cannot create %s: %s", tmp, strerror(errno));
    }
    if (fd < 0)
        return qerr_set(err, "cannot create a temporary file for %s", path);
    int rc = 0;
    if (fchmod(fd, mode) < 0)
        rc = qerr_set(err, "cannot set the mode of %s: %s", tmp, strerror(errno));
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = qerr_set(err, "cannot write %s: %s", tmp, w < 0 ? strerror(errno) : "short write");
        else
            off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = qerr_set(err, "cannot write %s: %s", tmp, strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = qerr_set(err, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0) {
        if (flags & QTLS_REPLACE) {
            if (rename(tmp, path) < 0)
                rc = qerr_set(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        } else if (link(tmp, path) < 0) {
            if (errno == EEXIST)
                rc = qerr_set(err, "%s already exists", path);
            else
                rc = qerr_set(err, "cannot create %s: %s", path, strerror(errno));
        }
    }
    unlink(tmp);              /* after a rename this is a no-op */
    if (rc == 0)
        fsync_parent(path);
    return rc;
}

int qtls_write_key(const char *path, EVP_PKEY *key, unsigned flags, qerr *err)
{
    if (!path)
        return qerr_set(err, "key file: missing path");
    size_t len = 0;
    char *pem = qtls_key_pem(key, &len, err);
    if (!pem)
        return -1;
    int rc = write_atomic(path, 0600, pem, len, flags, err);
    qtls_free_secret(pem);
    return rc;
}

int qtls_write_cert(const char *path, X509 *crt, unsigned flags, qerr *err)
{
    if (!path)
        return qerr_set(err, "certificate file: missing path");
    size_t len = 0;
    char *pem = qtls_cert_pem(crt, &len, err);
    if (!pem)
        return -1;
    int rc = write_atomic(path, 0644, pem, len, flags, err);
    free(pem);
    return rc;
}

BIO *qtls_read_file(const char *path, bool key, struct stat *st_out, char **buf, size_t *len, qerr *err)
{
    *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        qerr_set(err, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        qerr_set(err, "%s is not a regular file", path);
        return NULL;
    }
    if (key && (st.st_mode & (S_IRWXO | S_IWGRP))) {
        close(fd);
        qerr_set(err, "key file %s is open to others or writable by group (mode %04o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        return NULL;
    }
    if ((unsigned long long)st.st_size > QTLS_FILE_MAX) {
        close(fd);
        qerr_set(err, "%s is larger than %u bytes", path, QTLS_FILE_MAX);
        return NULL;
    }
    char *b = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    if (!b) {
        close(fd);
        qerr_set(err, "out of memory");
        return NULL;
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, b + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    BIO *bio = BIO_new_mem_buf(b, (int)n);
    if (!bio) {
        OPENSSL_cleanse(b, n);
        free(b);
        qerr_set(err, "out of memory");
        return NULL;
    }
    *buf = b;
    *len = n;
    if (st_out)
        *st_out = st;
    return bio;
}

int qtls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

X509 *qtls_read_cert(const char *path, qerr *err)
{
    if (!path) {
        qerr_set(err, "certificate file: missing path");
        return NULL;
    }
    char *buf;
    size_t len;
    BIO *b = qtls_read_file(path, false, NULL, &buf, &len, err);
    if (!b)
        return NULL;
    X509 *x = PEM_read_bio_X509(b, NULL, qtls_no_passphrase, NULL);
    BIO_free(b);
    free(buf);
    if (!x) {
        char why[128];
        qerr_set(err, "%s holds no PEM certificate: %s", path, ossl_reason(why, sizeof why));
    }
    return x;
}

EVP_PKEY *qtls_read_key(const char *path, qerr *err)
{
    if (!path) {
        qerr_set(err, "key file: missing path");
        return NULL;
    }
    char *buf;
    size_t len;
    BIO *b = qtls_read_file(path, true, NULL, &buf, &len, err);
    if (!b)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, qtls_no_passphrase, NULL);
    BIO_free(b);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (!k) {
        char why[128];
        qerr_set(err, "%s holds no usable PEM private key (an encrypted key is not supported): %s", path,
                 ossl_reason(why, sizeof why));
    }
    return k;
}

int qtls_load_pair(const char *cert_path, const char *key_path, X509 **crt, EVP_PKEY **key, qerr *err)
{
    if (crt)
        *crt = NULL;
    if (key)
        *key = NULL;
    X509 *x = qtls_read_cert(cert_path, err);
    if (!x)
        return -1;
    EVP_PKEY *k = qtls_read_key(key_path, err);
    if (!k) {
        X509_free(x);
        return -1;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(x), k) != 1) {
        ERR_clear_error();
        X509_free(x);
        EVP_PKEY_free(k);
        return qerr_set(err, "key %s does not match certificate %s", key_path, cert_path);
    }
    if (crt)
        *crt = x;
    else
        X509_free(x);
    if (key)
        *key = k;
    else
        EVP_PKEY_free(k);
    return 0;
}

int qtls_check_dir(const char *dir, qerr *err)
{
    if (!dir || !*dir)
        return qerr_set(err, "TLS directory: missing path");
    struct stat st;
    if (stat(dir, &st) < 0)
        return qerr_set(err, "TLS directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return qerr_set(err, "TLS directory %s is not a directory", dir);
    if (st.st_uid != geteuid())
        return qerr_set(err, "TLS directory %s is owned by uid %u, not by the running user (uid %u)", dir,
                        (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return qerr_set(err, "TLS directory %s is writable by group or others (mode %04o): chmod go-w it", dir,
                        (unsigned)(st.st_mode & 07777));
    return 0;
}

/* ---- checks ------------------------------------------------------------------------------- */

static int verify_purpose(X509 *crt, X509 *ca, int purpose, qerr *err)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -1;
    if (!st || !ctx || X509_STORE_add_cert(st, ca) != 1 || X509_STORE_CTX_init(ctx, st, crt, NULL) != 1 ||
        (purpose && X509_STORE_CTX_set_purpose(ctx, purpose) != 1)) {
        char why[128];
        qerr_set(err, "cannot set up the certificate check: %s", ossl_reason(why, sizeof why));
    } else if (X509_verify_cert(ctx) == 1) {
        rc = 0;
    } else {
        int e = X509_STORE_CTX_get_error(ctx);
        qerr_set(err, "%s", X509_verify_cert_error_string(e));
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    return rc;
}

int qtls_verify(X509 *crt, X509 *ca, unsigned eku, qerr *err)
{
    if (!crt || !ca)
        return qerr_set(err, "certificate check: missing certificate");
    if (!eku)
        return verify_purpose(crt, ca, 0, err);
    if ((eku & QTLS_EKU_SERVER) && verify_purpose(crt, ca, X509_PURPOSE_SSL_SERVER, err) < 0)
        return -1;
    if ((eku & QTLS_EKU_CLIENT) && verify_purpose(crt, ca, X509_PURPOSE_SSL_CLIENT, err) < 0)
        return -1;
    return 0;
}

bool qtls_cert_has_name(X509 *crt, const char *name)
{
    int t;
    const char *v;
    if (!crt || parse_name(name, &t, &v) < 0)
        return false;
    int r = t == GEN_IPADD ? X509_check_ip_asc(crt, v, 0)
                           : X509_check_host(crt, v, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL);
    ERR_clear_error();
    return r == 1;
}

static void time_text(const ASN1_TIME *t, char *buf, size_t cap, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        snprintf(buf, cap, "?");
        *out = 0;
        return;
    }
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
    *out = timegm(&tm);
}

static void name_text(const X509_NAME *n, char *buf, size_t cap)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *d = NULL;
        long len = BIO_get_mem_data(b, &d);
        snprintf(buf, cap, "%.*s", (int)(len < 0 ? 0 : len), d ? d : "");
    }
    BIO_free(b);
}

int qtls_cert_info_get(X509 *crt, qtls_cert_info *out, qerr *err)
{
    if (!out)
        return qerr_set(err, "certificate info: missing output");
    memset(out, 0, sizeof *out);
    if (!crt)
        return qerr_set(err, "certificate info: missing certificate");
    name_text(X509_get_subject_name(crt), out->subject, sizeof out->subject);
    name_text(X509_get_issuer_name(crt), out->issuer, sizeof out->issuer);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(crt), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out->serial, sizeof out->serial, "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
    time_text(X509_get0_notBefore(crt), out->not_before, sizeof out->not_before, &out->nb);
    time_text(X509_get0_notAfter(crt), out->not_after, sizeof out->not_after, &out->na);
    out->is_ca = X509_check_ca(crt) == 1;
    EVP_PKEY *pk = X509_get0_pubkey(crt);
    out->self_signed = X509_NAME_cmp(X509_get_subject_name(crt), X509_get_issuer_name(crt)) == 0 && pk &&
                       X509_verify(crt, pk) == 1;
    uint32_t xku = X509_get_extended_key_usage(crt);
    if (xku != UINT32_MAX) {
        if (xku & XKU_SSL_SERVER)
            out->eku |= QTLS_EKU_SERVER;
        if (xku & XKU_SSL_CLIENT)
            out->eku |= QTLS_EKU_CLIENT;
    }
    if (pk && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
        char g[32] = "";
        size_t gl = 0;
        EVP_PKEY_get_group_name(pk, g, sizeof g, &gl);
        snprintf(out->key_desc, sizeof out->key_desc, "EC %.20s", strcmp(g, "prime256v1") == 0 ? "P-256" : g);
    } else if (pk && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
        snprintf(out->key_desc, sizeof out->key_desc, "RSA %d", EVP_PKEY_get_bits(pk));
    } else {
        snprintf(out->key_desc, sizeof out->key_desc, "%s", pk ? OBJ_nid2sn(EVP_PKEY_get_base_id(pk)) : "?");
    }
    GENERAL_NAMES *gens = X509_get_ext_d2i(crt, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && out->nnames < QTLS_MAX_NAMES; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char *dst = out->names[out->nnames];
        size_t cap = sizeof out->names[0];
        if (g->type == GEN_DNS) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
            int len = ASN1_STRING_length(g->d.dNSName);
            int w = snprintf(dst, cap, "DNS:");
            for (int j = 0; j < len && (size_t)w + 1 < cap; j++)
                dst[w++] = isprint(d[j]) ? (char)d[j] : '?';
            dst[w] = '\0';
        } else if (g->type == GEN_IPADD) {
            char a[INET6_ADDRSTRLEN] = "?";
            int len = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
            if (len == 4 || len == 16)
                inet_ntop(len == 4 ? AF_INET : AF_INET6, d, a, sizeof a);
            snprintf(dst, cap, "IP:%s", a);
        } else {
            continue;
        }
        out->nnames++;
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return 0;
}
