/* store_lease.c — agent leases and verifier heartbeats in the store (store_lease.h).
 *
 * The SQL is the same on SQLite and PostgreSQL: ON CONFLICT upserts, and q_now_ms() for the
 * database's clock (a function the store provides on each engine). Taking leases re-checks the
 * owner's liveness in the outer WHERE so that, on PostgreSQL, of two verifiers taking the same
 * row at once the second (re-evaluating the updated row) skips it; should both still win, the
 * epoch fence makes the first one's writes harmless and it drops the agent at its next renewal. */
#include "store_int.h"
#include "store_lease.h"

#include <stdlib.h>
#include <string.h>

/* The driver's statement access, step results and success code. */
#define Q(id) vstore_q(s, id)
#define STEP(st) vstore_step(st)
#define ROW VQ_ROW
#define DONE VQ_DONE
#define BIND_OK 0
typedef vq vq_t;

/* The agents of a cluster: their verifier_id is the cluster's, or empty. */
#define IN_CLUSTER(a, p) "(" a ".verifier_id IS NULL OR " a ".verifier_id = '' OR " a ".verifier_id = " p ")"
/* A lease nobody live holds. */
#define FREE_LEASE(l)                                                                            \
    "(" l ".owner IS NULL OR NOT EXISTS (SELECT 1 FROM verifiers v WHERE v.instance = " l ".owner" \
    " AND v.expiry > q_now_ms()))"

const vstore_sql vstore_lease_sql[] = {
    { ST_LS_BEAT,
      "INSERT INTO verifiers (instance, verifier_id, expiry) VALUES (?1, ?2, q_now_ms() + ?3)"
      " ON CONFLICT (instance) DO UPDATE SET verifier_id = excluded.verifier_id, expiry = excluded.expiry" },
    { ST_LS_LIVE, "SELECT count(*) FROM verifiers WHERE verifier_id = ?1 AND expiry > q_now_ms()" },
    { ST_LS_AGENTS, "SELECT count(*) FROM agents a WHERE " IN_CLUSTER("a", "?1") },
    /* heartbeat rows of verifiers gone for an hour (their leases are free long since) */
    { ST_LS_GC, "DELETE FROM verifiers WHERE expiry < q_now_ms() - 3600000" },
    { ST_LS_ORPHANS,
      "INSERT INTO leases (agent_id, owner, epoch) SELECT a.agent_id, NULL, 0 FROM agents a"
      " WHERE NOT EXISTS (SELECT 1 FROM leases l WHERE l.agent_id = a.agent_id)"
      " ON CONFLICT (agent_id) DO NOTHING" },
    { ST_LS_RECLAIM, "UPDATE leases SET epoch = epoch + 1 WHERE owner = ?1" },
    { ST_LS_TAKE,
      "UPDATE leases SET owner = ?1, epoch = epoch + 1 WHERE " FREE_LEASE("leases") " AND agent_id IN ("
      "SELECT l.agent_id FROM leases l JOIN agents a ON a.agent_id = l.agent_id"
      " WHERE " IN_CLUSTER("a", "?2") " AND " FREE_LEASE("l") " ORDER BY l.agent_id LIMIT ?3)" },
    { ST_LS_MINE, "SELECT agent_id, epoch FROM leases WHERE owner = ?1 ORDER BY agent_id" },
    { ST_LS_RELEASE, "UPDATE leases SET owner = NULL WHERE agent_id = ?1 AND owner = ?2 AND epoch = ?3" },
    { ST_LS_RELEASE_ALL, "UPDATE leases SET owner = NULL WHERE owner = ?1" },
    { ST_LS_FORGET, "DELETE FROM verifiers WHERE instance = ?1" },
    { ST_LS_BUMP, "UPDATE leases SET epoch = epoch + 1 WHERE agent_id = ?1" },
    { ST_LS_CLAIM,
      "INSERT INTO leases (agent_id, owner, epoch) VALUES (?1, ?2, 1)"
      " ON CONFLICT (agent_id) DO UPDATE SET owner = excluded.owner, epoch = leases.epoch + 1" },
    { ST_LS_GET, "SELECT coalesce(owner, ''), epoch FROM leases WHERE agent_id = ?1" },
    { ST_COUNT, NULL },
};

