#!/usr/bin/env bash
# Agent ids keep the case they were registered / added in, as Keylime's answers do, while identity
# stays case-insensitive (issue 14). A fake agent registers with a mixed-case id (a software EK:
# an RSA key of openssl's in a TPM2B_PUBLIC), is re-registered under another case (the same
# record), then added to the verifier under a third case and attested. The registrar's list and
# record show the registered case, the verifier's list, bulk answer and the runtime policy named
# after the agent the added case, messages echo the request's spelling, and reads, deletes and a
# second add in other cases reach the one agent. The fake agent has no TPM to answer the
# credential challenge, so the record is marked active in the database (tests/unit/test_registrar.c
# covers the activation of a mixed-case id).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fake_rig.sh"
for t in openssl python3 sqlite3 curl jq; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

REG_ID=D432fbb3-Case-4A97-9ef7-75BD81C0000a    # as the agent registers
RE_ID=D432FBB3-CASE-4A97-9EF7-75BD81C0000A     # a re-registration in another case
ADD_ID=d432FBB3-case-4a97-9EF7-75bd81c0000A    # as the tenant adds it
KEY=d432fbb3-case-4a97-9ef7-75bd81c0000a       # the store's key

IMA="$QUINCE_TMP/ima"
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 6 --seed 14 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }
rig_config
if ! rig_start_verifier; then fail start_verifier "no API port"; exit 0; fi
rig_fake good good --ima-log "$IMA/ascii_runtime_measurements" || { fail setup "fake agent did not start"; exit 0; }

# ek.b64: TPM2B_PUBLIC of an RSA-2048 EK (restricted decryption, AES-128-CFB, the EK attributes).
openssl genrsa -out "$QUINCE_TMP/ek.pem" 2048 2>/dev/null || { fail setup "openssl genrsa"; exit 0; }
openssl rsa -in "$QUINCE_TMP/ek.pem" -noout -modulus 2>/dev/null | python3 -c '
import base64, struct, sys
n = bytes.fromhex(sys.stdin.read().strip().split("=", 1)[1])
t = struct.pack(">HHI", 0x0001, 0x000B, 0x000300B2) + struct.pack(">H", 32) + bytes(32)
t += struct.pack(">HHHHHI", 0x0006, 128, 0x0043, 0x0010, 2048, 0) + struct.pack(">H", len(n)) + n
print(base64.b64encode(struct.pack(">H", len(t)) + t).decode())' >"$QUINCE_TMP/ek.b64"

# register ID : POST to the registrar's plain port; prints the HTTP status.
register() {
  jq -n --arg ek "$(cat "$QUINCE_TMP/ek.b64")" --arg ak "$(tr -d '\n' <"$QUINCE_TMP/good.ak")" \
        --arg cert "$(cat "$QUINCE_TMP/good.crt")" --argjson port "$FAKE_PORT" \
        '{ek_tpm: $ek, ekcert: null, aik_tpm: $ak, mtls_cert: $cert, ip: "127.0.0.1", port: $port}' \
        >"$QUINCE_TMP/reg.json"
  curl -s -o "$QUINCE_TMP/reg.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
       --data-binary @"$QUINCE_TMP/reg.json" "http://127.0.0.1:$RIG_REG/v2.1/agents/$1"
}
# reg_api METHOD PATH : the registrar's TLS port; prints the status, the body in reg_api.out.
reg_api() {
  curl -s "${RIG_CURL[@]}" -o "$QUINCE_TMP/reg_api.out" -w '%{http_code}' -X "$1" "https://127.0.0.1:$RIG_REG_TLS$2"
}
# jget FILE JQ : one value of a JSON answer (raw).
jget() { jq -r "$2" "$1" 2>/dev/null; }

# ---- registrar ----------------------------------------------------------------------------------
st=$(register "$REG_ID")
[ "$st" = 200 ] && pass register_mixed_case || fail register_mixed_case "HTTP $st: $(cat "$QUINCE_TMP/reg.out")"
st=$(register "$RE_ID")
[ "$st" = 200 ] && pass reregister_other_case || fail reregister_other_case "HTTP $st: $(cat "$QUINCE_TMP/reg.out")"
got=$(rig_sql "SELECT (SELECT count(*) FROM registrar) || ' ' || display_id || ' ' || regcount FROM registrar;")
[ "$got" = "1 $REG_ID 2" ] && pass one_record_first_case_kept \
  || fail one_record_first_case_kept "records/display_id/regcount: $got"

st=$(reg_api GET /v2.1/agents/)
ids=$(jget "$QUINCE_TMP/reg_api.out" '.results.uuids | join(",")')
[ "$st" = 200 ] && [ "$ids" = "$REG_ID" ] && pass registrar_list_registered_case \
  || fail registrar_list_registered_case "HTTP $st, uuids '$ids'"
st=$(reg_api GET "/v2.1/agents/$KEY")
msg=$(jget "$QUINCE_TMP/reg_api.out" .status)
[ "$st" = 404 ] && [ "$msg" = "Agent with ID '$KEY' has not been activated" ] && pass registrar_message_request_case \
  || fail registrar_message_request_case "HTTP $st: $msg"

