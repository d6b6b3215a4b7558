/* vmetrics.c — the verifier's /metrics (see vmetrics.h). */
#include "vmetrics.h"
#include "http_server.h"
#include "lease.h"
#include "log.h"
#include "policy_cache.h"
#include "prom.h"
#include "agent_client.h"
#include "state_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGM "metrics"
#define MAX_SCRAPE_AGENTS 100000

struct vmetrics {
    qprom *prom;
    vstore *store;
    vrevoc *revoc;
    qhttp_server *srv;
};

int vmetrics_parse_listen(const char *listen, char *ip, size_t ipcap, uint16_t *port, qerr *err)
{
    if (qprom_parse_listen(listen, ip, ipcap, port, err) < 0) {
        qerr_prefix(err, "[verifier] metrics_listen");
        return -1;
    }
    return 0;
}

typedef struct count_ctx {
    vmetrics *m;
    unsigned long long by_state[VSTATE_TENANT_FAILED + 2];
    size_t seen;
} count_ctx;

static int count_agent(void *ctx, const char *agent_id)
{
    count_ctx *c = ctx;
    if (++c->seen > MAX_SCRAPE_AGENTS)
        return 1;
    vagent a;
    memset(&a, 0, sizeof a);
    qerr e = {0};
    if (vstore_agent_get(c->m->store, agent_id, &a, &e) > 0) {
        int s = a.st.operational_state;
        c->by_state[s >= 0 && s <= VSTATE_TENANT_FAILED ? s : VSTATE_TENANT_FAILED + 1]++;
    }
    vagent_free(&a);
    return 0;
}

static void refresh(vmetrics *m)
{
    count_ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    qerr e = {0};
    if (vstore_agent_list(m->store, count_agent, &c, &e) < 0)
        qlog(QLOG_WARNING, LOGM, "cannot count agents by state: %s", e.msg);
    qprom_gauge_reset(m->prom, "quince_agents");
    for (int s = 0; s <= VSTATE_TENANT_FAILED + 1; s++)
        qprom_gauge_set(m->prom, "quince_agents", "Agents on this verifier by operational state", "state",
                        s <= VSTATE_TENANT_FAILED ? vstate_name(s) : "Unknown", (double)c.by_state[s]);
    uint64_t hits, misses;
    vpolicy_cache_stats(&hits, &misses);
    qprom_counter_set(m->prom, "quince_policy_cache_hits_total", "Runtime policy lookups served from the cache", NULL,
                    NULL, (double)hits);
    qprom_counter_set(m->prom, "quince_policy_cache_misses_total", "Runtime policy lookups that parsed", NULL, NULL,
                    (double)misses);
    unsigned long long tx, rows;
    vwriter_stats(&tx, &rows);
    qprom_counter_set(m->prom, "quince_store_write_transactions_total",
                      "Write transactions the poller's state writer committed", NULL, NULL, (double)tx);
    qprom_counter_set(m->prom, "quince_store_rows_written_total",
                      "Rows the poller's state writer wrote (agent states and failure records)", NULL, NULL,
                      (double)rows);
    qprom_counter_set(m->prom, "quince_agent_connects_total",
                      "New connections (TCP and TLS handshakes) opened to agents; kept-alive reuse is not counted",
                      NULL, NULL, (double)vac_connects());
    unsigned long long held, taken, lost, released;
    vlease_stats(&held, &taken, &lost, &released);
    qprom_gauge_set(m->prom, "quince_leases_held", "Agents this verifier holds a lease on (it polls them)", NULL, NULL,
                    (double)held);
    qprom_counter_set(m->prom, "quince_leases_taken_total", "Agent leases this verifier took", NULL, NULL,
                      (double)taken);
    qprom_counter_set(m->prom, "quince_leases_lost_total", "Agent leases another verifier took from this one", NULL,
                      NULL, (double)lost);
    qprom_counter_set(m->prom, "quince_leases_released_total", "Agent leases this verifier gave up (above its share)",
                      NULL, NULL, (double)released);
    qprom_counter_set(m->prom, "quince_lease_refused_rounds_total",
                      "Round results the lease fence refused (the lease had moved on)", NULL, NULL,
                      (double)vwriter_fenced());
    unsigned long long sent, failed, dropped;
    vrevoc_stats(m->revoc, &sent, &failed, &dropped);
    qprom_counter_set(m->prom, "quince_revocation_webhook_sent_total", "Revocation events the webhook accepted", NULL,
                    NULL, (double)sent);
    qprom_counter_set(m->prom, "quince_revocation_webhook_failed_attempts_total",
                    "Webhook attempts that failed (each is retried with back-off)", NULL, NULL, (double)failed);
    qprom_counter_set(m->prom, "quince_revocation_webhook_dropped_total",
                    "Revocation events dropped (queue full or retries exhausted)", NULL, NULL, (double)dropped);
}

