/* attest.c — one attestation round's checks (attest.h). */
#include "attest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "attest_mb.h"
#include "hex.h"
#include "ima_entry.h"
#include "ima_verify.h"
#include "log.h"

#define ENGINE_SLOTS 4
#define MOD "verifier"

typedef struct eslot {
    vpolicy_ref *ref;         /* held while the engine exists */
    qhash_alg bank;
    qima_verifier *v;
    uint64_t used;
} eslot;

struct vattest_ctx {
    vattest_opts o;
    vpolicy_ref *empty;
    eslot slots[ENGINE_SLOTS];
    uint64_t tick;
    char *tail;               /* QIMA_MAX_LINE + 2: a final line without '\n' */
    /* the round being collected */
    vattest_out *out;
    int64_t now;
    char first_event[128];
    vmb_scratch mb;           /* measured boot: decode buffer, replay, boot aggregates */
};

static const char *const def_hash[] = { "sha512", "sha384", "sha256", NULL };
static const char *const def_enc[] = { "ecc", "rsa", NULL };
static const char *const def_sign[] = { "ecschnorr", "rsassa", NULL };

/* ---- memory, context ---------------------------------------------------------------------- */

void vattest_mem_clear(vattest_mem *m)
{
    if (!m)
        return;
    qak_free(&m->ak);
    free(m->pubkey);
    vjson_share_put(m->tpm_policy);
    for (int i = 0; i < 3; i++)
        vjson_share_put(m->accept[i]);
    qkeyring_free(m->keyring);
    vmb_agent_clear(&m->mb);
    memset(m, 0, sizeof *m);
}

vattest_ctx *vattest_ctx_new(const vattest_opts *o, qerr *err)
{
    vattest_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    if (o)
        c->o = *o;
    c->tail = malloc((size_t)QIMA_MAX_LINE + 2);
    qpolicy *e = qpolicy_empty(err);
    c->empty = e ? vpolicy_ref_wrap(e, err) : NULL;
    if (!c->tail || !c->empty) {
        if (!c->empty)
            qpolicy_free(e);
        else
            qerr_set(err, "out of memory");
        vattest_ctx_free(c);
        return NULL;
    }
    return c;
}

static void slot_clear(eslot *s)
{
    qima_verifier_free(s->v);
    vpolicy_ref_release(s->ref);
    memset(s, 0, sizeof *s);
}

void vattest_ctx_free(vattest_ctx *c)
{
    if (!c)
        return;
    for (int i = 0; i < ENGINE_SLOTS; i++)
        slot_clear(&c->slots[i]);
    vpolicy_ref_release(c->empty);
    vmb_scratch_clear(&c->mb);
    free(c->tail);
    free(c);
}

void vattest_out_free(vattest_out *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->nfailures; i++)
        vfailure_free(&o->failures[i]);
    free(o->failures);
    free(o->st.learned_ima_keyrings);
    memset(o, 0, sizeof *o);
}

/* ---- failure records ---------------------------------------------------------------------- */

static void record(vattest_out *out, int64_t now, char *first, size_t first_cap, uint64_t entry,
                   const char *path, size_t path_len, const char *event_id, const char *reason)
{
    if (out->total_failures++ == 0 && first)
        snprintf(first, first_cap, "%s", event_id);
    if (out->nfailures >= VATTEST_MAX_FAILURES)
        return;
    if (out->nfailures % 16 == 0) {
        vfailure *a = realloc(out->failures, (out->nfailures + 16) * sizeof *a);
        if (!a)
            return;
        out->failures = a;
    }
    vfailure *f = &out->failures[out->nfailures];
    memset(f, 0, sizeof *f);
    f->entry = entry;
    f->path = strndup(path ? path : "", path ? path_len : 0);
    f->event_id = strdup(event_id);
    f->reason = strdup(reason ? reason : "");
    f->time = now;
    if (!f->path || !f->event_id || !f->reason) {
        vfailure_free(f);
        return;
    }
    out->nfailures++;
}

