#!/usr/bin/env bash
# The attestation loop end to end: the real quince-verifier polling a fake agent (software-signed
# quotes over an IMA list file written by ima_gen): first quote, incremental rounds as the list
# grows, an unknown file failing the agent with Keylime's log lines and failure records,
# reactivation, stop, resume after a verifier restart, deletion, and a clean shutdown.
# "Nothing happens" checks wait for rounds of a second, healthy agent (the witness) in the
# verifier's debug log, never for time; the script's own sleeps are counted and must stay under a
# quarter of its run time.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fake_rig.sh"
T0=${EPOCHREALTIME/./}
SLEPT_US=0
sleep() { local t=${EPOCHREALTIME/./}; command sleep "$@"; SLEPT_US=$((SLEPT_US + ${EPOCHREALTIME/./} - t)); }

UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00001
IMA="$QUINCE_TMP/ima"
LIST="$QUINCE_TMP/list.txt"

"$TOOLS/ima_gen" --out-dir "$IMA" --entries 30 --seed 11 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }
"$TOOLS/ima_gen" --out-dir "$QUINCE_TMP/other" --entries 3 --seed 99 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }
head -20 "$IMA/ascii_runtime_measurements" >"$LIST"

RIG_LOG_LEVEL=debug rig_config
if ! rig_start_verifier; then fail start_verifier "no API port"; exit 0; fi
pass start_verifier
rig_fake_added "$UUID" "$LIST" "$IMA/runtime_policy.json" || exit 0
# The witness: polled all along, its rounds are the clock of the "nothing happens" checks.
WUUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0000a
cp "$LIST" "$QUINCE_TMP/witness.txt"
if ! rig_fake witness good --ima-log "$QUINCE_TMP/witness.txt"; then fail start_witness "no port"; exit 0; fi
rig_register "$WUUID" "$QUINCE_TMP/witness.ak" "$FAKE_PORT"
st=$(rig_add "$WUUID" "$IMA/runtime_policy.json")
[ "$st" = 200 ] && pass add_witness || fail add_witness "HTTP $st: $(cat "$QUINCE_TMP/add.out")"
# quiet UUID WHAT : PASS/FAIL WHAT when the agent gets no request and completes no round while the
# witness completes 3.
quiet() {
  local n1 n2 r1 r2
  n1=$(rig_requests agent); r1=$(rig_rounds "$1")
  if ! rig_wait_rounds 20 "$WUUID" 3; then fail "$2" "the witness completed no 3 rounds"; return; fi
  n2=$(rig_requests agent); r2=$(rig_rounds "$1")
  if [ "$n1" = "$n2" ] && [ "$r1" = "$r2" ]; then pass "$2"; else fail "$2" "requests $n1 -> $n2, rounds $r1 -> $r2"; fi
}

# First quote (partial=0, entry 0), then periodic rounds.
if rig_wait 10 "agent_id = '$UUID' AND operational_state = 3 AND attestation_count >= 3 AND next_ima_ml_entry = 20"; then
  pass first_quote_and_rounds
else
  fail first_quote_and_rounds "state $(rig_state "$UUID") count $(rig_field "$UUID" attestation_count) next $(rig_field "$UUID" next_ima_ml_entry)"
fi
first=$(rig_request_line agent 1)
expect_grep first_request_partial0 "partial 0 entry 0" "$first"
expect_grep first_request_mask "mask 0x400" "$first"
later=$(rig_request_line agent 3)
expect_grep later_request_incremental "partial 1 entry 20" "$later"
nonces=$(grep -o 'nonce [A-Za-z0-9]*' "$QUINCE_TMP/agent.log" | sort | uniq -d | wc -l)
if [ "$nonces" = 0 ]; then pass fresh_nonces; else fail fresh_nonces "$nonces repeated nonces"; fi
if [ "$(rig_field "$UUID" hash_alg)" = sha256 ]; then pass algorithms_saved; else fail algorithms_saved "$(rig_field "$UUID" hash_alg)"; fi

