# Shared helpers for integration tests (sourced). Provides pass/fail/check helpers.
# Environment from tests/run.sh: QUINCE_BUILD (binaries), QUINCE_ROOT (source), QUINCE_TMP (temp dir).
: "${QUINCE_BUILD:?}" "${QUINCE_ROOT:?}" "${QUINCE_TMP:?}"
TENANT="$QUINCE_BUILD/quince-tenant"
AGENT="$QUINCE_BUILD/quince-agent"
VERIFIER="$QUINCE_BUILD/quince-verifier"
TOOLS="$QUINCE_BUILD/tests/tools"
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+: $2}"; }
# expect_rc NAME WANT CMD... : runs CMD, passes if its exit status is WANT.
expect_rc() {
  local name=$1 want=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = "$want" ]; then pass "$name"; else fail "$name" "exit $rc, wanted $want: $(echo "$out" | tail -3 | tr '\n' ' ')"; fi
  LAST_OUT=$out
}
# expect_grep NAME PATTERN TEXT : passes if TEXT contains the fixed string PATTERN.
expect_grep() {
  if printf '%s' "$3" | grep -qF -- "$2"; then pass "$1"; else fail "$1" "missing '$2'"; fi
}
# wait_line SECONDS FILE PATTERN : waits (polling every 0.1 s) until FILE holds the fixed string
# PATTERN; returns 1 when SECONDS pass first. The bound only stops a test that would hang.
wait_line() {
  local end=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
  until grep -qF -- "$3" "$2" 2>/dev/null; do
    [ $(( $(date +%s%N) / 1000000 )) -ge "$end" ] && return 1
    sleep 0.1
  done
}
