/* store_int.h — private to verifier/store*.c (and the store's unit test): the store object, the
 * prepared-statement table, the driver interface (store_sqlite.c, store_pg.c) and the helpers the
 * store's files share. The store's logic is written once against these helpers and runs on both
 * engines.
 *
 * Contract:
 * - Every statement is listed once (enum vstmt) with its SQL in the file that uses it, written in
 *   the dialect SQLite and PostgreSQL share (ON CONFLICT upserts, RETURNING); placeholders are ?N
 *   or ?, translated to $N for PostgreSQL. A driver prepares them all on each connection it
 *   opens (PQprepare once per connection) and finalizes them when it closes it.
 * - A store holds a small pool of connections (SQLite: one; PostgreSQL: VSTORE_PG_POOL).
 *   vstore_lock() takes a free connection for the calling thread (waiting while all are busy)
 *   and vstore_unlock() gives it back; vstore_q() is a statement of the connection the calling
 *   thread holds. A thread holds at most one connection of a store at a time (no nesting).
 *   Public calls lock for their whole duration; the helpers below assume the lock is held.
 * - vstore_done() resets a statement and clears its bindings after each use.
 * - Errors: vstore_dberr() formats "database error: <engine message> (<what>)"; when the
 *   connection to the database is lost the code is 503 and the message says so. */
#ifndef QUINCE_VERIFIER_STORE_INT_H
#define QUINCE_VERIFIER_STORE_INT_H

#include <pthread.h>
#include "store.h"

enum vstmt {
    /* store_reg.c */
    ST_REG_GET, ST_REG_PUT, ST_REG_SET_ACTIVE, ST_REG_DELETE, ST_REG_LIST, ST_REG_COUNT_PENDING,
    ST_REG_EXPIRE_NEW, ST_REG_EXPIRE_REREG,
    /* store_policy.c */
    ST_POL_FIND, ST_POL_GET, ST_POL_GET_ID, ST_POL_BODY_FIND, ST_POL_BODY_ADD, ST_POL_BODY_GC,
    ST_POL_ADD, ST_POL_UPDATE, ST_POL_USER, ST_POL_DELETE, ST_POL_LIST,
    /* store_agent.c */
    ST_AG_ADD, ST_AG_GET, ST_AG_DELETE, ST_AG_SAVE_STATE, ST_AG_SET_STATE, ST_AG_SET_ALGS, ST_AG_LIST,
    ST_AG_EXISTS, ST_AG_LIST_DISPLAY,
    /* store_failure.c */
    ST_FAIL_CLEAR, ST_FAIL_ADD, ST_FAIL_GET,
    /* store_mbpolicy.c */
    ST_MB_FIND, ST_MB_GET, ST_MB_ADD, ST_MB_UPDATE, ST_MB_USER, ST_MB_DELETE, ST_MB_LIST,
    /* store_lease.c (and the fenced round save of store_agent.c) */
    ST_LS_BEAT, ST_LS_LIVE, ST_LS_AGENTS, ST_LS_GC, ST_LS_ORPHANS, ST_LS_RECLAIM, ST_LS_TAKE, ST_LS_MINE,
    ST_LS_RELEASE, ST_LS_RELEASE_ALL, ST_LS_FORGET, ST_LS_BUMP, ST_LS_CLAIM, ST_LS_GET, ST_AG_SAVE_FENCED,
    ST_COUNT
};

typedef struct vstore_sql {
    enum vstmt id;
    const char *sql;
} vstore_sql;

/* Each file's statements (terminated by an entry with sql == NULL). */
extern const vstore_sql vstore_reg_sql[], vstore_policy_sql[], vstore_agent_sql[], vstore_failure_sql[],
    vstore_mbpolicy_sql[], vstore_lease_sql[];

/* ---- driver interface ---------------------------------------------------------------------- */

typedef struct vq vq;          /* a prepared statement of one connection (opaque to the logic) */
typedef struct vconn vconn;    /* one connection of the pool */
/* Every driver's statement struct begins with this. */
typedef struct vq_head {
    vconn *c;
} vq_head;

/* Step results. */
enum { VQ_ERROR = -1, VQ_DONE = 0, VQ_ROW = 1 };
/* Column types as the engines report them. */
enum { VQT_NULL = 0, VQT_INT = 1, VQT_TEXT = 2, VQT_BLOB = 3 };