static void add(vattest_ctx *c, const char *event_id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(vattest_ctx *c, const char *event_id, const char *fmt, ...)
{
    char reason[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    record(c->out, c->now, c->first_event, sizeof c->first_event, UINT64_MAX, "", 0, event_id, reason);
}

static void on_mb_failure(void *ctx, const char *event_id, const char *reason)
{
    vattest_ctx *c = ctx;
    record(c->out, c->now, c->first_event, sizeof c->first_event, UINT64_MAX, "", 0, event_id, reason);
}

static void on_ima_failure(void *ctx, const qima_failure *f)
{
    vattest_ctx *c = ctx;
    record(c->out, c->now, c->first_event, sizeof c->first_event, f->entry, f->path, f->path_len, f->event_id,
           f->message);
}

static void set_failed(vagent_state *st, const char *event_id)
{
    st->severity_level = VATTEST_SEVERITY_MAX;
    snprintf(st->last_event_id, sizeof st->last_event_id, "%s", event_id);
}

void vattest_fail(vattest_out *out, const vagent *a, int64_t now, vattest_outcome oc, const char *event_id,
                  const char *reason)
{
    memset(out, 0, sizeof *out);
    out->st = a->st;
    out->st.learned_ima_keyrings = NULL;
    out->outcome = oc;
    record(out, now, NULL, 0, UINT64_MAX, "", 0, event_id, reason);
    set_failed(&out->st, event_id);
}

/* ---- small helpers -------------------------------------------------------------------------- */

const char *vattest_enc_norm(const char *s)
{
    if (!s)
        return "";
    if (strcmp(s, "rsa2048") == 0)
        return "rsa";
    if (strcmp(s, "ecc256") == 0)
        return "ecc";
    return s;
}

/* Is alg in the parsed JSON array (or the defaults when there is no array)? */
static bool accepted(const cJSON *arr, const char *const *defaults, const char *alg, bool enc)
{
    const char *want = enc ? vattest_enc_norm(alg) : alg;
    bool ok = false;
    if (cJSON_IsArray(arr)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            if (cJSON_IsString(it) &&
                strcmp(enc ? vattest_enc_norm(it->valuestring) : it->valuestring, want) == 0) {
                ok = true;
                break;
            }
        }
    } else {
        for (size_t i = 0; defaults[i]; i++)
            if (strcmp(defaults[i], want) == 0)
                ok = true;
    }
    return ok;
}

/* A JSON integer >= 0 (cJSON keeps numbers as doubles: integral and exactly representable). */
static int json_uint(const cJSON *it, uint64_t *out)
{
    if (!cJSON_IsNumber(it))
        return -1;
    double d = it->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || (double)(uint64_t)d != d)
        return -1;
    *out = (uint64_t)d;
    return 0;
}

/* ---- engines ----------------------------------------------------------------------------- */

static qima_verifier *new_engine(vattest_ctx *c, vpolicy_ref *ref, qhash_alg bank, const qkeyring *kr,
                                 qerr *err)
{
    qima_opts o = {
        .policy = vpolicy_ref_policy(ref),
        .bank = bank,
        .violations_fail = c->o.violations_fail,
        .agent_keyring = kr,
        .on_failure = on_ima_failure,
        .cb_ctx = c,
        .log = c->o.log,
    };
    return qima_verifier_new(&o, err);
}

/* An engine for (policy, bank): cached per worker; an agent keyring gets a one-round engine
 * (*own set: the caller frees it). */
