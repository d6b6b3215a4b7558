/* store_failure.c — the failure records of an agent's last failed round (vstore_failures_*). */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#define FAILURES_MAX 1000

const vstore_sql vstore_failure_sql[] = {
    { ST_FAIL_CLEAR, "DELETE FROM failures WHERE agent_id = ?1" },
    { ST_FAIL_ADD,
      "INSERT INTO failures (agent_id, seq, entry, path, event_id, reason, time)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)" },
    { ST_FAIL_GET,
      "SELECT entry, path, event_id, reason, time FROM failures WHERE agent_id = ?1 ORDER BY seq" },
    { ST_COUNT, NULL },
};

void vfailure_free(vfailure *f)
{
    if (!f)
        return;
    free(f->path);
    free(f->event_id);
    free(f->reason);
    memset(f, 0, sizeof *f);
}

/* 1 when the agent exists, 0 when not, -1 on error. */
static int agent_exists(vstore *s, const char *agent_id, qerr *err)
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

int vstore_failures_put_locked(vstore *s, const char *agent_id, const vfailure *f, size_t n, qerr *err)
{
    int ret = agent_exists(s, agent_id, err);
    if (ret <= 0)
        return ret;    /* an agent deleted meanwhile has nothing to record */
    vq *st = vstore_q(s, ST_FAIL_CLEAR);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, agent_id);
    ret = vstore_step_write(s, st, "clearing failure records", err);
    st = vstore_q(s, ST_FAIL_ADD);
    for (size_t i = 0; ret >= 0 && i < n && i < FAILURES_MAX; i++) {
        vb_init(&b, st);
        vb_text(&b, agent_id);
        vb_i64(&b, (int64_t)i);
        vb_u64(&b, f[i].entry);
        vb_text(&b, f[i].path ? f[i].path : "");
        vb_text(&b, f[i].event_id ? f[i].event_id : "");
        vb_text(&b, f[i].reason ? f[i].reason : "");
        vb_i64(&b, f[i].time);
        if (b.rc != 0) {
            ret = vstore_dberr(s, err, "saving failure records");
            vstore_done(st);
        } else {
            ret = vstore_step_write(s, st, "saving failure records", err);
        }
    }
    return ret < 0 ? -1 : 1;
}

static int set_locked(vstore *s, const char *agent_id, const vfailure *f, size_t n, qerr *err)
{
    if (vstore_begin(s, err) != 0)
        return -1;
    int ret = vstore_failures_put_locked(s, agent_id, f, n, err);
    if (ret < 0) {
        vstore_rollback(s);
        return -1;
    }
    return vstore_commit(s, err);
}

int vstore_failures_set(vstore *s, const char *agent_id, const vfailure *f, size_t n, qerr *err)
{
    if (vstore_check_id(agent_id, "agent id", err) != 0)
        return -1;
    vstore_lock(s);
    int ret = set_locked(s, agent_id, f, n, err);
    vstore_unlock(s);
    return ret;
}

/* Records copied out under the lock: numbers in recs, strings in one text buffer. */
typedef struct frec {
    uint64_t entry;
    int64_t time;
    size_t off[3];     /* path, event_id, reason in text */
} frec;

typedef struct fcopy {
    frec *recs;
    size_t n, cap;
    char *text;
    size_t len, tcap;
} fcopy;

/* The next capacity (doubling from 64) that holds need elements. */
static size_t next_cap(size_t cap, size_t need)
{
    size_t c = cap ? cap : 64;
    while (c < need)
        c *= 2;
    return c;
}

static int grow_text(fcopy *fc, size_t need)
{
    if (need <= fc->tcap)
        return 0;
    size_t c = next_cap(fc->tcap, need);
    char *p = realloc(fc->text, c);
    if (!p)
        return -1;
    fc->text = p;
    fc->tcap = c;
    return 0;
}

static int grow_recs(fcopy *fc, size_t need)
{
    if (need <= fc->cap)
        return 0;
    size_t c = next_cap(fc->cap, need);
    frec *p = realloc(fc->recs, c * sizeof *p);
    if (!p)
        return -1;
    fc->recs = p;
    fc->cap = c;
    return 0;
}

static int copy_text(fcopy *fc, vcol *c, size_t *off)
{
    size_t n = 0;
    const char *t = vc_text(c, &n);
    if (grow_text(fc, fc->len + n + 1) != 0)
        return -1;
    *off = fc->len;
    if (n)
        memcpy(fc->text + fc->len, t, n);
    fc->text[fc->len + n] = '\0';
    fc->len += n + 1;
    return 0;
}

static int collect(vstore *s, const char *agent_id, fcopy *fc, qerr *err)
{
    vq *st = vstore_q(s, ST_FAIL_GET);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, agent_id);
    int rc = b.rc == 0 ? VQ_ROW : VQ_ERROR, ret = 0;
    while (rc == VQ_ROW) {
        rc = vstore_step(st);
        if (rc != VQ_ROW)
            break;
        if (grow_recs(fc, fc->n + 1) != 0) {
            ret = qerr_set(err, "out of memory (reading failure records)");
            break;
        }
        frec *r = &fc->recs[fc->n];
        vcol c;
        vc_init(&c, st);
        r->entry = vc_u64(&c);
        if (copy_text(fc, &c, &r->off[0]) != 0 || copy_text(fc, &c, &r->off[1]) != 0 ||
            copy_text(fc, &c, &r->off[2]) != 0) {
            ret = qerr_set(err, "out of memory (reading failure records)");
            break;
        }
        r->time = vc_i64(&c);
        fc->n++;
    }
    if (ret == 0 && rc != VQ_DONE)
        ret = vstore_dberr(s, err, "reading failure records");
    vstore_done(st);
    return ret;
}

int vstore_failures_get(vstore *s, const char *agent_id, int (*fn)(void *ctx, const vfailure *f), void *ctx,
                        qerr *err)
{
    if (vstore_check_id(agent_id, "agent id", err) != 0)
        return -1;
    fcopy fc = { 0 };
    vstore_lock(s);
    int ret = collect(s, agent_id, &fc, err);
    vstore_unlock(s);
    for (size_t i = 0; ret == 0 && i < fc.n; i++) {
        const frec *r = &fc.recs[i];
        vfailure f = { .entry = r->entry, .path = fc.text + r->off[0], .event_id = fc.text + r->off[1],
                       .reason = fc.text + r->off[2], .time = r->time };
        if (fn(ctx, &f) != 0)
            break;
    }
    free(fc.recs);
    free(fc.text);
    return ret;
}
