/* store_pg.c — the PostgreSQL driver of the verifier store (store_int.h's vdriver), on libpq.
 *
 * - Connection: the URI as given (expand_dbname), so sslmode, sslrootcert, service and the rest
 *   come from it, from a libpq service file or from the environment; the password only ever
 *   comes from a password file or service file (store_url.c refuses one in the URI), and no
 *   message here repeats the URI. A bounded connect_timeout and TCP keepalives, so a server
 *   that went away is noticed rather than waited for.
 * - Statements: the shared SQL with ?N/? turned into $N, prepared once per connection
 *   (PQprepare) and run with PQexecPrepared: numbers and text as text parameters, blobs as
 *   binary (bytea), results in binary format (no bytea escaping).
 * - Transactions take one transaction-level advisory lock, so the store's read-then-write
 *   transactions are serialised among all writers as they are on SQLite.
 * - A lost connection makes calls fail with 503; it is re-established when a thread next takes
 *   it (at most once a second), or at once for a statement outside a transaction, which is then
 *   run again. */
#include "store_int.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* pg_type OIDs (catalog/pg_type_d.h is a server header) */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23

#define TX_LOCK_KEY "5139728457"   /* pg_advisory_xact_lock key of the store's write transactions */

typedef struct pg_stmt {
    vq_head h;
    char name[24];
    char *sql;                /* with $N placeholders */
    int nparams;
    const char **vals;
    int *lens, *fmts;
    char (*num)[24];          /* text of integer parameters */
    PGresult *res;
    bool ran;
    int row, nrows;
    long changes;
    char tmp[24];             /* an integer column read as text */
} pg_stmt;

typedef struct pg_conn {
    PGconn *pg;
    unsigned long seq;        /* statement names */
    bool lost;
    time_t last_try;
    char err[400];
} pg_conn;

#define PQ(q) ((pg_stmt *)(q))
#define PC(c) ((pg_conn *)(c)->impl)

/* ---- errors -------------------------------------------------------------------------------- */

static void set_err(vconn *c, const char *msg)
{
    size_t n = msg ? strcspn(msg, "\r\n") : 0;
    if (n >= sizeof PC(c)->err)
        n = sizeof PC(c)->err - 1;
    if (n == 0) {
        msg = "no detail";
        n = strlen(msg);
    }
    memcpy(PC(c)->err, msg, n);
    PC(c)->err[n] = '\0';
}

/* Keeps a failed result's message and notices a lost connection. */
static void note_fail(vconn *c, const PGresult *r)
{
    pg_conn *p = PC(c);
    const char *prim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    set_err(c, prim ? prim : PQerrorMessage(p->pg));
    if (PQstatus(p->pg) == CONNECTION_BAD)
        p->lost = true;
}

static const char *pg_errmsg(vconn *c)
{
    return PC(c)->err;
}

static bool pg_lost(vconn *c)
{
    return PC(c)->lost || PQstatus(PC(c)->pg) == CONNECTION_BAD;
}

/* ---- SQL translation ----------------------------------------------------------------------- */

/* ?N → $N, ? → $(highest so far + 1), outside quoted text; *nparams gets the highest. */
static char *to_dollar(const char *sql, int *nparams)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 2 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    int hi = 0;
    char quote = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = sql[i];
        if (quote) {
            if (ch == quote)
                quote = 0;
            out[o++] = ch;
            continue;
        }
        if (ch == '\'' || ch == '"') {
            quote = ch;
            out[o++] = ch;
            continue;
        }
        if (ch != '?') {
            out[o++] = ch;
            continue;
        }
        int k = 0;
        while (i + 1 < n && sql[i + 1] >= '0' && sql[i + 1] <= '9' && k < 1000)
            k = k * 10 + (sql[++i] - '0');
        if (k == 0)
            k = hi + 1;
        if (k > hi)
            hi = k;
        o += (size_t)sprintf(out + o, "$%d", k);
    }
    out[o] = '\0';
    *nparams = hi;
    return out;
}

/* ---- statements ---------------------------------------------------------------------------- */

