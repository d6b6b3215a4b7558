/* cli_conf.c — the [tenant] section of the configuration file under the options: addresses and
 * ports, 'default' for --allowlist / --exclude, tpm_policy, accept_tpm_*_algs, timeouts and the
 * payload limits (max_payload_size, verify_timeout_ms). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tls_ca.h"

static const char *const HASH_ALGS[] = {"sha1", "sha256", "sha384", "sha512", "sm3_256", NULL};
static const char *const ENC_ALGS[] = {"rsa", "ecc", "rsa1024", "rsa2048", "rsa3072", "rsa4096", "ecc192",
                                       "ecc224", "ecc256", "ecc384", "ecc521", "ecc_sm2", NULL};
static const char *const SIGN_ALGS[] = {"rsassa", "rsapss", "ecdsa", "ecdaa", "ecschnorr", "sm2", NULL};

static int conf_port(const qconfig *cfg, const char *key, long def, long *out, qerr *err)
{
    if (qconfig_long(cfg, "tenant", key, def, 1, 65535, out, err) < 0) {
        if (err)
            err->code = TCLI_EUSAGE;
        return -1;
    }
    return 0;
}

/* A file option: 'default' means the [tenant] key. */
static int conf_file(const qconfig *cfg, const char *given, const char *key, const char *opt, const char **out,
                     qerr *err)
{
    *out = given;
    if (!given || strcmp(given, "default") != 0)
        return 0;
    const char *v = cfg ? qconfig_get(cfg, "tenant", key) : NULL;
    if (!v || !*v)
        return tcli_usage_err(err, "%s default: [tenant] %s is not set in %s", opt, key,
                              cfg && qconfig_path(cfg) ? qconfig_path(cfg) : "the configuration");
    *out = v;
    return 0;
}

/* [tenant] key when set, else tls_dir/def. */
static int tls_path(const qconfig *cfg, const char *key, const char *def, char out[1024], qerr *err)
{
    const char *v = qconfig_str(cfg, "tenant", key, "");
    int n = *v ? snprintf(out, 1024, "%s", v)
               : snprintf(out, 1024, "%s/%s", qconfig_str(cfg, "tenant", "tls_dir", "/var/lib/quince/tls"), def);
    if (n < 0 || n >= 1024)
        return tcli_usage_err(err, "[tenant] %s: path too long", key);
    return 0;
}

int tcli_tls_check(const tcli_conf *c, qerr *err)
{
    if (c->insecure)
        return 0;
    X509 *ca = qtls_read_cert(c->ca_cert, err);
    if (!ca || qtls_load_pair(c->client_cert, c->client_key, NULL, NULL, err) < 0) {
        X509_free(ca);
        qerr_prefix(err, "TLS");
        if (err) {
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof err->msg - n, " (set [tenant] tls_dir to the verifier's tls_dir, or "
                                                        "client_cert, client_key and ca_cert)");
            err->code = TCLI_EUSAGE;
        }
        return -1;
    }
    X509_free(ca);
    return 0;
}

