/* bench_store.c — state writes per second for a large fleet (printed, never pass/fail).
 *   bench_store sqlite FILE AGENTS ROUNDS BATCH
 *       the verifier's SQLite store: AGENTS agents, then ROUNDS rounds in which every agent's
 *       state is saved, BATCH agents per transaction (vstore_state_save_batch, as the round
 *       writer does).
 *   bench_store store DATABASE AGENTS ROUNDS BATCH
 *       the same through the verifier's store on any back-end (a path, sqlite:///... or
 *       postgresql://...; agents already there are kept, so a second run measures only the saves).
 *   bench_store pg URI AGENTS ROUNDS BATCH
 *       PostgreSQL through libpq directly, without the store: a table with
 *       the same state columns, one prepared binary-parameter UPDATE per agent, BATCH per
 *       transaction, pipelined (one round trip per transaction); also the WAL bytes written (pg_current_wal_lsn before and after).
 * Output: one line "rows_per_s=... ms_per_batch=... [wal_bytes=... wal_bytes_per_row=...]". */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../verifier/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_sqlite(const char *file, long agents, long rounds, long batch)
{
    qerr e = {0};
    vstore *s = vstore_open(file, &e);
    if (!s) {
        fprintf(stderr, "bench_store: %s\n", e.msg);
        return 1;
    }
    vagent_state *st = calloc((size_t)agents, sizeof *st);
    const vagent_state **ptr = calloc((size_t)batch, sizeof *ptr);
    if (!st || !ptr) {
        fprintf(stderr, "bench_store: out of memory\n");
        free(st);
        free(ptr);
        vstore_close(s);
        return 1;
    }
    int rc = 0;
    for (long i = 0; i < agents && rc == 0; i++) {
        vagent a;
        memset(&a, 0, sizeof a);
        snprintf(a.agent_id, sizeof a.agent_id, "agent-%06ld", i);
        a.ip = "127.0.0.1"; a.port = 9002; a.ak_tpm = "AAEACw=="; a.mtls_cert = "disabled";
        a.tpm_policy = "{}"; a.meta_data = "{}"; a.accept_tpm_hash_algs = "[\"sha256\"]";
        a.accept_tpm_encryption_algs = "[\"rsa\"]"; a.accept_tpm_signing_algs = "[\"rsassa\"]";
        a.supported_version = "2.2"; a.verifier_id = "default"; a.verifier_ip = "127.0.0.1";
        a.st.operational_state = VSTATE_GET_QUOTE; a.st.pcr10_alg = QHASH_NONE; a.st.severity_level = -1;
        snprintf(a.st.agent_id, sizeof a.st.agent_id, "%s", a.agent_id);
        if (vstore_agent_add(s, &a, &e) < 0) {    /* 0: already there (a second run) */
            fprintf(stderr, "bench_store: add: %s\n", e.msg);
            rc = 1;
        }
        st[i] = a.st;
        st[i].pcr10_alg = QHASH_SHA256;
    }
    double t0 = now_s();
    long batches = 0;
    for (long r = 0; r < rounds && rc == 0; r++) {
        for (long i = 0; i < agents && rc == 0; i += batch) {
            size_t n = 0;
            for (long j = i; j < agents && j < i + batch; j++) {
                st[j].attestation_count++;
                st[j].clock += 2000;
                st[j].last_received_quote = st[j].last_successful_attestation = (int64_t)time(NULL);
                st[j].pcr10[0] = (uint8_t)r;
                ptr[n++] = &st[j];
            }
            if (vstore_state_save_batch(s, ptr, n, &e) < 0) {
                fprintf(stderr, "bench_store: save: %s\n", e.msg);
                rc = 1;
            }
            batches++;
        }
    }
    double dt = now_s() - t0;
    if (rc == 0)
        printf("rows_per_s=%.0f ms_per_batch=%.2f\n", (double)(agents * rounds) / dt, dt * 1000.0 / (double)batches);
    free(st);
    free(ptr);
    vstore_close(s);
    return rc;
}

