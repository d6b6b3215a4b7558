/* registrar.c — the registrar REST API; see registrar.h. */
#include "registrar.h"

#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <tss2/tss2_mu.h>

#include "b64.h"
#include "credential.h"
#include "log.h"
#include "quote.h"

#define MOD            "registrar"
#define INVALID        "Could not register agent with invalid data: "
#define CA_FILES_MAX   1024
#define CA_FILE_MAX    (1u << 20)
#define HOST_MAX       253

static const char *const g_versions[] = { "1.0", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6" };
#define NVERSIONS (sizeof g_versions / sizeof g_versions[0])

/* Serialises read-modify-write sequences on registrar records (register, activate, delete). */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- small helpers ---------------------------------------------------------------------------- */

static bool ascii_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* A log- and reply-safe copy of untrusted text: printable ASCII only, at most cap-1 characters. */
static const char *printable(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; s && s[n] && n + 1 < cap; n++)
        buf[n] = (s[n] >= 0x20 && s[n] < 0x7f) ? s[n] : '?';
    if (s && s[n] && cap > 4) {
        memcpy(buf + cap - 4, "...", 3);
        n = cap - 1;
    }
    buf[n] = '\0';
    return buf;
}

static bool version_ok(qhttp_req *r)
{
    const char *v = qhttp_req_param(r, "ver");
    for (size_t i = 0; v && i < NVERSIONS; i++)
        if (strcmp(v, g_versions[i]) == 0)
            return true;
    qhttp_reply_error(r, 404, "API Version not supported");   /* Keylime's code */
    return false;
}

/* The {id} of the URL, validated and lower-cased into id (the store's key: identity is
 * case-insensitive). raw (may be NULL) gets the id as sent. On error replies 400 (message prefixed with pfx) and returns -1. */
static int agent_id(qhttp_req *r, const char *pfx, char id[VSTORE_ID_MAX], const char **raw)
{
    const char *s = qhttp_req_param(r, "id");
    size_t n = s ? strnlen(s, VSTORE_ID_MAX) : 0;
    bool ok = n > 0 && n < VSTORE_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = ascii_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-';
    if (!ok) {
        char p[80], path[160];
        qhttp_reply_error(r, 400, "%sagent id '%s' is not valid (letters, digits, '_', '.', '-'; 1 to %d characters)",
                          pfx, printable(s, p, sizeof p), VSTORE_ID_MAX - 1);
        qlog(QLOG_WARNING, MOD, "%s %s refused: invalid agent id", qhttp_req_method(r),
             printable(qhttp_req_path(r), path, sizeof path));
        return -1;
    }
    for (size_t i = 0; i <= n; i++)
        id[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + ('a' - 'A')) : s[i];
    if (raw)
        *raw = s;
    return 0;
}

static void store_error(qhttp_req *r, const char *id, const qerr *e)
{
    qlog(QLOG_ERROR, MOD, "agent %s: %s", id, e->msg);
    if (e->code == 503)     /* the database is unreachable: say so, the client may retry */
        qhttp_reply_error(r, 503, "Service Unavailable: the database cannot be reached");
    else
        qhttp_reply_error(r, 500, "Internal Server Error");
}

/* ---- EK certificate --------------------------------------------------------------------------- */

/* Add every certificate of one file (PEM, several allowed, or a single DER) to st. Returns the
 * number added, or -1 when the file cannot be read. */
static int load_ca_file(X509_STORE *st, const char *path, qerr *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return qerr_set(err, "cannot open %s", path);
    uint8_t *buf = malloc(CA_FILE_MAX);
    size_t n = buf ? fread(buf, 1, CA_FILE_MAX, f) : 0;
    bool too_big = buf && n == CA_FILE_MAX && fgetc(f) != EOF;
    fclose(f);
    if (!buf || too_big) {
        free(buf);
        return qerr_set(err, "%s: %s", path, buf ? "larger than 1 MiB" : "out of memory");
    }
    int added = 0;
    BIO *bio = BIO_new_mem_buf(buf, (int)n);
    X509 *x;
    while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        added += X509_STORE_add_cert(st, x) == 1;
        X509_free(x);
    }
    BIO_free(bio);
    if (!added) {
        const uint8_t *p = buf;
        x = d2i_X509(NULL, &p, (long)n);
        if (x && p == buf + n)
            added += X509_STORE_add_cert(st, x) == 1;
        X509_free(x);
    }
    free(buf);
    ERR_clear_error();
    return added;
}

