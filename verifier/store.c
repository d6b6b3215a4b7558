/* store.c — the verifier store's engine-independent core: opening a store on the engine its
 * database value names, the connection pool and the store lock, transactions, and the
 * sequential bind/column helpers the store's files are written with (store_int.h). */
#include "store_int.h"
#include "store_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- pool ---------------------------------------------------------------------------------- */

/* The connections this thread holds, one per store (a thread may hold several stores at once, as
 * migrate does with its source and target). Thread-local: no other thread reads it. */
#define HELD_MAX 4
static __thread struct held {
    vstore *s;
    vconn *c;
} held[HELD_MAX];

void vstore_lock(vstore *s)
{
    pthread_mutex_lock(&s->mu);
    vconn *c = NULL;
    for (;;) {
        for (int i = 0; i < s->npool && !c; i++)
            if (!s->pool[i].busy)
                c = &s->pool[i];
        if (c)
            break;
        pthread_cond_wait(&s->freed, &s->mu);
    }
    c->busy = true;
    pthread_mutex_unlock(&s->mu);
    int slot = -1;
    for (int i = 0; i < HELD_MAX && slot < 0; i++)
        if (!held[i].s)
            slot = i;
    if (slot < 0) {
        /* More than HELD_MAX stores at once (a bug): the connection goes back, vstore_conn
         * finds none and every statement of this call fails cleanly. */
        pthread_mutex_lock(&s->mu);
        c->busy = false;
        pthread_cond_signal(&s->freed);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    held[slot].s = s;
    held[slot].c = c;
    if (s->drv->checkout)
        s->drv->checkout(c);
}

vconn *vstore_conn(vstore *s)
{
    for (int i = 0; i < HELD_MAX; i++)
        if (held[i].s == s)
            return held[i].c;
    return NULL;
}

void vstore_unlock(vstore *s)
{
    vconn *c = NULL;
    for (int i = 0; i < HELD_MAX && !c; i++)
        if (held[i].s == s) {
            c = held[i].c;
            held[i].s = NULL;
            held[i].c = NULL;
        }
    pthread_mutex_lock(&s->mu);
    if (c)
        c->busy = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->mu);
}

vq *vstore_q(vstore *s, enum vstmt id)
{
    vconn *c = vstore_conn(s);
    return c ? c->st[id] : NULL;
}

/* ---- errors and steps ---------------------------------------------------------------------- */

int vstore_dberr(vstore *s, qerr *err, const char *what)
{
    vconn *c = vstore_conn(s);
    const char *msg = c ? s->drv->errmsg(c) : "no connection held";
    if (c && s->drv->lost(c))
        return qerr_setc(err, 503, "database unavailable: the connection to %s is lost: %s (%s)", s->drv->name,
                         msg, what);
    return qerr_set(err, "database error: %s (%s)", msg, what);
}

static const vdriver *drv_of(vq *st)
{
    return ((const vq_head *)st)->c->s->drv;
}

void vstore_done(vq *st)
{
    if (st)
        drv_of(st)->reset(st);
}

int vstore_step(vq *st)
{
    return st ? drv_of(st)->step(st) : VQ_ERROR;
}

int vstore_begin(vstore *s, qerr *err)
{
    vconn *c = vstore_conn(s);
    if (!c || s->drv->begin(c) != 0)
        return vstore_dberr(s, err, "starting a transaction");
    return 0;
}

int vstore_commit(vstore *s, qerr *err)
{
    vconn *c = vstore_conn(s);
    if (c && s->drv->commit(c) == 0) {
        __atomic_add_fetch(&s->commits, 1, __ATOMIC_RELAXED);
        return 0;
    }
    vstore_dberr(s, err, "committing");
    vstore_rollback(s);
    return -1;
}

void vstore_rollback(vstore *s)
{
    vconn *c = vstore_conn(s);
    if (c)
        s->drv->rollback(c);
}

long vstore_step_changes(vstore *s, vq *st, const char *what, qerr *err)
{
    int rc = vstore_step(st);
    long ret;
    if (rc == VQ_DONE || rc == VQ_ROW)
        ret = s->drv->changes(st);
    else
        ret = vstore_dberr(s, err, what);
    vstore_done(st);
    return ret;
}

int vstore_step_write(vstore *s, vq *st, const char *what, qerr *err)
{
    long n = vstore_step_changes(s, st, what, err);
    return n < 0 ? -1 : n > 0 ? 1 : 0;
}

int vstore_step_id(vstore *s, vq *st, int64_t *id, const char *what, qerr *err)
{
    int rc = vstore_step(st), ret = 0;
    if (rc == VQ_ROW) {
        vcol c;
        vc_init(&c, st);
        *id = vc_i64(&c);
    } else {
        ret = vstore_dberr(s, err, what);
    }
    vstore_done(st);
    return ret;
}

