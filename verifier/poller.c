/* poller.c — the attestation loop (poller.h).
 *
 * Threads:
 *  - the event thread owns the libcurl multi handle, the schedule (a min-heap by due time) and
 *    every agent's round bookkeeping; it sends the requests (quotes, and V in PROVIDE_V), hands
 *    complete 200 quote answers to the workers and applies their results (state transitions,
 *    rescheduling);
 *  - num_workers workers run the checks (attest.c) from a bounded job queue; the number of
 *    requests in flight plus jobs queued or running never exceeds MAX_INFLIGHT, so the queue
 *    never fills;
 *  - one writer thread saves states (vstore_state_save_batch: every state waiting when it wakes
 *    goes into one transaction), failure records and algorithms, in order.
 * Consistency with the API: each vpoller_agent_* call gives the agent a new generation number.
 * Results and writes carry the generation of the round they belong to and are dropped when it
 * changed; the notification itself queues a re-assertion of the state the API just stored, so
 * whatever order the writer and the API raced in, the API's state wins. */
#include "poller.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "attest.h"
#include "b64.h"
#include "buf.h"
#include "log.h"
#include "payload_crypto.h"
#include "policy_cache.h"
#include "tls_pin.h"

#define MOD "verifier"
#define MAX_INFLIGHT 1024            /* requests + jobs at once */
#define MAX_BATCH 512                /* states per transaction */
#define MAX_BACKOFF 3600.0           /* seconds */
#define DEFAULT_VERSION "2.1"
#define URL_MAX 512

enum { CMD_ADD = 1, CMD_REACTIVATE, CMD_STOP, CMD_REMOVE };
enum { W_STATE = 1, W_FAILURES, W_ALGS, W_SET_STATE };

typedef struct pagent {
    char id[VSTORE_ID_MAX];
    uint64_t gen;                /* p->mu */
    bool http_active;            /* p->mu: request in the multi handle */
    bool job_active;             /* p->mu: answer with a worker or waiting to be applied */
    /* event thread only (a worker reads rec and uses mem while job_active) */
    vagent rec;
    vattest_mem mem;
    vagent *next_rec;            /* a record that arrived while a job was active */
    bool dead;                   /* removed while a job was active: free when it comes back */
    bool polling;
    bool partial0;
    uint32_t retries;
    size_t heap_idx;             /* SIZE_MAX: not scheduled */
    double due;
    double started;
    uint64_t flight_gen;
    char nonce[VATTEST_NONCE_LEN + 1];
    uint64_t requested;
    /* PROVIDE_V (event thread): V goes to the payload key of a passing quote, once per key */
    bool vkey_flight;            /* the request in flight is POST /keys/vkey */
    bool v_delivered;            /* V reached the key whose digest is v_key */
    uint8_t v_key[32];           /* SHA-256 of the payload key PEM V was delivered to */
    uint8_t v_key_pending[32];   /* ... of the key the request in flight encrypts V to */
    CURL *easy;
    qbuf resp;
    bool too_big;
    char curl_err[CURL_ERROR_SIZE];
} pagent;

typedef struct cmd {
    int type;
    char id[VSTORE_ID_MAX];
    uint64_t gen;
    vagent *rec;                 /* ADD / REACTIVATE: the stored record (owned) */
    struct cmd *next;
} cmd;

typedef struct job {
    pagent *a;
    uint64_t gen;
    char *body;
    size_t len;
    vattest_out out;
    struct job *next;
} job;

typedef struct wop {
    int kind;
    char id[VSTORE_ID_MAX];
    uint64_t gen;
    vagent_state st;             /* W_STATE */
    vfailure *f;                 /* W_FAILURES (owned) */
    size_t nf;
    char algs[3][16];            /* W_ALGS */
    int state;                   /* W_SET_STATE */
    struct wop *next;
} wop;

struct vpoller {
    vpoller_opts o;
    char verifier_id[VSTORE_ID_MAX];
    char *tls_cert, *tls_key;
    vstore *store;
    vpolicy_cache *policies;
    CURLM *multi;
    struct curl_slist *json_hdr;  /* "Content-Type: application/json" for POST /keys/vkey */

    pthread_mutex_t mu;          /* map, generations, flags, cmds, done list */
    pagent **map;                /* sorted by id */
    size_t nmap, mapcap;
    uint64_t gen_counter;
    cmd *cmds, **cmds_tail;
    job *done, **done_tail;
    pthread_cond_t done_cond;
    bool stopping;

    /* event thread */
    pthread_t ev;
    pagent **heap;
    size_t nheap, heapcap;
    size_t inflight;             /* requests + jobs */

    /* workers */
    pthread_mutex_t jmu;
    pthread_cond_t jcond;
    job *jobs, **jobs_tail;
    bool workers_quit;
    pthread_t *workers;
    unsigned nworkers;

    /* writer */
    pthread_mutex_t wmu;
    pthread_cond_t wcond;
    wop *ops, **ops_tail;
    bool writer_quit;
    pthread_t writer;
};

/* ---- time ------------------------------------------------------------------------------------ */

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t epoch(void)
{
    return (int64_t)time(NULL);
}

/* ---- the map (p->mu held) ------------------------------------------------------------------ */

static size_t map_pos(vpoller *p, const char *id, bool *found)
{
    size_t lo = 0, hi = p->nmap;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(p->map[mid]->id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static pagent *map_find(vpoller *p, const char *id)
{
    bool found;
    size_t i = map_pos(p, id, &found);
    return found ? p->map[i] : NULL;
}

static int map_insert(vpoller *p, pagent *a)
{
    bool found;
    size_t i = map_pos(p, a->id, &found);
    if (found)
        return -1;
    if (p->nmap == p->mapcap) {
        size_t ncap = p->mapcap ? 2 * p->mapcap : 64;
        pagent **m = realloc(p->map, ncap * sizeof *m);
        if (!m)
            return -1;
        p->map = m;
        p->mapcap = ncap;
    }
    memmove(&p->map[i + 1], &p->map[i], (p->nmap - i) * sizeof *p->map);
    p->map[i] = a;
    p->nmap++;
    return 0;
}

static void map_remove(vpoller *p, const char *id)
{
    bool found;
    size_t i = map_pos(p, id, &found);
    if (!found)
        return;
    memmove(&p->map[i], &p->map[i + 1], (p->nmap - i - 1) * sizeof *p->map);
    p->nmap--;
}

/* ---- the schedule (event thread) -------------------------------------------------------------- */

static void heap_swap(vpoller *p, size_t i, size_t j)
{
    pagent *t = p->heap[i];
    p->heap[i] = p->heap[j];
    p->heap[j] = t;
    p->heap[i]->heap_idx = i;
    p->heap[j]->heap_idx = j;
}

static void heap_up(vpoller *p, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (p->heap[parent]->due <= p->heap[i]->due)
            break;
        heap_swap(p, i, parent);
        i = parent;
    }
}

static void heap_down(vpoller *p, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->nheap && p->heap[l]->due < p->heap[m]->due)
            m = l;
        if (r < p->nheap && p->heap[r]->due < p->heap[m]->due)
            m = r;
        if (m == i)
            return;
        heap_swap(p, i, m);
        i = m;
    }
}