static qima_verifier *get_engine(vattest_ctx *c, vpolicy_ref *ref, qhash_alg bank, const qkeyring *kr,
                                 bool *own, qerr *err)
{
    *own = false;
    if (kr) {
        *own = true;
        return new_engine(c, ref, bank, kr, err);
    }
    uint64_t serial = vpolicy_ref_serial(ref);
    eslot *victim = &c->slots[0];
    for (int i = 0; i < ENGINE_SLOTS; i++) {
        eslot *s = &c->slots[i];
        if (s->v && s->bank == bank && vpolicy_ref_serial(s->ref) == serial) {
            s->used = ++c->tick;
            return s->v;
        }
        if (!s->v || (victim->v && s->used < victim->used))
            victim = s;
    }
    slot_clear(victim);
    qima_verifier *v = new_engine(c, ref, bank, NULL, err);
    if (!v)
        return NULL;
    victim->v = v;
    victim->ref = vpolicy_ref_retain(ref);
    victim->bank = bank;
    victim->used = ++c->tick;
    return v;
}

/* ---- the round ----------------------------------------------------------------------------- */

typedef struct answer {
    const char *quote, *hash_alg, *enc_alg, *sign_alg, *pubkey, *ml, *mb;
    size_t ml_len;
    bool has_entry, has_boot, more;
    uint64_t entry, boot;
} answer;

static const char *opt_string(const cJSON *r, const char *name, bool *bad)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(r, name);
    if (!it || cJSON_IsNull(it))
        return NULL;
    if (!cJSON_IsString(it)) {
        *bad = true;
        return NULL;
    }
    return it->valuestring;
}

/* Step 1. Returns 0, or the outcome of the failure. */
static vattest_outcome read_answer(vattest_ctx *c, const cJSON *r, answer *a)
{
    memset(a, 0, sizeof *a);
    if (!cJSON_IsObject(r)) {
        add(c, "qoute_validation.invalid_data", "the quote answer has no results object");
        return VATTEST_FAILED;
    }
    const char *missing = NULL;
    const char *names[4] = { "quote", "hash_alg", "enc_alg", "sign_alg" };
    const char **dst[4] = { &a->quote, &a->hash_alg, &a->enc_alg, &a->sign_alg };
    for (int i = 0; i < 4; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(r, names[i]);
        if (!cJSON_IsString(it)) {
            missing = names[i];
            break;
        }
        *dst[i] = it->valuestring;
    }
    if (missing) {
        add(c, "qoute_validation.invalid_data", "the quote answer has no string field \"%s\"", missing);
        return VATTEST_INVALID_QUOTE;
    }
    bool bad = false;
    a->pubkey = opt_string(r, "pubkey", &bad);
    if (bad) {
        add(c, "qoute_validation.invalid_data", "\"pubkey\" is not a string");
        return VATTEST_INVALID_QUOTE;
    }
    a->ml = opt_string(r, "ima_measurement_list", &bad);
    if (bad) {
        add(c, "qoute_validation.invalid_data", "\"ima_measurement_list\" is not a string");
        return VATTEST_INVALID_QUOTE;
    }
    a->ml_len = a->ml ? strlen(a->ml) : 0;
    a->mb = opt_string(r, "mb_measurement_list", &bad);
    if (bad) {
        add(c, "qoute_validation.invalid_data", "\"mb_measurement_list\" is not a string");
        return VATTEST_INVALID_QUOTE;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "ima_measurement_list_entry");
    if (e && !cJSON_IsNull(e)) {
        if (json_uint(e, &a->entry) < 0) {
            add(c, "qoute_validation.invalid_data", "\"ima_measurement_list_entry\" is not a non-negative integer");
            return VATTEST_FAILED;
        }
        a->has_entry = true;
    }
    /* Quince's agents serve a list longer than their max_ima_bytes in pieces and say so. */
    a->more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ima_measurement_list_more"));
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(r, "boottime");
    if (b && !cJSON_IsNull(b)) {
        if (json_uint(b, &a->boot) < 0) {
            add(c, "qoute_validation.invalid_data", "\"boottime\" is not a non-negative integer");
            return VATTEST_FAILED;
        }
        a->has_boot = true;
    }
    return VATTEST_PASS;
}

