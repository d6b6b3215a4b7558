/* poller_int.h — private to poller.c and poll_agent.c: the poller and its per-agent entries.
 *
 * Locking: p->mu guards the id map, every agent's generation, the in-flight flags and the
 * counters (written by the event thread only), the command and done lists. Everything else in a
 * pagent belongs to the event thread, except rec, nonce and mem, which a worker reads/uses
 * while job_active. */
#ifndef QUINCE_VERIFIER_POLLER_INT_H
#define QUINCE_VERIFIER_POLLER_INT_H

#include <curl/curl.h>
#include <pthread.h>

#include "agent_client.h"
#include "attest.h"
#include "attest_pool.h"
#include "curl_loop.h"
#include "lease.h"
#include "poller.h"
#include "policy_cache.h"
#include "provide_v.h"
#include "round.h"
#include "sched.h"
#include "state_writer.h"

#define MAX_INFLIGHT 1024            /* requests + jobs at once */

typedef struct pagent {
    vsched_node node;            /* id; map under p->mu, schedule on the event thread */
    uint64_t gen;                /* p->mu */
    uint64_t epoch;              /* event thread: the lease epoch its rounds are saved under */
    bool http_active;            /* p->mu: request in the multi handle */
    bool job_active;             /* p->mu: answer with a worker or waiting to be applied */
    uint64_t rounds, requests;   /* p->mu (written by the event thread only) */
    vpoller_live live;           /* p->mu (written by the event thread only): the counters for the API */
    /* event thread only (a worker reads rec and uses mem while job_active) */
    vagent rec;
    vattest_mem mem;
    vagent *next_rec;            /* a record that arrived while a job was active */
    bool dead;                   /* removed while a job was active: free when it comes back */
    bool dropping;               /* its lease went: no new request, forgotten once idle */
    vround_st rs;
    uint32_t mask;               /* PCR mask from rec.tpm_policy, once per record */
    double started;
    uint64_t flight_gen;
    size_t shard;                /* its multi handle in p->loop, for good */
    uint64_t saved_fp;           /* vround_durable_fp of the state last handed to the writer */
    bool resave;                 /* mu: the writer dropped a result of an older generation, so the
                                  * store may lack what saved_fp says: write the next round whole */
    long unsaved;                /* rounds since then whose counters are in memory only */
    double unsaved_since;        /* monotonic seconds of the first of them */
    char nonce[VATTEST_NONCE_LEN + 1];
    uint64_t requested;
    vprov v;
    vac http;
    char id[];                   /* node.id points here: the agent id, exactly sized */
} pagent;

typedef struct cmd {
    int type;
    char id[VSTORE_ID_MAX];
    uint64_t gen;
    uint64_t epoch;              /* ADD / REACTIVATE / LEASE: the agent's lease epoch */
    vagent *rec;                 /* ADD / REACTIVATE / LEASE: the stored record (owned) */
    struct cmd *next;
} cmd;

struct vpoller {
    vpoller_opts o;
    char verifier_id[VSTORE_ID_MAX];
    char *tls_cert, *tls_key;
    vstore *store;
    vpolicy_cache *policies;
    vround_cfg rcfg;
    vac_opts vo;
    vcurl_loop *loop;            /* libcurl's multi handles (shards) on the event thread's epoll set */
    vac_pool *handles;           /* easy handles of the requests in flight, reused */
    struct curl_slist *json_hdr;

    pthread_mutex_t mu;          /* map, generations, flags, counters, cmds, done list */
    pthread_cond_t done_cond;    /* a job came back */
    pthread_cond_t idle_cond;    /* an agent's request or job ended */
    vsched sched;
    uint64_t gen_counter;
    cmd *cmds, **cmds_tail;
    vjob *done, **done_tail;
    bool stopping;

    pthread_t ev;                /* the event thread */
    size_t inflight;
    size_t njobs;                /* event thread: answers with the workers or not yet applied */
    vpool *pool;
    vwriter *writer;
    vlease *lease;               /* which agents this process polls (lease.h) */
    char instance[VSTORE_ID_MAX];
    double lease_until;          /* p->mu: monotonic time the leases hold until */
    size_t ndropping;            /* event thread: agents with dropping set */
    size_t adopted;              /* lease thread: resumable agents adopted (logged at start) */
};

/* ---- poll_agent.c: one agent's requests and results (event thread) ---- */
double vpoll_mono(void);
pagent *vpoll_find(vpoller *p, const char *id);                 /* p->mu held */
void vpoll_free_rec(vagent *r);
void vpoll_agent_free(vpoller *p, pagent *a);
/* Take over a fresh record (the agent goes to START and is polled at once). */
void vpoll_restart(vpoller *p, pagent *a, vagent *rec, uint64_t gen);
/* An event without findings through the round machine (stop, delete, ...). */
void vpoll_event(vpoller *p, pagent *a, uint64_t gen, vround_ev kind, const char *event_id, const char *why);
void vpoll_start_request(vpoller *p, pagent *a);
void vpoll_request_done(vpoller *p, CURL *e, CURLcode rc);
void vpoll_job_done(void *ctx, vjob *j);                         /* worker thread */
void vpoll_wake(vpoller *p);                                     /* any thread: the loop looks again */
void vpoll_apply_result(vpoller *p, vjob *j);
void vpoll_drop_request(vpoller *p, pagent *a);                  /* abandon the request, free the handle */
/* Hand the counters kept in memory to the writer (the poller stops). */
void vpoll_checkpoint(vpoller *p, pagent *a);

#endif
