/* store_agent.c — verifier agents and their attestation state (vstore_agent_*, vstore_state_*,
 * vstore_set_state) and the names of the operational states. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The agent's own columns, then the state columns (vagent_state), in binding/reading order. */
#define AGENT_COLS                                                                               \
    "agent_id, ip, port, ak_tpm, mtls_cert, tpm_policy, policy_id, ima_sign_verification_keys, " \
    "meta_data, accept_tpm_hash_algs, accept_tpm_encryption_algs, accept_tpm_signing_algs, "     \
    "hash_alg, enc_alg, sign_alg, supported_version, v, verifier_id, verifier_ip, verifier_port, "  \
    "mb_policy_id"
#define STATE_COLS                                                                         \
    "operational_state, next_ima_ml_entry, pcr10_alg, pcr10, boottime, tpm_clock, "       \
    "tpm_reset_count, tpm_restart_count, attestation_count, last_received_quote, "        \
    "last_successful_attestation, consecutive_failures, severity_level, last_event_id, "  \
    "learned_ima_keyrings, mb_evaluated, ima_good_total"

const vstore_sql vstore_agent_sql[] = {
    { ST_AG_ADD,
      "INSERT INTO agents (" AGENT_COLS ", " STATE_COLS ", display_id) VALUES ("
      "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "  /* 21 agent columns */
      "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "              /* 17 state columns */
      "?"                                                                 /* display_id */
      ") ON CONFLICT (agent_id) DO NOTHING" },
    { ST_AG_GET, "SELECT " AGENT_COLS ", " STATE_COLS ", m.name, m.mb_policy, agents.display_id"
      " FROM agents LEFT JOIN mbpolicies m ON m.id = agents.mb_policy_id WHERE agent_id = ?1" },
    { ST_AG_DELETE, "DELETE FROM agents WHERE agent_id = ?1" },
    { ST_AG_SAVE_STATE,
      "UPDATE agents SET operational_state = ?, next_ima_ml_entry = ?, pcr10_alg = ?, pcr10 = ?,"
      " boottime = ?, tpm_clock = ?, tpm_reset_count = ?, tpm_restart_count = ?, attestation_count = ?,"
      " last_received_quote = ?, last_successful_attestation = ?, consecutive_failures = ?,"
      " severity_level = ?, last_event_id = ?, learned_ima_keyrings = ?, mb_evaluated = ?, ima_good_total = ?"
      " WHERE agent_id = ?" },
    /* The same, applied only while the lease row still names the round's owner and epoch
     * (store_lease.h): a verifier that lost the agent cannot overwrite the new owner's state. */
    { ST_AG_SAVE_FENCED,
      "UPDATE agents SET operational_state = ?, next_ima_ml_entry = ?, pcr10_alg = ?, pcr10 = ?,"
      " boottime = ?, tpm_clock = ?, tpm_reset_count = ?, tpm_restart_count = ?, attestation_count = ?,"
      " last_received_quote = ?, last_successful_attestation = ?, consecutive_failures = ?,"
      " severity_level = ?, last_event_id = ?, learned_ima_keyrings = ?, mb_evaluated = ?, ima_good_total = ?"
      " WHERE agent_id = ? AND EXISTS (SELECT 1 FROM leases l WHERE l.agent_id = agents.agent_id"
      " AND l.owner = ? AND l.epoch = ?)" },
    { ST_AG_SET_STATE, "UPDATE agents SET operational_state = ?2 WHERE agent_id = ?1" },
    { ST_AG_SET_ALGS, "UPDATE agents SET hash_alg = ?2, enc_alg = ?3, sign_alg = ?4 WHERE agent_id = ?1" },
    { ST_AG_LIST, "SELECT agent_id FROM agents ORDER BY agent_id" },
    { ST_AG_EXISTS, "SELECT 1 FROM agents WHERE agent_id = ?1" },
    { ST_AG_LIST_DISPLAY, "SELECT CASE WHEN display_id = '' THEN agent_id ELSE display_id END FROM agents"
                          " ORDER BY agent_id" },
    { ST_COUNT, NULL },
};

