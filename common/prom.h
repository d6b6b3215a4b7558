/* prom.h — a small registry of Prometheus metrics rendered in the text exposition format
 * (version 0.0.4) for a /metrics route. Counters, gauges and fixed-bucket histograms, each
 * family with at most one label (value escaped here). Thread-safe (one mutex); bounded: at most
 * QPROM_MAX_SERIES series; beyond it new series are ignored and counted in
 * quince_metrics_series_dropped_total. Names and help texts are string literals (kept by
 * pointer). */
#ifndef QUINCE_PROM_H
#define QUINCE_PROM_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

#define QPROM_MAX_SERIES 512
#define QPROM_LABEL_MAX  128

typedef struct qprom qprom;

qprom *qprom_new(void);
void qprom_free(qprom *p);
/* label may be NULL (no label); value is the label's value. */
void qprom_counter_add(qprom *p, const char *name, const char *help, const char *label, const char *value,
                       double v);
/* A counter kept elsewhere (monotonic): its current total. */
void qprom_counter_set(qprom *p, const char *name, const char *help, const char *label, const char *value,
                       double v);
void qprom_gauge_set(qprom *p, const char *name, const char *help, const char *label, const char *value,
                     double v);
/* Seconds; buckets 0.005 … 10 and +Inf. */
void qprom_hist_observe(qprom *p, const char *name, const char *help, double seconds);
/* Drop every series of a gauge family (before setting the current values again). */
void qprom_gauge_reset(qprom *p, const char *name);
/* "ip:port" or "[v6]:port" of a metrics listener (port 0 = ephemeral): 0, or -1 with the reason. */
int qprom_parse_listen(const char *listen, char *ip, size_t ipcap, uint16_t *port, qerr *err);
/* The text; caller frees. NULL when out of memory. */
char *qprom_render(qprom *p, size_t *len);

#endif
