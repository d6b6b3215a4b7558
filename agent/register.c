/* register.c — registrar client; see register.h. */
#include "register.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <tss2/tss2_mu.h>

#include "b64.h"
#include "hex.h"
#include "http_client.h"
#include "log.h"

int agent_auth_tag(const uint8_t *secret, size_t secret_len, const char *uuid, char out[97], qerr *err)
{
    char *key = qb64_encode_alloc(secret, secret_len);
    if (!key)
        return qerr_set(err, "out of memory");
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    const uint8_t *ok = HMAC(EVP_sha384(), key, (int)strlen(key), (const uint8_t *)uuid, strlen(uuid), mac, &mac_len);
    OPENSSL_cleanse(key, strlen(key));
    free(key);
    if (!ok || mac_len != 48)
        return qerr_set(err, "HMAC-SHA384 failed");
    qhex_encode(mac, mac_len, out);
    return 0;
}

static char *tpm2b_public_b64(const TPM2B_PUBLIC *pub, qerr *err)
{
    uint8_t buf[sizeof(TPM2B_PUBLIC) + 8];
    size_t off = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof buf, &off) != 0) {
        qerr_set(err, "cannot marshal a TPM public key");
        return NULL;
    }
    char *s = qb64_encode_alloc(buf, off);
    if (!s)
        qerr_set(err, "out of memory");
    return s;
}

