/* fleet_api.c — the Keylime agent API (v2.1–2.6) of one simulated agent, and the fleet's
 * request statistics. Handlers run on the event loop thread (an external_loop server); every
 * request reaches its agent through the connection (fleet_serve.c). */
#include "fleet.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define GAP_MAX_MS 600000u

/* Request statistics since the last fl_stats_print (event loop thread only). */
static struct {
    uint32_t *gap_hist;          /* ms between an agent's integrity quotes */
    uint64_t gaps, quotes, identity, errors;
    uint32_t gap_max;
    double since;
} st;

static bool version_ok(qhttp_req *r, int *minor)
{
    const char *v = qhttp_req_param(r, "ver");
    if (v && v[0] == '2' && v[1] == '.' && v[2] >= '1' && v[2] <= '6' && v[3] == '\0') {
        *minor = v[2] - '0';
        return true;
    }
    qhttp_reply_error(r, 400, "API version not supported: v%s", v ? v : "");
    st.errors++;
    return false;
}

static bool alnum(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static uint64_t next_clock(fl_agent *a)
{
    uint64_t now = (uint64_t)(fl_now() * 1000.0) + 5000000u;
    a->clock_ms = now > a->clock_ms ? now : a->clock_ms + 1;
    return a->clock_ms;
}

static char *make_quote(fl_agent *a, const char *nonce, uint32_t mask)
{
    qpcrblob p;
    memset(&p, 0, sizeof p);
    p.bank = QHASH_SHA256;
    p.mask = (mask | (1u << 16)) & 0xffffffu;
    if (p.mask & (1u << 10))
        memcpy(p.value[10], a->pcr10, 32);
    memcpy(p.value[16], a->fl->pcr16, 32);
    swq_spec s = {
        .key = &a->ak,
        .nonce = nonce,
        .bank = QHASH_SHA256,
        .pcrs = &p,
        .clock = { .clock = next_clock(a), .reset_count = a->reset_count, .restart_count = 0, .safe = 1 },
    };
    return swq_quote(&s);
}

static cJSON *quote_results(fl_agent *a, const char *quote, int minor, bool with_pubkey)
{
    cJSON *res = cJSON_CreateObject();
    if (!res)
        return NULL;
    cJSON_AddStringToObject(res, "quote", quote);
    cJSON_AddStringToObject(res, "hash_alg", "sha256");
    cJSON_AddStringToObject(res, "enc_alg", minor >= 5 ? "rsa2048" : "rsa");
    cJSON_AddStringToObject(res, "sign_alg", a->fl->o.ak_rsa ? "rsassa" : "ecdsa");
    if (with_pubkey)
        cJSON_AddStringToObject(res, "pubkey", a->fl->payload_pem);
    return res;
}

void fl_stats_quote(fleet *f, fl_agent *a)
{
    (void)f;
    double now = fl_now();
    if (a->last_quote > 0 && a->last_quote >= st.since && st.gap_hist) {
        double ms = (now - a->last_quote) * 1000.0;
        uint32_t g = ms >= GAP_MAX_MS ? GAP_MAX_MS - 1 : (uint32_t)ms;
        st.gap_hist[g]++;
        st.gaps++;
        if (g > st.gap_max)
            st.gap_max = g;
    }
    a->last_quote = now;
    a->nquotes++;
    st.quotes++;
}

static void h_integrity(qhttp_req *r, fl_agent *a)
{
    fleet *f = a->fl;
    int minor = 1;
    if (!version_ok(r, &minor))
        return;
    const char *nonce = qhttp_req_query(r, "nonce"), *mask_s = qhttp_req_query(r, "mask");
    const char *partial = qhttp_req_query(r, "partial"), *entry_s = qhttp_req_query(r, "ima_ml_entry");
    if (!alnum(nonce)) {
        st.errors++;
        qhttp_reply_error(r, 400, "nonce is not alphanumeric or longer than 64 characters");
        return;
    }
    if (!partial || (strcmp(partial, "0") != 0 && strcmp(partial, "1") != 0)) {
        st.errors++;
        qhttp_reply_error(r, 400, "uri must contain key 'partial' and value '0' or '1'");
        return;
    }
    uint32_t mask = 0x400;
    if (mask_s && *mask_s) {
        char *end;
        unsigned long m = strtoul(mask_s, &end, 16);
        if (*end || m >= (1ul << 24)) {
            st.errors++;
            qhttp_reply_error(r, 400, "mask %s is not a PCR mask", mask_s);
            return;
        }
        mask = (uint32_t)m;
    }
    uint64_t entry = entry_s && *entry_s ? strtoull(entry_s, NULL, 10) : 0;
    uint64_t total = f->pool.nbase + a->nextra;
    if (entry > total)
        entry = 0;
    char *quote = make_quote(a, nonce, mask);
    cJSON *res = quote ? quote_results(a, quote, minor, strcmp(partial, "0") == 0) : NULL;
    free(quote);
    static char *buf;            /* event loop thread only */
    static size_t cap;
    size_t len = 0;
    if (!res || fl_list_text(a, &f->pool, entry, &buf, &cap, &len) < 0) {
        cJSON_Delete(res);
        st.errors++;
        qhttp_reply_error(r, 500, "quote failed");
        return;
    }
    cJSON_AddNumberToObject(res, "boottime", (double)a->boottime);
    if (mask & (1u << 10)) {
        cJSON_AddStringToObject(res, "ima_measurement_list", buf);
        cJSON_AddNumberToObject(res, "ima_measurement_list_entry", (double)entry);
    }
    fl_stats_quote(f, a);
    qhttp_reply(r, 200, res);
}

static void h_identity(qhttp_req *r, fl_agent *a)
{
    int minor = 1;
    if (!version_ok(r, &minor))
        return;
    const char *nonce = qhttp_req_query(r, "nonce");
    if (!alnum(nonce)) {
        st.errors++;
        qhttp_reply_error(r, 400, "nonce is not alphanumeric or longer than 64 characters");
        return;
    }
    char *quote = make_quote(a, nonce, 0);
    cJSON *res = quote ? quote_results(a, quote, minor, true) : NULL;
    free(quote);
    if (!res) {
        st.errors++;
        qhttp_reply_error(r, 500, "quote failed");
        return;
    }
    st.identity++;
    qhttp_reply(r, 200, res);
}

static void h_version(qhttp_req *r, fl_agent *a)
{
    (void)a;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "supported_version", "2.6");
    cJSON *v = cJSON_AddArrayToObject(res, "supported_versions");
    static const char *const vs[] = { "2.1", "2.2", "2.3", "2.4", "2.5", "2.6" };
    for (size_t i = 0; v && i < sizeof vs / sizeof vs[0]; i++)
        cJSON_AddItemToArray(v, cJSON_CreateString(vs[i]));
    qhttp_reply(r, 200, res);
}

