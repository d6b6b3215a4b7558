#!/usr/bin/env bash
# Writes sized for large fleets: a round that changed only an agent's counters is kept in the
# verifier's memory (state_checkpoint_rounds / state_checkpoint_interval), while anything a
# restart needs is written in the round it changed. The API shows the live counters all along,
# a verifier stopped with SIGTERM writes them, and the next one resumes from them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fake_rig.sh"

UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c000c1
IMA="$QUINCE_TMP/ima"
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 12 --seed 7 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }

# No checkpoint by count or time during the test: only durable changes and the stop write.
RIG_CHECKPOINT_ROUNDS=1000000 RIG_LOG_LEVEL=debug rig_config state_checkpoint_interval=86400
if ! rig_start_verifier; then fail start_verifier "no API port"; exit 0; fi
pass start_verifier
rig_fake_added "$UUID" "$IMA/ascii_runtime_measurements" "$IMA/runtime_policy.json" || exit 0

api_count() {
  curl -s "${RIG_CURL[@]}" "https://127.0.0.1:$RIG_API/v2.1/agents/$UUID" | jq -r '.results.attestation_count // -1'
}

# The first round is durable (Start -> Get Quote, IMA position 12): written at once.
if rig_wait 10 "agent_id = '$UUID' AND operational_state = 3 AND next_ima_ml_entry = 12"; then
  pass first_round_written
else
  fail first_round_written "state $(rig_state "$UUID") next $(rig_field "$UUID" next_ima_ml_entry)"
fi
stored1=$(rig_field "$UUID" attestation_count)
# Six more rounds change only the counters: the API counts them, the store does not.
rig_wait_rounds 20 "$UUID" 6 || fail six_rounds "the agent completed no 6 rounds"
live=$(api_count)
stored=$(rig_field "$UUID" attestation_count)
if [ "$live" -ge $((stored1 + 6)) ] 2>/dev/null && [ "$stored" = "$stored1" ]; then
  pass "counters kept in memory: the API shows $live, the store still $stored"
else
  fail "counters kept in memory" "API $live, store $stored (first write $stored1)"
fi

# SIGTERM: the counters are written on the way out.
rig_stop_verifier; rc=$?
[ $rc = 0 ] && pass clean_shutdown || fail clean_shutdown "exit status $rc"
stored=$(rig_field "$UUID" attestation_count)
if [ "$stored" -ge "$live" ] 2>/dev/null; then pass "the stop wrote the counters ($stored >= $live)"
else fail "the stop wrote the counters" "store $stored, API showed $live"; fi

# A new verifier resumes from them and counts on.
if ! rig_start_verifier; then fail restart_verifier "no API port"; exit 0; fi
if rig_wait_rounds 20 "$UUID" 2 && [ "$(api_count)" -gt "$stored" ] 2>/dev/null; then
  pass "resumed from the written counters ($stored -> $(api_count))"
else
  fail "resumed from the written counters" "API $(api_count), stored $stored"
fi
rig_stop_verifier >/dev/null 2>&1

if grep -q "Sanitizer" "$RIG_VLOG"; then fail no_sanitizer_reports "$(grep -m3 Sanitizer "$RIG_VLOG")"
else pass no_sanitizer_reports; fi
