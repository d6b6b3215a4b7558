/* api.c — the agent's REST handlers; see api.h. */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_metrics.h"
#include "log.h"
#include "quote.h"

const char *const agent_api_versions[AGENT_API_VERSIONS_N] = {"2.1", "2.2", "2.3", "2.4", "2.5", "2.6"};

#define NONCE_MAX 64

int agent_api_version(const char *ver, int *minor, qerr *err)
{
    for (int i = 0; i < AGENT_API_VERSIONS_N; i++)
        if (strcmp(ver, agent_api_versions[i]) == 0) {
            if (minor)
                *minor = i + 1;
            return 0;
        }
    return qerr_setc(err, 400, "API version not supported: v%.32s", ver);
}

int agent_api_check_nonce(const char *nonce, qerr *err)
{
    if (!nonce || !*nonce)
        return qerr_setc(err, 400, "nonce is required");
    size_t n = 0;
    for (const char *p = nonce; *p; p++, n++) {
        if (n >= NONCE_MAX)
            return qerr_setc(err, 400, "nonce is too long (max size %d)", NONCE_MAX);
        if (!isalnum((unsigned char)*p))
            return qerr_setc(err, 400, "nonce should be strictly alphanumeric");
    }
    return 0;
}

int agent_api_parse_mask(const char *mask, uint32_t *out, qerr *err)
{
    if (!mask || !*mask)
        return qerr_setc(err, 400, "mask is required");
    const char *p = mask;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    if (!*p || strlen(p) > 8)
        return qerr_setc(err, 400, "mask '%.40s' is not a PCR bitmap of at most 32 bits", mask);
    uint32_t v = 0;
    for (; *p; p++) {
        int d = isdigit((unsigned char)*p) ? *p - '0'
              : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
              : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : -1;
        if (d < 0)
            return qerr_setc(err, 400, "mask '%.40s' is not hexadecimal", mask);
        v = (v << 4) | (uint32_t)d;
    }
    if (v >> 24)
        return qerr_setc(err, 400, "mask '%.40s' selects PCRs beyond 23", mask);
    *out = v;
    return 0;
}

/* Common prologue of versioned handlers: the version must be supported. */
static int check_version(qhttp_req *r, int min_minor, int *minor)
{
    qerr e;
    const char *ver = qhttp_req_param(r, "ver");
    if (!ver || agent_api_version(ver, minor, &e) < 0) {
        qhttp_reply_error(r, 400, "%s", ver ? e.msg : "API version not supported");
        return -1;
    }
    if (*minor < min_minor) {
        qhttp_reply_error(r, 404, "Not Found: /v%s%s needs API 2.%d or later", ver,
                          strchr(qhttp_req_path(r) + 1, '/'), min_minor);
        return -1;
    }
    return 0;
}

static const char *enc_alg_name(const agent_ctx *a, int minor)
{
    bool rsa = strcmp(a->cfg.tpm_encryption_alg, "rsa") == 0;
    if (minor >= 5)
        return rsa ? "rsa2048" : "ecc256";
    return rsa ? "rsa" : "ecc";
}

static void h_version(qhttp_req *r, void *ctx)
{
    (void)ctx;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "supported_version", AGENT_API_CURRENT);
    cJSON *arr = cJSON_AddArrayToObject(res, "supported_versions");
    for (int i = 0; i < AGENT_API_VERSIONS_N; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(agent_api_versions[i]));
    qhttp_reply(r, 200, res);
}

static void h_info(qhttp_req *r, void *ctx)
{
    agent_ctx *a = ctx;
    int minor;
    if (check_version(r, 2, &minor) < 0)
        return;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "agent_uuid", a->uuid);
    cJSON_AddStringToObject(res, "tpm_hash_alg", qhash_name(a->cfg.tpm_hash_alg));
    cJSON_AddStringToObject(res, "tpm_enc_alg", enc_alg_name(a, minor));
    cJSON_AddStringToObject(res, "tpm_sign_alg", a->cfg.tpm_signing_alg);
    cJSON_AddNumberToObject(res, "ak_handle", 0);
    qhttp_reply(r, 200, res);
}