/* Binds and steps a write; 1/0 changed or not, -1. */
static int write_stmt(vstore *s, vq_t *st, vbind *b, const char *what, qerr *err)
{
    if (b->rc != BIND_OK) {
        int rc = vstore_dberr(s, err, what);
        vstore_done(st);
        return rc;
    }
    return vstore_step_write(s, st, what, err);
}

/* A one-row count (already bound). */
static int count_stmt(vstore *s, vq_t *st, vbind *b, long *out, const char *what, qerr *err)
{
    if (b->rc != BIND_OK) {
        int rc = vstore_dberr(s, err, what);
        vstore_done(st);
        return rc;
    }
    int64_t v = 0;
    if (vstore_step_id(s, st, &v, what, err) != 0)
        return -1;
    *out = (long)v;
    return 0;
}

/* With the lock held: one write bound (instance, verifier_id, v). 0 or -1. */
static int write_instance(vstore *s, enum vstmt id, const char *instance, const char *verifier_id, int64_t v,
                          const char *what, qerr *err)
{
    vbind b;
    vb_init(&b, Q(id));
    vb_text(&b, instance);
    vb_text(&b, verifier_id);
    vb_i64(&b, v);
    return write_stmt(s, Q(id), &b, what, err) < 0 ? -1 : 0;
}

/* Two writes in one transaction, each with the text arg (NULL: no parameter) as ?1. */
static int write_pair(vstore *s, enum vstmt a, const char *a_arg, const char *a_what, enum vstmt z,
                      const char *z_arg, const char *z_what, qerr *err)
{
    vstore_lock(s);
    int ret = vstore_begin(s, err);
    const enum vstmt ids[2] = { a, z };
    const char *const args[2] = { a_arg, z_arg }, *const whats[2] = { a_what, z_what };
    for (int i = 0; i < 2 && ret == 0; i++) {
        vbind b;
        vb_init(&b, Q(ids[i]));
        if (args[i])
            vb_text(&b, args[i]);
        ret = write_stmt(s, Q(ids[i]), &b, whats[i], err) < 0 ? -1 : 0;
    }
    if (ret == 0)
        ret = vstore_commit(s, err);
    else
        vstore_rollback(s);
    vstore_unlock(s);
    return ret;
}

int vstore_lease_beat(vstore *s, const char *instance, const char *verifier_id, int64_t ttl_ms, long *live,
                      long *agents, qerr *err)
{
    vstore_lock(s);
    int ret = write_instance(s, ST_LS_BEAT, instance, verifier_id, ttl_ms, "renewing the verifier's leases", err);
    vq_t *st;
    vbind b;
    if (ret == 0) {
        st = Q(ST_LS_LIVE);
        vb_init(&b, st);
        vb_text(&b, verifier_id);
        ret = count_stmt(s, st, &b, live, "counting live verifiers", err);
    }
    if (ret == 0) {
        st = Q(ST_LS_AGENTS);
        vb_init(&b, st);
        vb_text(&b, verifier_id);
        ret = count_stmt(s, st, &b, agents, "counting agents", err);
    }
    if (ret == 0) {
        st = Q(ST_LS_GC);
        vb_init(&b, st);
        ret = write_stmt(s, st, &b, "removing old verifier heartbeats", err) < 0 ? -1 : 0;
    }
    vstore_unlock(s);
    return ret;
}

int vstore_lease_reclaim(vstore *s, const char *instance, qerr *err)
{
    return write_pair(s, ST_LS_ORPHANS, NULL, "creating leases", ST_LS_RECLAIM, instance, "reclaiming leases", err);
}

