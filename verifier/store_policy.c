/* store_policy.c — named runtime policies (vstore_policy_*). A policy text is stored once per
 * checksum (policy_bodies) and shared by every name that uses it (policies); a text no name uses
 * any more is deleted in the same transaction that dropped its last name. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#define POLICY_COLUMNS \
    "SELECT p.id, p.name, b.checksum, b.body, p.tpm_policy, p.generator, p.sign_key" \
    " FROM policies p JOIN policy_bodies b ON b.id = p.body_id"

const vstore_sql vstore_policy_sql[] = {
    { ST_POL_FIND, "SELECT id, body_id FROM policies WHERE name = ?1" },
    { ST_POL_GET, POLICY_COLUMNS " WHERE p.name = ?1" },
    { ST_POL_GET_ID, POLICY_COLUMNS " WHERE p.id = ?1" },
    { ST_POL_BODY_FIND, "SELECT id, body = ?2 FROM policy_bodies WHERE checksum = ?1" },
    { ST_POL_BODY_ADD, "INSERT INTO policy_bodies (checksum, body) VALUES (?1, ?2) RETURNING id" },
    { ST_POL_BODY_GC,
      "DELETE FROM policy_bodies WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM policies WHERE body_id = ?1)" },
    { ST_POL_ADD,
      "INSERT INTO policies (name, body_id, tpm_policy, generator, sign_key) VALUES (?1, ?2, ?3, ?4, ?5)"
      " RETURNING id" },
    { ST_POL_UPDATE, "UPDATE policies SET body_id = ?2, tpm_policy = ?3, generator = ?4, sign_key = ?5 WHERE id = ?1" },
    { ST_POL_USER, "SELECT agent_id FROM agents WHERE policy_id = ?1 ORDER BY agent_id LIMIT 1" },
    { ST_POL_DELETE, "DELETE FROM policies WHERE id = ?1" },
    { ST_POL_LIST, "SELECT name FROM policies ORDER BY name" },
    { ST_COUNT, NULL },
};

void vpolicy_free(vpolicy *p)
{
    if (!p)
        return;
    free(p->body);
    free(p->tpm_policy);
    free(p->sign_key);
    memset(p, 0, sizeof *p);
}

/* Looks a name up: 1 (id, body_id set), 0 absent, -1 error. */
static int find_name(vstore *s, const char *name, int64_t *id, int64_t *body_id, qerr *err)
{
    vq *st = vstore_q(s, ST_POL_FIND);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, name);
    int rc = b.rc == 0 ? vstore_step(st) : VQ_ERROR, ret = 0;
    if (rc == VQ_ROW) {
        vcol c;
        vc_init(&c, st);
        *id = vc_i64(&c);
        *body_id = vc_i64(&c);
        ret = 1;
    } else if (rc != VQ_DONE) {
        ret = vstore_dberr(s, err, "looking up runtime policy");
    }
    vstore_done(st);
    return ret;
}

/* The id of the stored body with this checksum, inserting the body if it is new. */
static int body_id_for(vstore *s, const char *checksum, const char *body, int64_t *bid, qerr *err)
{
    vq *st = vstore_q(s, ST_POL_BODY_FIND);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, checksum);
    vb_text(&b, body);
    int rc = b.rc == 0 ? vstore_step(st) : VQ_ERROR, ret = 0;
    bool found = false;
    if (rc == VQ_ROW) {
        vcol c;
        vc_init(&c, st);
        *bid = vc_i64(&c);
        if (vc_i64(&c) != 1)
            ret = qerr_setc(err, 400, "runtime policy checksum %s is already stored for a different text",
                            checksum);
        found = true;
    } else if (rc != VQ_DONE) {
        ret = vstore_dberr(s, err, "looking up runtime policy text");
    }
    vstore_done(st);
    if (ret != 0 || found)
        return ret;

    st = vstore_q(s, ST_POL_BODY_ADD);
    vb_init(&b, st);
    vb_text(&b, checksum);
    vb_text(&b, body);
    if (b.rc != 0) {
        vstore_dberr(s, err, "storing runtime policy text");
        vstore_done(st);
        return -1;
    }
    return vstore_step_id(s, st, bid, "storing runtime policy text", err);
}

