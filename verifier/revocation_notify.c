/* revocation_notify.c — failure → revocation event → channels (see revocation_notify.h). */
#include "revocation_notify.h"
#include "log.h"
#include "revocation.h"
#include "revocation_agents.h"
#include "revocation_webhook.h"
#include "buf.h"

#include <openssl/crypto.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define R "revocations"
#define LOGM "revocation"

struct vrevoc {
    vstore *store;
    vwebhook *webhook;
    vragents *agents;
    char *key_pem;          /* signing key (owned, cleansed on stop) or NULL */
};

static int copy(const qconfig *c, const char *key, char *dst, size_t cap, qerr *err)
{
    const char *v = qconfig_str(c, R, key, "");
    if (strlen(v) >= cap)
        return qerr_set(err, "[revocations] %s: longer than %zu characters", key, cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* Keylime writes the list as ["webhook"] or ['agent', 'webhook']; plain "webhook, agent" works too. */
static int channels(const qconfig *c, vrevoc_config *o, qerr *err)
{
    const char *v = qconfig_str(c, R, "enabled_revocation_notifications", "");
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '[' || *p == ']' || *p == ',' || *p == '"' || *p == '\'')
            p++;
        size_t n = strcspn(p, " \t[],\"'");
        if (n == 0)
            break;
        if (n == 7 && strncmp(p, "webhook", 7) == 0)
            o->webhook = true;
        else if (n == 5 && strncmp(p, "agent", 5) == 0)
            o->agents = true;
        else if (n == 6 && strncmp(p, "zeromq", 6) == 0)
            return qerr_set(err, "[revocations] enabled_revocation_notifications: \"%.*s\" is not offered by this "
                                 "verifier (use \"webhook\" or \"agent\")", (int)n, p);
        else
            return qerr_set(err, "[revocations] enabled_revocation_notifications: unknown channel \"%.*s\" "
                                 "(webhook, agent)", (int)(n > 40 ? 40 : n), p);
        p += n;
    }
    return 0;
}

int vrevoc_config_load(const qconfig *c, vrevoc_config *o, qerr *err)
{
    memset(o, 0, sizeof *o);
    if (channels(c, o, err) < 0 || copy(c, "webhook_url", o->webhook_url, sizeof o->webhook_url, err) < 0 ||
        copy(c, "webhook_ca_cert", o->webhook_ca_cert, sizeof o->webhook_ca_cert, err) < 0 ||
        copy(c, "signing_key", o->signing_key, sizeof o->signing_key, err) < 0 ||
        qconfig_long(c, R, "webhook_max_retries", 3, 1, 100, &o->webhook_max_retries, err) < 0 ||
        qconfig_long(c, R, "webhook_retry_interval_ms", 1000, 10, 600000, &o->webhook_retry_interval_ms, err) < 0 ||
        qconfig_long(c, R, "webhook_timeout_ms", 5000, 100, 600000, &o->webhook_timeout_ms, err) < 0)
        return -1;
    if (o->webhook && !o->webhook_url[0])
        return qerr_set(err, "[revocations] webhook_url is required when \"webhook\" is in "
                             "enabled_revocation_notifications");
    if (o->agents && !o->signing_key[0])
        return qerr_set(err, "[revocations] signing_key is required with \"agent\" in "
                             "enabled_revocation_notifications (agents refuse unsigned revocation messages)");
    if (o->webhook_url[0] && strncmp(o->webhook_url, "http://", 7) != 0 && strncmp(o->webhook_url, "https://", 8) != 0)
        return qerr_set(err, "[revocations] webhook_url: \"%s\" is not an http:// or https:// URL", o->webhook_url);
    return 0;
}

static void vrevoc_free(vrevoc *n)
{
    vwebhook_stop(n->webhook);
    vragents_stop(n->agents);
    if (n->key_pem) {
        OPENSSL_cleanse(n->key_pem, strlen(n->key_pem));
        free(n->key_pem);
    }
    free(n);
}

vrevoc *vrevoc_start(const vrevoc_config *cfg, vstore *store, const char *cert, const char *key,
                     bool allow_plain_http, qerr *err)
{
    if (!cfg || (!cfg->webhook && !cfg->agents))
        return NULL;
    vrevoc *n = calloc(1, sizeof *n);
    if (!n) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    n->store = store;
    if (cfg->signing_key[0]) {
        qbuf b;
        qbuf_init(&b, 64 * 1024);
        if (qbuf_read_file(&b, cfg->signing_key, 64 * 1024) < 0 || !qbuf_cstr(&b)) {
            qbuf_free(&b);
            qerr_set(err, "[revocations] signing_key %s cannot be read", cfg->signing_key);
            free(n);
            return NULL;
        }
        n->key_pem = (char *)b.data;
        /* Sign once now: a key that cannot sign is a start-up error, not a silent unsigned event. */
        char *probe = qrevoc_body("{}", n->key_pem, err);
        if (!probe) {
            qerr_prefix(err, "[revocations] signing_key %s", cfg->signing_key);
            vrevoc_free(n);
            return NULL;
        }
        free(probe);
    }
    if (cfg->agents) {
        vragents_opts ao = {.store = store, .cert_file = cert, .key_file = key, .allow_plain_http = allow_plain_http,
                            .timeout_ms = cfg->webhook_timeout_ms};
        if (!(n->agents = vragents_start(&ao, err))) {
            vrevoc_free(n);
            return NULL;
        }
        qlog(QLOG_INFO, LOGM, "revocation notifications: the other agents (signed)");
    }
    if (!cfg->webhook)
        return n;
    vwebhook_opts wo = {.url = cfg->webhook_url, .ca_file = cfg->webhook_ca_cert[0] ? cfg->webhook_ca_cert : NULL,
                        .attempts = (unsigned)cfg->webhook_max_retries, .retry_ms = cfg->webhook_retry_interval_ms,
                        .timeout_ms = cfg->webhook_timeout_ms};
    if (!(n->webhook = vwebhook_start(&wo, err))) {
        vrevoc_free(n);
        return NULL;
    }
    qlog(QLOG_INFO, LOGM, "revocation notifications: webhook %s", cfg->webhook_url);
    return n;
}