int tcli_resolve(const tcli_opts *o, const qconfig *cfg, tcli_conf *c, qerr *err)
{
    memset(c, 0, sizeof *c);
    qconfig *empty = NULL;
    if (!cfg) {
        empty = qconfig_parse("", 0, "(none)", err);
        if (!empty) {
            if (err)
                err->code = TCLI_EUSAGE;
            return -1;
        }
        cfg = empty;
    }
    int rc = -1;
    const char *s;
    long mps = 0;
    c->cv_ip = o->cv_ip ? o->cv_ip : qconfig_str(cfg, "tenant", "verifier_ip", "127.0.0.1");
    c->reg_ip = o->reg_ip ? o->reg_ip : qconfig_str(cfg, "tenant", "registrar_ip", "127.0.0.1");
    c->cv_id = o->cv_id ? o->cv_id : qconfig_str(cfg, "tenant", "verifier_id", "default");
    if (tcli_check_host(c->cv_ip, "[tenant] verifier_ip", err) < 0 ||
        tcli_check_host(c->reg_ip, "[tenant] registrar_ip", err) < 0 || tcli_check_verifier_id(c->cv_id, err) < 0)
        goto out;
    if (o->cv_port)
        c->cv_port = o->cv_port;
    else if (conf_port(cfg, "verifier_port", 8881, &c->cv_port, err) < 0)
        goto out;
    if (qconfig_bool(cfg, "tenant", "insecure", false, &c->insecure, err) < 0) {
        if (err)
            err->code = TCLI_EUSAGE;
        goto out;
    }
    c->insecure = c->insecure || o->insecure;
    if (qconfig_bool(cfg, "tenant", "agent_mtls", true, &c->agent_mtls, err) < 0) {
        if (err)
            err->code = TCLI_EUSAGE;
        goto out;
    }
    c->agent_mtls = c->agent_mtls && !o->agent_plain_http && !c->insecure;
    if (o->reg_port)
        c->reg_port = o->reg_port;
    else if (conf_port(cfg, "registrar_port", c->insecure ? 8890 : 8891, &c->reg_port, err) < 0)
        goto out;
    if (!c->insecure && (tls_path(cfg, "ca_cert", QTLS_F_CA_CERT, c->ca_cert, err) < 0 ||
                         tls_path(cfg, "client_cert", QTLS_F_TENANT_CERT, c->client_cert, err) < 0 ||
                         tls_path(cfg, "client_key", QTLS_F_TENANT_KEY, c->client_key, err) < 0))
        goto out;
    if (conf_file(cfg, o->allowlist, "allowlist", "--allowlist", &c->allowlist, err) < 0 ||
        conf_file(cfg, o->exclude, "ima_excludelist", "--exclude", &c->exclude, err) < 0 ||
        conf_file(cfg, o->mb_policy, "mb_refstate", "--mb-policy", &c->mb_policy, err) < 0)
        goto out;
    if (o->tpm_policy_obj) {
        c->tpm_policy = cJSON_Duplicate(o->tpm_policy_obj, true);
        c->tpm_mask = o->tpm_mask;
    } else if ((s = qconfig_get(cfg, "tenant", "tpm_policy")) && *s) {
        if (tcli_tpm_policy_parse(s, &c->tpm_policy, &c->tpm_mask, err) < 0) {
            qerr_prefix(err, "[tenant] tpm_policy");
            goto out;
        }
    } else {
        c->tpm_policy = cJSON_CreateObject();
    }
    if (!c->tpm_policy) {
        tcli_usage_err(err, "out of memory");
        goto out;
    }
    if (tcli_algs_parse(qconfig_str(cfg, "tenant", "accept_tpm_hash_algs", "sha512, sha384, sha256"), HASH_ALGS,
                        "[tenant] accept_tpm_hash_algs", &c->hash, err) < 0 ||
        tcli_algs_parse(qconfig_str(cfg, "tenant", "accept_tpm_encryption_algs", "ecc, rsa"), ENC_ALGS,
                        "[tenant] accept_tpm_encryption_algs", &c->enc, err) < 0 ||
        tcli_algs_parse(qconfig_str(cfg, "tenant", "accept_tpm_signing_algs", "ecschnorr, rsassa"), SIGN_ALGS,
                        "[tenant] accept_tpm_signing_algs", &c->sign, err) < 0)
        goto out;
    if (qconfig_long(cfg, "tenant", "request_timeout_ms", 60000, 100, 3600000, &c->timeout_ms, err) < 0 ||
        qconfig_long(cfg, "tenant", "connect_timeout_ms", 5000, 100, 600000, &c->connect_ms, err) < 0 ||
        qconfig_long(cfg, "tenant", "max_payload_size", 1048576, 64, 1L << 30, &mps, err) < 0 ||
        qconfig_long(cfg, "tenant", "verify_timeout_ms", 30000, 100, 3600000, &c->verify_timeout_ms, err) < 0) {
        if (err)
            err->code = TCLI_EUSAGE;
        goto out;
    }
    c->max_payload_size = (size_t)mps;
    rc = 0;
out:
    qconfig_free(empty);
    return rc;
}

void tcli_conf_free(tcli_conf *c)
{
    if (!c)
        return;
    cJSON_Delete(c->tpm_policy);
    c->tpm_policy = NULL;
}
