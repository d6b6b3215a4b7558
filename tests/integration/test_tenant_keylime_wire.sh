#!/usr/bin/env bash
# quince-tenant against servers shaped like Keylime's (tests/integration/fake_keylime.py, plain
# HTTP with --insecure): no Content-Type on bodiless requests (Keylime answers those with 400),
# the API version from GET /version's list, a note naming the version used and why when the
# server gives no list (old server, or one that rejects the request), an error for a server with
# no common version, and --supported-version checked.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 0; }
W=$QUINCE_TMP/work
mkdir -p "$W"
: >"$W/empty.conf"
export QUINCE_CONFIG=$W/empty.conf
FAKE=$QUINCE_ROOT/tests/integration/fake_keylime.py

# start_fake MODE: a fake registrar on FAKE_PORT logging to $W/MODE.log.
start_fake() {
  FAKE_PORT=$(free_port)
  : >"$W/$1.log"
  python3 "$FAKE" --port "$FAKE_PORT" --log "$W/$1.log" --version-mode "$1" >"$W/$1.out" 2>&1 &
  RIG_PIDS+=("$!")
  for _ in $(seq 100); do grep -q ready "$W/$1.out" 2>/dev/null && break; sleep 0.05; done
  grep -q ready "$W/$1.out"
}
T() { "$TENANT" --insecure -r 127.0.0.1 -rp "$FAKE_PORT" "$@"; }

# ---- a server with a version list: bodiless GET and DELETE carry no Content-Type ----------------
start_fake list || { fail "fake server starts" "$(cat "$W/list.out")"; exit 0; }
out=$(T -c reglist 2>"$W/err"); rc=$?
if [ $rc = 0 ]; then pass "reglist against a Keylime-shaped registrar"; else fail "reglist against a Keylime-shaped registrar" "exit $rc: $(cat "$W/err")"; fi
expect_grep "reglist prints the ids as registered" "B2" "$out"
if grep -q "^GET /v2.3/agents/ content-type=-$" "$W/list.log"; then pass "newest common version (2.3), no Content-Type on GET"
else fail "newest common version (2.3), no Content-Type on GET" "$(cat "$W/list.log")"; fi
if grep -q "content-type=application/json" "$W/list.log"; then fail "no Content-Type on bodiless requests" "$(cat "$W/list.log")"
else pass "no Content-Type on bodiless requests"; fi
if grep -q "note:" "$W/err"; then fail "no note when the server lists its versions" "$(cat "$W/err")"
else pass "no note when the server lists its versions"; fi
T -c regdelete -u a1 >/dev/null 2>"$W/err"; rc=$?
if [ $rc = 1 ] && grep -q "^DELETE /v2.3/agents/a1 content-type=-$" "$W/list.log"; then pass "DELETE without Content-Type"
else fail "DELETE without Content-Type" "exit $rc: $(cat "$W/list.log")"; fi
expect_grep "the server's own answer is reported" "agent id not found" "$(cat "$W/err")"

# ---- an old server naming only its current version ------------------------------------------------
start_fake current || { fail "fake server (current) starts"; exit 0; }
T -c reglist >/dev/null 2>"$W/err"; rc=$?
if [ $rc = 0 ] && grep -q "^GET /v2.2/agents/" "$W/current.log"; then pass "current_version used when there is no list"
else fail "current_version used when there is no list" "exit $rc: $(cat "$W/current.log" "$W/err")"; fi
expect_grep "a note says which version and why" "lists no supported_versions; using API 2.2" "$(cat "$W/err")"

# ---- a server that rejects GET /version: never a silent fallback ---------------------------------
start_fake broken || { fail "fake server (broken) starts"; exit 0; }
T -c reglist >/dev/null 2>"$W/err"
if grep -q "^GET /v2.1/agents/" "$W/broken.log"; then pass "fallback to 2.1 after a rejected GET /version"
else fail "fallback to 2.1 after a rejected GET /version" "$(cat "$W/broken.log")"; fi
expect_grep "the fallback is announced with the reason" "answered GET /version with 400 error; using API 2.1" "$(cat "$W/err")"

# ---- no common version: an error, nothing else sent ----------------------------------------------
start_fake future || { fail "fake server (future) starts"; exit 0; }
T -c reglist >/dev/null 2>"$W/err"; rc=$?
if [ $rc = 1 ] && grep -q "speaks no API version this tenant speaks" "$W/err" && [ "$(wc -l <"$W/future.log")" = 1 ]; then
  pass "no common version is an error"
else fail "no common version is an error" "exit $rc: $(cat "$W/err" "$W/future.log")"; fi

# ---- --supported-version is checked before anything is sent --------------------------------------
"$TENANT" --insecure -c add -u a1 --supported-version 9.9 >/dev/null 2>"$W/err"; rc=$?
if [ $rc = 2 ] && grep -q "invalid --supported-version '9.9'" "$W/err"; then pass "--supported-version checked"
else fail "--supported-version checked" "exit $rc: $(cat "$W/err")"; fi
"$TENANT" --help 2>&1 | grep -q -- "--supported-version" && pass "--help names --supported-version" || fail "--help names --supported-version"