static void unschedule(vpoller *p, pagent *a)
{
    size_t i = a->heap_idx;
    if (i == SIZE_MAX)
        return;
    a->heap_idx = SIZE_MAX;
    p->nheap--;
    if (i == p->nheap)
        return;
    p->heap[i] = p->heap[p->nheap];
    p->heap[i]->heap_idx = i;
    heap_down(p, i);
    heap_up(p, i);
}

static void schedule(vpoller *p, pagent *a, double due)
{
    unschedule(p, a);
    if (p->nheap == p->heapcap) {
        size_t ncap = p->heapcap ? 2 * p->heapcap : 64;
        pagent **h = realloc(p->heap, ncap * sizeof *h);
        if (!h) {
            qlog(QLOG_ERROR, MOD, "out of memory scheduling agent %s", a->id);
            return;
        }
        p->heap = h;
        p->heapcap = ncap;
    }
    a->due = due;
    a->heap_idx = p->nheap;
    p->heap[p->nheap++] = a;
    heap_up(p, a->heap_idx);
}

/* ---- the writer --------------------------------------------------------------------------- */

static void wop_free(wop *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nf; i++)
        vfailure_free(&w->f[i]);
    free(w->f);
    free(w->st.learned_ima_keyrings);
    free(w);
}

static wop *wop_new(int kind, const char *id, uint64_t gen)
{
    wop *w = calloc(1, sizeof *w);
    if (!w) {
        qlog(QLOG_ERROR, MOD, "out of memory: state of agent %s not saved", id);
        return NULL;
    }
    w->kind = kind;
    snprintf(w->id, sizeof w->id, "%s", id);
    w->gen = gen;
    return w;
}

static void wpush(vpoller *p, wop *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&p->wmu);
    *p->ops_tail = w;
    p->ops_tail = &w->next;
    pthread_cond_signal(&p->wcond);
    pthread_mutex_unlock(&p->wmu);
}

static void queue_state(vpoller *p, pagent *a, uint64_t gen)
{
    wop *w = wop_new(W_STATE, a->id, gen);
    if (!w)
        return;
    w->st = a->rec.st;
    /* The writer owns (and frees) its copy of the learned keyrings. */
    w->st.learned_ima_keyrings = a->rec.st.learned_ima_keyrings ? strdup(a->rec.st.learned_ima_keyrings) : NULL;
    snprintf(w->st.agent_id, sizeof w->st.agent_id, "%s", a->id);
    wpush(p, w);
}

static void queue_set_state(vpoller *p, const char *id, uint64_t gen, int state)
{
    wop *w = wop_new(W_SET_STATE, id, gen);
    if (w)
        w->state = state;
    wpush(p, w);
}

