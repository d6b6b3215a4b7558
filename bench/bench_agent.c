/* bench_agent — a client for timing a running quince-agent (bench/bench_agent.sh drives it; never
 * pass/fail).
 *
 *   bench_agent quotes identity|integrity BASE_URL N AGENT_LOG [ENTRY] [AGENT_PID TPM_PID]
 *       N quotes over one keep-alive connection (after 3 not counted), each with its own nonce;
 *       integrity quotes ask mask=0x400&partial=1&ima_ml_entry=ENTRY (ENTRY = the end of the
 *       list, so the list part is empty, as in a steady attestation round). The agent, run with
 *       log_level = debug, logs "timing <kind> nonce=<n> tpm_us=<t> handler_us=<h>" per request;
 *       the lines of this run are matched by nonce. Prints medians of the end-to-end time, of
 *       the agent's TPM time and of their difference (the agent's own time per quote: HTTP,
 *       parsing, quote encoding, JSON, loopback and this client included), and, with the PIDs,
 *       the CPU time per quote of the agent and of the TPM process (/proc/PID/stat). With
 *       BENCH_FRESH=1 in the environment every quote uses a new connection (a full TLS handshake
 *       each time, as Python Keylime's verifier does) instead of one kept-alive connection.
 *   bench_agent fetch BASE_URL ENTRY
 *       One integrity quote with partial=0 from ENTRY; checks that the reply parses and prints
 *       "entries=<lines in the list part> next=<ENTRY used + lines> bytes=<body> ms=<time>".
 *   bench_agent fetch-all BASE_URL
 *       The whole list from entry 0 piece by piece, following "ima_measurement_list_more" as the
 *       verifier does; prints "pieces=<n> entries=<n> bytes=<all bodies> max_body=<largest> ms=<time>".
 * An https BASE_URL (the agent serves mTLS) uses BENCH_TLS_CA (the agent's own certificate, the
 * only trust anchor), BENCH_TLS_CERT and BENCH_TLS_KEY (a client certificate of the verifier's CA)
 * from the environment; the host name is not checked (the agent's certificate is pinned). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>

#define MAX_QUOTES 100000
#define MAX_BODY   (256u << 20)
#define WARMUP     3

typedef struct body { char *p; size_t len, cap; } body;

static size_t on_data(char *d, size_t s, size_t n, void *ud)
{
    body *b = ud;
    size_t add = s * n;
    if (b->len + add + 1 > MAX_BODY)
        return 0;
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + add + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, add);
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* GET url into b; returns the HTTP status or -1. */
static long get(CURL *c, const char *url, body *b)
{
    b->len = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        fprintf(stderr, "bench_agent: %s: %s\n", url, curl_easy_strerror(rc));
        return -1;
    }
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    return st;
}

/* TLS settings from the environment (see the top). */
static void tls_setup(CURL *c)
{
    const char *ca = getenv("BENCH_TLS_CA"), *cert = getenv("BENCH_TLS_CERT"), *key = getenv("BENCH_TLS_KEY");
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (ca && *ca) {
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (cert && *cert)
        curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
    if (key && *key)
        curl_easy_setopt(c, CURLOPT_SSLKEY, key);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(int64_t *v, size_t n, int p)
{
    qsort(v, n, sizeof *v, cmp_i64);
    size_t i = (n * (size_t)p) / 100;
    return v[i < n ? i : n - 1];
}

/* utime + stime of a process in microseconds (clock-tick resolution), -1 if unknown. */
static int64_t cpu_us(long pid)
{
    if (pid <= 0)
        return -1;
    char path[64], line[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')');
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)((ut + st) * 1000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
}

typedef struct sample { char nonce[24]; int64_t wall, tpm, handler; bool seen; } sample;

/* Fill tpm/handler of the samples from the agent's debug lines. Returns how many matched. */
static size_t match_log(const char *log, const char *kind, sample *s, size_t n)
{
    FILE *f = fopen(log, "r");
    if (!f) {
        fprintf(stderr, "bench_agent: cannot read %s\n", log);
        return 0;
    }
    char line[4096], key[64];
    snprintf(key, sizeof key, "timing %s nonce=", kind);
    size_t matched = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, key);
        if (!p)
            continue;
        char nonce[64];
        long long t, h;
        if (sscanf(p + strlen(key), "%63s tpm_us=%lld handler_us=%lld", nonce, &t, &h) != 3)
            continue;
        /* nonces are "b<kind letter><index>x<run>": the index finds the sample */
        char *x = strchr(nonce + 2, 'x');
        if (!x)
            continue;
        size_t i = strtoul(nonce + 2, NULL, 10);
        if (i < n && !s[i].seen && strcmp(s[i].nonce, nonce) == 0) {
            s[i].tpm = t;
            s[i].handler = h;
            s[i].seen = true;
            matched++;
        }
    }
    fclose(f);
    return matched;
}

