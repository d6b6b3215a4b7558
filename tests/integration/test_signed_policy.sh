#!/usr/bin/env bash
# Signed runtime policies end to end: the "isolated machine, sign, transfer, verify" workflow with
# quince-tenant's offline tools (create-policy, sign-policy, verify-policy, diff-policy), then the
# verifier's answers with Keylime's codes and messages, first with require_allow_list_signatures
# off (unsigned accepted, a signed policy checked when a key comes with it) and then on (unsigned
# 400, no key 401, bad signature 401), an agent attested with a signed policy and an IMA
# signature key fetched from a loopback URL (an evmctl-signed ima-sig entry outside the allowlist
# passes; a missing, oversized or non-key download is refused), the stored envelope
# verified again after a restart, and refused once its stored key no longer matches.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3 openssl sqlite3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00001
IMA=$QUINCE_TMP/ima
LIST=$IMA/ascii_runtime_measurements
W=$QUINCE_TMP/work
SIGDATA=$QUINCE_ROOT/tests/data/imasig
mkdir -p "$IMA" "$W"
: >"$W/empty.conf"
export QUINCE_CONFIG=$W/empty.conf
cd "$W" || exit 1
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 30 --seed 11 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }

b64() { base64 -w0 "$1"; }
# post_policy NAME POLICY_FILE [KEY_FILE]: POSTs (PUTs with METHOD=PUT) to /allowlists/NAME;
# sets CODE and BODY.
post_policy() {
  local key=""
  [ -n "${3:-}" ] && key=$(b64 "$3")
  python3 - "$1" "$2" "$key" >"$W/req.json" <<'PY'
import base64, json, sys
print(json.dumps({"runtime_policy": base64.b64encode(open(sys.argv[2], "rb").read()).decode(),
                  "tpm_policy": None, "runtime_policy_key": sys.argv[3]}))
PY
  BODY=$(vcurl -X "${METHOD:-POST}" -H 'Content-Type: application/json' --data-binary @"$W/req.json" \
         -w '\n%{http_code}' "$CV_URL/v2.6/allowlists/$1")
  CODE=$(printf '%s' "$BODY" | tail -1)
  BODY=$(printf '%s' "$BODY" | sed '$d')
}
# expect_post NAME WANT_CODE WANT_TEXT POLICY [KEY]
expect_post() {
  local name=$1 code=$2 text=$3; shift 3
  post_policy "p$RANDOM" "$@"
  if [ "$CODE" != "$code" ]; then fail "$name" "HTTP $CODE, wanted $code: $BODY"
  elif [ -n "$text" ] && ! printf '%s' "$BODY" | grep -qF -- "$text"; then fail "$name" "missing '$text': $BODY"
  else pass "$name"; fi
}
restart_verifier() {
  stop_verifier
  "$VERIFIER" --config "$QUINCE_TMP/verifier.conf" >>"$QUINCE_TMP/verifier.log" 2>&1 &
  VERIFIER_PID=$!
  RIG_PIDS+=("$VERIFIER_PID")
  wait_http "$CV_URL/version" 20
}
# wait_log PATTERN SECS: waits until the verifier log holds PATTERN (fixed string).
wait_log() {
  local i
  for i in $(seq $(($2 * 10))); do grep -qF -- "$1" "$QUINCE_TMP/verifier.log" && return 0; sleep 0.1; done
  return 1
}

# ---- the isolated machine: build, sign, check -----------------------------------------------------
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkey -out signer.key
openssl pkey -in signer.key -pubout -out signer.pub
openssl ecparam -name secp384r1 -genkey -noout 2>/dev/null | openssl pkey -pubout -out other.pub
expect_rc "create-policy from the allowlist and excludes" 0 \
  "$TENANT" create-policy --allowlist "$IMA/allowlist.txt" --excludelist "$IMA/excludes.txt" -o policy.json
expect_rc "sign-policy" 0 "$TENANT" sign-policy --key signer.key policy.json policy.signed
expect_rc "verify-policy: good signature" 0 "$TENANT" verify-policy --key signer.pub policy.signed
expect_rc "verify-policy: another key" 1 "$TENANT" verify-policy --key other.pub policy.signed
expect_grep "verify-policy says why" "Runtime policy failed DSSE signature verification!" "$LAST_OUT"
# An attacker adds a path on the way: the payload changes, the signature does not.
python3 - policy.signed tampered.signed <<'PY'
import base64, json, sys
e = json.load(open(sys.argv[1]))
p = json.loads(base64.b64decode(e["payload"]))
p["digests"]["/usr/bin/backdoor"] = ["aa" * 32]
e["payload"] = base64.b64encode(json.dumps(p).encode()).decode()
json.dump(e, open(sys.argv[2], "w"))
PY
expect_rc "verify-policy: tampered payload" 1 "$TENANT" verify-policy --key signer.pub tampered.signed
expect_rc "diff-policy shows the tampering" 1 "$TENANT" diff-policy policy.signed tampered.signed
expect_grep "diff-policy: the added path" "+ /usr/bin/backdoor" "$LAST_OUT"
expect_grep "diff-policy: the count" "1 added, 0 removed, 0 changed" "$LAST_OUT"

