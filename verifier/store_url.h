/* store_url.h — what `[verifier] database` names: a SQLite file or a PostgreSQL server.
 *
 * Accepted forms: a plain path or sqlite:///absolute/path (SQLite), postgresql://... or
 * postgres://... (a libpq connection URI). A PostgreSQL URI must not carry a password (neither
 * user:password@ nor ?password=): credentials come from a libpq password file (PGPASSFILE,
 * ~/.pgpass) or service file, so the value can be logged and printed as it is.
 * Pure: no I/O, no logging; errors never echo the part of the value after the scheme. */
#ifndef QUINCE_VERIFIER_STORE_URL_H
#define QUINCE_VERIFIER_STORE_URL_H

#include "err.h"

typedef enum { VDB_SQLITE = 1, VDB_PG = 2 } vdb_kind;

#define VDB_TARGET_MAX 1024

typedef struct vdb_url {
    vdb_kind kind;
    char target[VDB_TARGET_MAX];   /* SQLite: the file path; PostgreSQL: the URI as given */
} vdb_url;

/* 0, or -1 with a one-line reason. */
int vdb_url_parse(const char *value, vdb_url *out, qerr *err);

#endif
