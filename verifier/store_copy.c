/* store_copy.c — copying one store's data into another, empty one (`quince-verifier migrate`):
 * every table in foreign-key order, every row and column as the source engine gives it, in one
 * transaction of the target. Both stores are at this program's schema version (vstore_open
 * brought them there), so the two sides have the same tables and columns; the column lists
 * below are checked against the source's tables, so a column added by a later migration and
 * not listed here stops the copy instead of being left behind. */
#include "store_int.h"

#include <stdio.h>
#include <string.h>

typedef struct copy_table {
    const char *name;       /* the table */
    const char *label;      /* what the report calls its rows */
    const char *select;     /* source: the listed columns */
    const char *insert;     /* target: the same columns */
    const char *count;      /* SELECT count(*) */
    const char *width;      /* SELECT * (the column count is checked against the list) */
    int ncols;
} copy_table;

#define REG_COLS "agent_id, ek_tpm, ekcert, aik_tpm, mtls_cert, ip, port, regcount, active, key, registered_at," \
                 " failed_activations, pending_mtls_cert, pending_ip, pending_port, pending_key, display_id"
#define AG_COLS                                                                                         \
    "agent_id, ip, port, ak_tpm, mtls_cert, tpm_policy, policy_id, ima_sign_verification_keys, meta_data," \
    " accept_tpm_hash_algs, accept_tpm_encryption_algs, accept_tpm_signing_algs, hash_alg, enc_alg,"      \
    " sign_alg, supported_version, v, verifier_id, verifier_ip, verifier_port, operational_state,"        \
    " next_ima_ml_entry, pcr10_alg, pcr10, boottime, tpm_clock, tpm_reset_count, tpm_restart_count,"      \
    " attestation_count, last_received_quote, last_successful_attestation, consecutive_failures,"         \
    " severity_level, last_event_id, learned_ima_keyrings, mb_policy_id, mb_evaluated, ima_good_total,"     \
    " display_id"
#define Q4 "?, ?, ?, ?, "
#define Q8 Q4 Q4
#define TABLE(nm, label, cols, order, marks, n)                                                          \
    { nm, label, "SELECT " cols " FROM " nm " ORDER BY " order, "INSERT INTO " nm " (" cols ") VALUES (" \
      marks ")", "SELECT count(*) FROM " nm, "SELECT * FROM " nm " WHERE 1 = 0", n }

static const copy_table tables[] = {
    TABLE("registrar", "registrar records", REG_COLS, "agent_id", Q8 Q8 "?", 17),
    TABLE("policy_bodies", "runtime policy texts", "id, checksum, body", "id", "?, ?, ?", 3),
    TABLE("policies", "runtime policies", "id, name, body_id, tpm_policy, generator, sign_key", "id",
          "?, ?, ?, ?, ?, ?", 6),
    TABLE("mbpolicies", "measured-boot policies", "id, name, mb_policy", "id", "?, ?, ?", 3),
    TABLE("agents", "agents", AG_COLS, "agent_id", Q8 Q8 Q8 Q8 "?, ?, ?, ?, ?, ?, ?", 39),
    TABLE("failures", "failure records", "agent_id, seq, entry, path, event_id, reason, time", "agent_id, seq",
          "?, ?, ?, ?, ?, ?, ?", 7),
    TABLE("verifiers", "verifier heartbeats", "instance, verifier_id, expiry", "instance", "?, ?, ?", 3),
    TABLE("leases", "agent leases", "agent_id, owner, epoch", "agent_id", "?, ?, ?", 3),
};
#define NTABLES (sizeof tables / sizeof tables[0])

/* PostgreSQL identity columns continue after the copied ids. */
static const char *const pg_after[] = {
    "SELECT setval(pg_get_serial_sequence('policy_bodies', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM policy_bodies), false)",
    "SELECT setval(pg_get_serial_sequence('policies', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM policies), false)",
    "SELECT setval(pg_get_serial_sequence('mbpolicies', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM mbpolicies), false)",
};

static int dberr(vconn *c, qerr *err, const char *what, const char *table)
{
    const vdriver *d = c->s->drv;
    return qerr_set(err, "%s database error: %s (%s %s)", d->name, d->errmsg(c), what, table);
}

/* One-row integer query. */
static int query_i64(vconn *c, const char *sql, int64_t *out, const char *table, qerr *err)
{
    const vdriver *d = c->s->drv;
    vq *q = NULL;
    if (d->prepare(c, sql, &q, err) != 0)
        return -1;
    int ret = 0;
    if (d->step(q) == VQ_ROW)
        *out = d->col_i64(q, 0);
    else
        ret = dberr(c, err, "counting", table);
    d->finalize(q);
    return ret;
}