static int send_prepare(vconn *c, pg_stmt *q)
{
    PGresult *r = PQprepare(PC(c)->pg, q->name, q->sql, 0, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        note_fail(c, r);
    PQclear(r);
    return ok ? 0 : -1;
}

static void stmt_free(pg_stmt *q)
{
    if (!q)
        return;
    PQclear(q->res);
    free(q->sql);
    free(q->vals);
    free(q->lens);
    free(q->fmts);
    free(q->num);
    free(q);
}

static int pg_prepare(vconn *c, const char *sql, vq **out, qerr *err)
{
    pg_stmt *q = calloc(1, sizeof *q);
    if (!q)
        return qerr_set(err, "out of memory");
    q->h.c = c;
    snprintf(q->name, sizeof q->name, "q%lu", ++PC(c)->seq);
    q->sql = to_dollar(sql, &q->nparams);
    size_t np = q->nparams > 0 ? (size_t)q->nparams : 1;
    q->vals = calloc(np, sizeof *q->vals);
    q->lens = calloc(np, sizeof *q->lens);
    q->fmts = calloc(np, sizeof *q->fmts);
    q->num = calloc(np, sizeof *q->num);
    if (!q->sql || !q->vals || !q->lens || !q->fmts || !q->num) {
        stmt_free(q);
        return qerr_set(err, "out of memory");
    }
    if (send_prepare(c, q) != 0) {
        stmt_free(q);
        return qerr_set(err, "database error: %s (preparing statements)", PC(c)->err);
    }
    *out = (vq *)q;
    return 0;
}

static void pg_finalize(vq *vqp)
{
    pg_stmt *q = PQ(vqp);
    if (!q)
        return;
    pg_conn *p = PC(q->h.c);
    if (p && p->pg && !pg_lost(q->h.c)) {
        char sql[48];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", q->name);
        PQclear(PQexec(p->pg, sql));
    }
    stmt_free(q);
}

static int param(pg_stmt *q, int i)
{
    return i >= 1 && i <= q->nparams ? i - 1 : -1;
}

static int pg_bind_text(vq *vqp, int i, const char *s)
{
    pg_stmt *q = PQ(vqp);
    int k = param(q, i);
    if (k < 0)
        return -1;
    q->vals[k] = s;
    q->lens[k] = 0;
    q->fmts[k] = 0;
    return 0;
}

static int pg_bind_i64(vq *vqp, int i, int64_t v)
{
    pg_stmt *q = PQ(vqp);
    int k = param(q, i);
    if (k < 0)
        return -1;
    snprintf(q->num[k], sizeof q->num[k], "%lld", (long long)v);
    return pg_bind_text(vqp, i, q->num[k]);
}

static int pg_bind_blob(vq *vqp, int i, const void *p, size_t n)
{
    pg_stmt *q = PQ(vqp);
    int k = param(q, i);
    if (k < 0 || n > 0x7fffffff)
        return -1;
    q->vals[k] = p ? p : "";
    q->lens[k] = (int)n;
    q->fmts[k] = 1;
    return 0;
}

static int pg_bind_null(vq *vqp, int i)
{
    pg_stmt *q = PQ(vqp);
    int k = param(q, i);
    if (k < 0)
        return -1;
    q->vals[k] = NULL;
    q->lens[k] = 0;
    q->fmts[k] = 0;
    return 0;
}

static int reconnect(vconn *c);

static PGresult *exec_prepared(vconn *c, pg_stmt *q)
{
    return PQexecPrepared(PC(c)->pg, q->name, q->nparams, q->vals, q->lens, q->fmts, 1);
}

static bool in_tx(vconn *c)
{
    PGTransactionStatusType t = PQtransactionStatus(PC(c)->pg);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

static int pg_step(vq *vqp)
{
    pg_stmt *q = PQ(vqp);
    vconn *c = q->h.c;
    if (!q->ran) {
        q->ran = true;
        if (PC(c)->lost) {
            set_err(c, "no connection to the server");
            return VQ_ERROR;
        }
        bool tx = in_tx(c);
        PGresult *r = exec_prepared(c, q);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            note_fail(c, r);
            PQclear(r);
            r = NULL;
            /* A server restart kills idle connections: outside a transaction the statement can
             * simply run again on a new one. */
            if (!tx && PC(c)->lost && reconnect(c) == 0) {
                r = exec_prepared(c, q);
                st = PQresultStatus(r);
                if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                    note_fail(c, r);
                    PQclear(r);
                    r = NULL;
                }
            }
            if (!r)
                return VQ_ERROR;
        }
        q->res = r;
        q->row = -1;
        q->nrows = st == PGRES_TUPLES_OK ? PQntuples(r) : 0;
        q->changes = atol(PQcmdTuples(r));
    }
    if (!q->res)
        return VQ_ERROR;
    if (q->row + 1 < q->nrows) {
        q->row++;
        return VQ_ROW;
    }
    q->row = q->nrows;
    return VQ_DONE;
}

