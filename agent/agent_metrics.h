/* agent_metrics.h — the agent's Prometheus endpoint ([agent] metrics_listen, default off):
 * GET /metrics on its own plain-HTTP server with quince_agent_quotes_total{kind},
 * quince_agent_tpm_seconds (histogram of the TPM time of each quote), and
 * quince_agent_ima_entries_served_total / quince_agent_ima_bytes_served_total. */
#ifndef QUINCE_AGENT_METRICS_H
#define QUINCE_AGENT_METRICS_H

#include <stdint.h>
#include "err.h"

typedef struct agent_metrics agent_metrics;

/* NULL with err set on failure; listen "" is not allowed here (the caller checks it is set). */
agent_metrics *agent_metrics_start(const char *listen, qerr *err);
uint16_t agent_metrics_port(const agent_metrics *m);
/* One quote served: kind "identity" or "integrity", the TPM time, the list entries and bytes sent.
 * kind NULL: only add entries/bytes (counted while the list streams out). */
void agent_metrics_quote(agent_metrics *m, const char *kind, int64_t tpm_us, uint64_t entries, uint64_t bytes);
void agent_metrics_stop(agent_metrics *m);

#endif
