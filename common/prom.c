/* prom.c — Prometheus text exposition (see prom.h). */
#include "prom.h"
#include "buf.h"

#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double BUCKETS[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NB (sizeof BUCKETS / sizeof BUCKETS[0])

typedef enum { K_COUNTER, K_GAUGE, K_HIST } kind;

typedef struct series {
    const char *name, *help;
    kind k;
    bool live;
    char label[QPROM_LABEL_MAX];     /* rendered `key="escaped value"`, or "" */
    double v;                        /* counter/gauge value; histogram sum */
    unsigned long long count, bucket[NB];
} series;

struct qprom {
    pthread_mutex_t lock;
    series s[QPROM_MAX_SERIES];
    size_t n;
    unsigned long long dropped;
};

qprom *qprom_new(void)
{
    qprom *p = calloc(1, sizeof *p);
    if (p)
        pthread_mutex_init(&p->lock, NULL);
    return p;
}

void qprom_free(qprom *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* key="value" with \, " and newlines escaped; truncated to fit. */
static void render_label(char *out, size_t cap, const char *key, const char *value)
{
    out[0] = '\0';
    if (!key)
        return;
    size_t o = (size_t)snprintf(out, cap, "%s=\"", key);
    for (const char *c = value ? value : ""; *c && o + 4 < cap; c++) {
        if (*c == '\\' || *c == '"') {
            out[o++] = '\\';
            out[o++] = *c;
        } else if (*c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *c;
        }
    }
    if (o + 2 <= cap) {
        out[o++] = '"';
        out[o] = '\0';
    } else {
        out[0] = '\0';
    }
}

/* The series (created live when new); NULL when full. Lock held. */
static series *get(qprom *p, const char *name, const char *help, kind k, const char *label)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->s[i].name, name) == 0 && strcmp(p->s[i].label, label) == 0)
            return &p->s[i];
    if (p->n >= QPROM_MAX_SERIES) {
        p->dropped++;
        return NULL;
    }
    series *s = &p->s[p->n++];
    memset(s, 0, sizeof *s);
    s->name = name;
    s->help = help;
    s->k = k;
    snprintf(s->label, sizeof s->label, "%s", label);
    return s;
}

void qprom_counter_add(qprom *p, const char *name, const char *help, const char *label, const char *value, double v)
{
    if (!p)
        return;
    char l[QPROM_LABEL_MAX];
    render_label(l, sizeof l, label, value);
    pthread_mutex_lock(&p->lock);
    series *s = get(p, name, help, K_COUNTER, l);
    if (s) {
        s->v += v;
        s->live = true;
    }
    pthread_mutex_unlock(&p->lock);
}

static void set(qprom *p, kind k, const char *name, const char *help, const char *label, const char *value, double v)
{
    if (!p)
        return;
    char l[QPROM_LABEL_MAX];
    render_label(l, sizeof l, label, value);
    pthread_mutex_lock(&p->lock);
    series *s = get(p, name, help, k, l);
    if (s) {
        s->v = v;
        s->live = true;
    }
    pthread_mutex_unlock(&p->lock);
}

void qprom_gauge_set(qprom *p, const char *name, const char *help, const char *label, const char *value, double v)
{
    set(p, K_GAUGE, name, help, label, value, v);
}

void qprom_counter_set(qprom *p, const char *name, const char *help, const char *label, const char *value, double v)
{
    set(p, K_COUNTER, name, help, label, value, v);
}

void qprom_gauge_reset(qprom *p, const char *name)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->s[i].name, name) == 0 && p->s[i].k == K_GAUGE) {
            p->s[i].live = false;
            p->s[i].v = 0;
        }
    pthread_mutex_unlock(&p->lock);
}

void qprom_hist_observe(qprom *p, const char *name, const char *help, double seconds)
{
    if (!p || !isfinite(seconds))
        return;
    pthread_mutex_lock(&p->lock);
    series *s = get(p, name, help, K_HIST, "");
    if (s) {
        s->live = true;
        s->count++;
        s->v += seconds;
        for (size_t b = 0; b < NB; b++)
            if (seconds <= BUCKETS[b])
                s->bucket[b]++;
    }
    pthread_mutex_unlock(&p->lock);
}

char *qprom_render(qprom *p, size_t *len)
{
    qbuf b;
    qbuf_init(&b, 16u << 20);
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n && rc == 0; i++) {
        const series *s = &p->s[i];
        bool first = true;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->s[j].name, s->name) == 0)
                first = false;
        if (!first)
            continue;
        static const char *const tn[] = {"counter", "gauge", "histogram"};
        rc |= qbuf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name, tn[s->k]);
        for (size_t j = i; j < p->n && rc == 0; j++) {
            const series *t = &p->s[j];
            if (strcmp(t->name, s->name) != 0 || !t->live)
                continue;
            if (t->k == K_HIST) {
                for (size_t k = 0; k < NB; k++)
                    rc |= qbuf_printf(&b, "%s_bucket{le=\"%g\"} %llu\n", t->name, BUCKETS[k], t->bucket[k]);
                rc |= qbuf_printf(&b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", t->name, t->count,
                           t->name, t->v, t->name, t->count);
            } else if (t->label[0]) {
                rc |= qbuf_printf(&b, "%s{%s} %.17g\n", t->name, t->label, t->v);
            } else {
                rc |= qbuf_printf(&b, "%s %.17g\n", t->name, t->v);
            }
        }
    }
    if (rc == 0 && p->dropped)
        rc |= qbuf_printf(&b, "# HELP quince_metrics_series_dropped_total series not kept (registry full)\n"
                       "# TYPE quince_metrics_series_dropped_total counter\nquince_metrics_series_dropped_total %llu\n",
                   p->dropped);
    pthread_mutex_unlock(&p->lock);
    if (rc != 0 || !qbuf_cstr(&b)) {
        qbuf_free(&b);
        return NULL;
    }
    *len = b.len;
    return (char *)b.data;    /* the buffer's storage becomes the caller's */
}

int qprom_parse_listen(const char *listen, char *ip, size_t ipcap, uint16_t *port, qerr *err)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return qerr_set(err, "\"%s\" is not ip:port (e.g. 127.0.0.1:9464)", listen);
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (hl == 0 || hl >= ipcap || !colon[1] || *end || p < 0 || p > 65535)
        return qerr_set(err, "\"%s\" is not ip:port (e.g. 127.0.0.1:9464)", listen);
    memcpy(ip, h, hl);
    ip[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}