static void pg_reset(vq *vqp)
{
    pg_stmt *q = PQ(vqp);
    PQclear(q->res);
    q->res = NULL;
    q->ran = false;
    q->row = q->nrows = 0;
    q->changes = 0;
    for (int k = 0; k < q->nparams; k++) {
        q->vals[k] = NULL;
        q->lens[k] = q->fmts[k] = 0;
    }
}

static long pg_changes(vq *vqp)
{
    return PQ(vqp)->changes;
}

static int pg_ncols(vq *vqp)
{
    return PQ(vqp)->res ? PQnfields(PQ(vqp)->res) : 0;
}

/* The current row's column i, or NULL (no row, no column, SQL NULL). */
static const char *cell(pg_stmt *q, int i, int *len, Oid *type)
{
    if (!q->res || q->row < 0 || q->row >= q->nrows || i < 0 || i >= PQnfields(q->res) ||
        PQgetisnull(q->res, q->row, i))
        return NULL;
    *len = PQgetlength(q->res, q->row, i);
    *type = PQftype(q->res, i);
    return PQgetvalue(q->res, q->row, i);
}

static int pg_col_type(vq *vqp, int i)
{
    int len = 0;
    Oid t = 0;
    if (!cell(PQ(vqp), i, &len, &t))
        return VQT_NULL;
    switch (t) {
    case OID_BOOL: case OID_INT2: case OID_INT4: case OID_INT8: return VQT_INT;
    case OID_BYTEA: return VQT_BLOB;
    default: return VQT_TEXT;
    }
}

static uint64_t be(const char *p, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = v << 8 | (unsigned char)p[k];
    return v;
}

static int64_t pg_col_i64(vq *vqp, int i)
{
    int len = 0;
    Oid t = 0;
    const char *p = cell(PQ(vqp), i, &len, &t);
    if (!p)
        return 0;
    if (t == OID_INT8 && len == 8)
        return (int64_t)be(p, 8);
    if (t == OID_INT4 && len == 4)
        return (int32_t)(uint32_t)be(p, 4);
    if (t == OID_INT2 && len == 2)
        return (int16_t)(uint16_t)be(p, 2);
    if (t == OID_BOOL && len == 1)
        return p[0] ? 1 : 0;
    return strtoll(p, NULL, 10);   /* text: libpq terminates every value */
}

static const char *pg_col_text(vq *vqp, int i, size_t *n)
{
    pg_stmt *q = PQ(vqp);
    int len = 0;
    Oid t = 0;
    const char *p = cell(q, i, &len, &t);
    if (!p)
        return NULL;
    if (t == OID_INT8 || t == OID_INT4 || t == OID_INT2 || t == OID_BOOL) {
        *n = (size_t)snprintf(q->tmp, sizeof q->tmp, "%lld", (long long)pg_col_i64(vqp, i));
        return q->tmp;
    }
    *n = (size_t)len;
    return p;
}

static const void *pg_col_blob(vq *vqp, int i, size_t *n)
{
    int len = 0;
    Oid t = 0;
    const char *p = cell(PQ(vqp), i, &len, &t);
    *n = p ? (size_t)len : 0;
    return p;
}

/* ---- connection ---------------------------------------------------------------------------- */