/* Deletes the body when no name uses it any more. */
static int body_gc(vstore *s, int64_t bid, qerr *err)
{
    vq *st = vstore_q(s, ST_POL_BODY_GC);
    vbind b;
    vb_init(&b, st);
    vb_i64(&b, bid);
    return vstore_step_write(s, st, "removing unused runtime policy text", err) < 0 ? -1 : 0;
}

/* Inserts (*pid == 0; *pid gets the new id) or updates the name row. */
static int write_name(vstore *s, int64_t *pid, const char *name, int64_t bid, const char *tpm_policy,
                      int generator, const char *sign_key, qerr *err)
{
    bool update = *pid != 0;
    vq *st = vstore_q(s, update ? ST_POL_UPDATE : ST_POL_ADD);
    vbind b;
    vb_init(&b, st);
    if (update)
        vb_i64(&b, *pid);
    else
        vb_text(&b, name);
    vb_i64(&b, bid);
    vb_text(&b, tpm_policy);
    vb_i64(&b, generator);
    vb_text(&b, sign_key);
    if (b.rc != 0) {
        vstore_dberr(s, err, "saving runtime policy");
        vstore_done(st);
        return -1;
    }
    if (!update)
        return vstore_step_id(s, st, pid, "saving runtime policy", err);
    return vstore_step_write(s, st, "saving runtime policy", err) < 0 ? -1 : 0;
}

/* vstore_policy_put with the lock held. */
static int put_locked(vstore *s, const char *name, const char *body, const char *checksum, int generator,
                      const char *tpm_policy, const char *sign_key, bool replace, long *id, qerr *err)
{
    int64_t pid = 0, old_bid = 0, bid = 0;
    if (vstore_begin(s, err) != 0)
        return -1;
    int found = find_name(s, name, &pid, &old_bid, err);
    if (found < 0)
        goto fail;
    if ((found == 1 && !replace) || (found == 0 && replace)) {
        vstore_rollback(s);     /* create of an existing name, or replace of a missing one */
        return 0;
    }
    if (!replace)
        pid = 0;
    if (body_id_for(s, checksum, body, &bid, err) != 0 ||
        write_name(s, &pid, name, bid, tpm_policy, generator, sign_key, err) != 0)
        goto fail;
    if (replace && old_bid != bid && body_gc(s, old_bid, err) != 0)
        goto fail;
    if (vstore_commit(s, err) != 0)
        return -1;
    if (id)
        *id = (long)pid;
    return 1;
fail:
    vstore_rollback(s);
    return -1;
}

int vstore_policy_put(vstore *s, const char *name, const char *body, const char *checksum, int generator,
                      const char *tpm_policy, bool replace, long *id, qerr *err)
{
    return vstore_policy_put_signed(s, name, body, checksum, generator, tpm_policy, NULL, replace, id, err);
}

int vstore_policy_put_signed(vstore *s, const char *name, const char *body, const char *checksum, int generator,
                             const char *tpm_policy, const char *sign_key, bool replace, long *id, qerr *err)
{
    if (vstore_check_id(name, "runtime policy name", err) != 0)
        return -1;
    if (!body)
        return qerr_setc(err, 400, "runtime policy text is missing");
    if (!checksum || !checksum[0] || strnlen(checksum, 65) > 64)
        return qerr_setc(err, 400, "runtime policy checksum is missing or longer than 64 characters");
    vstore_lock(s);
    int ret = put_locked(s, name, body, checksum, generator, tpm_policy, sign_key, replace, id, err);
    vstore_unlock(s);
    return ret;
}

