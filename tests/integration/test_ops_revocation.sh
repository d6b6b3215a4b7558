#!/bin/bash
# Revocation notifications at the agent: POST /v2.x/notifications/revocation with Keylime's
# signed message. Verified against the revocation certificate from the agent's payload
# (unzipped/RevocationNotifier-cert.crt), it runs the payload's action_list and the configured
# revocation_actions (each with the message file, each killed after revocation_action_timeout_ms);
# an unsigned, forged or tampered message, or one before any certificate exists, is refused and
# runs nothing. Then the verifier itself ([revocations] enabled_revocation_notifications =
# ["agent"], signing_key) sends the signed message to this agent when another agent fails.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3 openssl jq sqlite3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00014
IMA=$QUINCE_TMP/ima
LIST=$IMA/ascii_runtime_measurements
W=$QUINCE_TMP/work
mkdir -p "$IMA" "$W/actions"
: >"$W/empty.conf"
export QUINCE_CONFIG=$W/empty.conf
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 10 --seed 3 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }
cd "$W" || exit 1
cp "$IMA/allowlist.txt" allowlist.txt

# The revocation key and certificate, and another key (the forger's).
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=RevocationNotifier -keyout rkey.pem -out rcert.pem >/dev/null 2>&1 \
  && openssl genrsa -out fkey.pem 2048 >/dev/null 2>&1 || { fail setup "openssl"; exit 0; }