typedef struct vdriver {
    const char *name;                                  /* "SQLite", "PostgreSQL" */
    /* Opens one connection to target (path or URI): prepares the statement table. The first
     * connection of a store (first = true) also brings the schema up to date. 0 or -1. */
    int (*connect)(vstore *s, vconn *c, bool first, qerr *err);
    void (*disconnect)(vconn *c);
    /* Called when a thread takes the connection: a lost one is reconnected (rate-limited). */
    void (*checkout)(vconn *c);
    int (*prepare)(vconn *c, const char *sql, vq **q, qerr *err);   /* ad hoc statements */
    void (*finalize)(vq *q);
    /* Binding, 1-based; 0 or -1. Text and blobs must stay valid until the statement is reset. */
    int (*bind_text)(vq *q, int i, const char *s);
    int (*bind_i64)(vq *q, int i, int64_t v);
    int (*bind_blob)(vq *q, int i, const void *p, size_t n);
    int (*bind_null)(vq *q, int i);
    int (*step)(vq *q);                                /* VQ_ROW, VQ_DONE or VQ_ERROR */
    void (*reset)(vq *q);                              /* also clears the bindings */
    long (*changes)(vq *q);                            /* rows changed by the last write */
    int (*ncols)(vq *q);
    int (*col_type)(vq *q, int i);
    int64_t (*col_i64)(vq *q, int i);                  /* NULL reads as 0 */
    const char *(*col_text)(vq *q, int i, size_t *n);  /* NULL for SQL NULL */
    const void *(*col_blob)(vq *q, int i, size_t *n);
    /* Transactions: begin is exclusive among writers (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
     * transaction-level advisory lock), so a read-then-write sequence sees no other writer. */
    int (*begin)(vconn *c);
    int (*commit)(vconn *c);
    void (*rollback)(vconn *c);                        /* no-op outside a transaction */
    int (*exec)(vconn *c, const char *sql);            /* DDL and the like */
    const char *(*errmsg)(vconn *c);                   /* the last error, one line */
    bool (*lost)(vconn *c);                            /* the connection to the server is gone */
} vdriver;

extern const vdriver vstore_sqlite_driver, vstore_pg_driver;

struct vconn {
    vstore *s;
    bool busy;                 /* taken by a thread (under the store's mutex) */
    vq *st[ST_COUNT];
    void *impl;                /* the driver's connection state */
};

#define VSTORE_POOL_MAX 8
#define VSTORE_PG_POOL 4       /* API reads, registrar, state writer and one spare */

struct vstore {
    const vdriver *drv;
    char target[1024];         /* SQLite: the file; PostgreSQL: the URI (never holds a password) */
    pthread_mutex_t mu;
    pthread_cond_t freed;
    vconn pool[VSTORE_POOL_MAX];
    int npool;
    int version;
    bool require_empty;        /* vstore_open_empty: refuse a database that holds data */
    unsigned long commits;     /* BEGIN..COMMIT transactions committed (figures for the bench) */
};

/* Every statement table, for the drivers' prepare-all. */
extern const vstore_sql *const vstore_sql_tables[];
extern const size_t vstore_sql_ntables;

/* Schema migrations of each engine: [i] brings the schema from version i to i + 1. Both arrays
 * have VSTORE_SCHEMA entries (store_schema.c). */
extern const char *const vstore_sqlite_migrations[], *const vstore_pg_migrations[];
extern const int VSTORE_SCHEMA;
/* Applies the missing migrations on an open connection, inside the driver's migration
 * transaction: reads the version (creating schema_version if absent), refuses a newer one, runs
 * migrations[v..]. Sets s->version. 0 or -1. */
int vstore_migrate(vstore *s, vconn *c, const char *const *migrations, qerr *err);

/* With a connection held: 0 when every table of the store is empty, else -1 naming one that is
 * not (store_copy.c). */
int vstore_check_empty(vconn *c, qerr *err);

/* ---- helpers for the store's files ---------------------------------------------------------- */

void vstore_lock(vstore *s);
void vstore_unlock(vstore *s);
/* The calling thread's statement id (the lock must be held). */
vq *vstore_q(vstore *s, enum vstmt id);
/* The calling thread's connection (the lock must be held). */
vconn *vstore_conn(vstore *s);

/* Sets err to "database error: <errmsg> (<what>)" (code 503 when the connection is lost);
 * returns -1. */
int vstore_dberr(vstore *s, qerr *err, const char *what);
/* Reset + clear bindings. */
void vstore_done(vq *st);
/* Steps a statement: VQ_ROW, VQ_DONE or VQ_ERROR. */
int vstore_step(vq *st);

