#!/usr/bin/env bash
# quince-fleet against the real verifier: 200 simulated agents register, activate (software
# ActivateCredential with their own EKs) and are added through the APIs; their lists grow from
# the fleet's policy, a few answer late and a few reboot; 3 run a file the policy does not list.
# Every evil agent must end in Invalid Quote with the unlisted file named in the log, and every
# other agent must keep attesting. Behaviour only: no timing is checked.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_rig.sh"

FLEET="$TOOLS/quince-fleet"
OUT="$QUINCE_TMP/fleet"
N=200
export QUOTE_INTERVAL=1 VERIFIER_LOG_LEVEL=warning MAX_RETRIES=5
[ -x "$FLEET" ] || { fail setup "quince-fleet not built"; exit 0; }
sql() { sqlite3 -cmd ".timeout 5000" "$QUINCE_TMP/verifier/db.sqlite" "$@"; }

start_verifier || { fail start_verifier "$(tail -3 "$QUINCE_TMP/verifier.log")"; exit 0; }
pass start_verifier

# A loopback /24 of its own (another test may run a fleet at the same time) and a free port.
BASE="127.$((RANDOM % 100 + 100)).$((RANDOM % 250)).1"
PORT=$(free_port)
"$FLEET" --agents $N --evil 3 --evil-at 2 --slow 0.05 --slow-ms 100 --reboot 0.05 --reboot-at 3 \
  --new-entries-per-minute 60 --interval 1 --registrar "$REG_PLAIN_URL" --verifier "$CV_URL" \
  --tls-dir "$TLS_DIR" --out "$OUT" --base-ip "$BASE" --port "$PORT" \
  >"$QUINCE_TMP/fleet.out" 2>"$QUINCE_TMP/fleet.err" &
FLEET_PID=$!
RIG_PIDS+=("$FLEET_PID")

if fleet_wait_ready 300 && grep -q "^fleet: registered $N agents .* 0 failures" "$QUINCE_TMP/fleet.out"; then
  pass fleet_registered_and_added
else
  fail fleet_registered_and_added "$(tail -n 3 "$QUINCE_TMP/fleet.out" "$QUINCE_TMP/fleet.err" | tr '\n' ' ')"
  exit 0
fi
[ "$(sql "SELECT count(*) FROM agents;")" = $N ] && pass all_agents_in_store \
  || fail all_agents_in_store "$(sql "SELECT count(*) FROM agents;") agents"

# One listener serves every agent: an agent's address answers with that agent's certificate,
# any other address on the port fails its TLS handshake, and the fleet holds about one
# descriptor per agent (the verifier's connection), not three.
AGENT_IP=$(awk 'NR == 2 {print $2}' "$OUT/agents.txt")
AGENT_ID=$(awk 'NR == 2 {print $1}' "$OUT/agents.txt")
CURL_TLS=(--cert "$TLS_DIR/tenant-cert.pem" --key "$TLS_DIR/tenant-key.pem" -k -s --max-time 10)
if curl "${CURL_TLS[@]}" "https://$AGENT_IP:$PORT/v2.1/agent/info" | grep -q "\"agent_uuid\": *\"$AGENT_ID\""; then
  pass agent_answers_on_its_address
else
  fail agent_answers_on_its_address "GET /agent/info on $AGENT_IP:$PORT did not name $AGENT_ID"
fi
SUBJ=$(echo | openssl s_client -connect "$AGENT_IP:$PORT" -cert "$TLS_DIR/tenant-cert.pem" -key "$TLS_DIR/tenant-key.pem" 2>/dev/null | openssl x509 -noout -subject 2>/dev/null)
case "$SUBJ" in *"$AGENT_ID"*) pass agent_own_certificate ;; *) fail agent_own_certificate "subject: $SUBJ" ;; esac
OTHER_IP="${BASE%.*}.250"
if curl "${CURL_TLS[@]}" -o /dev/null "https://$OTHER_IP:$PORT/version"; then
  fail other_address_refused "$OTHER_IP:$PORT answered"
else
  pass other_address_refused
fi
nfd=$(ls "/proc/$FLEET_PID/fd" | wc -l)
[ "$nfd" -le $((N + 64)) ] && pass fleet_one_descriptor_per_agent || fail fleet_one_descriptor_per_agent "$nfd open files for $N agents"

mapfile -t EVIL < <(awk '/ evil/ {print $1}' "$OUT/agents.txt")
[ ${#EVIL[@]} = 3 ] && pass three_evil_agents || fail three_evil_agents "${#EVIL[@]} listed"
IN=$(printf "'%s'," "${EVIL[@]}"); IN=${IN%,}

# Every evil agent is caught: Invalid Quote (9), the unlisted file named in the log.
caught=0
for _ in $(seq 1200); do
  caught=$(sql "SELECT count(*) FROM agents WHERE agent_id IN ($IN) AND operational_state = 9;")
  [ "$caught" = 3 ] && break
  kill -0 "$FLEET_PID" 2>/dev/null || break
  sleep 0.1
done
[ "$caught" = 3 ] && pass evil_agents_invalid_quote || fail evil_agents_invalid_quote "$caught of 3 caught"
grep -q 'File not found in allowlist: /tmp/quince-fleet-evil' "$QUINCE_TMP/verifier.log" \
  && pass evil_file_named || fail evil_file_named "no 'File not found' line"
# Reboots come on the fleet's own schedule, which need not precede the evil agents' capture.
rebooted=0
for _ in $(seq 600); do
  grep -q '^fleet: reboot [1-9]' "$QUINCE_TMP/fleet.out" && { rebooted=1; break; }
  kill -0 "$FLEET_PID" 2>/dev/null || break
  sleep 0.1
done
[ "$rebooted" = 1 ] && pass reboots_happened || fail reboots_happened "$(grep reboot "$QUINCE_TMP/fleet.out")"

# The good agents go on: each completes two more rounds after the last evil one was caught
# (the reboots and the slow answers are behind them), and none has failed.
base=$(sql "SELECT max(attestation_count) FROM agents WHERE agent_id NOT IN ($IN);")
behind=$N
for _ in $(seq 1200); do
  behind=$(sql "SELECT count(*) FROM agents WHERE agent_id NOT IN ($IN) AND attestation_count < $((base + 2));")
  [ "$behind" = 0 ] && break
  [ "$(sql "SELECT count(*) FROM agents WHERE agent_id NOT IN ($IN) AND operational_state IN (7, 9, 10);")" = 0 ] || break
  sleep 0.1
done
bad=$(sql "SELECT agent_id || ' ' || operational_state FROM agents WHERE agent_id NOT IN ($IN) AND operational_state NOT IN (3, 4);")
if [ "$behind" = 0 ] && [ -z "$bad" ]; then
  pass good_agents_keep_attesting
else
  fail good_agents_keep_attesting "$behind behind; not attesting: $(echo "$bad" | head -3 | tr '\n' ' ') $(grep -m2 ERROR "$QUINCE_TMP/verifier.log")"
fi

kill -TERM "$FLEET_PID"
if wait "$FLEET_PID"; then pass fleet_clean_exit; else fail fleet_clean_exit "exit $?: $(tail -2 "$QUINCE_TMP/fleet.err")"; fi
grep -q '^fleet: stats .* errors=0 ' "$QUINCE_TMP/fleet.out" && pass fleet_no_bad_requests \
  || fail fleet_no_bad_requests "$(grep stats "$QUINCE_TMP/fleet.out" | tail -1)"
exit 0
