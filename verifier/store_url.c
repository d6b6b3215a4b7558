/* store_url.c — parsing `[verifier] database` (see store_url.h). */
#include "store_url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SQLITE_PREFIX "sqlite://"

static int has_prefix(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

/* A password in the URI's user part (user:secret@host) or in its parameters (password=). */
static int pg_has_password(const char *uri)
{
    const char *auth = strstr(uri, "://") + 3;
    size_t alen = strcspn(auth, "/?");
    const char *at = memchr(auth, '@', alen);
    if (at && memchr(auth, ':', (size_t)(at - auth)))
        return 1;
    const char *q = strchr(uri, '?');
    while (q) {
        q++;
        if (has_prefix(q, "password="))
            return 1;
        q = strchr(q, '&');
    }
    return 0;
}

int vdb_url_parse(const char *value, vdb_url *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    if (!value || !value[0])
        return qerr_set(err, "[verifier] database: a file name or a URL is required");
    size_t n = strlen(value);
    if (n >= sizeof out->target)
        return qerr_set(err, "[verifier] database: longer than %zu characters", sizeof out->target - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
            return qerr_set(err, "[verifier] database: contains a control character");

    if (has_prefix(value, "postgresql://") || has_prefix(value, "postgres://")) {
        if (pg_has_password(value))
            return qerr_set(err, "[verifier] database: the PostgreSQL URL must not contain a password; put it "
                                 "in a libpq password file (PGPASSFILE or ~/.pgpass) or a service file");
        out->kind = VDB_PG;
        memcpy(out->target, value, n + 1);
        return 0;
    }
    if (has_prefix(value, SQLITE_PREFIX)) {
        const char *path = value + strlen(SQLITE_PREFIX);
        if (path[0] != '/' || path[1] == '\0')
            return qerr_set(err, "[verifier] database: a SQLite URL is sqlite:///absolute/path (three slashes)");
        out->kind = VDB_SQLITE;
        memcpy(out->target, path, strlen(path) + 1);
        return 0;
    }
    const char *colon = strstr(value, "://");
    if (colon && strcspn(value, "/") > (size_t)(colon - value)) {
        int len = (int)(colon - value) > 32 ? 32 : (int)(colon - value);
        return qerr_set(err, "[verifier] database: unknown scheme '%.*s' (use a path, sqlite:///path or "
                             "postgresql://user@host/db)", len, value);
    }
    out->kind = VDB_SQLITE;
    memcpy(out->target, value, n + 1);
    return 0;
}