/* BEGIN (exclusive among writers) / COMMIT; 0 or -1 (err set). vstore_rollback is a no-op
 * outside a transaction. */
int vstore_begin(vstore *s, qerr *err);
int vstore_commit(vstore *s, qerr *err);
void vstore_rollback(vstore *s);

/* Steps a write statement (already bound) once and resets it: 1 if it changed a row, 0 if it
 * changed none, -1 on error. */
int vstore_step_write(vstore *s, vq *st, const char *what, qerr *err);
/* The same, giving the number of rows changed (>= 0) or -1. */
long vstore_step_changes(vstore *s, vq *st, const char *what, qerr *err);

/* Steps an INSERT ... RETURNING id (already bound) once and resets it: 0 with *id, or -1. */
int vstore_step_id(vstore *s, vq *st, int64_t *id, const char *what, qerr *err);

/* Locks, binds agent_id as ?1 (and v as ?2 when with_int), steps once: 1 changed, 0 no row, -1. */
int vstore_write_by_id(vstore *s, enum vstmt id, const char *agent_id, bool with_int, int64_t v,
                       const char *what, qerr *err);

/* With the lock held and inside a transaction (store_failure.c): replace the agent's failure
 * records. 1 written, 0 the agent is gone, -1. */
int vstore_failures_put_locked(vstore *s, const char *agent_id, const vfailure *f, size_t n, qerr *err);

/* The display id to store with an agent: display_id, or agent_id when display_id is NULL or "".
 * agent_id must be a valid id in lower case (the key: identity is case-insensitive) and
 * display_id must equal it but for case. NULL (code 400) otherwise. */
const char *vstore_agent_ids(const char *agent_id, const char *display_id, qerr *err);

/* Checks an agent id / policy name: non-NULL, 1..VSTORE_ID_MAX-1 bytes. 0 or -1 (code 400). */
int vstore_check_id(const char *id, const char *what, qerr *err);

/* Sequential binding: every call binds the next parameter (1, 2, ...). The first failure is
 * kept in rc (0 = fine); check it once before stepping. Text and blobs are not copied: they
 * must stay valid until the statement is reset. */
typedef struct vbind {
    vq *st;
    int idx;
    int rc;
} vbind;
void vb_init(vbind *b, vq *st);
void vb_text(vbind *b, const char *s);          /* NULL → SQL NULL */
void vb_i64(vbind *b, int64_t v);
void vb_u64(vbind *b, uint64_t v);              /* stored as the same 64 bits, signed */
void vb_blob(vbind *b, const void *p, size_t n);
void vb_null(vbind *b);

/* Sequential column reading (columns 0, 1, ...). oom is set when a copy could not be made. */
typedef struct vcol {
    vq *st;
    int idx;
    bool oom;
} vcol;
void vc_init(vcol *c, vq *st);
char *vc_strdup(vcol *c);                      /* NULL for SQL NULL */
void vc_copy(vcol *c, char *dst, size_t cap);   /* "" for NULL; cut to cap-1 bytes */
const char *vc_text(vcol *c, size_t *n);        /* borrowed until the next step/reset; NULL for NULL */
int64_t vc_i64(vcol *c);
uint64_t vc_u64(vcol *c);
bool vc_null(vcol *c);                          /* is the current column NULL? (does not advance) */
const void *vc_blob(vcol *c, size_t *n);
void vc_skip(vcol *c);
/* Reads a display_id column; a row without one (or not matching agent_id) shows agent_id. */
void vstore_read_display_id(vcol *c, const char *agent_id, char display_id[VSTORE_ID_MAX]);

/* A list of ids collected under the lock and handed to a callback after it is released (so the
 * callback may call the store again). One buffer for all ids (no per-entry allocation). */
typedef struct vidlist {
    char *buf;
    size_t len, cap;
} vidlist;
/* Steps st (already bound) and appends column 0 of each row; resets st. 0 or -1. */
int vstore_collect_ids(vstore *s, vq *st, vidlist *l, const char *what, qerr *err);
/* Calls fn for each id; stops when fn returns non-zero. Frees the list. */
void vstore_each_id(vidlist *l, int (*fn)(void *ctx, const char *id), void *ctx);

/* Prepares every statement of the tables on c with the driver's prepare. 0 or -1. */
int vstore_prepare_all(vconn *c, qerr *err);
void vstore_finalize_all(vconn *c);

/* For the store's unit test: the connection of a SQLite store (NULL for other engines). */
struct sqlite3;
struct sqlite3 *vstore_sqlite_db(vstore *s);

#endif
