/* vmetrics.h — the verifier's Prometheus endpoint ([verifier] metrics_listen, default off):
 * GET /metrics on its own plain-HTTP libmicrohttpd server (http_server.h), text format 0.0.4.
 * Series: quince_build_info, quince_agents{state} (read from the store at scrape time),
 * quince_attestations_total, quince_failures_total{event_id}, quince_request_errors_total{cause},
 * quince_round_seconds (histogram), quince_store_write_seconds (histogram),
 * quince_store_{write_transactions,rows_written}_total, quince_agent_connects_total, quince_policy_cache_{hits,misses}_total, quince_revocation_webhook_{sent,failed_attempts,dropped}_total,
 * quince_leases_held, quince_leases_{taken,lost,released}_total, quince_lease_refused_rounds_total.
 * Recording is a mutex-guarded update, cheap enough for every round. */
#ifndef QUINCE_VERIFIER_VMETRICS_H
#define QUINCE_VERIFIER_VMETRICS_H

#include <stdbool.h>
#include <stdint.h>
#include "err.h"
#include "revocation_notify.h"
#include "store.h"

typedef struct vmetrics vmetrics;

/* listen: "ip:port" ("[v6]:port"); port 0 = ephemeral. */
vmetrics *vmetrics_start(const char *listen, vstore *store, vrevoc *revoc, qerr *err);
uint16_t vmetrics_port(const vmetrics *m);
/* A committed round (the poller's hook): counts it, and its failure by event id; an event of
 * the internal.verifier.* family is also a request error by cause. */
void vmetrics_on_round(vmetrics *m, int old_state, int new_state, const char *event_id);
void vmetrics_round_seconds(vmetrics *m, double s);
void vmetrics_store_write_seconds(vmetrics *m, double s);
void vmetrics_stop(vmetrics *m);
/* "ip:port" check for the configuration: 0 or -1 with the reason. */
int vmetrics_parse_listen(const char *listen, char *ip, size_t ipcap, uint16_t *port, qerr *err);

#endif
