#!/usr/bin/env bash
# Three verifiers sharing one database (docs/high-availability.md): figures printed, never
# pass/fail; called by `make bench-fleet` after bench_fleet.sh.
#   bench/bench_fleet_ha.sh BUILD_DIR
# A throw-away PostgreSQL 15 server (tests/integration/lib_pg.sh, fsync on) and three release
# verifiers (lease_ttl 10 s, quote_interval 2 s) poll N simulated agents (quince-fleet, N from
# BENCH_HA_AGENTS, default 1,000) added through the first verifier. Printed:
#   - how the leases spread (agents per verifier) once balanced;
#   - over a window of WIN s after a warm-up of WARM s: attestations/s (quotes the fleet served)
#     and the three verifiers' CPU µs per attestation (utime+stime from /proc over the window);
#   - failover: one verifier is killed (kill -9); the time until the others hold all its leases,
#     and until every one of its agents was quoted again (last_received_quote in the store,
#     whole seconds, polled every 0.1 s). The bound is lease_ttl + quote_interval.
# BENCH_HA_DB=sqlite runs the same on one SQLite file shared on this host.
set -u
BUILD=$(cd "${1:?usage: bench/bench_fleet_ha.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${BENCH_HA_AGENTS:-1000}
WARM=${BENCH_FLEET_WARM:-8}
WIN=${BENCH_FLEET_WIN:-20}
TTL=10
QI=2
HA_DB=${BENCH_HA_DB:-pg}
for b in quince-verifier tests/tools/quince-fleet; do
  [ -x "$BUILD/$b" ] || { echo "  skipped: $BUILD/$b not built (run 'make bench-fleet')"; exit 0; }
done
QUINCE_TMP=$(mktemp -d /tmp/quince-bench-ha.XXXXXX)
chmod 0700 "$QUINCE_TMP"
PIDS=()
fail() { echo "  skipped: $1${2:+: $2}"; }
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  [ "$HA_DB" = pg ] && pg_stop
  [ -n "${BENCH_FLEET_KEEP:-}" ] || rm -rf "$QUINCE_TMP"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
cpu_ticks() { local p t=0; for p in "$@"; do t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done; echo "$t"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

if [ "$HA_DB" = pg ]; then
  PG_OPTS=${PG_OPTS:-}     # durability on: the figures are those of a real server
  . "$ROOT/tests/integration/lib_pg.sh"
  pg_start || exit 0
  trap cleanup EXIT        # pg_start chained its own trap; ours stops it too
  export PGPASSFILE=$PG_PASSFILE
  DB=$PG_URL
  sql() { pg_psql "$1"; }
else
  mkdir -p "$QUINCE_TMP/shared" && chmod 0700 "$QUINCE_TMP/shared"
  DB=$QUINCE_TMP/shared/db.sqlite
  sql() { sqlite3 -cmd ".timeout 10000" "$DB" "$1"; }
fi
HOST=$(hostname)
TLS_DIR=$QUINCE_TMP/tls

start_v() { # N
  local n=$1 d=$QUINCE_TMP/v$1 cv rp rt
  cv=$(free_port); rp=$(free_port); rt=$(free_port)
  mkdir -p "$d"
  eval "CV_$n=$cv REG_$n=$rp INST_$n=$HOST:127.0.0.1:$cv"
  # state_checkpoint_rounds = 1: the failover is timed by last_received_quote in the store.
  cat >"$d/verifier.conf" <<CONF
[verifier]
ip = 127.0.0.1
port = $cv
database = $DB
tls_dir = $TLS_DIR
quote_interval = $QI
retry_interval = 1
max_retries = 5
request_timeout_ms = 10000
lease_ttl = $TTL
state_checkpoint_rounds = 1
accept_tpm_hash_algs = sha256
accept_tpm_signing_algs = rsassa, ecdsa
log_level = info
[registrar]
ip = 127.0.0.1
port = $rp
tls_port = $rt
CONF
  "$BUILD/quince-verifier" --config "$d/verifier.conf" >"$d/verifier.log" 2>&1 &
  eval "VP_$n=$!"
  PIDS+=("$!")
  local i
  for i in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$rp/version" && return 0
    kill -0 "$!" 2>/dev/null || break
    sleep 0.1
  done
  echo "  skipped: verifier $n did not start: $(tail -1 "$d/verifier.log")"
  return 1
}
held() { local i="INST_$1"; sql "SELECT count(*) FROM leases WHERE owner = '${!i}';"; }
wait_for() { # SECS CMD...
  local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.1; done
}
# every verifier at most at its fair share ceil(N / 3), and every agent held
balanced() { local v s=$(( (N + 2) / 3 )) t=0 h; for v in 1 2 3; do h=$(held $v); [ "$h" -le "$s" ] || return 1; t=$((t + h)); done; [ "$t" = "$N" ]; }

start_v 1 || exit 0
start_v 2 || exit 0
start_v 3 || exit 0
"$BUILD/tests/tools/quince-fleet" --agents "$N" --evil 0 --dead 0 --reboot 0 --slow 0 --interval $QI \
  --new-entries-per-minute 6 --registrar "http://127.0.0.1:$REG_1" --verifier "https://127.0.0.1:$CV_1" \
  --tls-dir "$TLS_DIR" --out "$QUINCE_TMP/fleet" --base-ip "127.$((RANDOM % 50 + 20)).0.1" --port "$(free_port)" \
  >"$QUINCE_TMP/fleet.out" 2>"$QUINCE_TMP/fleet.err" &
FP=$!
PIDS+=("$FP")
touch "$QUINCE_TMP/fleet.out"
ready() { grep -q '^fleet: ready' "$QUINCE_TMP/fleet.out" || ! kill -0 "$FP" 2>/dev/null; }
wait_for 900 ready
grep -q '^fleet: ready' "$QUINCE_TMP/fleet.out" || { echo "  skipped: the fleet did not get ready: $(tail -2 "$QUINCE_TMP/fleet.err" | tr '\n' ' ')"; exit 0; }
echo "  three verifiers on $([ "$HA_DB" = pg ] && echo "PostgreSQL 15 (fsync on)" || echo "one shared SQLite file"), N=$N agents, quote_interval $QI s, lease_ttl $TTL s; $(grep '^fleet: registered' "$QUINCE_TMP/fleet.out" | sed 's/^fleet: //')"
t0=$(now_ms)
if wait_for 120 balanced; then
  echo "      leases balanced $(( $(now_ms) - t0 )) ms after the fleet was added: $(held 1) / $(held 2) / $(held 3)"
else
  echo "      leases not balanced within 120 s: $(held 1) / $(held 2) / $(held 3)"
fi
sleep "$WARM"
kill -USR1 "$FP"
c0=$(cpu_ticks "$VP_1" "$VP_2" "$VP_3")
sleep "$WIN"
kill -USR1 "$FP"
c1=$(cpu_ticks "$VP_1" "$VP_2" "$VP_3")
two() { [ "$(grep -c '^fleet: stats' "$QUINCE_TMP/fleet.out")" -ge 2 ]; }
wait_for 10 two
st=$(grep '^fleet: stats' "$QUINCE_TMP/fleet.out" | sed -n 2p)
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
awk -v q="$(field quotes "$st")" -v w="$(field window_s "$st")" -v c=$(( c1 - c0 )) -v tck="$(getconf CLK_TCK)" 'BEGIN{
  if (q > 0) printf "      window %.1f s: %.0f attestations/s; the three verifiers together %.0f us CPU/attestation (%.2f cores)\n",
                    w, q / w, c / tck * 1e6 / q, c / tck / w }'

# failover: kill -9 verifier 2
VI=$(sql "SELECT string_agg(agent_id, ',') FROM leases WHERE owner = '$INST_2';" 2>/dev/null)
[ "$HA_DB" = pg ] || VI=$(sql "SELECT group_concat(agent_id, ',') FROM leases WHERE owner = '$INST_2';")
IN="'${VI//,/\',\'}'"
nv=$(held 2)
t_kill=$(now_ms)
kill -9 "$VP_2"
kill_s=$(( t_kill / 1000 + 1 ))
taken() { [ "$(held 2)" = 0 ]; }
repolled() { [ "$(sql "SELECT count(*) FROM agents WHERE agent_id IN ($IN) AND last_received_quote >= $kill_s;")" = "$nv" ]; }
if wait_for 120 taken; then t_taken=$(( $(now_ms) - t_kill )); else t_taken="> 120000"; fi
if wait_for 120 repolled; then t_polled=$(( $(now_ms) - t_kill )); else t_polled="> 120000"; fi
echo "      failover (kill -9 of one verifier holding $nv agents): all its leases taken after $t_taken ms, every one of its agents quoted again after $t_polled ms (bound: lease_ttl + quote_interval = $(( TTL + QI )) s; +-1 s: the store keeps whole seconds)"
echo "      after the failover: $(held 1) / $(held 3) on the two left"
exit 0
