#!/usr/bin/env bash
# Fleet figures (printed, never pass/fail); `make bench-fleet`, also called by bench/run.sh.
#   bench/bench_fleet.sh BUILD_DIR
# A release quince-verifier and quince-fleet on loopback (same network namespace, the same two
# cores), quote_interval = 2. Scenarios: N = 1,000 and 10,000 agents with ECC AKs, and 1,000 with
# RSA AKs (BENCH_FLEET_SIZES="1000:ecc 10000:ecc 1000:rsa" overrides). For each:
#   - time to register + activate every agent (real protocol, software ActivateCredential) and
#     to add every agent to the verifier (POST /agents with a named runtime policy) — API calls
#     from 2 provisioning threads of the fleet, not one tenant process per agent; with the CPU
#     each process spent in each phase (/proc/PID/stat), the add's three programs sharing the cores;
#   - after a warm-up of WARM s, a measurement window of WIN s: attestations/s (quotes the fleet
#     served), the verifier's CPU µs per attestation (utime+stime from /proc/PID/stat over the
#     window), the gap between an agent's successive quotes (p50/p99/max) and the largest lag
#     behind the schedule (largest gap - quote_interval);
#   - detection latency: the fleet appends an unlisted file to EVIL agents inside the window;
#     the time from the append to the agent being Invalid Quote (9) in the store (polled every
#     0.1 s, so +-0.1 s);
#   - round latency inside the verifier (quote request sent -> state saved), p50 and p99 over
#     the window, from the verifier's quince_round_seconds histogram (GET /metrics, scraped just
#     before and just after the window; interpolated inside the histogram's buckets);
#   - verifier RSS before any agent and at the end of the window (and per agent), SQLite file
#     size (database + WAL), and the store's write transactions and rows written per second in
#     the window (quince_store_write_transactions_total, quince_store_rows_written_total), and
#     the new connections the verifier opened to agents in the window (kept-alive: none);
# Agents are added through quince-tenant's bulk add (-c add --uuid-file, one stored policy);
# the fleet's one wildcard listener stays inside a network namespace of the bench's own when
# unshare(1) may make one (root), else on the host's loopback with the fleet refusing every
# address that is not an agent's.
set -u
BUILD=$(cd "${1:?usage: bench/bench_fleet.sh BUILD_DIR}" && pwd)
if [ -z "${BENCH_FLEET_NETNS:-}" ] && command -v unshare >/dev/null 2>&1 &&
   unshare -n true 2>/dev/null; then
  BENCH_FLEET_NETNS=1 exec unshare -n bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
SIZES=${BENCH_FLEET_SIZES:-"1000:ecc 10000:ecc 1000:rsa"}
WARM=${BENCH_FLEET_WARM:-8}
WIN=${BENCH_FLEET_WIN:-20}
for b in quince-verifier quince-tenant tests/tools/quince-fleet; do
  [ -x "$BUILD/$b" ] || { echo "  skipped: $BUILD/$b not built (run 'make bench-fleet')"; exit 0; }
done
for t in sqlite3 python3; do
  command -v "$t" >/dev/null 2>&1 || { echo "  skipped: $t not installed"; exit 0; }
