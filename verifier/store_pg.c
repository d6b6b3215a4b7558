/* store_pg.c — PostgreSQL connection and schema checks (see store_pg.h). */
#include "store_pg.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

/* libpq's messages can span lines ("connection to server ... failed: ...\n\tIs the server
 * running ...?"); the caller prints one line. */
static int pg_fail(qerr *err, const char *what, const char *msg)
{
    size_t n = msg ? strcspn(msg, "\r\n") : 0;
    if (n > 400)
        n = 400;
    return qerr_set(err, "PostgreSQL: %s: %.*s", what, (int)n, n ? msg : "no detail");
}

/* 0 with *version (0 when the table does not exist) or -1. */
static int read_version(PGconn *c, int *version, qerr *err)
{
    PGresult *r = PQexecParams(c, "SELECT to_regclass('schema_version') IS NOT NULL", 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        int ret = pg_fail(err, "cannot read the schema version", PQresultErrorMessage(r));
        PQclear(r);
        return ret;
    }
    int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    *version = 0;
    if (!exists)
        return 0;
    r = PQexecParams(c, "SELECT coalesce(max(version), 0) FROM schema_version", 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        int ret = pg_fail(err, "cannot read the schema version", PQresultErrorMessage(r));
        PQclear(r);
        return ret;
    }
    char *end = NULL;
    long v = strtol(PQgetvalue(r, 0, 0), &end, 10);
    int ok = end && *end == '\0' && v >= 0 && v < 1000000;
    PQclear(r);
    if (!ok)
        return qerr_set(err, "PostgreSQL: the schema version is not a number");
    *version = (int)v;
    return 0;
}

int vstore_pg_check(const char *uri, int *db_version, qerr *err)
{
    /* expand_dbname: the URI's own settings apply, then these (a bounded wait on an
     * unreachable server; a name in pg_stat_activity). */
    const char *const keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *const vals[] = {uri, "10", "quince-verifier", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c)
        return qerr_set(err, "PostgreSQL: out of memory");
    int ret = 0;
    if (PQstatus(c) != CONNECTION_OK)
        ret = pg_fail(err, "cannot connect", PQerrorMessage(c));
    else if (read_version(c, db_version, err) < 0)
        ret = -1;
    else if (*db_version > VSTORE_PG_SCHEMA)
        ret = qerr_set(err, "PostgreSQL: schema version %d is newer than this program's (%d); the database was "
                            "not modified", *db_version, VSTORE_PG_SCHEMA);
    PQfinish(c);
    return ret;
}