/* Is the write still wanted (the agent known with the same generation)? */
static bool write_current(vpoller *p, const wop *w)
{
    pthread_mutex_lock(&p->mu);
    pagent *a = map_find(p, w->id);
    bool ok = a && a->gen == w->gen;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void flush_states(vpoller *p, const vagent_state **batch, size_t *n)
{
    if (*n == 0)
        return;
    qerr err = { 0 };
    if (vstore_state_save_batch(p->store, batch, *n, &err) < 0)
        qlog(QLOG_ERROR, MOD, "saving %zu agent states failed: %s", *n, err.msg);
    *n = 0;
}

static void write_ops(vpoller *p, wop *list)
{
    const vagent_state *batch[MAX_BATCH];
    size_t n = 0;
    wop *done_head = list;
    for (wop *w = list; w; w = w->next) {
        if (!write_current(p, w))
            continue;
        qerr err = { 0 };
        if (w->kind == W_STATE) {
            if (n == MAX_BATCH)
                flush_states(p, batch, &n);
            batch[n++] = &w->st;
            continue;
        }
        flush_states(p, batch, &n);     /* keep the order */
        int rc = 0;
        switch (w->kind) {
        case W_FAILURES:
            rc = vstore_failures_set(p->store, w->id, w->f, w->nf, &err);
            break;
        case W_ALGS:
            rc = vstore_agent_set_algs(p->store, w->id, w->algs[0], w->algs[1], w->algs[2], &err);
            break;
        case W_SET_STATE:
            rc = vstore_set_state(p->store, w->id, w->state, &err);
            break;
        default:
            break;
        }
        if (rc < 0)
            qlog(QLOG_ERROR, MOD, "saving agent %s failed: %s", w->id, err.msg);
    }
    flush_states(p, batch, &n);
    while (done_head) {
        wop *nx = done_head->next;
        wop_free(done_head);
        done_head = nx;
    }
}

static void *writer_main(void *arg)
{
    vpoller *p = arg;
    pthread_mutex_lock(&p->wmu);
    for (;;) {
        while (!p->ops && !p->writer_quit)
            pthread_cond_wait(&p->wcond, &p->wmu);
        if (!p->ops && p->writer_quit)
            break;
        wop *list = p->ops;
        p->ops = NULL;
        p->ops_tail = &p->ops;
        pthread_mutex_unlock(&p->wmu);
        write_ops(p, list);
        pthread_mutex_lock(&p->wmu);
    }
    pthread_mutex_unlock(&p->wmu);
    return NULL;
}

/* ---- workers -------------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    vpoller *p = arg;
    qerr err = { 0 };
    vattest_opts ao = { .violations_fail = p->o.violations_fail, .log = true };
    vattest_ctx *ctx = vattest_ctx_new(&ao, &err);
    if (!ctx)
        qlog(QLOG_ERROR, MOD, "attestation worker: %s", err.msg);
    for (;;) {
        pthread_mutex_lock(&p->jmu);
        while (!p->jobs && !p->workers_quit)
            pthread_cond_wait(&p->jcond, &p->jmu);
        job *j = p->jobs;
        if (!j) {
            pthread_mutex_unlock(&p->jmu);
            break;
        }
        p->jobs = j->next;
        if (!p->jobs)
            p->jobs_tail = &p->jobs;
        pthread_mutex_unlock(&p->jmu);
        j->next = NULL;

        pagent *a = j->a;
        int64_t now = epoch();
        cJSON *json = cJSON_ParseWithLength(j->body, j->len);
        const cJSON *results = cJSON_IsObject(json) ? cJSON_GetObjectItemCaseSensitive(json, "results") : NULL;
        vpolicy_ref *pol = NULL;
        qerr perr = { 0 };
        if (!ctx) {
            vattest_fail(&j->out, &a->rec, now, VATTEST_FAILED, "internal.verifier.exception",
                         "attestation worker unavailable", true);
        } else if (!(pol = vpolicy_cache_get(p->policies, a->rec.policy_id, &perr))) {
            qlog(QLOG_ERROR, MOD, "agent %s: runtime policy %ld unusable: %s", a->id, a->rec.policy_id, perr.msg);
            vattest_fail(&j->out, &a->rec, now, VATTEST_FAILED, "internal.verifier.exception", perr.msg, true);
        } else {
            vattest_in in = {
                .agent = &a->rec,
                .nonce = a->nonce,
                .requested_entry = a->requested,
                .results = results,
                .policy = pol,
                .now = now,
            };
            vattest_round(ctx, &in, &a->mem, &j->out);
        }
        vpolicy_ref_release(pol);
        cJSON_Delete(json);
        free(j->body);
        j->body = NULL;

        pthread_mutex_lock(&p->mu);
        *p->done_tail = j;
        p->done_tail = &j->next;
        pthread_cond_signal(&p->done_cond);
        pthread_mutex_unlock(&p->mu);
        curl_multi_wakeup(p->multi);
    }
    vattest_ctx_free(ctx);
    return NULL;
}

static void push_job(vpoller *p, job *j)
{
    pthread_mutex_lock(&p->jmu);
    *p->jobs_tail = j;
    p->jobs_tail = &j->next;
    pthread_cond_signal(&p->jcond);
    pthread_mutex_unlock(&p->jmu);
}

/* ---- agents (event thread) ------------------------------------------------------------------- */

static void free_easy(vpoller *p, pagent *a)
{
    if (!a->easy)
        return;
    pthread_mutex_lock(&p->mu);
    bool active = a->http_active;
    a->http_active = false;
    pthread_mutex_unlock(&p->mu);
    if (active) {
        curl_multi_remove_handle(p->multi, a->easy);
        p->inflight--;
    }
    curl_easy_cleanup(a->easy);
    a->easy = NULL;
    a->vkey_flight = false;
    qbuf_free(&a->resp);
}

static void pagent_free(vpoller *p, pagent *a)
{
    if (!a)
        return;
    unschedule(p, a);
    free_easy(p, a);
    vattest_mem_clear(&a->mem);
    vagent_free(&a->rec);
    if (a->next_rec) {
        vagent_free(a->next_rec);
        free(a->next_rec);
    }
    free(a);
}

/* Take over a fresh record (state START) and poll at once. V already delivered to the agent's
 * current key is not sent again, unless the record brings another V. */
static void restart_agent(vpoller *p, pagent *a, vagent *rec)
{
    const char *ov = a->rec.v ? a->rec.v : "", *nv = rec->v ? rec->v : "";
    if (strcmp(ov, nv) != 0)
        a->v_delivered = false;
    vagent_free(&a->rec);
    a->rec = *rec;
    free(rec);
    a->rec.st.operational_state = VSTATE_START;
    a->rec.st.consecutive_failures = 0;
    snprintf(a->rec.st.agent_id, sizeof a->rec.st.agent_id, "%s", a->id);
    vattest_mem_clear(&a->mem);
    free_easy(p, a);            /* a new address or certificate may come with the record */
    a->retries = 0;
    a->partial0 = true;
    a->polling = true;
    schedule(p, a, mono());
}

/* Polling ends (failure, stop): the connection goes, the agent stays known. */
static void stop_polling(vpoller *p, pagent *a)
{
    a->polling = false;
    unschedule(p, a);
    free_easy(p, a);
}

static void finish_failed(vpoller *p, pagent *a, vattest_out *out, uint64_t gen)
{
    vagent_state keep = a->rec.st;
    a->rec.st = out->st;
    a->rec.st.learned_ima_keyrings = keep.learned_ima_keyrings;
    out->st.learned_ima_keyrings = NULL;
    queue_state(p, a, gen);
    wop *w = wop_new(W_FAILURES, a->id, gen);
    if (w) {
        w->f = out->failures;
        w->nf = out->nfailures;
        out->failures = NULL;
        out->nfailures = 0;
        wpush(p, w);
    }
    stop_polling(p, a);
}

/* A communication failure of a quote request (or, with vkey, of the V delivery): retry with
 * back-off (GET_QUOTE_RETRY / PROVIDE_V_RETRY), or give up (FAILED). */
static void retry_or_fail(vpoller *p, pagent *a, uint64_t gen, const char *why, bool vkey)
{
    a->retries++;
    a->rec.st.consecutive_failures = a->retries;
    if ((long)a->retries > p->o.max_retries) {
        qlog(QLOG_ERROR, MOD, "agent %s unreachable after %ld retries (%s)", a->id, p->o.max_retries, why);
        vattest_out out;
        char reason[QERR_MSG_MAX + 64];
        snprintf(reason, sizeof reason, "agent unreachable after %ld retries: %s", p->o.max_retries, why);
        vattest_fail(&out, &a->rec, epoch(), VATTEST_FAILED, "internal.verifier.not_reachable", reason, false);
        finish_failed(p, a, &out, gen);
        vattest_out_free(&out);
        return;
    }
    double delay = p->o.retry_interval;
    if (p->o.exponential_backoff && p->o.retry_interval > 1)
        delay = pow(p->o.retry_interval, (double)a->retries);
    if (delay > MAX_BACKOFF)
        delay = MAX_BACKOFF;
    if (delay < 0)
        delay = 0;
    qlog(QLOG_WARNING, MOD, "agent %s: %s failed (%s); retry %u of %ld in %.1f s", a->id,
         vkey ? "delivering V" : "quote request", why, a->retries, p->o.max_retries, delay);
    if (vkey) {
        a->rec.st.operational_state = VSTATE_PROVIDE_V_RETRY;
    } else {
        a->rec.st.operational_state = VSTATE_GET_QUOTE_RETRY;
        a->partial0 = true;
    }
    queue_state(p, a, gen);
    schedule(p, a, mono() + delay);
}

static void comm_failure(vpoller *p, pagent *a, uint64_t gen, const char *why)
{
    retry_or_fail(p, a, gen, why, false);
}

static void hard_failure(vpoller *p, pagent *a, uint64_t gen, const char *event_id, const char *why)
{
    vattest_out out;
    vattest_fail(&out, &a->rec, epoch(), VATTEST_FAILED, event_id, why, true);
    finish_failed(p, a, &out, gen);
    vattest_out_free(&out);
}

/* ---- PROVIDE_V ------------------------------------------------------------------------------ */

/* SHA-256 of the payload key PEM (to remember which key V went to). */
static void key_digest(const char *pem, uint8_t out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(pem, strlen(pem), out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        memset(out, 0, 32);
}

/* Keylime's PROVIDE_V step, decided after a quote that passed: the tenant gave a V and it has
 * not reached the payload key the agent quoted with (the first success, or an agent restarted
 * with a new key: Keylime sends V again then). An agent whose quotes fail never gets here. */
static bool provide_v_needed(const pagent *a)
{
    if (!a->rec.v || !*a->rec.v || !a->mem.pubkey)
        return false;
    if (!a->v_delivered)
        return true;
    uint8_t d[32];
    key_digest(a->mem.pubkey, d);
    return CRYPTO_memcmp(d, a->v_key, sizeof d) != 0;
}

/* {"encrypted_key": b64(RSA-OAEP-SHA1(V))} to the agent's payload key; NULL with *why set.
 * V itself only lives in a cleansed stack buffer here, and is never logged. */
static char *vkey_body(pagent *a, char *why, size_t cap)
{
    uint8_t v[64];
    long vl = qb64_decode(a->rec.v, strlen(a->rec.v), v, sizeof v);
    size_t vlen = vl < 0 ? 0 : (size_t)vl;
    if (!qpay_key_len_ok(vlen)) {
        OPENSSL_cleanse(v, sizeof v);
        snprintf(why, cap, "the stored V is not the base64 of a 16- or 32-byte key");
        return NULL;
    }
    qerr e = { 0 };
    char *ek = qpay_rsa_encrypt_b64(a->mem.pubkey, strlen(a->mem.pubkey), v, vlen, &e);
    OPENSSL_cleanse(v, sizeof v);
    if (!ek) {
        snprintf(why, cap, "cannot encrypt V to the agent's payload key: %.300s", e.msg);
        return NULL;
    }
    char *body = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddStringToObject(o, "encrypted_key", ek))
        body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(ek);
    if (!body)
        snprintf(why, cap, "out of memory");
    else
        key_digest(a->mem.pubkey, a->v_key_pending);
    return body;
}

/* The answer to POST /keys/vkey. Success → GET_QUOTE (the next quote after quote_interval);
 * 408/500/599 or no answer → PROVIDE_V_RETRY with the quote back-off, then FAILED; any other
 * status → FAILED (internal.verifier.no_v), as Keylime. */
static void vkey_done(vpoller *p, pagent *a, uint64_t gen, CURLcode rc, long status)
{
    char why[QERR_MSG_MAX];
    if (rc != CURLE_OK && !a->too_big) {
        const char *detail = a->curl_err[0] ? a->curl_err : curl_easy_strerror(rc);
        if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
            snprintf(why, sizeof why, "the agent's TLS certificate did not match the certificate it registered: %s",
                     detail);
        else
            snprintf(why, sizeof why, "%s", detail);
        retry_or_fail(p, a, gen, why, true);
        return;
    }
    if (status == 408 || status == 500 || status == 599) {
        snprintf(why, sizeof why, "HTTP %ld", status);
        retry_or_fail(p, a, gen, why, true);
        return;
    }
    if (status != 200 || a->too_big) {
        cJSON *j = a->too_big ? NULL : cJSON_ParseWithLength((const char *)a->resp.data, a->resp.len);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
        snprintf(why, sizeof why, "the agent refused V: HTTP %ld%s%.200s", status,
                 cJSON_IsString(st) ? ": " : "", cJSON_IsString(st) ? st->valuestring : "");
        cJSON_Delete(j);
        qlog(QLOG_ERROR, MOD, "agent %s: %s", a->id, why);
        hard_failure(p, a, gen, "internal.verifier.no_v", why);
        return;
    }
    a->v_delivered = true;
    memcpy(a->v_key, a->v_key_pending, sizeof a->v_key);
    a->retries = 0;
    a->rec.st.consecutive_failures = 0;
    a->rec.st.operational_state = VSTATE_GET_QUOTE;
    qlog(QLOG_INFO, MOD, "agent %s: V delivered (Provide V → Get Quote)", a->id);
    queue_state(p, a, gen);
    schedule(p, a, mono() + p->o.quote_interval);
}

static void apply_result(vpoller *p, job *j)
{
    pagent *a = j->a;
    pthread_mutex_lock(&p->mu);
    a->job_active = false;
    bool stale = a->gen != j->gen;
    pthread_mutex_unlock(&p->mu);
    p->inflight--;
    if (a->dead) {
        pagent_free(p, a);
        return;
    }
    if (stale) {
        if (a->next_rec) {
            vagent *r = a->next_rec;
            a->next_rec = NULL;
            restart_agent(p, a, r);
        }
        return;
    }
    vattest_out *out = &j->out;
    switch (out->outcome) {
    case VATTEST_PASS:
    case VATTEST_REBOOT: {
        /* The round's learned keyrings (attest.c exports them after a passing replay, NULL after
         * a reset) replace the stored ones. */
        int prev_state = a->rec.st.operational_state;
        free(a->rec.st.learned_ima_keyrings);
        a->rec.st = out->st;
        out->st.learned_ima_keyrings = NULL;
        a->rec.st.consecutive_failures = 0;
        a->retries = 0;
        double next = mono();
        if (out->outcome == VATTEST_PASS) {
            a->partial0 = false;
            bool give_v = provide_v_needed(a);
            a->rec.st.operational_state = give_v ? VSTATE_PROVIDE_V : VSTATE_GET_QUOTE;
            if (prev_state != VSTATE_GET_QUOTE || give_v)
                qlog(QLOG_INFO, MOD, "agent %s attested (%s)", a->id, vstate_name(a->rec.st.operational_state));
            double n = a->started + p->o.quote_interval;
            if (n > next && !give_v)          /* V goes at once */
                next = n;
            const char *cur[3] = { a->rec.hash_alg, a->rec.enc_alg, a->rec.sign_alg };
            const char *got[3] = { out->hash_alg, out->enc_alg, out->sign_alg };
            bool differ = false;
            for (int i = 0; i < 3; i++)
                if (!cur[i] || strcmp(cur[i], got[i]) != 0)
                    differ = true;
            if (differ) {
                char *dup[3] = { strdup(got[0]), strdup(got[1]), strdup(got[2]) };
                char **dst[3] = { &a->rec.hash_alg, &a->rec.enc_alg, &a->rec.sign_alg };
                for (int i = 0; i < 3; i++) {
                    free(*dst[i]);
                    *dst[i] = dup[i];
                }
                wop *w = wop_new(W_ALGS, a->id, j->gen);
                if (w) {
                    for (int i = 0; i < 3; i++)
                        snprintf(w->algs[i], sizeof w->algs[i], "%s", got[i]);
                    wpush(p, w);
                }
            }
        } else {
            a->partial0 = true;      /* a reboot: the next answer must carry the (maybe new) key */
            if (a->rec.st.operational_state == VSTATE_GET_QUOTE_RETRY)
                a->rec.st.operational_state = VSTATE_GET_QUOTE;
        }
        queue_state(p, a, j->gen);
        schedule(p, a, next);
        break;
    }
    default:
        finish_failed(p, a, out, j->gen);
        break;
    }
}

/* ---- requests (event thread) ------------------------------------------------------------------ */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    pagent *a = ud;
    size_t n = size * nmemb;
    if (a->resp.max && a->resp.len + n > a->resp.max) {
        a->too_big = true;
        return 0;
    }
    if (qbuf_append(&a->resp, ptr, n) < 0)
        return 0;
    return n;
}