static void h_pubkey(qhttp_req *r, void *ctx)
{
    agent_ctx *a = ctx;
    int minor;
    if (check_version(r, 1, &minor) < 0)
        return;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "pubkey", a->payload.pem);
    qhttp_reply(r, 200, res);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Per-request timing at debug level (used by bench/bench_agent.sh to tell the agent's own time
 * from the TPM's): tpm_us is the wall time spent in the TPM calls (PCR 16 reset and extend,
 * PCR_Read, AK load, Quote, flushes; ESAPI and the TCTI included), handler_us the whole handler. */
static void log_timing(const char *kind, const char *nonce, int64_t t0, int64_t tpm_us, uint64_t list_bytes)
{
    if (qlog_get_level() > QLOG_DEBUG)
        return;
    qlog(QLOG_DEBUG, "agent", "timing %s nonce=%s tpm_us=%lld handler_us=%lld list_bytes=%llu", kind, nonce,
         (long long)tpm_us, (long long)(now_us() - t0), (unsigned long long)list_bytes);
}

/* Bind PCR 16 to the payload key and quote `mask` (+ PCR 16). Caller holds a->lock. *tpm_us gets
 * the time spent in TPM calls. */
static char *quote_locked(agent_ctx *a, const char *nonce, uint32_t mask, int64_t *tpm_us, qerr *err)
{
    int64_t t0 = now_us();
    *tpm_us = 0;
    if (qtpm_pcr16_bind(a->tpm, a->cfg.tpm_hash_alg, a->payload.pem, a->payload.pem_len, err) < 0) {
        *tpm_us = now_us() - t0;
        return NULL;
    }
    *tpm_us = now_us() - t0;
    qtpm_quote_out *q = malloc(sizeof(*q));
    if (!q) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    char *s = NULL;
    uint8_t *blob = malloc(QPCRBLOB_MAX);
    size_t blob_len = 0;
    int rc = -1;
    if (blob) {
        int64_t t1 = now_us();
        rc = qtpm_quote(a->tpm, a->cfg.tpm_hash_alg, mask | (1u << 16), (const uint8_t *)nonce, strlen(nonce), q,
                        err);
        *tpm_us += now_us() - t1;
    }
    if (rc == 0 && qpcrblob_build(&q->pcrs, blob, QPCRBLOB_MAX, &blob_len, err) == 0)
        s = qquote_build(q->attest, q->attest_len, q->sig, q->sig_len, blob, blob_len, err);
    else if (!blob)
        qerr_set(err, "out of memory");
    free(blob);
    free(q);
    if (a->cfg.tpm_release) {
        int64_t t2 = now_us();
        qtpm_close(a->tpm);
        *tpm_us += now_us() - t2;
    }
    return s;
}

static void add_common(agent_ctx *a, cJSON *res, const char *quote, int minor, bool with_pubkey)
{
    cJSON_AddStringToObject(res, "quote", quote);
    cJSON_AddStringToObject(res, "hash_alg", qhash_name(a->cfg.tpm_hash_alg));
    cJSON_AddStringToObject(res, "enc_alg", enc_alg_name(a, minor));
    cJSON_AddStringToObject(res, "sign_alg", a->cfg.tpm_signing_alg);
    if (with_pubkey)
        cJSON_AddStringToObject(res, "pubkey", a->payload.pem);
}

