/* http_peer_cert.c — the TLS client certificate check of http_server.c (see http_peer_cert.h). */
#include "http_peer_cert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define VERIFY_REUSE_S 60    /* re-verify a connection's client certificate after this long */

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
    if (verify(conn, dn, dncap, has_dn, why, cap) < 0)
        return -1;
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
