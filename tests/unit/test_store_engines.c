/* The store's behaviour through its public calls only, the same on every engine: on a SQLite file
 * in a mkdtemp directory, and when QUINCE_TEST_DATABASE names another database (a postgresql://
 * URL; test_api_pg.sh sets it, with PGPASSFILE) on that one too. Every case starts from empty
 * tables. Engine-specific checks (file modes, disk full, WAL) stay in test_store.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../verifier/store_int.h"

#define EVIL_ID "x'); drop table agents;--"
#define SUM_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SUM_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define BODY_A "{\"meta\": {\"version\": 1}, \"digests\": {\"/a\": [\"00\"]}}"
#define BODY_B "{\"meta\": {\"version\": 1}, \"digests\": {\"/b\": [\"11\"]}}"

typedef struct fx {
    char dir[64];
    char db[1024];
    vstore *s;
} fx;

/* Empties every table (children first), through the connection the store holds. */
static void wipe(vstore *s)
{
    static const char *const sql[] = { "DELETE FROM leases", "DELETE FROM verifiers", "DELETE FROM failures",
                                       "DELETE FROM agents", "DELETE FROM policies",
                                       "DELETE FROM policy_bodies", "DELETE FROM mbpolicies", "DELETE FROM registrar" };
    vstore_lock(s);
    vconn *c = vstore_conn(s);
    assert_non_null(c);
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++)
        if (s->drv->exec(c, sql[i]) != 0)
            fail_msg("%s: %s", sql[i], s->drv->errmsg(c));
    vstore_unlock(s);
}

static int setup_engine(void **state, bool pg)
{
    const char *url = getenv("QUINCE_TEST_DATABASE");
    if (pg && (!url || !url[0]))
        return -1;    /* never reached: the PostgreSQL group is only run with the variable */
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    if (pg) {
        snprintf(f->db, sizeof f->db, "%s", url);
    } else {
        snprintf(f->dir, sizeof f->dir, "/tmp/quince-store-eng.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->db, sizeof f->db, "sqlite://%s/v.sqlite", f->dir);
    }
    qerr e = { 0 };
    f->s = vstore_open(f->db, &e);
    if (!f->s)
        fail_msg("vstore_open %s: %s", f->db, e.msg);
    wipe(f->s);
    *state = f;
    return 0;
}

static int setup_sqlite(void **state)
{
    return setup_engine(state, false);
}

static int setup_pg(void **state)
{
    return setup_engine(state, true);
}

static int teardown(void **state)
{
    fx *f = *state;
    vstore_close(f->s);
    if (f->dir[0]) {
        char p[160];
        const char *const suffix[] = { "", "-wal", "-shm" };
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/v.sqlite%s", f->dir, suffix[i]);
            unlink(p);
        }
        rmdir(f->dir);
    }
    free(f);
    return 0;
}

typedef struct names {
    char text[4096];
    int n;
} names;

static int collect_name(void *ctx, const char *name)
{
    names *l = ctx;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof l->text - len, "%s\n", name);
    l->n++;
    return 0;
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
    a->supported_version = "2.2";
    a->verifier_id = "default";
    a->st.operational_state = VSTATE_START;
    a->st.pcr10_alg = QHASH_NONE;
    a->st.severity_level = -1;
}

typedef struct fcollect {
    int n;
    char text[1024];
} fcollect;

static int collect_failure(void *ctx, const vfailure *f)
{
    fcollect *c = ctx;
    size_t len = strlen(c->text);
    snprintf(c->text + len, sizeof c->text - len, "%llu|%s|%s|%s|%lld\n", (unsigned long long)f->entry, f->path,
             f->event_id, f->reason, (long long)f->time);
    c->n++;
    return 0;
}

static void test_schema(void **state)
{
    fx *f = *state;
    assert_int_equal(vstore_schema_version(f->s), VSTORE_SCHEMA);
    qerr e = { 0 };
    vstore *again = vstore_open(f->db, &e);     /* a second store on the same database */
    assert_non_null(again);
    assert_int_equal(vstore_schema_version(again), VSTORE_SCHEMA);
    vstore_close(again);
}