static void h_info(qhttp_req *r, fl_agent *a)
{
    int minor = 1;
    if (!version_ok(r, &minor))
        return;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "agent_uuid", a->uuid);
    cJSON_AddStringToObject(res, "tpm_hash_alg", "sha256");
    cJSON_AddStringToObject(res, "tpm_enc_alg", minor >= 5 ? "rsa2048" : "rsa");
    cJSON_AddStringToObject(res, "tpm_sign_alg", a->fl->o.ak_rsa ? "rsassa" : "ecdsa");
    cJSON_AddNumberToObject(res, "ak_handle", 0x81010002);
    qhttp_reply(r, 200, res);
}

static void h_pubkey(qhttp_req *r, fl_agent *a)
{
    int minor = 1;
    if (!version_ok(r, &minor))
        return;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "pubkey", a->fl->payload_pem);
    qhttp_reply(r, 200, res);
}

/* U and V halves are accepted, not decrypted: the fleet carries no payloads. */
static void h_key(qhttp_req *r, fl_agent *a)
{
    (void)a;
    int minor = 1;
    if (!version_ok(r, &minor))
        return;
    qerr e = { 0 };
    const cJSON *body = qhttp_req_json(r, &e);
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "encrypted_key"))) {
        qhttp_reply_error(r, 400, "encrypted_key missing");
        return;
    }
    qhttp_reply(r, 200, NULL);
}

static void h_verify(qhttp_req *r, fl_agent *a)
{
    (void)a;
    int minor = 1;
    if (version_ok(r, &minor))
        qhttp_reply_error(r, 400, "Bootstrap key not yet available.");
}

typedef void (*agent_fn)(qhttp_req *r, fl_agent *a);

/* Every route: find the connection's agent, answer as it, and hold a slow agent's reply. */
static void serve(qhttp_req *r, void *ctx)
{
    agent_fn fn = *(agent_fn *)ctx;
    fl_agent *a = qhttp_req_conn_ctx(r);
    if (!a || a->down) {           /* dead since the connection opened: hang up */
        qhttp_reply_hangup(r);
        return;
    }
    fn(r, a);
    if (a->slow && a->fl->o.slow_ms > 0 && fl_delay_push(a->fl, r) == 0)
        qhttp_req_hold(r);
}