static int get_policy(vstore *s, enum vstmt which, const char *name, long id, vpolicy *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    if (which == ST_POL_GET && vstore_check_id(name, "runtime policy name", err) != 0)
        return -1;
    vstore_lock(s);
    vq *st = vstore_q(s, which);
    vbind b;
    vb_init(&b, st);
    if (which == ST_POL_GET)
        vb_text(&b, name);
    else
        vb_i64(&b, id);
    int rc = b.rc == 0 ? vstore_step(st) : VQ_ERROR, ret = 0;
    if (rc == VQ_ROW) {
        vcol c;
        vc_init(&c, st);
        out->id = (long)vc_i64(&c);
        vc_copy(&c, out->name, sizeof out->name);
        vc_copy(&c, out->checksum, sizeof out->checksum);
        out->body = vc_strdup(&c);
        out->tpm_policy = vc_strdup(&c);
        out->generator = (int)vc_i64(&c);
        out->sign_key = vc_strdup(&c);
        if (c.oom || !out->body) {
            vpolicy_free(out);
            ret = qerr_set(err, "out of memory (reading runtime policy)");
        } else {
            ret = 1;
        }
    } else if (rc != VQ_DONE) {
        ret = vstore_dberr(s, err, "reading runtime policy");
    }
    vstore_done(st);
    vstore_unlock(s);
    return ret;
}

int vstore_policy_get(vstore *s, const char *name, vpolicy *out, qerr *err)
{
    return get_policy(s, ST_POL_GET, name, 0, out, err);
}

int vstore_policy_get_by_id(vstore *s, long id, vpolicy *out, qerr *err)
{
    return get_policy(s, ST_POL_GET_ID, NULL, id, out, err);
}

/* The first agent (by id) using policy pid: 1 (copied to agent), 0 none, -1 error. */
static int policy_user(vstore *s, int64_t pid, char *agent, size_t cap, qerr *err)
{
    vq *st = vstore_q(s, ST_POL_USER);
    vbind b;
    vb_init(&b, st);
    vb_i64(&b, pid);
    int rc = b.rc == 0 ? vstore_step(st) : VQ_ERROR, ret = 0;
    if (rc == VQ_ROW) {
        vcol c;
        vc_init(&c, st);
        vc_copy(&c, agent, cap);
        ret = 1;
    } else if (rc != VQ_DONE) {
        ret = vstore_dberr(s, err, "checking runtime policy users");
    }
    vstore_done(st);
    return ret;
}

/* vstore_policy_delete with the lock held. */
static int delete_locked(vstore *s, const char *name, qerr *err)
{
    char agent[VSTORE_ID_MAX];
    int64_t pid = 0, bid = 0;
    if (vstore_begin(s, err) != 0)
        return -1;
    int ret = find_name(s, name, &pid, &bid, err);
    if (ret <= 0)
        goto done;
    ret = policy_user(s, pid, agent, sizeof agent, err);
    if (ret == 1)
        ret = qerr_setc(err, 409, "Can't delete allowlist as it's currently in use by agent %s", agent);
    if (ret != 0)
        goto done;
    vq *st = vstore_q(s, ST_POL_DELETE);
    vbind b;
    vb_init(&b, st);
    vb_i64(&b, pid);
    if (vstore_step_write(s, st, "deleting runtime policy", err) < 0 || body_gc(s, bid, err) != 0) {
        ret = -1;
        goto done;
    }
    return vstore_commit(s, err) == 0 ? 1 : -1;
done:
    vstore_rollback(s);
    return ret;
}

int vstore_policy_delete(vstore *s, const char *name, qerr *err)
{
    if (vstore_check_id(name, "runtime policy name", err) != 0)
        return -1;
    vstore_lock(s);
    int ret = delete_locked(s, name, err);
    vstore_unlock(s);
    return ret;
}

int vstore_policy_list(vstore *s, int (*fn)(void *ctx, const char *name), void *ctx, qerr *err)
{
    vidlist l = { 0 };
    vstore_lock(s);
    int ret = vstore_collect_ids(s, vstore_q(s, ST_POL_LIST), &l, "listing runtime policies", err);
    vstore_unlock(s);
    if (ret == 0)
        vstore_each_id(&l, fn, ctx);
    free(l.buf);
    return ret;
}
