#!/usr/bin/env bash
# quince-tenant -c add / -c delete --uuid-file: a few simulated agents (quince-fleet, registered
# but not added) are added with one shared stored policy, a bounded number at a time; every one
# ends up attesting. An id the registrar does not know fails on its own line, the others still go
# in, the summary counts it and the exit status is 1. Options that make no sense for many agents
# are refused (exit 2) and a missing stored policy stops the run before any agent is touched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_rig.sh"

FLEET="$TOOLS/quince-fleet"
OUT="$QUINCE_TMP/fleet"
N=6
export QUOTE_INTERVAL=1 VERIFIER_LOG_LEVEL=warning
[ -x "$FLEET" ] || { fail setup "quince-fleet not built"; exit 0; }
sql() { sqlite3 -cmd ".timeout 5000" "$QUINCE_TMP/verifier/db.sqlite" "$@"; }

start_verifier || { fail start_verifier "$(tail -3 "$QUINCE_TMP/verifier.log")"; exit 0; }
# The fleet's AKs are ECC (ecdsa), which Keylime's default accept_tpm_signing_algs leaves out.
printf '[tenant]\ntls_dir = %s\naccept_tpm_signing_algs = ecdsa, rsassa\n' "$TLS_DIR" >"$QUINCE_TMP/tenant.conf"
T=("$TENANT" --config "$QUINCE_TMP/tenant.conf" -v 127.0.0.1 -vp "$CV_PORT" -r 127.0.0.1 -rp "$REG_TLS_PORT")

BASE="127.$((RANDOM % 100 + 100)).$((RANDOM % 250)).1"
"$FLEET" --agents $N --evil 0 --registrar "$REG_PLAIN_URL" --tls-dir "$TLS_DIR" --out "$OUT" \
  --base-ip "$BASE" --port "$(free_port)" >"$QUINCE_TMP/fleet.out" 2>"$QUINCE_TMP/fleet.err" &
FLEET_PID=$!
RIG_PIDS+=("$FLEET_PID")
fleet_wait_ready 120 && pass fleet_registered || { fail fleet_registered "$(tail -2 "$QUINCE_TMP/fleet.err")"; exit 0; }

# Refused before anything is sent.
out=$("${T[@]}" -c add --uuid-file "$OUT/agents.txt" --runtime-policy "$OUT/policy.json" 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q 'store the policy once' && pass bulk_refuses_policy_file \
  || fail bulk_refuses_policy_file "rc=$rc: $out"
out=$("${T[@]}" -c add --uuid-file "$OUT/agents.txt" -u someone --runtime-policy-name fleet 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q -- '-u/--uuid cannot be used with --uuid-file' && pass bulk_refuses_uuid \
  || fail bulk_refuses_uuid "rc=$rc: $out"
out=$("${T[@]}" -c add --uuid-file "$OUT/agents.txt" --runtime-policy-name fleet --jobs 0 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q -- '--jobs' && pass bulk_bad_jobs || fail bulk_bad_jobs "rc=$rc: $out"
out=$("${T[@]}" -c add --uuid-file "$OUT/agents.txt" --runtime-policy-name fleet 2>&1); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q 'has no runtime policy named fleet' && [ "$(sql 'SELECT count(*) FROM agents;')" = 0 ] \
  && pass bulk_missing_policy || fail bulk_missing_policy "rc=$rc: $out"

"${T[@]}" -c addruntimepolicy --runtime-policy "$OUT/policy.json" --runtime-policy-name fleet >/dev/null 2>&1 \
  && pass policy_stored || fail policy_stored "addruntimepolicy failed"

# All of them plus one unknown id, three at a time.
{ echo "# the fleet's agents and one the registrar never saw"; cat "$OUT/agents.txt"; echo; echo "no-such-agent-0001"; } \
  >"$QUINCE_TMP/ids"
out=$("${T[@]}" -c add --uuid-file "$QUINCE_TMP/ids" --runtime-policy-name fleet --jobs 3 2>"$QUINCE_TMP/bulk.err"); rc=$?
err=$(cat "$QUINCE_TMP/bulk.err")
[ $rc = 1 ] && pass bulk_exit_status_on_failure || fail bulk_exit_status_on_failure "rc=$rc"
echo "$out" | grep -q "^bulk add: $N of $((N + 1)) agents added to the verifier at 127.0.0.1:$CV_PORT .* 3 at a time); 1 failed$" \
  && pass bulk_summary || fail bulk_summary "$(echo "$out" | tail -1)"
[ "$(echo "$err" | grep -c '^quince-tenant: .*no-such-agent-0001.* not registered')" = 1 ] && \
  [ "$(echo "$err" | wc -l)" = 2 ] && \
  echo "$err" | tail -1 | grep -q '^quince-tenant: 1 of 7 agents failed' && pass bulk_error_names_agent \
  || fail bulk_error_names_agent "$err"
[ "$(sql "SELECT count(*) FROM agents;")" = $N ] && pass bulk_all_added || fail bulk_all_added "$(sql 'SELECT count(*) FROM agents;')"

# Every added agent attests with the shared policy.
good=0
for _ in $(seq 600); do
  good=$(sql "SELECT count(*) FROM agents WHERE operational_state IN (3, 4) AND attestation_count >= 2;")
  [ "$good" = $N ] && break
  [ "$(sql "SELECT count(*) FROM agents WHERE operational_state IN (7, 9, 10);")" = 0 ] || break
  sleep 0.1
done
[ "$good" = $N ] && pass bulk_agents_attest || fail bulk_agents_attest "$good of $N attesting"

# Bulk delete of the same file: the unknown one fails again, the rest go.
out=$("${T[@]}" -c delete --uuid-file "$QUINCE_TMP/ids" 2>"$QUINCE_TMP/del.err"); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "^bulk delete: $N of $((N + 1)) agents deleted from" && \
  [ "$(sql "SELECT count(*) FROM agents;")" = 0 ] && pass bulk_delete || fail bulk_delete "rc=$rc: $(tail -2 "$QUINCE_TMP/del.err") $out"
exit 0