/* Step 6: the static tpm_policy PCRs. */
static void check_tpm_policy(vattest_ctx *c, const cJSON *pol, const qpcrblob *pcrs)
{
    if (!cJSON_IsObject(pol))
        return;
    size_t hs = qhash_size(pcrs->bank);
    char missing[QQUOTE_NUM_PCRS * 4 + 8];
    size_t mlen = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, pol) {
        int n;
        if (!vattest_pcr_key(it->string, &n) || n == 10 || n == 16)
            continue;
        if (!(pcrs->mask & (1u << n))) {
            mlen += (size_t)snprintf(missing + mlen, sizeof missing - mlen, "%s%d", mlen ? ", " : "", n);
            continue;
        }
        char hex[2 * QHASH_MAX_SIZE + 1];
        qhex_encode(pcrs->value[n], hs, hex);
        bool ok = false;
        if (cJSON_IsString(it)) {
            ok = strcasecmp(it->valuestring, hex) == 0;
        } else if (cJSON_IsArray(it)) {
            const cJSON *v;
            cJSON_ArrayForEach(v, it) {
                if (cJSON_IsString(v) && strcasecmp(v->valuestring, hex) == 0) {
                    ok = true;
                    break;
                }
            }
        }
        if (!ok) {
            char ev[64];
            snprintf(ev, sizeof ev, "pcr_validation.invalid_pcr_%d", n);
            add(c, ev, "PCR #%d: %s from quote does not match expected value", n, hex);
            if (c->o.log)
                qlog(QLOG_ERROR, MOD, "PCR #%d: %s from quote does not match expected value", n, hex);
        }
    }
    if (mlen > 0) {
        add(c, "pcr_validation.missing_pcrs", "PCRs are missing in quote: [%s]", missing);
        if (c->o.log)
            qlog(QLOG_ERROR, MOD, "PCRs are missing in quote: [%s]", missing);
    }
}

/* The IMA state back to entry 0: running PCR, quote-progress memory and learned keyrings. */
static void reset_ima(vagent_state *st, vattest_mem *mem)
{
    free(st->learned_ima_keyrings);
    st->learned_ima_keyrings = NULL;
    st->next_ima_ml_entry = 0;
    st->pcr10_alg = QHASH_NONE;
    memset(st->pcr10, 0, sizeof st->pcr10);
    mem->progress_set = false;
    mem->prev_match = mem->prev_lines = 0;
    st->ima_good_total = 0;
}

