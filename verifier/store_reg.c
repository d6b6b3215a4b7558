/* store_reg.c — registrar records (vstore_reg_*). */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

const vstore_sql vstore_reg_sql[] = {
    { ST_REG_GET,
      "SELECT agent_id, ek_tpm, ekcert, aik_tpm, mtls_cert, ip, port, regcount, active, key,"
      " registered_at, failed_activations, pending_mtls_cert, pending_ip, pending_port, pending_key, display_id"
      " FROM registrar WHERE agent_id = ?1" },
    { ST_REG_PUT,
      "INSERT INTO registrar (agent_id, ek_tpm, ekcert, aik_tpm, mtls_cert, ip, port, regcount, active, key,"
      " registered_at, failed_activations, pending_mtls_cert, pending_ip, pending_port, pending_key, display_id)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
      " ON CONFLICT (agent_id) DO UPDATE SET ek_tpm = excluded.ek_tpm, ekcert = excluded.ekcert,"
      " aik_tpm = excluded.aik_tpm, mtls_cert = excluded.mtls_cert, ip = excluded.ip, port = excluded.port,"
      " regcount = excluded.regcount, active = excluded.active, key = excluded.key,"
      " registered_at = excluded.registered_at, failed_activations = excluded.failed_activations,"
      " pending_mtls_cert = excluded.pending_mtls_cert, pending_ip = excluded.pending_ip,"
      " pending_port = excluded.pending_port, pending_key = excluded.pending_key" },
    { ST_REG_SET_ACTIVE, "UPDATE registrar SET active = ?2 WHERE agent_id = ?1" },
    { ST_REG_DELETE, "DELETE FROM registrar WHERE agent_id = ?1" },
    { ST_REG_LIST, "SELECT CASE WHEN display_id = '' THEN agent_id ELSE display_id END FROM registrar"
                   " ORDER BY agent_id" },
    { ST_REG_COUNT_PENDING, "SELECT count(*) FROM registrar WHERE active = 0 OR pending_key IS NOT NULL" },
    { ST_REG_EXPIRE_NEW, "DELETE FROM registrar WHERE active = 0 AND registered_at < ?1" },
    { ST_REG_EXPIRE_REREG,
      "UPDATE registrar SET pending_mtls_cert = NULL, pending_ip = NULL, pending_port = 0, pending_key = NULL,"
      " failed_activations = 0 WHERE active = 1 AND pending_key IS NOT NULL AND registered_at < ?1" },
    { ST_COUNT, NULL },
};

void vreg_agent_free(vreg_agent *a)
{
    if (!a)
        return;
    free(a->ek_tpm);
    free(a->ekcert);
    free(a->aik_tpm);
    free(a->mtls_cert);
    free(a->ip);
    free(a->key);
    free(a->pending_mtls_cert);
    free(a->pending_ip);
    free(a->pending_key);
    memset(a, 0, sizeof *a);
}

int vstore_reg_get(vstore *s, const char *agent_id, vreg_agent *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    if (vstore_check_id(agent_id, "agent id", err) != 0)
        return -1;
    vstore_lock(s);
    vq *st = vstore_q(s, ST_REG_GET);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, agent_id);
    int rc = b.rc == 0 ? vstore_step(st) : VQ_ERROR, ret = 0;
    if (rc == VQ_ROW) {
        vcol c;
        vc_init(&c, st);
        vc_copy(&c, out->agent_id, sizeof out->agent_id);
        out->ek_tpm = vc_strdup(&c);
        out->ekcert = vc_strdup(&c);
        out->aik_tpm = vc_strdup(&c);
        out->mtls_cert = vc_strdup(&c);
        out->ip = vc_strdup(&c);
        out->port = (long)vc_i64(&c);
        out->regcount = (long)vc_i64(&c);
        out->active = vc_i64(&c) != 0;
        out->key = vc_strdup(&c);
        out->registered_at = vc_i64(&c);
        out->failed_activations = (long)vc_i64(&c);
        out->pending_mtls_cert = vc_strdup(&c);
        out->pending_ip = vc_strdup(&c);
        out->pending_port = (long)vc_i64(&c);
        out->pending_key = vc_strdup(&c);
        vstore_read_display_id(&c, out->agent_id, out->display_id);
        if (c.oom) {
            vreg_agent_free(out);
            ret = qerr_set(err, "out of memory (reading registrar agent)");
        } else {
            ret = 1;
        }
    } else if (rc != VQ_DONE) {
        ret = vstore_dberr(s, err, "reading registrar agent");
    }
    vstore_done(st);
    vstore_unlock(s);
    return ret;
}