static agent_fn fns[] = { h_integrity, h_identity, h_pubkey, h_key, h_key, h_verify, h_info, h_version };

int fl_api_start(fleet *f, qerr *err)
{
    const qhttp_route routes[] = {
        { "GET", "/v{ver}/quotes/integrity", serve, &fns[0] }, { "GET", "/v{ver}/quotes/identity", serve, &fns[1] },
        { "GET", "/v{ver}/keys/pubkey", serve, &fns[2] },       { "POST", "/v{ver}/keys/ukey", serve, &fns[3] },
        { "POST", "/v{ver}/keys/vkey", serve, &fns[4] },        { "GET", "/v{ver}/keys/verify", serve, &fns[5] },
        { "GET", "/v{ver}/agent/info", serve, &fns[6] },        { "GET", "/version", serve, &fns[7] },
    };
    if (!st.gap_hist && !(st.gap_hist = calloc(GAP_MAX_MS, sizeof *st.gap_hist)))
        return qerr_set(err, "out of memory");
    return fl_serve_start(f, routes, sizeof routes / sizeof routes[0], err);
}

/* utime + stime (clock ticks) and VmRSS (KiB) of pid; -1 when unreadable. */
static void proc_usage(long pid, long long *ticks, long *rss_kib)
{
    char path[64], buf[2048];
    *ticks = -1;
    *rss_kib = -1;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *fp = fopen(path, "r");
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');     /* the command name may hold spaces */
    unsigned long long ut, st_;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st_) == 2)
        *ticks = (long long)(ut + st_);
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    fp = fopen(path, "r");
    while (fp && fgets(buf, sizeof buf, fp))
        if (sscanf(buf, "VmRSS: %ld", rss_kib) == 1)
            break;
    if (fp)
        fclose(fp);
}

static uint32_t pct(double q)
{
    uint64_t want = (uint64_t)(q * (double)st.gaps), seen = 0;
    for (uint32_t i = 0; i < GAP_MAX_MS; i++) {
        seen += st.gap_hist[i];
        if (seen > want)
            return i;
    }
    return st.gap_max;
}

void fl_stats_print(const fleet *f)
{
    double now = fl_now(), win = now - (st.since > 0 ? st.since : f->t0);
    unsigned silent = 0;
    for (unsigned i = 0; i < f->o.n; i++)
        if (f->agents[i].last_quote < now - win || f->agents[i].last_quote == 0)
            silent++;
    double iv_ms = f->o.interval * 1000.0;
    static long long last_ticks = -1;
    static double last_self;
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    double self = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    long long ticks = -1;
    long rss = -1;
    if (f->o.watch_pid)
        proc_usage(f->o.watch_pid, &ticks, &rss);
    double wcpu = ticks >= 0 && last_ticks >= 0 ? (double)(ticks - last_ticks) / (double)sysconf(_SC_CLK_TCK) : -1;
    last_ticks = ticks;
    printf("fleet: stats window_s=%.1f quotes=%" PRIu64 " quotes_per_s=%.1f identity=%" PRIu64 " errors=%" PRIu64
           " gaps=%" PRIu64 " gap_p50_ms=%u gap_p99_ms=%u gap_max_ms=%u lag_max_ms=%.0f silent_agents=%u"
           " fleet_cpu_s=%.2f watched_cpu_s=%.2f watched_us_per_quote=%.0f watched_rss_kib=%ld\n",
           win, st.quotes, win > 0 ? (double)st.quotes / win : 0.0, st.identity, st.errors, st.gaps,
           st.gaps ? pct(0.50) : 0, st.gaps ? pct(0.99) : 0, st.gap_max,
           st.gaps ? (double)st.gap_max - iv_ms : 0.0, silent, self - last_self, wcpu,
           wcpu >= 0 && st.quotes ? wcpu * 1e6 / (double)st.quotes : -1.0, rss);
    last_self = self;
    fflush(stdout);
    if (st.gap_hist)
        memset(st.gap_hist, 0, GAP_MAX_MS * sizeof *st.gap_hist);
    st.gaps = st.quotes = st.identity = st.errors = 0;
    st.gap_max = 0;
    st.since = now;
}