/* Step 7. Returns the outcome so far (PASS when the replay ran, whatever it found). */
static vattest_outcome check_ima(vattest_ctx *c, const vattest_in *in, vattest_mem *mem, const answer *a,
                                 qhash_alg bank, const qpcrblob *pcrs, bool boot_changed, bool tpm_restarted)
{
    vagent_state *st = &c->out->st;
    const vagent *ag = in->agent;
    if (!a->ml) {
        add(c, "pcr_validation.unused_pcr_10", "PCR 10 is quoted but the answer has no IMA measurement list");
        return VATTEST_PASS;
    }
    uint64_t ret = a->has_entry ? a->entry : 0;
    qima_state start;
    qima_state_init(&start, bank);
    bool resume = false;          /* the replay continues from the stored state */
    if (ret == 0) {
        if (in->requested_entry != 0 || boot_changed || tpm_restarted) {
            reset_ima(st, mem);
            if (c->o.log && in->requested_entry != 0)
                qlog(QLOG_INFO, MOD, "agent %s restarted its measurement list at entry 0 (asked for %" PRIu64
                     "): replaying it from the start", ag->agent_id, in->requested_entry);
        }
    } else if (ret != in->requested_entry) {
        add(c, "qoute_validation.invalid_ima_entry_nb",
            "the agent returned the list from entry %" PRIu64 ", asked for %" PRIu64, ret, in->requested_entry);
        return VATTEST_INVALID_QUOTE;
    } else if (boot_changed || tpm_restarted || ag->st.pcr10_alg != bank || ag->st.next_ima_ml_entry != ret) {
        /* tpm_restarted: the TPM was reset or restarted since the stored quote, so PCR 10 may
         * have started again from zero under a new list. An agent whose new list is already
         * longer than the stored next entry answers from that entry (not from 0), and replaying
         * it from the old running PCR would be a false failure; a pass would skip the new
         * list's head. Neither: reset and ask for entry 0 (nothing counted as checked). */
        reset_ima(st, mem);
        st->boottime = a->boot;
        if (c->o.log)
            qlog(QLOG_INFO, MOD, "agent %s: %s: attestation state reset, the next round reads the list from entry 0",
                 ag->agent_id, boot_changed ? "boot time changed (reboot)"
                 : tpm_restarted ? "TPM reset/restart counter changed (reboot)"
                 : "stored IMA state does not fit this quote");
        return VATTEST_REBOOT;
    } else {
        start.next_entry = ag->st.next_ima_ml_entry;
        memcpy(start.pcr.value, ag->st.pcr10, qhash_size(bank));
        resume = true;
    }
    start.progress_set = mem->progress_set;
    start.prev_match = mem->prev_match;
    start.prev_lines = mem->prev_lines;
    start.good_total = resume ? ag->st.ima_good_total : 0;

    qerr err = { 0 };
    const qkeyring *kr = mem->keyring;
    bool own = false;
    qima_verifier *v = get_engine(c, in->policy ? in->policy : c->empty, bank, kr, &own, &err);
    if (!v) {
        add(c, "internal.verifier.exception", "IMA engine: %s", err.msg);
        return VATTEST_FAILED;
    }
    /* The engine may be shared by agents (cached per policy and bank): it gets this agent's
     * learned keyrings now, or none when the list is replayed from entry 0. */
    qima_result res;
    vattest_outcome oc = VATTEST_PASS;
    if (!resume) {
        qima_verifier_reset_learned(v);
    } else {
        const char *lk = ag->st.learned_ima_keyrings;
        if (qima_verifier_import_learned(v, lk, lk ? strlen(lk) : 0, &err) < 0) {
            /* Unusable stored keyrings: replay from entry 0, which learns the keys again. */
            qima_verifier_reset_learned(v);
            reset_ima(st, mem);
            st->boottime = a->boot;
            if (c->o.log)
                qlog(QLOG_WARNING, MOD, "agent %s: stored learned IMA keyrings unusable (%s): attestation state "
                     "reset, the next round reads the list from entry 0", ag->agent_id, err.msg);
            oc = VATTEST_REBOOT;
            goto out;
        }
    }
    qima_verifier_set_agent(v, ag->agent_id);     /* a shared engine names this round's agent */
    if (qima_verifier_begin(v, &start, pcrs->value[10], qhash_size(bank), &err) < 0) {
        add(c, "internal.verifier.exception", "IMA engine: %s", err.msg);
        oc = VATTEST_FAILED;
        goto out;
    }
    if (a->more)
        qima_verifier_set_piece(v, true);
    /* With a replayed boot log, its boot aggregates are accepted too (Keylime adds them to the
     * policy's boot_aggregate digests); the engine only points at this worker's values. */
    qima_verifier_allow_boot_aggregates(v, c->mb.agg, c->mb.nagg);
    long k = qima_verifier_feed(v, a->ml, a->ml_len);
    if (k >= 0 && (size_t)k < a->ml_len) {
        size_t rest = a->ml_len - (size_t)k;    /* <= QIMA_MAX_LINE: longer lines are consumed */
        memcpy(c->tail, a->ml + k, rest);
        c->tail[rest] = '\n';
        k = qima_verifier_feed(v, c->tail, rest + 1);
    }
    if (k < 0 || qima_verifier_finish(v, &res) < 0) {
        if (k >= 0)
            qima_verifier_finish(v, &res);
        add(c, "internal.verifier.exception", "IMA engine: internal error");
        oc = VATTEST_FAILED;
        goto out;
    }
    c->out->ima_pending = res.pending;
    if (res.passed) {
        st->next_ima_ml_entry = res.next.next_entry;
        st->pcr10_alg = bank;
        memset(st->pcr10, 0, sizeof st->pcr10);
        memcpy(st->pcr10, res.next.pcr.value, qhash_size(bank));
        mem->progress_set = res.next.progress_set;
        mem->prev_match = res.next.prev_match;
        mem->prev_lines = res.next.prev_lines;
        st->ima_good_total = res.next.good_total;
        free(st->learned_ima_keyrings);
        st->learned_ima_keyrings = qima_verifier_export_learned(v, &err);
        if (!st->learned_ima_keyrings) {
            /* Keys that cannot be kept: the next round replays from entry 0 and learns them. */
            reset_ima(st, mem);
            if (c->o.log)
                qlog(QLOG_WARNING, MOD, "agent %s: learned IMA keyrings not kept (%s): the next round reads "
                     "the list from entry 0", ag->agent_id, err.msg);
        }
    } else {
        reset_ima(st, mem);
    }
out:
    if (own)
        qima_verifier_free(v);
    return oc;
}

