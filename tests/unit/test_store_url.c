/* Unit tests for verifier/store_url.c: which back-end `[verifier] database` names, and the
 * values that are refused (unknown schemes, passwords in a PostgreSQL URL). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "../../verifier/store_url.h"

static void plain_path_is_sqlite(void **state)
{
    (void)state;
    vdb_url u;
    qerr e = {0};
    assert_int_equal(vdb_url_parse("/var/lib/quince/verifier.sqlite", &u, &e), 0);
    assert_int_equal(u.kind, VDB_SQLITE);
    assert_string_equal(u.target, "/var/lib/quince/verifier.sqlite");
    assert_int_equal(vdb_url_parse("relative/v.sqlite", &u, &e), 0);
    assert_int_equal(u.kind, VDB_SQLITE);
    assert_string_equal(u.target, "relative/v.sqlite");
}

static void sqlite_url(void **state)
{
    (void)state;
    vdb_url u;
    qerr e = {0};
    assert_int_equal(vdb_url_parse("sqlite:///srv/q/v.db", &u, &e), 0);
    assert_int_equal(u.kind, VDB_SQLITE);
    assert_string_equal(u.target, "/srv/q/v.db");
    assert_int_equal(vdb_url_parse("SQLite:///srv/q/v.db", &u, &e), 0);
    assert_string_equal(u.target, "/srv/q/v.db");
    assert_int_equal(vdb_url_parse("sqlite://host/v.db", &u, &e), -1);
    assert_non_null(strstr(e.msg, "three slashes"));
    assert_int_equal(vdb_url_parse("sqlite:///", &u, &e), -1);
}

static void postgresql_url(void **state)
{
    (void)state;
    vdb_url u;
    qerr e = {0};
    const char *ok[] = {"postgresql://quince@db.example/quince", "postgres://db/quince?sslmode=verify-full",
                        "postgresql:///quince?host=/run/pg&user=q", "postgresql://q@[::1]:5433/quince"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(vdb_url_parse(ok[i], &u, &e), 0);
        assert_int_equal(u.kind, VDB_PG);
        assert_string_equal(u.target, ok[i]);
    }
}

static void password_refused_and_not_echoed(void **state)
{
    (void)state;
    vdb_url u;
    qerr e = {0};
    const char *bad[] = {"postgresql://quince:s3cret@db/quince", "postgresql://db/quince?password=s3cret",
                         "postgresql://db/quince?sslmode=require&password=s3cret"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(vdb_url_parse(bad[i], &u, &e), -1);
        assert_non_null(strstr(e.msg, "password file"));
        assert_null(strstr(e.msg, "s3cret"));
    }
    /* a ':' in the host part (a port) is not a password */
    assert_int_equal(vdb_url_parse("postgresql://q@db:5432/quince", &u, &e), 0);
}

static void bad_values(void **state)
{
    (void)state;
    vdb_url u;
    qerr e = {0};
    assert_int_equal(vdb_url_parse("", &u, &e), -1);
    assert_int_equal(vdb_url_parse("mysql://root:pw@db/q", &u, &e), -1);
    assert_non_null(strstr(e.msg, "unknown scheme 'mysql'"));
    assert_null(strstr(e.msg, "pw"));
    assert_int_equal(vdb_url_parse("/tmp/a\nb", &u, &e), -1);
    char big[VDB_TARGET_MAX + 8];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[0] = '/';
    assert_int_equal(vdb_url_parse(big, &u, &e), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_path_is_sqlite), cmocka_unit_test(sqlite_url), cmocka_unit_test(postgresql_url),
        cmocka_unit_test(password_refused_and_not_echoed), cmocka_unit_test(bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
