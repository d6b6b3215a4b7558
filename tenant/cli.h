/* cli.h — quince-tenant's keylime_tenant-compatible command line (keylime-formats §6).
 *
 * Contract:
 * - tenant_cli_main runs one command (-c add|update|delete|status|...) against the verifier and
 *   the registrar and returns the exit status: 0 success, 1 a failed operation (an HTTP error, a
 *   server that cannot be reached, a quote that does not check out), 2 bad options or files.
 *   Every error is exactly one line on stderr, "quince-tenant: <what went wrong>"; results go
 *   to stdout as short human lines.
 * - Options are parsed with getopt_long_only, so keylime_tenant's single-dash long options work
 *   (-vp, -tp, -rp, -vi, -nvc) next to the short ones (-c -u -v -t -r -f -k -p).
 * - Agent ids follow Keylime's rule [\w.-]+ (ASCII, at most 255 characters) and are normalised
 *   to lower case, as the verifier and the registrar do.
 * - Commands report failures through a qerr whose code is the exit status (1 or 2). */
#ifndef QUINCE_TENANT_CLI_H
#define QUINCE_TENANT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "err.h"
#include "http_client.h"

#define TCLI_DEFAULT_UUID "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"
#define TCLI_ID_MAX       255        /* agent id length */
#define TCLI_HOST_MAX     255        /* host name / address length */
#define TCLI_NAME_MAX     255        /* runtime policy name length */
#define TCLI_ALGS_MAX     8          /* names in one accept_tpm_*_algs list */
#define TCLI_ALG_LEN      16
#define TCLI_POLICY_MAX   (256u * 1024 * 1024)   /* largest policy / allowlist / exclude file */
#define TCLI_MAX_SIG_KEYS 32                     /* IMA signature keys per option */
#define TCLI_SIG_KEY_MAX  (64u * 1024)           /* largest IMA signature key file or download */
#define TCLI_BULK_MAX     1000000                /* agents in one --uuid-file */
#define TCLI_BULK_JOBS    32                     /* --jobs default: agents in flight at once */
#define TCLI_BULK_JOBS_MAX 64

/* Exit statuses. */
enum { TCLI_OK = 0, TCLI_EFAIL = 1, TCLI_EUSAGE = 2 };

typedef enum {
    TCMD_ADD = 0, TCMD_UPDATE, TCMD_DELETE, TCMD_STATUS, TCMD_CVSTATUS, TCMD_CVLIST, TCMD_BULKINFO,
    TCMD_REGLIST, TCMD_REGSTATUS, TCMD_REGDELETE, TCMD_REACTIVATE,
    TCMD_ADDPOLICY, TCMD_SHOWPOLICY, TCMD_DELETEPOLICY, TCMD_UPDATEPOLICY, TCMD_LISTPOLICY,
    TCMD_ADDMB, TCMD_SHOWMB, TCMD_DELETEMB, TCMD_UPDATEMB, TCMD_LISTMB,
    TCMD_COUNT
} tcli_cmd;

/* The command line as given (strings point into argv). */
typedef struct tcli_opts {
    tcli_cmd cmd;
    const char *command;               /* the -c value as given (e.g. a deprecated alias) */
    bool deprecated;                   /* -c addallowlist / showallowlist / deleteallowlist */
    char uuid[TCLI_ID_MAX + 1];        /* as given (the servers find an agent in any case) */
    bool uuid_default;                 /* no -u: TCLI_DEFAULT_UUID */
    const char *cv_ip, *cv_id, *agent_ip, *cv_agent_ip, *reg_ip;   /* NULL: not given */
    long cv_port, agent_port, reg_port;                             /* 0: not given */
    bool no_verifier_check, verify, help;
    const char *file;                  /* -f: a payload file to seal and deliver (NULL: none) */
    const char *keyfile, *payload;     /* -k: K/U/V key file; -p: its sealed payload (with -k) */
    bool insecure;                     /* --insecure: plain HTTP everywhere (debugging only) */
    bool agent_plain_http;             /* --agent-plain-http: agents registered without a certificate
                                          over plain HTTP; TLS to the servers kept */
    const char *supported_version;     /* --supported-version: the agent's API version, "2.N" */
    const char *allowlist, *exclude;   /* may be "default" */
    const char *runtime_policy, *runtime_policy_name, *runtime_policy_checksum;
    const char *runtime_policy_key;    /* --runtime-policy-sig-key / --runtime-policy-key (DSSE) */
    const char *sig_keys[TCLI_MAX_SIG_KEYS];       /* --signature-verification-key (repeatable) */
    size_t nsig_keys;
    const char *sig_key_urls[TCLI_MAX_SIG_KEYS];   /* --signature-verification-key-url */
    size_t nsig_key_urls;
    const char *mb_policy;             /* --mb-policy FILE or "default" ([tenant] mb_refstate) */
    const char *mb_policy_name;        /* --mb-policy-name */
    const char *tpm_policy;            /* --tpm_policy text as given */
    cJSON *tpm_policy_obj;             /* normalised (owned), NULL when not given */
    uint32_t tpm_mask;                 /* PCRs named by --tpm_policy */
    const char *config;
    bool check_config;                 /* --check-config: validate, print the values in effect, exit */
    bool no_runtime_policy;            /* --no-runtime-policy: add/update without IMA checking, on purpose */
    bool allow_empty;                  /* --allow-empty: accept an allowlist/policy with no entries */
    bool json;                         /* --json: print the servers' JSON responses */
    const char *uuid_file;             /* --uuid-file: add/delete every agent it names (cli_bulk.c) */
    unsigned jobs;                     /* --jobs: agents in flight at once with --uuid-file (0: default) */
} tcli_opts;