# ---- verifier with require_allow_list_signatures off ---------------------------------------------
start_verifier || { fail "verifier starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 0; }
expect_post "not required: unsigned policy accepted" 201 "" policy.json
expect_post "not required: signed policy without a key accepted" 201 "" policy.signed
expect_post "not required: a given key is still checked" 401 "Runtime policy failed DSSE signature verification!" \
  policy.signed other.pub
expect_post "not required: a key with an unsigned policy" 400 "Runtime policy is not signed!" policy.json signer.pub
T() { "$TENANT" -vp "$CV_PORT" -rp "$REG_TLS_PORT" "$@"; }
expect_rc "tenant: unsigned addruntimepolicy" 0 T -c addruntimepolicy --runtime-policy policy.json --runtime-policy-name plain

# ---- verifier with require_allow_list_signatures on ----------------------------------------------
sed -i 's/^log_level = .*/&\nrequire_allow_list_signatures = true/' "$QUINCE_TMP/verifier.conf"
restart_verifier || { fail "verifier restarts with signatures required"; exit 0; }
expect_post "required: unsigned policy refused" 400 "Runtime policy is not signed!" policy.json
expect_post "required: no key" 401 "Runtime policy signature verification required but no key was given!" policy.signed
expect_post "required: wrong key" 401 "Runtime policy failed DSSE signature verification!" policy.signed other.pub
expect_post "required: tampered payload" 401 "Runtime policy failed DSSE signature verification!" tampered.signed signer.pub
expect_post "required: signed with its key" 201 "" policy.signed signer.pub
post_policy signed1 policy.signed signer.pub
METHOD=PUT post_policy signed1 tampered.signed signer.pub
[ "$CODE" = 401 ] && pass "required: update with a tampered policy refused" || fail "required: update with a tampered policy refused" "$CODE $BODY"
METHOD=PUT post_policy signed1 policy.json
[ "$CODE" = 400 ] && pass "required: update with an unsigned policy refused" || fail "required: update with an unsigned policy refused" "$CODE $BODY"
METHOD=PUT post_policy signed1 policy.signed signer.pub
[ "$CODE" = 201 ] && pass "required: update with a signed policy" || fail "required: update with a signed policy" "$CODE $BODY"
GOT=$(vcurl "$CV_URL/v2.6/allowlists/signed1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"]["runtime_policy"])')
if [ "$GOT" = "$(cat policy.signed)" ]; then pass "the verifier stores the envelope"; else fail "the verifier stores the envelope" "${GOT:0:80}"; fi
expect_rc "tenant: unsigned policy refused by the verifier" 1 T -c addruntimepolicy --runtime-policy policy.json --runtime-policy-name p-uns
expect_grep "tenant: says why" "Runtime policy is not signed!" "$LAST_OUT"
nbad=$(grep -c "Runtime policy failed DSSE signature verification" "$QUINCE_TMP/verifier.log")
expect_rc "tenant: checks the signature before upload" 2 T -c addruntimepolicy --runtime-policy tampered.signed \
  --runtime-policy-sig-key signer.pub --runtime-policy-name p-bad
expect_grep "tenant: names the bad signature" "Runtime policy failed DSSE signature verification!" "$LAST_OUT"
# The verifier logs every refused signature: no new line means the tenant never sent it.
expect_rc "tenant: signed addruntimepolicy" 0 T -c addruntimepolicy --runtime-policy policy.signed \
  --runtime-policy-sig-key signer.pub --runtime-policy-name p-signed
if [ "$(grep -c "Runtime policy failed DSSE signature verification" "$QUINCE_TMP/verifier.log")" = "$nbad" ]; then
  pass "a bad envelope never reaches the verifier"
else
  fail "a bad envelope never reaches the verifier"
fi

# ---- IMA signature keys fetched over HTTP (loopback) ------------------------------------------------
mkdir -p "$W/www" && cp "$SIGDATA/signer.pub" "$W/www/signer.pub" && head -c 70000 /dev/zero >"$W/www/big" \
  && printf 'not a key\n' >"$W/www/junk"
HPORT=$(free_port)
(cd "$W/www" && exec python3 -m http.server --bind 127.0.0.1 "$HPORT") >"$W/http.log" 2>&1 &
RIG_PIDS+=("$!")
KURL=http://127.0.0.1:$HPORT
wait_http "$KURL/signer.pub" 20 || fail "key server up"
expect_rc "key URL: 404 refused" 1 T -c add -u "$UUID" --runtime-policy policy.signed --runtime-policy-sig-key signer.pub \
  --signature-verification-key-url "$KURL/missing.pub"