static int setup_easy(vpoller *p, pagent *a)
{
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_PRIVATE, a);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, p->o.request_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     p->o.request_timeout_ms < 10000 ? p->o.request_timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    a->curl_err[0] = '\0';
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->curl_err);
    const char *cert = a->rec.mtls_cert;
    if (qtls_is_cert_pem(cert)) {
        /* mTLS with the agent's registered certificate pinned: it is the only trust anchor and
         * its public key must match. The agent's certificate names its contact address, but the
         * pin is stronger than a name check, which is skipped (addresses change behind NAT). */
        char pin[QTLS_PIN_MAX];
        qerr pe = { 0 };
        if (qtls_pin_sha256(cert, pin, sizeof pin, &pe) < 0) {
            qlog(QLOG_ERROR, MOD, "agent %s: its registered certificate cannot be used: %s", a->id, pe.msg);
            curl_easy_cleanup(e);
            return -2;
        }
        struct curl_blob blob = { .data = (void *)cert, .len = strlen(cert), .flags = CURL_BLOB_COPY };
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, pin);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        if (p->tls_cert)
            curl_easy_setopt(e, CURLOPT_SSLCERT, p->tls_cert);
        if (p->tls_key)
            curl_easy_setopt(e, CURLOPT_SSLKEY, p->tls_key);
    }
    a->easy = e;
    qbuf_init(&a->resp, (size_t)p->o.max_response_bytes);
    return 0;
}

