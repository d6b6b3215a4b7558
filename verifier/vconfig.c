/* vconfig.c — [verifier] / [registrar] parsing and validation; see vconfig.h. */
#include "vconfig.h"
#include "tls_ca.h"
#include "vmetrics.h"
#include "store_url.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>

#define V "verifier"
#define R "registrar"

static int copy_str(const qconfig *c, const char *sec, const char *key, const char *def, char *dst, size_t cap,
                    qerr *err)
{
    const char *v = qconfig_str(c, sec, key, def);
    size_t n = strlen(v);
    if (n >= cap)
        return qerr_set(err, "[%s] %s: value longer than %zu characters", sec, key, cap - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

static bool in_set(const char *name, size_t len, const char *const *set)
{
    for (; *set; set++)
        if (strlen(*set) == len && strncmp(*set, name, len) == 0)
            return true;
    return false;
}

static const char *const hash_names[] = {"sha1", "sha256", "sha384", "sha512", "sm3_256", NULL};
static const char *const enc_names[] = {"rsa", "ecc", "rsa1024", "rsa2048", "rsa3072", "rsa4096", "ecc192",
                                        "ecc224", "ecc256", "ecc384", "ecc521", "ecc_sm2", NULL};
static const char *const sign_names[] = {"rsassa", "rsapss", "ecdsa", "ecdaa", "ecschnorr", "sm2", NULL};

/* An algorithm list: "a, b, c" or Keylime's Python-list form ["a", "b"] / ['a', 'b'].
 * Written to dst as a JSON array text. */
static int alg_list(const qconfig *c, const char *key, const char *def, const char *const *known, char *dst,
                    size_t cap, qerr *err)
{
    const char *v = qconfig_str(c, V, key, def);
    const char *p = v, *end = v + strlen(v);
    while (p < end && isspace((unsigned char)*p))
        p++;
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    if (p < end && *p == '[') {
        if (end[-1] != ']')
            return qerr_set(err, "[verifier] %s: unbalanced '[' in \"%s\"", key, v);
        p++;
        end--;
    }
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return qerr_set(err, "out of memory");
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *a = p, *b = comma ? comma : end;
        p = comma ? comma + 1 : end;
        while (a < b && (isspace((unsigned char)*a) || *a == '"' || *a == '\''))
            a++;
        while (b > a && (isspace((unsigned char)b[-1]) || b[-1] == '"' || b[-1] == '\''))
            b--;
        if (a == b)
            continue;
        if (!in_set(a, (size_t)(b - a), known)) {
            cJSON_Delete(arr);
            return qerr_set(err, "[verifier] %s: unknown algorithm '%.*s'", key, (int)(b - a > 64 ? 64 : b - a),
                            a);
        }
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(b - a), a);
        cJSON_AddItemToArray(arr, cJSON_CreateString(name));
    }
    if (cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(arr);
        return qerr_set(err, "[verifier] %s: names no algorithm", key);
    }
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!s)
        return qerr_set(err, "out of memory");
    int rc = 0;
    if (strlen(s) >= cap)
        rc = qerr_set(err, "[verifier] %s: list too long", key);
    else
        memcpy(dst, s, strlen(s) + 1);
    cJSON_free(s);
    return rc;
}

/* A TLS file: [verifier] key when set, else tls_dir/def (*generated becomes true). */
static int tls_file(const qconfig *c, const char *key, const char *dir, const char *def, char dst[VCONFIG_PATH],
                    bool *generated, qerr *err)
{
    if (copy_str(c, V, key, "", dst, VCONFIG_PATH, err) < 0)
        return -1;
    if (dst[0])
        return 0;
    *generated = true;
    if ((size_t)snprintf(dst, VCONFIG_PATH, "%s/%s", dir, def) >= VCONFIG_PATH)
        return qerr_set(err, "[verifier] tls_dir: path too long");
    return 0;
}

static int level(const qconfig *c, const char *sec, qlog_level *out, qerr *err)
{
    const char *s = qconfig_str(c, sec, "log_level", "info");
    if (qlog_level_parse(s, out) < 0)
        return qerr_set(err, "[%s] log_level: unknown level \"%s\" (debug, info, warning, error, critical)", sec, s);
    return 0;
}

static bool valid_id(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
            return false;
    return true;
}