int vstore_lease_take(vstore *s, const char *instance, const char *verifier_id, long n, qerr *err)
{
    if (n <= 0)
        return 0;
    vstore_lock(s);
    int ret = write_instance(s, ST_LS_TAKE, instance, verifier_id, n, "taking leases", err);
    vstore_unlock(s);
    return ret;
}

int vstore_lease_mine(vstore *s, const char *instance, vlease_row **rows, size_t *n, qerr *err)
{
    *rows = NULL;
    *n = 0;
    size_t cap = 0;
    vstore_lock(s);
    vq_t *st = Q(ST_LS_MINE);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, instance);
    int rc = b.rc == BIND_OK ? ROW : b.rc, ret = 0;
    while (rc == ROW && (rc = STEP(st)) == ROW) {
        if (*n == cap) {
            size_t ncap = cap ? 2 * cap : 256;
            vlease_row *a = realloc(*rows, ncap * sizeof *a);
            if (!a) {
                ret = qerr_set(err, "out of memory (reading leases)");
                break;
            }
            *rows = a;
            cap = ncap;
        }
        vcol c;
        vc_init(&c, st);
        vc_copy(&c, (*rows)[*n].agent_id, VSTORE_ID_MAX);
        (*rows)[*n].epoch = vc_u64(&c);
        (*n)++;
    }
    if (ret == 0 && rc != DONE)
        ret = vstore_dberr(s, err, "reading leases");
    vstore_done(st);
    vstore_unlock(s);
    if (ret < 0) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return ret;
}

int vstore_lease_release(vstore *s, const char *instance, const vlease_row *rows, size_t n, qerr *err)
{
    if (n == 0)
        return 0;
    vstore_lock(s);
    int ret = vstore_begin(s, err);
    vq_t *st = Q(ST_LS_RELEASE);
    for (size_t i = 0; ret == 0 && i < n; i++) {
        vbind b;
        vb_init(&b, st);
        vb_text(&b, rows[i].agent_id);
        vb_text(&b, instance);
        vb_u64(&b, rows[i].epoch);
        ret = write_stmt(s, st, &b, "releasing leases", err) < 0 ? -1 : 0;
    }
    if (ret == 0)
        ret = vstore_commit(s, err);
    else
        vstore_rollback(s);
    vstore_unlock(s);
    return ret;
}

int vstore_lease_leave(vstore *s, const char *instance, qerr *err)
{
    return write_pair(s, ST_LS_RELEASE_ALL, instance, "releasing leases", ST_LS_FORGET, instance,
                      "removing the verifier's heartbeat", err);
}

int vstore_lease_touch(vstore *s, const char *agent_id, const char *instance, bool take, char *owner,
                       uint64_t *epoch, qerr *err)
{
    owner[0] = '\0';
    *epoch = 0;
    if (vstore_check_id(agent_id, "agent id", err) != 0)
        return -1;
    vstore_lock(s);
    int ret = vstore_begin(s, err);
    vbind b;
    if (ret == 0) {
        vq_t *st = Q(take ? ST_LS_CLAIM : ST_LS_BUMP);
        vb_init(&b, st);
        vb_text(&b, agent_id);
        if (take)
            vb_text(&b, instance);
        ret = write_stmt(s, st, &b, "changing an agent's lease", err);
    }
    if (ret > 0) {
        vq_t *st = Q(ST_LS_GET);
        vb_init(&b, st);
        vb_text(&b, agent_id);
        int rc = b.rc == BIND_OK ? STEP(st) : b.rc;
        if (rc == ROW) {
            vcol c;
            vc_init(&c, st);
            vc_copy(&c, owner, VSTORE_ID_MAX);
            *epoch = vc_u64(&c);
        } else {
            ret = rc == DONE ? 0 : vstore_dberr(s, err, "reading an agent's lease");
        }
        vstore_done(st);
    }
    if (ret >= 0 && vstore_commit(s, err) < 0)
        ret = -1;
    else if (ret < 0)
        vstore_rollback(s);
    vstore_unlock(s);
    return ret;
}
