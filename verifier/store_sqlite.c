/* store_sqlite.c — the SQLite driver of the verifier store (store_int.h's vdriver): the database
 * file and its directory with safe modes, pragmas (WAL, foreign keys), one connection with the
 * statement table prepared SQLITE_PREPARE_PERSISTENT. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct sq_stmt {
    vq_head h;
    sqlite3_stmt *st;
} sq_stmt;

typedef struct sq_conn {
    sqlite3 *db;
} sq_conn;

#define SQ(q) ((sq_stmt *)(q))
#define DB(c) (((sq_conn *)(c)->impl)->db)

/* ---- files --------------------------------------------------------------------------------- */

/* Creates the missing directories of dir, each 0700 whatever the umask. */
static int make_dirs(char *dir, qerr *err)
{
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return qerr_set(err, "database directory %s is not a directory", dir);
        return 0;
    }
    if (errno != ENOENT)
        return qerr_set(err, "cannot access database directory %s: %s", dir, strerror(errno));
    size_t n = strlen(dir);
    for (size_t i = 1; i <= n; i++) {
        if (dir[i] != '/' && dir[i] != '\0')
            continue;
        char saved = dir[i];
        dir[i] = '\0';
        if (mkdir(dir, 0700) == 0) {
            if (chmod(dir, 0700) != 0) {
                qerr_set(err, "cannot set the mode of database directory %s: %s", dir, strerror(errno));
                dir[i] = saved;
                return -1;
            }
        } else if (errno != EEXIST) {
            qerr_set(err, "cannot create database directory %s: %s", dir, strerror(errno));
            dir[i] = saved;
            return -1;
        }
        dir[i] = saved;
    }
    return 0;
}

