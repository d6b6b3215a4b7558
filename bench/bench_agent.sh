#!/usr/bin/env bash
# quince-agent figures (printed, never pass/fail); called by bench/run.sh.
#   bench/bench_agent.sh BUILD_DIR
# Needs BUILD_DIR/{quince-agent,quince-verifier,bench/bench_agent,tests/tools/ima_gen} (a release
# build: `make bench`) and swtpm; skipped with a note otherwise. Uses the integration-test rig
# (tests/integration/lib_rig.sh): a private swtpm on a unix socket, quince-verifier for its
# registrar, and the agent on loopback with a 100,000-entry ima-ng list from ima_gen (PCR 10 is
# not extended for it: the quotes do not need to match the list to be timed). The agent serves
# mTLS, as in production: bench_agent presents the tenant's certificate of the verifier's CA and
# trusts the agent's own certificate (BENCH_TLS_*), so the figures include TLS.
#
# (a) The agent's own time per quote beyond the TPM's (target <= 0.3 ms), with an ECC P-256 and
#     an RSA-2048 AK. The agent runs with log_level = debug (QUINCE_AGENT_LOG_LEVEL), where it
#     logs per request "timing <kind> nonce=<n> tpm_us=<t> handler_us=<h>": t is the wall time in
#     its TPM calls (PCR 16 reset + extend, PCR_Read, AK load, Quote, flushes, ESAPI and TCTI
#     included). bench_agent times N quotes end to end over one keep-alive connection and
#     matches them by nonce: overhead = end-to-end - t (HTTP both ways, parsing, quote encoding,
#     JSON, loopback and the client are all counted as the agent's). Integrity quotes ask
#     partial=1&ima_ml_entry=<end of list>, as a steady attestation round does. The TPM
#     connection is kept open (tpm_release = false): no ima-emulator shares the swtpm here.
#     Also shown: the non-TPM part of the handler alone, and CPU time per quote of the agent and
#     of swtpm (/proc/PID/stat, clock-tick resolution). Then the CPU per identity quote when
#     the client opens a new connection (full TLS handshake) for every quote, as Python
#     Keylime's verifier does.
# (b) RssAnon of the agent (/proc/PID/status; target <= 5 MB) after start-up, after serving the
#     whole 100,000-entry list from entry 0 three times, and after incremental rounds (a few
#     entries appended, then fetched from the last entry).
set -u
BUILD=$(cd "${1:?usage: bench/bench_agent.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${BENCH_AGENT_QUOTES:-300}
ENTRIES=${BENCH_AGENT_ENTRIES:-100000}

for t in swtpm swtpm_setup python3 curl; do
  command -v "$t" >/dev/null 2>&1 || { echo "  skipped: $t not installed"; exit 0; }
done
for b in quince-agent quince-verifier bench/bench_agent tests/tools/ima_gen; do
  [ -x "$BUILD/$b" ] || { echo "  skipped: $BUILD/$b not built (run 'make bench')"; exit 0; }
done

WORK=$(mktemp -d /tmp/quince-bench-agent.XXXXXX)
export QUINCE_BUILD=$BUILD QUINCE_ROOT=$ROOT QUINCE_TMP=$WORK
# shellcheck source=../tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh" >/dev/null
# shellcheck source=../tests/integration/lib_rig.sh
source "$ROOT/tests/integration/lib_rig.sh"
trap 'rig_cleanup; rm -rf "$WORK"' EXIT
BA="$BUILD/bench/bench_agent"

field() { # field NAME LINE -> value of NAME=... in LINE
  printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}
ms() { # microseconds -> milliseconds with 3 decimals
  awk -v u="${1:-}" 'BEGIN{ if (u == "") print "?"; else printf "%.3f", u / 1000 }'
}
status_kib() { # PID FIELD -> value in kB from /proc/PID/status
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

LIST=$WORK/ima/ascii_runtime_measurements
mkdir -p "$WORK/ima"
"$TOOLS/ima_gen" --out-dir "$WORK/ima" --entries "$ENTRIES" --seed 42 >/dev/null 2>&1 \
  || { echo "  skipped: ima_gen failed"; exit 0; }
start_swtpm tpm ekcert
# shellcheck disable=SC2154  # set by start_swtpm
TPM_PID=$SWTPM_PID_tpm
export VERIFIER_LOG_LEVEL=warning
start_verifier || { echo "  skipped: quince-verifier did not start: $(tail -3 "$WORK/verifier.log")"; exit 0; }
echo "  list: $ENTRIES ima-ng entries, $(stat -c %s "$LIST") bytes; swtpm on a unix socket; $N quotes per figure"

# The agent's settings for the bench (environment overrides of its config file).
export QUINCE_AGENT_LOG_LEVEL=debug QUINCE_AGENT_TPM_RELEASE=false

run_agent() { # NAME UUID ALG: start, time quotes, then memory
  local name=$1 uuid=$2 alg=$3 extra=()
  [ "$alg" = ecc ] && extra=("tpm_encryption_alg = ecc" "tpm_signing_alg = ecdsa")
  start_agent "$name" "$uuid" "$TCTI_tpm" "$LIST" "${extra[@]}"
  local pid port
  pid=$(eval echo "\$AGENT_PID_$name"); port=$(eval echo "\$AGENT_PORT_$name")
  local ag=https://127.0.0.1:$port log=$WORK/$name/agent.log
  if ! wait_http "$ag/version" 60; then
    echo "  $alg AK: the agent did not come up: $(tail -2 "$log" | tr '\n' ' ')"
    return
  fi
  export BENCH_TLS_CA=$WORK/$name/state/mtls-cert.pem BENCH_TLS_CERT=$TLS_DIR/tenant-cert.pem \
    BENCH_TLS_KEY=$TLS_DIR/tenant-key.pem
  local end rss_start
  end=$(wc -l <"$LIST")
  rss_start=$(status_kib "$pid" RssAnon)
  local kind out
  for kind in identity integrity; do
    out=$("$BA" quotes "$kind" "$ag" "$N" "$log" "$end" "$pid" "$TPM_PID" 2>&1) \
      || { echo "  $alg AK, $kind: failed: $(printf '%s' "$out" | tail -2 | tr '\n' ' ')"; continue; }
    printf '  %-3s AK, %-9s quote: agent overhead median %s ms (p90 %s, min %s) | end to end %s ms, TPM %s ms | in-handler non-TPM %s ms | CPU/quote agent %s ms, swtpm %s ms   [target <= 0.3 ms]\n' \
      "$alg" "$kind" "$(ms "$(field overhead_med_us "$out")")" "$(ms "$(field overhead_p90_us "$out")")" \
      "$(ms "$(field overhead_min_us "$out")")" "$(ms "$(field wall_med_us "$out")")" \
      "$(ms "$(field tpm_med_us "$out")")" "$(ms "$(field handler_non_tpm_med_us "$out")")" \
      "$(ms "$(field agent_cpu_us_per_quote "$out")")" "$(ms "$(field tpm_cpu_us_per_quote "$out")")"
  done
  # The same with a new connection and TLS handshake per quote (Python Keylime's verifier does that).
  out=$(BENCH_FRESH=1 "$BA" quotes identity "$ag" "$N" "$log" "$end" "$pid" "$TPM_PID" 2>&1) \
    || echo "  $alg AK, fresh connections: failed: $(printf '%s' "$out" | tail -2 | tr '\n' ' ')"
  [ -n "$(field agent_cpu_us_per_quote "$out")" ] && \
    printf '  %-3s AK, identity quote, new TLS connection per quote: CPU/quote agent %s ms, swtpm %s ms | end to end %s ms, TPM %s ms\n' \
      "$alg" "$(ms "$(field agent_cpu_us_per_quote "$out")")" "$(ms "$(field tpm_cpu_us_per_quote "$out")")" \
      "$(ms "$(field wall_med_us "$out")")" "$(ms "$(field tpm_med_us "$out")")"

  # Memory: whole list from entry 0, three times; then incremental rounds.
  local i f next full_ms="" bytes=""
  for i in 1 2 3; do
    f=$("$BA" fetch "$ag" 0 2>&1) || { echo "  $alg AK: full-list fetch failed: $f"; return; }
    full_ms="$full_ms$(field ms "$f") "; bytes=$(field bytes "$f")
    [ "$(field entries "$f")" = "$end" ] || echo "  note: the full list came back with $(field entries "$f") entries, not $end"
  done
  local rss_full hwm_full
  rss_full=$(status_kib "$pid" RssAnon); hwm_full=$(status_kib "$pid" VmHWM)
  next=$end
  local rounds=20 per=5 bad=0 r
  for r in $(seq $rounds); do
    sed -n "$(( (r - 1) * per + 1 )),$(( r * per ))p" "$EXTRA" >>"$LIST"
    f=$("$BA" fetch "$ag" "$next" 2>&1) || { bad=$((bad + 1)); continue; }
    [ "$(field entries "$f")" = "$per" ] || bad=$((bad + 1))
    next=$(field next "$f")
  done
  local rss_inc hwm_inc
  rss_inc=$(status_kib "$pid" RssAnon); hwm_inc=$(status_kib "$pid" VmHWM)
  printf '  %-3s AK, memory: RssAnon %s KiB after start-up, %s KiB after 3 full lists (%s bytes each; %sms), %s KiB after %d incremental rounds%s   [target <= 5120 KiB]\n' \
    "$alg" "$rss_start" "$rss_full" "$bytes" "$full_ms" "$rss_inc" "$rounds" \
    "$([ $bad = 0 ] || echo " ($bad rounds did not return $per entries)")"
  printf '             (VmRSS %s KiB, VmHWM %s KiB after the full lists, %s KiB at the end)\n' \
    "$(status_kib "$pid" VmRSS)" "$hwm_full" "$hwm_inc"
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# (c) With BENCH_AGENT_BIG=1: a list of about 100 MB served in pieces of max_ima_bytes = 4 MiB,
#     fetched piece by piece from entry 0; the agent's RssAnon before and after.
big_list() {
  local n=${BENCH_AGENT_BIG_ENTRIES:-700000} d=$WORK/big
  mkdir -p "$d"
  "$TOOLS/ima_gen" --out-dir "$d" --entries "$n" --seed 9 >/dev/null 2>&1 || { echo "  big list: ima_gen failed"; return; }
  start_agent abig d432fbb3-d2f1-4a97-9ef7-75bd81c0b003 "$TCTI_tpm" "$d/ascii_runtime_measurements" \
    "tpm_encryption_alg = ecc" "tpm_signing_alg = ecdsa" "max_ima_bytes = 4194304"
  local pid port; pid=$AGENT_PID_abig; port=$AGENT_PORT_abig
  wait_http "https://127.0.0.1:$port/version" 60 || { echo "  big list: the agent did not come up"; return; }
  export BENCH_TLS_CA=$WORK/abig/state/mtls-cert.pem BENCH_TLS_CERT=$TLS_DIR/tenant-cert.pem \
    BENCH_TLS_KEY=$TLS_DIR/tenant-key.pem
  local rss0 out; rss0=$(status_kib "$pid" RssAnon)
  out=$("$BA" fetch-all "https://127.0.0.1:$port" 2>&1) || { echo "  big list: failed: $out"; return; }
  printf '  %s-byte list (%s entries) in pieces of 4 MiB: %s pieces, largest answer %s bytes, %s ms | agent RssAnon %s KiB before, %s KiB after (VmHWM %s KiB)\n' \
    "$(stat -c %s "$d/ascii_runtime_measurements")" "$(field entries "$out")" "$(field pieces "$out")" \
    "$(field max_body "$out")" "$(field ms "$out")" "$rss0" "$(status_kib "$pid" RssAnon)" "$(status_kib "$pid" VmHWM)"
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# Entries appended in the incremental rounds (other lines of the same kind).
EXTRA=$WORK/extra/ascii_runtime_measurements
mkdir -p "$WORK/extra"
"$TOOLS/ima_gen" --out-dir "$WORK/extra" --entries 100 --seed 7 >/dev/null 2>&1 || { echo "  skipped: ima_gen failed"; exit 0; }
cp "$LIST" "$WORK/list.orig"
run_agent aecc d432fbb3-d2f1-4a97-9ef7-75bd81c0b001 ecc
cp "$WORK/list.orig" "$LIST"
run_agent arsa d432fbb3-d2f1-4a97-9ef7-75bd81c0b002 rsa
[ "${BENCH_AGENT_BIG:-0}" = 1 ] && big_list
exit 0
