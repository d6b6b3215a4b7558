/* agent.h — the running agent's shared state, built by main.c and used by the REST handlers
 * (api.c) and the registration client (register.c). After start-up only `lock`-protected
 * calls touch the TPM and the measurement list; everything else is read-only. */
#ifndef QUINCE_AGENT_H
#define QUINCE_AGENT_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include "agent_config.h"
#include "ima_ml.h"
#include "mb_log.h"
#include "payload_key.h"
#include "tpm.h"

#define AGENT_API_VERSIONS_N 6
extern const char *const agent_api_versions[AGENT_API_VERSIONS_N];   /* "2.1" ... "2.6" */
#define AGENT_API_CURRENT "2.6"

typedef struct agent_ctx {
    agent_config cfg;
    char uuid[AGENT_STR];
    qtpm *tpm;
    agent_payload_key payload;
    agent_ima_ml *ima;              /* NULL when the list could not be opened */
    agent_mb_log *mb;               /* NULL when the UEFI event log could not be opened */
    struct agent_keys *keys;        /* U/V halves and K (payload delivery); NULL when disabled */
    pthread_mutex_t lock;           /* one quote (+ list read) at a time */
    uint64_t boottime;              /* seconds since the epoch at boot */
    volatile sig_atomic_t *stop;    /* set by SIGTERM/SIGINT */
    /* mTLS (agent_tls.h): the agent's certificate PEM sent at registration as mtls_cert (NULL:
     * "disabled", cfg.insecure), its key, and the trusted client CA, all in memory. */
    const char *mtls_cert_pem;
    const char *mtls_key_pem;
    char *trusted_ca_pem;
    struct agent_metrics *metrics;  /* [agent] metrics_listen; NULL: off */
} agent_ctx;

/* Seconds since the epoch at boot (from /proc/stat btime); 0 if unknown. */
uint64_t agent_boottime(void);

#endif
