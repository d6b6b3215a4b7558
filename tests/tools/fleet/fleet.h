/* fleet.h — quince-fleet, a load generator: one process, one event loop, N simulated agents.
 * Each agent has its own software EK (RSA 2048, EK certificate from the fleet's own CA) and AK
 * (ECC P-256 or RSA 2048), registers and activates through the registrar's real protocol, and
 * serves Keylime's agent API v2.1–2.6 over mTLS on its own loopback address (all of them behind
 * one wildcard listener, fleet_serve.c). Quotes are
 * TPMS_ATTEST structures it builds and signs, over PCR 10 replayed from its own IMA list.
 *
 * Threads: the event loop (every agent's HTTP server, list growth, faults) runs on the main
 * thread; registration and the verifier add run on a few provisioner threads that only read
 * the agents' immutable identity. Files: fleet_main.c (options, set-up), fleet_loop.c (event loop), fleet_ident.c (keys,
 * certificates), fleet_ima.c (file pool, policy, per-agent lists), fleet_api.c (agent API), fleet_serve.c (the listener),
 * fleet_prov.c (registrar and verifier calls). */
#ifndef QUINCE_FLEET_H
#define QUINCE_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "../../unit/swquote.h"
#include "err.h"
#include "http_server.h"

#define FLEET_MAX_AGENTS 20000

/* One line of the shared file pool: what the agent's IMA list shows, and the sha256 bank
 * digest of its template data (what the kernel extends into PCR 10). */
typedef struct fl_line {
    char *text;                  /* with the trailing '\n' */
    size_t len;
    uint8_t extend[32];
} fl_line;

typedef struct fl_pool {
    fl_line *lines;              /* [0, nfiles) listed in the policy, [nfiles] the evil one */
    size_t nfiles;
    size_t nbase;                /* every list starts with lines [0, nbase) */
    uint8_t base_pcr[32];        /* PCR 10 after the base lines */
    char *policy_json;           /* the runtime policy that lists every file */
} fl_pool;

struct fleet;

typedef struct fl_agent {
    struct fleet *fl;
    uint32_t idx;
    char uuid[40];
    char ip[16];
    /* identity (immutable once set up) */
    EVP_PKEY *ek;                /* freed after activation */
    char *ek_b64;                /* TPM2B_PUBLIC of the EK */
    char *ekcert_b64;            /* DER */
    swq_key ak;
    char *tls_cert, *tls_key;    /* PEM; the key is freed once the server runs */
    void *cred;                  /* gnutls_certificate_credentials_t: its certificate, key, the CA */
    /* runtime (event loop thread only) */
    bool down;                   /* dead and gone: connections to it are refused */
    uint32_t *extra;             /* pool indexes appended after the base lines */
    uint32_t nextra, capextra;
    double growth_due;           /* fractional entries not yet appended */
    uint8_t pcr10[32];
    uint64_t clock_ms;           /* TPM clock, strictly increasing */
    uint32_t reset_count;
    uint64_t boottime;
    bool slow, dead, reboot, evil, added, failed;
    double last_quote;           /* monotonic seconds of the previous integrity quote, 0: none */
    uint64_t nquotes;
} fl_agent;

typedef struct fl_opts {
    unsigned n;
    const char *registrar;       /* http://host:port */
    const char *verifier;        /* https://host:port, or NULL: no add */
    const char *tls_dir;         /* cacert.pem, tenant-cert.pem, tenant-key.pem */
    const char *out_dir;
    const char *base_ip;
    unsigned port;
    bool ak_rsa;
    unsigned entries, files;
    double entries_per_minute;
    unsigned evil;
    double evil_at, slow, slow_ms, dead, dead_at, reboot, reboot_at, duration, interval;
    unsigned prov_threads;
    bool faults_on_usr2;         /* fault times count from SIGUSR2, not from the end of provisioning */
    bool provision_only;         /* register (and add), then exit: no agent serves */
    long watch_pid;              /* a process whose CPU and RSS the statistics report (0: none) */
    const char *api_version;
    const char *policy_name;
    char prefix[9];
} fl_opts;

typedef struct fleet {
    fl_opts o;
    fl_agent *agents;
    fl_pool pool;
    char *payload_pem;           /* one payload key for every agent (PCR 16 binding) */
    uint8_t pcr16[32];
    char *ca_pem;                /* the verifier's CA: clients the agents accept */
    double t0;                   /* monotonic seconds at start */
    uint32_t base_ip;            /* agent i listens on base_ip + i (host order) */
    qhttp_server *srv;           /* the one server of every agent (fleet_serve.c) */
    void *refuse_cred;           /* credentials without a certificate: handshakes fail */
    unsigned long refused;       /* connections to no agent, or to one that is down */
    struct fl_delayq *delay;     /* held replies of slow agents (fleet_loop.c) */
} fleet;

double fl_now(void);
double fl_wall_ms(void);

/* fleet_ident.c: keys and certificates for every agent; the EK CA goes to out_dir. */
int fl_ident_setup(fleet *f, qerr *err);
void fl_agent_free(fl_agent *a);

/* fleet_ima.c */
int fl_pool_setup(fl_pool *p, unsigned files, unsigned base, qerr *err);
void fl_pool_free(fl_pool *p);
int fl_append(fl_agent *a, const fl_pool *p, uint32_t line);     /* updates PCR 10 */
void fl_list_reset(fl_agent *a, const fl_pool *p);
/* The list text from entry `from` into a scratch buffer owned by the caller. */
int fl_list_text(const fl_agent *a, const fl_pool *p, uint64_t from, char **buf, size_t *cap, size_t *len);

/* fleet_serve.c: one wildcard listener; each connection is served as the agent whose address
 * it was made to, with that agent's certificate. */
int fl_serve_start(fleet *f, const qhttp_route *routes, size_t nroutes, qerr *err);
void fl_serve_stop(fleet *f);

/* fleet_api.c: the agent API on the fleet's server. */
int fl_api_start(fleet *f, qerr *err);
void fl_stats_quote(fleet *f, fl_agent *a);
void fl_stats_print(const fleet *f);

/* fleet_loop.c: serve, grow lists and inject faults until SIGTERM or --duration. A slow
 * agent's reply is held and released slow_ms later (fl_delay_push: -1 when the queue is full,
 * then the reply goes at once). */
int fl_loop(fleet *f, qerr *err);
int fl_delay_push(fleet *f, qhttp_req *r);

/* fleet_prov.c: registration, activation and the verifier add of every agent, on threads.
 * fl_prov_done tells (without blocking) whether they finished; the counts say how it went. */
typedef struct fl_prov fl_prov;
fl_prov *fl_prov_start(fleet *f, qerr *err);
bool fl_prov_done(fl_prov *p);
int fl_prov_finish(fl_prov *p, double *reg_s, double *add_s);   /* joins; failures */

#endif
