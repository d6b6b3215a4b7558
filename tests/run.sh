#!/usr/bin/env bash
# Runs every test and ends with "N passed, N failed".
#   tests/run.sh BUILD_DIR [unit|integration]
# Unit tests: every build/.../tests/unit/test_* binary (cmocka); each test case counts.
# Integration tests: every tests/integration/test_*.sh; each prints "PASS: <name>" or
# "FAIL: <name>: <reason>" lines, one per case; a script that exits non-zero without a FAIL
# line counts as one failure. Each script gets QUINCE_BUILD (absolute) and its own temp dir.
set -u
BUILD=$(cd "${1:?build dir}" && pwd)
WHAT=${2:-all}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
passed=0; failed=0; skipped=0; failures=()
LOGDIR=$(mktemp -d /tmp/quince-test-logs.XXXXXX)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}

if [ "$WHAT" = all ] || [ "$WHAT" = unit ]; then
  for t in "$BUILD"/tests/unit/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    out="$LOGDIR/$name.log"
    CMOCKA_MESSAGE_OUTPUT=STDOUT "$t" >"$out" 2>&1; rc=$?
    p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$out" | grep -oE '[0-9]+' | head -1)
    f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$out" | grep -oE '[0-9]+' | head -1)
    k=$(grep -E '^\[  SKIPPED \] [0-9]+ test' "$out" | grep -oE '[0-9]+' | head -1)
    p=${p:-0}; f=${f:-0}; k=${k:-0}
    skipped=$((skipped + k))
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" != 0 ]; then
      failures+=("$name"); echo "unit $name: $p passed, $f failed (log: $out)"
      grep -E '^\[  (FAILED|ERROR) \]|ERROR|error:|Sanitizer' "$out" | head -20 | sed 's/^/    /'
    else
      echo "unit $name: $p passed"
    fi
  done
fi

if [ "$WHAT" = all ] || [ "$WHAT" = integration ]; then
  for s in "$ROOT"/tests/integration/test_*.sh; do
    [ -f "$s" ] || continue
    name=$(basename "$s" .sh)
    out="$LOGDIR/$name.log"
    tmp=$(mktemp -d /tmp/quince-it-$name.XXXXXX)
    start=$(date +%s)
    QUINCE_BUILD="$BUILD" QUINCE_ROOT="$ROOT" QUINCE_TMP="$tmp" timeout -k 10 600 bash "$s" >"$out" 2>&1; rc=$?
    p=$(grep -c '^PASS: ' "$out"); f=$(grep -c '^FAIL: ' "$out"); k=$(grep -c '^SKIP: ' "$out")
    skipped=$((skipped + k))
    [ "$k" != 0 ] && grep '^SKIP: ' "$out" | sed "s/^/integration $name: /"
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; echo "FAIL: $name exited with status $rc" >>"$out"; fi
    passed=$((passed + p)); failed=$((failed + f))
    secs=$(( $(date +%s) - start ))
    if [ "$f" != 0 ]; then
      failures+=("$name"); echo "integration $name: $p passed, $f failed in ${secs}s (log: $out)"
      grep '^FAIL: ' "$out" | head -20 | sed 's/^/    /'
      tail -15 "$out" | sed 's/^/    | /'
    else
      echo "integration $name: $p passed in ${secs}s"
      rm -rf "$tmp"
    fi
  done
fi

[ ${#failures[@]} -gt 0 ] && echo "failing: ${failures[*]}"
# Skipped checks are never counted as passes; they are shown so a missing tool is visible.
if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