static void h_identity(qhttp_req *r, void *ctx)
{
    agent_ctx *a = ctx;
    int minor;
    qerr e;
    if (check_version(r, 1, &minor) < 0)
        return;
    const char *nonce = qhttp_req_query(r, "nonce");
    if (agent_api_check_nonce(nonce, &e) < 0) {
        qhttp_reply_error(r, 400, "%s", e.msg);
        return;
    }
    int64_t t0 = now_us(), tpm_us;
    pthread_mutex_lock(&a->lock);
    char *quote = quote_locked(a, nonce, 0, &tpm_us, &e);
    pthread_mutex_unlock(&a->lock);
    if (!quote) {
        qlog(QLOG_ERROR, "agent", "identity quote failed: %s", e.msg);
        qhttp_reply_error(r, 500, "TPM quote failed: %s", e.msg);
        return;
    }
    cJSON *res = cJSON_CreateObject();
    add_common(a, res, quote, minor, true);
    free(quote);
    qhttp_reply(r, 200, res);
    log_timing("identity", nonce, t0, tpm_us, 0);
    agent_metrics_quote(a->metrics, "identity", tpm_us, 0, 0);
}

/* The measurement list is not copied: the reply streams the byte range fixed right after the
 * quote, JSON-escaped on the fly, with pread. The list may only grow meanwhile; a list that
 * shrank or changed under the range cuts the reply (the verifier retries) and says so. */
typedef struct list_src {
    const agent_ima_ml *m;
    uint64_t start, end;
    struct agent_metrics *metrics;  /* entries served are counted as they are sent (NULL: off) */
} list_src;

static long list_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
    list_src *ls = ctx;
    uint64_t off = ls->start + pos;
    size_t want = ls->end - off < max ? (size_t)(ls->end - off) : max;
    long n = agent_ima_ml_pread(ls->m, buf, want, off);
    if (n < 0) {
        qlog(QLOG_ERROR, "agent", "cannot read IMA measurement list %s while sending it: %s; reply cut",
             agent_ima_ml_path(ls->m), strerror(errno));
        return QHTTP_STREAM_ERROR;
    }
    if (n == 0) {
        qlog(QLOG_ERROR, "agent", "IMA measurement list %s shrank while it was being sent (%llu of %llu bytes); "
             "reply cut", agent_ima_ml_path(ls->m), (unsigned long long)pos,
             (unsigned long long)(ls->end - ls->start));
        return QHTTP_STREAM_ERROR;
    }
    if (off + (uint64_t)n == ls->end && buf[n - 1] != '\n') {
        qlog(QLOG_ERROR, "agent", "IMA measurement list %s changed while it was being sent; reply cut",
             agent_ima_ml_path(ls->m));
        return QHTTP_STREAM_ERROR;
    }
    if (ls->metrics) {
        uint64_t lines = 0;      /* one entry per line; a count over the bytes already read */
        for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p))) != NULL; p++)
            lines++;
        agent_metrics_quote(ls->metrics, NULL, 0, lines, 0);
    }
    return n;
}