static bool use_tls(const pagent *a)
{
    return qtls_is_cert_pem(a->rec.mtls_cert);
}

/* "http(s)://host:port" of the agent into out; -1 when it does not fit. */
static int agent_base(const pagent *a, char *out, size_t cap)
{
    bool v6 = strchr(a->rec.ip, ':') != NULL;
    int n = snprintf(out, cap, "%s://%s%s%s:%ld", use_tls(a) ? "https" : "http", v6 ? "[" : "", a->rec.ip,
                     v6 ? "]" : "", a->rec.port);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Set up POST /v<ver>/keys/vkey on the agent's handle (the same pinned mTLS connection as its
 * quotes). -1 when the agent was failed instead. */
static int setup_vkey(vpoller *p, pagent *a, uint64_t gen, const char *base, const char *ver)
{
    char why[QERR_MSG_MAX], url[URL_MAX];
    int n = snprintf(url, sizeof url, "%s/v%s/keys/vkey", base, ver);
    if (n < 0 || (size_t)n >= sizeof url) {
        hard_failure(p, a, gen, "internal.verifier.no_v", "the agent's address is too long");
        return -1;
    }
    char *body = vkey_body(a, why, sizeof why);
    if (!body) {
        qlog(QLOG_ERROR, MOD, "agent %s: %s", a->id, why);
        hard_failure(p, a, gen, "internal.verifier.no_v", why);
        return -1;
    }
    curl_easy_setopt(a->easy, CURLOPT_URL, url);
    curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, p->json_hdr);
    curl_easy_setopt(a->easy, CURLOPT_POSTFIELDSIZE, -1L);
    curl_easy_setopt(a->easy, CURLOPT_COPYPOSTFIELDS, body);     /* copied: POST from here on */
    free(body);
    return 0;
}

static void start_request(vpoller *p, pagent *a)
{
    uint64_t gen;
    pthread_mutex_lock(&p->mu);
    gen = a->gen;
    pthread_mutex_unlock(&p->mu);
    int state = a->rec.st.operational_state;
    bool vkey = state == VSTATE_PROVIDE_V || state == VSTATE_PROVIDE_V_RETRY;
    if (vkey && (!a->mem.pubkey || !a->rec.v || !*a->rec.v)) {
        /* nothing to encrypt V to (should not happen): quote again with the key */
        vkey = false;
        a->partial0 = true;
        a->rec.st.operational_state = VSTATE_GET_QUOTE;
    }
    if (!a->rec.ip || !*a->rec.ip || a->rec.port <= 0 || a->rec.port > 65535) {
        hard_failure(p, a, gen, "internal.verifier.no_quote", "the agent has no contact address");
        return;
    }
    if (!use_tls(a) && !p->o.allow_plain_http) {
        qlog(QLOG_ERROR, MOD, "agent %s registered without an mTLS certificate (mtls_cert \"%s\"); it is not "
             "polled over plain HTTP unless [verifier] allow_agent_plain_http (or insecure) is set", a->id,
             a->rec.mtls_cert ? a->rec.mtls_cert : "null");
        hard_failure(p, a, gen, "internal.verifier.no_quote", "mTLS certificate for agent is required!");
        return;
    }
    int se = a->easy ? 0 : setup_easy(p, a);
    if (se == -2) {
        hard_failure(p, a, gen, "internal.verifier.no_quote", "the agent's registered certificate cannot be used");
        return;
    }
    if (se < 0) {
        retry_or_fail(p, a, gen, "cannot create a request", vkey);
        return;
    }
    const char *ver = a->rec.supported_version && *a->rec.supported_version ? a->rec.supported_version
                                                                              : DEFAULT_VERSION;
    char base[URL_MAX];
    if (agent_base(a, base, sizeof base) < 0) {
        hard_failure(p, a, gen, "internal.verifier.no_quote", "the agent's address is too long");
        return;
    }
    if (vkey) {
        if (setup_vkey(p, a, gen, base, ver) < 0)
            return;
    } else {
        if (vattest_nonce(a->nonce, VATTEST_NONCE_LEN) < 0) {
            comm_failure(p, a, gen, "random generator failed");
            return;
        }
        a->requested = a->rec.st.next_ima_ml_entry;
        /* The tenant's mask decides which PCRs are quoted (0x400 when it sent a runtime policy), as
         * in Keylime: every agent has a policy row (the empty policy under its id), so its
         * existence says nothing about whether IMA is to be checked. */
        uint32_t mask = vattest_mask(a->rec.tpm_policy, false);
        char url[URL_MAX];
        int n = snprintf(url, sizeof url, "%s/v%s/quotes/integrity?nonce=%s&mask=0x%x&partial=%d&ima_ml_entry=%" PRIu64,
                         base, ver, a->nonce, mask, a->partial0 ? 0 : 1, a->requested);
        if (n < 0 || (size_t)n >= sizeof url) {
            hard_failure(p, a, gen, "internal.verifier.no_quote", "the agent's address is too long");
            return;
        }
        curl_easy_setopt(a->easy, CURLOPT_HTTPGET, 1L);          /* back from a vkey POST */
        curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(a->easy, CURLOPT_URL, url);
    }
    qbuf_reset(&a->resp);
    a->too_big = false;
    a->curl_err[0] = '\0';
    a->flight_gen = gen;
    a->started = mono();
    a->vkey_flight = vkey;
    if (curl_multi_add_handle(p->multi, a->easy) != CURLM_OK) {
        a->vkey_flight = false;
        retry_or_fail(p, a, gen, "cannot start the request", vkey);
        return;
    }
    pthread_mutex_lock(&p->mu);
    a->http_active = true;
    pthread_mutex_unlock(&p->mu);
    p->inflight++;
}

