#!/bin/bash
# `[verifier] database` naming a PostgreSQL server, against a real one started for this test:
# a wrong URL, a password in the URL, an unreachable server and wrong credentials are each one
# line and exit status 2; with the right credentials the verifier runs on it and creates the schema;
# a schema newer than the program's is refused and left untouched.
# sqlite:///path is the same SQLite store as a plain path.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_rig.sh"
. "$(dirname "$0")/lib_pg.sh"
D=$QUINCE_TMP/pgstart
mkdir -p "$D"
cd "$D" || exit 1

conf() {  # conf FILE DATABASE
  printf '[verifier]\ndatabase = %s\ntls_dir = %s/tls\nport = 0\n[registrar]\nport = 0\ntls_port = 0\n' "$2" "$D" > "$1"
}
one_line() {  # one_line NAME TEXT
  [ "$(printf '%s\n' "$2" | wc -l)" = 1 ] && pass "$1" || fail "$1" "$2"
}

# Bad values are caught by the configuration check, before anything is created.
conf bad_scheme.conf "mysql://root@db/quince"
expect_rc pg_bad_scheme_exit2 2 "$VERIFIER" --config bad_scheme.conf --check-config
expect_grep pg_bad_scheme_reason "unknown scheme 'mysql'" "$LAST_OUT"
one_line pg_bad_scheme_one_line "$LAST_OUT"
conf pw.conf "postgresql://quince:hunter2@localhost/quince"
expect_rc pg_password_in_url_exit2 2 "$VERIFIER" --config pw.conf --check-config
expect_grep pg_password_in_url_reason "must not contain a password" "$LAST_OUT"
case $LAST_OUT in *hunter2*) fail pg_password_not_echoed "$LAST_OUT" ;; *) pass pg_password_not_echoed ;; esac
[ ! -e "$D/tls" ] && pass pg_bad_values_nothing_created || fail pg_bad_values_nothing_created

# sqlite:///path is accepted by the check and used as that file.
conf sq.conf "sqlite://$D/sq/verifier.sqlite"
expect_rc pg_sqlite_url_check 0 "$VERIFIER" --config sq.conf --check-config
TLS_DIR=$D/rigtls
if DATABASE="sqlite://$D/sq/verifier.sqlite" start_verifier && [ -f "$D/sq/verifier.sqlite" ]; then
  pass pg_sqlite_url_runs
else
  fail pg_sqlite_url_runs "$(tail -2 "$QUINCE_TMP/verifier.log")"
fi
stop_verifier

pg_start || exit 0

# Unreachable: a socket directory with no server.
mkdir -p "$D/nosrv"
conf unreach.conf "postgresql://quince@/postgres?host=$D/nosrv"
expect_rc pg_unreachable_exit2 2 env PGPASSFILE="$PG_PASSFILE" "$VERIFIER" --config unreach.conf
expect_grep pg_unreachable_reason "PostgreSQL: cannot connect" "$LAST_OUT"
one_line pg_unreachable_one_line "$LAST_OUT"

# Wrong credentials.
printf '*:*:*:quince:wrong-%s\n' "$RANDOM" > "$D/badpass"; chmod 0600 "$D/badpass"
conf pg.conf "$PG_URL"
expect_rc pg_wrong_password_exit2 2 env PGPASSFILE="$D/badpass" "$VERIFIER" --config pg.conf
expect_grep pg_wrong_password_reason "password authentication failed" "$LAST_OUT"
one_line pg_wrong_password_one_line "$LAST_OUT"

# Right credentials: the verifier runs on PostgreSQL; the schema is created at the current version.
if DATABASE=$PG_URL PGPASSFILE=$PG_PASSFILE start_verifier; then
  pass pg_verifier_runs
else
  fail pg_verifier_runs "$(tail -2 "$QUINCE_TMP/verifier.log")"
fi
expect_grep pg_verifier_says_engine "on PostgreSQL, schema " "$(cat "$QUINCE_TMP/verifier.log")"
stop_verifier
v=$(pg_psql "SELECT max(version) FROM schema_version")
[ -n "$v" ] && [ "$v" -ge 5 ] && pass "pg_schema_created ($v)" || fail pg_schema_created "version '$v'"
tables=$(pg_psql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")

# A schema newer than the program's: refused, and the database is not modified.
pg_psql "UPDATE schema_version SET version = 99"
expect_rc pg_newer_schema_exit2 2 env PGPASSFILE="$PG_PASSFILE" "$VERIFIER" --config pg.conf
expect_grep pg_newer_schema_reason "schema version 99 is newer than this program's" "$LAST_OUT"
one_line pg_newer_schema_one_line "$LAST_OUT"
after=$(pg_psql "SELECT string_agg(version::text, ',') FROM schema_version; SELECT count(*) FROM pg_tables WHERE schemaname = 'public';" | tr '\n' ' ')
[ "$after" = "99 $tables " ] && pass pg_newer_schema_untouched || fail pg_newer_schema_untouched "$after (wanted 99 $tables)"

pg_stop
[ ! -d "${PG_DIR:-/nonexistent}" ] && pass pg_server_stopped || fail pg_server_stopped