int vconfig_load(const qconfig *c, vconfig *o, qerr *err)
{
    memset(o, 0, sizeof(*o));
    long workers = 0;
    if (copy_str(c, V, "ip", "127.0.0.1", o->ip, sizeof o->ip, err) < 0 ||
        qconfig_long(c, V, "port", 8881, 0, 65535, &o->port, err) < 0 ||
        copy_str(c, V, "database", "/var/lib/quince/verifier.sqlite", o->database, sizeof o->database, err) < 0 ||
        qconfig_double(c, V, "quote_interval", 2.0, 0.0, 86400.0, &o->quote_interval, err) < 0 ||
        qconfig_long(c, V, "max_retries", 5, 0, 1000, &o->max_retries, err) < 0 ||
        qconfig_double(c, V, "retry_interval", 2.0, 0.0, 3600.0, &o->retry_interval, err) < 0 ||
        qconfig_bool(c, V, "exponential_backoff", true, &o->exponential_backoff, err) < 0 ||
        qconfig_long(c, V, "request_timeout_ms", 30000, 100, 3600000, &o->request_timeout_ms, err) < 0 ||
        qconfig_long(c, V, "max_upload_size", 104857600L, 1024, 1L << 30, &o->max_upload_size, err) < 0 ||
        qconfig_long(c, V, "num_workers", 0, 0, 1024, &workers, err) < 0 ||
        qconfig_long(c, V, "state_checkpoint_rounds", 30, 1, 1000000, &o->checkpoint_rounds, err) < 0 ||
        qconfig_double(c, V, "state_checkpoint_interval", 60.0, 0.0, 86400.0, &o->checkpoint_interval, err) < 0 ||
        qconfig_bool(c, V, "require_allow_list_signatures", false, &o->require_policy_signatures, err) < 0 ||
        alg_list(c, "accept_tpm_hash_algs", "sha512, sha384, sha256", hash_names, o->accept_tpm_hash_algs,
                 sizeof o->accept_tpm_hash_algs, err) < 0 ||
        alg_list(c, "accept_tpm_encryption_algs", "ecc, rsa", enc_names, o->accept_tpm_encryption_algs,
                 sizeof o->accept_tpm_encryption_algs, err) < 0 ||
        alg_list(c, "accept_tpm_signing_algs", "ecschnorr, rsassa", sign_names, o->accept_tpm_signing_algs,
                 sizeof o->accept_tpm_signing_algs, err) < 0 ||
        copy_str(c, V, "verifier_id", "default", o->verifier_id, sizeof o->verifier_id, err) < 0 ||
        qconfig_double(c, V, "lease_ttl", 10.0, 1.0, 3600.0, &o->lease_ttl, err) < 0 ||
        copy_str(c, R, "ip", "127.0.0.1", o->registrar_ip, sizeof o->registrar_ip, err) < 0 ||
        qconfig_long(c, R, "port", 8890, 0, 65535, &o->registrar_port, err) < 0 ||
        qconfig_long(c, R, "tls_port", 8891, 0, 65535, &o->registrar_tls_port, err) < 0 ||
        copy_str(c, V, "tls_dir", "/var/lib/quince/tls", o->tls_dir, sizeof o->tls_dir, err) < 0 ||
        qconfig_bool(c, V, "insecure", false, &o->insecure, err) < 0 ||
        copy_str(c, R, "tpm_cert_store", "", o->tpm_cert_store, sizeof o->tpm_cert_store, err) < 0 ||
        /* EK certificates are not required yet: software TPMs and many VMs have none. */
        qconfig_bool(c, R, "require_ek_cert", false, &o->require_ek_cert, err) < 0 ||
        qconfig_long(c, R, "max_pending_registrations", 1000, 0, 1000000, &o->reg_limits.max_pending, err) < 0 ||
        qconfig_long(c, R, "pending_max_age", 600, 0, 86400 * 30, &o->reg_limits.pending_max_age, err) < 0 ||
        qconfig_long(c, R, "max_failed_activations", 3, 1, 1000, &o->reg_limits.max_failed_activations, err) < 0 ||
        qconfig_long(c, R, "registrations_per_minute", 60, 0, 1000000, &o->reg_limits.registrations_per_minute,
                     err) < 0)
        return -1;
    o->num_workers = workers;

    const char *viol = qconfig_str(c, V, "ima_violations", "pass");
    if (strcmp(viol, "pass") == 0)
        o->violations_fail = false;
    else if (strcmp(viol, "fail") == 0)
        o->violations_fail = true;
    else
        return qerr_set(err, "[verifier] ima_violations: \"%s\" is not \"pass\" or \"fail\"", viol);

    const char *mbp = qconfig_str(c, V, "measured_boot_policy_name", "example");
    if (strcmp(mbp, "example") == 0)
        o->mb_accept_all = false;
    else if (strcmp(mbp, "accept-all") == 0)
        o->mb_accept_all = true;
    else
        return qerr_set(err, "[verifier] measured_boot_policy_name: \"%s\" is not \"example\" or \"accept-all\"",
                        mbp);
    const char *mbe = qconfig_str(c, V, "measured_boot_evaluate", "once");
    if (strcmp(mbe, "once") == 0)
        o->mb_evaluate_always = false;
    else if (strcmp(mbe, "always") == 0)
        o->mb_evaluate_always = true;
    else
        return qerr_set(err, "[verifier] measured_boot_evaluate: \"%s\" is not \"once\" or \"always\"", mbe);

    if (qconfig_bool(c, V, "allow_agent_plain_http", o->insecure, &o->allow_agent_plain_http, err) < 0 ||
        tls_file(c, "server_cert", o->tls_dir, QTLS_F_SERVER_CERT, o->server_cert, &o->tls_generated, err) < 0 ||
        tls_file(c, "server_key", o->tls_dir, QTLS_F_SERVER_KEY, o->server_key, &o->tls_generated, err) < 0 ||
        tls_file(c, "trusted_client_ca", o->tls_dir, QTLS_F_CA_CERT, o->trusted_client_ca, &o->tls_generated,
                 err) < 0 ||
        tls_file(c, "client_cert", o->tls_dir, QTLS_F_CLIENT_CERT, o->client_cert, &o->tls_generated, err) < 0 ||
        tls_file(c, "client_key", o->tls_dir, QTLS_F_CLIENT_KEY, o->client_key, &o->tls_generated, err) < 0)
        return -1;
    if (copy_str(c, V, "registrar_url", "", o->registrar_url, sizeof o->registrar_url, err) < 0 ||
        copy_str(c, V, "registrar_ca_cert", o->trusted_client_ca, o->registrar_ca_cert, sizeof o->registrar_ca_cert,
                 err) < 0)
        return -1;
    size_t ul = strlen(o->registrar_url);
    while (ul > 0 && o->registrar_url[ul - 1] == '/')
        o->registrar_url[--ul] = '\0';
    if (ul && strncmp(o->registrar_url, "https://", 8) != 0 &&
        !(o->insecure && strncmp(o->registrar_url, "http://", 7) == 0))
        return qerr_set(err, "[verifier] registrar_url: '%s' must be an https:// URL (http:// only with insecure)",
                        o->registrar_url);
    if (ul && (strchr(o->registrar_url + 8, '/') || strchr(o->registrar_url, '?')))
        return qerr_set(err, "[verifier] registrar_url: '%s' must be scheme://host:port without a path",
                        o->registrar_url);
    if (!o->tls_dir[0] && o->tls_generated)
        return qerr_set(err, "[verifier] tls_dir: a directory is required unless server_cert, server_key, "
                             "trusted_client_ca, client_cert and client_key are all set");
    if (!o->insecure && o->registrar_tls_port != 0 && o->registrar_tls_port == o->registrar_port)
        return qerr_set(err, "[registrar] tls_port %ld is the same as port (the plain-HTTP port)", o->registrar_tls_port);
    vdb_url db;
    if (vdb_url_parse(o->database, &db, err) < 0)
        return -1;
    if (!valid_id(o->verifier_id))
        return qerr_set(err, "[verifier] verifier_id: '%s' is not valid (letters, digits, '_', '.', '-')",
                        o->verifier_id);
    if (o->require_ek_cert && !o->tpm_cert_store[0])
        return qerr_set(err, "[registrar] require_ek_cert needs tpm_cert_store");

    qlog_level lv, lr;
    if (level(c, V, &lv, err) < 0 || level(c, R, &lr, err) < 0)
        return -1;
    if (copy_str(c, V, "metrics_listen", "", o->metrics_listen, sizeof o->metrics_listen, err) < 0 ||
        vrevoc_config_load(c, &o->revocations, err) < 0)
        return -1;
    if (o->metrics_listen[0]) {
        char mip[VCONFIG_STR];
        uint16_t mport;
        if (vmetrics_parse_listen(o->metrics_listen, mip, sizeof mip, &mport, err) < 0)
            return -1;
    }
    const char *lf = qconfig_str(c, V, "log_format", "text");
    if (qlog_format_parse(lf, &o->log_format) < 0)
        return qerr_set(err, "[verifier] log_format: \"%s\" is not text or json", lf);
    o->log_level = lv < lr ? lv : lr;
    return 0;
}