/* Sleep up to ms, waking early when asked to stop. */
static void nap(agent_ctx *a, long ms)
{
    while (ms > 0 && !(a->stop && *a->stop)) {
        long step = ms > 100 ? 100 : ms;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* Pick the API version from the registrar's /version answer (or the newest we speak). */
static void negotiate(const qhttp_result *res, char ver[8])
{
    snprintf(ver, 8, "%s", AGENT_API_CURRENT);
    if (res->status != 200 || !res->results)
        return;
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(res->results, "current_version");
    for (int i = 0; cJSON_IsString(cur) && i < AGENT_API_VERSIONS_N; i++)
        if (strcmp(cur->valuestring, agent_api_versions[i]) == 0) {
            snprintf(ver, 8, "%s", agent_api_versions[i]);
            return;
        }
    const cJSON *sup = cJSON_GetObjectItemCaseSensitive(res->results, "supported_versions");
    for (int i = AGENT_API_VERSIONS_N - 1; i >= 0; i--) {
        const cJSON *it;
        cJSON_ArrayForEach(it, sup)
            if (cJSON_IsString(it) && strcmp(it->valuestring, agent_api_versions[i]) == 0) {
                snprintf(ver, 8, "%s", agent_api_versions[i]);
                return;
            }
    }
}

enum { TRY_OK = 0, TRY_RETRY = 1, TRY_FATAL = -1 };

static int classify(const qhttp_result *res, const char *what, qerr *err)
{
    char d[160];
    if (res->status == 200)
        return TRY_OK;
    qhttp_result_describe(res, d, sizeof d);
    if (res->status == 403) {
        qerr_set(err, "registrar refused %s (%s): this agent's TPM identity (EK, EK certificate or AK) "
                      "differs from the one registered under this uuid; delete the old registration "
                      "(quince-tenant -c regdelete) or use another uuid", what, d);
        return TRY_FATAL;
    }
    qerr_set(err, "registrar answered %s with %s", what, d);
    /* 429: the registrar's per-address rate limit, 503: its cap on pending registrations. */
    return res->status >= 500 || res->status == 429 ? TRY_RETRY : TRY_FATAL;
}

/* One attempt of the whole exchange. */
static int attempt(agent_ctx *a, qhttp_client *c, const char *base, const cJSON *body, qerr *err)
{
    qhttp_result res;
    char url[1400], ver[8];
    snprintf(url, sizeof url, "%s/version", base);
    if (qhttp_get(c, url, &res, err) < 0) {
        qhttp_result_free(&res);
        return TRY_RETRY;
    }
    negotiate(&res, ver);
    qhttp_result_free(&res);

    snprintf(url, sizeof url, "%s/v%s/agents/%s", base, ver, a->uuid);
    if (qhttp_post(c, url, body, &res, err) < 0) {
        qhttp_result_free(&res);
        return TRY_RETRY;
    }
    int k = classify(&res, "the registration", err);
    if (k != TRY_OK) {
        qhttp_result_free(&res);
        return k;
    }
    const cJSON *blob = res.results ? cJSON_GetObjectItemCaseSensitive(res.results, "blob") : NULL;
    if (!cJSON_IsString(blob)) {
        qhttp_result_free(&res);
        qerr_set(err, "registrar's answer has no credential blob");
        return TRY_FATAL;
    }
    size_t blob_len = 0;
    uint8_t *raw = qb64_decode_alloc(blob->valuestring, strlen(blob->valuestring), QTPM_CREDBLOB_MAX, &blob_len);
    qhttp_result_free(&res);
    if (!raw) {
        qerr_set(err, "registrar's credential blob is not valid base64 of at most %d bytes", QTPM_CREDBLOB_MAX);
        return TRY_FATAL;
    }
    uint8_t secret[QTPM_SECRET_MAX];
    size_t secret_len = 0;
    pthread_mutex_lock(&a->lock);
    int rc = qtpm_activate_credential(a->tpm, raw, blob_len, secret, sizeof secret, &secret_len, err);
    pthread_mutex_unlock(&a->lock);
    free(raw);
    if (rc < 0) {
        qerr_prefix(err, "ActivateCredential");
        return TRY_FATAL;
    }
    char tag[97];
    rc = agent_auth_tag(secret, secret_len, a->uuid, tag, err);
    OPENSSL_cleanse(secret, sizeof secret);
    if (rc < 0)
        return TRY_FATAL;
    cJSON *act = cJSON_CreateObject();
    cJSON_AddStringToObject(act, "auth_tag", tag);
    snprintf(url, sizeof url, "%s/v%s/agents/%s/activate", base, ver, a->uuid);
    rc = qhttp_put(c, url, act, &res, err);
    cJSON_Delete(act);
    if (rc < 0) {
        qhttp_result_free(&res);
        return TRY_RETRY;
    }
    k = classify(&res, "the activation", err);
    /* A wrong tag or an unknown agent here means the challenge changed or expired between the
     * two steps (another registration under this uuid, e.g. a replay of our public one): a new
     * registration gets a new challenge. The registrar never drops an active record for it. */
    if (k == TRY_FATAL && (res.status == 400 || res.status == 404))
        k = TRY_RETRY;
    qhttp_result_free(&res);
    return k;
}

int agent_register(agent_ctx *a, qerr *err)
{
    TPM2B_PUBLIC ek, ak;
    uint8_t *cert = malloc(QTPM_EK_CERT_MAX);
    size_t cert_len = 0;
    if (!cert)
        return qerr_set(err, "out of memory");
    pthread_mutex_lock(&a->lock);
    int rc = qtpm_ek_public(a->tpm, &ek, err);
    int have_cert = rc < 0 ? -1 : qtpm_ek_cert(a->tpm, 0, cert, QTPM_EK_CERT_MAX, &cert_len, err);
    if (rc == 0 && have_cert >= 0)
        rc = qtpm_ak_public(a->tpm, &ak, err);
    pthread_mutex_unlock(&a->lock);
    if (rc < 0 || have_cert < 0) {
        free(cert);
        return -1;
    }
    char *ek_b64 = tpm2b_public_b64(&ek, err);
    char *ak_b64 = ek_b64 ? tpm2b_public_b64(&ak, err) : NULL;
    char *cert_b64 = (have_cert == 0 && cert_len) ? qb64_encode_alloc(cert, cert_len) : NULL;
    free(cert);
    if (!ek_b64 || !ak_b64) {
        free(ek_b64);
        free(ak_b64);
        free(cert_b64);
        return -1;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "ek_tpm", ek_b64);
    if (cert_b64)
        cJSON_AddStringToObject(body, "ekcert", cert_b64);
    else
        cJSON_AddNullToObject(body, "ekcert");
    cJSON_AddStringToObject(body, "aik_tpm", ak_b64);
    cJSON_AddStringToObject(body, "mtls_cert", a->mtls_cert_pem ? a->mtls_cert_pem : "disabled");
    cJSON_AddStringToObject(body, "ip", a->cfg.contact_ip);
    cJSON_AddNumberToObject(body, "port", (double)a->cfg.contact_port);
    free(ek_b64);
    free(ak_b64);
    free(cert_b64);
    if (!cert_len)
        qlog(QLOG_WARNING, "agent", "no EK certificate in the TPM's NV; registering without one");

    qhttp_client_opts co = {.connect_timeout_ms = 5000, .timeout_ms = 30000};
    qhttp_client *c = qhttp_client_new(&co, err);
    if (!c) {
        cJSON_Delete(body);
        return -1;
    }
    char base[1100];
    bool v6 = strchr(a->cfg.registrar_ip, ':') != NULL;
    snprintf(base, sizeof base, v6 ? "http://[%s]:%ld" : "http://%s:%ld", a->cfg.registrar_ip,
             a->cfg.registrar_port);
    long delay = a->cfg.registrar_retry_ms;
    long tries = 0;
    int k;
    qlog(QLOG_INFO, "agent", "registering agent %s with the registrar at %s", a->uuid, base);
    for (;;) {
        k = attempt(a, c, base, body, err);
        if (k != TRY_RETRY)
            break;
        tries++;
        if (a->cfg.registrar_max_retries && tries > a->cfg.registrar_max_retries) {
            qerr_prefix(err, "giving up after %ld attempts", tries);
            break;
        }
        qlog(QLOG_WARNING, "agent", "registration with %s failed: %s; retrying in %ld ms", base, err->msg, delay);
        nap(a, delay);
        if (a->stop && *a->stop) {
            qerr_set(err, "stopped while waiting for the registrar");
            break;
        }
        delay = delay * 2 > a->cfg.registrar_retry_max_ms ? a->cfg.registrar_retry_max_ms : delay * 2;
    }
    qhttp_client_free(c);
    cJSON_Delete(body);
    if (k == TRY_OK)
        qlog(QLOG_INFO, "agent", "agent %s registered and activated with the registrar at %s", a->uuid, base);
    return k == TRY_OK ? 0 : -1;
}