/* The CA store from a file or a directory of files (not hashed: every regular file is read). */
static X509_STORE *load_ca_store(const char *path, qerr *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        qerr_set(err, "tpm_cert_store %s does not exist", path);
        return NULL;
    }
    X509_STORE *st = X509_STORE_new();
    if (!st) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    int total = 0;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *de;
        int files = 0;
        while (d && (de = readdir(d)) && files < CA_FILES_MAX) {
            char fp[4096];
            if (de->d_name[0] == '.' ||
                (size_t)snprintf(fp, sizeof fp, "%s/%s", path, de->d_name) >= sizeof fp ||
                stat(fp, &sb) != 0 || !S_ISREG(sb.st_mode))
                continue;
            files++;
            int k = load_ca_file(st, fp, NULL);
            total += k > 0 ? k : 0;
        }
        if (d)
            closedir(d);
    } else {
        int k = load_ca_file(st, path, err);
        if (k < 0) {
            X509_STORE_free(st);
            return NULL;
        }
        total = k;
    }
    if (!total) {
        qerr_set(err, "no CA certificate found in tpm_cert_store %s", path);
        X509_STORE_free(st);
        return NULL;
    }
    X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);   /* intermediates in the store are anchors */
    return st;
}

/* Parse ekcert text: PEM, or base64 of DER (white space ignored). */
static X509 *parse_cert(const char *s, size_t len, qerr *err)
{
    X509 *x = NULL;
    if (len >= 10 && strncmp(s, "-----BEGIN", 10) == 0) {
        BIO *bio = BIO_new_mem_buf(s, (int)len);
        x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    } else {
        char *t = malloc(len + 1);
        size_t tl = 0;
        for (size_t i = 0; t && i < len; i++)
            if (!isspace((unsigned char)s[i]))
                t[tl++] = s[i];
        size_t dl = 0;
        uint8_t *der = t ? qb64_decode_alloc(t, tl, REGISTRAR_CERT_MAX, &dl) : NULL;
        const uint8_t *p = der;
        x = der ? d2i_X509(NULL, &p, (long)dl) : NULL;
        if (x && p != der + dl) {
            X509_free(x);
            x = NULL;
        }
        free(der);
        free(t);
    }
    ERR_clear_error();
    if (!x)
        qerr_set(err, "ekcert is neither a PEM certificate nor base64 of a DER certificate");
    return x;
}

/* Check the EK certificate against the EK and the CA store; *out gets base64(DER), malloc'd.
 * Returns 0, -1 (400, err set) or -2 (500: the CA store cannot be used, err set). */
static int check_ekcert(const registrar_ctx *c, const char *text, size_t len, const TPM2B_PUBLIC *ek, char **out,
                        qerr *err)
{
    *out = NULL;
    X509 *x = parse_cert(text, len, err);
    if (!x)
        return -1;
    int rc = -1;
    EVP_PKEY *ekk = qtpmpub_pkey(ek, err);
    X509_STORE *st = NULL;
    X509_STORE_CTX *vc = NULL;
    uint8_t *der = NULL;
    if (!ekk) {
        qerr_prefix(err, "ek_tpm");
        goto out;
    }
    EVP_PKEY *ck = X509_get0_pubkey(x);
    if (!ck || EVP_PKEY_eq(ck, ekk) != 1) {
        qerr_set(err, "ekcert: the certificate's public key is not the EK (ek_tpm)");
        goto out;
    }
    if (c->tpm_cert_store && c->tpm_cert_store[0]) {
        if (!(st = load_ca_store(c->tpm_cert_store, err))) {
            rc = -2;
            goto out;
        }
        vc = X509_STORE_CTX_new();
        if (!vc || X509_STORE_CTX_init(vc, st, x, NULL) != 1) {
            qerr_set(err, "out of memory");
            rc = -2;
            goto out;
        }
        if (X509_verify_cert(vc) != 1) {
            qerr_set(err, "ekcert does not chain to a CA of tpm_cert_store: %s",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)));
            goto out;
        }
    }
    int dl = i2d_X509(x, &der);
    if (dl <= 0 || !(*out = qb64_encode_alloc(der, (size_t)dl))) {
        qerr_set(err, "cannot encode the EK certificate");
        rc = -2;
        goto out;
    }
    rc = 0;