rig_sql "UPDATE registrar SET active = 1 WHERE agent_id = '$KEY';"
st=$(reg_api GET "/v2.1/agents/$KEY")
got=$(jget "$QUINCE_TMP/reg_api.out" .results.agent_id)
[ "$st" = 200 ] && [ "$got" = "$REG_ID" ] && pass registrar_record_registered_case \
  || fail registrar_record_registered_case "HTTP $st, agent_id '$got'"

# ---- verifier -----------------------------------------------------------------------------------
st=$(rig_add "$ADD_ID" "$IMA/runtime_policy.json")
[ "$st" = 200 ] && pass add_other_case || fail add_other_case "HTTP $st: $(cat "$QUINCE_TMP/add.out")"
st=$(rig_add "$KEY" "$IMA/runtime_policy.json")
msg=$(jget "$QUINCE_TMP/add.out" .status)
[ "$st" = 409 ] && [ "$msg" = "Agent of uuid $KEY already exists. Please use delete or update." ] \
  && pass second_add_same_agent || fail second_add_same_agent "HTTP $st: $msg"

st=$(rig_api GET /v2.1/agents/)
ids=$(jget "$QUINCE_TMP/api.out" '[.results.uuids[][]] | join(",")')
[ "$st" = 200 ] && [ "$ids" = "$ADD_ID" ] && pass verifier_list_added_case \
  || fail verifier_list_added_case "HTTP $st, uuids '$ids'"
st=$(rig_api GET "/v2.1/agents/?bulk=True")
ids=$(jget "$QUINCE_TMP/api.out" '.results | keys | join(",")')
[ "$st" = 200 ] && [ "$ids" = "$ADD_ID" ] && pass verifier_bulk_added_case \
  || fail verifier_bulk_added_case "HTTP $st, keys '$ids'"
st=$(rig_api GET /v2.1/allowlists/)
names=$(jget "$QUINCE_TMP/api.out" '.results["runtimepolicy names"] | join(",")')
[ "$st" = 200 ] && [ "$names" = "$ADD_ID" ] && pass policy_named_added_case \
  || fail policy_named_added_case "HTTP $st, names '$names'"

# The poller and the state writer work on the key: the agent is attested round after round.
if rig_wait 20 "agent_id = '$KEY' AND operational_state = 3 AND attestation_count >= 2"; then
  pass attested
else
  fail attested "state $(rig_state "$KEY"), event $(rig_field "$KEY" last_event_id)"
fi
st=$(rig_api GET "/v2.1/agents/$RE_ID")
got=$(jget "$QUINCE_TMP/api.out" .results.operational_state)
[ "$st" = 200 ] && [ "$got" = 3 ] && pass status_any_case || fail status_any_case "HTTP $st, state '$got'"

# The tenant prints the ids as the verifier answers them.
cat >"$QUINCE_TMP/tenant.conf" <<EOF
[tenant]
verifier_ip = 127.0.0.1
verifier_port = $RIG_API
registrar_ip = 127.0.0.1
registrar_port = $RIG_REG_TLS
tls_dir = $RIG_TLS
EOF
out=$("$TENANT" --config "$QUINCE_TMP/tenant.conf" -c cvlist 2>&1)
expect_grep tenant_cvlist_added_case "$ADD_ID" "$out"
out=$("$TENANT" --config "$QUINCE_TMP/tenant.conf" -c reglist 2>&1)
expect_grep tenant_reglist_registered_case "$REG_ID" "$out"

st=$(rig_api DELETE "/v2.1/agents/$RE_ID")
[ "$st" = 200 ] && pass verifier_delete_other_case || fail verifier_delete_other_case "HTTP $st: $(cat "$QUINCE_TMP/api.out")"
st=$(rig_api GET "/v2.1/agents/$ADD_ID")
[ "$st" = 404 ] && [ "$(rig_sql "SELECT count(*) FROM agents;")" = 0 ] && pass verifier_agent_gone \
  || fail verifier_agent_gone "HTTP $st, $(rig_sql "SELECT count(*) FROM agents;") rows"
st=$(rig_api GET /v2.1/allowlists/)
names=$(jget "$QUINCE_TMP/api.out" '.results["runtimepolicy names"] | length')
[ "$st" = 200 ] && [ "$names" = 0 ] && pass policy_went_with_agent || fail policy_went_with_agent "HTTP $st, $names left"
st=$(reg_api DELETE "/v2.1/agents/$ADD_ID")
[ "$st" = 200 ] && [ "$(rig_sql "SELECT count(*) FROM registrar;")" = 0 ] && pass registrar_delete_other_case \
  || fail registrar_delete_other_case "HTTP $st: $(cat "$QUINCE_TMP/reg_api.out")"

if rig_stop_verifier; then pass clean_shutdown; else fail clean_shutdown "exit status $?"; fi
if grep -q 'Sanitizer' "$RIG_VLOG"; then
  fail no_sanitizer_reports "$(grep -m3 'Sanitizer' "$RIG_VLOG" | tr '\n' ' ')"
else
  pass no_sanitizer_reports
fi