static void load_agent_mem(vattest_ctx *c, const vagent *ag, vattest_mem *mem)
{
    if (!mem->tpm_policy_parsed) {
        mem->tpm_policy_parsed = true;
        mem->tpm_policy = vjson_share_get(ag->tpm_policy);
    }
    if (!mem->accept_parsed) {
        mem->accept_parsed = true;
        const char *lists[3] = { ag->accept_tpm_hash_algs, ag->accept_tpm_encryption_algs,
                                 ag->accept_tpm_signing_algs };
        for (int i = 0; i < 3; i++)
            mem->accept[i] = vjson_share_get(lists[i]);
    }
    if (!mem->keyring_parsed) {
        mem->keyring_parsed = true;
        const char *k = ag->ima_sign_verification_keys;
        if (k && *k && strcmp(k, "null") != 0 && strcmp(k, "\"\"") != 0) {
            qerr err = { 0 };
            mem->keyring = qkeyring_from_json(k, strlen(k), &err);
            if (!mem->keyring && c->o.log)
                qlog(QLOG_WARNING, MOD, "agent %s: ima_sign_verification_keys ignored: %s", ag->agent_id, err.msg);
        }
    }
}

vattest_outcome vattest_round(vattest_ctx *c, const vattest_in *in, vattest_mem *mem, vattest_out *out)
{
    memset(out, 0, sizeof *out);
    const vagent *ag = in->agent;
    out->st = ag->st;
    /* A copy that follows the IMA state: kept while it is untouched, replaced by a passing
     * replay, dropped by every reset and on failure. */
    out->st.learned_ima_keyrings = NULL;
    if (ag->st.learned_ima_keyrings && ag->st.next_ima_ml_entry != 0)
        out->st.learned_ima_keyrings = strdup(ag->st.learned_ima_keyrings);
    out->st.last_received_quote = in->now;
    c->out = out;
    c->now = in->now;
    c->first_event[0] = '\0';
    vattest_outcome oc;
    qerr err = { 0 };
    answer a;
    qhash_alg bank = QHASH_NONE;
    qquote_result q;

    /* 1. fields */
    if ((oc = read_answer(c, in->results, &a)) != VATTEST_PASS)
        goto done;
    snprintf(out->hash_alg, sizeof out->hash_alg, "%s", a.hash_alg);
    snprintf(out->enc_alg, sizeof out->enc_alg, "%s", a.enc_alg);
    snprintf(out->sign_alg, sizeof out->sign_alg, "%s", a.sign_alg);

    /* 2. algorithms (the record's lists, tpm_policy and keyring are parsed once per record) */
    load_agent_mem(c, ag, mem);
    oc = VATTEST_INVALID_QUOTE;
    if (qhash_from_name(a.hash_alg, &bank) < 0 || !accepted(vjson_share_json(mem->accept[0]), def_hash, a.hash_alg, false)) {
        add(c, "qoute_validation.invalid_hash_alg", "TPM hash algorithm %s is not accepted", a.hash_alg);
        goto done;
    }
    if (!accepted(vjson_share_json(mem->accept[1]), def_enc, a.enc_alg, true)) {
        add(c, "qoute_validation.invalid_enc_alg", "TPM encryption algorithm %s is not accepted", a.enc_alg);
        goto done;
    }
    if (!accepted(vjson_share_json(mem->accept[2]), def_sign, a.sign_alg, false)) {
        add(c, "qoute_validation.invalid_sign_alg", "TPM signing algorithm %s is not accepted", a.sign_alg);
        goto done;
    }

    /* 3. the quote */
    if (!mem->ak_loaded) {
        if (!ag->ak_tpm || qak_load_b64(&mem->ak, ag->ak_tpm, strlen(ag->ak_tpm), &err) < 0) {
            add(c, "qoute_validation.quote_validation", "Quote data validation: AK unusable: %s",
                ag->ak_tpm ? err.msg : "no AK");
            goto done;
        }
        mem->ak_loaded = true;
    }
    const char *nonce = in->nonce ? in->nonce : "";
    if (qquote_check(&mem->ak, a.quote, strlen(a.quote), (const uint8_t *)nonce, strlen(nonce), bank, &q,
                     &err) < 0) {
        add(c, "qoute_validation.quote_validation", "Quote data validation: %s", err.msg);
        if (c->o.log)
            qlog(QLOG_ERROR, MOD, "quote from agent %s failed validation: %s", ag->agent_id, err.msg);
        goto done;
    }

    /* 4. clock */
    bool boot_changed = a.boot != ag->st.boottime;
    /* resetCount/restartCount differ from the stored clock info: the TPM went through a reset
     * or restart (a reboot, or a resume) since the last stored quote. The IMA replay must not
     * continue from the stored state then (step 7 re-requests from entry 0). */
    bool tpm_restarted = ag->st.clock_set && (q.attest.clock.reset_count != ag->st.reset_count ||
                                              q.attest.clock.restart_count != ag->st.restart_count);
    if (boot_changed || tpm_restarted || !ag->st.clock_set)
        out->st.mb_evaluated = false;      /* a new boot: judge its boot log afresh */
    bool evidence = (a.has_entry && a.entry == 0 && in->requested_entry != 0) ||
                    (boot_changed && ag->st.boottime != 0);
    qclockinfo prev = { .clock = 0, .reset_count = 0, .restart_count = 0, .safe = 1 };
    if (ag->st.clock_set) {
        prev.clock = ag->st.clock;
        prev.reset_count = ag->st.reset_count;
        prev.restart_count = ag->st.restart_count;
    }
    if (qclock_check(&prev, &q.attest.clock, &err) < 0) {
        if (!(evidence && q.attest.clock.safe == 1)) {
            add(c, "qoute_validation.quote_validation", "Validation of clockinfo from quote: %s", err.msg);
            if (c->o.log)
                qlog(QLOG_ERROR, MOD, "quote from agent %s failed the clock check: %s", ag->agent_id, err.msg);
            goto done;
        }
        if (c->o.log)
            qlog(QLOG_INFO, MOD, "agent %s rebooted: TPM clock info restarts (%s)", ag->agent_id, err.msg);
    }

    /* 5. PCR 16 */
    const char *pk = a.pubkey ? a.pubkey : mem->pubkey;
    if (!pk) {
        add(c, "qoute_validation.no_pubkey", "the agent sent no public key and none is cached");
        goto done;
    }
    /* A TPM that restarted since the stored quote extended PCR 16 anew, with the key of an agent
     * that may have restarted too (a new payload key), which a partial answer does not carry:
     * the cached key proves nothing either way, so the round is a reboot and is not judged. */
    bool pk_stale = false;
    if (!(q.pcrs.mask & (1u << 16))) {
        add(c, "pcr_validation.missing_pcr_16", "PCR 16 (the payload key binding) is not in the quote");
    } else {
        uint8_t want[QHASH_MAX_SIZE];
        if (qquote_pcr16_expected(bank, pk, strlen(pk), want, &err) < 0 ||
            memcmp(want, q.pcrs.value[16], qhash_size(bank)) != 0) {
            if (!a.pubkey && (tpm_restarted || (boot_changed && ag->st.boottime != 0))) {
                pk_stale = true;
                goto pcr16_done;
            }
            add(c, "pcr_validation.invalid_pcr_16", "PCR #16: invalid bind data");
            if (c->o.log)
                qlog(QLOG_ERROR, MOD, "agent %s: PCR #16: invalid bind data", ag->agent_id);
        } else if (a.pubkey && (!mem->pubkey || strcmp(mem->pubkey, a.pubkey) != 0)) {
            char *dup = strdup(a.pubkey);
            if (dup) {
                out->pubkey_changed = mem->pubkey != NULL;
                free(mem->pubkey);
                mem->pubkey = dup;
            }
        }
    }

pcr16_done:
    if (pk_stale && out->total_failures == 0) {
        reset_ima(&out->st, mem);
        out->st.boottime = a.boot;
        out->st.clock = q.attest.clock.clock;
        out->st.reset_count = q.attest.clock.reset_count;
        out->st.restart_count = q.attest.clock.restart_count;
        out->st.clock_set = true;
        if (c->o.log)
            qlog(QLOG_INFO, MOD, "agent %s: TPM restarted (reboot) and the answer has no public key: attestation "
                 "state reset, the next round asks for the key and the list from entry 0", ag->agent_id);
        oc = VATTEST_REBOOT;
        goto done;
    }

    /* 6. static PCRs */
    check_tpm_policy(c, vjson_share_json(mem->tpm_policy), &q.pcrs);

    /* 6b. measured boot (attest_mb.h) */
    vmb_round_in mi = {
        .agent_id = ag->agent_id, .mb_policy = ag->mb_policy, .log_b64 = a.mb, .bank = bank, .pcrs = &q.pcrs,
        .accept_all = c->o.mb_accept_all, .evaluate_always = c->o.mb_evaluate_always, .log = c->o.log,
    };
    vmb_round(&c->mb, &mem->mb, &mi, &out->st.mb_evaluated, on_mb_failure, c);

    /* 7. IMA */
    oc = VATTEST_PASS;
    if (q.pcrs.mask & (1u << 10))
        oc = check_ima(c, in, mem, &a, bank, &q.pcrs, boot_changed, tpm_restarted);
    if (out->total_failures > 0 && (oc == VATTEST_PASS || oc == VATTEST_REBOOT))
        oc = VATTEST_INVALID_QUOTE;
    if (oc == VATTEST_PASS || oc == VATTEST_REBOOT) {
        out->st.clock = q.attest.clock.clock;
        out->st.reset_count = q.attest.clock.reset_count;
        out->st.restart_count = q.attest.clock.restart_count;
        out->st.clock_set = true;
        out->st.boottime = a.boot;
    }
    if (oc == VATTEST_PASS && !out->ima_pending) {   /* a piece proves nothing yet: not counted */
        out->st.attestation_count++;
        out->st.last_successful_attestation = in->now;
    }

done:
    out->outcome = oc;
    if (oc == VATTEST_INVALID_QUOTE || oc == VATTEST_FAILED) {
        free(out->st.learned_ima_keyrings);
        out->st.learned_ima_keyrings = NULL;
        set_failed(&out->st, c->first_event[0] ? c->first_event : "internal.verifier.exception");
    }
    c->out = NULL;
    return oc;
}