/* Creates the database file 0600 if missing; tightens the mode of an existing file we own. */
static int prepare_file(const char *path, qerr *err)
{
    char dir[PATH_MAX];
    if (strlen(path) >= sizeof dir)
        return qerr_set(err, "database path is too long");
    strcpy(dir, path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        if (slash == dir)
            slash[1] = '\0';     /* "/x.sqlite" */
        else
            *slash = '\0';
        if (make_dirs(dir, err) != 0)
            return -1;
        /* Anyone who can write the directory can swap the database or plant its -wal/-shm. */
        struct stat db;
        if (stat(dir, &db) == 0 && (db.st_mode & (S_IWGRP | S_IWOTH)))
            return qerr_set(err, "database directory %s is writable by group or others (mode %04o): chmod go-w it, "
                                 "or give the database a directory of its own", dir, (unsigned)(db.st_mode & 07777));
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return qerr_set(err, "cannot open database file %s: %s", path, strerror(errno));
    struct stat sb;
    int ret = 0;
    if (fstat(fd, &sb) != 0)
        ret = qerr_set(err, "cannot stat database file %s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        ret = qerr_set(err, "database file %s is not a regular file", path);
    else if (sb.st_uid == geteuid() && (sb.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0)
        ret = qerr_set(err, "cannot set the mode of database file %s: %s", path, strerror(errno));
    close(fd);
    return ret;
}

/* ---- statements ---------------------------------------------------------------------------- */

static int sq_prepare(vconn *c, const char *sql, vq **q, qerr *err)
{
    sq_stmt *s = calloc(1, sizeof *s);
    if (!s)
        return qerr_set(err, "out of memory");
    s->h.c = c;
    if (sqlite3_prepare_v3(DB(c), sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL) != SQLITE_OK) {
        qerr_set(err, "database error: %s (preparing statements)", sqlite3_errmsg(DB(c)));
        free(s);
        return -1;
    }
    *q = (vq *)s;
    return 0;
}

static void sq_finalize(vq *q)
{
    if (!q)
        return;
    sqlite3_finalize(SQ(q)->st);
    free(q);
}

static int sq_rc(int rc)
{
    return rc == SQLITE_OK ? 0 : -1;
}

static int sq_bind_text(vq *q, int i, const char *s)
{
    return sq_rc(sqlite3_bind_text64(SQ(q)->st, i, s, strlen(s), SQLITE_STATIC, SQLITE_UTF8));
}

static int sq_bind_i64(vq *q, int i, int64_t v)
{
    return sq_rc(sqlite3_bind_int64(SQ(q)->st, i, (sqlite3_int64)v));
}

static int sq_bind_blob(vq *q, int i, const void *p, size_t n)
{
    return sq_rc(sqlite3_bind_blob64(SQ(q)->st, i, p, n, SQLITE_STATIC));
}

static int sq_bind_null(vq *q, int i)
{
    return sq_rc(sqlite3_bind_null(SQ(q)->st, i));
}

static int sq_step(vq *q)
{
    int rc = sqlite3_step(SQ(q)->st);
    return rc == SQLITE_ROW ? VQ_ROW : rc == SQLITE_DONE ? VQ_DONE : VQ_ERROR;
}

static void sq_reset(vq *q)
{
    sqlite3_reset(SQ(q)->st);
    sqlite3_clear_bindings(SQ(q)->st);
}

static long sq_changes(vq *q)
{
    return (long)sqlite3_changes(DB(SQ(q)->h.c));
}

static int sq_ncols(vq *q)
{
    return sqlite3_column_count(SQ(q)->st);
}

static int sq_col_type(vq *q, int i)
{
    switch (sqlite3_column_type(SQ(q)->st, i)) {
    case SQLITE_NULL: return VQT_NULL;
    case SQLITE_INTEGER: return VQT_INT;
    case SQLITE_BLOB: return VQT_BLOB;
    default: return VQT_TEXT;
    }
}

static int64_t sq_col_i64(vq *q, int i)
{
    return (int64_t)sqlite3_column_int64(SQ(q)->st, i);
}

static const char *sq_col_text(vq *q, int i, size_t *n)
{
    if (sqlite3_column_type(SQ(q)->st, i) == SQLITE_NULL)
        return NULL;
    const char *t = (const char *)sqlite3_column_text(SQ(q)->st, i);
    *n = t ? (size_t)sqlite3_column_bytes(SQ(q)->st, i) : 0;
    return t ? t : "";
}

static const void *sq_col_blob(vq *q, int i, size_t *n)
{
    const void *p = sqlite3_column_blob(SQ(q)->st, i);
    *n = p ? (size_t)sqlite3_column_bytes(SQ(q)->st, i) : 0;
    return p;
}

/* ---- connection ---------------------------------------------------------------------------- */

static int sq_exec(vconn *c, const char *sql)
{
    return sq_rc(sqlite3_exec(DB(c), sql, NULL, NULL, NULL));
}

static int sq_begin(vconn *c)
{
    return sq_exec(c, "BEGIN IMMEDIATE");
}

static int sq_commit(vconn *c)
{
    return sq_exec(c, "COMMIT");
}

static void sq_rollback(vconn *c)
{
    /* An error such as SQLITE_FULL may already have rolled the transaction back. */
    if (!sqlite3_get_autocommit(DB(c)))
        sq_exec(c, "ROLLBACK");
}

static const char *sq_errmsg(vconn *c)
{
    return sqlite3_errmsg(DB(c));
}

static bool sq_lost(vconn *c)
{
    (void)c;
    return false;
}

/* Runs a one-row query and copies its first column as text. */
static int query_text(vconn *c, const char *sql, char *out, size_t cap, const char *what, qerr *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(DB(c), sql, -1, &st, NULL) != SQLITE_OK)
        return qerr_set(err, "database error: %s (%s)", sqlite3_errmsg(DB(c)), what);
    int ret = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t ? (const char *)t : "");
    } else {
        ret = qerr_set(err, "database error: %s (%s)", sqlite3_errmsg(DB(c)), what);
    }
    sqlite3_finalize(st);
    return ret;
}

static int exec_or(vconn *c, const char *sql, const char *what, qerr *err)
{
    if (sq_exec(c, sql) != 0)
        return qerr_set(err, "database error: %s (%s)", sqlite3_errmsg(DB(c)), what);
    return 0;
}