static int pg_exec(vconn *c, const char *sql)
{
    if (PC(c)->lost) {
        set_err(c, "no connection to the server");
        return -1;
    }
    PGresult *r = PQexec(PC(c)->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        note_fail(c, r);
    PQclear(r);
    return ok ? 0 : -1;
}

static int pg_begin(vconn *c)
{
    static const char sql[] = "BEGIN; SELECT pg_advisory_xact_lock(" TX_LOCK_KEY ")";
    if (pg_exec(c, sql) == 0)
        return 0;
    /* Nothing ran yet: a connection killed while idle is replaced and the BEGIN sent again. */
    if (!in_tx(c) && pg_lost(c) && reconnect(c) == 0 && pg_exec(c, sql) == 0)
        return 0;
    return -1;
}

static int pg_commit(vconn *c)
{
    if (PQtransactionStatus(PC(c)->pg) == PQTRANS_INERROR) {
        set_err(c, "the transaction was aborted by an earlier error");
        return -1;
    }
    return pg_exec(c, "COMMIT");
}

static void pg_rollback(vconn *c)
{
    if (!PC(c)->lost && in_tx(c)) {
        char keep[sizeof PC(c)->err];
        memcpy(keep, PC(c)->err, sizeof keep);   /* the caller reports the first error */
        pg_exec(c, "ROLLBACK");
        memcpy(PC(c)->err, keep, sizeof keep);
    }
}

/* A new session on the same parameters, with the statement table prepared again. */
static int reconnect(vconn *c)
{
    pg_conn *p = PC(c);
    p->last_try = time(NULL);
    PQreset(p->pg);
    if (PQstatus(p->pg) != CONNECTION_OK) {
        set_err(c, PQerrorMessage(p->pg));
        p->lost = true;
        return -1;
    }
    p->lost = false;
    for (int i = 0; i < ST_COUNT; i++) {
        pg_stmt *q = PQ(c->st[i]);
        if (q && send_prepare(c, q) != 0) {
            p->lost = true;
            return -1;
        }
    }
    return 0;
}

static void pg_checkout(vconn *c)
{
    pg_conn *p = PC(c);
    if ((p->lost || PQstatus(p->pg) == CONNECTION_BAD) && time(NULL) != p->last_try)
        reconnect(c);
}

static void pg_disconnect(vconn *c)
{
    if (!c->impl)
        return;
    for (int i = 0; i < ST_COUNT; i++) {
        stmt_free(PQ(c->st[i]));   /* the session's prepared statements end with it */
        c->st[i] = NULL;
    }
    PQfinish(PC(c)->pg);
    free(c->impl);
    c->impl = NULL;
}

/* Server notices ("relation ... already exists, skipping") are not errors and must not reach
 * stderr: a library logs nothing. */
static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static int pg_connect(vstore *s, vconn *c, bool first, qerr *err)
{
    pg_conn *p = calloc(1, sizeof *p);
    if (!p)
        return qerr_set(err, "out of memory");
    c->impl = p;
    /* The defaults first: expand_dbname applies the URI's own settings after them. */
    const char *const keys[] = { "connect_timeout", "application_name", "client_encoding", "keepalives_idle",
                                 "keepalives_interval", "keepalives_count", "dbname", NULL };
    const char *const vals[] = { "10", "quince-verifier", "UTF8", "30", "10", "3", s->target, NULL };
    p->pg = PQconnectdbParams(keys, vals, 1);
    if (!p->pg) {
        free(p);
        c->impl = NULL;
        return qerr_set(err, "PostgreSQL: out of memory");
    }
    if (PQstatus(p->pg) != CONNECTION_OK) {
        set_err(c, PQerrorMessage(p->pg));
        qerr_set(err, "PostgreSQL: cannot connect: %s", p->err);
        pg_disconnect(c);
        return -1;
    }
    PQsetNoticeProcessor(p->pg, quiet, NULL);
    if ((first && vstore_migrate(s, c, vstore_pg_migrations, err) != 0) || vstore_prepare_all(c, err) != 0) {
        pg_disconnect(c);
        return -1;
    }
    return 0;
}

const vdriver vstore_pg_driver = {
    .name = "PostgreSQL",
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .checkout = pg_checkout,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .bind_text = pg_bind_text,
    .bind_i64 = pg_bind_i64,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .reset = pg_reset,
    .changes = pg_changes,
    .ncols = pg_ncols,
    .col_type = pg_col_type,
    .col_i64 = pg_col_i64,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .exec = pg_exec,
    .errmsg = pg_errmsg,
    .lost = pg_lost,
};
