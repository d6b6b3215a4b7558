/* store_mbpolicy.c — named measured-boot reference states (vstore_mbpolicy_*), Keylime's
 * mbpolicies table: one row per name, referenced by agents.mb_policy_id. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

const vstore_sql vstore_mbpolicy_sql[] = {
    { ST_MB_FIND, "SELECT id FROM mbpolicies WHERE name = ?1" },
    { ST_MB_GET, "SELECT id, name, mb_policy FROM mbpolicies WHERE name = ?1" },
    { ST_MB_ADD, "INSERT INTO mbpolicies (name, mb_policy) VALUES (?1, ?2) RETURNING id" },
    { ST_MB_UPDATE, "UPDATE mbpolicies SET mb_policy = ?2 WHERE id = ?1" },
    { ST_MB_USER, "SELECT agent_id FROM agents WHERE mb_policy_id = ?1 ORDER BY agent_id LIMIT 1" },
    { ST_MB_DELETE, "DELETE FROM mbpolicies WHERE id = ?1" },
    { ST_MB_LIST, "SELECT name FROM mbpolicies ORDER BY name" },
    { ST_COUNT, NULL },
};

void vmbpolicy_free(vmbpolicy *p)
{
    if (!p)
        return;
    free(p->mb_policy);
    memset(p, 0, sizeof *p);
}

/* The id of a name: 1 found, 0 absent, -1. */
static int find_id(vstore *s, const char *name, int64_t *id, qerr *err)
{
    vq *st = vstore_q(s, ST_MB_FIND);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, name);
    int rc = b.rc == 0 ? vstore_step(st) : VQ_ERROR, ret = 0;
    if (rc == VQ_ROW) {
        vcol c;
        vc_init(&c, st);
        *id = vc_i64(&c);
        ret = 1;
    } else if (rc != VQ_DONE) {
        ret = vstore_dberr(s, err, "looking up measured boot policy");
    }
    vstore_done(st);
    return ret;
}

static int put_locked(vstore *s, const char *name, const char *text, bool replace, long *id, qerr *err)
{
    int64_t pid = 0;
    if (vstore_begin(s, err) != 0)
        return -1;
    int found = find_id(s, name, &pid, err);
    if (found < 0)
        goto fail;
    if ((found == 1) != replace) {
        vstore_rollback(s);
        return 0;
    }
    vq *st = vstore_q(s, replace ? ST_MB_UPDATE : ST_MB_ADD);
    vbind b;
    vb_init(&b, st);
    if (replace)
        vb_i64(&b, pid);
    else
        vb_text(&b, name);
    vb_text(&b, text);
    if (b.rc != 0) {
        vstore_dberr(s, err, "saving measured boot policy");
        vstore_done(st);
        goto fail;
    }
    if (replace ? vstore_step_write(s, st, "saving measured boot policy", err) < 0
                : vstore_step_id(s, st, &pid, "saving measured boot policy", err) < 0)
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

int vstore_mbpolicy_put(vstore *s, const char *name, const char *text, bool replace, long *id, qerr *err)
{
    if (vstore_check_id(name, "measured boot policy name", err) != 0)
        return -1;
    if (!text || !*text)
        return qerr_setc(err, 400, "measured boot policy text is missing");
    if (strnlen(text, VSTORE_MB_MAX + 1) > VSTORE_MB_MAX)
        return qerr_setc(err, 400, "measured boot policy is larger than %u bytes", VSTORE_MB_MAX);
    vstore_lock(s);
    int ret = put_locked(s, name, text, replace, id, err);
    vstore_unlock(s);
    return ret;
}

int vstore_mbpolicy_get(vstore *s, const char *name, vmbpolicy *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    if (vstore_check_id(name, "measured boot policy name", err) != 0)
        return -1;
    vstore_lock(s);
    vq *st = vstore_q(s, ST_MB_GET);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, name);
    int rc = b.rc == 0 ? vstore_step(st) : VQ_ERROR, ret = 0;
    if (rc == VQ_ROW) {
        vcol c;
        vc_init(&c, st);
        out->id = (long)vc_i64(&c);
        vc_copy(&c, out->name, sizeof out->name);
        out->mb_policy = vc_strdup(&c);
        if (c.oom || !out->mb_policy) {
            vmbpolicy_free(out);
            ret = qerr_set(err, "out of memory (reading measured boot policy)");
        } else {
            ret = 1;
        }
    } else if (rc != VQ_DONE) {
        ret = vstore_dberr(s, err, "reading measured boot policy");
    }
    vstore_done(st);
    vstore_unlock(s);
    return ret;
}

static int delete_locked(vstore *s, const char *name, qerr *err)
{
    int64_t pid = 0;
    if (vstore_begin(s, err) != 0)
        return -1;
    int ret = find_id(s, name, &pid, err);
    if (ret <= 0)
        goto done;
    vq *st = vstore_q(s, ST_MB_USER);
    vbind b;
    vb_init(&b, st);
    vb_i64(&b, pid);
    int rc = b.rc == 0 ? vstore_step(st) : VQ_ERROR;
    if (rc == VQ_ROW) {
        char agent[VSTORE_ID_MAX];
        vcol c;
        vc_init(&c, st);
        vc_copy(&c, agent, sizeof agent);
        ret = qerr_setc(err, 409, "Can't delete mb_policy as it's currently in use by agent %s", agent);
    } else if (rc != VQ_DONE) {
        ret = vstore_dberr(s, err, "checking measured boot policy users");
    }
    vstore_done(st);
    if (ret != 1)
        goto done;
    st = vstore_q(s, ST_MB_DELETE);
    vb_init(&b, st);
    vb_i64(&b, pid);
    if (vstore_step_write(s, st, "deleting measured boot policy", err) < 0) {
        ret = -1;
        goto done;
    }
    return vstore_commit(s, err) == 0 ? 1 : -1;
done:
    vstore_rollback(s);
    return ret;
}

int vstore_mbpolicy_delete(vstore *s, const char *name, qerr *err)
{
    if (vstore_check_id(name, "measured boot policy name", err) != 0)
        return -1;
    vstore_lock(s);
    int ret = delete_locked(s, name, err);
    vstore_unlock(s);
    return ret;
}

int vstore_mbpolicy_list(vstore *s, int (*fn)(void *ctx, const char *name), void *ctx, qerr *err)
{
    vidlist l = { 0 };
    vstore_lock(s);
    int ret = vstore_collect_ids(s, vstore_q(s, ST_MB_LIST), &l, "listing measured boot policies", err);
    vstore_unlock(s);
    if (ret == 0)
        vstore_each_id(&l, fn, ctx);
    free(l.buf);
    return ret;
}
