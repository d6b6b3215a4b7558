#!/usr/bin/env bash
# The registrar against an attacker on its plain port (issue 11, items 1, 2, 4 and the %00 id of
# item 12), with a real quince-agent on swtpm:
# - wrong auth_tags on the plain port (no certificate) leave the active registration in place;
# - a second TPM cannot then register under the uuid (the first EK stays bound);
# - a replay of the agent's public registration with another certificate and port changes nothing;
# - a registration flood from one address meets the pending cap (503) and the rate limit (429), and
#   the database stays small;
# - an agent id with %00 is refused with 400 on the registrar and the verifier API;
# - the shipped units and configuration (item 10): a capability bounding set per daemon,
#   LimitNOFILE, the verifier as its own user, a non-root run_as, and systemd-analyze's
#   exposure score at most 4.0 (measured offline).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3 sqlite3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
T=$QUINCE_TMP
UUID=5a1d0e3c-7a2b-4c1e-9f00-00000000a001
VLOG=$T/verifier.log
LIST=$T/ima.list
: >"$LIST"

# wait_log FILE TEXT [secs]: until FILE has the fixed string TEXT.
wait_log() {
  local i
  for i in $(seq $((${3:-30} * 10))); do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# plain METHOD PATH [BODY]: a request to the registrar's plain port; prints the HTTP status,
# the body in $T/plain.body.
plain() {
  curl -s --max-time 10 -o "$T/plain.body" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
    ${3:+--data-binary "$3"} "$REG_PLAIN_URL$2"
}
# record: the registrar's record of UUID (TLS port) as "active-fields" JSON in $T/rec.json; prints status.
record() { vcurl --max-time 10 -o "$T/rec.json" -w '%{http_code}' "$REG_URL/v2.6/agents/$UUID"; }
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"].get(sys.argv[2]))' "$T/rec.json" "$1"; }

# ---- item 10: shipped units and configuration ----------------------------------------------------
UNITS=$QUINCE_ROOT/packaging/systemd
for u in agent verifier; do
  f=$UNITS/quince-$u.service
  grep -q '^CapabilityBoundingSet=' "$f" && grep -q '^LimitNOFILE=65536$' "$f" \
    && pass "quince-$u.service: CapabilityBoundingSet and LimitNOFILE" || fail "quince-$u.service: CapabilityBoundingSet and LimitNOFILE"
done
grep -q '^User=quince$' "$UNITS/quince-verifier.service" && grep -q '^Group=quince$' "$UNITS/quince-verifier.service" \
  && pass "the verifier runs as quince" || fail "the verifier runs as quince"
grep -qx 'CapabilityBoundingSet=' "$UNITS/quince-verifier.service" && pass "the verifier keeps no capability" \
  || fail "the verifier keeps no capability"
ra=$(sed -n '/^\[agent\]/,/^\[/p' "$QUINCE_ROOT/packaging/quince.conf" | sed -n 's/^run_as *= *//p')
[ -n "$ra" ] && [ "${ra%%:*}" != root ] && pass "the shipped agent configuration drops to $ra" \
  || fail "the shipped agent configuration drops to a non-root run_as" "run_as '$ra'"
grep -q "^u ${ra%%:*} " "$UNITS/quince.sysusers.conf" && pass "sysusers.d makes the run_as user" \
  || fail "sysusers.d makes the run_as user"
if command -v systemd-analyze >/dev/null && systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
  for u in agent verifier; do
    score=$(systemd-analyze security --offline=true --no-pager "$UNITS/quince-$u.service" 2>/dev/null \
      | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
    if [ -n "$score" ] && python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 4.0 else 1)" "$score"; then
      pass "quince-$u.service exposure $score <= 4.0"
    else
      fail "quince-$u.service exposure <= 4.0" "score '$score'"
    fi
  done
else
  echo "SKIP: systemd-analyze security --offline not available"
fi

# Small limits so the flood meets them quickly (environment overrides of [registrar]).
export QUINCE_REGISTRAR_MAX_PENDING_REGISTRATIONS=5 QUINCE_REGISTRAR_REGISTRATIONS_PER_MINUTE=20
start_swtpm A
start_verifier || { fail "verifier starts" "$(tail -3 "$VLOG")"; exit 1; }
start_agent A "$UUID" "$TCTI_A" "$LIST"
if wait_log "$VLOG" "agent $UUID activated" 60; then pass "the agent registers and activates"
else fail "the agent registers and activates" "$(tail -3 "$T/A/agent.log")"; exit 1; fi
[ "$(record)" = 200 ] || { fail "registrar record readable" "$(cat "$T/rec.json")"; exit 1; }
EK=$(field ek_tpm) AK=$(field aik_tpm) CERT0=$(field mtls_cert) PORT0=$(field port)

# ---- item 1: a wrong auth_tag does not delete an active registration -----------------------------
codes=
for i in 1 2 3 4 5; do codes="$codes $(plain PUT "/v2.6/agents/$UUID/activate" '{"auth_tag": "00"}')"; done
[ "$codes" = " 400 400 400 400 400" ] && pass "wrong auth_tags on the plain port → 400" \
  || fail "wrong auth_tags on the plain port → 400" "got$codes"
st=$(record)
if [ "$st" = 200 ] && [ "$(field aik_tpm)" = "$AK" ] && [ "$(field ek_tpm)" = "$EK" ]; then
  pass "the active registration survives wrong auth_tags"
else
  fail "the active registration survives wrong auth_tags" "HTTP $st $(head -c 200 "$T/rec.json")"
fi
# A second TPM under the same uuid: refused, the record keeps the first EK.
start_swtpm B
start_agent B "$UUID" "$TCTI_B" "$LIST"
if wait_log "$VLOG" "registration of agent $UUID refused (403)" 60; then pass "a second TPM cannot take the uuid (403)"
else fail "a second TPM cannot take the uuid (403)" "$(grep -F "$UUID" "$VLOG" | tail -2)"; fi
[ "$(record)" = 200 ] && [ "$(field ek_tpm)" = "$EK" ] && pass "the first EK stays bound" \
  || fail "the first EK stays bound" "$(head -c 200 "$T/rec.json")"

# ---- item 2: a replayed registration changes nothing until activated ---------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/evil.key" -out "$T/evil.crt" \
  -days 1 -subj /CN=evil >/dev/null 2>&1
BODY=$(python3 -c 'import json,sys; print(json.dumps({"ek_tpm": sys.argv[1], "aik_tpm": sys.argv[2], "ekcert": None if sys.argv[3] == "None" else sys.argv[3], "mtls_cert": open(sys.argv[4]).read(), "ip": "127.0.0.66", "port": 1}))' \
  "$EK" "$AK" "$(field ekcert)" "$T/evil.crt")
st=$(plain POST "/v2.6/agents/$UUID" "$BODY")
[ "$st" = 200 ] && pass "a replayed registration gets a fresh challenge (200)" \
  || fail "a replayed registration gets a fresh challenge (200)" "HTTP $st $(cat "$T/plain.body")"
st=$(record)
if [ "$st" = 200 ] && [ "$(field mtls_cert)" = "$CERT0" ] && [ "$(field port)" = "$PORT0" ] && [ "$(field ip)" = 127.0.0.1 ]; then
  pass "the replay leaves the active record (certificate, address, port) unchanged"
else
  fail "the replay leaves the active record unchanged" "HTTP $st port $(field port) ip $(field ip)"
fi
# The agent still attests: its quote is fetched with the original certificate.
[ "$(sqlite3 "$T/verifier/db.sqlite" "SELECT active FROM registrar WHERE agent_id = '$UUID'")" = 1 ] \
  && pass "the record stays active in the database" || fail "the record stays active in the database"

# ---- %00 in an id ---------------------------------------------------------------------------------
st=$(plain POST "/v2.6/agents/abc%00def" "$BODY")
[ "$st" = 400 ] && pass "%00 in a registrar id → 400" || fail "%00 in a registrar id → 400" "HTTP $st"
st=$(vcurl --max-time 10 -o /dev/null -w '%{http_code}' "$CV_URL/v2.6/agents/abc%00def")
[ "$st" = 400 ] && pass "%00 in a verifier id → 400" || fail "%00 in a verifier id → 400" "HTTP $st"

# ---- item 4: a registration flood from one address -----------------------------------------------
# The agent's public registration under random ids (each would be a new pending record).
python3 - "$EK" "$AK" "$T/flood.json" <<'PY'
import json, sys
json.dump({"ek_tpm": sys.argv[1], "aik_tpm": sys.argv[2], "mtls_cert": "disabled", "ip": "127.0.0.1",
           "port": 9, "ekcert": None}, open(sys.argv[3], "w"))
PY
declare -A seen=()
for i in $(seq 40); do
  st=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary @"$T/flood.json" "$REG_PLAIN_URL/v2.6/agents/flood-$RANDOM-$i")
  seen[$st]=$(( ${seen[$st]:-0} + 1 ))
done
summary=$(for k in "${!seen[@]}"; do echo -n "$k:${seen[$k]} "; done)
[ -n "${seen[503]:-}" ] && pass "the pending cap answers 503 ($summary)" || fail "the pending cap answers 503" "$summary"
[ -n "${seen[429]:-}" ] && pass "the per-address rate limit answers 429 ($summary)" || fail "the per-address rate limit answers 429" "$summary"
n=$(sqlite3 "$T/verifier/db.sqlite" "SELECT count(*) FROM registrar WHERE agent_id LIKE 'flood-%'")
[ "$n" -le 5 ] && pass "at most max_pending_registrations flood records are kept ($n)" \
  || fail "at most max_pending_registrations flood records are kept" "$n records"
grep -qF "refused (503)" "$VLOG" && grep -qF "refused (429)" "$VLOG" && pass "refusals are logged with the reason" \
  || fail "refusals are logged with the reason"
