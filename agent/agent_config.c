/* agent_config.c — [agent] section parsing and validation; see agent_config.h. */
#include "agent_config.h"
#include "log.h"
#include "prom.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S "agent"

static int copy_str(const qconfig *c, const char *key, const char *def, char *dst, size_t cap, qerr *err)
{
    const char *v = qconfig_str(c, S, key, def);
    if (strlen(v) >= cap)
        return qerr_set(err, "[agent] %s: value longer than %zu characters", key, cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int valid_uuid(const char *u)
{
    /* Keylime's agent id rule: [\w.-]+ */
    if (!*u)
        return 0;
    for (const char *p = u; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return 0;
    return 1;
}

int agent_config_load(const qconfig *c, agent_config *o, qerr *err)
{
    memset(o, 0, sizeof(*o));
    if (copy_str(c, "uuid", "generate", o->uuid, sizeof o->uuid, err) < 0 ||
        copy_str(c, "ip", "127.0.0.1", o->ip, sizeof o->ip, err) < 0 ||
        qconfig_long(c, S, "port", 9002, 0, 65535, &o->port, err) < 0 ||
        copy_str(c, "contact_ip", o->ip, o->contact_ip, sizeof o->contact_ip, err) < 0 ||
        qconfig_long(c, S, "contact_port", o->port, 1, 65535, &o->contact_port, err) < 0 ||
        copy_str(c, "registrar_ip", "127.0.0.1", o->registrar_ip, sizeof o->registrar_ip, err) < 0 ||
        qconfig_long(c, S, "registrar_port", 8890, 1, 65535, &o->registrar_port, err) < 0 ||
        copy_str(c, "tcti", "device:/dev/tpmrm0", o->tcti, sizeof o->tcti, err) < 0 ||
        copy_str(c, "tpm_encryption_alg", "rsa", o->tpm_encryption_alg, sizeof o->tpm_encryption_alg, err) < 0 ||
        copy_str(c, "tpm_signing_alg", "", o->tpm_signing_alg, sizeof o->tpm_signing_alg, err) < 0 ||
        copy_str(c, "ima_ml_path", "/sys/kernel/security/ima/ascii_runtime_measurements", o->ima_ml_path,
                 sizeof o->ima_ml_path, err) < 0 ||
        copy_str(c, "measuredboot_ml_path", "/sys/kernel/security/tpm0/binary_bios_measurements",
                 o->measuredboot_ml_path, sizeof o->measuredboot_ml_path, err) < 0 ||
        copy_str(c, "state_dir", "/var/lib/quince/agent", o->state_dir, sizeof o->state_dir, err) < 0 ||
        copy_str(c, "run_as", "", o->run_as, sizeof o->run_as, err) < 0 ||
        qconfig_long(c, S, "tpm_timeout_ms", 10000, 100, 600000, &o->tpm_timeout_ms, err) < 0 ||
        qconfig_bool(c, S, "tpm_release", false, &o->tpm_release, err) < 0 ||
        qconfig_long(c, S, "max_ima_bytes", 64L << 20, 4096, 1L << 30, &o->max_ima_bytes, err) < 0 ||
        qconfig_long(c, S, "registrar_retry_ms", 1000, 10, 3600000, &o->registrar_retry_ms, err) < 0 ||
        qconfig_long(c, S, "registrar_retry_max_ms", 60000, 10, 3600000, &o->registrar_retry_max_ms, err) < 0 ||
        qconfig_long(c, S, "registrar_max_retries", 0, 0, 1000000, &o->registrar_max_retries, err) < 0 ||
        copy_str(c, "log_level", "info", o->log_level, sizeof o->log_level, err) < 0 ||
        copy_str(c, "secure_dir", "", o->secure_dir, sizeof o->secure_dir, err) < 0 ||
        qconfig_long(c, S, "secure_size", 1L << 20, 4096, 1L << 30, &o->secure_size, err) < 0 ||
        copy_str(c, "payload_script", "autorun.sh", o->payload_script, sizeof o->payload_script, err) < 0 ||
        qconfig_bool(c, S, "enable_insecure_payload", false, &o->enable_insecure_payload, err) < 0 ||
        qconfig_bool(c, S, "extract_payload_zip", true, &o->extract_payload_zip, err) < 0 ||
        qconfig_long(c, S, "max_payload_size", 1048576, 0, 64L << 20, &o->max_payload_size, err) < 0 ||
        copy_str(c, "trusted_client_ca", "", o->trusted_client_ca, sizeof o->trusted_client_ca, err) < 0 ||
        qconfig_bool(c, S, "insecure", false, &o->insecure, err) < 0)
        return -1;
    if (!o->insecure && !o->trusted_client_ca[0])
        return qerr_set(err, "[agent] trusted_client_ca is required: the verifier's CA certificate (its "
                             "tls_dir/cacert.pem, copied to this machine); only insecure = true (debugging) runs "
                             "without it");
    if (!o->secure_dir[0] && snprintf(o->secure_dir, sizeof o->secure_dir, "%s/secure", o->state_dir) >=
                                 (int)sizeof o->secure_dir)
        return qerr_set(err, "[agent] state_dir is too long for the default secure_dir");
    if (strchr(o->payload_script, '/'))
        return qerr_set(err, "[agent] payload_script: '%s' must be a file name inside the payload, not a path",
                        o->payload_script);

    if (strcmp(o->uuid, "generate") != 0 && strcmp(o->uuid, "hash_ek") != 0 && !valid_uuid(o->uuid))
        return qerr_set(err, "[agent] uuid: '%s' is not a valid agent id (letters, digits, '_', '.', '-'), "
                             "'generate' or 'hash_ek'", o->uuid);

    const char *h = qconfig_str(c, S, "tpm_hash_alg", "sha256");
    if (qhash_from_name(h, &o->tpm_hash_alg) < 0)
        return qerr_set(err, "[agent] tpm_hash_alg: '%s' is not one of sha1, sha256, sha384, sha512", h);

    if (strcmp(o->tpm_encryption_alg, "rsa2048") == 0)
        strcpy(o->tpm_encryption_alg, "rsa");
    if (strcmp(o->tpm_encryption_alg, "ecc256") == 0)
        strcpy(o->tpm_encryption_alg, "ecc");
    if (strcmp(o->tpm_encryption_alg, "rsa") != 0 && strcmp(o->tpm_encryption_alg, "ecc") != 0)
        return qerr_set(err, "[agent] tpm_encryption_alg: '%s' is not supported (rsa or ecc)",
                        o->tpm_encryption_alg);
    if (!o->tpm_signing_alg[0])
        strcpy(o->tpm_signing_alg, strcmp(o->tpm_encryption_alg, "rsa") == 0 ? "rsassa" : "ecdsa");
    if (strcmp(o->tpm_signing_alg, "rsassa") != 0 && strcmp(o->tpm_signing_alg, "ecdsa") != 0)
        return qerr_set(err, "[agent] tpm_signing_alg: '%s' is not supported (rsassa or ecdsa)",
                        o->tpm_signing_alg);
    if ((strcmp(o->tpm_signing_alg, "rsassa") == 0) != (strcmp(o->tpm_encryption_alg, "rsa") == 0))
        return qerr_set(err, "[agent] tpm_signing_alg %s does not fit tpm_encryption_alg %s (rsa goes "
                             "with rsassa, ecc with ecdsa)", o->tpm_signing_alg, o->tpm_encryption_alg);

    const char *ek = qconfig_str(c, S, "ek_handle", "");
    if (*ek && strcmp(ek, "generate") != 0) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(ek, &end, 0);
        if (errno || *end || v < 0x81000000UL || v > 0x81FFFFFFUL)
            return qerr_set(err, "[agent] ek_handle: '%s' is not a persistent handle (0x81000000-0x81ffffff)", ek);
        o->ek_handle = (uint32_t)v;
    }
    if (o->registrar_retry_max_ms < o->registrar_retry_ms)
        o->registrar_retry_max_ms = o->registrar_retry_ms;
    if (copy_str(c, "metrics_listen", "", o->metrics_listen, sizeof o->metrics_listen, err) < 0 ||
        copy_str(c, "revocation_cert", "default", o->revocation_cert, sizeof o->revocation_cert, err) < 0 ||
        copy_str(c, "revocation_actions", "", o->revocation_actions, sizeof o->revocation_actions, err) < 0 ||
        copy_str(c, "revocation_actions_dir", "/usr/libexec/quince", o->revocation_actions_dir,
                 sizeof o->revocation_actions_dir, err) < 0 ||
        qconfig_bool(c, S, "allow_payload_revocation_actions", true, &o->allow_payload_revocation_actions, err) < 0 ||
        qconfig_long(c, S, "revocation_action_timeout_ms", 30000, 100, 3600000, &o->revocation_action_timeout_ms,
                     err) < 0)
        return -1;
    if (o->metrics_listen[0]) {
        char mip[AGENT_STR];
        uint16_t mport;
        if (qprom_parse_listen(o->metrics_listen, mip, sizeof mip, &mport, err) < 0) {
            qerr_prefix(err, "[agent] metrics_listen");
            return -1;
        }
    }
    const char *lf = qconfig_str(c, S, "log_format", "text");
    if (qlog_format_parse(lf, &o->log_format) < 0)
        return qerr_set(err, "[agent] log_format: '%s' is not text or json", lf);
    qlog_level lvl;
    if (qlog_level_parse(o->log_level, &lvl) < 0)
        return qerr_set(err, "[agent] log_level: '%s' is not one of debug, info, warning, error, critical",
                        o->log_level);
    return 0;
}

const char *agent_config_help(void)
{
    return
        "Configuration keys of [agent] (file: --config, $QUINCE_CONFIG or /etc/quince/quince.conf;\n"
        "each can be overridden by the environment as QUINCE_AGENT_<KEY>):\n"
        "  uuid                    agent id, 'generate' (kept in state_dir) or 'hash_ek' [generate]\n"
        "  ip, port                address the REST API binds to [127.0.0.1, 9002]\n"
        "  contact_ip, contact_port  address given to the registrar [ip, port]\n"
        "  registrar_ip, registrar_port  registrar [127.0.0.1, 8890]\n"
        "  tcti                    TPM connection [device:/dev/tpmrm0]; e.g. swtpm:path=/run/swtpm.sock\n"
        "  ek_handle               persistent EK handle, e.g. 0x81010001 [create from the default template]\n"
        "  tpm_hash_alg            quoted PCR bank and AK hash: sha1|sha256|sha384|sha512 [sha256]\n"
        "  tpm_encryption_alg      EK/AK key type: rsa|ecc [rsa]\n"
        "  tpm_signing_alg         AK scheme: rsassa (rsa) | ecdsa (ecc) [follows the key type]\n"
        "  ima_ml_path             IMA ASCII list [/sys/kernel/security/ima/ascii_runtime_measurements]\n"
        "  measuredboot_ml_path    UEFI event log, sent as mb_measurement_list when a quote's mask\n"
        "                          holds PCR 0 [/sys/kernel/security/tpm0/binary_bios_measurements]\n"
        "  state_dir               AK, uuid and other state [/var/lib/quince/agent]\n"
        "  run_as                  user[:group] to drop to after opening the list and the TPM [keep]\n"
        "  tpm_timeout_ms          bound on each TPM command [10000]\n"
        "  tpm_release             close the TPM connection after each request, so another process\n"
        "                          (quince-agent ima-emulator on a raw swtpm) can use it [false]\n"
        "  max_ima_bytes           largest measurement-list chunk served [67108864]\n"
        "  registrar_retry_ms, registrar_retry_max_ms, registrar_max_retries\n"
        "                          registration back-off [1000, 60000, 0 = for ever]\n"
        "  log_level               debug|info|warning|error|critical [info]\n"
        "  metrics_listen          ip:port serving Prometheus GET /metrics, plain HTTP [off]\n"
        "  revocation_cert         certificate that signs revocation messages\n"
        "                          [default = secure_dir/unzipped/RevocationNotifier-cert.crt]\n"
        "  revocation_actions      actions (files in revocation_actions_dir) run on a verified\n"
        "                          revocation, comma-separated [none]\n"
        "  revocation_actions_dir  [/usr/libexec/quince]\n"
        "  allow_payload_revocation_actions  also run the payload's unzipped/action_list [true]\n"
        "  revocation_action_timeout_ms  each action is killed after this [30000]\n"
        "  log_format              text (Keylime's layout) or json (one object per line) [text]\n"
        "  max_payload_size        largest payload a tenant may deliver, 0 = no payloads [1048576]\n"
        "  secure_dir, secure_size tmpfs for the decrypted payload [state_dir/secure, 1048576]: the\n"
        "                          agent mounts one there when it may, else it must be on a tmpfs\n"
        "                          already (e.g. under /dev/shm or /run); the agent will not start\n"
        "                          otherwise (max_payload_size = 0 needs none)\n"
        "  payload_script          script run from the unzipped payload [autorun.sh]; only with mTLS\n"
        "                          or enable_insecure_payload = true [false]\n"
        "  extract_payload_zip     unpack a zip payload [true]\n"
        "  trusted_client_ca       the verifier's CA certificate (its tls_dir/cacert.pem); the API is\n"
        "                          served over TLS to clients whose certificate chains to it [required]\n"
        "  insecure                plain HTTP to anyone, mtls_cert \"disabled\": debugging only [false]\n";
}
