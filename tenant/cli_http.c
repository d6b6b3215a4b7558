/* cli_http.c — the tenant's requests to the registrar and the verifier: URLs, API version
 * negotiation (GET /version once per server), and one-line messages for failed answers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"

#define API_MAJOR        2
#define API_FALLBACK     "2.1"      /* the oldest API Keylime's servers still speak */
#define URL_MAX          (TCLI_HOST_MAX + 64 + 3 * TCLI_NAME_MAX + 64)

const char *tcli_server_name(tcli_server s)
{
    return s == TSRV_REGISTRAR ? "registrar" : "verifier";
}

void tcli_base_url_tls(bool tls, const char *host, long port, char *base, size_t bcap, char *where, size_t wcap)
{
    bool v6 = strchr(host, ':') && host[0] != '[';
    snprintf(base, bcap, "%s://%s%s%s:%ld", tls ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "", port);
    snprintf(where, wcap, "%s%s%s:%ld", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

void tcli_base_url(const char *host, long port, char *base, size_t bcap, char *where, size_t wcap)
{
    tcli_base_url_tls(false, host, port, base, bcap, where, wcap);
}

qhttp_client *tcli_http_new(const tcli_conf *c, size_t max_response, qerr *err)
{
    qhttp_client_opts ho = { .connect_timeout_ms = c->connect_ms, .timeout_ms = c->timeout_ms,
                             .max_response = max_response };
    if (!c->insecure) {
        ho.ca_file = c->ca_cert;
        ho.cert_file = c->client_cert;
        ho.key_file = c->client_key;
    }
    return qhttp_client_new(&ho, err);
}

int tcli_api_version_check(const char *v)
{
    if (!v || v[0] != '0' + API_MAJOR || v[1] != '.' || v[2] < '0' || v[2] > '9' || v[3])
        return -1;
    int m = v[2] - '0';
    return m <= TCLI_API_MINOR_MAX ? m : -1;
}

/* GET /version, then the newest version both sides speak. Never silent about a guess: when the
 * server gives no usable list the tenant says on stderr which version it uses and why (a Keylime
 * server that rejects the request, an old one that names only its current version). */
static int negotiate(tcli_ctx *x, tcli_server s, qerr *err)
{
    char url[URL_MAX];
    snprintf(url, sizeof url, "%s/version", x->base[s]);
    qhttp_result r;
    if (qhttp_get(x->http, url, &r, err) < 0) {
        qhttp_result_free(&r);
        if (err) {
            qerr_prefix(err, "cannot reach the %s at %s", tcli_server_name(s), x->where[s]);
            err->code = TCLI_EFAIL;
        }
        return -1;
    }
    const char *name = tcli_server_name(s);
    int best = -1;
    const cJSON *list = r.status == 200 ? cJSON_GetObjectItemCaseSensitive(r.results, "supported_versions") : NULL;
    const cJSON *cur = r.status == 200 ? cJSON_GetObjectItemCaseSensitive(r.results, "current_version") : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        int m = cJSON_IsString(it) ? tcli_api_version_check(it->valuestring) : -1;
        if (m > best)
            best = m;
    }
    if (cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0) {
        qhttp_result_free(&r);
        if (best < 0)
            return qerr_setc(err, TCLI_EFAIL, "the %s at %s speaks no API version this tenant speaks (%d.0 to %d.%d)",
                             name, x->where[s], API_MAJOR, API_MAJOR, TCLI_API_MINOR_MAX);
        snprintf(x->ver[s], sizeof x->ver[s], "%d.%d", API_MAJOR, best);
        /* A clean negotiation is no news (debug); every guess below is said on stderr. */
        qlog(QLOG_DEBUG, "tenant", "%s at %s: API %s, the newest version both sides list", name, x->where[s],
             x->ver[s]);
        return 0;
    }
    if (cJSON_IsString(cur)) {
        int m = tcli_api_version_check(cur->valuestring);
        if (m < 0) {
            int rc = qerr_setc(err, TCLI_EFAIL, "the %s at %s speaks API %.20s; this tenant speaks %d.0 to %d.%d", name,
                               x->where[s], cur->valuestring, API_MAJOR, API_MAJOR, TCLI_API_MINOR_MAX);
            qhttp_result_free(&r);
            return rc;
        }
        snprintf(x->ver[s], sizeof x->ver[s], "%d.%d", API_MAJOR, m);
        fprintf(stderr, "quince-tenant: note: the %s at %s lists no supported_versions; using API %s, its "
                        "current_version\n", name, x->where[s], x->ver[s]);
        qhttp_result_free(&r);
        return 0;
    }
    char d[QERR_MSG_MAX], why[QERR_MSG_MAX + 40];
    if (r.status == 200)
        snprintf(why, sizeof why, "answered GET /version without a version");
    else
        snprintf(why, sizeof why, "answered GET /version with %s", qhttp_result_describe(&r, d, sizeof d));
    snprintf(x->ver[s], sizeof x->ver[s], "%s", API_FALLBACK);
    fprintf(stderr, "quince-tenant: note: the %s at %s %s; using API %s, the oldest one Keylime's servers "
                    "speak\n", name, x->where[s], why, x->ver[s]);
    qhttp_result_free(&r);
    return 0;
}

int tcli_call(tcli_ctx *x, tcli_server s, const char *method, const char *path, const cJSON *body,
              qhttp_result *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    if (!x->ver[s][0] && negotiate(x, s, err) < 0)
        return -1;
    char url[URL_MAX];
    int n = snprintf(url, sizeof url, "%s/v%s%s", x->base[s], x->ver[s], path);
    if (n < 0 || (size_t)n >= sizeof url)
        return qerr_setc(err, TCLI_EUSAGE, "request URL too long");
    if (qhttp_request_json(x->http, method, url, body, out, err) < 0) {
        if (err) {
            qerr_prefix(err, "cannot reach the %s at %s", tcli_server_name(s), x->where[s]);
            err->code = TCLI_EFAIL;
        }
        return -1;
    }
    if (x->o && x->o->json && out->json) {
        /* --json prints the command's last answer as the server sent it (Keylime's envelope). */
        cJSON_Delete(x->last_json);
        x->last_json = cJSON_Duplicate(out->json, true);
    }
    return 0;
}

int tcli_http_error(const qhttp_result *r, qerr *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[QERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char d[QERR_MSG_MAX];
    qhttp_result_describe(r, d, sizeof d);
    return qerr_setc(err, TCLI_EFAIL, "%s: %s", prefix, d);
}

const char *tcli_state_name(long state)
{
    static const char *const NAMES[] = {
        "Registered", "Start", "Saved", "Get Quote", "Get Quote (retry)", "Provide V", "Provide V (retry)",
        "Failed", "Terminated", "Invalid Quote", "Tenant Quote Failed",
    };
    return state >= 0 && state < (long)(sizeof NAMES / sizeof NAMES[0]) ? NAMES[state] : "Unknown";
}