out:
    OPENSSL_free(der);
    X509_STORE_CTX_free(vc);
    X509_STORE_free(st);
    EVP_PKEY_free(ekk);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

/* ---- registration input ----------------------------------------------------------------------- */

typedef struct reg_input {
    TPM2B_PUBLIC ek, ak;
    char *ek_b64, *ak_b64;   /* canonical (re-marshalled) */
    char *ekcert;            /* base64 DER or NULL */
    char *mtls_cert;         /* NULL, "disabled" or PEM */
    char *ip;
    long port;
} reg_input;

static void reg_input_free(reg_input *in)
{
    free(in->ek_b64);
    free(in->ak_b64);
    free(in->ekcert);
    free(in->mtls_cert);
    free(in->ip);
}

/* A TPM2B_PUBLIC field: required base64 string; *canon gets the re-marshalled base64. */
static int tpm_public(const cJSON *o, const char *name, TPM2B_PUBLIC *out, char **canon, qerr *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v))
        return qerr_set(err, "%s is missing", name);
    if (!cJSON_IsString(v))
        return qerr_set(err, "%s must be a base64 string", name);
    if (qtpmpub_parse_b64(v->valuestring, strlen(v->valuestring), out, err) < 0)
        return qerr_prefix(err, "%s", name);
    uint8_t buf[sizeof(TPM2B_PUBLIC) + 8];
    size_t off = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(out, buf, sizeof buf, &off) != TSS2_RC_SUCCESS ||
        !(*canon = qb64_encode_alloc(buf, off)))
        return qerr_set(err, "%s cannot be re-encoded", name);
    return 0;
}

/* Optional string field: absent or null → *out = NULL; a string of at most max bytes → copy. */
static int opt_string(const cJSON *o, const char *name, size_t max, char **out, qerr *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return qerr_set(err, "%s must be a string or null", name);
    if (strlen(v->valuestring) > max)
        return qerr_set(err, "%s is longer than %zu bytes", name, max);
    if (!(*out = strdup(v->valuestring)))
        return qerr_set(err, "out of memory");
    return 0;
}

/* The certificate parsed with GnuTLS: a third of OpenSSL 3.0's cost, which decodes the public key
 * through its provider decoders on every parse (a quarter of the registrar's CPU per
 * registration). Nothing else is taken from it here. */
static int check_mtls(const char *pem, qerr *err)
{
    if (!pem || strcmp(pem, "disabled") == 0)
        return 0;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return qerr_set(err, "out of memory");
    gnutls_datum_t d = { (unsigned char *)pem, (unsigned)strlen(pem) };
    int rc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    gnutls_x509_crt_deinit(crt);
    return rc == 0 ? 0 : qerr_set(err, "mtls_cert is neither \"disabled\" nor a PEM certificate");
}

static int check_ip(const char *ip, qerr *err)
{
    if (!ip)
        return 0;
    size_t n = strlen(ip);
    bool ok = n > 0 && n <= HOST_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = ascii_alnum(ip[i]) || strchr(".:-_%", ip[i]);
    return ok ? 0 : qerr_set(err, "ip is not an address or host name");
}

static int get_port(const cJSON *o, long *port, qerr *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "port");
    *port = 0;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d >= 1 && d <= 65535 && d == (double)(long)d) {
            *port = (long)d;
            return 0;
        }
    } else if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        size_t n = strlen(s);
        if (n >= 1 && n <= 5 && strspn(s, "0123456789") == n) {
            long p = strtol(s, NULL, 10);
            if (p >= 1 && p <= 65535) {
                *port = p;
                return 0;
            }
        }
    }
    return qerr_set(err, "port must be an integer from 1 to 65535");
}

