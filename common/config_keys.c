/* config_keys.c — every section and key of quince.conf (see config_keys.h).
 * To add a key: one line in its section's table, then the key's entry in docs/configuration.md.
 * To add a section: a table and a line in qconfig_known. Order does not matter. */
#include "config_keys.h"

#include <strings.h>

static const qconfig_key agent_keys[] = {
    {"uuid", 0}, {"ip", 0}, {"port", 0}, {"contact_ip", 0}, {"contact_port", 0},
    {"registrar_ip", 0}, {"registrar_port", 0}, {"tcti", 0}, {"ek_handle", 0},
    {"tpm_hash_alg", 0}, {"tpm_encryption_alg", 0}, {"tpm_signing_alg", 0},
    {"ima_ml_path", 0}, {"measuredboot_ml_path", 0}, {"state_dir", 0}, {"run_as", 0},
    {"tpm_timeout_ms", 0},
    {"tpm_release", 0}, {"max_ima_bytes", 0}, {"registrar_retry_ms", 0},
    {"registrar_retry_max_ms", 0}, {"registrar_max_retries", 0}, {"log_level", 0},
    {"secure_dir", 0}, {"secure_size", 0}, {"payload_script", 0},
    {"enable_insecure_payload", 0}, {"extract_payload_zip", 0}, {"max_payload_size", 0},
    {"trusted_client_ca", 0}, {"insecure", 0}, {"log_format", 0},
    {"metrics_listen", 0}, {"revocation_cert", 0}, {"revocation_actions", 0},
    {"revocation_actions_dir", 0}, {"allow_payload_revocation_actions", 0},
    {"revocation_action_timeout_ms", 0},
    {NULL, 0},
};

static const qconfig_key verifier_keys[] = {
    {"ip", 0}, {"port", 0}, {"database", 0}, {"quote_interval", 0}, {"max_retries", 0},
    {"retry_interval", 0}, {"exponential_backoff", 0}, {"request_timeout_ms", 0},
    {"max_upload_size", 0}, {"ima_violations", 0}, {"num_workers", 0},
    {"accept_tpm_hash_algs", 0}, {"accept_tpm_encryption_algs", 0},
    {"accept_tpm_signing_algs", 0}, {"verifier_id", 0}, {"log_level", 0}, {"tls_dir", 0},
    {"server_cert", 0}, {"server_key", 0}, {"trusted_client_ca", 0}, {"client_cert", 0},
    {"client_key", 0}, {"insecure", 0}, {"allow_agent_plain_http", 0}, {"log_format", 0},
    {"metrics_listen", 0}, {"require_allow_list_signatures", 0},
    {"measured_boot_policy_name", 0}, {"measured_boot_evaluate", 0},
    {"registrar_url", 0}, {"registrar_ca_cert", 0},
    {"state_checkpoint_rounds", 0}, {"state_checkpoint_interval", 0},
    {"lease_ttl", 0},
    {NULL, 0},
};

static const qconfig_key registrar_keys[] = {
    {"ip", 0}, {"port", 0}, {"tls_port", 0}, {"tpm_cert_store", 0}, {"require_ek_cert", 0},
    {"log_level", 0}, {"max_pending_registrations", 0}, {"pending_max_age", 0},
    {"max_failed_activations", 0}, {"registrations_per_minute", 0},
    {NULL, 0},
};

static const qconfig_key tenant_keys[] = {
    {"verifier_ip", 0}, {"verifier_port", 0}, {"verifier_id", 0}, {"registrar_ip", 0},
    {"registrar_port", 0}, {"insecure", 0}, {"tls_dir", 0}, {"ca_cert", 0},
    {"client_cert", 0}, {"client_key", 0}, {"allowlist", 0}, {"ima_excludelist", 0},
    {"tpm_policy", 0}, {"accept_tpm_hash_algs", 0}, {"accept_tpm_encryption_algs", 0},
    {"accept_tpm_signing_algs", 0}, {"request_timeout_ms", 0}, {"connect_timeout_ms", 0},
    {"max_payload_size", 0}, {"verify_timeout_ms", 0}, {"log_level", 0}, {"log_format", 0},
    {"agent_mtls", 0}, {"mb_refstate", 0},
    {NULL, 0},
};

static const qconfig_key revocations_keys[] = {
    {"enabled_revocation_notifications", 0}, {"webhook_url", 0}, {"webhook_ca_cert", 0},
    {"webhook_max_retries", 0}, {"webhook_retry_interval_ms", 0}, {"webhook_timeout_ms", 0},
    {"signing_key", 0},
    {NULL, 0},
};

const qconfig_section_def qconfig_known[] = {
    {"agent", agent_keys},
    {"verifier", verifier_keys},
    {"registrar", registrar_keys},
    {"tenant", tenant_keys},
    {"revocations", revocations_keys},
    {NULL, NULL},
};

const qconfig_section_def *qconfig_known_section(const char *name)
{
    for (const qconfig_section_def *s = qconfig_known; name && s->name; s++)
        if (strcasecmp(s->name, name) == 0)
            return s;
    return NULL;
}

const qconfig_key *qconfig_known_key(const qconfig_section_def *s, const char *key)
{
    for (const qconfig_key *k = s ? s->keys : NULL; k && key && k->name; k++)
        if (strcasecmp(k->name, key) == 0)
            return k;
    return NULL;
}