int vstore_reg_put(vstore *s, const vreg_agent *a, qerr *err)
{
    const char *display = vstore_agent_ids(a->agent_id, a->display_id, err);
    if (!display)
        return -1;
    vstore_lock(s);
    vq *st = vstore_q(s, ST_REG_PUT);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, a->agent_id);
    vb_text(&b, a->ek_tpm);
    vb_text(&b, a->ekcert);
    vb_text(&b, a->aik_tpm);
    vb_text(&b, a->mtls_cert);
    vb_text(&b, a->ip);
    vb_i64(&b, a->port);
    vb_i64(&b, a->regcount);
    vb_i64(&b, a->active ? 1 : 0);
    vb_text(&b, a->key);
    vb_i64(&b, a->registered_at);
    vb_i64(&b, a->failed_activations);
    vb_text(&b, a->pending_mtls_cert);
    vb_text(&b, a->pending_ip);
    vb_i64(&b, a->pending_port);
    vb_text(&b, a->pending_key);
    vb_text(&b, display);
    int ret;
    if (b.rc != 0) {
        ret = vstore_dberr(s, err, "saving registrar agent");
        vstore_done(st);
    } else {
        ret = vstore_step_write(s, st, "saving registrar agent", err) < 0 ? -1 : 0;
    }
    vstore_unlock(s);
    return ret;
}

int vstore_reg_set_active(vstore *s, const char *agent_id, bool active, qerr *err)
{
    return vstore_write_by_id(s, ST_REG_SET_ACTIVE, agent_id, true, active ? 1 : 0,
                              "activating registrar agent", err);
}

int vstore_reg_delete(vstore *s, const char *agent_id, qerr *err)
{
    return vstore_write_by_id(s, ST_REG_DELETE, agent_id, false, 0, "deleting registrar agent", err);
}

int vstore_reg_list(vstore *s, int (*fn)(void *ctx, const char *agent_id), void *ctx, qerr *err)
{
    vidlist l = { 0 };
    vstore_lock(s);
    int ret = vstore_collect_ids(s, vstore_q(s, ST_REG_LIST), &l, "listing registrar agents", err);
    vstore_unlock(s);
    if (ret == 0)
        vstore_each_id(&l, fn, ctx);
    free(l.buf);
    return ret;
}

int vstore_reg_count_pending(vstore *s, long *n, qerr *err)
{
    *n = 0;
    vstore_lock(s);
    vq *st = vstore_q(s, ST_REG_COUNT_PENDING);
    int ret = 0;
    if (vstore_step(st) == VQ_ROW) {
        vcol c;
        vc_init(&c, st);
        *n = (long)vc_i64(&c);
    } else {
        ret = vstore_dberr(s, err, "counting pending registrations");
    }
    vstore_done(st);
    vstore_unlock(s);
    return ret;
}

/* Binds before as ?1 and steps a write: number of rows changed, or -1. */
static long expire_step(vstore *s, enum vstmt id, int64_t before, qerr *err)
{
    vq *st = vstore_q(s, id);
    vbind b;
    vb_init(&b, st);
    vb_i64(&b, before);
    if (b.rc != 0) {
        vstore_done(st);
        return vstore_dberr(s, err, "expiring pending registrations");
    }
    return vstore_step_changes(s, st, "expiring pending registrations", err);
}

int vstore_reg_expire(vstore *s, int64_t before, long *n, qerr *err)
{
    vstore_lock(s);
    long a = -1, b = -1;
    if (vstore_begin(s, err) == 0 && (a = expire_step(s, ST_REG_EXPIRE_NEW, before, err)) >= 0 &&
        (b = expire_step(s, ST_REG_EXPIRE_REREG, before, err)) >= 0 && vstore_commit(s, err) == 0) {
        vstore_unlock(s);
        if (n)
            *n = a + b;
        return 0;
    }
    vstore_rollback(s);
    vstore_unlock(s);
    return -1;
}