/* Validate the whole registration body. Returns 0, -1 (400) or -2 (500). */
static int parse_registration(qhttp_req *r, const registrar_ctx *c, reg_input *in, qerr *err)
{
    qerr je = { 0 };
    const cJSON *o = qhttp_req_json(r, &je);
    if (!o || !cJSON_IsObject(o))
        return qerr_set(err, "the body is not a JSON object%s%s", o ? "" : ": ", o ? "" : je.msg);
    if (tpm_public(o, "aik_tpm", &in->ak, &in->ak_b64, err) < 0)
        return -1;
    if (qtpmpub_check_ak(&in->ak, err) < 0)
        return qerr_prefix(err, "aik_tpm");
    const cJSON *ekv = cJSON_GetObjectItemCaseSensitive(o, "ek_tpm");
    if ((!ekv || cJSON_IsNull(ekv)) && cJSON_GetObjectItemCaseSensitive(o, "iak_tpm"))
        return qerr_set(err, "ek_tpm is missing (registration with IAK/IDevID only is not supported)");
    if (tpm_public(o, "ek_tpm", &in->ek, &in->ek_b64, err) < 0)
        return -1;

    char *cert = NULL;
    if (opt_string(o, "ekcert", REGISTRAR_CERT_MAX, &cert, err) < 0)
        return -1;
    if (cert && cert[0]) {
        int rc = check_ekcert(c, cert, strlen(cert), &in->ek, &in->ekcert, err);
        free(cert);
        if (rc < 0)
            return rc;
    } else {
        free(cert);
        if (c->require_ek_cert)
            return qerr_set(err, "ekcert is required (require_ek_cert is set)");
    }
    if (opt_string(o, "mtls_cert", REGISTRAR_CERT_MAX, &in->mtls_cert, err) < 0 || check_mtls(in->mtls_cert, err) < 0)
        return -1;
    if (opt_string(o, "ip", HOST_MAX, &in->ip, err) < 0 || check_ip(in->ip, err) < 0)
        return -1;
    return get_port(o, &in->port, err);
}

static bool differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}


/* ---- handlers --------------------------------------------------------------------------------- */

static void h_version(qhttp_req *r, void *ctx)
{
    (void)ctx;
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "supported_versions");
    cJSON_AddStringToObject(o, "current_version", REGISTRAR_CURRENT_VERSION);
    for (size_t i = 0; a && i < NVERSIONS; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(g_versions[i]));
    qhttp_reply(r, 200, o);
}

static void refuse(qhttp_req *r, int status, const char *id, const qerr *e)
{
    qlog(QLOG_WARNING, MOD, "registration of agent %s refused (%d): %s", id, status, e->msg);
    if (status == 400)
        qhttp_reply_error(r, 400, INVALID "%s", e->msg);
    else
        qhttp_reply_error(r, status, "%s", e->msg);
}

static const reg_limits g_default_limits = REG_LIMITS_DEFAULT;

static const reg_limits *limits(const registrar_ctx *c)
{
    return c->limits ? c->limits : &g_default_limits;
}

/* Registrations per client address: true (429 sent) when over the rate. */
static bool rate_limited(qhttp_req *r, const registrar_ctx *c, const char *id)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long after = 0;
    if (reg_rate_take(c->rate, qhttp_req_peer(r), (double)ts.tv_sec + ts.tv_nsec / 1e9, &after))
        return false;
    qlog(QLOG_WARNING, MOD, "registration of agent %s from %s refused (429): more than %ld registrations a minute "
         "from that address", id, qhttp_req_peer(r), limits(c)->registrations_per_minute);
    qhttp_reply_error(r, 429, "Too many registrations from %s; try again in %ld s", qhttp_req_peer(r),
                      after > 0 ? after : 1);
    return true;
}

/* Expire pending registrations past pending_max_age. Caller holds g_lock. 0 or -1 (e set). */
static int expire_pending(const registrar_ctx *c, qerr *e)
{
    long age = limits(c)->pending_max_age, n = 0;
    if (age <= 0)
        return 0;
    if (vstore_reg_expire(c->store, (int64_t)time(NULL) - age, &n, e) < 0)
        return -1;
    if (n > 0)
        qlog(QLOG_INFO, MOD, "%ld pending registration(s) older than %ld s expired", n, age);
    return 0;
}

/* Store a checked registration under g_lock (registrar.h: re-registration rules, limits). 0, or
 * -1 with the reply sent. */