static void request_done(vpoller *p, CURL *e, CURLcode rc)
{
    char *priv = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    pagent *a = (pagent *)(void *)priv;
    if (!a)
        return;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(p->multi, e);
    p->inflight--;
    pthread_mutex_lock(&p->mu);
    a->http_active = false;
    bool stale = a->gen != a->flight_gen;
    pthread_mutex_unlock(&p->mu);
    bool vkey = a->vkey_flight;
    a->vkey_flight = false;
    if (stale || !a->polling)
        return;
    uint64_t gen = a->flight_gen;
    if (vkey) {
        vkey_done(p, a, gen, rc, status);
        return;
    }
    char why[QERR_MSG_MAX];
    if (a->too_big) {
        snprintf(why, sizeof why, "answer over %ld bytes", p->o.max_response_bytes);
        hard_failure(p, a, gen, "qoute_validation.invalid_data", why);
        return;
    }
    if (rc != CURLE_OK) {
        const char *detail = a->curl_err[0] ? a->curl_err : curl_easy_strerror(rc);
        if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
            snprintf(why, sizeof why, "the agent's TLS certificate did not match the certificate it registered "
                     "(another machine may hold its address): %s", detail);
        else if (rc == CURLE_SSL_CONNECT_ERROR)
            snprintf(why, sizeof why, "TLS handshake with the agent failed: %s", detail);
        else
            snprintf(why, sizeof why, "%s", detail);
        comm_failure(p, a, gen, why);
        return;
    }
    if (status == 408 || status == 500 || status == 599) {
        snprintf(why, sizeof why, "HTTP %ld", status);
        comm_failure(p, a, gen, why);
        return;
    }
    if (status != 200) {
        snprintf(why, sizeof why, "the agent answered HTTP %ld to the quote request", status);
        qlog(QLOG_ERROR, MOD, "agent %s: %s", a->id, why);
        hard_failure(p, a, gen, "internal.verifier.no_quote", why);
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        comm_failure(p, a, gen, "out of memory");
        return;
    }
    j->a = a;
    j->gen = gen;
    j->len = a->resp.len;
    j->body = (char *)a->resp.data;      /* the buffer moves to the job */
    a->resp.data = NULL;
    a->resp.len = a->resp.cap = 0;
    if (!j->body) {
        j->body = strdup("");
        j->len = 0;
    }
    pthread_mutex_lock(&p->mu);
    a->job_active = true;
    pthread_mutex_unlock(&p->mu);
    p->inflight++;
    push_job(p, j);
}

/* ---- notifications (event thread) ------------------------------------------------------------- */

static pagent *pagent_new(const char *id)
{
    pagent *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    snprintf(a->id, sizeof a->id, "%s", id);
    a->heap_idx = SIZE_MAX;
    a->rec.st.pcr10_alg = QHASH_NONE;
    return a;
}

static void handle_cmd(vpoller *p, cmd *c)
{
    pthread_mutex_lock(&p->mu);
    pagent *a = map_find(p, c->id);
    if (a && a->gen < c->gen)
        a->gen = c->gen;
    pthread_mutex_unlock(&p->mu);
    switch (c->type) {
    case CMD_ADD:
    case CMD_REACTIVATE:
        if (!c->rec)
            break;
        if (!a) {
            /* normally created by notify(); this is the fallback when that allocation failed */
            a = pagent_new(c->id);
            if (!a) {
                qlog(QLOG_ERROR, MOD, "out of memory: agent %s not polled", c->id);
                break;
            }
            pthread_mutex_lock(&p->mu);
            a->gen = c->gen;
            int rc = map_insert(p, a);
            pthread_mutex_unlock(&p->mu);
            if (rc < 0) {
                free(a);
                qlog(QLOG_ERROR, MOD, "out of memory: agent %s not polled", c->id);
                break;
            }
        }
        pthread_mutex_lock(&p->mu);
        bool holding = a->job_active;
        pthread_mutex_unlock(&p->mu);
        if (holding) {
            if (a->next_rec) {
                vagent_free(a->next_rec);
                free(a->next_rec);
            }
            a->next_rec = c->rec;
        } else {
            restart_agent(p, a, c->rec);
        }
        c->rec = NULL;
        break;
    case CMD_STOP:
        if (a) {
            stop_polling(p, a);
            if (a->next_rec) {
                vagent_free(a->next_rec);
                free(a->next_rec);
                a->next_rec = NULL;
            }
        }
        break;
    case CMD_REMOVE:
        if (!a)
            break;
        pthread_mutex_lock(&p->mu);
        map_remove(p, a->id);
        bool busy = a->job_active;
        pthread_mutex_unlock(&p->mu);
        stop_polling(p, a);
        if (busy)
            a->dead = true;
        else
            pagent_free(p, a);
        break;
    default:
        break;
    }
}