# The list grows with allowed entries: incremental replay continues.
tail -n +21 "$IMA/ascii_runtime_measurements" >>"$LIST"
if rig_wait 10 "agent_id = '$UUID' AND operational_state = 3 AND next_ima_ml_entry = 30"; then
  pass incremental_growth
else
  fail incremental_growth "state $(rig_state "$UUID") next $(rig_field "$UUID" next_ima_ml_entry)"
fi
if rig_wait_log 5 "$QUINCE_TMP/agent.log" "partial 1 entry 30"; then pass asks_next_entry; else fail asks_next_entry "no request from entry 30"; fi

# A measured file not in the policy: Invalid Quote, polling stops, records and log lines.
tail -1 "$QUINCE_TMP/other/ascii_runtime_measurements" >>"$LIST"
bad=$(tail -1 "$LIST" | awk '{print $5}')
if rig_wait 10 "agent_id = '$UUID' AND operational_state = 9"; then pass unknown_file_fails; else fail unknown_file_fails "state $(rig_state "$UUID")"; fi
if [ "$(rig_field "$UUID" last_event_id)" = "ima.validation.ima-ng.not_in_allowlist" ]; then
  pass last_event_id
else
  fail last_event_id "$(rig_field "$UUID" last_event_id)"
fi
rec=$(rig_sql "SELECT entry, path, event_id, reason FROM failures WHERE agent_id = '$UUID';")
expect_grep failure_record "30|$bad|ima.validation.ima-ng.not_in_allowlist|File not found in allowlist: $bad" "$rec"
log=$(cat "$RIG_VLOG")
# The lines name the agent; good counts the entries that passed since the replay began, not 0.
expect_grep log_fnf "quince.ima - WARNING - agent $UUID: File not found in allowlist: $bad" "$log"
grep -Eq "quince.ima - ERROR - agent $UUID: IMA ERRORS: template-hash 0 fnf 1 hash 0 good [1-9][0-9]*\$" <<<"$log" \
  && pass log_ima_errors || fail log_ima_errors "$(grep 'IMA ERRORS' <<<"$log")"
expect_grep log_stopping "agent $UUID failed, stopping polling" "$log"
quiet "$UUID" polling_stopped

# Reactivate with the list repaired: the state was reset, the whole list is replayed.
head -30 "$IMA/ascii_runtime_measurements" >"$LIST"
st=$(rig_api PUT "/v2.1/agents/$UUID/reactivate")
if [ "$st" = 200 ] && rig_wait 10 "agent_id = '$UUID' AND operational_state = 3 AND next_ima_ml_entry = 30"; then
  pass reactivate
else
  fail reactivate "HTTP $st state $(rig_state "$UUID") next $(rig_field "$UUID" next_ima_ml_entry)"
fi

# Restart the verifier: the agent resumes from its stored state (entry 30, a partial=0 quote).
before=$(rig_requests agent)
if rig_stop_verifier; then pass sigterm_exit_status; else fail sigterm_exit_status "exit $?"; fi
if [ "$(rig_state "$UUID")" = 3 ]; then pass state_kept_on_stop; else fail state_kept_on_stop "$(rig_state "$UUID")"; fi
count=$(rig_field "$UUID" attestation_count)
rig_start_verifier || fail restart_verifier "no API port"
if rig_wait 10 "agent_id = '$UUID' AND operational_state = 3 AND attestation_count > $count"; then
  pass resume_after_restart
else
  fail resume_after_restart "state $(rig_state "$UUID") count $(rig_field "$UUID" attestation_count) (was $count)"
fi
# The old verifier may have sent one more (partial 1) request between the count and SIGTERM:
# the new one's first request is the first partial=0 after the count.
resumed=$(grep 'request .* mode' "$QUINCE_TMP/agent.log" | tail -n +"$((before + 1))" | grep -m1 'partial 0')
expect_grep resume_incremental "partial 0 entry 30" "$resumed"