static int quotes(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_agent quotes identity|integrity BASE_URL N AGENT_LOG [ENTRY] [AGENT_PID TPM_PID]\n");
        return 2;
    }
    const char *kind = argv[2], *base = argv[3], *log = argv[5];
    bool integ = strcmp(kind, "integrity") == 0;
    size_t n = strtoul(argv[4], NULL, 10);
    const char *entry = argc > 6 ? argv[6] : "0";
    long agent_pid = argc > 7 ? atol(argv[7]) : 0, tpm_pid = argc > 8 ? atol(argv[8]) : 0;
    if (n < 1 || n > MAX_QUOTES || (!integ && strcmp(kind, "identity") != 0)) {
        fprintf(stderr, "bench_agent: bad kind or N\n");
        return 2;
    }
    sample *s = calloc(n, sizeof *s);
    int64_t *v = calloc(n, sizeof *v);
    CURL *c = curl_easy_init();
    body b = {0};
    if (!s || !v || !c)
        return 1;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    tls_setup(c);
    const char *fresh = getenv("BENCH_FRESH");
    if (fresh && strcmp(fresh, "1") == 0) {
        /* a client that opens a new connection, with a full TLS handshake, for every quote */
        curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    }
    unsigned run = (unsigned)(now_us() % 100000);
    char url[1024];
    int64_t cpu_a0 = 0, cpu_t0 = 0, t_start = 0;
    for (size_t i = 0; i < n + WARMUP; i++) {
        if (i == WARMUP) {
            cpu_a0 = cpu_us(agent_pid);
            cpu_t0 = cpu_us(tpm_pid);
            t_start = now_us();
        }
        char nonce[24];
        size_t k = i >= WARMUP ? i - WARMUP : 0;
        snprintf(nonce, sizeof nonce, "b%c%zux%u", i >= WARMUP ? kind[1] : 'w', k, run);
        if (integ)
            snprintf(url, sizeof url, "%s/v2.6/quotes/integrity?nonce=%s&mask=0x400&partial=1&ima_ml_entry=%s", base,
                     nonce, entry);
        else
            snprintf(url, sizeof url, "%s/v2.6/quotes/identity?nonce=%s", base, nonce);
        int64_t t0 = now_us();
        long st = get(c, url, &b);
        int64_t t1 = now_us();
        if (st != 200) {
            fprintf(stderr, "bench_agent: %s: status %ld: %.300s\n", url, st, b.p ? b.p : "");
            return 1;
        }
        if (i < WARMUP)
            continue;
        snprintf(s[k].nonce, sizeof s[k].nonce, "%s", nonce);
        s[k].wall = t1 - t0;
        if (integ && k == 0) {
            cJSON *j = cJSON_Parse(b.p);
            const cJSON *l = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "results"),
                                                               "ima_measurement_list");
            if (!cJSON_IsString(l) || l->valuestring[0])
                fprintf(stderr, "bench_agent: note: the list part is not empty (ENTRY is not the end)\n");
            cJSON_Delete(j);
        }
    }
    int64_t elapsed = now_us() - t_start;
    int64_t cpu_a = cpu_us(agent_pid) - cpu_a0, cpu_t = cpu_us(tpm_pid) - cpu_t0;
    usleep(300 * 1000); /* let the agent's log reach the file */
    size_t m = match_log(log, kind, s, n);
    for (size_t i = 0; i < n; i++)
        v[i] = s[i].wall;
    int64_t wall_med = pct(v, n, 50), wall_p90 = pct(v, n, 90);
    printf("kind=%s quotes=%zu matched=%zu rate=%.0f/s wall_med_us=%lld wall_p90_us=%lld", kind, n, m,
           (double)n * 1e6 / (double)elapsed, (long long)wall_med, (long long)wall_p90);
    if (m) {
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i].seen)
                v[j++] = s[i].tpm;
        printf(" tpm_med_us=%lld", (long long)pct(v, m, 50));
        j = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i].seen)
                v[j++] = s[i].wall - s[i].tpm;
        int64_t med = pct(v, m, 50), p90 = pct(v, m, 90);
        printf(" overhead_med_us=%lld overhead_p90_us=%lld overhead_min_us=%lld", (long long)med, (long long)p90,
               (long long)v[0]);
        j = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i].seen)
                v[j++] = s[i].handler - s[i].tpm;
        printf(" handler_non_tpm_med_us=%lld", (long long)pct(v, m, 50));
    }
    if (agent_pid > 0 && cpu_a >= 0)
        printf(" agent_cpu_us_per_quote=%.0f", (double)cpu_a / (double)n);
    if (tpm_pid > 0 && cpu_t >= 0)
        printf(" tpm_cpu_us_per_quote=%.0f", (double)cpu_t / (double)n);
    printf("\n");
    free(b.p);
    free(s);
    free(v);
    curl_easy_cleanup(c);
    return m ? 0 : 1;
}

