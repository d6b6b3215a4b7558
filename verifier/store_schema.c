/* store_schema.c — the store's schema on each engine and the forward migration both engines
 * share. The two arrays move in step: entry i of each brings the schema from version i to i + 1
 * with the same tables and columns, in that engine's types (SQLite's INTEGER is 64-bit, so
 * PostgreSQL gets BIGINT; BLOB is BYTEA; AUTOINCREMENT is an identity column; ids and names are
 * COLLATE "C" on PostgreSQL so they sort and compare bytewise, as in SQLite). Append only; never
 * edit a released entry. */
#include "store_int.h"

#include <stdio.h>

const char *const vstore_sqlite_migrations[] = {
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
    /* 7: leases (store_lease.h): a heartbeat row per verifier process (expiry in milliseconds of
     * the database's clock, q_now_ms()), a lease row per agent (owner instance, epoch); every
     * agent starts unowned */
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

const char *const vstore_pg_migrations[] = {
    /* 1 */
    "CREATE TABLE registrar ("
    "  agent_id TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,"
    "  ek_tpm TEXT, ekcert TEXT, aik_tpm TEXT, mtls_cert TEXT, ip TEXT,"
    "  port BIGINT NOT NULL DEFAULT 0,"
    "  regcount BIGINT NOT NULL DEFAULT 0,"
    "  active BIGINT NOT NULL DEFAULT 0,"
    "  key TEXT);"
    "CREATE TABLE policy_bodies ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  checksum TEXT COLLATE \"C\" NOT NULL UNIQUE,"
    "  body TEXT NOT NULL);"
    "CREATE TABLE policies ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  name TEXT COLLATE \"C\" NOT NULL UNIQUE,"
    "  body_id BIGINT NOT NULL REFERENCES policy_bodies(id),"
    "  tpm_policy TEXT,"
    "  generator BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX policies_body ON policies(body_id);"
    "CREATE TABLE agents ("
    "  agent_id TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,"
    "  ip TEXT, port BIGINT NOT NULL DEFAULT 0,"
    "  ak_tpm TEXT, mtls_cert TEXT, tpm_policy TEXT,"
    "  policy_id BIGINT REFERENCES policies(id),"
    "  ima_sign_verification_keys TEXT, meta_data TEXT,"
    "  accept_tpm_hash_algs TEXT, accept_tpm_encryption_algs TEXT, accept_tpm_signing_algs TEXT,"
    "  hash_alg TEXT, enc_alg TEXT, sign_alg TEXT,"
    "  supported_version TEXT, v TEXT,"
    "  verifier_id TEXT, verifier_ip TEXT, verifier_port BIGINT NOT NULL DEFAULT 0,"
    "  operational_state BIGINT NOT NULL,"
    "  next_ima_ml_entry BIGINT NOT NULL DEFAULT 0,"
    "  pcr10_alg TEXT, pcr10 BYTEA,"
    "  boottime BIGINT NOT NULL DEFAULT 0,"
    "  tpm_clock BIGINT, tpm_reset_count BIGINT, tpm_restart_count BIGINT,"
    "  attestation_count BIGINT NOT NULL DEFAULT 0,"
    "  last_received_quote BIGINT NOT NULL DEFAULT 0,"
    "  last_successful_attestation BIGINT NOT NULL DEFAULT 0,"
    "  consecutive_failures BIGINT NOT NULL DEFAULT 0,"
    "  severity_level BIGINT NOT NULL DEFAULT -1,"
    "  last_event_id TEXT,"
    "  learned_ima_keyrings TEXT);"
    "CREATE INDEX agents_policy ON agents(policy_id);"
    "CREATE TABLE failures ("
    "  agent_id TEXT COLLATE \"C\" NOT NULL REFERENCES agents(agent_id) ON DELETE CASCADE,"
    "  seq BIGINT NOT NULL,"
    "  entry BIGINT NOT NULL,"
    "  path TEXT NOT NULL, event_id TEXT NOT NULL, reason TEXT NOT NULL,"
    "  time BIGINT NOT NULL,"
    "  PRIMARY KEY (agent_id, seq));",
    /* 2 */
    "ALTER TABLE policies ADD COLUMN sign_key TEXT;",
    /* 3 */
    "ALTER TABLE registrar ADD COLUMN registered_at BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE registrar ADD COLUMN failed_activations BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE registrar ADD COLUMN pending_mtls_cert TEXT;"
    "ALTER TABLE registrar ADD COLUMN pending_ip TEXT;"
    "ALTER TABLE registrar ADD COLUMN pending_port BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE registrar ADD COLUMN pending_key TEXT;"
    "CREATE INDEX registrar_pending ON registrar(registered_at) WHERE active = 0 OR pending_key IS NOT NULL;",
    /* 4 */
    "CREATE TABLE mbpolicies ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  name TEXT COLLATE \"C\" NOT NULL UNIQUE,"
    "  mb_policy TEXT NOT NULL);"
    "ALTER TABLE agents ADD COLUMN mb_policy_id BIGINT REFERENCES mbpolicies(id);"
    "ALTER TABLE agents ADD COLUMN mb_evaluated BIGINT NOT NULL DEFAULT 0;"
    "CREATE INDEX agents_mbpolicy ON agents(mb_policy_id);",
    /* 5 */
    "ALTER TABLE agents ADD COLUMN ima_good_total BIGINT NOT NULL DEFAULT 0;",
    /* 6 */
    "ALTER TABLE registrar ADD COLUMN display_id TEXT NOT NULL DEFAULT '';"
    "UPDATE registrar SET display_id = agent_id;"
    "ALTER TABLE agents ADD COLUMN display_id TEXT NOT NULL DEFAULT '';"
    "UPDATE agents SET display_id = agent_id;",
    /* 7: q_now_ms() is the server's clock (not the transaction's start), as on SQLite */
    "CREATE FUNCTION q_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS"
    "  'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT';"
    "CREATE TABLE verifiers ("
    "  instance TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,"
    "  verifier_id TEXT COLLATE \"C\" NOT NULL,"
    "  expiry BIGINT NOT NULL);"
    "CREATE TABLE leases ("
    "  agent_id TEXT COLLATE \"C\" PRIMARY KEY NOT NULL REFERENCES agents(agent_id) ON DELETE CASCADE,"
    "  owner TEXT COLLATE \"C\","
    "  epoch BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX leases_owner ON leases(owner);"
    "INSERT INTO leases (agent_id, owner, epoch) SELECT agent_id, NULL, 0 FROM agents;",
};

#define NSQLITE ((int)(sizeof vstore_sqlite_migrations / sizeof vstore_sqlite_migrations[0]))
#define NPG ((int)(sizeof vstore_pg_migrations / sizeof vstore_pg_migrations[0]))
_Static_assert(NSQLITE == NPG, "both engines have the same schema versions");
const int VSTORE_SCHEMA = NSQLITE;

/* A one-row, one-column integer query (ad hoc statement). */
static int query_int(vconn *c, const char *sql, int64_t *out, const char *what, qerr *err)
{
    const vdriver *d = c->s->drv;
    vq *q = NULL;
    if (d->prepare(c, sql, &q, err) != 0)
        return -1;
    int ret = 0;
    if (d->step(q) == VQ_ROW)
        *out = d->col_i64(q, 0);
    else
        ret = qerr_set(err, "database error: %s (%s)", d->errmsg(c), what);
    d->finalize(q);
    return ret;
}

static int write_version(vconn *c, int version, qerr *err)
{
    const vdriver *d = c->s->drv;
    if (d->exec(c, "DELETE FROM schema_version") != 0)
        return qerr_set(err, "database error: %s (writing the schema version)", d->errmsg(c));
    vq *q = NULL;
    if (d->prepare(c, "INSERT INTO schema_version (version) VALUES (?1)", &q, err) != 0)
        return -1;
    int ret = 0;
    if (d->bind_i64(q, 1, version) != 0 || d->step(q) != VQ_DONE)
        ret = qerr_set(err, "database error: %s (writing the schema version)", d->errmsg(c));
    d->finalize(q);
    return ret;
}

int vstore_migrate(vstore *s, vconn *c, const char *const *migrations, qerr *err)
{
    const vdriver *d = s->drv;
    if (d->begin(c) != 0)
        return qerr_set(err, "database error: %s (starting the schema migration)", d->errmsg(c));
    int64_t version = 0;
    if (d->exec(c, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)") != 0) {
        qerr_set(err, "database error: %s (creating schema_version)", d->errmsg(c));
        goto fail;
    }
    if (query_int(c, "SELECT coalesce(max(version), 0) FROM schema_version", &version,
                  "reading the schema version", err) != 0)
        goto fail;
    if (version > VSTORE_SCHEMA) {
        qerr_set(err, "database error: schema version %d is newer than this program's (%d); the database was not "
                      "modified", (int)version, VSTORE_SCHEMA);
        goto fail;
    }
    /* A migration target: only a new database, or one this version made and nothing wrote to. */
    if (s->require_empty && version != 0 && version != VSTORE_SCHEMA) {
        qerr_set(err, "the target database has schema version %d (this program's is %d): migrate copies into an "
                      "empty database only, and changed nothing", (int)version, VSTORE_SCHEMA);
        goto fail;
    }
    if (s->require_empty && version != 0 && vstore_check_empty(c, err) != 0)
        goto fail;
    for (int v = (int)version; v < VSTORE_SCHEMA; v++) {
        if (d->exec(c, migrations[v]) != 0) {
            qerr_set(err, "database error: %s (migrating the schema to version %d)", d->errmsg(c), v + 1);
            goto fail;
        }
    }
    if (version < VSTORE_SCHEMA && write_version(c, VSTORE_SCHEMA, err) != 0)
        goto fail;
    if (d->commit(c) != 0) {
        qerr_set(err, "database error: %s (committing the schema migration)", d->errmsg(c));
        goto fail;
    }
    s->version = VSTORE_SCHEMA;
    return 0;
fail:
    d->rollback(c);
    return -1;
}