static void h_metrics(qhttp_req *r, void *ctx)
{
    vmetrics *m = ctx;
    refresh(m);
    size_t n = 0;
    char *text = qprom_render(m->prom, &n);
    if (!text) {
        qhttp_reply_error(r, 500, "out of memory");
        return;
    }
    qhttp_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, n);
    free(text);
}

vmetrics *vmetrics_start(const char *listen, vstore *store, vrevoc *revoc, qerr *err)
{
    char ip[256];
    uint16_t port;
    if (vmetrics_parse_listen(listen, ip, sizeof ip, &port, err) < 0)
        return NULL;
    vmetrics *m = calloc(1, sizeof *m);
    if (!m || !(m->prom = qprom_new())) {
        free(m);
        qerr_set(err, "out of memory");
        return NULL;
    }
    m->store = store;
    m->revoc = revoc;
    qprom_gauge_set(m->prom, "quince_build_info", "Quince build", "version", QUINCE_VERSION, 1);
    qprom_counter_add(m->prom, "quince_attestations_total", "Attestation rounds committed", NULL, NULL, 0);
    qhttp_route routes[] = {{"GET", "/metrics", h_metrics, m}};
    qhttp_server_opts so = {.ip = ip, .port = port, .threads = 1, .conn_limit = 16, .log_module = LOGM,
                            .max_body = 1024};
    if (!(m->srv = qhttp_server_start(&so, routes, 1, err))) {
        qprom_free(m->prom);
        free(m);
        return NULL;
    }
    qlog(QLOG_INFO, LOGM, "metrics listening on %s:%u (plain HTTP, GET /metrics)", ip, qhttp_server_port(m->srv));
    return m;
}

uint16_t vmetrics_port(const vmetrics *m)
{
    return m ? qhttp_server_port(m->srv) : 0;
}

void vmetrics_on_round(vmetrics *m, int old_state, int new_state, const char *event_id)
{
    if (!m)
        return;
    (void)old_state;
    qprom_counter_add(m->prom, "quince_attestations_total", "Attestation rounds committed", NULL, NULL, 1);
    if (!event_id || !*event_id)
        return;
    qprom_counter_add(m->prom, "quince_failures_total", "Failed rounds by Keylime event id", "event_id", event_id, 1);
    if (strncmp(event_id, "internal.verifier.", 18) == 0 || new_state == VSTATE_GET_QUOTE_RETRY)
        qprom_counter_add(m->prom, "quince_request_errors_total", "Requests to agents that failed, by cause", "cause",
                          strncmp(event_id, "internal.verifier.", 18) == 0 ? event_id + 18 : event_id, 1);
}

void vmetrics_round_seconds(vmetrics *m, double s)
{
    if (m)
        qprom_hist_observe(m->prom, "quince_round_seconds", "Attestation round latency (request to commit)", s);
}

void vmetrics_store_write_seconds(vmetrics *m, double s)
{
    if (m)
        qprom_hist_observe(m->prom, "quince_store_write_seconds", "Store write (commit) latency", s);
}

void vmetrics_stop(vmetrics *m)
{
    if (!m)
        return;
    qhttp_server_stop(m->srv);
    qprom_free(m->prom);
    free(m);
}