static void h_integrity(qhttp_req *r, void *ctx)
{
    agent_ctx *a = ctx;
    int minor;
    qerr e;
    if (check_version(r, 1, &minor) < 0)
        return;
    const char *nonce = qhttp_req_query(r, "nonce");
    const char *mask_s = qhttp_req_query(r, "mask");
    const char *partial = qhttp_req_query(r, "partial");
    const char *entry_s = qhttp_req_query(r, "ima_ml_entry");
    uint32_t mask;
    if (agent_api_check_nonce(nonce, &e) < 0 || agent_api_parse_mask(mask_s, &mask, &e) < 0) {
        qhttp_reply_error(r, 400, "%s", e.msg);
        return;
    }
    if (!partial || (strcmp(partial, "0") != 0 && strcmp(partial, "1") != 0)) {
        qhttp_reply_error(r, 400, "uri must contain key 'partial' and value '0' or '1'");
        return;
    }
    uint64_t entry = 0;
    if (entry_s && *entry_s) {
        /* As Keylime: a value that is not a number counts as 0 (the whole list). */
        char *end;
        errno = 0;
        unsigned long long v = strtoull(entry_s, &end, 10);
        if (!errno && !*end && isdigit((unsigned char)entry_s[0]))
            entry = v;
    }

    int64_t t0 = now_us(), tpm_us;
    uint64_t start = 0, end = 0, used = 0;
    bool have_list = false, more = false;
    pthread_mutex_lock(&a->lock);
    char *quote = quote_locked(a, nonce, mask, &tpm_us, &e);
    /* The list is read after the quote: it may hold entries PCR 10 does not cover yet, never fewer. */
    if (quote && a->ima) {
        qerr le;
        if (agent_ima_ml_piece(a->ima, entry, (size_t)a->cfg.max_ima_bytes, &start, &end, &used, &more, &le) == 0)
            have_list = true;
        else {
            qlog(QLOG_ERROR, "agent", "cannot serve the IMA measurement list: %s", le.msg);
            free(quote);
            quote = NULL;
            qerr_set(&e, "%s", le.msg);
        }
    }
    pthread_mutex_unlock(&a->lock);
    if (!quote) {
        qlog(QLOG_ERROR, "agent", "integrity quote failed: %s", e.msg);
        qhttp_reply_error(r, 500, "%s", e.msg);
        return;
    }
    cJSON *res = cJSON_CreateObject();
    add_common(a, res, quote, minor, strcmp(partial, "0") == 0);
    free(quote);
    cJSON_AddNumberToObject(res, "boottime", (double)a->boottime);
    if ((mask & 1u) && a->mb) {
        /* As Keylime's agents: the whole UEFI event log when PCR 0 is quoted. */
        qerr me;
        char *mb = agent_mb_log_b64(a->mb, &me);
        if (!mb || !cJSON_AddStringToObject(res, "mb_measurement_list", mb))
            qlog(QLOG_ERROR, "agent", "quote without mb_measurement_list: %s", mb ? "out of memory" : me.msg);
        free(mb);
    }
    if (!have_list) {
        qhttp_reply(r, 200, res);
    } else {
        cJSON_AddNumberToObject(res, "ima_measurement_list_entry", (double)used);
        /* A list longer than max_ima_bytes goes out in pieces: this tells the verifier to ask for
         * the rest from the entry after this piece (Keylime's agents send the whole rest). */
        if (more)
            cJSON_AddBoolToObject(res, "ima_measurement_list_more", 1);
        list_src *ls = end > start ? malloc(sizeof(*ls)) : NULL;
        if (ls) {
            *ls = (list_src){a->ima, start, end, a->metrics};
            qhttp_reply_json_stream(r, 200, res, "ima_measurement_list", end - start, list_read, ls, free);
        } else if (end > start) {
            cJSON_Delete(res);
            qhttp_reply_error(r, 500, "out of memory");
        } else {
            cJSON_AddStringToObject(res, "ima_measurement_list", "");
            qhttp_reply(r, 200, res);
        }
    }
    log_timing("integrity", nonce, t0, tpm_us, end - start);
    agent_metrics_quote(a->metrics, "integrity", tpm_us, 0, end - start);
}

size_t agent_api_routes(agent_ctx *a, qhttp_route *routes, size_t cap)
{
    const qhttp_route all[] = {
        {"GET", "/version", h_version, a},
        {"GET", "/v{ver}/agent/info", h_info, a},
        {"GET", "/v{ver}/keys/pubkey", h_pubkey, a},
        {"GET", "/v{ver}/quotes/identity", h_identity, a},
        {"GET", "/v{ver}/quotes/integrity", h_integrity, a},
        {"POST", "/v{ver}/keys/ukey", agent_h_ukey, a},
        {"POST", "/v{ver}/keys/vkey", agent_h_vkey, a},
        {"GET", "/v{ver}/keys/verify", agent_h_verify, a},
        {"POST", "/v{ver}/notifications/revocation", agent_h_revocation, a},
    };
    size_t n = sizeof(all) / sizeof(all[0]);
    if (n > cap)
        n = cap;
    memcpy(routes, all, n * sizeof(all[0]));
    return n;
}
