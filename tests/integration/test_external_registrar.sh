#!/usr/bin/env bash
# [verifier] registrar_url: verifier B reads agent records from an external Keylime-compatible
# registrar (here verifier A's registrar TLS port, mTLS with B's client certificate) instead of its
# own. The agent registers only with A; the tenant adds it to B, B attests it, B's own registrar
# never knows it; an id the external registrar does not know is 404, an unreachable registrar
# 502 with the reason, and a forged ak_tpm in the add request is ignored. A non-https URL is a
# configuration error.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
UUID=ext-reg-agent
IMA=$QUINCE_TMP/ima
LIST=$IMA/ascii_runtime_measurements
W=$QUINCE_TMP/work
mkdir -p "$IMA" "$W" "$QUINCE_TMP/b"
: >"$W/empty.conf"
export QUINCE_CONFIG=$W/empty.conf
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 20 --seed 11 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }
cp "$IMA/allowlist.txt" "$W/allowlist.txt"

export QUOTE_INTERVAL=0.3
start_swtpm tpm ekcert
emulate "$TCTI_tpm" "$LIST" || fail "emulator replays the list"
start_verifier || { fail "verifier A starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 0; }
start_agent a1 "$UUID" "$TCTI_tpm" "$LIST"
wait_http "$(AG_URL a1)/version" 30 || { fail "agent up" "$(tail -3 "$QUINCE_TMP/a1/agent.log")"; exit 0; }
for _ in $(seq 100); do [ "$(vcurl -o /dev/null -w '%{http_code}' "$REG_URL/v2.6/agents/$UUID")" = 200 ] && break; sleep 0.1; done

# Verifier B: its own database, ports and registrar, the same CA; agent records from A's registrar.
B_CV=$(free_port); B_REG=$(free_port); B_REG_TLS=$(free_port)
b_conf() { # registrar_url
  cat <<CONF
[verifier]
ip = 127.0.0.1
port = $B_CV
database = $QUINCE_TMP/b/db.sqlite
tls_dir = $TLS_DIR
quote_interval = 0.3
retry_interval = 0.2
max_retries = 3
request_timeout_ms = 5000
accept_tpm_hash_algs = sha512, sha384, sha256, sha1
accept_tpm_signing_algs = ecschnorr, rsassa, ecdsa
registrar_url = $1
[registrar]
ip = 127.0.0.1
port = $B_REG
tls_port = $B_REG_TLS
CONF
}
b_conf "http://127.0.0.1:$REG_TLS_PORT" >"$QUINCE_TMP/b/bad.conf"
"$VERIFIER" --config "$QUINCE_TMP/b/bad.conf" >"$W/bad.out" 2>&1; rc=$?
if [ $rc = 2 ] && grep -q "registrar_url" "$W/bad.out"; then pass "a plain-HTTP registrar_url is a configuration error"
else fail "a plain-HTTP registrar_url is a configuration error" "exit $rc: $(tail -2 "$W/bad.out")"; fi

b_conf "https://127.0.0.1:$REG_TLS_PORT/" >"$QUINCE_TMP/b/verifier.conf"
"$VERIFIER" --config "$QUINCE_TMP/b/verifier.conf" >>"$QUINCE_TMP/b/verifier.log" 2>&1 &
RIG_PIDS+=("$!")
wait_http "https://127.0.0.1:$B_CV/version" 20 || { fail "verifier B starts" "$(tail -5 "$QUINCE_TMP/b/verifier.log")"; exit 0; }
pass "verifier B starts with an external registrar"

# The tenant reads the record from A's registrar and adds the agent to B.
T() { "$TENANT" -vp "$B_CV" -rp "$REG_TLS_PORT" -u "$UUID" "$@"; }
T -c add --allowlist "$W/allowlist.txt" >"$W/out" 2>"$W/err"; rc=$?
[ $rc = 0 ] && pass "add to B: the agent is known only to A's registrar" || fail "add to B" "exit $rc: $(cat "$W/err")"
ok=0
for _ in $(seq 100); do
  T -c cvstatus >"$W/st" 2>&1 && grep -q "attestation PASS" "$W/st" && { ok=1; break; }
  sleep 0.2
done
[ $ok = 1 ] && pass "B attests the agent" || fail "B attests the agent" "$(cat "$W/st")"
b_reg=$(vcurl "https://127.0.0.1:$B_REG_TLS/v2.6/agents/")
if printf '%s' "$b_reg" | grep -q '"uuids": *\[\]'; then pass "B's own registrar never knew the agent"
else fail "B's own registrar never knew the agent" "$b_reg"; fi

# A forged ak_tpm in an add request is ignored: the registrar's AK is used.
T -c delete >/dev/null 2>&1
body=$(python3 -c 'import json; print(json.dumps({"cloudagent_ip":"127.0.0.1","cloudagent_port":'"$AGENT_PORT_a1"',"tpm_policy":"{}","runtime_policy":"","runtime_policy_name":"","ima_sign_verification_keys":"","mb_refstate":None,"mb_policy":None,"mb_policy_name":"","ak_tpm":"AAAA","mtls_cert":None,"accept_tpm_hash_algs":["sha256"],"accept_tpm_encryption_algs":["ecc","rsa"],"accept_tpm_signing_algs":["ecschnorr","rsassa","ecdsa"],"metadata":"{}","revocation_key":"","supported_version":"2.2","v":None}))')
code=$(vcurl -o "$W/add.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d "$body" "https://127.0.0.1:$B_CV/v2.6/agents/$UUID")
if [ "$code" = 200 ] && grep -q "ak_tpm in the add request differs from the registrar's; using the registrar's" "$QUINCE_TMP/b/verifier.log"; then
  pass "a forged ak_tpm is ignored"
else fail "a forged ak_tpm is ignored" "HTTP $code $(cat "$W/add.body")"; fi
vcurl -o /dev/null -X DELETE "https://127.0.0.1:$B_CV/v2.6/agents/$UUID"

# Unknown at the external registrar: 404, as with the own registrar.
code=$(vcurl -o "$W/add.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d "$body" "https://127.0.0.1:$B_CV/v2.6/agents/nobody-here")
[ "$code" = 404 ] && grep -q "not registered" "$W/add.body" && pass "unknown at the external registrar: 404" \
  || fail "unknown at the external registrar: 404" "HTTP $code $(cat "$W/add.body")"

# The external registrar down: 502 naming it, and a log line.
stop_verifier
code=$(vcurl -o "$W/add.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d "$body" "https://127.0.0.1:$B_CV/v2.6/agents/$UUID")
if [ "$code" = 502 ] && grep -q "cannot read agent $UUID from the registrar" "$W/add.body" &&
   grep -q "agent $UUID not added: the registrar at https://127.0.0.1:$REG_TLS_PORT cannot be reached" "$QUINCE_TMP/b/verifier.log"; then
  pass "an unreachable external registrar: 502 with the reason"
else fail "an unreachable external registrar: 502 with the reason" "HTTP $code $(cat "$W/add.body")"; fi
