/* agent_metrics.c — see agent_metrics.h. */
#include "agent_metrics.h"
#include "http_server.h"
#include "log.h"
#include "prom.h"

#include <stdlib.h>

struct agent_metrics {
    qprom *prom;
    qhttp_server *srv;
};

static void h_metrics(qhttp_req *r, void *ctx)
{
    agent_metrics *m = ctx;
    size_t n = 0;
    char *text = qprom_render(m->prom, &n);
    if (!text) {
        qhttp_reply_error(r, 500, "out of memory");
        return;
    }
    qhttp_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, n);
    free(text);
}

agent_metrics *agent_metrics_start(const char *listen, qerr *err)
{
    char ip[256];
    uint16_t port;
    if (qprom_parse_listen(listen, ip, sizeof ip, &port, err) < 0) {
        qerr_prefix(err, "[agent] metrics_listen");
        return NULL;
    }
    agent_metrics *m = calloc(1, sizeof *m);
    if (!m || !(m->prom = qprom_new())) {
        free(m);
        qerr_set(err, "out of memory");
        return NULL;
    }
    qprom_gauge_set(m->prom, "quince_build_info", "Quince build", "version", QUINCE_VERSION, 1);
    qprom_counter_add(m->prom, "quince_agent_quotes_total", "Quotes served", "kind", "integrity", 0);
    qprom_counter_add(m->prom, "quince_agent_quotes_total", "Quotes served", "kind", "identity", 0);
    qprom_counter_add(m->prom, "quince_agent_ima_entries_served_total", "IMA measurement list entries sent", NULL,
                      NULL, 0);
    qprom_counter_add(m->prom, "quince_agent_ima_bytes_served_total", "IMA measurement list bytes sent", NULL, NULL,
                      0);
    qhttp_route routes[] = {{"GET", "/metrics", h_metrics, m}};
    qhttp_server_opts so = {.ip = ip, .port = port, .threads = 1, .conn_limit = 16, .log_module = "agent",
                            .max_body = 1024};
    if (!(m->srv = qhttp_server_start(&so, routes, 1, err))) {
        qprom_free(m->prom);
        free(m);
        return NULL;
    }
    qlog(QLOG_INFO, "agent", "metrics listening on %s:%u (plain HTTP, GET /metrics)", ip, qhttp_server_port(m->srv));
    return m;
}

uint16_t agent_metrics_port(const agent_metrics *m)
{
    return m ? qhttp_server_port(m->srv) : 0;
}

void agent_metrics_quote(agent_metrics *m, const char *kind, int64_t tpm_us, uint64_t entries, uint64_t bytes)
{
    if (!m)
        return;
    if (kind) {
        qprom_counter_add(m->prom, "quince_agent_quotes_total", "Quotes served", "kind", kind, 1);
        qprom_hist_observe(m->prom, "quince_agent_tpm_seconds", "TPM time per quote (PCR 16 binding, read, quote)",
                           (double)tpm_us / 1e6);
    }
    if (entries)
        qprom_counter_add(m->prom, "quince_agent_ima_entries_served_total", "IMA measurement list entries sent", NULL,
                          NULL, (double)entries);
    if (bytes)
        qprom_counter_add(m->prom, "quince_agent_ima_bytes_served_total", "IMA measurement list bytes sent", NULL,
                          NULL, (double)bytes);
}

void agent_metrics_stop(agent_metrics *m)
{
    if (!m)
        return;
    qhttp_server_stop(m->srv);
    qprom_free(m->prom);
    free(m);
}
