#!/usr/bin/env bash
# Throughput figures (printed, never pass/fail).
#   bench/run.sh BUILD_DIR
# Needs BUILD_DIR/bench/bench_engine and BUILD_DIR/tests/tools/ima_gen (a release build:
# `make bench`). Generates synthetic ima-ng lists of 10k, 100k and 1M entries with their
# allowlists, then times, pinned to one core when taskset is available:
#   - the engine alone (policy loaded beforehand, list in memory), sha256 and sha1 banks;
#   - loading a 100,000-entry runtime policy JSON and a 100,000-line flat allowlist, each in a
#     fresh process;
#   - quince-agent on a swtpm: its own time per quote beyond the TPM's, its CPU per quote with a
#     new TLS connection per quote, and its private memory with a 100,000-entry list
#     (bench/bench_agent.sh; skipped without swtpm or the binaries; BENCH_AGENT_BIG=1 adds a
#     ~100 MB list served in 4 MiB pieces);
#   - state writes/s for 10,000 agents on SQLite and PostgreSQL, and PostgreSQL's WAL bytes
#     (bench/bench_store.sh; PostgreSQL skipped when not installed);
#   - the heap one kept-alive agent connection holds on the verifier's side, and the CPU of full
#     and resumed handshakes (bench_tls_conn);
#   - the verifier holding a simulated fleet (bench/bench_fleet.sh, also `make bench-fleet`).
set -u
BUILD=$(cd "${1:?usage: bench/run.sh BUILD_DIR}" && pwd)
BENCH="$BUILD/bench/bench_engine"
GEN="$BUILD/tests/tools/ima_gen"
for b in "$BENCH" "$GEN"; do
  [ -x "$b" ] || { echo "bench: $b not built (run 'make bench')"; exit 0; }
done
WORK=$(mktemp -d /tmp/quince-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

PIN=()
if command -v taskset >/dev/null 2>&1; then
  cpu=$(( $(nproc 2>/dev/null || echo 1) > 1 ? 1 : 0 ))
  PIN=(taskset -c "$cpu")
  echo "bench: pinned to CPU $cpu"
else
  echo "bench: taskset not found, not pinned"
fi
echo "bench: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //'), $(openssl version 2>/dev/null)"

field() { # field NAME LINE -> value of NAME=... in LINE
  printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}

for n in 10000 100000 1000000; do
  "$GEN" --out-dir "$WORK/l$n" --entries "$n" --seed 42 >/dev/null || { echo "bench: ima_gen failed"; exit 0; }
done
echo "bench: generated lists of 10k, 100k, 1M ima-ng entries (sha256 file digests)"
echo

echo "== engine (one core; target >= 1,500,000 entries/s) =="
for n in 10000 100000 1000000; do
  d="$WORK/l$n"
  rounds=5; [ "$n" = 1000000 ] && rounds=3
  for bank in sha256 sha1; do
    [ "$bank" = sha1 ] && [ "$n" != 100000 ] && continue
    out=$("${PIN[@]}" "$BENCH" engine "$d/ascii_runtime_measurements" "$d/allowlist.txt" "$bank" \
          "$(cat "$d/pcr10-$bank.hex")" "$rounds" 2>&1) || { echo "  $n entries: failed: $out"; continue; }
    rate=$(field best_rate "$out")
    printf '  %8s entries, %-6s bank: %10s entries/s (best of %s; median %s/s)  passed=%s  peak RSS %s KiB   [target >= 1500000/s]\n' \
      "$n" "$bank" "$rate" "$rounds" "$(field median_rate "$out")" "$(field passed "$out")" "$(field maxrss_kib "$out")"
  done
done
echo

echo "== policy load, 100,000 entries, fresh process each (best of 5; target <= 50 ms) =="
d="$WORK/l100000"
for mode in load-json load-allowlist; do
  f="$d/runtime_policy.json"; [ "$mode" = load-allowlist ] && f="$d/allowlist.txt"
  best=""; line=""
  for _ in 1 2 3 4 5; do
    out=$("${PIN[@]}" "$BENCH" "$mode" "$f" 2>&1) || { echo "  $mode failed: $out"; continue 2; }
    t=$(field total_ms "$out")
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; line=$out; fi
  done
  printf '  %-15s %s paths, %s bytes: %s ms (read %s ms, parse %s ms), peak RSS %s KiB, policy %s KiB   [target <= 50 ms]\n' \
    "$mode" "$(field paths "$line")" "$(field bytes "$line")" "$best" "$(field read_ms "$line")" \
    "$(field parse_ms "$line")" "$(field maxrss_kib "$line")" "$(field policy_kib "$line")"
done
echo

if [ -x "$BUILD/quince-tenant" ]; then
  echo "== quince-tenant check-log, 1,000,000 entries (whole command: policy load, 1 MiB reads, engine) =="
  d="$WORK/l1000000"
  t0=$(date +%s.%N)
  out=$("${PIN[@]}" "$BUILD/quince-tenant" check-log --log "$d/ascii_runtime_measurements" \
        --allowlist "$d/allowlist.txt" --pcr10 "$(cat "$d/pcr10-sha256.hex")" --quiet 2>&1); rc=$?
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v rc="$rc" 'BEGIN{printf "  %.2f s wall (%.0f entries/s), exit status %d\n", b-a, 1000000/(b-a), rc}'
  [ -n "$out" ] && printf '  %s\n' "$out"
fi
echo

echo "== quince-agent on swtpm: own time per quote beyond the TPM's (target <= 0.3 ms), CPU per quote with a new TLS connection each, RssAnon with a 100,000-entry list (target <= 5 MB) =="
"$(dirname "$0")/bench_agent.sh" "$BUILD"
echo

"$(dirname "$0")/bench_store.sh" "$BUILD"
echo

echo "== one kept-alive agent connection on the verifier's side: OpenSSL heap and handshake CPU (bench_tls_conn, 2,000 connections) =="
if [ -x "$BUILD/bench/bench_tls_conn" ]; then
  "$BUILD/bench/bench_tls_conn" 2000 | sed 's/^/  /'
else
  echo "  skipped: $BUILD/bench/bench_tls_conn not built"
fi
echo

echo "== fleet: quince-verifier holding 1,000 and 10,000 simulated agents (quince-fleet), quote_interval 2 s =="
"$(dirname "$0")/bench_fleet.sh" "$BUILD"
exit 0
