#!/usr/bin/env bash
# The database goes away under a running verifier and comes back: a fake agent is polled by a
# verifier on a PostgreSQL server; the server is stopped (fast shutdown: every session is cut).
# Meanwhile the verifier keeps running, the verifier API and the registrar answer 503 with a
# message that says the database cannot be reached, and the state writer keeps its round results
# and says so. When the server is started again the API answers 200 again, the kept rounds are
# saved and the agent's stored attestation count moves on. Every wait is for an event (an HTTP
# answer, a log line, a stored value), bounded only so a broken build cannot hang.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fake_rig.sh"
. "$(dirname "$0")/lib_pg.sh"

pg_start || exit 0
export PGPASSFILE=$PG_PASSFILE
DATABASE=$(pg_newdb restart) || { fail newdb "cannot create the database"; exit 0; }
RIG_DB=$DATABASE

UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0d0d0
IMA="$QUINCE_TMP/ima"
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 10 --seed 5 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }
cp "$IMA/ascii_runtime_measurements" "$QUINCE_TMP/list.txt"

RIG_LOG_LEVEL=debug rig_config
if ! rig_start_verifier; then fail start_verifier "no API port"; exit 0; fi
pass start_verifier_on_pg
if ! rig_fake agent good --ima-log "$QUINCE_TMP/list.txt"; then fail start_fake_agent "no port"; exit 0; fi
rig_register "$UUID" "$QUINCE_TMP/agent.ak" "$FAKE_PORT"
st=$(rig_add "$UUID" "$IMA/runtime_policy.json")
[ "$st" = 200 ] && pass add_agent || fail add_agent "HTTP $st: $(cat "$QUINCE_TMP/add.out")"
if rig_wait 20 "agent_id = '$UUID' AND operational_state = 3 AND attestation_count >= 2"; then
  pass attested_before_outage
else
  fail attested_before_outage "state $(rig_state "$UUID")"
fi

# ---- outage ----
mark=$(($(wc -l <"$RIG_VLOG") + 1))
pg_halt && pass database_stopped || fail database_stopped
# api_until SECONDS WANT METHOD URL: repeats the request until it answers WANT.
api_until() {
  local end=$((SECONDS + $1)) st
  while [ $SECONDS -le "$end" ]; do
    st=$(curl -s "${RIG_CURL[@]}" -o "$QUINCE_TMP/api.out" -w '%{http_code}' -X "$3" "$4")
    [ "$st" = "$2" ] && return 0
    rig_vlog_event
  done
  echo "$st"
  return 1
}
if got=$(api_until 15 503 GET "https://127.0.0.1:$RIG_API/v2.1/agents/$UUID"); then
  pass api_503_during_outage
else
  fail api_503_during_outage "HTTP $got"
fi
expect_grep api_503_message "database unavailable" "$(cat "$QUINCE_TMP/api.out")"
st=$(curl -s "${RIG_CURL[@]}" -o "$QUINCE_TMP/api.out" -w '%{http_code}' "https://127.0.0.1:$RIG_API/v2.1/allowlists/")
[ "$st" = 503 ] && pass list_503_during_outage || fail list_503_during_outage "HTTP $st"
st=$(curl -s "${RIG_CURL[@]}" -o "$QUINCE_TMP/reg.out" -w "%{http_code}" "https://127.0.0.1:$RIG_REG_TLS/v2.1/agents/$UUID")
[ "$st" = 503 ] && pass registrar_503_during_outage || fail registrar_503_during_outage "HTTP $st $(cat "$QUINCE_TMP/reg.out")"
expect_grep registrar_503_message "database cannot be reached" "$(cat "$QUINCE_TMP/reg.out")"
if timeout 20 grep -m1 -qF "keeping the rounds of" <(tail -n +"$mark" -F --pid=$$ "$RIG_VLOG" 2>/dev/null); then
  pass writer_keeps_rounds
else
  fail writer_keeps_rounds "$(tail -3 "$RIG_VLOG")"
fi
kill -0 "$RIG_VPID" 2>/dev/null && pass verifier_survives_outage || fail verifier_survives_outage

# ---- back ----
pg_resume && pass database_restarted || fail database_restarted
before=$(rig_field "$UUID" attestation_count)
if got=$(api_until 20 200 GET "https://127.0.0.1:$RIG_API/v2.1/agents/$UUID"); then
  pass api_200_after_restart
else
  fail api_200_after_restart "HTTP $got $(cat "$QUINCE_TMP/api.out")"
fi
if timeout 30 grep -m1 -qF "database reachable again" <(tail -n +"$mark" -F --pid=$$ "$RIG_VLOG" 2>/dev/null); then
  pass writer_saves_kept_rounds
else
  fail writer_saves_kept_rounds "$(tail -3 "$RIG_VLOG")"
fi
if rig_wait 20 "agent_id = '$UUID' AND operational_state = 3 AND attestation_count > ${before:-0}"; then
  pass attestation_resumes
else
  fail attestation_resumes "count $(rig_field "$UUID" attestation_count) (was $before)"
fi
st=$(curl -s "${RIG_CURL[@]}" -o /dev/null -w "%{http_code}" "https://127.0.0.1:$RIG_REG_TLS/v2.1/agents/$UUID")
[ "$st" = 200 ] && pass registrar_200_after_restart || fail registrar_200_after_restart "HTTP $st"

rig_stop_verifier; rc=$?
[ "$rc" = 0 ] && pass clean_shutdown || fail clean_shutdown "exit $rc"
if grep -q "Sanitizer\|runtime error" "$RIG_VLOG"; then fail no_sanitizer_reports "$(grep -m3 "Sanitizer\|runtime error" "$RIG_VLOG")"; else pass no_sanitizer_reports; fi