static int save_registration(qhttp_req *r, const registrar_ctx *c, const char *id, const char *raw,
                             const reg_input *in, const char *key)
{
    qerr e = { 0 };
    pthread_mutex_lock(&g_lock);
    vreg_agent a;
    int rc = expire_pending(c, &e) < 0 ? -1 : vstore_reg_get(c->store, id, &a, &e);
    if (rc < 0) {
        pthread_mutex_unlock(&g_lock);
        store_error(r, id, &e);
        return -1;
    }
    bool exists = rc == 1;
    if (exists) {
        char changed[64] = "";
        if (differs(a.ek_tpm, in->ek_b64))
            strcat(changed, "ek_tpm");
        if (differs(a.ekcert, in->ekcert))
            strcat(strcat(changed, changed[0] ? ", " : ""), "ekcert");
        if (differs(a.aik_tpm, in->ak_b64))
            strcat(strcat(changed, changed[0] ? ", " : ""), "aik_tpm");
        if (changed[0]) {
            pthread_mutex_unlock(&g_lock);
            vreg_agent_free(&a);
            qerr_set(&e, "Agent '%s' is already registered with a different TPM identity (changed: %s); "
                         "delete the registration before registering this TPM under the id", id, changed);
            refuse(r, 403, id, &e);
            return -1;
        }
    } else {
        memcpy(a.agent_id, id, sizeof a.agent_id);
        memcpy(a.display_id, raw, strlen(raw) + 1);     /* the case of the first registration stays */
        if (!(a.ek_tpm = strdup(in->ek_b64)) || !(a.aik_tpm = strdup(in->ak_b64)) ||
            (in->ekcert && !(a.ekcert = strdup(in->ekcert))))
            rc = qerr_set(&e, "out of memory");
    }
    long pending = 0, max = limits(c)->max_pending;
    if (rc >= 0 && max > 0 && regpol_adds_pending(&a, exists) &&
        (rc = vstore_reg_count_pending(c->store, &pending, &e)) == 0 && pending >= max) {
        pthread_mutex_unlock(&g_lock);
        vreg_agent_free(&a);
        qlog(QLOG_WARNING, MOD, "registration of agent %s from %s refused (503): %ld registrations await "
             "activation, the limit ([registrar] max_pending_registrations)", id, qhttp_req_peer(r), pending);
        qhttp_reply_error(r, 503, "Too many pending registrations (%ld); try again later", pending);
        return -1;
    }
    bool was_active = exists && a.active;
    if (rc < 0 ||
        (rc = regpol_register(&a, exists, in->mtls_cert, in->ip, in->port, key, (int64_t)time(NULL))) < 0 ||
        (rc = vstore_reg_put(c->store, &a, &e)) < 0) {
        pthread_mutex_unlock(&g_lock);
        if (!e.msg[0])
            qerr_set(&e, "out of memory");
        store_error(r, id, &e);
        vreg_agent_free(&a);
        return -1;
    }
    pthread_mutex_unlock(&g_lock);
    if (was_active)
        qlog(QLOG_INFO, MOD, "agent %s registered again (contact %s:%ld); the active registration stays in use "
             "until the new credential challenge is answered", id, in->ip ? in->ip : "-", in->port);
    else
        qlog(QLOG_INFO, MOD, "agent %s registered (regcount %ld, %s EK%s, contact %s:%ld); credential challenge "
             "issued", id, a.regcount, in->ek.publicArea.type == TPM2_ALG_RSA ? "RSA" : "ECC",
             in->ekcert ? " with certificate" : " without certificate", in->ip ? in->ip : "-", in->port);
    vreg_agent_free(&a);
    return 0;
}


static void h_register(qhttp_req *r, void *ctx)
{
    registrar_ctx *c = ctx;
    char id[VSTORE_ID_MAX];
    const char *raw = NULL;
    if (!version_ok(r) || agent_id(r, INVALID, id, &raw) < 0 || rate_limited(r, c, id))
        return;
    qerr e = { 0 };
    reg_input in = { 0 };
    int rc = parse_registration(r, c, &in, &e);
    if (rc < 0) {
        if (rc == -2)
            store_error(r, id, &e);
        else
            refuse(r, 400, id, &e);
        reg_input_free(&in);
        return;
    }
    /* MakeCredential for the AK's name under the EK. */
    char challenge[QCRED_CHALLENGE_LEN + 1];
    uint8_t name[QTPM_NAME_MAX], blob[QCRED_BLOB_MAX];
    size_t nl = 0, bl = 0;
    char *key = NULL, *blob_b64 = NULL;
    if (qtpmpub_name(&in.ak, name, sizeof name, &nl, &e) < 0) {
        qerr_prefix(&e, "aik_tpm");
        refuse(r, 400, id, &e);
        goto out;
    }
    if (qcred_challenge(challenge, &e) < 0) {
        store_error(r, id, &e);
        goto out;
    }
    if (qcred_make(&in.ek, name, nl, (const uint8_t *)challenge, QCRED_CHALLENGE_LEN, blob, sizeof blob, &bl, &e) < 0) {
        qerr_prefix(&e, "ek_tpm");
        refuse(r, 400, id, &e);
        goto out;
    }
    key = qb64_encode_alloc((const uint8_t *)challenge, QCRED_CHALLENGE_LEN);
    blob_b64 = qb64_encode_alloc(blob, bl);
    OPENSSL_cleanse(challenge, sizeof challenge);
    if (!key || !blob_b64) {
        qerr_set(&e, "out of memory");
        store_error(r, id, &e);
        goto out;
    }

    if (save_registration(r, c, id, raw, &in, key) < 0)
        goto out;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "blob", blob_b64);
    qhttp_reply(r, 200, res);