/* q_now_ms(): the database's clock for lease expiry (store_lease.h), milliseconds since 1970.
 * The database is a local file, so its clock is this host's. */
static void sql_now_ms(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sqlite3_result_int64(ctx, (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static int set_pragmas(vconn *c, qerr *err)
{
    char v[32];
    if (sqlite3_create_function(DB(c), "q_now_ms", 0, SQLITE_UTF8, NULL, sql_now_ms, NULL, NULL) != SQLITE_OK)
        return qerr_set(err, "database error: %s (registering q_now_ms())", sqlite3_errmsg(DB(c)));
    if (sqlite3_busy_timeout(DB(c), 5000) != SQLITE_OK)
        return qerr_set(err, "database error: %s (setting busy_timeout)", sqlite3_errmsg(DB(c)));
    if (query_text(c, "PRAGMA journal_mode=WAL", v, sizeof v, "setting WAL mode", err) != 0)
        return -1;
    if (strcmp(v, "wal") != 0)
        return qerr_set(err, "database error: cannot use WAL mode (journal mode is %s)", v);
    /* synchronous=NORMAL in WAL mode: every committed transaction is in the WAL file before
     * COMMIT returns, so it survives the process being killed (even kill -9); only an OS crash
     * or power loss can lose the last few transactions (the database itself stays consistent).
     * That is an acceptable trade for not fsyncing on every attestation round. */
    if (exec_or(c, "PRAGMA synchronous=NORMAL", "setting synchronous", err) != 0 ||
        exec_or(c, "PRAGMA foreign_keys=ON", "enabling foreign keys", err) != 0 ||
        query_text(c, "PRAGMA foreign_keys", v, sizeof v, "checking foreign keys", err) != 0)
        return -1;
    if (strcmp(v, "1") != 0)
        return qerr_set(err, "database error: foreign keys are not supported by this SQLite");
    return 0;
}

static void sq_disconnect(vconn *c)
{
    vstore_finalize_all(c);
    if (c->impl) {
        sqlite3_close(DB(c));
        free(c->impl);
        c->impl = NULL;
    }
}

static int sq_connect(vstore *s, vconn *c, bool first, qerr *err)
{
    const char *path = s->target;
    if (prepare_file(path, err) != 0)
        return -1;
    sq_conn *sc = calloc(1, sizeof *sc);
    if (!sc)
        return qerr_set(err, "out of memory");
    c->impl = sc;
    int rc = sqlite3_open_v2(path, &sc->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (sc->db)
            qerr_set(err, "database error: %s (opening %s)", sqlite3_errmsg(sc->db), path);
        else
            qerr_set(err, "database error: out of memory (opening %s)", path);
        sq_disconnect(c);
        return -1;
    }
    sqlite3_extended_result_codes(sc->db, 1);
    if (set_pragmas(c, err) != 0 || (first && vstore_migrate(s, c, vstore_sqlite_migrations, err) != 0) ||
        vstore_prepare_all(c, err) != 0) {
        sq_disconnect(c);
        return -1;
    }
    return 0;
}

const vdriver vstore_sqlite_driver = {
    .name = "SQLite",
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .checkout = NULL,
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .bind_text = sq_bind_text,
    .bind_i64 = sq_bind_i64,
    .bind_blob = sq_bind_blob,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .reset = sq_reset,
    .changes = sq_changes,
    .ncols = sq_ncols,
    .col_type = sq_col_type,
    .col_i64 = sq_col_i64,
    .col_text = sq_col_text,
    .col_blob = sq_col_blob,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .exec = sq_exec,
    .errmsg = sq_errmsg,
    .lost = sq_lost,
};

/* For the store's unit test: the connection's handle (SQLite stores only). */
sqlite3 *vstore_sqlite_db(vstore *s)
{
    return s && s->drv == &vstore_sqlite_driver && s->pool[0].impl ? DB(&s->pool[0]) : NULL;
}
