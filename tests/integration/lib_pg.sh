# A throw-away PostgreSQL server for integration tests (sourced after lib.sh).
#   pg_start   initdb + pg_ctl in a fresh directory, as the unprivileged user "nobody" (tests run
#              as root, and PostgreSQL refuses to run as root); it listens only on a unix socket
#              in that directory (listen_addresses = ''), password authentication (scram).
#              Sets PG_DIR, PG_URL (postgresql://quince@/postgres?host=PG_DIR) and PG_PASSFILE
#              (a libpq password file, mode 0600, for the user quince). PG_OPTS: extra server
#              options (default -c fsync=off: tests need no durability; benches set PG_OPTS=).
#   pg_psql SQL  runs SQL as quince; prints the result unaligned, tuples only.
#   pg_newdb NAME  creates database NAME and prints its URL (same socket, same credentials).
#   pg_halt / pg_resume  stop the server (fast shutdown: sessions are cut) and start it again on
#              the same data, for database-outage tests.
#   pg_stop    stops the server (pg_start adds it to the EXIT trap) and removes PG_DIR.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_RUN_AS=${PG_RUN_AS:-nobody}

pg_start() {
  [ -x "$PG_BIN/initdb" ] || { fail pg_start "no $PG_BIN/initdb (install the postgresql package)"; return 1; }
  # Not under QUINCE_TMP: its parent is root's 0700 directory, which nobody cannot enter.
  PG_DIR=$(mktemp -d /tmp/quince-pg.XXXXXX) || return 1
  chmod 0700 "$PG_DIR"
  PG_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '%s\n' "$PG_PASSWORD" > "$PG_DIR/pw"
  chown -R "$PG_RUN_AS" "$PG_DIR"
  if ! runuser -u "$PG_RUN_AS" -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U quince --pwfile="$PG_DIR/pw" \
         -A scram-sha-256 --locale=C -E UTF8 > "$PG_DIR/initdb.log" 2>&1; then
    fail pg_start "initdb: $(tail -2 "$PG_DIR/initdb.log" | tr '\n' ' ')"; return 1
  fi
  rm -f "$PG_DIR/pw"
  # Keep an EXIT trap already installed (lib_rig.sh's rig_cleanup) and run it afterwards.
  local prev; prev=$(trap -p EXIT | sed -n "s/^trap -- '\(.*\)' EXIT\$/\1/p")
  trap "pg_stop${prev:+; $prev}" EXIT
  pg_resume || { fail pg_start "pg_ctl start: $(tail -2 "$PG_DIR/server.log" | tr '\n' ' ')"; return 1; }
  PG_PASSFILE=$QUINCE_TMP/pgpass
  printf '*:*:*:quince:%s\n' "$PG_PASSWORD" > "$PG_PASSFILE"
  chmod 0600 "$PG_PASSFILE"
  PG_URL="postgresql://quince@/postgres?host=$PG_DIR"
}

# -w: pg_ctl returns once the server accepts connections (an event, not a delay).
pg_resume() {
  runuser -u "$PG_RUN_AS" -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' ${PG_OPTS--c fsync=off}" start > /dev/null 2>&1
}

pg_halt() {
  runuser -u "$PG_RUN_AS" -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop > /dev/null 2>&1
}

pg_newdb() {
  pg_psql "CREATE DATABASE \"$1\"" > /dev/null || return 1
  echo "postgresql://quince@/$1?host=$PG_DIR"
}

pg_psql() {
  PGPASSFILE=$PG_PASSFILE psql -X -q -t -A -v ON_ERROR_STOP=1 "$PG_URL" -c "$1"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    runuser -u "$PG_RUN_AS" -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop > /dev/null 2>&1
  fi
  rm -rf "$PG_DIR"
  PG_DIR=
}
