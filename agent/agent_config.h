/* agent_config.h — the [agent] section of quince.conf, with defaults, validated once at start-up.
 * Every value is copied into fixed, bounded fields; a bad value is an error naming the key. */
#ifndef QUINCE_AGENT_CONFIG_H
#define QUINCE_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "err.h"
#include "log.h"
#include "pcr_bank.h"

#define AGENT_STR 256
#define AGENT_PATH 1024

typedef struct agent_config {
    char uuid[AGENT_STR];           /* a value, "generate" or "hash_ek" (resolved later) */
    char ip[AGENT_STR];             /* bind address */
    long port;
    char contact_ip[AGENT_STR];     /* sent to the registrar (default: ip) */
    long contact_port;              /* default: port */
    char registrar_ip[AGENT_STR];
    long registrar_port;
    char tcti[AGENT_PATH];
    uint32_t ek_handle;             /* 0 = create the EK from the default template */
    qhash_alg tpm_hash_alg;         /* quoted bank, AK nameAlg and signature hash */
    char tpm_encryption_alg[16];    /* "rsa" or "ecc" */
    char tpm_signing_alg[16];       /* "rsassa" or "ecdsa" */
    char ima_ml_path[AGENT_PATH];
    char measuredboot_ml_path[AGENT_PATH];  /* UEFI event log, served when PCR 0 is quoted */
    char state_dir[AGENT_PATH];
    char run_as[AGENT_STR];         /* "user[:group]" or "" */
    long tpm_timeout_ms;            /* bound on every TPM command */
    bool tpm_release;               /* close the TPM connection after each request (a raw swtpm
                                       shared with `quince-agent ima-emulator`) */
    long max_ima_bytes;             /* largest measurement-list chunk served */
    long registrar_retry_ms;        /* first back-off delay */
    long registrar_retry_max_ms;    /* back-off cap */
    long registrar_max_retries;     /* 0 = retry for ever */
    char log_level[16];
    qlog_format log_format;         /* text or json */
    char metrics_listen[AGENT_STR]; /* "ip:port" of GET /metrics; "" = off */
    /* revocation notifications (revocation_actions.c) */
    char revocation_cert[AGENT_PATH];        /* "default" = secure_dir/unzipped/RevocationNotifier-cert.crt */
    char revocation_actions[AGENT_PATH];     /* names in revocation_actions_dir, comma-separated */
    char revocation_actions_dir[AGENT_PATH];
    bool allow_payload_revocation_actions;   /* also the payload's unzipped/action_list */
    long revocation_action_timeout_ms;
    /* payload delivery (U/V keys) */
    char secure_dir[AGENT_PATH];    /* tmpfs for the decrypted payload (default state_dir/secure) */
    long secure_size;               /* tmpfs size in bytes when the agent mounts it */
    char payload_script[AGENT_STR]; /* script run from the unzipped payload ("" = none) */
    bool enable_insecure_payload;   /* run the script even without mTLS */
    bool extract_payload_zip;
    long max_payload_size;          /* largest encrypted payload accepted (base64 text) */
    /* mTLS */
    char trusted_client_ca[AGENT_PATH]; /* CA (PEM) that clients (verifier, tenant) must chain to:
                                           the verifier's tls_dir/cacert.pem; required unless insecure */
    bool insecure;                  /* plain HTTP, any client, mtls_cert "disabled" (debugging only) */
} agent_config;

/* Fill *out from the [agent] section (env overrides apply through qconfig). */
int agent_config_load(const qconfig *c, agent_config *out, qerr *err);
/* The --help text listing every key with its default. */
const char *agent_config_help(void);

#endif
