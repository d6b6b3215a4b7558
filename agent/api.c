/* api.c — the agent's REST handlers; see api.h. */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Bind PCR 16 to the payload key and quote `mask` (+ PCR 16). Caller holds a->lock. */
static char *quote_locked(agent_ctx *a, const char *nonce, uint32_t mask, qerr *err)
{
    if (qtpm_pcr16_bind(a->tpm, a->cfg.tpm_hash_alg, a->payload.pem, a->payload.pem_len, err) < 0)
        return NULL;
    qtpm_quote_out *q = malloc(sizeof(*q));
    if (!q) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    char *s = NULL;
    uint8_t *blob = malloc(QPCRBLOB_MAX);
    size_t blob_len = 0;
    if (blob && qtpm_quote(a->tpm, a->cfg.tpm_hash_alg, mask | (1u << 16), (const uint8_t *)nonce, strlen(nonce),
                           q, err) == 0 &&
        qpcrblob_build(&q->pcrs, blob, QPCRBLOB_MAX, &blob_len, err) == 0)
        s = qquote_build(q->attest, q->attest_len, q->sig, q->sig_len, blob, blob_len, err);
    else if (!blob)
        qerr_set(err, "out of memory");
    free(blob);
    free(q);
    if (a->cfg.tpm_release)
        qtpm_close(a->tpm);
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
    pthread_mutex_lock(&a->lock);
    char *quote = quote_locked(a, nonce, 0, &e);
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

    qbuf list;
    qbuf_init(&list, (size_t)a->cfg.max_ima_bytes + 1);
    uint64_t used = 0, total = 0;
    bool have_list = false;
    pthread_mutex_lock(&a->lock);
    char *quote = quote_locked(a, nonce, mask, &e);
    /* The list is read after the quote: it may hold entries PCR 10 does not cover yet, never fewer. */
    if (quote && a->ima) {
        qerr le;
        if (agent_ima_ml_read(a->ima, entry, (size_t)a->cfg.max_ima_bytes, &list, &used, &total, &le) == 0)
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
        qbuf_free(&list);
        qlog(QLOG_ERROR, "agent", "integrity quote failed: %s", e.msg);
        qhttp_reply_error(r, 500, "%s", e.msg);
        return;
    }
    cJSON *res = cJSON_CreateObject();
    add_common(a, res, quote, minor, strcmp(partial, "0") == 0);
    free(quote);
    cJSON_AddNumberToObject(res, "boottime", (double)a->boottime);
    if (have_list) {
        char *text = qbuf_cstr(&list);
        cJSON_AddStringToObject(res, "ima_measurement_list", text ? text : "");
        cJSON_AddNumberToObject(res, "ima_measurement_list_entry", (double)used);
    }
    qbuf_free(&list);
    qhttp_reply(r, 200, res);
}

size_t agent_api_routes(agent_ctx *a, qhttp_route *routes, size_t cap)
{
    const qhttp_route all[] = {
        {"GET", "/version", h_version, a},
        {"GET", "/v{ver}/agent/info", h_info, a},
        {"GET", "/v{ver}/keys/pubkey", h_pubkey, a},
        {"GET", "/v{ver}/quotes/identity", h_identity, a},
        {"GET", "/v{ver}/quotes/integrity", h_integrity, a},
    };
    size_t n = sizeof(all) / sizeof(all[0]);
    if (n > cap)
        n = cap;
    memcpy(routes, all, n * sizeof(all[0]));
    return n;
}