const char *vstate_name(int state)
{
    static const char *const names[] = {
        [VSTATE_REGISTERED] = "Registered",
        [VSTATE_START] = "Start",
        [VSTATE_SAVED] = "Saved",
        [VSTATE_GET_QUOTE] = "Get Quote",
        [VSTATE_GET_QUOTE_RETRY] = "Get Quote (retry)",
        [VSTATE_PROVIDE_V] = "Provide V",
        [VSTATE_PROVIDE_V_RETRY] = "Provide V (retry)",
        [VSTATE_FAILED] = "Failed",
        [VSTATE_TERMINATED] = "Terminated",
        [VSTATE_INVALID_QUOTE] = "Invalid Quote",
        [VSTATE_TENANT_FAILED] = "Tenant Quote Failed",
    };
    if (state < 0 || state >= (int)(sizeof names / sizeof names[0]))
        return "Unknown";
    return names[state];
}

void vagent_free(vagent *a)
{
    if (!a)
        return;
    free(a->ip);
    free(a->ak_tpm);
    free(a->mtls_cert);
    free(a->tpm_policy);
    free(a->ima_sign_verification_keys);
    free(a->meta_data);
    free(a->accept_tpm_hash_algs);
    free(a->accept_tpm_encryption_algs);
    free(a->accept_tpm_signing_algs);
    free(a->hash_alg);
    free(a->enc_alg);
    free(a->sign_alg);
    free(a->supported_version);
    free(a->v);
    free(a->verifier_id);
    free(a->verifier_ip);
    free(a->mb_policy);
    free(a->st.learned_ima_keyrings);
    memset(a, 0, sizeof *a);
    a->st.pcr10_alg = QHASH_NONE;
}

static int check_state(const vagent_state *st, const char *agent_id, qerr *err)
{
    if (st->pcr10_alg != QHASH_NONE && (st->pcr10_alg < 0 || st->pcr10_alg >= QHASH_COUNT))
        return qerr_setc(err, 400, "invalid pcr10 algorithm %d for agent %s", (int)st->pcr10_alg, agent_id);
    if (strnlen(st->last_event_id, sizeof st->last_event_id) >= sizeof st->last_event_id)
        return qerr_setc(err, 400, "last_event_id of agent %s is not terminated", agent_id);
    return 0;
}

static void bind_state(vbind *b, const vagent_state *st)
{
    vb_i64(b, st->operational_state);
    vb_u64(b, st->next_ima_ml_entry);
    if (st->pcr10_alg == QHASH_NONE) {
        vb_null(b);
        vb_null(b);
    } else {
        vb_text(b, qhash_name(st->pcr10_alg));
        vb_blob(b, st->pcr10, qhash_size(st->pcr10_alg));
    }
    vb_u64(b, st->boottime);
    if (st->clock_set) {
        vb_u64(b, st->clock);
        vb_i64(b, st->reset_count);
        vb_i64(b, st->restart_count);
    } else {
        vb_null(b);
        vb_null(b);
        vb_null(b);
    }
    vb_u64(b, st->attestation_count);
    vb_i64(b, st->last_received_quote);
    vb_i64(b, st->last_successful_attestation);
    vb_i64(b, st->consecutive_failures);
    vb_i64(b, st->severity_level);
    vb_text(b, st->last_event_id[0] ? st->last_event_id : NULL);
    vb_text(b, st->learned_ima_keyrings);
    vb_i64(b, st->mb_evaluated ? 1 : 0);
    vb_u64(b, st->ima_good_total);
}

/* Reads the state columns; -1 (err set) when the stored pcr10 is not a valid bank value. */
static int read_state(vcol *c, vagent_state *st, qerr *err)
{
    st->operational_state = (int)vc_i64(c);
    st->next_ima_ml_entry = vc_u64(c);
    char alg[16];
    bool has_alg = !vc_null(c);
    vc_copy(c, alg, sizeof alg);
    size_t n = 0;
    const void *pcr = vc_blob(c, &n);
    st->pcr10_alg = QHASH_NONE;
    if (has_alg) {
        qhash_alg a;
        if (qhash_from_name(alg, &a) != 0 || !pcr || n != qhash_size(a))
            return qerr_set(err, "database error: stored pcr10 of agent %s is invalid", st->agent_id);
        st->pcr10_alg = a;
        memcpy(st->pcr10, pcr, n);
    }
    st->boottime = vc_u64(c);
    st->clock_set = !vc_null(c);
    st->clock = vc_u64(c);
    st->reset_count = (uint32_t)vc_i64(c);
    st->restart_count = (uint32_t)vc_i64(c);
    st->attestation_count = vc_u64(c);
    st->last_received_quote = vc_i64(c);
    st->last_successful_attestation = vc_i64(c);
    st->consecutive_failures = (uint32_t)vc_i64(c);
    st->severity_level = (int)vc_i64(c);
    vc_copy(c, st->last_event_id, sizeof st->last_event_id);
    st->learned_ima_keyrings = vc_strdup(c);
    st->mb_evaluated = vc_i64(c) != 0;
    st->ima_good_total = vc_u64(c);
    return 0;
}

