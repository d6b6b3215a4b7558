/* Unit tests for verifier/store*.c (the verifier's SQLite store). Each test runs in its own
 * mkdtemp directory; a second sqlite3 connection checks what is really in the file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../verifier/store_int.h"

#define EVIL_ID "x'); drop table agents;--"   /* lower case: agent ids are keyed in lower case */

typedef struct fx {
    char dir[64];
    char path[128];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/quince-store.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/verifier.sqlite", f->dir);
    *state = f;
    return 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int teardown(void **state)
{
    fx *f = *state;
    chmod(f->dir, 0700);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static vstore *open_ok(const char *path)
{
    qerr e = { 0 };
    vstore *s = vstore_open(path, &e);
    if (!s)
        fail_msg("vstore_open: %s", e.msg);
    return s;
}

/* A one-number query through a second, independent connection. */
static long query_long(const char *path, const char *sql, const char *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long v = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void exec_other(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Collects list callbacks into a newline-joined string. */
typedef struct names {
    char text[4096];
    int n, stop_after;
} names;

static int collect_name(void *ctx, const char *name)
{
    names *l = ctx;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof l->text - len, "%s\n", name);
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static void fill_agent(vagent *a, const char *id, long policy_id)
{
    memset(a, 0, sizeof *a);
    snprintf(a->agent_id, sizeof a->agent_id, "%s", id);
    snprintf(a->st.agent_id, sizeof a->st.agent_id, "%s", id);
    a->ip = "127.0.0.1";
    a->port = 9002;
    a->ak_tpm = "AAEACw==";
    a->mtls_cert = "disabled";
    a->tpm_policy = "{\"mask\": \"0x400\"}";
    a->policy_id = policy_id;
    a->meta_data = "{}";
    a->accept_tpm_hash_algs = "[\"sha256\"]";
    a->accept_tpm_encryption_algs = "[\"rsa\", \"ecc\"]";
    a->accept_tpm_signing_algs = "[\"rsassa\"]";
    a->supported_version = "2.2";
    a->verifier_id = "default";
    a->verifier_ip = "127.0.0.1";
    a->verifier_port = 8881;
    a->st.operational_state = VSTATE_START;
    a->st.pcr10_alg = QHASH_NONE;
    a->st.severity_level = -1;
}

static long put_policy(vstore *s, const char *name, const char *body, const char *sum, bool replace)
{
    qerr e = { 0 };
    long id = 0;
    int r = vstore_policy_put(s, name, body, sum, 1, NULL, replace, &id, &e);
    if (r != 1)
        fail_msg("policy_put %s: %d %s", name, r, e.msg);
    return id;
}

#define SUM_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SUM_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define BODY_A "{\"meta\": {\"version\": 1}, \"digests\": {\"/a\": [\"00\"]}}"
#define BODY_B "{\"meta\": {\"version\": 1}, \"digests\": {\"/b\": [\"11\"]}}"

/* ---- open ---------------------------------------------------------------------------------- */

static void test_open_modes(void **state)
{
    fx *f = *state;
    char path[192], sub[160];
    snprintf(sub, sizeof sub, "%s/a/b", f->dir);
    snprintf(path, sizeof path, "%s/q.sqlite", sub);
    mode_t old = umask(0);    /* the modes must not depend on the umask */
    vstore *s = open_ok(path);
    umask(old);
    assert_int_equal(vstore_schema_version(s), 7);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(stat(sub, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    char parent[160];
    snprintf(parent, sizeof parent, "%s/a", f->dir);
    assert_int_equal(stat(parent, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    char wal[200];
    snprintf(wal, sizeof wal, "%s-wal", path);    /* SQLite gives the WAL file the database's mode */
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(query_long(path, "SELECT max(version) FROM schema_version", NULL), 7);
    assert_int_equal(query_long(path, "SELECT count(*) FROM schema_version", NULL), 1);
    assert_int_equal(query_long(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode", NULL), 1);
    vstore_close(s);
}

static void test_open_fixes_mode(void **state)
{
    fx *f = *state;
    FILE *fp = fopen(f->path, "w");     /* an empty file is an empty database */
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(chmod(f->path, 0644), 0);
    vstore *s = open_ok(f->path);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(vstore_schema_version(s), 7);
    vstore_close(s);
    /* reopening an existing, migrated database keeps version 6 and one version row */
    s = open_ok(f->path);
    assert_int_equal(vstore_schema_version(s), 7);
    vstore_close(s);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM schema_version", NULL), 1);
}

static void test_open_errors(void **state)
{
    fx *f = *state;
    qerr e = { 0 };
    assert_null(vstore_open("", &e));
    assert_null(vstore_open(NULL, &e));
    /* the database path is a directory */
    assert_null(vstore_open(f->dir, &e));
    assert_true(e.msg[0] != '\0');
    /* a parent that is a file */
    char path[192];
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("not a database, not at all, just some text that is long enough to be a header......", fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/x.sqlite", f->path);
    assert_null(vstore_open(path, &e));
    assert_non_null(strstr(e.msg, "not a directory"));
    /* a file that is not a database */
    assert_null(vstore_open(f->path, &e));
    assert_non_null(strstr(e.msg, "database error: "));
    /* a schema newer than this program */
    snprintf(path, sizeof path, "%s/new.sqlite", f->dir);
    vstore_close(open_ok(path));
    exec_other(path, "UPDATE schema_version SET version = 99");
    assert_null(vstore_open(path, &e));
    assert_non_null(strstr(e.msg, "schema version 99 is newer"));
}

/* Child of test_readonly_dir: runs as an unprivileged user when the test runs as root. */
static int readonly_child(const char *ro, const char *ro_wal)
{
    char path[256];
    qerr e = { 0 };
    snprintf(path, sizeof path, "%s/q.sqlite", ro);
    if (vstore_open(path, &e) || !strstr(e.msg, "Permission denied"))
        return 1;
    snprintf(path, sizeof path, "%s/sub/q.sqlite", ro);
    qerr_clear(&e);
    if (vstore_open(path, &e) || !strstr(e.msg, "cannot create database directory"))
        return 2;
    /* an existing database we may write, in a directory where the WAL file cannot be created */
    snprintf(path, sizeof path, "%s/q.sqlite", ro_wal);
    qerr_clear(&e);
    if (vstore_open(path, &e) || !strstr(e.msg, "database error: "))
        return 3;
    return 0;
}

static void test_readonly_dir(void **state)
{
    fx *f = *state;
    char ro[128], ro_wal[128], path[192];
    snprintf(ro, sizeof ro, "%s/ro", f->dir);
    snprintf(ro_wal, sizeof ro_wal, "%s/rowal", f->dir);
    assert_int_equal(mkdir(ro, 0555), 0);
    assert_int_equal(mkdir(ro_wal, 0700), 0);
    snprintf(path, sizeof path, "%s/q.sqlite", ro_wal);
    vstore_close(open_ok(path));
    assert_int_equal(chmod(ro, 0555), 0);
    assert_int_equal(chmod(ro_wal, 0555), 0);
    if (geteuid() != 0) {
        assert_int_equal(readonly_child(ro, ro_wal), 0);
        return;
    }
    /* root ignores directory modes: check as nobody */
    const uid_t nobody = 65534;
    assert_int_equal(chmod(f->dir, 0755), 0);
    assert_int_equal(chown(path, nobody, nobody), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(nobody) != 0 || setuid(nobody) != 0)
            _exit(9);
        _exit(readonly_child(ro, ro_wal));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- registrar ----------------------------------------------------------------------------- */

static void test_registrar(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    vreg_agent a = { .ek_tpm = "ek", .ekcert = "cert", .aik_tpm = "aik", .mtls_cert = "PEM", .ip = "10.0.0.1",
                     .port = 9002, .regcount = 1, .active = false, .key = "key" };
    snprintf(a.agent_id, sizeof a.agent_id, "agent-b");
    assert_int_equal(vstore_reg_put(s, &a, &e), 0);
    vreg_agent b2 = { .aik_tpm = "aik2" };
    snprintf(b2.agent_id, sizeof b2.agent_id, "agent-a");
    assert_int_equal(vstore_reg_put(s, &b2, &e), 0);

    vreg_agent g;
    assert_int_equal(vstore_reg_get(s, "agent-b", &g, &e), 1);
    assert_string_equal(g.agent_id, "agent-b");
    assert_string_equal(g.ek_tpm, "ek");
    assert_string_equal(g.ekcert, "cert");
    assert_string_equal(g.aik_tpm, "aik");
    assert_string_equal(g.mtls_cert, "PEM");
    assert_string_equal(g.ip, "10.0.0.1");
    assert_int_equal(g.port, 9002);
    assert_int_equal(g.regcount, 1);
    assert_false(g.active);
    assert_string_equal(g.key, "key");
    vreg_agent_free(&g);
    assert_int_equal(vstore_reg_get(s, "agent-a", &g, &e), 1);
    assert_null(g.ek_tpm);
    assert_null(g.ekcert);
    assert_null(g.ip);
    assert_string_equal(g.aik_tpm, "aik2");
    vreg_agent_free(&g);
    assert_int_equal(vstore_reg_get(s, "nope", &g, &e), 0);

    /* activate; replace the whole record */
    assert_int_equal(vstore_reg_set_active(s, "agent-b", true, &e), 1);
    assert_int_equal(vstore_reg_set_active(s, "nope", true, &e), 0);
    assert_int_equal(vstore_reg_get(s, "agent-b", &g, &e), 1);
    assert_true(g.active);
    vreg_agent_free(&g);
    a.regcount = 2;
    a.ekcert = NULL;
    assert_int_equal(vstore_reg_put(s, &a, &e), 0);
    assert_int_equal(vstore_reg_get(s, "agent-b", &g, &e), 1);
    assert_int_equal(g.regcount, 2);
    assert_null(g.ekcert);
    assert_false(g.active);
    vreg_agent_free(&g);

    names l = { 0 };
    assert_int_equal(vstore_reg_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "agent-a\nagent-b\n");
    assert_int_equal(vstore_reg_delete(s, "agent-a", &e), 1);
    assert_int_equal(vstore_reg_delete(s, "agent-a", &e), 0);
    memset(&l, 0, sizeof l);
    assert_int_equal(vstore_reg_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "agent-b\n");
    vstore_close(s);
}

/* ---- policies ------------------------------------------------------------------------------ */

static void test_policy_put_semantics(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    long id = -5;
    assert_int_equal(vstore_policy_put(s, "p1", BODY_A, SUM_A, 1, "{\"mask\": \"0x400\"}", false, &id, &e), 1);
    assert_true(id > 0);
    long id2 = -5;
    /* create of an existing name: 0, nothing changes */
    assert_int_equal(vstore_policy_put(s, "p1", BODY_B, SUM_B, 2, NULL, false, &id2, &e), 0);
    assert_int_equal(id2, -5);
    /* replace of a missing name: 0 */
    assert_int_equal(vstore_policy_put(s, "p2", BODY_B, SUM_B, 2, NULL, true, &id2, &e), 0);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policies", NULL), 1);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policy_bodies", NULL), 1);

    vpolicy p;
    assert_int_equal(vstore_policy_get(s, "p1", &p, &e), 1);
    assert_int_equal(p.id, id);
    assert_string_equal(p.name, "p1");
    assert_string_equal(p.checksum, SUM_A);
    assert_string_equal(p.body, BODY_A);
    assert_string_equal(p.tpm_policy, "{\"mask\": \"0x400\"}");
    assert_int_equal(p.generator, 1);
    vpolicy_free(&p);

    /* replace keeps the id, swaps the text; the old text is gone */
    assert_int_equal(vstore_policy_put(s, "p1", BODY_B, SUM_B, 2, NULL, true, &id2, &e), 1);
    assert_int_equal(id2, id);
    assert_int_equal(vstore_policy_get_by_id(s, id, &p, &e), 1);
    assert_string_equal(p.name, "p1");
    assert_string_equal(p.body, BODY_B);
    assert_string_equal(p.checksum, SUM_B);
    assert_null(p.tpm_policy);
    assert_int_equal(p.generator, 2);
    vpolicy_free(&p);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policy_bodies", NULL), 1);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policy_bodies WHERE checksum = ?1", SUM_A), 0);

    assert_int_equal(vstore_policy_get(s, "nope", &p, &e), 0);
    assert_int_equal(vstore_policy_get_by_id(s, id + 100, &p, &e), 0);

    /* a checksum already stored for another text is refused */
    assert_int_equal(vstore_policy_put(s, "p3", BODY_A, SUM_B, 1, NULL, false, NULL, &e), -1);
    assert_int_equal(e.code, 400);
    /* bad arguments */
    assert_int_equal(vstore_policy_put(s, "", BODY_A, SUM_A, 1, NULL, false, NULL, &e), -1);
    assert_int_equal(vstore_policy_put(s, "p4", NULL, SUM_A, 1, NULL, false, NULL, &e), -1);
    assert_int_equal(vstore_policy_put(s, "p4", BODY_A, SUM_A "0", 1, NULL, false, NULL, &e), -1);
    char longname[VSTORE_ID_MAX + 1];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(vstore_policy_put(s, longname, BODY_A, SUM_A, 1, NULL, false, NULL, &e), -1);
    assert_int_equal(e.code, 400);
    longname[VSTORE_ID_MAX - 1] = '\0';    /* 255 bytes: the longest allowed */
    assert_true(put_policy(s, longname, BODY_A, SUM_A, false) > 0);
    assert_int_equal(vstore_policy_get(s, longname, &p, &e), 1);
    assert_string_equal(p.name, longname);
    vpolicy_free(&p);
    vstore_close(s);
}

static void test_policy_body_shared(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    long a = put_policy(s, "first", BODY_A, SUM_A, false);
    long b = put_policy(s, "second", BODY_A, SUM_A, false);
    assert_true(a != b);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policies", NULL), 2);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policy_bodies", NULL), 1);
    assert_int_equal(query_long(f->path, "SELECT count(DISTINCT body_id) FROM policies", NULL), 1);
    /* one name moves to another text: two texts; moving back shares again */
    put_policy(s, "second", BODY_B, SUM_B, true);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policy_bodies", NULL), 2);
    put_policy(s, "second", BODY_A, SUM_A, true);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policy_bodies", NULL), 1);
    /* the text stays while one name uses it, goes with the last */
    assert_int_equal(vstore_policy_delete(s, "first", &e), 1);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policy_bodies", NULL), 1);
    vpolicy p;
    assert_int_equal(vstore_policy_get(s, "second", &p, &e), 1);
    assert_string_equal(p.body, BODY_A);
    vpolicy_free(&p);
    assert_int_equal(vstore_policy_delete(s, "second", &e), 1);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policy_bodies", NULL), 0);
    vstore_close(s);
}

static void test_policy_delete_in_use(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    long id = put_policy(s, "used", BODY_A, SUM_A, false);
    vagent a;
    fill_agent(&a, "agent-z", id);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    fill_agent(&a, "agent-y", id);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    assert_int_equal(vstore_policy_delete(s, "used", &e), -1);
    assert_int_equal(e.code, 409);
    assert_string_equal(e.msg, "Can't delete allowlist as it's currently in use by agent agent-y");
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policies", NULL), 1);
    assert_int_equal(vstore_agent_delete(s, "agent-y", &e), 1);
    assert_int_equal(vstore_policy_delete(s, "used", &e), -1);
    assert_string_equal(e.msg, "Can't delete allowlist as it's currently in use by agent agent-z");
    assert_int_equal(vstore_agent_delete(s, "agent-z", &e), 1);
    assert_int_equal(vstore_policy_delete(s, "used", &e), 1);
    assert_int_equal(vstore_policy_delete(s, "used", &e), 0);
    /* an agent cannot point to a policy that does not exist */
    fill_agent(&a, "agent-x", id);
    assert_int_equal(vstore_agent_add(s, &a, &e), -1);
    assert_non_null(strstr(e.msg, "database error: "));
    vstore_close(s);
}

/* Measured-boot reference states: put semantics, the agent's reference read back with its
 * name and text, the evaluated flag saved with the state, 409 while in use, list. */
static void test_mbpolicy(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    long id = 0, id2 = 0;
    assert_int_equal(vstore_mbpolicy_put(s, "ref", "{\"a\": 1}", true, &id, &e), 0);    /* PUT of a missing name */
    assert_int_equal(vstore_mbpolicy_put(s, "ref", "{\"a\": 1}", false, &id, &e), 1);
    assert_int_equal(vstore_mbpolicy_put(s, "ref", "{\"a\": 2}", false, &id2, &e), 0);  /* POST of an existing name */
    assert_int_equal(vstore_mbpolicy_put(s, "ref", "{\"a\": 3}", true, &id2, &e), 1);
    assert_int_equal(id, id2);
    assert_int_equal(vstore_mbpolicy_put(s, "empty", "", false, NULL, &e), -1);
    assert_int_equal(e.code, 400);
    vmbpolicy m;
    assert_int_equal(vstore_mbpolicy_get(s, "ref", &m, &e), 1);
    assert_string_equal(m.mb_policy, "{\"a\": 3}");
    assert_int_equal(m.id, id);
    vmbpolicy_free(&m);
    assert_int_equal(vstore_mbpolicy_get(s, "nope", &m, &e), 0);

    vagent a;
    fill_agent(&a, "agent-mb", 0);
    a.mb_policy_id = id;
    a.st.mb_evaluated = true;
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    vagent g;
    assert_int_equal(vstore_agent_get(s, "agent-mb", &g, &e), 1);
    assert_int_equal(g.mb_policy_id, id);
    assert_string_equal(g.mb_policy_name, "ref");
    assert_string_equal(g.mb_policy, "{\"a\": 3}");
    assert_true(g.st.mb_evaluated);
    g.st.mb_evaluated = false;
    const vagent_state *sts[] = { &g.st };
    assert_int_equal(vstore_state_save_batch(s, sts, 1, &e), 0);
    vagent_free(&g);
    assert_int_equal(vstore_agent_get(s, "agent-mb", &g, &e), 1);
    assert_false(g.st.mb_evaluated);
    vagent_free(&g);
    fill_agent(&a, "agent-none", 0);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    assert_int_equal(vstore_agent_get(s, "agent-none", &g, &e), 1);
    assert_null(g.mb_policy);
    assert_int_equal(g.mb_policy_id, 0);
    vagent_free(&g);

    assert_int_equal(vstore_mbpolicy_delete(s, "ref", &e), -1);
    assert_int_equal(e.code, 409);
    assert_string_equal(e.msg, "Can't delete mb_policy as it's currently in use by agent agent-mb");
    names l = { 0 };
    assert_int_equal(vstore_mbpolicy_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "ref\n");
    assert_int_equal(vstore_agent_delete(s, "agent-mb", &e), 1);
    assert_int_equal(vstore_mbpolicy_delete(s, "ref", &e), 1);
    assert_int_equal(vstore_mbpolicy_delete(s, "ref", &e), 0);
    vstore_close(s);
}

static void test_policy_list(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    names l = { 0 };
    assert_int_equal(vstore_policy_list(s, collect_name, &l, &e), 0);
    assert_int_equal(l.n, 0);
    put_policy(s, "zeta", BODY_A, SUM_A, false);
    put_policy(s, "alpha", BODY_B, SUM_B, false);
    put_policy(s, "mid", BODY_A, SUM_A, false);
    assert_int_equal(vstore_policy_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "alpha\nmid\nzeta\n");
    memset(&l, 0, sizeof l);
    l.stop_after = 2;
    assert_int_equal(vstore_policy_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "alpha\nmid\n");
    vstore_close(s);
}

/* ---- agents -------------------------------------------------------------------------------- */

static void test_agent_add_duplicate(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    vagent a;
    fill_agent(&a, "dup", 0);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    a.port = 1;
    assert_int_equal(vstore_agent_add(s, &a, &e), 0);
    vagent g;
    assert_int_equal(vstore_agent_get(s, "dup", &g, &e), 1);
    assert_int_equal(g.port, 9002);     /* the first record stays */
    vagent_free(&g);
    assert_int_equal(vstore_agent_get(s, "other", &g, &e), 0);
    assert_int_equal(g.st.pcr10_alg, QHASH_NONE);
    vagent_free(&g);
    vstore_close(s);
}

static void test_agent_roundtrip(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    long pid = put_policy(s, "pol", BODY_A, SUM_A, false);
    vagent a;
    fill_agent(&a, "d432fbb3-d2f1-4a97-9ef7-75bd81c00000", pid);
    a.ima_sign_verification_keys = "{\"keyrings\": {}}";
    a.hash_alg = "sha256";
    a.enc_alg = "rsa";
    a.sign_alg = "rsassa";
    a.v = "dmtleQ==";
    a.st.operational_state = VSTATE_GET_QUOTE;
    a.st.next_ima_ml_entry = UINT64_MAX - 1;
    a.st.pcr10_alg = QHASH_SHA256;
    for (int i = 0; i < 32; i++)
        a.st.pcr10[i] = (uint8_t)(0xff - i);
    a.st.pcr10[40] = 0x77;     /* beyond the bank's size: not stored */
    a.st.boottime = 1700000000;
    a.st.clock = 0x123456789abcULL;
    a.st.reset_count = 4000000000u;
    a.st.restart_count = 7;
    a.st.clock_set = true;
    a.st.attestation_count = 12345;
    a.st.last_received_quote = 1700000100;
    a.st.last_successful_attestation = -3;
    a.st.consecutive_failures = 3;
    a.st.severity_level = -1;
    snprintf(a.st.last_event_id, sizeof a.st.last_event_id, "qoute_validation.quote_validation");
    a.st.learned_ima_keyrings = "{\".ima\": \"abc\"}";
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    vstore_close(s);

    s = open_ok(f->path);     /* from the file, not from a cache */
    vagent g;
    assert_int_equal(vstore_agent_get(s, a.agent_id, &g, &e), 1);
    assert_string_equal(g.agent_id, a.agent_id);
    assert_string_equal(g.st.agent_id, a.agent_id);
    assert_string_equal(g.ip, a.ip);
    assert_int_equal(g.port, a.port);
    assert_string_equal(g.ak_tpm, a.ak_tpm);
    assert_string_equal(g.mtls_cert, a.mtls_cert);
    assert_string_equal(g.tpm_policy, a.tpm_policy);
    assert_int_equal(g.policy_id, pid);
    assert_string_equal(g.ima_sign_verification_keys, a.ima_sign_verification_keys);
    assert_string_equal(g.meta_data, a.meta_data);
    assert_string_equal(g.accept_tpm_hash_algs, a.accept_tpm_hash_algs);
    assert_string_equal(g.accept_tpm_encryption_algs, a.accept_tpm_encryption_algs);
    assert_string_equal(g.accept_tpm_signing_algs, a.accept_tpm_signing_algs);
    assert_string_equal(g.hash_alg, "sha256");
    assert_string_equal(g.enc_alg, "rsa");
    assert_string_equal(g.sign_alg, "rsassa");
    assert_string_equal(g.supported_version, "2.2");
    assert_string_equal(g.v, a.v);
    assert_string_equal(g.verifier_id, "default");
    assert_string_equal(g.verifier_ip, a.verifier_ip);
    assert_int_equal(g.verifier_port, 8881);
    assert_int_equal(g.st.operational_state, VSTATE_GET_QUOTE);
    assert_true(g.st.next_ima_ml_entry == UINT64_MAX - 1);
    assert_int_equal(g.st.pcr10_alg, QHASH_SHA256);
    assert_memory_equal(g.st.pcr10, a.st.pcr10, 32);
    assert_int_equal(g.st.pcr10[40], 0);
    assert_true(g.st.boottime == 1700000000);
    assert_true(g.st.clock_set);
    assert_true(g.st.clock == 0x123456789abcULL);
    assert_true(g.st.reset_count == 4000000000u);
    assert_int_equal(g.st.restart_count, 7);
    assert_true(g.st.attestation_count == 12345);
    assert_true(g.st.last_received_quote == 1700000100);
    assert_true(g.st.last_successful_attestation == -3);
    assert_int_equal(g.st.consecutive_failures, 3);
    assert_int_equal(g.st.severity_level, -1);
    assert_string_equal(g.st.last_event_id, "qoute_validation.quote_validation");
    assert_string_equal(g.st.learned_ima_keyrings, a.st.learned_ima_keyrings);
    vagent_free(&g);
    assert_null(g.ip);

    /* the empty / NULL forms round-trip too */
    fill_agent(&a, "bare", 0);
    a.ip = NULL;
    a.mtls_cert = NULL;
    a.tpm_policy = NULL;
    a.meta_data = NULL;
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    assert_int_equal(vstore_agent_get(s, "bare", &g, &e), 1);
    assert_null(g.ip);
    assert_null(g.mtls_cert);
    assert_null(g.tpm_policy);
    assert_null(g.meta_data);
    assert_null(g.v);
    assert_null(g.hash_alg);
    assert_int_equal(g.policy_id, 0);
    assert_int_equal(g.st.pcr10_alg, QHASH_NONE);
    assert_false(g.st.clock_set);
    assert_string_equal(g.st.last_event_id, "");
    assert_null(g.st.learned_ima_keyrings);
    assert_int_equal(g.st.severity_level, -1);
    vagent_free(&g);

    /* set_state / set_algs / list */
    assert_int_equal(vstore_set_state(s, "bare", VSTATE_TENANT_FAILED, &e), 1);
    assert_int_equal(vstore_set_state(s, "none", VSTATE_TENANT_FAILED, &e), 0);
    assert_int_equal(vstore_agent_set_algs(s, "bare", "sha384", "ecc", "ecschnorr", &e), 1);
    assert_int_equal(vstore_agent_set_algs(s, "none", "sha384", "ecc", "ecschnorr", &e), 0);
    assert_int_equal(vstore_agent_get(s, "bare", &g, &e), 1);
    assert_int_equal(g.st.operational_state, VSTATE_TENANT_FAILED);
    assert_string_equal(g.hash_alg, "sha384");
    assert_string_equal(g.enc_alg, "ecc");
    assert_string_equal(g.sign_alg, "ecschnorr");
    vagent_free(&g);
    names l = { 0 };
    assert_int_equal(vstore_agent_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "bare\nd432fbb3-d2f1-4a97-9ef7-75bd81c00000\n");

    /* an invalid bank is refused before it reaches the file */
    fill_agent(&a, "badbank", 0);
    a.st.pcr10_alg = (qhash_alg)17;
    assert_int_equal(vstore_agent_add(s, &a, &e), -1);
    assert_int_equal(e.code, 400);
    vstore_close(s);

    /* a corrupt stored pcr10 (wrong size for its bank) is an error, not a short read */
    exec_other(f->path, "UPDATE agents SET pcr10 = x'0102' WHERE agent_id = 'bare'");
    exec_other(f->path, "UPDATE agents SET pcr10_alg = 'sha1' WHERE agent_id = 'bare'");
    s = open_ok(f->path);
    assert_int_equal(vstore_agent_get(s, "bare", &g, &e), -1);
    assert_non_null(strstr(e.msg, "pcr10"));
    assert_null(g.ip);
    vagent_free(&g);
    vstore_close(s);
}

static int reenter(void *ctx, const char *id)
{
    vstore *s = ctx;
    vagent g;
    qerr e = { 0 };
    int r = vstore_agent_get(s, id, &g, &e);
    vagent_free(&g);
    return r == 1 ? 0 : 1;
}

static void test_list_reenters(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    vagent a;
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        fill_agent(&a, id, 0);
        assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    }
    /* the callback may call the store (the lock is not held while it runs) */
    assert_int_equal(vstore_agent_list(s, reenter, s, &e), 0);
    vstore_close(s);
}

static void test_agent_delete_cascades(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    vagent a;
    fill_agent(&a, "gone", 0);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    fill_agent(&a, "stays", 0);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    vfailure fl[2] = { { .entry = 3, .path = "/usr/bin/x", .event_id = "ima.validation.ima-ng.not_in_allowlist",
                         .reason = "File not found in allowlist: /usr/bin/x", .time = 10 },
                       { .entry = UINT64_MAX, .path = "", .event_id = "e", .reason = "r", .time = 11 } };
    assert_int_equal(vstore_failures_set(s, "gone", fl, 2, &e), 0);
    assert_int_equal(vstore_failures_set(s, "stays", fl, 1, &e), 0);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM failures", NULL), 3);
    assert_int_equal(vstore_agent_delete(s, "gone", &e), 1);
    assert_int_equal(vstore_agent_delete(s, "gone", &e), 0);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM failures WHERE agent_id = ?1", "gone"), 0);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM failures WHERE agent_id = ?1", "stays"), 1);
    vagent g;
    assert_int_equal(vstore_agent_get(s, "gone", &g, &e), 0);
    vstore_close(s);
}

static void test_state_batch(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    enum { N = 50 };
    vagent_state *st = calloc(N + 1, sizeof *st);
    const vagent_state *ptr[N + 1];
    assert_non_null(st);
    for (int i = 0; i < N; i++) {
        vagent a;
        char id[32];
        snprintf(id, sizeof id, "batch-%02d", i);
        fill_agent(&a, id, 0);
        assert_int_equal(vstore_agent_add(s, &a, &e), 1);
        snprintf(st[i].agent_id, sizeof st[i].agent_id, "%s", id);
        st[i].operational_state = VSTATE_GET_QUOTE;
        st[i].next_ima_ml_entry = (uint64_t)i * 100;
        st[i].pcr10_alg = i % 2 ? QHASH_SHA1 : QHASH_SHA384;
        memset(st[i].pcr10, i, sizeof st[i].pcr10);
        st[i].attestation_count = (uint64_t)i;
        st[i].severity_level = i % 3 - 1;
        st[i].clock_set = i % 2;
        st[i].clock = (uint64_t)i * 1000;
        st[i].learned_ima_keyrings = i % 2 ? "{}" : NULL;
        snprintf(st[i].last_event_id, sizeof st[i].last_event_id, "ev-%d", i);
        ptr[i] = &st[i];
    }
    /* an agent deleted meanwhile is skipped, not an error */
    snprintf(st[N].agent_id, sizeof st[N].agent_id, "deleted-meanwhile");
    st[N].pcr10_alg = QHASH_NONE;
    ptr[N] = &st[N];
    assert_int_equal(vstore_state_save_batch(s, ptr, N + 1, &e), 0);
    assert_int_equal(vstore_state_save_batch(s, ptr, 0, &e), 0);
    for (int i = 0; i < N; i++) {
        vagent g;
        assert_int_equal(vstore_agent_get(s, st[i].agent_id, &g, &e), 1);
        assert_int_equal(g.st.operational_state, VSTATE_GET_QUOTE);
        assert_true(g.st.next_ima_ml_entry == (uint64_t)i * 100);
        assert_int_equal(g.st.pcr10_alg, st[i].pcr10_alg);
        assert_memory_equal(g.st.pcr10, st[i].pcr10, qhash_size(st[i].pcr10_alg));
        assert_true(g.st.attestation_count == (uint64_t)i);
        assert_int_equal(g.st.severity_level, i % 3 - 1);
        assert_int_equal(g.st.clock_set, i % 2);
        if (i % 2)
            assert_true(g.st.clock == (uint64_t)i * 1000);
        assert_string_equal(g.st.last_event_id, st[i].last_event_id);
        if (i % 2)
            assert_string_equal(g.st.learned_ima_keyrings, "{}");
        else
            assert_null(g.st.learned_ima_keyrings);
        assert_string_equal(g.ak_tpm, "AAEACw==");    /* the agent's own columns are untouched */
        vagent_free(&g);
    }
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM agents", NULL), N);
    /* a bad entry refuses the whole batch before anything is written */
    st[3].pcr10_alg = (qhash_alg)9;
    st[0].operational_state = VSTATE_FAILED;
    assert_int_equal(vstore_state_save_batch(s, ptr, N, &e), -1);
    vagent g;
    assert_int_equal(vstore_agent_get(s, st[0].agent_id, &g, &e), 1);
    assert_int_equal(g.st.operational_state, VSTATE_GET_QUOTE);
    vagent_free(&g);
    free(st);
    vstore_close(s);
}

/* ---- failures ------------------------------------------------------------------------------ */

typedef struct fcollect {
    int n;
    uint64_t entry[1100];
    char reason[4][64];
    char path[4][64];
    int64_t time[4];
} fcollect;

static int collect_failure(void *ctx, const vfailure *f)
{
    fcollect *c = ctx;
    if (c->n < 4) {
        snprintf(c->reason[c->n], sizeof c->reason[0], "%s", f->reason);
        snprintf(c->path[c->n], sizeof c->path[0], "%s", f->path);
        c->time[c->n] = f->time;
    }
    if (c->n < 1100)
        c->entry[c->n] = f->entry;
    c->n++;
    return 0;
}

static void test_failures(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    vagent a;
    fill_agent(&a, "fa", 0);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    static fcollect c;
    memset(&c, 0, sizeof c);
    assert_int_equal(vstore_failures_get(s, "fa", collect_failure, &c, &e), 0);
    assert_int_equal(c.n, 0);

    vfailure fl[3] = { { .entry = 9, .path = "/z", .event_id = "a", .reason = "third-by-path", .time = 3 },
                       { .entry = 1, .path = NULL, .event_id = NULL, .reason = "second", .time = -1 },
                       { .entry = UINT64_MAX, .path = "", .event_id = "c", .reason = "list", .time = 1 } };
    assert_int_equal(vstore_failures_set(s, "fa", fl, 3, &e), 0);
    assert_int_equal(vstore_failures_get(s, "fa", collect_failure, &c, &e), 0);
    assert_int_equal(c.n, 3);     /* in the order given, not sorted by entry */
    assert_true(c.entry[0] == 9 && c.entry[1] == 1 && c.entry[2] == UINT64_MAX);
    assert_string_equal(c.reason[0], "third-by-path");
    assert_string_equal(c.reason[1], "second");
    assert_string_equal(c.path[0], "/z");
    assert_string_equal(c.path[1], "");     /* NULL is stored as "" */
    assert_true(c.time[1] == -1);

    /* a new set replaces the old one */
    assert_int_equal(vstore_failures_set(s, "fa", &fl[2], 1, &e), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(vstore_failures_get(s, "fa", collect_failure, &c, &e), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.reason[0], "list");
    /* an empty set clears */
    assert_int_equal(vstore_failures_set(s, "fa", NULL, 0, &e), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(vstore_failures_get(s, "fa", collect_failure, &c, &e), 0);
    assert_int_equal(c.n, 0);

    /* at most 1000 are kept: the first 1000 */
    vfailure *many = calloc(1050, sizeof *many);
    assert_non_null(many);
    for (int i = 0; i < 1050; i++) {
        many[i].entry = (uint64_t)i;
        many[i].reason = "r";
    }
    assert_int_equal(vstore_failures_set(s, "fa", many, 1050, &e), 0);
    free(many);
    assert_int_equal(vstore_failures_get(s, "fa", collect_failure, &c, &e), 0);
    assert_int_equal(c.n, 1000);
    assert_true(c.entry[999] == 999);

    /* an unknown agent: nothing stored, no error */
    assert_int_equal(vstore_failures_set(s, "nobody", fl, 3, &e), 0);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM failures WHERE agent_id = ?1", "nobody"), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(vstore_failures_get(s, "nobody", collect_failure, &c, &e), 0);
    assert_int_equal(c.n, 0);

    /* vfailure_free releases caller-built records */
    vfailure own = { .path = strdup("/p"), .event_id = strdup("e"), .reason = strdup("r") };
    vfailure_free(&own);
    assert_null(own.path);
    vfailure_free(NULL);
    vstore_close(s);
}

/* ---- robustness ---------------------------------------------------------------------------- */

static void test_injection_ids(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    long pid = put_policy(s, EVIL_ID, BODY_A, SUM_A, false);
    vagent a;
    fill_agent(&a, EVIL_ID, pid);
    a.meta_data = "{\"x\": \"'; DELETE FROM agents; --\"}";
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    vreg_agent r = { .aik_tpm = "\"'--" };
    snprintf(r.agent_id, sizeof r.agent_id, EVIL_ID);
    assert_int_equal(vstore_reg_put(s, &r, &e), 0);
    vfailure fl = { .path = "'); DROP TABLE failures;--", .event_id = "e", .reason = "r" };
    assert_int_equal(vstore_failures_set(s, EVIL_ID, &fl, 1, &e), 0);

    vagent g;
    assert_int_equal(vstore_agent_get(s, EVIL_ID, &g, &e), 1);
    assert_string_equal(g.agent_id, EVIL_ID);
    assert_string_equal(g.meta_data, a.meta_data);
    vagent_free(&g);
    vpolicy p;
    assert_int_equal(vstore_policy_get(s, EVIL_ID, &p, &e), 1);
    assert_string_equal(p.name, EVIL_ID);
    vpolicy_free(&p);
    vreg_agent rg;
    assert_int_equal(vstore_reg_get(s, EVIL_ID, &rg, &e), 1);
    assert_string_equal(rg.aik_tpm, "\"'--");
    vreg_agent_free(&rg);
    static fcollect c;
    memset(&c, 0, sizeof c);
    assert_int_equal(vstore_failures_get(s, EVIL_ID, collect_failure, &c, &e), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.path[0], fl.path);
    names l = { 0 };
    assert_int_equal(vstore_agent_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, EVIL_ID "\n");
    assert_int_equal(vstore_policy_delete(s, EVIL_ID, &e), -1);
    assert_int_equal(e.code, 409);
    assert_string_equal(e.msg, "Can't delete allowlist as it's currently in use by agent " EVIL_ID);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM agents WHERE agent_id = ?1", EVIL_ID), 1);
    vstore_close(s);
}

static void test_disk_full(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    put_policy(s, "small", BODY_A, SUM_A, false);
    vagent a;
    fill_agent(&a, "full", 0);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    /* cap the file at its current size: the next growth is SQLITE_FULL */
    assert_int_equal(sqlite3_exec(vstore_sqlite_db(s), "PRAGMA max_page_count = 1", NULL, NULL, NULL), SQLITE_OK);
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    assert_int_equal(vstore_policy_put(s, "big", big, SUM_B, 1, NULL, false, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "database error: database or disk is full"));
    /* failure records and a batch of many agents hit the same wall and fail cleanly */
    vfailure *fl = calloc(1000, sizeof *fl);
    assert_non_null(fl);
    for (int i = 0; i < 1000; i++)
        fl[i].reason = big + n - 2000;
    assert_int_equal(vstore_failures_set(s, "full", fl, 1000, &e), -1);
    assert_non_null(strstr(e.msg, "database or disk is full"));
    free(fl);
    /* the store still works: reads, and writes once there is room again */
    vpolicy p;
    assert_int_equal(vstore_policy_get(s, "small", &p, &e), 1);
    vpolicy_free(&p);
    assert_int_equal(vstore_policy_get(s, "big", &p, &e), 0);
    assert_int_equal(sqlite3_exec(vstore_sqlite_db(s), "PRAGMA max_page_count = 1000000", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(vstore_policy_put(s, "big", big, SUM_B, 1, NULL, false, NULL, &e), 1);
    free(big);
    static fcollect c;
    memset(&c, 0, sizeof c);
    assert_int_equal(vstore_failures_get(s, "full", collect_failure, &c, &e), 0);
    assert_int_equal(c.n, 0);
    vstore_close(s);
}

static void test_state_names(void **state)
{
    (void)state;
    const char *want[] = { "Registered", "Start", "Saved", "Get Quote", "Get Quote (retry)",
                           "Provide V", "Provide V (retry)", "Failed", "Terminated", "Invalid Quote",
                           "Tenant Quote Failed" };
    for (int i = 0; i < 11; i++)
        assert_string_equal(vstate_name(i), want[i]);
    assert_string_equal(vstate_name(VSTATE_TENANT_FAILED), "Tenant Quote Failed");
    assert_string_equal(vstate_name(-1), "Unknown");
    assert_string_equal(vstate_name(11), "Unknown");
}

/* ---- concurrency --------------------------------------------------------------------------- */

enum { API_THREADS = 4, STATE_THREADS = 2, API_ROUNDS = 40, STATE_ROUNDS = 60, STATE_AGENTS = 20 };

typedef struct conc {
    vstore *s;
    int idx;
    atomic_int *errors;
    char first_error[QERR_MSG_MAX + 64];
} conc;

static void conc_fail(conc *c, const char *what, const qerr *e)
{
    if (atomic_fetch_add(c->errors, 1) == 0)
        snprintf(c->first_error, sizeof c->first_error, "%s: %s", what, e->msg);
}

static void *api_thread(void *arg)
{
    conc *c = arg;
    qerr e = { 0 };
    for (int i = 0; i < API_ROUNDS; i++) {
        char name[64], id[64];
        snprintf(name, sizeof name, "pol-%d-%d", c->idx, i);
        snprintf(id, sizeof id, "api-%d-%d", c->idx, i);
        long pid = 0;
        if (vstore_policy_put(c->s, name, i % 2 ? BODY_A : BODY_B, i % 2 ? SUM_A : SUM_B, 1, NULL, false, &pid,
                              &e) != 1)
            conc_fail(c, "policy_put", &e);
        vagent a;
        fill_agent(&a, id, pid);
        if (vstore_agent_add(c->s, &a, &e) != 1)
            conc_fail(c, "agent_add", &e);
        vfailure fl = { .reason = "r" };
        if (vstore_failures_set(c->s, id, &fl, 1, &e) != 0)
            conc_fail(c, "failures_set", &e);
        if (vstore_set_state(c->s, id, VSTATE_GET_QUOTE, &e) != 1)
            conc_fail(c, "set_state", &e);
        if (vstore_agent_delete(c->s, id, &e) != 1)
            conc_fail(c, "agent_delete", &e);
        if (vstore_policy_delete(c->s, name, &e) != 1)
            conc_fail(c, "policy_delete", &e);
    }
    return NULL;
}

static void *state_thread(void *arg)
{
    conc *c = arg;
    qerr e = { 0 };
    vagent_state st[STATE_AGENTS + 4];
    const vagent_state *ptr[STATE_AGENTS + 4];
    memset(st, 0, sizeof st);
    for (int r = 0; r < STATE_ROUNDS; r++) {
        for (int i = 0; i < STATE_AGENTS + 4; i++) {
            if (i < STATE_AGENTS)
                snprintf(st[i].agent_id, sizeof st[i].agent_id, "st-%d", i);
            else    /* agents the API threads add and delete */
                snprintf(st[i].agent_id, sizeof st[i].agent_id, "api-%d-%d", i - STATE_AGENTS, r % API_ROUNDS);
            st[i].operational_state = VSTATE_GET_QUOTE;
            st[i].next_ima_ml_entry = (uint64_t)r;
            st[i].pcr10_alg = QHASH_SHA256;
            st[i].attestation_count = (uint64_t)r;
            st[i].severity_level = -1;
            ptr[i] = &st[i];
        }
        if (vstore_state_save_batch(c->s, ptr, STATE_AGENTS + 4, &e) != 0)
            conc_fail(c, "state_save_batch", &e);
        vagent g;
        if (vstore_agent_get(c->s, "st-0", &g, &e) != 1)
            conc_fail(c, "agent_get", &e);
        vagent_free(&g);
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    fx *f = *state;
    vstore *s = open_ok(f->path);
    qerr e = { 0 };
    for (int i = 0; i < STATE_AGENTS; i++) {
        char id[32];
        vagent a;
        snprintf(id, sizeof id, "st-%d", i);
        fill_agent(&a, id, 0);
        assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    }
    atomic_int errors = 0;
    static conc cs[API_THREADS + STATE_THREADS];
    pthread_t th[API_THREADS + STATE_THREADS];
    for (int i = 0; i < API_THREADS + STATE_THREADS; i++) {
        cs[i] = (conc){ .s = s, .idx = i, .errors = &errors };
        assert_int_equal(pthread_create(&th[i], NULL, i < API_THREADS ? api_thread : state_thread, &cs[i]), 0);
    }
    for (int i = 0; i < API_THREADS + STATE_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < API_THREADS + STATE_THREADS; i++)
        if (cs[i].first_error[0])
            fail_msg("thread %d: %s", i, cs[i].first_error);
    assert_int_equal(atomic_load(&errors), 0);
    vagent g;
    assert_int_equal(vstore_agent_get(s, "st-5", &g, &e), 1);
    assert_true(g.st.next_ima_ml_entry == STATE_ROUNDS - 1);
    vagent_free(&g);
    vstore_close(s);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM agents", NULL), STATE_AGENTS);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policies", NULL), 0);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM policy_bodies", NULL), 0);
    assert_int_equal(query_long(f->path, "SELECT count(*) FROM failures", NULL), 0);
}

static void test_reopen_keeps_data(void **state)
{
    fx *f = *state;
    qerr e = { 0 };
    vstore *s = open_ok(f->path);
    long pid = put_policy(s, "keep", BODY_A, SUM_A, false);
    vagent a;
    fill_agent(&a, "kept", pid);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    vreg_agent r = { .aik_tpm = "aik", .active = true };
    snprintf(r.agent_id, sizeof r.agent_id, "kept");
    assert_int_equal(vstore_reg_put(s, &r, &e), 0);
    vstore_close(s);

    s = open_ok(f->path);
    assert_int_equal(vstore_schema_version(s), 7);
    vagent g;
    assert_int_equal(vstore_agent_get(s, "kept", &g, &e), 1);
    assert_int_equal(g.policy_id, pid);
    vagent_free(&g);
    vpolicy p;
    assert_int_equal(vstore_policy_get_by_id(s, pid, &p, &e), 1);
    assert_string_equal(p.name, "keep");
    vpolicy_free(&p);
    vreg_agent rg;
    assert_int_equal(vstore_reg_get(s, "kept", &rg, &e), 1);
    assert_true(rg.active);
    vreg_agent_free(&rg);
    vstore_close(s);
    vstore_close(NULL);
}

/* Registrar pending state (schema 3): the pending columns round-trip, are counted, expire; a
 * version-2 database is migrated with its records kept. */
static void test_registrar_pending(void **state)
{
    fx *f = *state;
    /* Make a version-2 database: today's schema with migrations 7, 6, 5, 4 and 3 taken back. */
    vstore_close(open_ok(f->path));
    exec_other(f->path, "DROP TABLE leases;"
                        "DROP TABLE verifiers;"
                        "ALTER TABLE registrar DROP COLUMN display_id;"
                        "ALTER TABLE agents DROP COLUMN display_id;"
                        "DROP INDEX agents_mbpolicy;"
                        "ALTER TABLE agents DROP COLUMN mb_policy_id;"
                        "ALTER TABLE agents DROP COLUMN mb_evaluated;"
                        "DROP TABLE mbpolicies;"
                        "DROP INDEX registrar_pending;"
                        "ALTER TABLE registrar DROP COLUMN registered_at;"
                        "ALTER TABLE registrar DROP COLUMN failed_activations;"
                        "ALTER TABLE registrar DROP COLUMN pending_mtls_cert;"
                        "ALTER TABLE registrar DROP COLUMN pending_ip;"
                        "ALTER TABLE registrar DROP COLUMN pending_port;"
                        "ALTER TABLE registrar DROP COLUMN pending_key;"
                        "ALTER TABLE agents DROP COLUMN ima_good_total;"
                        "UPDATE schema_version SET version = 2;"
                        "INSERT INTO registrar (agent_id, aik_tpm, active, key) VALUES ('old', 'aik', 1, 'k');");
    qerr e = { 0 };
    vstore *s = open_ok(f->path);
    assert_int_equal(vstore_schema_version(s), 7);
    vreg_agent g;
    assert_int_equal(vstore_reg_get(s, "old", &g, &e), 1);
    assert_true(g.active);
    assert_int_equal(g.registered_at, 0);
    assert_null(g.pending_key);
    vreg_agent_free(&g);

    vreg_agent a = { .aik_tpm = "aik", .active = true, .key = "k1", .registered_at = 1000,
                     .failed_activations = 2, .pending_mtls_cert = "PEM", .pending_ip = "10.0.0.2",
                     .pending_port = 1234, .pending_key = "k2" };
    snprintf(a.agent_id, sizeof a.agent_id, "rereg");
    assert_int_equal(vstore_reg_put(s, &a, &e), 0);
    vreg_agent n = { .aik_tpm = "aik", .key = "k3", .registered_at = 2000 };
    snprintf(n.agent_id, sizeof n.agent_id, "new");
    assert_int_equal(vstore_reg_put(s, &n, &e), 0);
    assert_int_equal(vstore_reg_get(s, "rereg", &g, &e), 1);
    assert_int_equal(g.registered_at, 1000);
    assert_int_equal(g.failed_activations, 2);
    assert_string_equal(g.pending_mtls_cert, "PEM");
    assert_string_equal(g.pending_ip, "10.0.0.2");
    assert_int_equal(g.pending_port, 1234);
    assert_string_equal(g.pending_key, "k2");
    vreg_agent_free(&g);
    long cnt = 0;
    assert_int_equal(vstore_reg_count_pending(s, &cnt, &e), 0);
    assert_int_equal(cnt, 2);
    /* Expire before 1500: only the re-registration's pending data go; "old" (active) stays. */
    long touched = 0;
    assert_int_equal(vstore_reg_expire(s, 1500, &touched, &e), 0);
    assert_int_equal(touched, 1);
    assert_int_equal(vstore_reg_get(s, "rereg", &g, &e), 1);
    assert_true(g.active);
    assert_string_equal(g.key, "k1");
    assert_null(g.pending_key);
    assert_null(g.pending_ip);
    vreg_agent_free(&g);
    assert_int_equal(vstore_reg_expire(s, 2500, &touched, &e), 0);
    assert_int_equal(touched, 1);
    assert_int_equal(vstore_reg_get(s, "new", &g, &e), 0);
    assert_int_equal(vstore_reg_get(s, "old", &g, &e), 1);
    vreg_agent_free(&g);
    assert_int_equal(vstore_reg_count_pending(s, &cnt, &e), 0);
    assert_int_equal(cnt, 0);
    vstore_close(s);
}

/* Agent ids (schema 6): the lower-case key finds the record, the id as first registered / added
 * is kept and listed; a version-5 database shows its keys. */
static void test_display_id(void **state)
{
    fx *f = *state;
    /* A version-5 database with a record in each table. */
    vstore_close(open_ok(f->path));
    exec_other(f->path, "DROP TABLE leases;"
                        "DROP TABLE verifiers;"
                        "ALTER TABLE registrar DROP COLUMN display_id;"
                        "ALTER TABLE agents DROP COLUMN display_id;"
                        "UPDATE schema_version SET version = 5;"
                        "INSERT INTO registrar (agent_id, aik_tpm, active) VALUES ('old-5', 'aik', 1);"
                        "INSERT INTO agents (agent_id, operational_state) VALUES ('old-5', 3);");
    qerr e = { 0 };
    vstore *s = open_ok(f->path);
    assert_int_equal(vstore_schema_version(s), 7);
    vreg_agent g;
    assert_int_equal(vstore_reg_get(s, "old-5", &g, &e), 1);
    assert_string_equal(g.display_id, "old-5");
    vreg_agent_free(&g);
    vagent ga;
    assert_int_equal(vstore_agent_get(s, "old-5", &ga, &e), 1);
    assert_string_equal(ga.display_id, "old-5");
    vagent_free(&ga);

    /* Registrar: the first registration's case stays through a re-registration in another. */
    vreg_agent a = { .aik_tpm = "aik", .key = "k" };
    snprintf(a.agent_id, sizeof a.agent_id, "d432fbb3-mixed");
    snprintf(a.display_id, sizeof a.display_id, "D432fbb3-MIXED");
    assert_int_equal(vstore_reg_put(s, &a, &e), 0);
    snprintf(a.display_id, sizeof a.display_id, "d432FBB3-mixed");
    a.regcount = 2;
    assert_int_equal(vstore_reg_put(s, &a, &e), 0);
    assert_int_equal(vstore_reg_get(s, "d432fbb3-mixed", &g, &e), 1);
    assert_string_equal(g.agent_id, "d432fbb3-mixed");
    assert_string_equal(g.display_id, "D432fbb3-MIXED");
    assert_int_equal(g.regcount, 2);
    vreg_agent_free(&g);
    assert_int_equal(vstore_reg_get(s, "D432fbb3-MIXED", &g, &e), 0);   /* callers pass the key */
    names l = { 0 };
    assert_int_equal(vstore_reg_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "D432fbb3-MIXED\nold-5\n");
    /* No record under a key that is not lower case, nor a display id naming another agent. */
    vreg_agent bad = { .aik_tpm = "aik" };
    snprintf(bad.agent_id, sizeof bad.agent_id, "Upper");
    assert_int_equal(vstore_reg_put(s, &bad, &e), -1);
    assert_int_equal(e.code, 400);
    assert_non_null(strstr(e.msg, "not in lower case"));
    snprintf(bad.agent_id, sizeof bad.agent_id, "upper");
    snprintf(bad.display_id, sizeof bad.display_id, "UPPEr2");
    assert_int_equal(vstore_reg_put(s, &bad, &e), -1);
    assert_int_equal(e.code, 400);
    /* A record written without a display id (e.g. by hand) shows its key. */
    exec_other(f->path, "INSERT INTO registrar (agent_id, aik_tpm) VALUES ('bare', 'aik');");
    assert_int_equal(vstore_reg_get(s, "bare", &g, &e), 1);
    assert_string_equal(g.display_id, "bare");
    vreg_agent_free(&g);

    /* Verifier: the id as added; one agent whatever the case of a second add. */
    vagent v;
    fill_agent(&v, "d432fbb3-mixed", 0);
    snprintf(v.display_id, sizeof v.display_id, "D432FBB3-Mixed");
    assert_int_equal(vstore_agent_add(s, &v, &e), 1);
    snprintf(v.display_id, sizeof v.display_id, "d432fbb3-MIXED");
    assert_int_equal(vstore_agent_add(s, &v, &e), 0);
    fill_agent(&v, "plain", 0);                         /* no display id: the key */
    assert_int_equal(vstore_agent_add(s, &v, &e), 1);
    fill_agent(&v, "Plain-2", 0);
    assert_int_equal(vstore_agent_add(s, &v, &e), -1);
    assert_int_equal(e.code, 400);
    assert_int_equal(vstore_agent_get(s, "d432fbb3-mixed", &ga, &e), 1);
    assert_string_equal(ga.agent_id, "d432fbb3-mixed");
    assert_string_equal(ga.st.agent_id, "d432fbb3-mixed");
    assert_string_equal(ga.display_id, "D432FBB3-Mixed");
    vagent_free(&ga);
    memset(&l, 0, sizeof l);
    assert_int_equal(vstore_agent_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "d432fbb3-mixed\nold-5\nplain\n");
    memset(&l, 0, sizeof l);
    assert_int_equal(vstore_agent_list_display(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "D432FBB3-Mixed\nold-5\nplain\n");
    assert_int_equal(vstore_agent_delete(s, "d432fbb3-mixed", &e), 1);
    assert_int_equal(vstore_agent_get(s, "d432fbb3-mixed", &ga, &e), 0);
    vstore_close(s);
}

/* Issue 11, item 10: a database directory writable by others is refused, like tls_dir. */
static void test_world_writable_dir(void **state)
{
    fx *f = *state;
    char dir[160], path[192];
    snprintf(dir, sizeof dir, "%s/open", f->dir);
    snprintf(path, sizeof path, "%s/q.sqlite", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    qerr e = { 0 };
    assert_null(vstore_open(path, &e));
    assert_non_null(strstr(e.msg, "is writable by group or others (mode 0777): chmod go-w it"));
    assert_int_equal(access(path, F_OK), -1);     /* nothing created */
    assert_int_equal(chmod(dir, 0770), 0);
    assert_null(vstore_open(path, &e));
    assert_int_equal(chmod(dir, 0750), 0);
    vstore_close(open_ok(path));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_modes),
        T(test_open_fixes_mode),
        T(test_open_errors),
        T(test_readonly_dir),
        T(test_world_writable_dir),
        T(test_reopen_keeps_data),
        T(test_registrar),
        T(test_registrar_pending),
        T(test_display_id),
        T(test_policy_put_semantics),
        T(test_policy_body_shared),
        T(test_policy_delete_in_use),
        T(test_mbpolicy),
        T(test_policy_list),
        T(test_agent_add_duplicate),
        T(test_agent_roundtrip),
        T(test_list_reenters),
        T(test_agent_delete_cascades),
        T(test_state_batch),
        T(test_failures),
        T(test_injection_ids),
        T(test_disk_full),
        T(test_state_names),
        T(test_concurrency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
