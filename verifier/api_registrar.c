/* api_registrar.c — where the verifier's add reads an agent's registrar record: the external
 * registrar named by [verifier] registrar_url, or this daemon's own store (api_int.h). */
#include "api_int.h"
#include "registrar_client.h"

int vapi_registrar_get(const vapi_ctx *c, const char *id, const char *asked, vreg_agent *out, qerr *err)
{
    if (!c->cfg->registrar_url[0])
        return vstore_reg_get(c->store, id, out, err);
    bool tls = !c->cfg->insecure;
    vregc_opts o = { .url = c->cfg->registrar_url, .timeout_ms = c->cfg->request_timeout_ms,
                     .ca_file = tls ? c->cfg->registrar_ca_cert : NULL,
                     .cert_file = tls ? c->cfg->client_cert : NULL, .key_file = tls ? c->cfg->client_key : NULL };
    /* A Keylime registrar compares ids byte for byte: ask for the id as the add request spelled it. */
    return vregc_get(&o, asked, out, err);
}