# Stop: Tenant Quote Failed, no more requests (once the witness's next round shows the stop was
# taken in, a request sent before it has been answered).
st=$(rig_api PUT "/v2.1/agents/$UUID/stop")
rig_wait_rounds 20 "$WUUID" 2 || fail stop "the witness completed no 2 rounds"
if [ "$st" = 200 ] && [ "$(rig_state "$UUID")" = 10 ]; then pass stop; else fail stop "HTTP $st state $(rig_state "$UUID")"; fi
quiet "$UUID" stop_no_more_requests

# Reactivate and delete while polling.
st=$(rig_api PUT "/v2.1/agents/$UUID/reactivate")
if [ "$st" = 200 ] && rig_wait 10 "agent_id = '$UUID' AND operational_state = 3"; then
  pass reactivate_after_stop
else
  fail reactivate_after_stop "HTTP $st state $(rig_state "$UUID")"
fi
st=$(rig_api DELETE "/v2.1/agents/$UUID")      # answers once no request of the agent is in flight
if { [ "$st" = 200 ] || [ "$st" = 202 ]; } && [ "$(rig_sql "SELECT count(*) FROM agents WHERE agent_id = '$UUID';")" = 0 ]; then
  pass delete
else
  fail delete "HTTP $st, rows $(rig_sql "SELECT count(*) FROM agents WHERE agent_id = '$UUID';")"
fi
quiet "$UUID" delete_no_more_requests

# Stop right after add: the tenant's state must win over the first round's.
UUID2=d432fbb3-d2f1-4a97-9ef7-75bd81c00002
rig_register "$UUID2" "$QUINCE_TMP/agent.ak" "$FAKE_PORT"
st=$(rig_add "$UUID2" "$IMA/runtime_policy.json")
st2=$(rig_api PUT "/v2.1/agents/$UUID2/stop")
# The witness's next 3 rounds committed (the writer is first in, first out): anything of UUID2's
# first round has been written or dropped by then.
wc0=$(rig_field "$WUUID" attestation_count)
rig_wait_rounds 20 "$WUUID" 3 && rig_wait 10 "agent_id = '$WUUID' AND attestation_count >= $((wc0 + 3))" \
  || fail add_then_stop "the witness's rounds were not committed"
if [ "$st$st2" = 200200 ] && [ "$(rig_state "$UUID2")" = 10 ]; then pass add_then_stop; else
  fail add_then_stop "HTTP $st/$st2 state $(rig_state "$UUID2")"; fi

# Delete while a request to a slow agent is in flight.
UUID3=d432fbb3-d2f1-4a97-9ef7-75bd81c00003
rig_fake slow slow --ima-log "$LIST" --slow-ms 3000 || fail delete_in_flight "slow fake agent did not start"
rig_register "$UUID3" "$QUINCE_TMP/slow.ak" "$FAKE_PORT"
rig_add "$UUID3" "$IMA/runtime_policy.json" >/dev/null
rig_wait_log 10 "$QUINCE_TMP/slow.log" "request 1 " || fail delete_in_flight "no request reached the slow agent"
st=$(rig_api DELETE "/v2.1/agents/$UUID3")
if { [ "$st" = 200 ] || [ "$st" = 202 ]; } && [ "$(rig_sql "SELECT count(*) FROM agents WHERE agent_id = '$UUID3';")" = 0 ]; then
  pass delete_in_flight
else
  fail delete_in_flight "HTTP $st, rows $(rig_sql "SELECT count(*) FROM agents WHERE agent_id = '$UUID3';")"
fi

if rig_stop_verifier; then pass clean_shutdown; else fail clean_shutdown "exit status $?"; fi
total_us=$((${EPOCHREALTIME/./} - T0))
if [ $((4 * SLEPT_US)) -lt "$total_us" ]; then
  pass "sleeps_under_a_quarter ($((SLEPT_US / 1000)) ms of $((total_us / 1000)) ms)"
else
  fail sleeps_under_a_quarter "slept $((SLEPT_US / 1000)) ms of $((total_us / 1000)) ms"
fi
if grep -q 'Sanitizer' "$RIG_VLOG"; then
  fail no_sanitizer_reports "$(grep -m3 'Sanitizer' "$RIG_VLOG" | tr '\n' ' ')"
else
  pass no_sanitizer_reports
fi
