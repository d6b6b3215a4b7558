#!/usr/bin/env bash
# Misbehaving agents against the real verifier, all polled at once by one verifier: each fake
# agent mode must end in the state and event Keylime gives it (keylime-formats §3.3-3.4), and the
# good agent next to them must keep attesting. Agents added with a V: a good one gets it once
# (Provide V → Get Quote), one answering 500 to /keys/vkey is retried (Provide V (retry)) and then
# Failed, one answering 400 fails with internal.verifier.no_v, one whose quote fails never gets V.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fake_rig.sh"

IMA="$QUINCE_TMP/ima"
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 12 --seed 5 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }
# The lagging agent needs a list that keeps growing: its PCR 10 never covers the last entry.
head -8 "$IMA/ascii_runtime_measurements" >"$QUINCE_TMP/lag.txt"

rig_config
if ! rig_start_verifier; then fail start_verifier "no API port"; exit 0; fi

# name mode expected-state expected-event [extra fake_agent options]
CASES=(
  "good good 3 -"
  "wrongkey wrong-key 9 qoute_validation.quote_validation"
  "stale stale-nonce 9 qoute_validation.quote_validation"
  "badsel bad-selection 9 qoute_validation.quote_validation"
  "lagging lagging 9 ima.quote_progress"
  "garbage garbage 7 qoute_validation.invalid_data"
  "types garbage-types 7 qoute_validation.invalid_data"
  "slow slow 7 internal.verifier.not_reachable --slow-ms 3000"
  "http500 http500 7 internal.verifier.not_reachable"
  "goodv good 3 -"
  "vkey500 vkey500 7 internal.verifier.not_reachable"
  "vkey400 vkey400 7 internal.verifier.no_v"
)
# The agents whose add request carries a V (base64 of 32 bytes).
WITH_V=" goodv vkey500 vkey400 wrongkey "
V=$(head -c 32 /dev/urandom | base64 -w0)

i=0
declare -A UUIDS
for c in "${CASES[@]}"; do
  set -- $c
  name=$1 mode=$2; shift 4
  i=$((i + 1))
  uuid=$(printf 'a0a0a0a0-0000-4000-8000-%012d' "$i")
  UUIDS[$name]=$uuid
  list="$IMA/ascii_runtime_measurements"
  [ "$name" = lagging ] && list="$QUINCE_TMP/lag.txt"
  if ! rig_fake "$name" "$mode" --ima-log "$list" "$@"; then fail "start_$name" "fake agent did not start"; continue; fi
  rig_register "$uuid" "$QUINCE_TMP/$name.ak" "$FAKE_PORT"
  v=""; case $WITH_V in *" $name "*) v=$V;; esac
  st=$(RIG_ADD_V=$v rig_add "$uuid" "$IMA/runtime_policy.json")
  [ "$st" = 200 ] || fail "add_$name" "HTTP $st: $(cat "$QUINCE_TMP/add.out")"
done

# An agent nobody listens for (connection refused) and one whose quote route answers 404.
DEAD=a0a0a0a0-0000-4000-8000-000000000098
rig_register "$DEAD" "$QUINCE_TMP/good.ak" 1
[ "$(rig_add "$DEAD" "$IMA/runtime_policy.json")" = 200 ] || fail add_dead "HTTP $(cat "$QUINCE_TMP/add.out")"
NOTFOUND=a0a0a0a0-0000-4000-8000-000000000099
rig_fake notfound http404 --ima-log "$IMA/ascii_runtime_measurements" || fail start_notfound "fake agent did not start"
rig_register "$NOTFOUND" "$QUINCE_TMP/notfound.ak" "$FAKE_PORT"
[ "$(rig_add "$NOTFOUND" "$IMA/runtime_policy.json")" = 200 ] || fail add_notfound "HTTP $(cat "$QUINCE_TMP/add.out")"

# The lagging agent's log grows by one entry a round.
( for n in 9 10 11 12; do sleep 0.3; sed -n "${n}p" "$IMA/ascii_runtime_measurements" >>"$QUINCE_TMP/lag.txt"; done ) &
RIG_PIDS+=("$!")