done
WORK=$(mktemp -d /tmp/quince-bench-fleet.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "${BENCH_FLEET_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
TICK=$(getconf CLK_TCK)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
# utime+stime of PID in seconds (/proc/PID/stat fields 14 and 15; the name in field 2 has no spaces here).
cpu_s() { awk -v t="$TICK" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null; }
rss_kib() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status" 2>/dev/null; }
# Seconds every thread of PID spent waiting for a CPU (run queue), from /proc/PID/task/*/schedstat.
rq_wait() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{w += $2} END {printf "%.3f", w / 1e9}'; }
wait_line() { # FILE PATTERN SECS PID
  local i
  for i in $(seq $(($3 * 10))); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    kill -0 "$4" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Round latency quantiles and store writes in the window, from two /metrics scrapes.
window_metrics() { # BEFORE AFTER WINDOW_S
  python3 - "$1" "$2" "$3" <<'PY'
import re, sys
def load(path):
    h, c = {}, {}
    try:
        text = open(path).read()
    except OSError:
        return h, c
    for line in text.splitlines():
        m = re.match(r'quince_round_seconds_bucket\{le="([^"]+)"\} (\S+)$', line)
        if m:
            h[float('inf') if m.group(1) == '+Inf' else float(m.group(1))] = float(m.group(2))
            continue
        m = re.match(r'(quince_store_\w+_total|quince_agent_connects_total) (\S+)$', line)
        if m:
            c[m.group(1)] = float(m.group(2))
    return h, c
(h0, c0), (h1, c1) = load(sys.argv[1]), load(sys.argv[2])
w = float(sys.argv[3] or 0) or 1.0
les = sorted(h1)
cum = [h1[k] - h0.get(k, 0) for k in les]
def q(p):
    total = cum[-1] if cum else 0
    if total <= 0:
        return None
    want, lo, prev = p * total, 0.0, 0.0
    for le, n in zip(les, cum):
        if n >= want:
            if le == float('inf'):
                return lo
            return lo + (le - lo) * ((want - prev) / (n - prev) if n > prev else 1)
        lo, prev = le, n
    return lo
p50, p99 = q(0.5), q(0.99)
lat = ('round latency (request sent -> state saved): p50 %.0f ms, p99 %.0f ms (%d rounds)' %
       (p50 * 1000, p99 * 1000, cum[-1]) if p50 is not None else 'round latency: no rounds in the window')
tx = c1.get('quince_store_write_transactions_total', 0) - c0.get('quince_store_write_transactions_total', 0)
rows = c1.get('quince_store_rows_written_total', 0) - c0.get('quince_store_rows_written_total', 0)
conn = c1.get('quince_agent_connects_total', 0) - c0.get('quince_agent_connects_total', 0)
print('%s\n      store writes in the window: %.1f transactions/s, %.0f rows/s; new connections to agents: %.0f (%.1f/s)'
      % (lat, tx / w, rows / w, conn, conn / w))
PY
}

run() { # N AK [provision-only]
  local n=$1 ak=$2 d="$WORK/$1-$2${3:+-p}" evil prov=${3:-}
  # quince-fleet needs one descriptor an agent (the verifier's connection; one listener serves
  # them all) + 48; a hard RLIMIT_NOFILE it may not raise caps the fleet.
  local hard max; hard=$(ulimit -Hn); max=$(( hard - 64 ))
  if [ -z "$prov" ] && [ "$hard" != unlimited ] && [ "$n" -gt "$max" ]; then
    echo "  N=$n $ak: the open-file limit here is $hard (hard, not raisable without CAP_SYS_RESOURCE): N=$n is"
    echo "      provisioned without serving, then the rest runs with N=$max"
    run "$n" "$ak" provision-only
    n=$max
  fi
  evil=$(( n >= 10000 ? 10 : 3 ))
  mkdir -p "$d"
  local cv reg regtls
  local mp
  cv=$(free_port); reg=$(free_port); regtls=$(free_port); mp=$(free_port)
  cat >"$d/verifier.conf" <<CONF
[verifier]
ip = 127.0.0.1
port = $cv
database = $d/db.sqlite
tls_dir = $d/tls
quote_interval = 2
retry_interval = 1
max_retries = 5
request_timeout_ms = 10000
accept_tpm_hash_algs = sha256
accept_tpm_signing_algs = rsassa, ecdsa
log_level = info
metrics_listen = 127.0.0.1:$mp
[registrar]
ip = 127.0.0.1
port = $reg
tls_port = $regtls
CONF
  ${BENCH_FLEET_WRAP:-} "$BUILD/quince-verifier" --config "$d/verifier.conf" >"$d/verifier.log" 2>&1 &
  local vp=$!
  PIDS+=("$vp")
  echo "$vp" >"$d/verifier.pid"          # for perf record -p while the scenario runs
  local i
  for i in $(seq 100); do
    [ -s "$d/tls/tenant-key.pem" ] && curl -s -o /dev/null "http://127.0.0.1:$reg/version" && break
    sleep 0.1
  done
  local rss0; rss0=$(rss_kib "$vp")
  local vr0; vr0=$(cpu_s "$vp")
  local base="127.$((RANDOM % 50 + 20)).0.1"
  # Serving runs register through the fleet and add through the tenant; provisioning-only runs
  # (beyond the open-file limit) let the fleet add too.
  "$BUILD/tests/tools/quince-fleet" --agents "$n" --ak "$ak" --evil "$evil" --evil-at $((WARM + 3)) \
    --new-entries-per-minute 6 --interval 2 --registrar "http://127.0.0.1:$reg" \
    ${prov:+--verifier "https://127.0.0.1:$cv"} ${prov:---faults-on-usr2} \
    --tls-dir "$d/tls" --out "$d/fleet" --base-ip "$base" --port "$(free_port)" --watch-pid "$vp" \
    --threads "${BENCH_FLEET_REG_THREADS:-2}" \
    ${prov:+--provision-only} \
    >"$d/fleet.out" 2>"$d/fleet.err" &
  local fp=$!
  PIDS+=("$fp")
  if ! wait_line "$d/fleet.out" '^fleet: ready' 900 "$fp"; then
    echo "  N=$n $ak: the fleet did not get ready: $(tail -2 "$d/fleet.err" | tr '\n' ' ')"
    return
  fi
  local t_ready; t_ready=$(date +%s.%N)
  if [ -n "$prov" ]; then
    printf '  N=%-6s AK %-3s | %s (provisioning only)\n' "$n" "$ak" "$(grep '^fleet: registered' "$d/fleet.out" | sed 's/^fleet: //')"
    kill "$vp" 2>/dev/null; wait "$vp" 2>/dev/null
    return
  fi
  local prep regline addline
  prep=$(grep -E 'primes|identities' "$d/fleet.err" | sed 's/^fleet: //' | tr '\n' ';')
  regline=$(grep '^fleet: registered' "$d/fleet.out" | sed 's/; added in .*;/;/')
  regline="$regline; registrar (verifier) CPU $(awk -v a="$vr0" -v b="$(cpu_s "$vp")" -v n="$n" 'BEGIN{printf "%.1f s (%.2f ms an agent)", b - a, (b - a) * 1000 / n}'); $(grep -o 'registration used .*' "$d/fleet.err" | sed 's/registration used/fleet/')"
  # Add every agent through the tenant: the fleet's policy stored once by name, then one bulk add.
  # A loaded machine may hold a TLS handshake past the tenant's default 5 s connect timeout.
  printf '[tenant]\ntls_dir = %s\naccept_tpm_signing_algs = ecdsa, rsassa\nconnect_timeout_ms = 30000\n' "$d/tls" \
    >"$d/tenant.conf"
  local T=("$BUILD/quince-tenant" --config "$d/tenant.conf" -v 127.0.0.1 -vp "$cv" -r 127.0.0.1 -rp "$regtls")
  "${T[@]}" -c addruntimepolicy --runtime-policy "$d/fleet/policy.json" --runtime-policy-name quince-fleet \
    >"$d/tenant.out" 2>"$d/tenant.err"
  local va0 fa0; va0=$(cpu_s "$vp"); fa0=$(cpu_s "$fp")
  local tf; tf=$( { TIMEFORMAT='%U %S'; time ${BENCH_FLEET_TENANT_WRAP:-} "${T[@]}" -c add --uuid-file "$d/fleet/agents.txt" \
    --runtime-policy-name quince-fleet --jobs "${BENCH_FLEET_JOBS:-8}" >>"$d/tenant.out" 2>>"$d/tenant.err"; } 2>&1 )
  local va1 fa1; va1=$(cpu_s "$vp"); fa1=$(cpu_s "$fp")
  addline=$(grep '^bulk add:' "$d/tenant.out")
  [ -n "$addline" ] || addline="tenant bulk add failed: $(tail -1 "$d/tenant.err")"
  grep -q '^quince-tenant: .*agent' "$d/tenant.err" &&
    addline="$addline; first failures: $(grep '^quince-tenant: .*agent' "$d/tenant.err" | head -2 | cut -c1-200 | tr '\n' ' ')"
  addline="$addline; tenant CPU $(awk -v u="${tf% *}" -v s="${tf#* }" -v n="$n" 'BEGIN{printf "%.1f s (%.2f ms an agent)", u + s, (u + s) * 1000 / n}'); during the add: verifier CPU $(awk -v a="$va0" -v b="$va1" 'BEGIN{printf "%.1f s", b - a}'), fleet CPU $(awk -v a="$fa0" -v b="$fa1" 'BEGIN{printf "%.1f s", b - a}')"
  kill -USR2 "$fp"
  t_ready=$(date +%s.%N)
  sleep "$WARM"
  curl -s -o "$d/metrics0" "http://127.0.0.1:$mp/metrics"
  kill -USR1 "$fp"
  local t0; t0=$(date +%s.%N)
  local vw0 fw0; vw0=$(rq_wait "$vp"); fw0=$(rq_wait "$fp")
  # Detection: poll the store for the evil agents while the window runs.
  local ids; ids=$(awk '/ evil/ {printf "%s\x27%s\x27", (n++ ? "," : ""), $1}' "$d/fleet/agents.txt")
  local end; end=$(awk -v t="$t0" -v w="$WIN" 'BEGIN{printf "%.3f", t + w}')
  : >"$d/caught"
  while awk -v e="$end" -v now="$(date +%s.%N)" 'BEGIN{exit !(now < e)}'; do
    sqlite3 -cmd ".timeout 2000" "$d/db.sqlite" "SELECT agent_id FROM agents WHERE agent_id IN ($ids) AND operational_state = 9;" 2>/dev/null |
      while read -r id; do grep -q "$id" "$d/caught" || echo "$id $(date +%s%3N)" >>"$d/caught"; done
    sleep 0.1
  done
  kill -USR1 "$fp"
  local vw1 fw1; vw1=$(rq_wait "$vp"); fw1=$(rq_wait "$fp")
  curl -s -o "$d/metrics1" "http://127.0.0.1:$mp/metrics"

  local rss1; rss1=$(rss_kib "$vp")
  for i in $(seq 100); do
    [ "$(grep -c '^fleet: stats' "$d/fleet.out")" -ge 2 ] && break
    sleep 0.1
  done
  local st; st=$(grep '^fleet: stats' "$d/fleet.out" | sed -n 2p)
  local det
  det=$(grep '^fleet: evil' "$d/fleet.out" | awk '{print $3, $4}' | sed 's/appended_ms=//' |
        while read -r id ms; do c=$(awk -v i="$id" '$1 == i {print $2}' "$d/caught"); \
          [ -n "$c" ] && echo $((c - ms)) || echo miss; done | sort -n | tr '\n' ' ')
  local dbsz; dbsz=$(du -cb "$d"/db.sqlite* 2>/dev/null | tail -1 | cut -f1)
  kill "$fp" 2>/dev/null; wait "$fp" 2>/dev/null
  kill "$vp" 2>/dev/null; wait "$vp" 2>/dev/null
  local t_stop; t_stop=$(date +%s.%N)
  local tx; tx=$(grep -o 'store: [0-9]* write transactions' "$d/verifier.log" | awk '{print $2}')
  printf '  N=%-6s AK %-3s | %s\n' "$n" "$ak" "${regline#fleet: }"
  printf '      %s\n' "$addline"
  printf '      set-up: %s\n' "$prep"
  local w q; w=$(field window_s "$st"); q=$(field quotes "$st")
  awk -v q="$q" -v w="$w" -v c="$(field watched_cpu_s "$st")" -v us="$(field watched_us_per_quote "$st")" \
      -v fc="$(field fleet_cpu_s "$st")" 'BEGIN{
        printf "      window %.1f s: %.0f attestations/s; verifier CPU %.0f us/attestation (%.2f cores); fleet CPU %.2f cores\n",
               w, q / w, us, c / w, fc / w }'
  printf '      quote gaps: p50 %s ms, p99 %s ms, max %s ms; largest lag behind the 2 s schedule %s ms; agents silent in the window: %s (of which %s evil)\n' \
    "$(field gap_p50_ms "$st")" "$(field gap_p99_ms "$st")" "$(field gap_max_ms "$st")" "$(field lag_max_ms "$st")" \
    "$(field silent_agents "$st")" "$evil"
  printf '      %s\n' "$(window_metrics "$d/metrics0" "$d/metrics1" "$(field window_s "$st")")"
  awk -v v0="$vw0" -v v1="$vw1" -v f0="$fw0" -v f1="$fw1" -v w="$WIN" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN{
        printf "      waiting for a CPU in the window (run queue, all threads): verifier %.1f s, fleet %.1f s of %d s; load average %s\n",
               v1 - v0, f1 - f0, w, l }'
  printf '      detection of the evil file (ms, each of %s agents): %s\n' "$evil" "$det"
  awk -v a="$rss0" -v b="$rss1" -v n="$n" -v db="$dbsz" -v tx="${tx:-}" -v t="$(awk -v a="$t_ready" -v b="$t_stop" 'BEGIN{print b - a}')" 'BEGIN{
        printf "      verifier RSS %.1f MiB before agents, %.1f MiB with them (%.1f KiB per agent); SQLite %.1f MiB%s\n",
               a / 1024, b / 1024, (b - a) / n, db / 1048576,
               tx == "" ? "" : sprintf("; %.1f write transactions/s (%s from ready to stop)", tx / t, tx) }'
}

where="the host's loopback"
[ -n "${BENCH_FLEET_NETNS:-}" ] && where="a network namespace of the bench's own"
echo "  (quote_interval 2 s, warm-up ${WARM} s, window ${WIN} s; both processes share the machine's $(nproc) cores;" \
  "$where; load average $(cut -d' ' -f1-3 /proc/loadavg))"
for s in $SIZES; do
  run "${s%%:*}" "${s##*:}"
done
exit 0
