/* store.c — the verifier store's connection: file and directory modes, pragmas, schema
 * migrations, prepared statements, the store mutex and the helpers shared by store_*.c. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- schema -------------------------------------------------------------------------------- */

/* migrations[i] brings the schema from version i to version i + 1. Append only; never edit a
 * released entry. */
static const char *const migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE registrar ("
    "  agent_id TEXT PRIMARY KEY NOT NULL,"
    "  ek_tpm TEXT, ekcert TEXT, aik_tpm TEXT, mtls_cert TEXT, ip TEXT,"
    "  port INTEGER NOT NULL DEFAULT 0,"
    "  regcount INTEGER NOT NULL DEFAULT 0,"
    "  active INTEGER NOT NULL DEFAULT 0,"
    "  key TEXT);"
    /* runtime policy texts, stored once per checksum; removed when no name uses them */
    "CREATE TABLE policy_bodies ("
    "  id INTEGER PRIMARY KEY,"
    "  checksum TEXT NOT NULL UNIQUE,"
    "  body TEXT NOT NULL);"
    "CREATE TABLE policies ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  body_id INTEGER NOT NULL REFERENCES policy_bodies(id),"
    "  tpm_policy TEXT,"
    "  generator INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX policies_body ON policies(body_id);"
    "CREATE TABLE agents ("
    "  agent_id TEXT PRIMARY KEY NOT NULL,"
    "  ip TEXT, port INTEGER NOT NULL DEFAULT 0,"
    "  ak_tpm TEXT, mtls_cert TEXT, tpm_policy TEXT,"
    "  policy_id INTEGER REFERENCES policies(id),"
    "  ima_sign_verification_keys TEXT, meta_data TEXT,"
    "  accept_tpm_hash_algs TEXT, accept_tpm_encryption_algs TEXT, accept_tpm_signing_algs TEXT,"
    "  hash_alg TEXT, enc_alg TEXT, sign_alg TEXT,"
    "  supported_version TEXT, v TEXT,"
    "  verifier_id TEXT, verifier_ip TEXT, verifier_port INTEGER NOT NULL DEFAULT 0,"
    /* attestation state (vagent_state), rewritten after every round */
    "  operational_state INTEGER NOT NULL,"
    "  next_ima_ml_entry INTEGER NOT NULL DEFAULT 0,"
    "  pcr10_alg TEXT, pcr10 BLOB,"
    "  boottime INTEGER NOT NULL DEFAULT 0,"
    "  tpm_clock INTEGER, tpm_reset_count INTEGER, tpm_restart_count INTEGER,"
    "  attestation_count INTEGER NOT NULL DEFAULT 0,"
    "  last_received_quote INTEGER NOT NULL DEFAULT 0,"
    "  last_successful_attestation INTEGER NOT NULL DEFAULT 0,"
    "  consecutive_failures INTEGER NOT NULL DEFAULT 0,"
    "  severity_level INTEGER NOT NULL DEFAULT -1,"
    "  last_event_id TEXT,"
    "  learned_ima_keyrings TEXT);"
    "CREATE INDEX agents_policy ON agents(policy_id);"
    "CREATE TABLE failures ("
    "  agent_id TEXT NOT NULL REFERENCES agents(agent_id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  entry INTEGER NOT NULL,"
    "  path TEXT NOT NULL, event_id TEXT NOT NULL, reason TEXT NOT NULL,"
    "  time INTEGER NOT NULL,"
    "  PRIMARY KEY (agent_id, seq));",
    /* 2: the key a signed (DSSE) runtime policy was checked with, base64 as the API received it */
    "ALTER TABLE policies ADD COLUMN sign_key TEXT;",
    /* 3: registrar records carry their pending state: when registered (for expiry), failed
     * activations, and a re-registration's new contact data and challenge beside the active
     * record until it is activated */
    "ALTER TABLE registrar ADD COLUMN registered_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE registrar ADD COLUMN failed_activations INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE registrar ADD COLUMN pending_mtls_cert TEXT;"
    "ALTER TABLE registrar ADD COLUMN pending_ip TEXT;"
    "ALTER TABLE registrar ADD COLUMN pending_port INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE registrar ADD COLUMN pending_key TEXT;"
    "CREATE INDEX registrar_pending ON registrar(registered_at) WHERE active = 0 OR pending_key IS NOT NULL;",
    /* 4: measured boot: named reference states, the agent's reference, and whether the reference
     * was evaluated since the agent's last boot ([verifier] measured_boot_evaluate = once) */
    "CREATE TABLE mbpolicies ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  mb_policy TEXT NOT NULL);"
    "ALTER TABLE agents ADD COLUMN mb_policy_id INTEGER REFERENCES mbpolicies(id);"
    "ALTER TABLE agents ADD COLUMN mb_evaluated INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX agents_mbpolicy ON agents(mb_policy_id);",
    /* 5: IMA entries that passed since the replay began (the running "good" of the counts line) */
    "ALTER TABLE agents ADD COLUMN ima_good_total INTEGER NOT NULL DEFAULT 0;",
    /* 6: the id as first registered / added, echoed in answers (Keylime keeps the case); agent_id
     * stays the lower-case key, so identity is still case-insensitive. Old rows show their key. */
    "ALTER TABLE registrar ADD COLUMN display_id TEXT NOT NULL DEFAULT '';"
    "UPDATE registrar SET display_id = agent_id;"
    "ALTER TABLE agents ADD COLUMN display_id TEXT NOT NULL DEFAULT '';"
    "UPDATE agents SET display_id = agent_id;",
    /* 7: leases (store_lease.h): a heartbeat row per verifier process, a lease row per agent
     * (owner instance, epoch); every agent starts unowned */
    "CREATE TABLE verifiers ("
    "  instance TEXT PRIMARY KEY NOT NULL,"
    "  verifier_id TEXT NOT NULL,"
    "  expiry INTEGER NOT NULL);"
    "CREATE TABLE leases ("
    "  agent_id TEXT PRIMARY KEY NOT NULL REFERENCES agents(agent_id) ON DELETE CASCADE,"
    "  owner TEXT,"
    "  epoch INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX leases_owner ON leases(owner);"
    "INSERT INTO leases (agent_id, owner, epoch) SELECT agent_id, NULL, 0 FROM agents;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static const vstore_sql store_sql[] = {
    { ST_BEGIN, "BEGIN IMMEDIATE" },
    { ST_COMMIT, "COMMIT" },
    { ST_ROLLBACK, "ROLLBACK" },
    { ST_COUNT, NULL },
};

