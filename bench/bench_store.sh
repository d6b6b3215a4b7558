#!/usr/bin/env bash
# State writes per second for a 10,000-agent fleet (printed, never pass/fail).
#   bench/bench_store.sh BUILD_DIR
# SQLite: the verifier's store (vstore_state_save_batch, 1,000 agents per transaction).
# PostgreSQL 15 (when installed; started as nobody on a unix socket, fsync on, default
# synchronous_commit): the verifier's store on it (store_pg.c: prepared statements, one
# statement per agent, 100 or 1,000 agents per transaction) and, for comparison, the same state
# UPDATE through libpq directly with binary parameters, pipelined; with the WAL bytes each writes.
set -u
BUILD=$(cd "${1:?usage: bench/bench_store.sh BUILD_DIR}" && pwd)
B="$BUILD/bench/bench_store"
[ -x "$B" ] || { echo "bench: $B not built (run 'make bench')"; exit 0; }
AGENTS=${BENCH_AGENTS:-10000} ROUNDS=${BENCH_ROUNDS:-3}
QUINCE_TMP=$(mktemp -d /tmp/quince-bench-store.XXXXXX)
trap 'rm -rf "$QUINCE_TMP"' EXIT

echo "== state writes, $AGENTS agents x $ROUNDS rounds =="
for batch in 1 100 1000; do
  out=$("$B" sqlite "$QUINCE_TMP/v$batch.sqlite" "$AGENTS" "$ROUNDS" "$batch" 2>&1)
  echo "  sqlite      batch=$batch: $out"
done

fail() { echo "  postgresql: skipped: $*"; }
. "$(dirname "$0")/../tests/integration/lib_pg.sh"
PG_OPTS= pg_start || exit 0
trap 'pg_stop; rm -rf "$QUINCE_TMP"' EXIT
wal() { pg_psql "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"; }
for batch in 100 1000; do
  url=$(pg_newdb "store$batch") || continue
  out=$(PGPASSFILE=$PG_PASSFILE "$B" store "$url" "$AGENTS" 1 "$batch" 2>&1 >/dev/null)   # the agents, once
  w0=$(wal)
  out=$(PGPASSFILE=$PG_PASSFILE "$B" store "$url" "$AGENTS" "$ROUNDS" "$batch" 2>&1)
  w1=$(wal)
  echo "  pg store    batch=$batch: $out wal_bytes_per_row=$(( (w1 - w0) / (AGENTS * ROUNDS) ))"
done
# batch=1 is one fsync per agent: measured on a tenth of the fleet to keep the bench short.
for batch in 1 100 1000; do
  n=$AGENTS; [ "$batch" = 1 ] && n=$((AGENTS / 10))
  out=$(PGPASSFILE=$PG_PASSFILE "$B" pg "$PG_URL" "$n" "$ROUNDS" "$batch" 2>&1)
  echo "  postgresql  batch=$batch (agents=$n): $out"
done