void vconfig_poller_opts(const vconfig *v, vpoller_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->quote_interval = v->quote_interval;
    o->max_retries = v->max_retries;
    o->retry_interval = v->retry_interval;
    o->exponential_backoff = v->exponential_backoff;
    o->request_timeout_ms = v->request_timeout_ms;
    o->max_response_bytes = 128L << 20;
    o->violations_fail = v->violations_fail;
    o->mb_accept_all = v->mb_accept_all;
    o->mb_evaluate_always = v->mb_evaluate_always;
    o->num_workers = (unsigned)v->num_workers;
    o->checkpoint = (vround_ckpt){ .rounds = v->checkpoint_rounds, .seconds = v->checkpoint_interval };
    o->verifier_id = v->verifier_id;
    o->lease_ttl = v->lease_ttl;
    o->tls_cert_file = v->client_cert;
    o->tls_key_file = v->client_key;
    o->allow_plain_http = v->allow_agent_plain_http;
}

const char *vconfig_help(void)
{
    return "Configuration keys (file: --config, else $QUINCE_CONFIG, else /etc/quince/quince.conf;\n"
           "each key can be overridden as QUINCE_<SECTION>_<KEY>):\n"
           "  [verifier]\n"
           "    ip                          verifier API address (127.0.0.1)\n"
           "    port                        verifier API port (8881)\n"
           "    database                    SQLite file or sqlite:///path, or postgresql://user@host/db\n"
           "                                (/var/lib/quince/verifier.sqlite)\n"
           "    quote_interval              seconds between two quotes of one agent, fractions allowed (2)\n"
           "    max_retries                 connection retries before an agent is FAILED (5)\n"
           "    retry_interval              retry delay in seconds, the base of the back-off (2)\n"
           "    exponential_backoff         retry_interval ** n instead of a constant delay (true)\n"
           "    request_timeout_ms          time allowed for one quote request (30000)\n"
           "    max_upload_size             largest API request body in bytes (104857600)\n"
           "    ima_violations              pass or fail: IMA violation entries (pass)\n"
           "    measured_boot_policy_name   example (judge the boot log against the agent's reference\n"
           "                                state) or accept-all (replay and compare PCRs only) (example)\n"
           "    measured_boot_evaluate      once (per boot) or always (every quote) (once)\n"
           "    require_allow_list_signatures  refuse runtime policies that are not DSSE-signed\n"
           "                                (400) or whose signature fails (401) (false)\n"
           "    num_workers                 attestation worker threads, 0 = one per core (0)\n"
           "    state_checkpoint_rounds     rounds that changed only counters between two writes, 1 = every round (30)\n"
           "    state_checkpoint_interval   seconds after which such counters are written anyway (60)\n"
           "    accept_tpm_hash_algs        default when an add request has none (sha512, sha384, sha256)\n"
           "    accept_tpm_encryption_algs  default when an add request has none (ecc, rsa)\n"
           "    accept_tpm_signing_algs     default when an add request has none (ecschnorr, rsassa)\n"
           "    verifier_id                 this verifier's id in agent records (default)\n"
           "    lease_ttl                   seconds within which the agents of a verifier that stopped are\n"
           "                                taken over by the others sharing the database (10)\n"
           "    log_level                   debug, info, warning, error or critical (info)\n"
           "    log_format                  text (Keylime's layout) or json, one object per line (text)\n"
           "    tls_dir                     the built-in CA: made on first start, mode 0700 (/var/lib/quince/tls)\n"
           "    server_cert, server_key     the API's certificate and key (tls_dir/server-cert.pem, -key.pem)\n"
           "    trusted_client_ca           CA that tenant certificates must chain to (tls_dir/cacert.pem)\n"
           "    client_cert, client_key     presented to agents (tls_dir/client-cert.pem, client-key.pem)\n"
           "    insecure                    plain HTTP, no client certificates: debugging only (false)\n"
           "    allow_agent_plain_http      poll agents registered without a certificate (insecure)\n"
           "    registrar_url               an external Keylime-compatible registrar to read agent records\n"
           "                                from, https://host:port (none: this daemon's own registrar)\n"
           "    registrar_ca_cert           the external registrar's CA (trusted_client_ca)\n"
           "    metrics_listen              ip:port serving Prometheus GET /metrics, plain HTTP (off)\n"
           "  [revocations]\n"
           "    enabled_revocation_notifications  [\"webhook\", \"agent\"]: where failures go (none)\n"
           "    signing_key                 PEM RSA key signing revocation messages (needed for agent)\n"
           "    webhook_url                 http(s) URL receiving Keylime's revocation message\n"
           "    webhook_ca_cert             CA for an https webhook (system store)\n"
           "    webhook_max_retries, webhook_retry_interval_ms, webhook_timeout_ms  (3, 1000, 5000)\n"
           "  [registrar]\n"
           "    ip                          registrar API address (127.0.0.1)\n"
           "    port                        plain-HTTP port: registration and activation only (8890)\n"
           "    tls_port                    mTLS port: everything, incl. show, list, delete (8891)\n"
           "    tpm_cert_store              CA certificates for EK certificates (none)\n"
           "    require_ek_cert             refuse agents without a valid EK certificate (false)\n"
           "    max_pending_registrations   registrations awaiting activation, 0 = no cap (1000)\n"
           "    pending_max_age             seconds before an unactivated registration expires, 0 = never (600)\n"
           "    max_failed_activations      wrong auth tags before a pending challenge is dropped (3)\n"
           "    registrations_per_minute    per client address, 0 = no limit (60)\n"
           "    log_level                   as above; the daemon logs at the more verbose of the two (info)\n";
}