int vstore_agent_add(vstore *s, const vagent *a, qerr *err)
{
    const char *display = vstore_agent_ids(a->agent_id, a->display_id, err);
    if (!display || check_state(&a->st, a->agent_id, err) != 0)
        return -1;
    if (a->policy_id < 0 || a->mb_policy_id < 0)
        return qerr_setc(err, 400, "invalid policy id %ld/%ld", a->policy_id, a->mb_policy_id);
    vstore_lock(s);
    vq *st = vstore_q(s, ST_AG_ADD);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, a->agent_id);
    vb_text(&b, a->ip);
    vb_i64(&b, a->port);
    vb_text(&b, a->ak_tpm);
    vb_text(&b, a->mtls_cert);
    vb_text(&b, a->tpm_policy);
    if (a->policy_id)
        vb_i64(&b, a->policy_id);
    else
        vb_null(&b);
    vb_text(&b, a->ima_sign_verification_keys);
    vb_text(&b, a->meta_data);
    vb_text(&b, a->accept_tpm_hash_algs);
    vb_text(&b, a->accept_tpm_encryption_algs);
    vb_text(&b, a->accept_tpm_signing_algs);
    vb_text(&b, a->hash_alg);
    vb_text(&b, a->enc_alg);
    vb_text(&b, a->sign_alg);
    vb_text(&b, a->supported_version);
    vb_text(&b, a->v);
    vb_text(&b, a->verifier_id);
    vb_text(&b, a->verifier_ip);
    vb_i64(&b, a->verifier_port);
    if (a->mb_policy_id)
        vb_i64(&b, a->mb_policy_id);
    else
        vb_null(&b);
    bind_state(&b, &a->st);
    vb_text(&b, display);
    int ret;
    if (b.rc != 0) {
        ret = vstore_dberr(s, err, "adding agent");
        vstore_done(st);
    } else {
        ret = vstore_step_write(s, st, "adding agent", err);
    }
    vstore_unlock(s);
    return ret;
}

static int read_agent(vq *st, vagent *a, qerr *err)
{
    vcol c;
    vc_init(&c, st);
    vc_copy(&c, a->agent_id, sizeof a->agent_id);
    memcpy(a->st.agent_id, a->agent_id, sizeof a->agent_id);
    a->ip = vc_strdup(&c);
    a->port = (long)vc_i64(&c);
    a->ak_tpm = vc_strdup(&c);
    a->mtls_cert = vc_strdup(&c);
    a->tpm_policy = vc_strdup(&c);
    a->policy_id = (long)vc_i64(&c);      /* NULL reads as 0 */
    a->ima_sign_verification_keys = vc_strdup(&c);
    a->meta_data = vc_strdup(&c);
    a->accept_tpm_hash_algs = vc_strdup(&c);
    a->accept_tpm_encryption_algs = vc_strdup(&c);
    a->accept_tpm_signing_algs = vc_strdup(&c);
    a->hash_alg = vc_strdup(&c);
    a->enc_alg = vc_strdup(&c);
    a->sign_alg = vc_strdup(&c);
    a->supported_version = vc_strdup(&c);
    a->v = vc_strdup(&c);
    a->verifier_id = vc_strdup(&c);
    a->verifier_ip = vc_strdup(&c);
    a->verifier_port = (long)vc_i64(&c);
    a->mb_policy_id = (long)vc_i64(&c);   /* NULL reads as 0 */
    if (read_state(&c, &a->st, err) != 0)
        return -1;
    vc_copy(&c, a->mb_policy_name, sizeof a->mb_policy_name);
    a->mb_policy = vc_strdup(&c);
    vstore_read_display_id(&c, a->agent_id, a->display_id);
    if (c.oom)
        return qerr_set(err, "out of memory (reading agent)");
    return 0;
}