static int fetch(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_agent fetch BASE_URL ENTRY\n");
        return 2;
    }
    CURL *c = curl_easy_init();
    body b = {0};
    if (!c)
        return 1;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
    tls_setup(c);
    char url[1024];
    snprintf(url, sizeof url, "%s/v2.6/quotes/integrity?nonce=bfetch%lld&mask=0x400&partial=0&ima_ml_entry=%s",
             argv[2], (long long)(now_us() % 1000000), argv[3]);
    int64_t t0 = now_us();
    long st = get(c, url, &b);
    int64_t t1 = now_us();
    int rc = 1;
    cJSON *j = st == 200 ? cJSON_ParseWithLength(b.p, b.len) : NULL;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "results");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "ima_measurement_list");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "ima_measurement_list_entry");
    if (cJSON_IsString(l) && cJSON_IsNumber(e)) {
        size_t lines = 0;
        for (const char *p = l->valuestring; (p = strchr(p, '\n')) != NULL; p++)
            lines++;
        printf("entries=%zu next=%.0f bytes=%zu ms=%.1f\n", lines, e->valuedouble + (double)lines, b.len,
               (double)(t1 - t0) / 1000.0);
        rc = 0;
    } else {
        fprintf(stderr, "bench_agent: fetch: status %ld, %zu bytes, no list in the reply\n", st, b.len);
    }
    cJSON_Delete(j);
    free(b.p);
    curl_easy_cleanup(c);
    return rc;
}

/* Follow the pieces of the list from entry 0 (ima_measurement_list_more) as the verifier does. */
static int fetch_all(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_agent fetch-all BASE_URL\n");
        return 2;
    }
    CURL *c = curl_easy_init();
    body b = {0};
    if (!c)
        return 1;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
    tls_setup(c);
    char url[1024];
    double next = 0;
    size_t pieces = 0, bytes = 0, max_body = 0, entries = 0;
    int64_t t0 = now_us();
    int rc = 1;
    for (;;) {
        snprintf(url, sizeof url, "%s/v2.6/quotes/integrity?nonce=bfall%zu&mask=0x400&partial=%d&ima_ml_entry=%.0f",
                 argv[2], pieces, pieces ? 1 : 0, next);
        long st = get(c, url, &b);
        cJSON *j = st == 200 ? cJSON_ParseWithLength(b.p, b.len) : NULL;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "results");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "ima_measurement_list");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "ima_measurement_list_entry");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "ima_measurement_list_more");
        if (!cJSON_IsString(l) || !cJSON_IsNumber(e) || e->valuedouble != next) {
            fprintf(stderr, "bench_agent: fetch-all: piece %zu: status %ld, no list or wrong entry\n", pieces, st);
            cJSON_Delete(j);
            break;
        }
        size_t lines = 0;
        for (const char *p = l->valuestring; (p = strchr(p, '\n')) != NULL; p++)
            lines++;
        pieces++;
        bytes += b.len;
        entries += lines;
        if (b.len > max_body)
            max_body = b.len;
        next += (double)lines;
        bool more = cJSON_IsTrue(m);
        cJSON_Delete(j);
        if (!more) {
            rc = 0;
            break;
        }
        if (lines == 0) {
            fprintf(stderr, "bench_agent: fetch-all: \"more\" with an empty piece\n");
            break;
        }
    }
    printf("pieces=%zu entries=%zu bytes=%zu max_body=%zu ms=%.1f\n", pieces, entries, bytes, max_body,
           (double)(now_us() - t0) / 1000.0);
    free(b.p);
    curl_easy_cleanup(c);
    return rc;
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 2;
    if (argc >= 2 && strcmp(argv[1], "quotes") == 0)
        rc = quotes(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "fetch") == 0)
        rc = fetch(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "fetch-all") == 0)
        rc = fetch_all(argc, argv);
    else
        fprintf(stderr, "usage: bench_agent quotes|fetch ... (see the top of bench/bench_agent.c)\n");
    curl_global_cleanup();
    return rc;
}