out:
    if (key)
        OPENSSL_cleanse(key, strlen(key));
    free(key);
    free(blob_b64);
    reg_input_free(&in);
}

static void h_activate(qhttp_req *r, void *ctx)
{
    registrar_ctx *c = ctx;
    char id[VSTORE_ID_MAX], p[120];
    const char *raw = NULL;
    if (!version_ok(r) || agent_id(r, "Could not activate agent: ", id, &raw) < 0)
        return;
    qerr e = { 0 };
    const cJSON *o = qhttp_req_json(r, &e);
    const cJSON *tag = o ? cJSON_GetObjectItemCaseSensitive(o, "auth_tag") : NULL;
    if (!cJSON_IsString(tag)) {
        qlog(QLOG_WARNING, MOD, "activation of agent %s refused: no auth_tag string in the body", id);
        qhttp_reply_error(r, 400, "Could not activate agent with invalid data: auth_tag is missing or not a string");
        return;
    }
    pthread_mutex_lock(&g_lock);
    vreg_agent a;
    int rc = expire_pending(c, &e) < 0 ? -1 : vstore_reg_get(c->store, id, &a, &e);
    if (rc <= 0) {
        pthread_mutex_unlock(&g_lock);
        if (rc < 0) {
            store_error(r, id, &e);
        } else {
            qlog(QLOG_WARNING, MOD, "activation of unknown agent %s refused", id);
            qhttp_reply_error(r, 404, "Agent with ID '%s' not found", raw);
        }
        return;
    }
    const char *t = tag->valuestring, *key = regpol_key(&a);
    bool ok = key && qcred_auth_tag_ok(key, strlen(key), raw, t, strlen(t));
    long max = limits(c)->max_failed_activations;
    regact act = regpol_activate(&a, ok, max);
    long failed = a.failed_activations;
    if (act == REGACT_FAILED_DELETE)
        rc = vstore_reg_delete(c->store, id, &e);
    else if (act != REGACT_ALREADY_ACTIVE && act != REGACT_FAILED_IGNORED)
        rc = vstore_reg_put(c->store, &a, &e);
    pthread_mutex_unlock(&g_lock);
    vreg_agent_free(&a);
    if (rc < 0) {
        store_error(r, id, &e);
        return;
    }
    if (ok) {
        qlog(QLOG_INFO, MOD, "agent %s %s from %s", id,
             act == REGACT_PROMOTED    ? "activated: its new registration replaces the previous one"
             : act == REGACT_ACTIVATED ? "activated"
                                       : "activation repeated (already active; nothing changed)",
             qhttp_req_peer(r));
        qhttp_reply(r, 200, NULL);
        return;
    }
    static const char *const what[] = {
        [REGACT_FAILED_COUNTED] = "the pending registration stays until the limit of failed activations",
        [REGACT_FAILED_DROPPED] = "the pending re-registration is dropped; the active registration is unchanged",
        [REGACT_FAILED_DELETE] = "the registration, never activated, is deleted; the agent must register again",
        [REGACT_FAILED_IGNORED] = "the active registration is unchanged",
    };
    qlog(QLOG_WARNING, MOD, "activation of agent %s from %s refused: wrong auth tag (%ld of %ld for the pending "
         "challenge); %s", id, qhttp_req_peer(r), failed, max, what[act]);
    qhttp_reply_error(r, 400, "Auth tag '%s' for agent '%s' does not match expected value. %c%s", printable(t, p, sizeof p),
                      raw, what[act][0] - ('a' - 'A'), what[act] + 1);
}

static int add_id(void *ctx, const char *id)
{
    cJSON_AddItemToArray(ctx, cJSON_CreateString(id));
    return 0;
}