int vstore_agent_get(vstore *s, const char *agent_id, vagent *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    out->st.pcr10_alg = QHASH_NONE;
    if (vstore_check_id(agent_id, "agent id", err) != 0)
        return -1;
    vstore_lock(s);
    vq *st = vstore_q(s, ST_AG_GET);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, agent_id);
    int rc = b.rc == 0 ? vstore_step(st) : VQ_ERROR, ret = 0;
    if (rc == VQ_ROW) {
        ret = read_agent(st, out, err) == 0 ? 1 : -1;
        if (ret < 0)
            vagent_free(out);
    } else if (rc != VQ_DONE) {
        ret = vstore_dberr(s, err, "reading agent");
    }
    vstore_done(st);
    vstore_unlock(s);
    return ret;
}

int vstore_agent_delete(vstore *s, const char *agent_id, qerr *err)
{
    /* failures rows go with it (ON DELETE CASCADE) */
    return vstore_write_by_id(s, ST_AG_DELETE, agent_id, false, 0, "deleting agent", err);
}

void vagent_move(vagent *dst, vagent *src)
{
    if (dst == src)
        return;
    vagent_free(dst);
    memcpy(dst, src, sizeof *dst);
    memset(src, 0, sizeof *src);
    src->st.pcr10_alg = QHASH_NONE;
}

int vagent_state_copy(vagent_state *dst, const vagent_state *src)
{
    *dst = *src;
    dst->learned_ima_keyrings = NULL;
    if (src->learned_ima_keyrings && !(dst->learned_ima_keyrings = strdup(src->learned_ima_keyrings))) {
        vagent_state_clear(dst);
        return -1;
    }
    return 0;
}

void vagent_state_move(vagent_state *dst, vagent_state *src)
{
    if (dst == src)
        return;
    free(dst->learned_ima_keyrings);
    *dst = *src;
    src->learned_ima_keyrings = NULL;
}

void vagent_state_clear(vagent_state *st)
{
    free(st->learned_ima_keyrings);
    memset(st, 0, sizeof *st);
    st->pcr10_alg = QHASH_NONE;
}

/* One agent's state row (lock held, inside a transaction): 1 saved, 0 agent gone (or, with a
 * lease owner, the lease no longer held at that epoch), -1. */
static int save_one_locked(vstore *s, const vagent_state *state, const char *lease_owner, uint64_t lease_epoch,
                           qerr *err)
{
    vq *st = vstore_q(s, lease_owner ? ST_AG_SAVE_FENCED : ST_AG_SAVE_STATE);
    vbind b;
    vb_init(&b, st);
    bind_state(&b, state);
    vb_text(&b, state->agent_id);
    if (lease_owner) {
        vb_text(&b, lease_owner);
        vb_u64(&b, lease_epoch);
    }
    char what[VSTORE_ID_MAX + 32];
    snprintf(what, sizeof what, "saving the state of agent %s", state->agent_id);
    if (b.rc != 0) {
        int rc = vstore_dberr(s, err, what);
        vstore_done(st);
        return rc;
    }
    return vstore_step_write(s, st, what, err);
}

/* 1 when the agent exists, 0 when not, -1 on error (lock held). */
static int agent_exists_locked(vstore *s, const char *agent_id, qerr *err)
{
    vq *st = vstore_q(s, ST_AG_EXISTS);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, agent_id);
    int rc = b.rc == 0 ? vstore_step(st) : VQ_ERROR;
    int ret = rc == VQ_ROW ? 1 : rc == VQ_DONE ? 0 : vstore_dberr(s, err, "looking up agent");
    vstore_done(st);
    return ret;
}

static int algs_locked(vstore *s, const char *agent_id, const char *hash_alg, const char *enc_alg,
                       const char *sign_alg, qerr *err)
{
    vq *st = vstore_q(s, ST_AG_SET_ALGS);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, agent_id);
    vb_text(&b, hash_alg);
    vb_text(&b, enc_alg);
    vb_text(&b, sign_alg);
    if (b.rc != 0) {
        int rc = vstore_dberr(s, err, "saving agent algorithms");
        vstore_done(st);
        return rc;
    }
    return vstore_step_write(s, st, "saving agent algorithms", err);
}

