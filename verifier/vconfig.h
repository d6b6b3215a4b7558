/* vconfig.h — the [verifier] and [registrar] sections of quince.conf, with defaults, validated
 * once at start-up. Every value is copied into fixed, bounded fields; a bad value is an error
 * naming the section and key (or the QUINCE_<SECTION>_<KEY> variable). */
#ifndef QUINCE_VERIFIER_VCONFIG_H
#define QUINCE_VERIFIER_VCONFIG_H

#include <stdbool.h>
#include "config.h"
#include "err.h"
#include "log.h"
#include "poller.h"
#include "registrar_policy.h"
#include "revocation_notify.h"

#define VCONFIG_STR  256
#define VCONFIG_PATH 1024
#define VCONFIG_ALGS 256

typedef struct vconfig {
    /* [verifier] */
    char ip[VCONFIG_STR];                 /* verifier API bind address; "127.0.0.1" */
    long port;                            /* 8881 */
    char database[VCONFIG_PATH];          /* SQLite file; "/var/lib/quince/verifier.sqlite" */
    double quote_interval;                /* seconds, fractions allowed; 2 */
    long max_retries;                     /* 5 */
    double retry_interval;                /* seconds; 2 */
    bool exponential_backoff;             /* true */
    long request_timeout_ms;              /* per quote request; 30000 */
    long max_upload_size;                 /* largest API request body; 104857600 */
    bool violations_fail;                 /* ima_violations = fail */
    bool mb_accept_all;                   /* measured_boot_policy_name = accept-all (else example) */
    bool mb_evaluate_always;              /* measured_boot_evaluate = always (else once per boot) */
    bool require_policy_signatures;       /* require_allow_list_signatures; false */
    long num_workers;                     /* 0 = number of cores */
    long checkpoint_rounds;               /* state_checkpoint_rounds: 30 (1 = write every round) */
    double checkpoint_interval;           /* state_checkpoint_interval, seconds: 60 */
    /* Defaults for an add request that omits them, as JSON array text, e.g. ["sha256"]. */
    char accept_tpm_hash_algs[VCONFIG_ALGS];
    char accept_tpm_encryption_algs[VCONFIG_ALGS];
    char accept_tpm_signing_algs[VCONFIG_ALGS];
    char verifier_id[VCONFIG_STR];        /* "default" */
    double lease_ttl;                     /* seconds a dead verifier's agents wait at most; 10 */
    qlog_level log_level;                 /* the more verbose of [verifier] and [registrar] */
    qlog_format log_format;               /* [verifier] log_format: text or json */
    /* TLS ([verifier]): the built-in CA directory and the files used. Each *_file below is the
     * operator's file when the key is set, else the generated one in tls_dir. */
    char tls_dir[VCONFIG_PATH];           /* "/var/lib/quince/tls" */
    char server_cert[VCONFIG_PATH];       /* verifier API and registrar TLS port */
    char server_key[VCONFIG_PATH];
    char trusted_client_ca[VCONFIG_PATH]; /* clients (tenant) must chain to it */
    char client_cert[VCONFIG_PATH];       /* presented to agents */
    char client_key[VCONFIG_PATH];
    bool tls_generated;                   /* at least one file comes from tls_dir */
    bool insecure;                        /* plain HTTP servers, no client certificates (debug) */
    bool allow_agent_plain_http;          /* poll agents registered with mtls_cert "disabled";
                                             default: insecure */
    /* An external Keylime-compatible registrar (registrar_client.h): agent records are read from
     * it instead of this daemon's own registrar. "" = the own one. https (mTLS with client_cert)
     * unless insecure; its certificate checked against registrar_ca_cert (trusted_client_ca). */
    char registrar_url[VCONFIG_PATH];
    char registrar_ca_cert[VCONFIG_PATH];
    char metrics_listen[VCONFIG_STR];     /* "ip:port" of GET /metrics; "" = off */
    vrevoc_config revocations;            /* [revocations] */
    /* [registrar] */
    char registrar_ip[VCONFIG_STR];       /* "127.0.0.1" */
    long registrar_port;                  /* 8890: plain HTTP, register and activate only */
    long registrar_tls_port;              /* 8891: everything, mTLS */
    char tpm_cert_store[VCONFIG_PATH];    /* EK CA certificates (directory or file); "" = none */
    bool require_ek_cert;                 /* false for now */
    reg_limits reg_limits;                /* max_pending_registrations, pending_max_age,
                                             max_failed_activations, registrations_per_minute */
} vconfig;

/* Fill *out from the [verifier] and [registrar] sections (env overrides apply through qconfig). */
int vconfig_load(const qconfig *c, vconfig *out, qerr *err);
/* The --help text listing every key with its default. */
const char *vconfig_help(void);
/* The attestation-loop options derived from the configuration (strings point into v). */
void vconfig_poller_opts(const vconfig *v, vpoller_opts *o);

#endif