/* The number of columns the table has. */
static int table_width(vconn *c, const copy_table *t, int *n, qerr *err)
{
    const vdriver *d = c->s->drv;
    vq *q = NULL;
    if (d->prepare(c, t->width, &q, err) != 0)
        return -1;
    int ret = 0;
    if (d->step(q) == VQ_ERROR)
        ret = dberr(c, err, "reading the columns of", t->name);
    else
        *n = d->ncols(q);
    d->finalize(q);
    return ret;
}

int vstore_check_empty(vconn *c, qerr *err)
{
    for (size_t i = 0; i < NTABLES; i++) {
        int64_t n = 0;
        if (query_i64(c, tables[i].count, &n, tables[i].name, err) != 0)
            return -1;
        if (n > 0)
            return qerr_set(err, "the target database is not empty (table %s has %lld rows); migrate copies into an "
                                 "empty database only, and changed nothing", tables[i].name, (long long)n);
    }
    return 0;
}

/* Binds the source row's columns to the insert, as the source engine typed them. */
static int bind_row(const vdriver *sd, vq *src, const vdriver *td, vq *dst, int ncols)
{
    int rc = 0;
    for (int i = 0; i < ncols && rc == 0; i++) {
        size_t n = 0;
        switch (sd->col_type(src, i)) {
        case VQT_NULL:
            rc = td->bind_null(dst, i + 1);
            break;
        case VQT_INT:
            rc = td->bind_i64(dst, i + 1, sd->col_i64(src, i));
            break;
        case VQT_BLOB: {
            const void *p = sd->col_blob(src, i, &n);
            rc = td->bind_blob(dst, i + 1, p ? p : "", n);
            break;
        }
        default: {
            const char *t = sd->col_text(src, i, &n);
            /* the text must be one C string: a NUL inside would be cut short */
            rc = t && strlen(t) == n ? td->bind_text(dst, i + 1, t) : -1;
            break;
        }
        }
    }
    return rc;
}

static int copy_one(vconn *fc, vconn *tc, const copy_table *t, long *rows, qerr *err)
{
    const vdriver *sd = fc->s->drv, *td = tc->s->drv;
    int width = 0;
    if (table_width(fc, t, &width, err) != 0)
        return -1;
    if (width != t->ncols)
        return qerr_set(err, "table %s has %d columns, this program copies %d: nothing was copied", t->name, width,
                        t->ncols);
    vq *src = NULL, *dst = NULL;
    if (sd->prepare(fc, t->select, &src, err) != 0)
        return -1;
    if (td->prepare(tc, t->insert, &dst, err) != 0) {
        sd->finalize(src);
        return -1;
    }
    int rc, ret = 0;
    *rows = 0;
    while ((rc = sd->step(src)) == VQ_ROW) {
        if (bind_row(sd, src, td, dst, t->ncols) != 0) {
            ret = qerr_set(err, "row %ld of table %s cannot be copied (a value the target cannot take)", *rows + 1,
                           t->name);
            break;
        }
        if (td->step(dst) != VQ_DONE) {
            ret = dberr(tc, err, "writing", t->name);
            break;
        }
        td->reset(dst);
        (*rows)++;
    }
    if (ret == 0 && rc != VQ_DONE)
        ret = dberr(fc, err, "reading", t->name);
    sd->finalize(src);
    td->finalize(dst);
    return ret;
}

static int copy_all(vconn *fc, vconn *tc, char *report, size_t cap, qerr *err)
{
    size_t off = 0;
    report[0] = '\0';
    for (size_t i = 0; i < NTABLES; i++) {
        long rows = 0;
        if (copy_one(fc, tc, &tables[i], &rows, err) != 0)
            return -1;
        int w = snprintf(report + off, cap - off, "%s%ld %s", i ? ", " : "", rows, tables[i].label);
        if (w > 0 && (size_t)w < cap - off)
            off += (size_t)w;
    }
    if (tc->s->drv == &vstore_pg_driver)
        for (size_t i = 0; i < sizeof pg_after / sizeof pg_after[0]; i++)
            if (tc->s->drv->exec(tc, pg_after[i]) != 0)
                return dberr(tc, err, "continuing the ids after", "the copied rows");
    return 0;
}

int vstore_copy(vstore *from, vstore *to, char *report, size_t cap, qerr *err)
{
    if (from->version != to->version)
        return qerr_set(err, "the schema versions differ (%d and %d)", from->version, to->version);
    vstore_lock(from);
    vstore_lock(to);
    vconn *fc = vstore_conn(from), *tc = vstore_conn(to);
    int ret = -1;
    if (!fc || !tc)
        qerr_set(err, "no database connection");
    else if (vstore_begin(to, err) != 0)
        ;
    else if (vstore_check_empty(tc, err) != 0 || copy_all(fc, tc, report, cap, err) != 0)
        vstore_rollback(to);
    else
        ret = vstore_commit(to, err);
    vstore_unlock(to);
    vstore_unlock(from);
    return ret;
}