/* One statement with the agent id as ?1 and an optional integer as ?2. */
int vstore_write_by_id(vstore *s, enum vstmt id, const char *agent_id, bool with_int, int64_t v,
                       const char *what, qerr *err)
{
    if (vstore_check_id(agent_id, "agent id", err) != 0)
        return -1;
    vstore_lock(s);
    vq *st = vstore_q(s, id);
    vbind b;
    vb_init(&b, st);
    vb_text(&b, agent_id);
    if (with_int)
        vb_i64(&b, v);
    int ret;
    if (b.rc != 0) {
        ret = vstore_dberr(s, err, what);
        vstore_done(st);
    } else {
        ret = vstore_step_write(s, st, what, err);
    }
    vstore_unlock(s);
    return ret;
}

const char *vstore_agent_ids(const char *agent_id, const char *display_id, qerr *err)
{
    if (vstore_check_id(agent_id, "agent id", err) != 0)
        return NULL;
    for (const char *p = agent_id; *p; p++)
        if (*p >= 'A' && *p <= 'Z') {
            qerr_setc(err, 400, "agent id %s is not in lower case (the store's key)", agent_id);
            return NULL;
        }
    if (!display_id || !display_id[0])
        return agent_id;
    if (strcasecmp(display_id, agent_id) != 0) {
        qerr_setc(err, 400, "the display id of agent %s differs from its id other than in case", agent_id);
        return NULL;
    }
    return display_id;
}

void vstore_read_display_id(vcol *c, const char *agent_id, char display_id[VSTORE_ID_MAX])
{
    vc_copy(c, display_id, VSTORE_ID_MAX);
    if (!display_id[0] || strcasecmp(display_id, agent_id) != 0)   /* a row written without one */
        memcpy(display_id, agent_id, strlen(agent_id) + 1);
}

int vstore_check_id(const char *id, const char *what, qerr *err)
{
    if (!id || !id[0])
        return qerr_setc(err, 400, "%s is empty", what);
    if (strnlen(id, VSTORE_ID_MAX) >= VSTORE_ID_MAX)
        return qerr_setc(err, 400, "%s is longer than %d bytes", what, VSTORE_ID_MAX - 1);
    return 0;
}

/* ---- binding and columns ------------------------------------------------------------------- */

void vb_init(vbind *b, vq *st)
{
    b->st = st;
    b->idx = 1;
    b->rc = st ? 0 : -1;
}

static void vb_keep(vbind *b, int rc)
{
    if (b->rc == 0)
        b->rc = rc;
    b->idx++;
}

void vb_text(vbind *b, const char *s)
{
    if (!b->st)
        return vb_keep(b, -1);
    const vdriver *d = drv_of(b->st);
    vb_keep(b, s ? d->bind_text(b->st, b->idx, s) : d->bind_null(b->st, b->idx));
}

void vb_i64(vbind *b, int64_t v)
{
    vb_keep(b, b->st ? drv_of(b->st)->bind_i64(b->st, b->idx, v) : -1);
}

void vb_u64(vbind *b, uint64_t v)
{
    vb_keep(b, b->st ? drv_of(b->st)->bind_i64(b->st, b->idx, (int64_t)v) : -1);
}

void vb_blob(vbind *b, const void *p, size_t n)
{
    vb_keep(b, b->st ? drv_of(b->st)->bind_blob(b->st, b->idx, p, n) : -1);
}

void vb_null(vbind *b)
{
    vb_keep(b, b->st ? drv_of(b->st)->bind_null(b->st, b->idx) : -1);
}

void vc_init(vcol *c, vq *st)
{
    c->st = st;
    c->idx = 0;
    c->oom = false;
}

const char *vc_text(vcol *c, size_t *n)
{
    *n = 0;
    return drv_of(c->st)->col_text(c->st, c->idx++, n);
}

char *vc_strdup(vcol *c)
{
    size_t n = 0;
    const char *t = vc_text(c, &n);
    if (!t)
        return NULL;
    char *out = malloc(n + 1);
    if (!out) {
        c->oom = true;
        return NULL;
    }
    memcpy(out, t, n);
    out[n] = '\0';
    return out;
}

void vc_copy(vcol *c, char *dst, size_t cap)
{
    size_t n = 0;
    const char *t = vc_text(c, &n);
    dst[0] = '\0';
    if (!t)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, t, n);
    dst[n] = '\0';
}

int64_t vc_i64(vcol *c)
{
    return drv_of(c->st)->col_i64(c->st, c->idx++);
}

uint64_t vc_u64(vcol *c)
{
    return (uint64_t)drv_of(c->st)->col_i64(c->st, c->idx++);
}