typedef struct tcli_algs {
    size_t n;
    char name[TCLI_ALGS_MAX][TCLI_ALG_LEN];
} tcli_algs;

/* Settings after the configuration file's [tenant] section filled the gaps. */
typedef struct tcli_conf {
    const char *cv_ip, *reg_ip, *cv_id;     /* point into opts, the qconfig or literals */
    long cv_port, reg_port;
    const char *allowlist, *exclude;        /* 'default' resolved; NULL when none */
    const char *mb_policy;                  /* --mb-policy with 'default' resolved; NULL when none */
    cJSON *tpm_policy;                      /* owned copy (options, else [tenant] tpm_policy) */
    uint32_t tpm_mask;
    tcli_algs hash, enc, sign;              /* accept_tpm_*_algs */
    long timeout_ms, connect_ms;
    size_t max_payload_size;                /* [tenant] max_payload_size: the payload's base64 text */
    long verify_timeout_ms;                 /* [tenant] verify_timeout_ms: how long --verify waits */
    /* TLS: the verifier API and the registrar's TLS port are reached over https with the tenant's
     * client certificate, the servers checked against ca_cert (name included); the agent with its
     * registered certificate pinned (cli_add.c). insecure (--insecure or [tenant] insecure):
     * plain HTTP everywhere, registrar_port default 8890, a warning on every run. */
    bool insecure;
    /* agent_mtls ([tenant] agent_mtls, default true; false with --agent-plain-http): false lets
     * the tenant reach an agent registered with mtls_cert "disabled" (Keylime's
     * enable_agent_mtls = False) over plain HTTP, with a warning each time; the verifier and the
     * registrar are still reached over TLS. An agent that registered a certificate is always
     * reached over TLS with it pinned. */
    bool agent_mtls;
    char ca_cert[1024], client_cert[1024], client_key[1024];   /* "" when insecure */
} tcli_conf;

/* Parse argv (argv[0] is the program). Returns 0, or -1 with a one-line message (exit 2).
 * Checks every option on its own and the combinations that need no configuration file
 * (e.g. --exclude without --allowlist, -p without -k, --verify without a payload key, a
 * policy command without a name). Call tcli_opts_free afterwards, also after a failure. Resets getopt's state. */
int tcli_parse(int argc, char **argv, tcli_opts *o, qerr *err);
void tcli_opts_free(tcli_opts *o);

/* Fill c from the options and cfg's [tenant] section (verifier_ip, verifier_port, registrar_ip,
 * registrar_port (8891, the registrar's TLS port; 8890 when insecure), verifier_id, allowlist,
 * ima_excludelist, tpm_policy, accept_tpm_hash_algs, accept_tpm_encryption_algs,
 * accept_tpm_signing_algs, request_timeout_ms, connect_timeout_ms, max_payload_size (1048576),
 * verify_timeout_ms (30000), insecure, tls_dir
 * (/var/lib/quince/tls), client_cert (tls_dir/tenant-cert.pem), client_key (tls_dir/tenant-key.pem),
 * ca_cert (tls_dir/cacert.pem)). The TLS files are not read here (tcli_tls_check does).
 * cfg may be NULL. Returns 0 or -1 (exit 2). Call tcli_conf_free afterwards. */
int tcli_resolve(const tcli_opts *o, const qconfig *cfg, tcli_conf *c, qerr *err);
void tcli_conf_free(tcli_conf *c);
/* The client certificate and key must load and match, and ca_cert must be a certificate; else -1
 * (exit 2) naming the file and how to fix it. Nothing to check when insecure. */
int tcli_tls_check(const tcli_conf *c, qerr *err);