static void notify(vpoller *p, int type, const char *agent_id)
{
    if (!p || !agent_id || strlen(agent_id) >= VSTORE_ID_MAX)
        return;
    cmd *c = calloc(1, sizeof *c);
    if (!c) {
        qlog(QLOG_ERROR, MOD, "out of memory: change of agent %s not applied", agent_id);
        return;
    }
    c->type = type;
    snprintf(c->id, sizeof c->id, "%s", agent_id);
    if (type == CMD_ADD || type == CMD_REACTIVATE) {
        c->rec = calloc(1, sizeof *c->rec);
        qerr err = { 0 };
        int rc = c->rec ? vstore_agent_get(p->store, agent_id, c->rec, &err) : -1;
        if (rc != 1) {
            if (rc < 0)
                qlog(QLOG_ERROR, MOD, "agent %s not polled: %s", agent_id, c->rec ? err.msg : "out of memory");
            else
                qlog(QLOG_WARNING, MOD, "agent %s not polled: not in the store", agent_id);
            if (c->rec)
                vagent_free(c->rec);
            free(c->rec);
            free(c);
            return;
        }
    }
    /* An added or reactivated agent gets its entry now, so that its generation is in place
     * before any later notification or write is looked at. */
    pagent *fresh = (type == CMD_ADD || type == CMD_REACTIVATE) ? pagent_new(agent_id) : NULL;
    pthread_mutex_lock(&p->mu);
    uint64_t gen = c->gen = ++p->gen_counter;
    pagent *a = map_find(p, agent_id);
    if (!a && fresh && map_insert(p, fresh) == 0) {
        a = fresh;
        fresh = NULL;
    }
    if (a)
        a->gen = gen;            /* results and writes of earlier rounds are now stale */
    *p->cmds_tail = c;
    p->cmds_tail = &c->next;
    c = NULL;                    /* the event thread owns (and frees) it from here on */
    pthread_mutex_unlock(&p->mu);
    free(fresh);
    /* Re-assert what the API stored, after anything of ours that may still be queued. */
    if (type == CMD_STOP)
        queue_set_state(p, agent_id, gen, VSTATE_TENANT_FAILED);
    else if (type != CMD_REMOVE)
        queue_set_state(p, agent_id, gen, VSTATE_START);
    curl_multi_wakeup(p->multi);
}

void vpoller_agent_added(vpoller *p, const char *agent_id)
{
    notify(p, CMD_ADD, agent_id);
}

void vpoller_agent_reactivated(vpoller *p, const char *agent_id)
{
    notify(p, CMD_REACTIVATE, agent_id);
}

void vpoller_agent_stopped(vpoller *p, const char *agent_id)
{
    notify(p, CMD_STOP, agent_id);
}

void vpoller_agent_removed(vpoller *p, const char *agent_id)
{
    notify(p, CMD_REMOVE, agent_id);
}

bool vpoller_agent_busy(vpoller *p, const char *agent_id)
{
    if (!p || !agent_id)
        return false;
    pthread_mutex_lock(&p->mu);
    pagent *a = map_find(p, agent_id);
    bool busy = a && (a->http_active || a->job_active);
    pthread_mutex_unlock(&p->mu);
    return busy;
}

void vpoller_policy_changed(vpoller *p, long policy_id)
{
    if (p)
        vpolicy_cache_invalidate(p->policies, policy_id);
}

/* ---- the event loop ---------------------------------------------------------------------------- */

/* Commands and finished jobs; returns true if anything was done. */
static bool drain(vpoller *p)
{
    pthread_mutex_lock(&p->mu);
    cmd *cmds = p->cmds;
    p->cmds = NULL;
    p->cmds_tail = &p->cmds;
    job *done = p->done;
    p->done = NULL;
    p->done_tail = &p->done;
    pthread_mutex_unlock(&p->mu);
    bool any = cmds || done;
    while (cmds) {
        cmd *nx = cmds->next;
        handle_cmd(p, cmds);
        if (cmds->rec) {
            vagent_free(cmds->rec);
            free(cmds->rec);
        }
        free(cmds);
        cmds = nx;
    }
    while (done) {
        job *nx = done->next;
        apply_result(p, done);
        vattest_out_free(&done->out);
        free(done);
        done = nx;
    }
    return any;
}

static void *event_main(void *arg)
{
    vpoller *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stopping = p->stopping;
        pthread_mutex_unlock(&p->mu);
        if (stopping)
            break;
        drain(p);
        double now = mono();
        while (p->nheap > 0 && p->heap[0]->due <= now && p->inflight < MAX_INFLIGHT) {
            pagent *a = p->heap[0];
            unschedule(p, a);
            start_request(p, a);
        }
        int running = 0;
        curl_multi_perform(p->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(p->multi, &left)))
            if (m->msg == CURLMSG_DONE)
                request_done(p, m->easy_handle, m->data.result);
        int timeout = 1000;
        if (p->nheap > 0 && p->inflight < MAX_INFLIGHT) {
            double d = (p->heap[0]->due - mono()) * 1000.0;
            timeout = d <= 0 ? 0 : d < 1000 ? (int)ceil(d) : 1000;
        }
        curl_multi_poll(p->multi, NULL, 0, timeout, NULL);
    }
    /* Stop: abandon requests in flight (those rounds simply did not happen), then wait for the
     * jobs the workers hold and apply their results so they are saved. */
    for (size_t i = 0; i < p->nmap; i++)
        free_easy(p, p->map[i]);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        bool jobs = false;
        for (size_t i = 0; i < p->nmap && !jobs; i++)
            jobs = p->map[i]->job_active;
        if (!jobs && !p->done)
            break;
        if (!p->done)
            pthread_cond_wait(&p->done_cond, &p->mu);
        pthread_mutex_unlock(&p->mu);
        drain(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    drain(p);
    return NULL;
}

/* ---- start / stop --------------------------------------------------------------------------------- */

typedef struct idl {
    char **ids;
    size_t n, cap;
} idl;

static int collect_id(void *ctx, const char *id)
{
    idl *l = ctx;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 64;
        char **a = realloc(l->ids, ncap * sizeof *a);
        if (!a)
            return 1;
        l->ids = a;
        l->cap = ncap;
    }
    l->ids[l->n] = strdup(id);
    if (!l->ids[l->n])
        return 1;
    l->n++;
    return 0;
}

static bool resumable(int state)
{
    return state == VSTATE_START || state == VSTATE_GET_QUOTE || state == VSTATE_GET_QUOTE_RETRY ||
           state == VSTATE_PROVIDE_V || state == VSTATE_PROVIDE_V_RETRY;
}