static void test_policies(void **state)
{
    vstore *s = ((fx *)*state)->s;
    qerr e = { 0 };
    long id = 0, id2 = 0;
    assert_int_equal(vstore_policy_put(s, "p1", BODY_A, SUM_A, 1, "{\"mask\": \"0x1\"}", false, &id, &e), 1);
    assert_true(id > 0);
    assert_int_equal(vstore_policy_put(s, "p1", BODY_B, SUM_B, 1, NULL, false, NULL, &e), 0);   /* exists */
    assert_int_equal(vstore_policy_put(s, "p2", BODY_A, SUM_A, 0, NULL, false, &id2, &e), 1);   /* shared text */
    assert_true(id2 > id);
    assert_int_equal(vstore_policy_put(s, "p3", BODY_B, SUM_A, 0, NULL, false, NULL, &e), -1);  /* clash */
    assert_int_equal(e.code, 400);
    vpolicy p;
    assert_int_equal(vstore_policy_get(s, "p1", &p, &e), 1);
    assert_string_equal(p.body, BODY_A);
    assert_string_equal(p.checksum, SUM_A);
    assert_string_equal(p.tpm_policy, "{\"mask\": \"0x1\"}");
    assert_int_equal(p.generator, 1);
    assert_null(p.sign_key);
    vpolicy_free(&p);
    assert_int_equal(vstore_policy_put_signed(s, "p1", BODY_B, SUM_B, 2, NULL, "a2V5", true, &id2, &e), 1);
    assert_int_equal(id2, id);
    assert_int_equal(vstore_policy_get_by_id(s, id, &p, &e), 1);
    assert_string_equal(p.body, BODY_B);
    assert_string_equal(p.sign_key, "a2V5");
    vpolicy_free(&p);
    assert_int_equal(vstore_policy_put(s, "none", BODY_A, SUM_A, 0, NULL, true, NULL, &e), 0);  /* absent */
    vagent a;
    fill_agent(&a, "user", id);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    assert_int_equal(vstore_policy_delete(s, "p1", &e), -1);
    assert_int_equal(e.code, 409);
    assert_string_equal(e.msg, "Can't delete allowlist as it's currently in use by agent user");
    assert_int_equal(vstore_agent_delete(s, "user", &e), 1);
    assert_int_equal(vstore_policy_delete(s, "p1", &e), 1);
    assert_int_equal(vstore_policy_delete(s, "p1", &e), 0);
    names l = { 0 };
    assert_int_equal(vstore_policy_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "p2\n");
}