bool vc_null(vcol *c)
{
    return drv_of(c->st)->col_type(c->st, c->idx) == VQT_NULL;
}

const void *vc_blob(vcol *c, size_t *n)
{
    *n = 0;
    return drv_of(c->st)->col_blob(c->st, c->idx++, n);
}

void vc_skip(vcol *c)
{
    c->idx++;
}

int vstore_collect_ids(vstore *s, vq *st, vidlist *l, const char *what, qerr *err)
{
    int rc, ret = 0;
    while ((rc = vstore_step(st)) == VQ_ROW) {
        vcol c;
        vc_init(&c, st);
        size_t n = 0;
        const char *t = vc_text(&c, &n);
        if (!t)
            continue;
        if (l->len + n + 1 > l->cap) {
            size_t cap = l->cap ? l->cap : 4096;
            while (cap < l->len + n + 1)
                cap *= 2;
            char *nb = realloc(l->buf, cap);
            if (!nb) {
                ret = qerr_set(err, "out of memory (%s)", what);
                break;
            }
            l->buf = nb;
            l->cap = cap;
        }
        memcpy(l->buf + l->len, t, n);
        l->buf[l->len + n] = '\0';
        l->len += n + 1;
    }
    if (ret == 0 && rc != VQ_DONE)
        ret = vstore_dberr(s, err, what);
    vstore_done(st);
    return ret;
}

void vstore_each_id(vidlist *l, int (*fn)(void *ctx, const char *id), void *ctx)
{
    for (size_t off = 0; off < l->len; off += strlen(l->buf + off) + 1)
        if (fn(ctx, l->buf + off) != 0)
            break;
    free(l->buf);
    l->buf = NULL;
    l->len = l->cap = 0;
}

const vstore_sql *const vstore_sql_tables[] = { vstore_reg_sql, vstore_policy_sql, vstore_agent_sql,
                                                vstore_failure_sql, vstore_mbpolicy_sql, vstore_lease_sql };
const size_t vstore_sql_ntables = sizeof vstore_sql_tables / sizeof vstore_sql_tables[0];

int vstore_prepare_all(vconn *c, qerr *err)
{
    const vdriver *d = c->s->drv;
    for (size_t t = 0; t < vstore_sql_ntables; t++)
        for (const vstore_sql *q = vstore_sql_tables[t]; q->sql; q++)
            if (d->prepare(c, q->sql, &c->st[q->id], err) != 0)
                return -1;
    for (int i = 0; i < ST_COUNT; i++)
        if (!c->st[i])
            return qerr_set(err, "database error: statement %d has no SQL", i);
    return 0;
}

void vstore_finalize_all(vconn *c)
{
    for (int i = 0; i < ST_COUNT; i++) {
        if (c->st[i])
            c->s->drv->finalize(c->st[i]);
        c->st[i] = NULL;
    }
}

/* ---- open / close -------------------------------------------------------------------------- */

static vstore *open_store(const char *database, bool require_empty, qerr *err)
{
    if (!database || !database[0]) {
        qerr_set(err, "database path is empty");
        return NULL;
    }
    vdb_url u;
    if (vdb_url_parse(database, &u, err) < 0)
        return NULL;
    vstore *s = calloc(1, sizeof *s);
    if (!s) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    s->drv = u.kind == VDB_PG ? &vstore_pg_driver : &vstore_sqlite_driver;
    s->npool = u.kind == VDB_PG ? VSTORE_PG_POOL : 1;
    snprintf(s->target, sizeof s->target, "%s", u.target);
    s->require_empty = require_empty;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        qerr_set(err, "cannot create the store mutex");
        return NULL;
    }
    if (pthread_cond_init(&s->freed, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        qerr_set(err, "cannot create the store condition");
        return NULL;
    }
    for (int i = 0; i < s->npool; i++) {
        s->pool[i].s = s;
        if (s->drv->connect(s, &s->pool[i], i == 0, err) != 0) {
            vstore_close(s);
            return NULL;
        }
    }
    return s;
}

vstore *vstore_open(const char *database, qerr *err)
{
    return open_store(database, false, err);
}

vstore *vstore_open_empty(const char *database, qerr *err)
{
    return open_store(database, true, err);
}

void vstore_close(vstore *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->npool; i++)
        if (s->pool[i].impl)
            s->drv->disconnect(&s->pool[i]);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

unsigned long vstore_commits(vstore *s)
{
    return __atomic_load_n(&s->commits, __ATOMIC_RELAXED);
}

int vstore_schema_version(vstore *s)
{
    return s ? s->version : -1;
}

const char *vstore_engine(vstore *s)
{
    return s ? s->drv->name : "";
}
