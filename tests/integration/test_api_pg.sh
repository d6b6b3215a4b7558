#!/usr/bin/env bash
# The API test suite once more, with the verifier's store on PostgreSQL, so both back-ends show
# the same behaviour: one throw-away server (lib_pg.sh) for the whole run, a fresh database per
# script, each script run unchanged with DATABASE set (lib_rig.sh and fake_rig.sh use it). Every
# PASS/FAIL line of a script is repeated here with "pg.<script>: " in front; a script that exits
# non-zero without a FAIL line, or whose verifier did not run on PostgreSQL, is a failure.
# PG_API_TESTS picks the scripts (default: the verifier, tenant, poller and agent-id suites).
# First the store's own engine-neutral unit test (tests/unit/test_store_engines.c) on a database
# of its own: its PostgreSQL group's cases become "pg.store: <case>" lines.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pg.sh"

pg_start || exit 0
export PGPASSFILE=$PG_PASSFILE

UNIT=$QUINCE_BUILD/tests/unit/test_store_engines
if [ -x "$UNIT" ] && url=$(pg_newdb store_unit); then
  QUINCE_TEST_DATABASE=$url CMOCKA_MESSAGE_OUTPUT=STDOUT "$UNIT" >"$QUINCE_TMP/unit.out" 2>&1
  rc=$?
  # the second group is the PostgreSQL one
  awk '/^\[==========\] Running/ {g++} g == 2' "$QUINCE_TMP/unit.out" >"$QUINCE_TMP/unit.pg"
  sed -n -e 's/^\[       OK \] \(.*\)/PASS: pg.store: \1/p' -e 's/^\[  FAILED  \] \([a-z_]*\)$/FAIL: pg.store: \1/p' \
    -e 's/^\[  ERROR   \] \(.*\)/FAIL: pg.store: \1/p' "$QUINCE_TMP/unit.pg"
  grep -q '^\[  PASSED  \] 7 test' "$QUINCE_TMP/unit.pg" && [ "$rc" = 0 ] && pass "pg.store: all cases ran and passed" \
    || fail "pg.store: all cases ran and passed" "exit $rc: $(grep -E 'FAILED|ERROR|error' "$QUINCE_TMP/unit.out" | head -3 | tr '\n' ' ')"
else
  fail "pg.store" "no $UNIT (make unit-bins) or no database"
fi
for t in ${PG_API_TESTS:-test_tenant test_poller test_verifier test_agent_id_case}; do
  db=$(echo "$t" | tr -c 'a-z0-9_\n' '_')
  url=$(pg_newdb "$db") || { fail "pg.$t" "cannot create database $db"; continue; }
  tmp=$(mktemp -d "$QUINCE_TMP/$t.XXXXXX")
  DATABASE=$url QUINCE_TMP=$tmp timeout -k 10 600 bash "$QUINCE_ROOT/tests/integration/$t.sh" >"$tmp/out" 2>&1
  rc=$?
  sed -n -e "s/^PASS: /PASS: pg.$t: /p" -e "s/^FAIL: /FAIL: pg.$t: /p" -e "s/^SKIP: /SKIP: pg.$t: /p" "$tmp/out"
  if [ "$rc" != 0 ] && ! grep -q '^FAIL: ' "$tmp/out"; then
    fail "pg.$t" "exited with status $rc: $(tail -3 "$tmp/out" | tr '\n' ' ')"
  fi
  if grep -qs "database postgresql://.* on PostgreSQL" "$tmp/verifier.log"; then
    pass "pg.$t: its verifier ran on PostgreSQL"
  else
    fail "pg.$t: its verifier ran on PostgreSQL" "no start line naming PostgreSQL in $tmp/verifier.log"
  fi
done
