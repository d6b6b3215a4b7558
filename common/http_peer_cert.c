/* http_peer_cert.c — the TLS client certificate check of http_server.c (see http_peer_cert.h). */
#include "http_peer_cert.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "http_server.h"

#define VERIFY_REUSE_S 60    /* re-verify a connection's client certificate after this long */
#define MEMO_N         4     /* client certificates remembered process-wide, when shared */

/* qhttp_server_share_peer_checks: the last client certificates that verified, for every
 * connection of the process. */
typedef struct memo {
    unsigned char *der;
    size_t der_len;
    time_t at;
    char dn[QHTTP_DN_MAX];
    bool has_dn;
} memo;

static pthread_mutex_t g_memo_mu = PTHREAD_MUTEX_INITIALIZER;
static bool g_share;
static memo g_memo[MEMO_N];

void qhttp_server_share_peer_checks(bool on)
{
    pthread_mutex_lock(&g_memo_mu);
    g_share = on;
    for (size_t i = 0; !on && i < MEMO_N; i++) {
        free(g_memo[i].der);
        memset(&g_memo[i], 0, sizeof g_memo[i]);
    }
    pthread_mutex_unlock(&g_memo_mu);
}

static bool memo_find(const gnutls_datum_t *leaf, time_t now, char *dn, size_t dncap, bool *has_dn)
{
    bool hit = false;
    pthread_mutex_lock(&g_memo_mu);
    for (size_t i = 0; g_share && !hit && i < MEMO_N; i++) {
        memo *m = &g_memo[i];
        if (m->der && m->der_len == leaf->size && now - m->at < VERIFY_REUSE_S &&
            memcmp(m->der, leaf->data, leaf->size) == 0) {
            snprintf(dn, dncap, "%s", m->dn);
            *has_dn = m->has_dn;
            hit = true;
        }
    }
    pthread_mutex_unlock(&g_memo_mu);
    return hit;
}

/* Remember a leaf that verified now, in place of the oldest entry. */
static void memo_put(const gnutls_datum_t *leaf, time_t now, const char *dn, bool has_dn)
{
    pthread_mutex_lock(&g_memo_mu);
    if (g_share) {
        memo *old = &g_memo[0];
        for (size_t i = 1; i < MEMO_N; i++)
            if (!g_memo[i].der || (old->der && g_memo[i].at < old->at))
                old = &g_memo[i];
        unsigned char *d = malloc(leaf->size ? leaf->size : 1);
        if (d) {               /* without memory, nothing is remembered */
            memcpy(d, leaf->data, leaf->size);
            free(old->der);
            old->der = d;
            old->der_len = leaf->size;
            old->at = now;
            snprintf(old->dn, sizeof old->dn, "%s", dn);
            old->has_dn = has_dn;
        }
    }
    pthread_mutex_unlock(&g_memo_mu);
}

/* The chain against the CA, with the clientAuth purpose; fills dn_out. */
static int verify(struct MHD_Connection *conn, char *dn_out, size_t dncap, bool *has_dn, char *why, size_t cap)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) {
        snprintf(why, cap, "no TLS session");
        return -1;
    }
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || n == 0) {
        snprintf(why, cap, "no client certificate");
        return -1;
    }
    /* The purpose check makes a certificate whose extended key usage lacks clientAuth (a
     * server's certificate, say) fail with "purpose" in the status. */
    gnutls_typed_vdata_st purpose = { .type = GNUTLS_DT_KEY_PURPOSE_OID,
                                      .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, .size = 0 };
    unsigned status = 0;
    int rc = gnutls_certificate_verify_peers(s, &purpose, 1, &status);
    if (rc < 0 || status != 0) {
        gnutls_datum_t out = { NULL, 0 };
        if (rc >= 0 &&
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
            snprintf(why, cap, "client certificate rejected: %s", (const char *)out.data);
            gnutls_free(out.data);
            size_t wl = strlen(why);
            while (wl > 0 && why[wl - 1] == ' ')
                why[--wl] = '\0';
        } else {
            snprintf(why, cap, "client certificate rejected: %s", gnutls_strerror(rc));
        }
        return -1;
    }
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) == 0) {
        gnutls_datum_t dn = { NULL, 0 };
        if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
            gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
            snprintf(dn_out, dncap, "%.*s", (int)dn.size, (const char *)dn.data);
            *has_dn = true;
            gnutls_free(dn.data);
        }
        gnutls_x509_crt_deinit(crt);
    }
    return 0;
}

int qhttp_peer_cert_check(struct MHD_Connection *conn, qhttp_conn *cc, char *dn, size_t dncap, bool *has_dn,
                          char *why, size_t cap)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    unsigned n = 0;
    const gnutls_datum_t *certs = (ci && ci->tls_session)
        ? gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n) : NULL;
    time_t now = qhttp_mono_s();
    if (cc && cc->verified && certs && n > 0 && certs[0].size == cc->der_len &&
        memcmp(certs[0].data, cc->der, cc->der_len) == 0 && now - cc->verified_at < VERIFY_REUSE_S) {
        snprintf(dn, dncap, "%s", cc->dn);
        *has_dn = cc->has_dn;
        return 0;
    }
    bool shared = certs && n > 0 && memo_find(&certs[0], now, dn, dncap, has_dn);
    if (!shared) {
        if (verify(conn, dn, dncap, has_dn, why, cap) < 0)
            return -1;
        if (certs && n > 0)
            memo_put(&certs[0], now, dn, *has_dn);
    }
    if (cc && certs && n > 0) {
        unsigned char *d = malloc(certs[0].size ? certs[0].size : 1);
        if (d) {             /* without memory, just verify again next time */
            memcpy(d, certs[0].data, certs[0].size);
            free(cc->der);
            cc->der = d;
            cc->der_len = certs[0].size;
            cc->verified = true;
            cc->verified_at = now;
            snprintf(cc->dn, sizeof cc->dn, "%s", dn);
            cc->has_dn = *has_dn;
        }
    }
    return 0;
}
