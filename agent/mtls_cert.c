/* mtls_cert.c — the agent's TLS key and self-signed certificate; see mtls_cert.h. */
#include "mtls_cert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/x509.h>

#include "tls_ca.h"

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static bool wildcard(const char *s)
{
    return !s || !*s || !strcmp(s, "0.0.0.0") || !strcmp(s, "::") || !strcmp(s, "*");
}

/* Why the existing certificate must be made anew, or NULL when it is fine. */
static const char *stale(X509 *c, const char *cn, const char *contact, char *buf, size_t cap)
{
    qtls_cert_info info;
    if (qtls_cert_info_get(c, &info, NULL) < 0)
        return "unreadable certificate";
    char have[QTLS_CN_MAX + 2] = "";
    int hl = X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, have, sizeof have);
    if (hl < 0 || strcmp(have, cn) != 0) {
        snprintf(buf, cap, "uuid changed");
        return buf;
    }
    if (!wildcard(contact) && !qtls_cert_has_name(c, contact)) {
        snprintf(buf, cap, "contact address changed to %.80s", contact);
        return buf;
    }
    time_t now = time(NULL);
    if (info.na <= now + AGENT_MTLS_RENEW_DAYS * QTLS_DAY_S) {
        snprintf(buf, cap, "certificate %s on %s", info.na <= now ? "expired" : "expires", info.not_after);
        return buf;
    }
    if (info.nb > now + QTLS_SKEW_S) {
        snprintf(buf, cap, "certificate not valid before %s", info.not_before);
        return buf;
    }
    return NULL;
}

static X509 *make(EVP_PKEY *key, const char *cn, const char *contact, qerr *err)
{
    const char *names[5];
    size_t n = 0;
    if (!wildcard(contact))
        names[n++] = contact;
    static const char *const local[] = { "localhost", "127.0.0.1", "::1" };
    for (size_t i = 0; i < 3; i++)
        if (n == 0 || strcasecmp(names[0], local[i]) != 0)
            names[n++] = local[i];
    names[n] = NULL;
    qtls_cert_opts o = { .cn = cn, .names = names, .eku = QTLS_EKU_SERVER | QTLS_EKU_CLIENT,
                         .not_after_s = AGENT_MTLS_DAYS * QTLS_DAY_S };
    return qtls_make_cert(&o, key, NULL, NULL, err);
}

int agent_mtls_ensure(const char *state_dir, const char *uuid, const char *contact, agent_mtls *out, qerr *err)
{
    if (!out)
        return qerr_set(err, "mtls: missing output");
    memset(out, 0, sizeof *out);
    if (!state_dir || !*state_dir || !uuid || !*uuid)
        return qerr_set(err, "mtls: missing state_dir or uuid");
    if (!wildcard(contact) && !qtls_name_valid(contact))
        return qerr_set(err, "mtls: contact address \"%.80s\" is neither an IP address nor a host name", contact);
    char cn[QTLS_CN_MAX + 1];
    snprintf(cn, sizeof cn, "%s", uuid);      /* a uuid longer than a CN allows is cut */
    if (snprintf(out->cert_path, sizeof out->cert_path, "%s/%s", state_dir, AGENT_MTLS_CERT_FILE) >=
            (int)sizeof out->cert_path ||
        snprintf(out->key_path, sizeof out->key_path, "%s/%s", state_dir, AGENT_MTLS_KEY_FILE) >=
            (int)sizeof out->key_path)
        return qerr_set(err, "mtls: state_dir path too long");

    bool hc = exists(out->cert_path), hk = exists(out->key_path);
    X509 *crt = NULL;
    EVP_PKEY *key = NULL;
    int rc = -1;
    if (hc != hk) {
        qerr_set(err, "%s exists without %s: remove it to have a new key and certificate made",
                 hc ? out->cert_path : out->key_path, hc ? out->key_path : out->cert_path);
        goto done;
    }
    if (!hk) {
        key = qtls_key_new(QTLS_KEY_EC_P256, err);
        if (!key || qtls_write_key(out->key_path, key, 0, err) < 0)
            goto done;
        out->key_created = true;
        snprintf(out->why, sizeof out->why, "new key");
    } else if (qtls_load_pair(out->cert_path, out->key_path, &crt, &key, err) < 0) {
        qerr_prefix(err, "mtls");
        goto done;
    } else {
        const char *why = stale(crt, cn, contact, out->why, sizeof out->why);
        if (why) {
            if (why != out->why)
                snprintf(out->why, sizeof out->why, "%s", why);
            X509_free(crt);
            crt = NULL;
        }
    }
    if (!crt) {
        crt = make(key, cn, contact, err);
        if (!crt || qtls_write_cert(out->cert_path, crt, QTLS_REPLACE, err) < 0) {
            if (out->key_created)
                unlink(out->key_path);
            out->key_created = false;
            goto done;
        }
        out->cert_created = true;
    }
    out->cert_pem = qtls_cert_pem(crt, &out->cert_pem_len, err);
    out->key_pem = out->cert_pem ? qtls_key_pem(key, &out->key_pem_len, err) : NULL;
    rc = out->key_pem ? 0 : -1;
done:
    X509_free(crt);
    EVP_PKEY_free(key);
    if (rc < 0) {
        agent_mtls_free(out);
        out->key_created = out->cert_created = false;
    }
    return rc;
}

void agent_mtls_free(agent_mtls *m)
{
    if (!m)
        return;
    free(m->cert_pem);
    qtls_free_secret(m->key_pem);
    m->cert_pem = m->key_pem = NULL;
    m->cert_pem_len = m->key_pem_len = 0;
}
