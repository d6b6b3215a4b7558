/* fleet_serve.c — one listener for every simulated agent. A single libmicrohttpd server listens
 * on the wildcard address at the fleet's port; a connection belongs to the agent whose address
 * it was made to (its local address, getsockname), and its TLS session gets that agent's own
 * certificate and key before the handshake. So an agent costs one descriptor (the verifier's
 * connection to it) instead of a listening socket and a server of its own. Connections to any
 * other address, or to an agent that is down, get credentials without a certificate: their
 * handshake fails and they are closed. */
#include "fleet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <gnutls/gnutls.h>

#include "tls_ca.h"

static fl_agent *agent_at(fleet *f, int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sin_family != AF_INET)
        return NULL;
    uint32_t ip = ntohl(sa.sin_addr.s_addr);
    if (ip < f->base_ip || ip - f->base_ip >= f->o.n)
        return NULL;
    return &f->agents[ip - f->base_ip];
}

static void *conn_open(void *arg, int fd, void *tls)
{
    fleet *f = arg;
    fl_agent *a = agent_at(f, fd);
    if (a && a->down)
        a = NULL;
    if (!tls)
        a = NULL;
    else if (gnutls_credentials_set(tls, GNUTLS_CRD_CERTIFICATE, a ? a->cred : f->refuse_cred) < 0) {
        fprintf(stderr, "fleet: cannot give a connection its agent's certificate\n");
        a = NULL;
    }
    if (!a)
        f->refused++;
    return a;
}

static int agent_cred(fleet *f, fl_agent *a, qerr *err)
{
    gnutls_certificate_credentials_t c;
    if (gnutls_certificate_allocate_credentials(&c) < 0)
        return qerr_set(err, "out of memory");
    a->cred = c;
    gnutls_datum_t cert = { (unsigned char *)a->tls_cert, (unsigned)strlen(a->tls_cert) };
    gnutls_datum_t key = { (unsigned char *)a->tls_key, (unsigned)strlen(a->tls_key) };
    gnutls_datum_t ca = { (unsigned char *)f->ca_pem, (unsigned)strlen(f->ca_pem) };
    int rc = gnutls_certificate_set_x509_key_mem(c, &cert, &key, GNUTLS_X509_FMT_PEM);
    if (rc < 0)
        return qerr_set(err, "agent %s: its certificate or key: %s", a->uuid, gnutls_strerror(rc));
    if ((rc = gnutls_certificate_set_x509_trust_mem(c, &ca, GNUTLS_X509_FMT_PEM)) <= 0)
        return qerr_set(err, "the verifier's CA: %s", rc < 0 ? gnutls_strerror(rc) : "no certificate");
    return 0;
}

int fl_serve_start(fleet *f, const qhttp_route *routes, size_t nroutes, qerr *err)
{
    gnutls_certificate_credentials_t none;
    if (gnutls_certificate_allocate_credentials(&none) < 0)
        return qerr_set(err, "out of memory");
    f->refuse_cred = none;
    for (unsigned i = 0; i < f->o.n; i++)
        if (agent_cred(f, &f->agents[i], err) < 0)
            return -1;
    /* Every connection is the verifier's (or a tenant's): one per agent, and a few more while
     * old ones close. They all come from one address, so the per-address limit is the same. */
    unsigned limit = f->o.n * 2 + 64;
    qhttp_server_opts so = { .ip = "0.0.0.0", .port = (uint16_t)f->o.port, .log_module = "fleet",
                             .tls_cert_pem = f->agents[0].tls_cert, .tls_key_pem = f->agents[0].tls_key,
                             .tls_ca_pem = f->ca_pem, .require_client_cert = true, .external_loop = true,
                             .conn_limit = limit, .per_ip_limit = limit, .conn_timeout_s = 60,
                             .max_body = 64 * 1024, .conn_open = conn_open, .conn_arg = f, .allow_hold = true };
    /* Every agent trusts the verifier's CA and sees the same two client certificates (the
     * verifier's and the tenant's) on every connection: verify each once a minute, not once a
     * connection (a real agent sees only its own few connections). */
    qhttp_server_share_peer_checks(true);
    f->srv = qhttp_server_start(&so, routes, nroutes, err);
    if (!f->srv)
        return qerr_prefix(err, "listening on 0.0.0.0 port %u", f->o.port);
    for (unsigned i = 0; i < f->o.n; i++) {   /* the credentials and the server keep their own copies */
        qtls_free_secret(f->agents[i].tls_key);
        f->agents[i].tls_key = NULL;
    }
    return 0;
}

void fl_serve_stop(fleet *f)
{
    qhttp_server_stop(f->srv);
    f->srv = NULL;
    for (unsigned i = 0; f->agents && i < f->o.n; i++) {
        if (f->agents[i].cred)
            gnutls_certificate_free_credentials(f->agents[i].cred);
        f->agents[i].cred = NULL;
    }
    if (f->refuse_cred)
        gnutls_certificate_free_credentials(f->refuse_cred);
    f->refuse_cred = NULL;
}
