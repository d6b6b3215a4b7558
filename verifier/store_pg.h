/* store_pg.h — the PostgreSQL back-end of the verifier store (libpq).
 *
 * Status: only the start-up checks exist so far. vstore_pg_check connects once with the given
 * URI (credentials from the libpq password or service file; TLS as the URI's sslmode says),
 * reads the schema version (table schema_version; absent = 0) and refuses a database whose
 * schema is newer than this program's, without modifying it. The agent store itself is not
 * implemented on PostgreSQL yet, so the caller refuses to start after a successful check.
 * Library-style: never exits, logs nothing; the message is one line and never holds a password. */
#ifndef QUINCE_VERIFIER_STORE_PG_H
#define QUINCE_VERIFIER_STORE_PG_H

#include "err.h"

/* The schema version this program writes on PostgreSQL (0: none yet). */
#define VSTORE_PG_SCHEMA 0

/* 0 (reachable, schema not newer; *db_version set) or -1 with the reason. */
int vstore_pg_check(const char *uri, int *db_version, qerr *err);

#endif
