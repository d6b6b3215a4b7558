/* api_status.c — the status object of GET /v{v}/agents/{id} (keylime-formats §5.2) plus Quince's
 * fields: operational_state_name, consecutive_failures, max_retries, last_error (why an agent in
 * retry is retrying, from ops_hooks.h), next_ima_ml_entry, runtime_policy_name and
 * failures (the entries that failed in the agent's last failed round). */
#include "api_int.h"
#include "ops_hooks.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_FAILURES_SHOWN 1000

static const char *attestation_status(int state)
{
    switch (state) {
    case VSTATE_FAILED:
    case VSTATE_INVALID_QUOTE:
    case VSTATE_TENANT_FAILED:
        return "FAIL";
    case VSTATE_GET_QUOTE:
    case VSTATE_GET_QUOTE_RETRY:
    case VSTATE_PROVIDE_V:
    case VSTATE_PROVIDE_V_RETRY:
        return "PASS";
    default:
        return "PENDING";
    }
}

static void add_str_or_null(cJSON *o, const char *key, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* A stored JSON array text as an array (as Keylime returns the lists); the text itself if it
 * does not parse. */
static void add_json_list(cJSON *o, const char *key, const char *text)
{
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    if (v)
        cJSON_AddItemToObject(o, key, v);
    else if (text)
        cJSON_AddStringToObject(o, key, text);
    else
        cJSON_AddItemToObject(o, key, cJSON_CreateArray());
}

static int add_failure(void *ctx, const vfailure *f)
{
    cJSON *arr = ctx;
    if (cJSON_GetArraySize(arr) >= MAX_FAILURES_SHOWN)
        return 0;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return 0;
    if (f->entry == UINT64_MAX)
        cJSON_AddNullToObject(o, "entry");
    else
        cJSON_AddNumberToObject(o, "entry", (double)f->entry);
    cJSON_AddStringToObject(o, "path", f->path ? f->path : "");
    cJSON_AddStringToObject(o, "event_id", f->event_id ? f->event_id : "");
    cJSON_AddStringToObject(o, "reason", f->reason ? f->reason : "");
    cJSON_AddItemToArray(arr, o);
    return 0;
}

cJSON *vapi_status(const vapi_ctx *c, const vagent *a, qerr *err)
{
    const vagent_state *st = &a->st;
    vpolicy pol;
    memset(&pol, 0, sizeof pol);
    int have_pol = 0;
    if (a->policy_id > 0) {
        have_pol = vstore_policy_get_by_id(c->store, a->policy_id, &pol, err);
        if (have_pol < 0)
            return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *fails = cJSON_CreateArray();
    if (!o || !fails) {
        cJSON_Delete(o);
        cJSON_Delete(fails);
        if (have_pol > 0)
            vpolicy_free(&pol);
        qerr_set(err, "out of memory");
        return NULL;
    }
    char buf[64];
    cJSON_AddNumberToObject(o, "operational_state", st->operational_state);
    cJSON_AddStringToObject(o, "operational_state_name", vstate_name(st->operational_state));
    /* V stays with the verifier: it goes to the agent only (PROVIDE_V), never back out. */
    cJSON_AddNullToObject(o, "v");
    add_str_or_null(o, "ip", a->ip);
    cJSON_AddNumberToObject(o, "port", (double)a->port);
    add_str_or_null(o, "tpm_policy", a->tpm_policy);
    cJSON_AddStringToObject(o, "meta_data", a->meta_data ? a->meta_data : "{}");
    cJSON_AddNumberToObject(o, "has_mb_refstate", a->mb_policy ? 1 : 0);
    add_str_or_null(o, "mb_policy_name", a->mb_policy ? a->mb_policy_name : NULL);
    cJSON_AddNumberToObject(o, "has_runtime_policy", have_pol > 0 && pol.generator > 1 ? 1 : 0);
    add_str_or_null(o, "runtime_policy_name", have_pol > 0 ? pol.name : NULL);
    add_json_list(o, "accept_tpm_hash_algs", a->accept_tpm_hash_algs);
    add_json_list(o, "accept_tpm_encryption_algs", a->accept_tpm_encryption_algs);
    add_json_list(o, "accept_tpm_signing_algs", a->accept_tpm_signing_algs);
    cJSON_AddStringToObject(o, "hash_alg", a->hash_alg ? a->hash_alg : "");
    cJSON_AddStringToObject(o, "enc_alg", a->enc_alg ? a->enc_alg : "");
    cJSON_AddStringToObject(o, "sign_alg", a->sign_alg ? a->sign_alg : "");
    cJSON_AddStringToObject(o, "verifier_id", a->verifier_id ? a->verifier_id : c->cfg->verifier_id);
    add_str_or_null(o, "verifier_ip", a->verifier_ip);
    cJSON_AddNumberToObject(o, "verifier_port", (double)a->verifier_port);
    if (st->severity_level >= 0)
        cJSON_AddNumberToObject(o, "severity_level", st->severity_level);
    else
        cJSON_AddNullToObject(o, "severity_level");
    add_str_or_null(o, "last_event_id", st->last_event_id[0] ? st->last_event_id : NULL);
    /* The poller writes rounds that changed only these counters at checkpoints
     * (state_checkpoint_rounds): its memory has them live. */
    vpoller_live live = { st->attestation_count, st->last_received_quote, st->last_successful_attestation };
    vpoller_live mem;
    if (c->poller && vpoller_agent_live(c->poller, a->agent_id, &mem)) {
        live.attestation_count = mem.attestation_count > live.attestation_count ? mem.attestation_count
                                                                                : live.attestation_count;
        live.last_received_quote = mem.last_received_quote > live.last_received_quote ? mem.last_received_quote
                                                                                      : live.last_received_quote;
        if (mem.last_successful_attestation > live.last_successful_attestation)
            live.last_successful_attestation = mem.last_successful_attestation;
    }
    cJSON_AddNumberToObject(o, "attestation_count", (double)live.attestation_count);
    cJSON_AddNumberToObject(o, "last_received_quote", (double)live.last_received_quote);
    cJSON_AddNumberToObject(o, "last_successful_attestation", (double)live.last_successful_attestation);
    cJSON_AddStringToObject(o, "attestation_status", attestation_status(st->operational_state));
    snprintf(buf, sizeof buf, "%gs", c->cfg->quote_interval);
    cJSON_AddStringToObject(o, "attestation_period", buf);
    /* Keylime's meaning: five quote intervals. */
    snprintf(buf, sizeof buf, "%gs", c->cfg->quote_interval * 5.0);
    cJSON_AddStringToObject(o, "maximum_attestation_interval", buf);
    cJSON_AddNumberToObject(o, "consecutive_failures", st->consecutive_failures);
    /* Quince: how many retries an agent gets, and why it is retrying now (null when not). */
    cJSON_AddNumberToObject(o, "max_retries", (double)c->cfg->max_retries);
    char last_err[VOPS_ERR_MAX];
    vops_last_error(c->ops, a->agent_id, last_err, sizeof last_err);
    add_str_or_null(o, "last_error", last_err[0] ? last_err : NULL);
    cJSON_AddNumberToObject(o, "next_ima_ml_entry", (double)st->next_ima_ml_entry);
    /* This verifier process's counters (0 when it does not poll the agent): tests and operators
     * wait for rounds instead of time. */
    uint64_t rounds = 0, requests = 0;
    if (c->poller)
        vpoller_agent_counts(c->poller, a->agent_id, &rounds, &requests);
    cJSON_AddNumberToObject(o, "rounds_completed", (double)rounds);
    cJSON_AddNumberToObject(o, "requests_sent", (double)requests);
    if (have_pol > 0)
        vpolicy_free(&pol);
    if (vstore_failures_get(c->store, a->agent_id, add_failure, fails, err) < 0) {
        cJSON_Delete(fails);
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddItemToObject(o, "failures", fails);
    return o;
}