static int load_agents(vpoller *p, qerr *err)
{
    idl l = { 0 };
    int rc = vstore_agent_list(p->store, collect_id, &l, err);
    size_t resumed = 0;
    for (size_t i = 0; rc >= 0 && i < l.n; i++) {
        vagent *rec = calloc(1, sizeof *rec);
        if (!rec) {
            rc = qerr_set(err, "out of memory");
            break;
        }
        int g = vstore_agent_get(p->store, l.ids[i], rec, err);
        if (g < 0) {
            free(rec);
            rc = -1;
            break;
        }
        if (g == 0 || !resumable(rec->st.operational_state) ||
            (rec->verifier_id && *rec->verifier_id && strcmp(rec->verifier_id, p->verifier_id) != 0)) {
            vagent_free(rec);
            free(rec);
            continue;
        }
        pagent *a = pagent_new(l.ids[i]);
        if (!a) {
            vagent_free(rec);
            free(rec);
            rc = qerr_set(err, "out of memory");
            break;
        }
        a->gen = ++p->gen_counter;
        if (map_insert(p, a) < 0) {
            free(a);
            vagent_free(rec);
            free(rec);
            rc = qerr_set(err, "out of memory");
            break;
        }
        restart_agent(p, a, rec);     /* START again, the stored IMA state kept */
        queue_set_state(p, a->id, a->gen, VSTATE_START);
        resumed++;
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.ids[i]);
    free(l.ids);
    if (rc >= 0 && resumed)
        qlog(QLOG_INFO, MOD, "resuming attestation of %zu agent(s)", resumed);
    return rc < 0 ? -1 : 0;
}

static void free_all(vpoller *p)
{
    for (size_t i = 0; i < p->nmap; i++)
        pagent_free(p, p->map[i]);
    free(p->map);
    free(p->heap);
    while (p->cmds) {
        cmd *nx = p->cmds->next;
        if (p->cmds->rec) {
            vagent_free(p->cmds->rec);
            free(p->cmds->rec);
        }
        free(p->cmds);
        p->cmds = nx;
    }
    while (p->ops) {
        wop *nx = p->ops->next;
        wop_free(p->ops);
        p->ops = nx;
    }
    if (p->multi)
        curl_multi_cleanup(p->multi);
    curl_slist_free_all(p->json_hdr);
    vpolicy_cache_free(p->policies);
    free(p->workers);
    free(p->tls_cert);
    free(p->tls_key);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->done_cond);
    pthread_mutex_destroy(&p->jmu);
    pthread_cond_destroy(&p->jcond);
    pthread_mutex_destroy(&p->wmu);
    pthread_cond_destroy(&p->wcond);
    free(p);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_opt(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

vpoller *vpoller_start(const vpoller_opts *o, vstore *store, qerr *err)
{
    if (!o || !store) {
        qerr_set(err, "poller: missing options or store");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    vpoller *p = calloc(1, sizeof *p);
    if (!p) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    p->o = *o;
    if (!(p->o.quote_interval >= 0))
        p->o.quote_interval = 2;
    if (p->o.max_retries < 0)
        p->o.max_retries = 5;
    if (!(p->o.retry_interval >= 0))
        p->o.retry_interval = 2;
    if (p->o.request_timeout_ms <= 0)
        p->o.request_timeout_ms = 30000;
    if (p->o.max_response_bytes <= 0)
        p->o.max_response_bytes = 128L << 20;
    snprintf(p->verifier_id, sizeof p->verifier_id, "%s", o->verifier_id && *o->verifier_id ? o->verifier_id : "default");
    p->o.verifier_id = p->verifier_id;
    p->tls_cert = dup_opt(o->tls_cert_file);
    p->tls_key = dup_opt(o->tls_key_file);
    p->o.tls_cert_file = p->tls_cert;
    p->o.tls_key_file = p->tls_key;
    p->store = store;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->done_cond, NULL);
    pthread_mutex_init(&p->jmu, NULL);
    pthread_cond_init(&p->jcond, NULL);
    pthread_mutex_init(&p->wmu, NULL);
    pthread_cond_init(&p->wcond, NULL);
    p->cmds_tail = &p->cmds;
    p->done_tail = &p->done;
    p->jobs_tail = &p->jobs;
    p->ops_tail = &p->ops;

    unsigned nw = o->num_workers;
    if (nw == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nw = c > 0 ? (unsigned)c : 2;
    }
    if (nw > 256)
        nw = 256;
    p->workers = calloc(nw, sizeof *p->workers);
    p->policies = vpolicy_cache_new(store, 0, err);
    p->multi = curl_multi_init();
    if (!p->workers || !p->policies || !p->multi) {
        if (p->policies)
            qerr_set(err, "poller: out of memory");
        free_all(p);
        return NULL;
    }
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)MAX_INFLIGHT);
    if (!(p->json_hdr = curl_slist_append(NULL, "Content-Type: application/json"))) {
        qerr_set(err, "poller: out of memory");
        free_all(p);
        return NULL;
    }
    if (load_agents(p, err) < 0) {
        qerr_prefix(err, "poller: loading agents");
        free_all(p);
        return NULL;
    }
    if (pthread_create(&p->writer, NULL, writer_main, p) != 0) {
        qerr_set(err, "poller: cannot start the writer thread");
        free_all(p);
        return NULL;
    }
    for (; p->nworkers < nw; p->nworkers++)
        if (pthread_create(&p->workers[p->nworkers], NULL, worker_main, p) != 0)
            break;
    if (p->nworkers == 0 || pthread_create(&p->ev, NULL, event_main, p) != 0) {
        qerr_set(err, "poller: cannot start threads");
        pthread_mutex_lock(&p->jmu);
        p->workers_quit = true;
        pthread_cond_broadcast(&p->jcond);
        pthread_mutex_unlock(&p->jmu);
        for (unsigned i = 0; i < p->nworkers; i++)
            pthread_join(p->workers[i], NULL);
        pthread_mutex_lock(&p->wmu);
        p->writer_quit = true;
        pthread_cond_signal(&p->wcond);
        pthread_mutex_unlock(&p->wmu);
        pthread_join(p->writer, NULL);
        free_all(p);
        return NULL;
    }
    qlog(QLOG_DEBUG, MOD, "poller started: %u workers, quote interval %.3f s", p->nworkers, p->o.quote_interval);
    return p;
}

void vpoller_stop(vpoller *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_mutex_unlock(&p->mu);
    curl_multi_wakeup(p->multi);
    pthread_join(p->ev, NULL);

    pthread_mutex_lock(&p->jmu);
    p->workers_quit = true;
    pthread_cond_broadcast(&p->jcond);
    pthread_mutex_unlock(&p->jmu);
    for (unsigned i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i], NULL);

    pthread_mutex_lock(&p->wmu);
    p->writer_quit = true;
    pthread_cond_signal(&p->wcond);
    pthread_mutex_unlock(&p->wmu);
    pthread_join(p->writer, NULL);

    drain(p);                   /* commands that came after the loop ended */
    free_all(p);
}