expect_grep "key URL: 404 named" "cannot fetch signature verification key $KURL/missing.pub: 404" "$LAST_OUT"
expect_rc "key URL: over 64 KiB refused" 1 T -c add -u "$UUID" --runtime-policy policy.signed --runtime-policy-sig-key signer.pub \
  --signature-verification-key-url "$KURL/big"
expect_grep "key URL: size bound named" "response over" "$LAST_OUT"
expect_rc "key URL: not a key" 2 T -c add -u "$UUID" --runtime-policy policy.signed --runtime-policy-sig-key signer.pub \
  --signature-verification-key-url "$KURL/junk"
expect_grep "key URL: says it is not a key" "signature verification key from $KURL/junk" "$LAST_OUT"

# Keylime's side of the format: openssl alone checks sign-policy's signature over the PAE, and
# the keyid is the SHA-256 of the public key's PEM (Keylime's ecdsa signer).
python3 - policy.signed "$W" <<'PY'
import base64, json, sys
e = json.load(open(sys.argv[1])); d = sys.argv[2]
p = base64.b64decode(e["payload"]); t = e["payloadType"].encode()
open(d + "/pae.bin", "wb").write(b"DSSEv1 %d %s %d %s" % (len(t), t, len(p), p))
open(d + "/sig.der", "wb").write(base64.b64decode(e["signatures"][0]["sig"]))
open(d + "/keyid", "w").write(e["signatures"][0]["keyid"])
PY
expect_rc "openssl verifies sign-policy's ECDSA-SHA256 over the PAE" 0 \
  openssl dgst -sha256 -verify signer.pub -signature "$W/sig.der" "$W/pae.bin"
[ "$(cat "$W/keyid")" = "$(sha256sum <signer.pub | cut -c1-64)" ] && pass "keyid = sha256 of the PEM public key" \
  || fail "keyid = sha256 of the PEM public key" "$(cat "$W/keyid")"

# ---- an agent attested with the signed policy and an IMA signature key ----------------------------
# The evmctl-signed entry for /usr/bin/good is not in the allowlist: only its signature lets it pass.
sed -n 2p "$SIGDATA/list.txt" >>"$LIST"
start_swtpm tpm
emulate "$TCTI_tpm" "$LIST" || fail "emulator replays the list"
start_agent a1 "$UUID" "$TCTI_tpm" "$LIST"
wait_http "$(AG_URL a1)/version" 30 || { fail "agent up" "$(tail -3 "$QUINCE_TMP/a1/agent.log")"; exit 0; }
expect_rc "tenant: add with a signed policy and an IMA key from a URL" 0 T -c add -u "$UUID" -t 127.0.0.1 \
  -tp "$AGENT_PORT_a1" --runtime-policy policy.signed --runtime-policy-sig-key signer.pub \
  --signature-verification-key-url "$KURL/signer.pub"
status_has() {
  local i
  for i in $(seq $(($2 * 5))); do
    STATUS=$(T -c status -u "$UUID" 2>&1)
    printf '%s' "$STATUS" | grep -qF -- "$1" && return 0
    sleep 0.2
  done
  return 1
}
N=$(wc -l <"$LIST")
if status_has "$N IMA entries verified" 40; then pass "signed policy + signed ima-sig entry attested"; else fail "signed policy + signed ima-sig entry attested" "$STATUS"; fi
if printf '%s' "$STATUS" | grep -qF "Get Quote"; then pass "agent in Get Quote"; else fail "agent in Get Quote" "$STATUS"; fi

# The stored envelope is checked again when a restarted verifier loads it.
n0=$(grep -c "Runtime policy passed DSSE signature verification" "$QUINCE_TMP/verifier.log")
restart_verifier || fail "verifier restarts"
for _ in $(seq 200); do
  n1=$(grep -c "Runtime policy passed DSSE signature verification" "$QUINCE_TMP/verifier.log")
  [ "$n1" -gt "$n0" ] && break; sleep 0.1
done
if [ "$n1" -gt "$n0" ]; then pass "stored envelope verified again on load"; else fail "stored envelope verified again on load"; fi
if status_has "Get Quote" 20; then pass "agent still attested after the restart"; else fail "agent still attested after the restart" "$STATUS"; fi

# A stored key that no longer matches the envelope: the policy is refused when loaded.
stop_verifier
sqlite3 "$QUINCE_TMP/verifier/db.sqlite" "UPDATE policies SET sign_key = '$(b64 other.pub)' WHERE name = '$UUID'"
restart_verifier || fail "verifier restarts after the key was changed"
if wait_log "stored runtime policy $UUID: Runtime policy failed DSSE signature verification!" 30; then
  pass "a stored envelope that fails is refused on load"
else
  fail "a stored envelope that fails is refused on load" "$(tail -3 "$QUINCE_TMP/verifier.log")"
fi
if status_has "Failed" 20; then pass "its agent fails"; else fail "its agent fails" "$STATUS"; fi