/* ---- helpers ------------------------------------------------------------------------------- */

void vstore_lock(vstore *s)
{
    pthread_mutex_lock(&s->mu);
}

void vstore_unlock(vstore *s)
{
    pthread_mutex_unlock(&s->mu);
}

int vstore_dberr(vstore *s, qerr *err, const char *what)
{
    return qerr_set(err, "database error: %s (%s)", sqlite3_errmsg(s->db), what);
}

void vstore_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int step_simple(vstore *s, enum vstmt id, const char *what, qerr *err)
{
    sqlite3_stmt *st = s->st[id];
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        vstore_dberr(s, err, what);
    vstore_done(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int vstore_begin(vstore *s, qerr *err)
{
    return step_simple(s, ST_BEGIN, "starting a transaction", err);
}

int vstore_commit(vstore *s, qerr *err)
{
    if (step_simple(s, ST_COMMIT, "committing", err) == 0) {
        s->commits++;
        return 0;
    }
    vstore_rollback(s);
    return -1;
}

void vstore_rollback(vstore *s)
{
    /* An error such as SQLITE_FULL may already have rolled the transaction back. */
    if (!sqlite3_get_autocommit(s->db))
        step_simple(s, ST_ROLLBACK, "rolling back", NULL);
}

int vstore_step_write(vstore *s, sqlite3_stmt *st, const char *what, qerr *err)
{
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_DONE)
        ret = sqlite3_changes(s->db) > 0 ? 1 : 0;
    else
        ret = vstore_dberr(s, err, what);
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
    sqlite3_stmt *st = s->st[id];
    vbind b;
    vb_init(&b, st);
    vb_text(&b, agent_id);
    if (with_int)
        vb_i64(&b, v);
    int ret;
    if (b.rc != SQLITE_OK) {
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

void vb_init(vbind *b, sqlite3_stmt *st)
{
    b->st = st;
    b->idx = 1;
    b->rc = SQLITE_OK;
}

static void vb_keep(vbind *b, int rc)
{
    if (b->rc == SQLITE_OK)
        b->rc = rc;
    b->idx++;
}

void vb_text(vbind *b, const char *s)
{
    vb_keep(b, s ? sqlite3_bind_text64(b->st, b->idx, s, strlen(s), SQLITE_STATIC, SQLITE_UTF8)
                 : sqlite3_bind_null(b->st, b->idx));
}

void vb_i64(vbind *b, int64_t v)
{
    vb_keep(b, sqlite3_bind_int64(b->st, b->idx, (sqlite3_int64)v));
}

void vb_u64(vbind *b, uint64_t v)
{
    vb_keep(b, sqlite3_bind_int64(b->st, b->idx, (sqlite3_int64)v));
}

void vb_blob(vbind *b, const void *p, size_t n)
{
    vb_keep(b, sqlite3_bind_blob64(b->st, b->idx, p, n, SQLITE_STATIC));
}

void vb_null(vbind *b)
{
    vb_keep(b, sqlite3_bind_null(b->st, b->idx));
}

void vc_init(vcol *c, sqlite3_stmt *st)
{
    c->st = st;
    c->idx = 0;
    c->oom = false;
}

char *vc_strdup(vcol *c)
{
    int i = c->idx++;
    if (sqlite3_column_type(c->st, i) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(c->st, i);
    size_t n = (size_t)sqlite3_column_bytes(c->st, i);
    char *out = t ? malloc(n + 1) : NULL;
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
    int i = c->idx++;
    dst[0] = '\0';
    if (sqlite3_column_type(c->st, i) == SQLITE_NULL)
        return;
    const unsigned char *t = sqlite3_column_text(c->st, i);
    size_t n = (size_t)sqlite3_column_bytes(c->st, i);
    if (!t) {
        c->oom = true;
        return;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, t, n);
    dst[n] = '\0';
}

int64_t vc_i64(vcol *c)
{
    return (int64_t)sqlite3_column_int64(c->st, c->idx++);
}

uint64_t vc_u64(vcol *c)
{
    return (uint64_t)sqlite3_column_int64(c->st, c->idx++);
}

bool vc_null(vcol *c)
{
    return sqlite3_column_type(c->st, c->idx) == SQLITE_NULL;
}

const void *vc_blob(vcol *c, size_t *n)
{
    int i = c->idx++;
    const void *p = sqlite3_column_blob(c->st, i);
    *n = p ? (size_t)sqlite3_column_bytes(c->st, i) : 0;
    return p;
}

void vc_skip(vcol *c)
{
    c->idx++;
}

int vstore_collect_ids(vstore *s, sqlite3_stmt *st, vidlist *l, const char *what, qerr *err)
{
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
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
    if (ret == 0 && rc != SQLITE_DONE)
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

/* q_now_ms(): the database's clock for lease expiry (store_lease.h), milliseconds since 1970.
 * On SQLite the database is a local file, so its clock is this host's. */
static void sql_now(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sqlite3_result_int64(ctx, (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* ---- open / close -------------------------------------------------------------------------- */

static int exec(vstore *s, const char *sql, const char *what, qerr *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return vstore_dberr(s, err, what);
    return 0;
}

/* Runs a one-row query and copies its first column as text. */
static int query_text(vstore *s, const char *sql, char *out, size_t cap, const char *what, qerr *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return vstore_dberr(s, err, what);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW) {
        vcol c;
        vc_init(&c, st);
        vc_copy(&c, out, cap);
    } else {
        ret = vstore_dberr(s, err, what);
    }
    sqlite3_finalize(st);
    return ret;
}

static int set_pragmas(vstore *s, qerr *err)
{
    char v[32];
    if (sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK)
        return vstore_dberr(s, err, "setting busy_timeout");
    if (query_text(s, "PRAGMA journal_mode=WAL", v, sizeof v, "setting WAL mode", err) != 0)
        return -1;
    if (strcmp(v, "wal") != 0)
        return qerr_set(err, "database error: cannot use WAL mode (journal mode is %s)", v);
    /* synchronous=NORMAL in WAL mode: every committed transaction is in the WAL file before
     * COMMIT returns, so it survives the process being killed (even kill -9); only an OS crash
     * or power loss can lose the last few transactions (the database itself stays consistent).
     * That is an acceptable trade for not fsyncing on every attestation round. */
    if (exec(s, "PRAGMA synchronous=NORMAL", "setting synchronous", err) != 0)
        return -1;
    if (exec(s, "PRAGMA foreign_keys=ON", "enabling foreign keys", err) != 0)
        return -1;
    if (query_text(s, "PRAGMA foreign_keys", v, sizeof v, "checking foreign keys", err) != 0)
        return -1;
    if (strcmp(v, "1") != 0)
        return qerr_set(err, "database error: foreign keys are not supported by this SQLite");
    return 0;
}

static int read_version(vstore *s, int *version, qerr *err)
{
    char v[32];
    if (query_text(s, "SELECT coalesce(max(version), 0) FROM schema_version", v, sizeof v,
                   "reading the schema version", err) != 0)
        return -1;
    *version = atoi(v);
    return 0;
}

static int write_version(vstore *s, int version, qerr *err)
{
    sqlite3_stmt *st = NULL;
    if (exec(s, "DELETE FROM schema_version", "writing the schema version", err) != 0)
        return -1;
    static const char sql[] = "INSERT INTO schema_version (version) VALUES (?1)";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return vstore_dberr(s, err, "writing the schema version");
    sqlite3_bind_int(st, 1, version);
    int ret = sqlite3_step(st) == SQLITE_DONE ? 0 : vstore_dberr(s, err, "writing the schema version");
    sqlite3_finalize(st);
    return ret;
}

/* Applies every missing migration in one transaction. */
static int migrate(vstore *s, qerr *err)
{
    if (exec(s, "BEGIN IMMEDIATE", "starting the schema migration", err) != 0)
        return -1;
    int version = 0;
    if (exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
             "creating schema_version", err) != 0 ||
        read_version(s, &version, err) != 0)
        goto fail;
    if (version > SCHEMA_VERSION) {
        qerr_set(err, "database error: schema version %d is newer than this program's (%d)", version,
                 SCHEMA_VERSION);
        goto fail;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        char what[64];
        snprintf(what, sizeof what, "migrating the schema to version %d", v + 1);
        if (exec(s, migrations[v], what, err) != 0)
            goto fail;
    }
    if (version < SCHEMA_VERSION && write_version(s, SCHEMA_VERSION, err) != 0)
        goto fail;
    if (exec(s, "COMMIT", "committing the schema migration", err) != 0)
        goto fail;
    s->version = SCHEMA_VERSION;
    return 0;
fail:
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int prepare_all(vstore *s, qerr *err)
{
    const vstore_sql *const tables[] = { store_sql, vstore_reg_sql, vstore_policy_sql, vstore_agent_sql,
                                         vstore_failure_sql, vstore_mbpolicy_sql, vstore_lease_sql };
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (const vstore_sql *q = tables[t]; q->sql; q++) {
            if (sqlite3_prepare_v3(s->db, q->sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[q->id], NULL) !=
                SQLITE_OK)
                return vstore_dberr(s, err, "preparing statements");
        }
    }
    for (int i = 0; i < ST_COUNT; i++)
        if (!s->st[i])
            return qerr_set(err, "database error: statement %d has no SQL", i);
    return 0;
}

vstore *vstore_open(const char *path, qerr *err)
{
    if (!path || !path[0]) {
        qerr_set(err, "database path is empty");
        return NULL;
    }
    if (prepare_file(path, err) != 0)
        return NULL;
    vstore *s = calloc(1, sizeof *s);
    if (!s) {
        qerr_set(err, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        qerr_set(err, "cannot create the store mutex");
        return NULL;
    }
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (s->db)
            qerr_set(err, "database error: %s (opening %s)", sqlite3_errmsg(s->db), path);
        else
            qerr_set(err, "database error: out of memory (opening %s)", path);
        vstore_close(s);
        return NULL;
    }
    sqlite3_extended_result_codes(s->db, 1);
    if (sqlite3_create_function(s->db, "q_now_ms", 0, SQLITE_UTF8, NULL, sql_now, NULL, NULL) != SQLITE_OK) {
        vstore_dberr(s, err, "registering q_now_ms()");
        vstore_close(s);
        return NULL;
    }
    if (set_pragmas(s, err) != 0 || migrate(s, err) != 0 || prepare_all(s, err) != 0) {
        vstore_close(s);
        return NULL;
    }
    return s;
}

void vstore_close(vstore *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

unsigned long vstore_commits(vstore *s)
{
    vstore_lock(s);
    unsigned long n = s->commits;
    vstore_unlock(s);
    return n;
}

int vstore_schema_version(vstore *s)
{
    return s ? s->version : -1;
}