/* show, list and delete on the plain-HTTP port: refused (true) with a message naming the TLS port. */
static bool tls_only(qhttp_req *r, const registrar_ctx *c, const char *what)
{
    if (!c->plain_only)
        return false;
    qlog(QLOG_WARNING, MOD, "%s %s from %s refused: %s is served only on the TLS port", qhttp_req_method(r),
         qhttp_req_path(r), qhttp_req_peer(r), what);
    qhttp_reply_error(r, 403, "%s is served only on the registrar's TLS port (%ld) to clients with a certificate "
                              "from the verifier's CA; this plain-HTTP port serves only registration and activation",
                      what, c->tls_port);
    return true;
}

static void h_list(qhttp_req *r, void *ctx)
{
    registrar_ctx *c = ctx;
    if (tls_only(r, c, "Listing agents") || !version_ok(r))
        return;
    qerr e = { 0 };
    cJSON *res = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(res, "uuids");
    if (!arr || vstore_reg_list(c->store, add_id, arr, &e) < 0) {
        cJSON_Delete(res);
        store_error(r, "(list)", &e);
        return;
    }
    qhttp_reply(r, 200, res);
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static void h_show(qhttp_req *r, void *ctx)
{
    registrar_ctx *c = ctx;
    char id[VSTORE_ID_MAX];
    const char *raw = NULL;
    if (tls_only(r, c, "Showing an agent") || !version_ok(r) || agent_id(r, "", id, &raw) < 0)
        return;
    qerr e = { 0 };
    vreg_agent a;
    int rc = vstore_reg_get(c->store, id, &a, &e);
    if (rc < 0) {
        store_error(r, id, &e);
        return;
    }
    if (rc == 0 || !a.active) {
        qhttp_reply_error(r, 404, rc == 0 ? "Agent with ID '%s' not found" : "Agent with ID '%s' has not been activated",
                          raw);
        vreg_agent_free(&a);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "agent_id", a.display_id);
    add_str_or_null(o, "ek_tpm", a.ek_tpm);
    add_str_or_null(o, "ekcert", a.ekcert);
    add_str_or_null(o, "aik_tpm", a.aik_tpm);
    add_str_or_null(o, "mtls_cert", a.mtls_cert);
    add_str_or_null(o, "ip", a.ip);
    if (a.port > 0)
        cJSON_AddNumberToObject(o, "port", (double)a.port);
    else
        cJSON_AddNullToObject(o, "port");
    cJSON_AddNumberToObject(o, "regcount", (double)a.regcount);
    vreg_agent_free(&a);
    qhttp_reply(r, 200, o);
}

static void h_delete(qhttp_req *r, void *ctx)
{
    registrar_ctx *c = ctx;
    char id[VSTORE_ID_MAX];
    const char *raw = NULL;
    if (tls_only(r, c, "Deleting an agent") || !version_ok(r) || agent_id(r, "", id, &raw) < 0)
        return;
    qerr e = { 0 };
    pthread_mutex_lock(&g_lock);
    int rc = vstore_reg_delete(c->store, id, &e);
    pthread_mutex_unlock(&g_lock);
    if (rc < 0) {
        store_error(r, id, &e);
    } else if (rc == 0) {
        qhttp_reply_error(r, 404, "Agent with ID '%s' not found", raw);
    } else {
        qlog(QLOG_INFO, MOD, "agent %s deleted from the registrar", id);
        qhttp_reply(r, 200, NULL);
    }
}

size_t registrar_routes(registrar_ctx *c, qhttp_route *out, size_t cap)
{
    const qhttp_route routes[REGISTRAR_NUM_ROUTES] = {
        { "GET", "/version", h_version, c },
        { "GET", "/v{ver}/agents", h_list, c },
        { "GET", "/v{ver}/agents/{id}", h_show, c },
        { "POST", "/v{ver}/agents/{id}", h_register, c },
        { "PUT", "/v{ver}/agents/{id}", h_activate, c },
        { "DELETE", "/v{ver}/agents/{id}", h_delete, c },
        { "PUT", "/v{ver}/agents/{id}/activate", h_activate, c },
        { "POST", "/v{ver}/agents/{id}/activate", h_activate, c },
    };
    if (!c || !out || cap < REGISTRAR_NUM_ROUTES)
        return 0;
    memcpy(out, routes, sizeof routes);
    return REGISTRAR_NUM_ROUTES;
}
