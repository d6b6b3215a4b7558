#!/usr/bin/env bash
# ThreadSanitizer run (make tsan): the unit tests and the integration tests that exercise the
# verifier's threads (event loop, workers, writer, API), every binary built with -fsanitize=thread.
# Any "WARNING: ThreadSanitizer" in a test's output or in a log of a process it started is a
# failure. Ends with "N passed, N failed".
#   tests/tsan.sh BUILD_DIR [integration test names...]   (default: verifier poller fake_agent mtls)
set -u
BUILD=$(cd "${1:?build dir}" && pwd); shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TESTS=("$@")
[ ${#TESTS[@]} -gt 0 ] || TESTS=(verifier poller fake_agent mtls)
# halt_on_error=0: every report of a run is printed; exitcode 66 makes a reporting process fail.
# Address-space randomisation is turned off for the run (setarch -R) where the kernel randomises
# more than this TSan runtime can map around.
export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$ROOT/tests/tsan.supp:halt_on_error=0:exitcode=66:second_deadlock_stack=1:report_signal_unsafe=0}
NOASLR=()
if setarch "$(uname -m)" -R true 2>/dev/null; then NOASLR=(setarch "$(uname -m)" -R); fi
passed=0; failed=0
LOGDIR=$(mktemp -d /tmp/quince-tsan-logs.XXXXXX)

"${NOASLR[@]}" "$ROOT/tests/run.sh" "$BUILD" unit >"$LOGDIR/unit.log" 2>&1
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGDIR/unit.log" | tail -1)
p=$(awk '{print $1}' <<<"$line"); f=$(awk '{print $3}' <<<"$line")
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
echo "unit: ${p:-0} passed, ${f:-1} failed (log: $LOGDIR/unit.log)"

for t in "${TESTS[@]}"; do
  s="$ROOT/tests/integration/test_$t.sh"
  tmp=$(mktemp -d /tmp/quince-tsan-$t.XXXXXX)
  out="$LOGDIR/$t.log"
  start=$(date +%s)
  QUINCE_BUILD="$BUILD" QUINCE_ROOT="$ROOT" QUINCE_TMP="$tmp" timeout -k 10 900 "${NOASLR[@]}" bash "$s" >"$out" 2>&1; rc=$?
  p=$(grep -c '^PASS: ' "$out"); f=$(grep -c '^FAIL: ' "$out")
  [ $rc -ne 0 ] && [ "$f" = 0 ] && { f=1; echo "FAIL: $t exited with status $rc" >>"$out"; }
  reports=$(grep -rl 'WARNING: ThreadSanitizer' "$out" "$tmp" 2>/dev/null)
  if [ -n "$reports" ]; then
    f=$((f + 1))
    echo "FAIL: $t: ThreadSanitizer reports in: $(tr '\n' ' ' <<<"$reports")" >>"$out"
  fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" != 0 ]; then
    echo "integration $t: $p passed, $f failed in $(( $(date +%s) - start ))s (log: $out, files: $tmp)"
    grep '^FAIL: ' "$out" | head -10 | sed 's/^/    /'
    for r in $reports; do grep -m1 -A12 'WARNING: ThreadSanitizer' "$r" | sed 's/^/    | /'; done
  else
    echo "integration $t: $p passed in $(( $(date +%s) - start ))s"
    rm -rf "$tmp"
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
