/* tls_ca_dir.c — the verifier's CA directory: create what is missing, check what exists, issue
 * client certificates, start afresh; see tls_ca.h. */
#include "tls_ca.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/x509v3.h>

#define EXTRA_CLIENTS_MAX 16

static int join(char *out, size_t cap, const char *dir, const char *name, qerr *err)
{
    if (snprintf(out, cap, "%s/%s", dir, name) >= (int)cap)
        return qerr_set(err, "path too long: %.200s/%s", dir, name);
    return 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A client name that is also a safe file-name stem. */
static bool stem_valid(const char *s)
{
    if (!s || !*s || *s == '.' || strlen(s) > QTLS_CN_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static bool wildcard_addr(const char *s)
{
    return !s || !*s || !strcmp(s, "0.0.0.0") || !strcmp(s, "::") || !strcmp(s, "[::]") || !strcmp(s, "*") ||
           !strcasecmp(s, "IP:0.0.0.0") || !strcasecmp(s, "IP:::");
}

static void note(char *buf, size_t cap, const char *word)
{
    size_t used = strlen(buf);
    if (used < cap)
        snprintf(buf + used, cap - used, "%s%s", used ? " " : "", word);
}

static void note_created(qtls_ca_report *r, const char *file)
{
    r->created++;
    note(r->created_files, sizeof r->created_files, file);
}

/* Make a new key + certificate (signed by ca, or the CA itself when o is NULL) and write both,
 * the key first. On failure nothing written by this call is left behind. */
static int create_pair(const char *cert_path, const char *key_path, const qtls_cert_opts *o, X509 *ca,
                       EVP_PKEY *ca_key, const qtls_ca_opts *opts, X509 **crt_out, EVP_PKEY **key_out, qerr *err)
{
    EVP_PKEY *k = qtls_key_new(opts->key_type, err);
    if (!k)
        return -1;
    X509 *c = o ? qtls_make_cert(o, k, ca, ca_key, err) : qtls_make_ca(k, opts->ca_cn, opts->ca_days, err);
    int rc = -1;
    if (c && qtls_write_key(key_path, k, 0, err) == 0) {
        if (qtls_write_cert(cert_path, c, 0, err) == 0)
            rc = 0;
        else
            unlink(key_path);
    }
    if (rc == 0 && crt_out) {
        *crt_out = c;
        c = NULL;
    }
    if (rc == 0 && key_out) {
        *key_out = k;
        k = NULL;
    }
    X509_free(c);
    EVP_PKEY_free(k);
    return rc;
}

/* The CA: load and check it, or make it when both files are missing. */
static int ensure_ca(const char *dir, const qtls_ca_opts *opts, qtls_ca_report *rep, X509 **ca, EVP_PKEY **ca_key,
                     qerr *err)
{
    char cp[PATH_MAX], kp[PATH_MAX];
    if (join(cp, sizeof cp, dir, QTLS_F_CA_CERT, err) < 0 || join(kp, sizeof kp, dir, QTLS_F_CA_KEY, err) < 0)
        return -1;
    bool hc = exists(cp), hk = exists(kp);
    if (!hc && !hk) {
        if (create_pair(cp, kp, NULL, NULL, NULL, opts, ca, ca_key, err) < 0)
            return qerr_prefix(err, "cannot create the CA in %s", dir);
        note_created(rep, QTLS_F_CA_KEY);
        note_created(rep, QTLS_F_CA_CERT);
        return 0;
    }
    if (hc != hk)
        return qerr_set(err, "%s exists without %s: restore it, or start afresh with `quince-verifier ca reset`",
                        hc ? cp : kp, hc ? kp : cp);
    if (qtls_load_pair(cp, kp, ca, ca_key, err) < 0)
        return -1;
    if (X509_check_ca(*ca) != 1) {
        qerr_set(err, "%s is not a CA certificate (no basicConstraints CA:TRUE)", cp);
        goto fail;
    }
    if (qtls_verify(*ca, *ca, 0, err) < 0) {
        qerr_prefix(err, "CA certificate %s (start afresh with `quince-verifier ca reset`)", cp);
        goto fail;
    }
    rep->kept += 2;
    return 0;
fail:
    X509_free(*ca);
    EVP_PKEY_free(*ca_key);
    *ca = NULL;
    *ca_key = NULL;
    return -1;
}

/* One leaf pair: check it when present (and that it names the first nmust of o->names), make it
 * when absent. */
static int ensure_leaf(const char *dir, const char *cert_name, const char *key_name, const qtls_cert_opts *o,
                       size_t nmust, X509 *ca, EVP_PKEY *ca_key, const qtls_ca_opts *opts, qtls_ca_report *rep,
                       qerr *err)
{
    char cp[PATH_MAX], kp[PATH_MAX];
    if (join(cp, sizeof cp, dir, cert_name, err) < 0 || join(kp, sizeof kp, dir, key_name, err) < 0)
        return -1;
    bool hc = exists(cp), hk = exists(kp);
    if (!hc && !hk) {
        if (create_pair(cp, kp, o, ca, ca_key, opts, NULL, NULL, err) < 0)
            return qerr_prefix(err, "cannot create %s", cp);
        note_created(rep, key_name);
        note_created(rep, cert_name);
        return 0;
    }
    if (hc != hk)
        return qerr_set(err, "%s exists without %s: restore it, or remove it to have both made anew",
                        hc ? cp : kp, hc ? kp : cp);
    X509 *c = NULL;
    if (qtls_load_pair(cp, kp, &c, NULL, err) < 0)
        return -1;
    int rc = qtls_verify(c, ca, o->eku, err);
    if (rc < 0)
        qerr_prefix(err, "%s does not verify against %s (remove %s and %s to have them re-issued, or run "
                         "`quince-verifier ca reset`)", cp, QTLS_F_CA_CERT, cert_name, key_name);
    if (rc == 0 && nmust) {
        char missing[256] = "";
        for (size_t i = 0; i < nmust && o->names[i]; i++)
            if (!qtls_cert_has_name(c, o->names[i]))
                note(missing, sizeof missing, o->names[i]);
        if (*missing)
            snprintf(rep->warning, sizeof rep->warning,
                     "%s does not name %s; remove %s and %s to have them re-issued", cert_name, missing, cert_name,
                     key_name);
    }
    X509_free(c);
    if (rc == 0)
        rep->kept += 2;
    return rc;
}

/* The server's SAN list: configured names (no wildcards, no duplicates) + the loopback names. */
static int server_names_list(const char *const *in, const char **out, size_t cap, size_t *nconf, qerr *err)
{
    static const char *const local[] = { "localhost", "127.0.0.1", "::1" };
    size_t n = 0;
    for (size_t i = 0; in && in[i]; i++) {
        if (wildcard_addr(in[i]))
            continue;
        if (!qtls_name_valid(in[i]))
            return qerr_set(err, "invalid server name \"%.80s\" (an IP address or a DNS name)", in[i]);
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcasecmp(out[j], in[i]) == 0;
        if (dup)
            continue;
        if (n + 1 + 3 >= cap)
            return qerr_set(err, "too many server names (at most %zu)", cap - 4);
        out[n++] = in[i];
    }
    *nconf = n;
    for (size_t i = 0; i < 3; i++) {
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++) {
            const char *v = out[j];
            if (!strncasecmp(v, "IP:", 3))
                v += 3;
            else if (!strncasecmp(v, "DNS:", 4))
                v += 4;
            dup = strcasecmp(v, local[i]) == 0;
        }
        if (!dup)
            out[n++] = local[i];
    }
    out[n] = NULL;
    return (int)n;
}

static const char *strip_prefix(const char *v)
{
    if (!strncasecmp(v, "IP:", 3))
        return v + 3;
    if (!strncasecmp(v, "DNS:", 4))
        return v + 4;
    return v;
}

int qtls_ensure_ca_dir(const char *dir, const char *const *server_names, const char *const *client_names,
                       const qtls_ca_opts *opts, qtls_ca_report *report, qerr *err)
{
    qtls_ca_opts defaults = { 0 };
    qtls_ca_report local;
    if (!opts)
        opts = &defaults;
    if (!report)
        report = &local;
    memset(report, 0, sizeof *report);
    if (!dir || !*dir)
        return qerr_set(err, "CA directory: missing path");
    if (strlen(dir) > PATH_MAX - 80)
        return qerr_set(err, "CA directory path too long");

    /* Check every argument before anything is written. */
    const char *sans[QTLS_MAX_NAMES + 1];
    size_t nconf = 0;
    if (server_names_list(server_names, sans, QTLS_MAX_NAMES + 1, &nconf, err) < 0)
        return -1;
    size_t nextra = 0;
    for (; client_names && client_names[nextra]; nextra++) {
        const char *c = client_names[nextra];
        if (nextra >= EXTRA_CLIENTS_MAX)
            return qerr_set(err, "too many extra client names (at most %d)", EXTRA_CLIENTS_MAX);
        if (!stem_valid(c))
            return qerr_set(err, "invalid client name \"%.80s\" (letters, digits, '.', '_', '-')", c);
        if (!strcmp(c, "server") || !strcmp(c, "client") || !strcmp(c, "tenant") || !strcmp(c, "ca"))
            return qerr_set(err, "client name \"%s\" is reserved", c);
    }

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return qerr_set(err, "cannot create the CA directory %s: %s", dir, strerror(errno));
    if (qtls_check_dir(dir, err) < 0)
        return -1;

    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    if (ensure_ca(dir, opts, report, &ca, &ca_key, err) < 0)
        return -1;
    long na = (opts->leaf_days > 0 ? opts->leaf_days : QTLS_LEAF_DAYS) * QTLS_DAY_S;
    const char *first = strip_prefix(sans[0]);
    qtls_cert_opts srv = { .cn = strlen(first) <= QTLS_CN_MAX ? first : QTLS_VERIFIER_CN, .names = sans,
                           .eku = QTLS_EKU_SERVER, .not_after_s = na };
    qtls_cert_opts cli = { .cn = QTLS_VERIFIER_CN, .eku = QTLS_EKU_CLIENT, .not_after_s = na };
    qtls_cert_opts ten = { .cn = QTLS_TENANT_CN, .eku = QTLS_EKU_CLIENT, .not_after_s = na };
    int rc = ensure_leaf(dir, QTLS_F_SERVER_CERT, QTLS_F_SERVER_KEY, &srv, nconf, ca, ca_key, opts, report, err);
    if (rc == 0)
        rc = ensure_leaf(dir, QTLS_F_CLIENT_CERT, QTLS_F_CLIENT_KEY, &cli, 0, ca, ca_key, opts, report, err);
    if (rc == 0)
        rc = ensure_leaf(dir, QTLS_F_TENANT_CERT, QTLS_F_TENANT_KEY, &ten, 0, ca, ca_key, opts, report, err);
    for (size_t i = 0; rc == 0 && i < nextra; i++) {
        char cf[QTLS_CN_MAX + 16], kf[QTLS_CN_MAX + 16];
        snprintf(cf, sizeof cf, "%s-cert.pem", client_names[i]);
        snprintf(kf, sizeof kf, "%s-key.pem", client_names[i]);
        qtls_cert_opts x = { .cn = client_names[i], .eku = QTLS_EKU_CLIENT, .not_after_s = na };
        rc = ensure_leaf(dir, cf, kf, &x, 0, ca, ca_key, opts, report, err);
    }
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}

int qtls_issue_client(const char *dir, const char *cn, const char *out_dir, const qtls_ca_opts *opts,
                      char *cert_path, char *key_path, size_t cap, qerr *err)
{
    qtls_ca_opts defaults = { 0 };
    if (!opts)
        opts = &defaults;
    if (!dir || !*dir)
        return qerr_set(err, "CA directory: missing path");
    if (!stem_valid(cn))
        return qerr_set(err, "invalid client name \"%.80s\" (letters, digits, '.', '_', '-'; at most %d)",
                        cn ? cn : "", QTLS_CN_MAX);
    if (!out_dir)
        out_dir = dir;
    if (qtls_check_dir(dir, err) < 0)
        return -1;
    struct stat st;
    if (stat(out_dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return qerr_set(err, "output directory %s: %s", out_dir, errno ? strerror(errno) : "not a directory");
    char cacp[PATH_MAX], cakp[PATH_MAX], cp[PATH_MAX], kp[PATH_MAX], cf[QTLS_CN_MAX + 16], kf[QTLS_CN_MAX + 16];
    snprintf(cf, sizeof cf, "%s-cert.pem", cn);
    snprintf(kf, sizeof kf, "%s-key.pem", cn);
    if (join(cacp, sizeof cacp, dir, QTLS_F_CA_CERT, err) < 0 || join(cakp, sizeof cakp, dir, QTLS_F_CA_KEY, err) < 0 ||
        join(cp, sizeof cp, out_dir, cf, err) < 0 || join(kp, sizeof kp, out_dir, kf, err) < 0)
        return -1;
    if (exists(cp) || exists(kp))
        return qerr_set(err, "%s already exists; choose another name or remove the old files", exists(cp) ? cp : kp);
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    if (qtls_load_pair(cacp, cakp, &ca, &ca_key, err) < 0)
        return -1;
    long na = (opts->leaf_days > 0 ? opts->leaf_days : QTLS_LEAF_DAYS) * QTLS_DAY_S;
    qtls_cert_opts o = { .cn = cn, .eku = QTLS_EKU_CLIENT, .not_after_s = na };
    int rc = create_pair(cp, kp, &o, ca, ca_key, opts, NULL, NULL, err);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    if (rc == 0 && cert_path && cap)
        snprintf(cert_path, cap, "%s", cp);
    if (rc == 0 && key_path && cap)
        snprintf(key_path, cap, "%s", kp);
    return rc;
}

static bool is_pem_name(const char *n)
{
    size_t l = strlen(n);
    return l > 4 && n[0] != '.' && strcmp(n + l - 4, ".pem") == 0;
}

int qtls_reset_ca_dir(const char *dir, char *moved_to, size_t cap, qerr *err)
{
    if (moved_to && cap)
        moved_to[0] = '\0';
    if (qtls_check_dir(dir, err) < 0)
        return -1;
    char old[PATH_MAX], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    int made = -1;
    for (int i = 0; i < 100 && made < 0; i++) {
        int w = i ? snprintf(old, sizeof old, "%s/old-%s-%d", dir, stamp, i)
                  : snprintf(old, sizeof old, "%s/old-%s", dir, stamp);
        if (w >= (int)sizeof old)
            return qerr_set(err, "CA directory path too long");
        made = mkdir(old, 0700);
        if (made < 0 && errno != EEXIST)
            return qerr_set(err, "cannot create %s: %s", old, strerror(errno));
    }
    if (made < 0)
        return qerr_set(err, "cannot find a free old-%s directory name in %s", stamp, dir);
    DIR *d = opendir(dir);
    if (!d) {
        rmdir(old);
        return qerr_set(err, "cannot list %s: %s", dir, strerror(errno));
    }
    int rc = 0;
    unsigned moved = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!is_pem_name(e->d_name))
            continue;
        char from[PATH_MAX], to[PATH_MAX];
        struct stat st;
        if (join(from, sizeof from, dir, e->d_name, err) < 0 || join(to, sizeof to, old, e->d_name, err) < 0) {
            rc = -1;
            break;
        }
        if (lstat(from, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (rename(from, to) < 0)
            rc = qerr_set(err, "cannot move %s to %s: %s", from, to, strerror(errno));
        else
            moved++;
    }
    closedir(d);
    if (moved == 0 && rc == 0) {
        rmdir(old);
        return 0;
    }
    if (moved_to && cap)
        snprintf(moved_to, cap, "%s", old);
    return rc;
}
