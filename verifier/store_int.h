/* store_int.h — private to verifier/store*.c (and the store's unit test): the store object, the
 * prepared-statement table and small helpers shared by the store's files.
 *
 * Contract:
 * - Every statement is listed once (enum vstmt) with its SQL in the file that uses it; store.c
 *   prepares them all at open (SQLITE_PREPARE_PERSISTENT) and finalizes them at close.
 * - Public calls take the store mutex (vstore_lock) for their whole duration; helpers below
 *   assume it is held. vstore_done() resets a statement and clears its bindings after each use.
 * - Errors: vstore_dberr() formats "database error: <sqlite3_errmsg> (<what>)". */
#ifndef QUINCE_VERIFIER_STORE_INT_H
#define QUINCE_VERIFIER_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include "store.h"

enum vstmt {
    /* store.c */
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
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

struct vstore {
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *st[ST_COUNT];
    int version;
    unsigned long commits;   /* BEGIN..COMMIT transactions committed (figures for the bench) */
};

void vstore_lock(vstore *s);
void vstore_unlock(vstore *s);

/* Sets err to "database error: <errmsg> (<what>)"; returns -1. */
int vstore_dberr(vstore *s, qerr *err, const char *what);
/* Reset + clear bindings. */
void vstore_done(sqlite3_stmt *st);

/* BEGIN IMMEDIATE / COMMIT; 0 or -1 (err set). vstore_rollback is a no-op outside a transaction. */
int vstore_begin(vstore *s, qerr *err);
int vstore_commit(vstore *s, qerr *err);
void vstore_rollback(vstore *s);

/* Steps a write statement (already bound) once and resets it: 1 if it changed a row, 0 if it
 * changed none, -1 on error. */
int vstore_step_write(vstore *s, sqlite3_stmt *st, const char *what, qerr *err);

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
 * kept in rc; check it once before stepping. Text and blobs are bound SQLITE_STATIC: they must
 * stay valid until the statement is reset. */
typedef struct vbind {
    sqlite3_stmt *st;
    int idx;
    int rc;
} vbind;
void vb_init(vbind *b, sqlite3_stmt *st);
void vb_text(vbind *b, const char *s);          /* NULL → SQL NULL */
void vb_i64(vbind *b, int64_t v);
void vb_u64(vbind *b, uint64_t v);              /* stored as the same 64 bits, signed */
void vb_blob(vbind *b, const void *p, size_t n);
void vb_null(vbind *b);

/* Sequential column reading (columns 0, 1, ...). oom is set when a copy could not be made. */
typedef struct vcol {
    sqlite3_stmt *st;
    int idx;
    bool oom;
} vcol;
void vc_init(vcol *c, sqlite3_stmt *st);
char *vc_strdup(vcol *c);                      /* NULL for SQL NULL */
void vc_copy(vcol *c, char *dst, size_t cap);   /* "" for NULL; cut to cap-1 bytes */
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
int vstore_collect_ids(vstore *s, sqlite3_stmt *st, vidlist *l, const char *what, qerr *err);
/* Calls fn for each id; stops when fn returns non-zero. Frees the list. */
void vstore_each_id(vidlist *l, int (*fn)(void *ctx, const char *id), void *ctx);

#endif