check() {   # name uuid state event
  local name=$1 uuid=$2 want=$3 ev=$4
  if ! rig_wait 20 "agent_id = '$uuid' AND operational_state = $want"; then
    fail "$name" "state $(rig_state "$uuid"), wanted $want (event $(rig_field "$uuid" last_event_id))"
    return
  fi
  if [ "$ev" != - ]; then
    local got
    got=$(rig_field "$uuid" last_event_id)
    if [ "$got" != "$ev" ]; then fail "$name" "event $got, wanted $ev"; return; fi
    if [ "$(rig_sql "SELECT count(*) FROM failures WHERE agent_id = '$uuid' AND event_id = '$ev';")" -lt 1 ]; then
      fail "$name" "no failure record $ev"; return
    fi
  fi
  pass "$name"
}

for c in "${CASES[@]}"; do
  set -- $c
  [ "$1" = good ] && continue
  check "mode_$1" "${UUIDS[$1]}" "$3" "$4"
done
check connection_refused "$DEAD" 7 internal.verifier.not_reachable
check http_404 "$NOTFOUND" 7 internal.verifier.no_quote

# The stale-nonce agent passed its first round (its first quote was fresh).
if [ "$(rig_field "${UUIDS[stale]}" attestation_count)" = 1 ]; then pass stale_first_round_passed; else
  fail stale_first_round_passed "attestation_count $(rig_field "${UUIDS[stale]}" attestation_count)"; fi
# Retries: partial=0 on every retry, then "unreachable after N retries".
n=$(grep -c 'request .* partial 0' "$QUINCE_TMP/http500.log")
if [ "$n" = 3 ]; then pass retries_partial0; else fail retries_partial0 "$n partial=0 requests, wanted 3"; fi
expect_grep log_unreachable "agent ${UUIDS[http500]} unreachable after 2 retries" "$(cat "$RIG_VLOG")"
expect_grep log_quote_progress "PCR quote did not make progress to catch up with the log" "$(cat "$RIG_VLOG")"

# V delivery: once to the good agent, never to the one whose first quote failed, retried on 500.
n=$(grep -c 'fake_agent: vkey' "$QUINCE_TMP/goodv.log")
[ "$n" = 1 ] && pass v_delivered_once || fail v_delivered_once "$n vkey requests"
expect_grep v_logged "agent ${UUIDS[goodv]}: V delivered (Provide V → Get Quote)" "$(cat "$RIG_VLOG")"
n=$(grep -c 'fake_agent: vkey' "$QUINCE_TMP/good.log")
[ "$n" = 0 ] && pass no_v_without_v || fail no_v_without_v "$n vkey requests to an agent added without V"
n=$(grep -c 'fake_agent: vkey' "$QUINCE_TMP/wrongkey.log")
[ "$n" = 0 ] && pass no_v_after_failed_quote || fail no_v_after_failed_quote "$n vkey requests"
n=$(grep -c 'fake_agent: vkey' "$QUINCE_TMP/vkey500.log")
[ "$n" = 3 ] && pass v_retries || fail v_retries "$n vkey requests, wanted 3"
expect_grep v_retry_logged "agent ${UUIDS[vkey500]}: delivering V failed (HTTP 500); retry 1 of 2" "$(cat "$RIG_VLOG")"
expect_grep v_refused_logged "agent ${UUIDS[vkey400]}: the agent refused V: HTTP 400: encrypted_key cannot be decrypted" "$(cat "$RIG_VLOG")"
if grep -q "$V" "$RIG_VLOG"; then fail v_never_logged; else pass v_never_logged; fi
expect_grep v_not_shown '"v":null' "$(curl -s "${RIG_CURL[@]}" "https://127.0.0.1:$RIG_API/v2.1/agents/${UUIDS[goodv]}")"
if rig_wait 10 "agent_id = '${UUIDS[goodv]}' AND operational_state = 3 AND attestation_count >= 3"; then
  pass goodv_keeps_attesting
else
  fail goodv_keeps_attesting "state $(rig_state "${UUIDS[goodv]}")"
fi

# The good agent attested all along, next to the others.
if rig_wait 10 "agent_id = '${UUIDS[good]}' AND operational_state = 3 AND attestation_count >= 5 AND next_ima_ml_entry = 12"; then
  pass mode_good
else
  fail mode_good "state $(rig_state "${UUIDS[good]}") count $(rig_field "${UUIDS[good]}" attestation_count)"
fi

if rig_stop_verifier; then pass clean_shutdown; else fail clean_shutdown "exit status $?"; fi
if grep -q 'Sanitizer' "$RIG_VLOG"; then
  fail no_sanitizer_reports "$(grep -m3 'Sanitizer' "$RIG_VLOG" | tr '\n' ' ')"
else
  pass no_sanitizer_reports
fi