typedef struct first_failure {
    bool have;
    uint64_t entry;
    char path[1024], event_id[128], reason[1024];
} first_failure;

static int take_first(void *ctx, const vfailure *f)
{
    first_failure *ff = ctx;
    if (ff->have)
        return 1;
    ff->have = true;
    ff->entry = f->entry;
    snprintf(ff->path, sizeof ff->path, "%s", f->path ? f->path : "");
    snprintf(ff->event_id, sizeof ff->event_id, "%s", f->event_id ? f->event_id : "");
    snprintf(ff->reason, sizeof ff->reason, "%s", f->reason ? f->reason : "");
    return 1;     /* the first is enough */
}

/* Keylime's labels by severity_level (its default severity_labels list). */
static const char *severity_label(int level)
{
    static const char *const labels[] = {"info", "notice", "warning", "error", "critical", "alert", "emergency"};
    return level >= 0 && level < 7 ? labels[level] : "emergency";
}

void vrevoc_on_round(vrevoc *n, const char *agent_id, int old_state, int new_state, const char *event_id,
                     const char *reason)
{
    if (!n || old_state == new_state || (new_state != VSTATE_FAILED && new_state != VSTATE_INVALID_QUOTE))
        return;
    vagent a;
    memset(&a, 0, sizeof a);
    qerr e = {0};
    if (vstore_agent_get(n->store, agent_id, &a, &e) <= 0) {
        qlog(QLOG_WARNING, LOGM, "agent %s: no revocation event: the agent is gone from the store%s%s", agent_id,
             e.msg[0] ? ": " : "", e.msg);
        vagent_free(&a);
        return;
    }
    first_failure ff;
    memset(&ff, 0, sizeof ff);
    if (vstore_failures_get(n->store, agent_id, take_first, &ff, &e) < 0)
        qlog(QLOG_WARNING, LOGM, "agent %s: cannot read its failure records: %s", agent_id, e.msg);
    cJSON *ctx = cJSON_CreateObject();
    if (ctx) {
        cJSON_AddStringToObject(ctx, "message", ff.have ? ff.reason : reason ? reason : "");
        cJSON_AddStringToObject(ctx, "event_id", ff.have ? ff.event_id : event_id ? event_id : "");
        if (ff.have && ff.entry != UINT64_MAX)
            cJSON_AddNumberToObject(ctx, "entry", (double)ff.entry);
        if (ff.have && ff.path[0])
            cJSON_AddStringToObject(ctx, "path", ff.path);
    }
    /* The id as added, as Keylime's event names the agent. */
    qrevoc_event ev = {.type = "revocation", .agent_id = a.display_id, .ip = a.ip, .port = a.port,
                       .tpm_policy = a.tpm_policy, .meta_data = a.meta_data, .event_time = time(NULL),
                       .event_id = ff.have ? ff.event_id : event_id ? event_id : a.st.last_event_id,
                       .severity_label = severity_label(a.st.severity_level), .context = ctx};
    char *msg = qrevoc_msg_text(&ev, &e);
    char *body = msg ? qrevoc_body(msg, n->key_pem, &e) : NULL;
    if (!body) {
        qlog(QLOG_ERROR, LOGM, "agent %s: cannot build the revocation event: %s", agent_id, e.msg);
    } else {
        if (n->webhook && vwebhook_post(n->webhook, agent_id, body) == 0)
            qlog(QLOG_INFO, LOGM, "agent %s: revocation event %s queued for the webhook", agent_id, ev.event_id);
        if (n->agents && vragents_post(n->agents, agent_id, body) == 0)
            qlog(QLOG_INFO, LOGM, "agent %s: revocation event %s queued for the other agents", agent_id, ev.event_id);
    }
    free(body);
    free(msg);
    cJSON_Delete(ctx);
    vagent_free(&a);
}

void vrevoc_stats(vrevoc *n, unsigned long long *sent, unsigned long long *failed_attempts,
                  unsigned long long *dropped)
{
    vwebhook_stats s;
    vwebhook_stats_get(n ? n->webhook : NULL, &s);
    *sent = s.sent;
    *failed_attempts = s.failed_attempts;
    *dropped = s.dropped + s.given_up;
}

void vrevoc_stop(vrevoc *n)
{
    if (n)
        vrevoc_free(n);
}