static void test_agent_roundtrip(void **state)
{
    vstore *s = ((fx *)*state)->s;
    qerr e = { 0 };
    vagent a;
    fill_agent(&a, EVIL_ID, 0);
    a.st.operational_state = VSTATE_GET_QUOTE;
    a.st.pcr10_alg = QHASH_SHA256;
    for (int i = 0; i < 32; i++)
        a.st.pcr10[i] = (uint8_t)(i % 3 == 0 ? 0 : 0xf0 + i);   /* zero bytes and high bytes */
    a.st.next_ima_ml_entry = UINT64_MAX - 1;
    a.st.clock_set = true;
    a.st.clock = 0x8000000000000001ULL;
    a.st.reset_count = UINT32_MAX;
    a.st.restart_count = 7;
    a.st.attestation_count = 42;
    a.st.last_received_quote = -5;
    a.st.severity_level = 3;
    snprintf(a.st.last_event_id, sizeof a.st.last_event_id, "ima.validation.x");
    a.st.learned_ima_keyrings = "{\"k\": \"\xc3\xa9\"}";
    a.st.mb_evaluated = true;
    a.st.ima_good_total = 1234567890123ULL;
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    assert_int_equal(vstore_agent_add(s, &a, &e), 0);
    vagent g;
    assert_int_equal(vstore_agent_get(s, EVIL_ID, &g, &e), 1);
    assert_string_equal(g.agent_id, EVIL_ID);
    assert_string_equal(g.tpm_policy, a.tpm_policy);
    assert_null(g.accept_tpm_signing_algs);
    assert_int_equal(g.port, 9002);
    assert_int_equal(g.policy_id, 0);
    assert_int_equal(g.st.operational_state, VSTATE_GET_QUOTE);
    assert_int_equal(g.st.pcr10_alg, QHASH_SHA256);
    assert_memory_equal(g.st.pcr10, a.st.pcr10, 32);
    assert_true(g.st.next_ima_ml_entry == UINT64_MAX - 1);
    assert_true(g.st.clock_set);
    assert_true(g.st.clock == 0x8000000000000001ULL);
    assert_true(g.st.reset_count == UINT32_MAX);
    assert_int_equal(g.st.restart_count, 7);
    assert_int_equal(g.st.last_received_quote, -5);
    assert_int_equal(g.st.severity_level, 3);
    assert_string_equal(g.st.last_event_id, "ima.validation.x");
    assert_string_equal(g.st.learned_ima_keyrings, a.st.learned_ima_keyrings);
    assert_true(g.st.mb_evaluated);
    assert_true(g.st.ima_good_total == 1234567890123ULL);
    vagent_free(&g);
    assert_int_equal(vstore_set_state(s, EVIL_ID, VSTATE_TENANT_FAILED, &e), 1);
    assert_int_equal(vstore_set_state(s, "nobody", VSTATE_TENANT_FAILED, &e), 0);
    assert_int_equal(vstore_agent_set_algs(s, EVIL_ID, "sha256", "rsa", "rsassa", &e), 1);
    assert_int_equal(vstore_agent_get(s, EVIL_ID, &g, &e), 1);
    assert_int_equal(g.st.operational_state, VSTATE_TENANT_FAILED);
    assert_string_equal(g.sign_alg, "rsassa");
    vagent_free(&g);
    assert_int_equal(vstore_agent_get(s, "nobody", &g, &e), 0);
    fill_agent(&a, "bad-policy", 99999);
    assert_int_equal(vstore_agent_add(s, &a, &e), -1);   /* foreign key */
}

