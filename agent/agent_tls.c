/* agent_tls.c — the agent's side of mTLS; see agent_tls.h. */
#include "agent_tls.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "tls_ca.h"

#define MOD "agent"

int agent_tls_load_ca(agent_ctx *a, qerr *err)
{
    if (a->cfg.insecure) {
        qlog(QLOG_WARNING, MOD, "INSECURE: [agent] insecure = true: the API is served over plain HTTP to any "
                                "client and the registration says mtls_cert \"disabled\"; for debugging only");
        return 0;
    }
    const char *path = a->cfg.trusted_client_ca;
    X509 *ca = qtls_read_cert(path, err);
    if (!ca)
        return qerr_prefix(err, "[agent] trusted_client_ca");
    X509_free(ca);
    qbuf b;
    qbuf_init(&b, QTLS_FILE_MAX);
    if (qbuf_read_file(&b, path, QTLS_FILE_MAX) < 0 || !qbuf_cstr(&b)) {
        qbuf_free(&b);
        return qerr_set(err, "[agent] trusted_client_ca: cannot read %s", path);
    }
    a->trusted_ca_pem = (char *)b.data;     /* NUL-terminated, owned */
    return 0;
}

int agent_tls_ensure_cert(agent_ctx *a, agent_mtls *m, qerr *err)
{
    memset(m, 0, sizeof *m);
    if (a->cfg.insecure)
        return 0;
    if (agent_mtls_ensure(a->cfg.state_dir, a->uuid, a->cfg.contact_ip, m, err) < 0) {
        if (err && strncmp(err->msg, "mtls:", 5) != 0)
            qerr_prefix(err, "mtls");
        return -1;
    }
    if (m->key_created || m->cert_created)
        qlog(QLOG_INFO, MOD, "mTLS: made %s%s%s (%s); the verifier and the tenant pin it from the registrar",
             m->key_created ? "a new key and " : "a new ", "certificate ", m->cert_path, m->why);
    else
        qlog(QLOG_INFO, MOD, "mTLS: reusing the certificate %s", m->cert_path);
    a->mtls_cert_pem = m->cert_pem;
    a->mtls_key_pem = m->key_pem;
    return 0;
}

void agent_tls_server_opts(const agent_ctx *a, qhttp_server_opts *so)
{
    if (a->cfg.insecure || !a->mtls_cert_pem)
        return;
    so->tls_cert_pem = a->mtls_cert_pem;
    so->tls_key_pem = a->mtls_key_pem;
    so->tls_ca_pem = a->trusted_ca_pem;
    so->require_client_cert = true;
}

void agent_tls_free(agent_ctx *a, agent_mtls *m)
{
    agent_mtls_free(m);
    a->mtls_cert_pem = NULL;
    a->mtls_key_pem = NULL;
    free(a->trusted_ca_pem);
    a->trusted_ca_pem = NULL;
}