# Actions: one from the payload (copies the message file), one configured that sleeps too long.
MARK=$W/got.json
printf '#!/bin/sh\ncp "$1" %s\n' "$MARK" >mark.sh
printf '#!/bin/sh\nexec sleep 30\n' >"$W/actions/slow.sh"
chmod 755 "$W/actions/slow.sh"
python3 - <<'PY' || fail "zip built"
import zipfile
with zipfile.ZipFile("payload.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.write("rcert.pem", "RevocationNotifier-cert.crt")
    z.writestr("action_list", "mark.sh\n")
    z.write("mark.sh", "mark.sh")
PY

export QUOTE_INTERVAL=0.3
VERIFIER_EXTRA="[revocations]
enabled_revocation_notifications = ['agent']
signing_key = $W/rkey.pem"
export AGENT_TPM_TIMEOUT_MS=${AGENT_TPM_TIMEOUT_MS:-30000}
start_swtpm tpm ekcert
emulate "$TCTI_tpm" "$LIST" || fail "emulator replays the list"
start_verifier || { fail "verifier starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 0; }
start_agent a1 "$UUID" "$TCTI_tpm" "$LIST" "revocation_actions = slow.sh" "revocation_actions_dir = $W/actions" \
  "revocation_action_timeout_ms = 500"
wait_http "$(AG_URL a1)/version" 60 || { fail "agent up" "$(tail -3 "$QUINCE_TMP/a1/agent.log")"; exit 0; }
ALOG=$QUINCE_TMP/a1/agent.log
SEC=$RIG_SHM/a1/secure

# sign KEY MSG: Keylime's body, RSA-PSS SHA-256, MGF1 SHA-256, maximum salt.
sign() {
  printf '%s' "$2" >m.txt
  openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:max -sign "$1" -out m.sig m.txt || return 1
  jq -cn --arg m "$2" --arg s "$(base64 -w0 m.sig)" '{msg: $m, signature: $s}'
}
post() {
  printf '%s' "$1" >body.json
  acurl a1 -o resp.json -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @body.json \
    "$(AG_URL a1)/v2.1/notifications/revocation"
}
MSG=$(jq -cn '{type: "revocation", ip: "127.0.0.1", agent_id: "other-agent", port: 9002, tpm_policy: "{}",
               meta_data: "{}", event_time: "Sun Dec  6 15:00:00 2026", event_id: "ima.file_not_found",
               severity_label: "emergency", context: {message: "File not found in allowlist: /x"}}')
GOOD=$(sign rkey.pem "$MSG") || { fail setup "signing"; exit 0; }

st=$(post "$GOOD")
[ "$st" = 400 ] && grep -q "no revocation certificate" resp.json && pass "before the payload: refused (no certificate to verify with)" \
  || fail "refused without a certificate" "$st $(cat resp.json)"

T() { "$TENANT" -vp "$CV_PORT" -rp "$REG_TLS_PORT" "$@"; }
expect_rc "add with the payload zip" 0 T -c add -u "$UUID" --allowlist allowlist.txt -f payload.zip --verify
for _ in $(seq 100); do [ -s "$SEC/unzipped/RevocationNotifier-cert.crt" ] && break; sleep 0.1; done
[ -s "$SEC/unzipped/RevocationNotifier-cert.crt" ] && pass "payload unpacked with the revocation certificate" || fail "payload unpacked" "$(ls -R "$SEC")"

# Forged, unsigned, tampered: refused, nothing runs.
FORGED=$(sign fkey.pem "$MSG")
st=$(post "$FORGED")
[ "$st" = 400 ] && grep -q "does not verify" resp.json && pass "forged message refused (400)" || fail "forged refused" "$st $(cat resp.json)"
st=$(post "$(jq -cn --arg m "$MSG" '{msg: $m, signature: ""}')")
[ "$st" = 400 ] && grep -q "not signed" resp.json && pass "unsigned message refused (400)" || fail "unsigned refused" "$st $(cat resp.json)"
TAMPERED=$(jq -c '.msg |= sub("other-agent"; "victim-agent")' <<<"$GOOD")
st=$(post "$TAMPERED")
[ "$st" = 400 ] && pass "tampered message refused (400)" || fail "tampered refused" "$st $(cat resp.json)"
st=$(post "not json")
[ "$st" = 400 ] && pass "garbage refused (400)" || fail "garbage refused" "$st"
[ ! -e "$MARK" ] && pass "no action ran for a refused message" || fail "no action for refused" "$(cat "$MARK")"
expect_grep "refusals logged with the agent" "agent $UUID: revocation message refused" "$(cat "$ALOG")"

# The real one: verified, actions run with the message file, the slow one killed on time.
st=$(post "$GOOD")
[ "$st" = 200 ] && pass "signed message accepted (200)" || fail "signed accepted" "$st $(cat resp.json)"
[ -s "$MARK" ] && [ "$(jq -r .agent_id "$MARK")" = other-agent ] && pass "payload action ran with the message file" \
  || fail "payload action ran" "$(cat "$MARK" 2>&1)"
expect_grep "slow action killed after the time limit" "revocation action $W/actions/slow.sh failed: payload script slow.sh ran longer than 500 ms and was killed" "$(cat "$ALOG")"
expect_grep "verified revocation logged" "agent $UUID: revocation of agent other-agent (ima.file_not_found) received and verified" "$(cat "$ALOG")"
ls "$SEC"/revocation-* >/dev/null 2>&1 && fail "message file removed after the actions" || pass "message file removed after the actions"

# ---- the verifier sends it: another agent fails IMA, this one runs its actions -----------------------
rm -f "$MARK"
"$TOOLS/ima_gen" --out-dir "$QUINCE_TMP/other" --entries 4 --seed 11 >/dev/null 2>&1 || fail "ima_gen other"
FUUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0f013
"$TOOLS/fake_agent" --mode good --ima-log "$QUINCE_TMP/other/ascii_runtime_measurements" --ak-out f.ak \
  --tls-ca "$TLS_DIR/cacert.pem" --cert-out f.crt >f.port 2>f.log &
RIG_PIDS+=("$!")
for _ in $(seq 100); do [ -s f.port ] && [ -s f.ak ] && break; sleep 0.1; done
FPORT=$(head -1 f.port)
sqlite3 -cmd ".timeout 5000" "$QUINCE_TMP/verifier/db.sqlite" \
  "INSERT OR REPLACE INTO registrar(agent_id, aik_tpm, mtls_cert, ip, port, regcount, active)
   VALUES ('$FUUID', '$(tr -d '\n' <f.ak)', '$(cat f.crt)', '127.0.0.1', $FPORT, 1, 1);" || fail "fake agent registered"
jq -n --arg p "$(base64 -w0 "$IMA/runtime_policy.json")" '{tpm_policy: "{\"mask\": \"0x400\"}", metadata: "{}",
  ima_sign_verification_keys: "", revocation_key: "", mb_policy_name: "", mb_policy: "", runtime_policy: $p, v: null}' >add.json
st=$(vcurl -o add.out -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @add.json \
  "$CV_URL/v2.1/agents/$FUUID")
[ "$st" = 200 ] && pass "a second (fake) agent added" || fail "second agent added" "$st $(cat add.out)"
for _ in $(seq 300); do [ -s "$MARK" ] && break; sleep 0.1; done
[ -s "$MARK" ] && [ "$(jq -r .agent_id "$MARK")" = "$FUUID" ] && pass "the verifier's signed revocation reached the other agent and ran its action" \
  || fail "verifier revocation to the other agent" "$(grep -i revocation "$QUINCE_TMP/verifier.log" | tail -3)"
expect_grep "the verifier logs the delivery" "agent $UUID: revocation of agent $FUUID delivered" "$(cat "$QUINCE_TMP/verifier.log")"