/* Keylime's readPolicy for --tpm_policy: a JSON object whose keys are PCR numbers 0..23 (never
 * 10, used by IMA, or 16, used to bind data) and whose values are a hex digest or a list of
 * them; values are lower-cased and a single string becomes a list. *out gets the normalised
 * object (without "mask"), *mask the PCR bitmap. */
int tcli_tpm_policy_parse(const char *text, cJSON **out, uint32_t *mask, qerr *err);
/* [\w.-]+ (ASCII), 1..TCLI_ID_MAX characters, copied into out as given (cap > TCLI_ID_MAX). */
int tcli_uuid_check(const char *in, char *out, size_t cap, qerr *err);
/* A comma/blank separated algorithm list ("sha512, sha384, sha256"); names are lower-cased and
 * must be in `known` (NULL-terminated). `what` names the setting in messages. */
int tcli_algs_parse(const char *text, const char *const *known, const char *what, tcli_algs *out, qerr *err);
/* Value checks shared by the options and the configuration; errors have code 2. */
int tcli_check_host(const char *s, const char *what, qerr *err);
int tcli_check_verifier_id(const char *s, qerr *err);
/* A one-line usage error (code 2). Returns -1. */
int tcli_usage_err(qerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The canonical name of a command (for messages). */
const char *tcli_cmd_name(tcli_cmd c);

/* ---- running commands (cli.c, cli_http.c, cli_cmds.c, cli_add.c, cli_rpcmds.c, cli_policy.c) */

typedef enum { TSRV_REGISTRAR = 0, TSRV_VERIFIER, TSRV_COUNT } tcli_server;

typedef struct tcli_ctx {
    const tcli_opts *o;
    const tcli_conf *c;
    qhttp_client *http;
    char base[TSRV_COUNT][TCLI_HOST_MAX + 32];    /* "https://host:port" ("http://" when insecure) */
    char where[TSRV_COUNT][TCLI_HOST_MAX + 16];   /* "host:port" for messages */
    char ver[TSRV_COUNT][16];                     /* negotiated API version, "" until first use */
    cJSON *last_json;                             /* --json: the last server answer (owned) */
} tcli_ctx;

/* The runtime policy an add / addruntimepolicy sends, built from --allowlist (+ --exclude) or
 * read from --runtime-policy. */
typedef struct tcli_policy {
    bool present;                 /* a policy text was built or read */
    char *b64;                    /* base64 of the policy JSON (owned) */
    size_t json_len;              /* bytes of policy JSON */
    size_t paths, excludes;       /* counts for messages */
    char *key_b64;                /* runtime_policy_key: base64 of the DSSE key file (owned) or NULL */
    bool is_signed;               /* the policy is a DSSE envelope whose signature was checked */
    char *ima_keys;               /* ima_sign_verification_keys keyring JSON (owned) or NULL */
    bool kept;                    /* the agent's current policy, kept by an update */
} tcli_policy;

/* The keyring JSON of --signature-verification-key files and -url downloads (ima_keys.c);
 * *json = NULL when none were given. */
int tcli_ima_keys_load(const tcli_opts *o, char **json, qerr *err);

/* "http://host:port" (IPv6 addresses bracketed) and "host:port". */
void tcli_base_url(const char *host, long port, char *base, size_t bcap, char *where, size_t wcap);
/* The same with "https://" when tls. */
void tcli_base_url_tls(bool tls, const char *host, long port, char *base, size_t bcap, char *where, size_t wcap);
/* A client for the verifier and the registrar: TLS 1.2+, ca_cert, the tenant's certificate,
 * the configured timeouts and max_response bytes per answer. */
qhttp_client *tcli_http_new(const tcli_conf *c, size_t max_response, qerr *err);

/* One versioned request to a server: negotiates the API version on first use (GET /version),
 * then METHOD <base>/v<ver><path>. A transport failure is -1 with "cannot reach the <server>
 * at <host:port>: <reason>" (code 1); any HTTP answer is 0 (check out->status). */
int tcli_call(tcli_ctx *x, tcli_server s, const char *method, const char *path, const cJSON *body,
              qhttp_result *out, qerr *err);
/* A failed answer as an error: "<prefix>: <status> <status text>" (code 1). Returns -1. */
int tcli_http_error(const qhttp_result *r, qerr *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *tcli_server_name(tcli_server s);     /* "registrar" / "verifier" */

/* Build or read the runtime policy named by the options (files only; no network). Returns 0
 * (p->present false when no policy was asked for) or -1 (code 2). */
int tcli_policy_load(const tcli_conf *c, const tcli_opts *o, tcli_policy *p, qerr *err);
void tcli_policy_free(tcli_policy *p);
/* The tpm_policy JSON text to send: the normalised --tpm_policy plus "mask" (with PCR 10 when
 * with_ima). Malloc'd; NULL on allocation failure. */
char *tcli_tpm_policy_text(const tcli_conf *c, bool with_ima);
/* The same for a given policy object (without "mask") and mask. */
char *tcli_tpm_policy_text_of(const cJSON *policy, uint32_t mask, bool with_ima);

/* Commands: return 0 or -1 with err (code = exit status). */
/* No silent loss of checking (cli_keep.c). What an update without a new policy keeps of the
 * agent's current setup: its named policy (name), or the text of the policy stored under its id
 * (b64), and its tpm_policy without the mask (tpm, tpm_mask). found false: not on the verifier. */
typedef struct tcli_kept {
    bool found;
    char *name;
    char *b64;
    size_t json_len;
    cJSON *tpm;
    uint32_t tpm_mask;
} tcli_kept;
int tcli_kept_fetch(tcli_ctx *x, tcli_kept *k, qerr *err);
void tcli_kept_free(tcli_kept *k);
bool tcli_tpm_policy_empty(const tcli_conf *c);
/* The refusal of an add/update that would check nothing (names --no-runtime-policy). -1, code 2. */
int tcli_refuse_unchecked(const tcli_ctx *x, qerr *err);

int tcli_cmd_add(tcli_ctx *x, qerr *err);
/* -c add / -c delete with --uuid-file: every agent of the file, o->jobs at a time (cli_bulk.c);
 * per-agent failures are printed as they happen, the run ends with a summary line. */
int tcli_cmd_bulk(tcli_ctx *x, qerr *err);
int tcli_cmd_update(tcli_ctx *x, qerr *err);
int tcli_cmd_delete(tcli_ctx *x, bool quiet_missing, bool *missing, qerr *err);
int tcli_cmd_status(tcli_ctx *x, bool reg, bool cv, qerr *err);
int tcli_cmd_cvlist(tcli_ctx *x, bool bulk, qerr *err);
int tcli_cmd_reglist(tcli_ctx *x, qerr *err);
int tcli_cmd_regdelete(tcli_ctx *x, qerr *err);
int tcli_cmd_reactivate(tcli_ctx *x, qerr *err);
int tcli_cmd_policy(tcli_ctx *x, qerr *err);   /* add/show/delete/update/list runtime policies */

/* A kind of named document on the verifier (cli_named.c): runtime policies, measured-boot
 * reference states. */
typedef struct tcli_named_kind {
    const char *what;          /* "runtime policy" */
    const char *plural;        /* "runtime policies" */
    const char *collection;    /* "/allowlists/" */
    const char *list_key;      /* the list answer's key, "runtimepolicy names" */
    const char *text_key;      /* the show answer's key, "runtime_policy" */
} tcli_named_kind;
/* collection + the URL-escaped name into path (cap bytes). */
int tcli_named_path(const tcli_named_kind *k, const char *name, char *path, size_t cap, qerr *err);
/* GET path: prints the stored text. DELETE path. GET the collection: one name per line. */
int tcli_named_show(tcli_ctx *x, const tcli_named_kind *k, const char *path, const char *name, qerr *err);
int tcli_named_delete(tcli_ctx *x, const tcli_named_kind *k, const char *path, const char *name, qerr *err);
int tcli_named_list(tcli_ctx *x, const tcli_named_kind *k, qerr *err);

/* The API versions this tenant speaks: 2.0 .. 2.TCLI_API_MINOR_MAX. tcli_api_version_check
 * returns the minor number of "2.N" in that range, else -1. */
#define TCLI_API_MINOR_MAX 6
int tcli_api_version_check(const char *v);

/* Keylime's operational state names (keylime-formats §3.4); "Unknown" outside 0..10. */
const char *tcli_state_name(long state);

/* Help text (the whole of quince-tenant's usage, local tools included). */
void tenant_cli_usage(FILE *f);
/* Entry point from tenant/main.c for everything that is not a local tool. */
int tenant_cli_main(int argc, char **argv);

/* ---- measured boot (cli_mbcmds.c) ---- */
#define TCLI_MB_PCRS 0xfbffu       /* PCRs 0-9 and 11-15, which a reference state needs quoted */
/* The reference state of --mb-policy, read (bounded) and checked with qmb_ref_parse: malloc'd
 * text in *out, NULL without --mb-policy. 0 or -1 (usage error naming the file). */
int tcli_mb_load(const tcli_conf *c, char **out, qerr *err);
/* addmbpolicy / showmbpolicy / deletembpolicy / updatembpolicy / listmbpolicy. */
int tcli_cmd_mb(tcli_ctx *x, qerr *err);

#endif