static int pg_ok(PGconn *c, PGresult *r, ExecStatusType want, const char *what)
{
    int ok = PQresultStatus(r) == want;
    if (!ok)
        fprintf(stderr, "bench_store: %s: %s", what, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

static int pg_exec(PGconn *c, const char *sql)
{
    return pg_ok(c, PQexec(c, sql), PGRES_COMMAND_OK, sql);
}

/* The WAL position as a byte count, or -1. */
static int64_t pg_wal(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint");
    int64_t v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static uint64_t be64(uint64_t v)
{
    uint64_t out = 0;
    unsigned char *p = (unsigned char *)&out;
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    return out;
}

static int bench_pg(const char *uri, long agents, long rounds, long batch)
{
    PGconn *c = PQconnectdb(uri);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench_store: cannot connect: %s", c ? PQerrorMessage(c) : "out of memory\n");
        PQfinish(c);
        return 1;
    }
    int ok = pg_exec(c, "SET client_min_messages = warning") && pg_exec(c, "DROP TABLE IF EXISTS bench_agents") &&
             pg_exec(c, "CREATE TABLE bench_agents (agent_id text PRIMARY KEY, operational_state integer NOT NULL,"
                         " next_ima_ml_entry bigint NOT NULL DEFAULT 0, pcr10_alg text, pcr10 bytea,"
                         " boottime bigint NOT NULL DEFAULT 0, tpm_clock bigint, tpm_reset_count bigint,"
                         " tpm_restart_count bigint, attestation_count bigint NOT NULL DEFAULT 0,"
                         " last_received_quote bigint NOT NULL DEFAULT 0,"
                         " last_successful_attestation bigint NOT NULL DEFAULT 0,"
                         " consecutive_failures integer NOT NULL DEFAULT 0, severity_level integer NOT NULL DEFAULT -1,"
                         " last_event_id text, ak_tpm text, meta_data text)");
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO bench_agents (agent_id, operational_state, ak_tpm, meta_data) SELECT "
                              "'agent-' || lpad(g::text, 6, '0'), 3, 'AAEACw==', '{}' FROM generate_series(0, %ld) g",
             agents - 1);
    ok = ok && pg_exec(c, sql) && pg_exec(c, "VACUUM ANALYZE bench_agents");
    ok = ok && pg_ok(c, PQprepare(c, "save",
                                  "UPDATE bench_agents SET operational_state = $2, pcr10 = $3, tpm_clock = $4,"
                                  " attestation_count = $5, last_received_quote = $6, last_successful_attestation = $6"
                                  " WHERE agent_id = $1", 6, NULL), PGRES_COMMAND_OK, "prepare");
    int64_t wal0 = ok ? pg_wal(c) : -1;
    double t0 = now_s();
    long batches = 0;
    for (long r = 0; r < rounds && ok; r++) {
        for (long i = 0; i < agents && ok; i += batch) {
            /* One round trip per batch: the UPDATEs are pipelined (libpq >= 14) between BEGIN
             * and COMMIT, then every result is read. */
            long n = 0;
            ok = PQenterPipelineMode(c) == 1 && PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1;
            for (long j = i; j < agents && j < i + batch && ok; j++, n++) {
                char id[32];
                snprintf(id, sizeof id, "agent-%06ld", j);
                uint32_t state = __builtin_bswap32(3);
                unsigned char pcr[32] = {(unsigned char)r};
                uint64_t clk = be64((uint64_t)(r * 2000)), cnt = be64((uint64_t)r), ts = be64((uint64_t)time(NULL));
                const char *vals[6] = {id, (const char *)&state, (const char *)pcr, (const char *)&clk,
                                       (const char *)&cnt, (const char *)&ts};
                int lens[6] = {(int)strlen(id), 4, 32, 8, 8, 8};
                int fmts[6] = {0, 1, 1, 1, 1, 1};
                ok = PQsendQueryPrepared(c, "save", 6, vals, lens, fmts, 0) == 1;
            }
            ok = ok && PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1 && PQpipelineSync(c) == 1;
            /* n + 2 command results, each followed by a NULL, then the sync. */
            for (long k = 0; k < n + 2 && ok; k++) {
                ok = pg_ok(c, PQgetResult(c), PGRES_COMMAND_OK, "pipelined statement");
                PGresult *end = PQgetResult(c);
                ok = ok && end == NULL;
                PQclear(end);
            }
            ok = ok && pg_ok(c, PQgetResult(c), PGRES_PIPELINE_SYNC, "pipeline sync") && PQexitPipelineMode(c) == 1;
            batches++;
        }
    }
    double dt = now_s() - t0;
    int64_t wal1 = ok ? pg_wal(c) : -1;
    if (ok && wal0 >= 0 && wal1 >= wal0)
        printf("rows_per_s=%.0f ms_per_batch=%.2f wal_bytes=%" PRId64 " wal_bytes_per_row=%.0f\n",
               (double)(agents * rounds) / dt, dt * 1000.0 / (double)batches, wal1 - wal0,
               (double)(wal1 - wal0) / (double)(agents * rounds));
    ok = ok && pg_exec(c, "DROP TABLE bench_agents");
    PQfinish(c);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_store sqlite|store|pg FILE|DATABASE|URI AGENTS ROUNDS BATCH\n");
        return 2;
    }
    long agents = strtol(argv[3], NULL, 10), rounds = strtol(argv[4], NULL, 10), batch = strtol(argv[5], NULL, 10);
    if (agents < 1 || agents > 10000000 || rounds < 1 || rounds > 1000 || batch < 1 || batch > 100000) {
        fprintf(stderr, "bench_store: AGENTS 1..10000000, ROUNDS 1..1000, BATCH 1..100000\n");
        return 2;
    }
    if (strcmp(argv[1], "sqlite") == 0 || strcmp(argv[1], "store") == 0)
        return bench_sqlite(argv[2], agents, rounds, batch);
    if (strcmp(argv[1], "pg") == 0)
        return bench_pg(argv[2], agents, rounds, batch);
    fprintf(stderr, "bench_store: unknown back-end '%s'\n", argv[1]);
    return 2;
}