/* vstore_state_save_batch with the lock held. */
static int save_locked(vstore *s, const vagent_state *const *states, size_t n, qerr *err)
{
    if (vstore_begin(s, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        /* 0: the agent was deleted meanwhile; nothing to save */
        if (save_one_locked(s, states[i], NULL, 0, err) < 0) {
            vstore_rollback(s);
            return -1;
        }
    }
    return vstore_commit(s, err);
}

static int round_locked(vstore *s, const vstore_round *const *rounds, size_t n, qerr *err)
{
    if (vstore_begin(s, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const vstore_round *r = rounds[i];
        const char *id = r->st->agent_id;
        int rc = save_one_locked(s, r->st, r->lease_owner, r->lease_epoch, err);
        if (rc == 0 && r->lease_owner && r->fenced) {
            rc = agent_exists_locked(s, id, err);
            *r->fenced = rc > 0;
            rc = rc < 0 ? -1 : 0;
        }
        if (rc > 0 && r->hash_alg && r->enc_alg && r->sign_alg)
            rc = algs_locked(s, id, r->hash_alg, r->enc_alg, r->sign_alg, err);
        if (rc > 0 && r->set_failures)
            rc = vstore_failures_put_locked(s, id, r->failures, r->nfailures, err);
        if (rc < 0) {
            vstore_rollback(s);
            return -1;
        }
    }
    return vstore_commit(s, err);
}

int vstore_round_save_batch(vstore *s, const vstore_round *const *rounds, size_t n, qerr *err)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!rounds[i] || !rounds[i]->st || vstore_check_id(rounds[i]->st->agent_id, "agent id", err) != 0 ||
            check_state(rounds[i]->st, rounds[i]->st->agent_id, err) != 0)
            return rounds[i] && rounds[i]->st ? -1 : qerr_setc(err, 400, "a round without a state");
    vstore_lock(s);
    int ret = round_locked(s, rounds, n, err);
    vstore_unlock(s);
    return ret;
}

int vstore_state_save_batch(vstore *s, const vagent_state *const *states, size_t n, qerr *err)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (vstore_check_id(states[i]->agent_id, "agent id", err) != 0 ||
            check_state(states[i], states[i]->agent_id, err) != 0)
            return -1;
    vstore_lock(s);
    int ret = save_locked(s, states, n, err);
    vstore_unlock(s);
    return ret;
}

int vstore_set_state(vstore *s, const char *agent_id, int operational_state, qerr *err)
{
    return vstore_write_by_id(s, ST_AG_SET_STATE, agent_id, true, operational_state, "setting agent state",
                              err);
}

int vstore_agent_set_algs(vstore *s, const char *agent_id, const char *hash_alg, const char *enc_alg,
                          const char *sign_alg, qerr *err)
{
    if (vstore_check_id(agent_id, "agent id", err) != 0)
        return -1;
    vstore_lock(s);
    int ret = algs_locked(s, agent_id, hash_alg, enc_alg, sign_alg, err);
    vstore_unlock(s);
    return ret;
}

int vstore_agent_list(vstore *s, int (*fn)(void *ctx, const char *agent_id), void *ctx, qerr *err)
{
    vidlist l = { 0 };
    vstore_lock(s);
    int ret = vstore_collect_ids(s, vstore_q(s, ST_AG_LIST), &l, "listing agents", err);
    vstore_unlock(s);
    if (ret == 0)
        vstore_each_id(&l, fn, ctx);
    free(l.buf);
    return ret;
}

int vstore_agent_list_display(vstore *s, int (*fn)(void *ctx, const char *display_id), void *ctx, qerr *err)
{
    vidlist l = { 0 };
    vstore_lock(s);
    int ret = vstore_collect_ids(s, vstore_q(s, ST_AG_LIST_DISPLAY), &l, "listing agents", err);
    vstore_unlock(s);
    if (ret == 0)
        vstore_each_id(&l, fn, ctx);
    free(l.buf);
    return ret;
}