static void test_rounds_and_failures(void **state)
{
    vstore *s = ((fx *)*state)->s;
    qerr e = { 0 };
    vagent a;
    fill_agent(&a, "r1", 0);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    fill_agent(&a, "r2", 0);
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    vagent_state s1 = a.st, s2 = a.st, gone = a.st;
    snprintf(s1.agent_id, sizeof s1.agent_id, "r1");
    s1.attestation_count = 5;
    s1.operational_state = VSTATE_INVALID_QUOTE;
    snprintf(s2.agent_id, sizeof s2.agent_id, "r2");
    s2.attestation_count = 9;
    snprintf(gone.agent_id, sizeof gone.agent_id, "gone");
    vfailure fl[2] = { { .entry = UINT64_MAX, .path = NULL, .event_id = "ev.list", .reason = "bad list", .time = 1 },
                       { .entry = 3, .path = "/bin/x", .event_id = "ev.file", .reason = "File not found", .time = 2 } };
    vstore_round r1 = { .st = &s1, .hash_alg = "sha256", .enc_alg = "ecc", .sign_alg = "ecdsa",
                        .set_failures = true, .failures = fl, .nfailures = 2 };
    vstore_round r2 = { .st = &s2 }, r3 = { .st = &gone, .set_failures = true, .failures = fl, .nfailures = 1 };
    const vstore_round *rounds[] = { &r1, &r2, &r3 };
    unsigned long c0 = vstore_commits(s);
    assert_int_equal(vstore_round_save_batch(s, rounds, 3, &e), 0);
    assert_true(vstore_commits(s) == c0 + 1);
    vagent g;
    assert_int_equal(vstore_agent_get(s, "r1", &g, &e), 1);
    assert_int_equal(g.st.attestation_count, 5);
    assert_string_equal(g.enc_alg, "ecc");
    vagent_free(&g);
    names got = { 0 };
    assert_int_equal(vstore_agent_list(s, collect_name, &got, &e), 0);
    assert_string_equal(got.text, "r1\nr2\n");
    fcollect c = { 0 };
    assert_int_equal(vstore_failures_get(s, "r1", collect_failure, &c, &e), 0);
    assert_string_equal(c.text, "18446744073709551615||ev.list|bad list|1\n3|/bin/x|ev.file|File not found|2\n");
    /* a later round without failures keeps them; one with replaces them; delete takes them along */
    assert_int_equal(vstore_failures_set(s, "r1", fl + 1, 1, &e), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(vstore_failures_get(s, "r1", collect_failure, &c, &e), 0);
    assert_string_equal(c.text, "3|/bin/x|ev.file|File not found|2\n");
    assert_int_equal(vstore_failures_set(s, "gone", fl, 1, &e), 0);
    assert_int_equal(vstore_agent_delete(s, "r1", &e), 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(vstore_failures_get(s, "r1", collect_failure, &c, &e), 0);
    assert_int_equal(c.n, 0);
    const vagent_state *states[] = { &s2 };
    s2.attestation_count = 10;
    assert_int_equal(vstore_state_save_batch(s, states, 1, &e), 0);
    assert_int_equal(vstore_agent_get(s, "r2", &g, &e), 1);
    assert_int_equal(g.st.attestation_count, 10);
    vagent_free(&g);
}

static void test_registrar(void **state)
{
    vstore *s = ((fx *)*state)->s;
    qerr e = { 0 };
    vreg_agent a = { .ek_tpm = "ek", .aik_tpm = "aik", .ip = "10.0.0.1", .port = 9002, .regcount = 1,
                     .key = "k1", .registered_at = 100 };
    snprintf(a.agent_id, sizeof a.agent_id, "new-one");
    assert_int_equal(vstore_reg_put(s, &a, &e), 0);
    snprintf(a.agent_id, sizeof a.agent_id, "active-one");
    a.active = true;
    a.pending_key = "pk";
    a.pending_ip = "10.0.0.2";
    assert_int_equal(vstore_reg_put(s, &a, &e), 0);
    a.regcount = 2;
    assert_int_equal(vstore_reg_put(s, &a, &e), 0);    /* upsert */
    vreg_agent g;
    assert_int_equal(vstore_reg_get(s, "active-one", &g, &e), 1);
    assert_int_equal(g.regcount, 2);
    assert_true(g.active);
    assert_string_equal(g.pending_key, "pk");
    assert_null(g.ekcert);
    vreg_agent_free(&g);
    long n = 0;
    assert_int_equal(vstore_reg_count_pending(s, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(vstore_reg_expire(s, 101, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(vstore_reg_get(s, "new-one", &g, &e), 0);
    assert_int_equal(vstore_reg_get(s, "active-one", &g, &e), 1);
    assert_null(g.pending_key);
    vreg_agent_free(&g);
    assert_int_equal(vstore_reg_set_active(s, "active-one", false, &e), 1);
    assert_int_equal(vstore_reg_set_active(s, "nobody", false, &e), 0);
    names l = { 0 };
    assert_int_equal(vstore_reg_list(s, collect_name, &l, &e), 0);
    assert_string_equal(l.text, "active-one\n");
    assert_int_equal(vstore_reg_delete(s, "active-one", &e), 1);
    assert_int_equal(vstore_reg_delete(s, "active-one", &e), 0);
}

static void test_mbpolicies(void **state)
{
    vstore *s = ((fx *)*state)->s;
    qerr e = { 0 };
    long id = 0;
    assert_int_equal(vstore_mbpolicy_put(s, "mb", "{\"a\": 1}", false, &id, &e), 1);
    assert_true(id > 0);
    assert_int_equal(vstore_mbpolicy_put(s, "mb", "{}", false, NULL, &e), 0);
    assert_int_equal(vstore_mbpolicy_put(s, "mb", "{\"a\": 2}", true, NULL, &e), 1);
    vmbpolicy p;
    assert_int_equal(vstore_mbpolicy_get(s, "mb", &p, &e), 1);
    assert_string_equal(p.mb_policy, "{\"a\": 2}");
    assert_int_equal(p.id, id);
    vmbpolicy_free(&p);
    vagent a;
    fill_agent(&a, "mb-user", 0);
    a.mb_policy_id = id;
    assert_int_equal(vstore_agent_add(s, &a, &e), 1);
    vagent g;
    assert_int_equal(vstore_agent_get(s, "mb-user", &g, &e), 1);
    assert_string_equal(g.mb_policy_name, "mb");
    assert_string_equal(g.mb_policy, "{\"a\": 2}");
    vagent_free(&g);
    assert_int_equal(vstore_mbpolicy_delete(s, "mb", &e), -1);
    assert_int_equal(e.code, 409);
    assert_int_equal(vstore_agent_delete(s, "mb-user", &e), 1);
    assert_int_equal(vstore_mbpolicy_delete(s, "mb", &e), 1);
    names l = { 0 };
    assert_int_equal(vstore_mbpolicy_list(s, collect_name, &l, &e), 0);
    assert_int_equal(l.n, 0);
}

/* Readers and a batch writer at once: on PostgreSQL each takes its own pooled connection. */
typedef struct race {
    vstore *s;
    int errors;
} race;

static void *reader(void *arg)
{
    race *r = arg;
    for (int i = 0; i < 200; i++) {
        qerr e = { 0 };
        vagent g;
        if (vstore_agent_get(r->s, "w0", &g, &e) != 1)
            __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
        vagent_free(&g);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    vstore *s = ((fx *)*state)->s;
    qerr e = { 0 };
    vagent_state st[20];
    const vagent_state *ptr[20];
    for (int i = 0; i < 20; i++) {
        vagent a;
        char id[16];
        snprintf(id, sizeof id, "w%d", i);
        fill_agent(&a, id, 0);
        assert_int_equal(vstore_agent_add(s, &a, &e), 1);
        st[i] = a.st;
        ptr[i] = &st[i];
    }
    race r = { .s = s };
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &r), 0);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 20; i++)
            st[i].attestation_count++;
        assert_int_equal(vstore_state_save_batch(s, ptr, 20, &e), 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r.errors, 0);
    vagent g;
    assert_int_equal(vstore_agent_get(s, "w19", &g, &e), 1);
    assert_int_equal(g.st.attestation_count, 50);
    vagent_free(&g);
}

#define CASES(setup)                                                                                           \
    cmocka_unit_test_setup_teardown(test_schema, setup, teardown),                                            \
    cmocka_unit_test_setup_teardown(test_policies, setup, teardown),                                          \
    cmocka_unit_test_setup_teardown(test_agent_roundtrip, setup, teardown),                                   \
    cmocka_unit_test_setup_teardown(test_rounds_and_failures, setup, teardown),                               \
    cmocka_unit_test_setup_teardown(test_registrar, setup, teardown),                                         \
    cmocka_unit_test_setup_teardown(test_mbpolicies, setup, teardown),                                        \
    cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown)

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = { CASES(setup_sqlite) };
    const struct CMUnitTest pg_tests[] = { CASES(setup_pg) };
    int failed = cmocka_run_group_tests_name("store on SQLite", sqlite_tests, NULL, NULL);
    const char *url = getenv("QUINCE_TEST_DATABASE");
    if (url && url[0])
        failed += cmocka_run_group_tests_name("store on PostgreSQL", pg_tests, NULL, NULL);
    return failed;
}
