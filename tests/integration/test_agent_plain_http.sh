#!/usr/bin/env bash
# An agent registered without an mTLS certificate (mtls_cert "disabled", as Keylime agents with
# enable_agent_mtls = False register): the tenant refuses it by default, manages it with
# --agent-plain-http or [tenant] agent_mtls = false while still talking TLS to the verifier and the
# registrar, warns every time, and the verifier (allow_agent_plain_http) attests it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
UUID=plain-agent-1
IMA=$QUINCE_TMP/ima
LIST=$IMA/ascii_runtime_measurements
W=$QUINCE_TMP/work
mkdir -p "$IMA" "$W"
: >"$W/empty.conf"
printf '[tenant]\nagent_mtls = false\n' >"$W/plain.conf"
export QUINCE_CONFIG=$W/empty.conf
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 20 --seed 9 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }
cp "$IMA/allowlist.txt" "$W/allowlist.txt"

export QUOTE_INTERVAL=0.3
VERIFIER_EXTRA="allow_agent_plain_http = true"
start_swtpm tpm ekcert
emulate "$TCTI_tpm" "$LIST" || fail "emulator replays the list"
start_verifier || { fail "verifier starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 0; }
start_agent a1 "$UUID" "$TCTI_tpm" "$LIST" "insecure = true"
if wait_http "http://127.0.0.1:$AGENT_PORT_a1/version" 30; then pass "plain-HTTP agent up"
else fail "plain-HTTP agent up" "$(tail -3 "$QUINCE_TMP/a1/agent.log")"; exit 0; fi
for _ in $(seq 100); do vcurl "$REG_URL/v2.1/agents/$UUID" | grep -q '"disabled"' && break; sleep 0.1; done
if vcurl "$REG_URL/v2.1/agents/$UUID" | grep -q '"mtls_cert": *"disabled"'; then pass "registered with mtls_cert disabled"
else fail "registered with mtls_cert disabled" "$(vcurl "$REG_URL/v2.1/agents/$UUID")"; fi

T() { "$TENANT" -vp "$CV_PORT" -rp "$REG_TLS_PORT" -u "$UUID" "$@"; }

T -c add --allowlist "$W/allowlist.txt" >"$W/out" 2>"$W/err"; rc=$?
if [ $rc = 1 ] && grep -q "registered without an mTLS certificate" "$W/err" && grep -q -- "--agent-plain-http" "$W/err"; then
  pass "refused by default, and the message names the way out"
else fail "refused by default, and the message names the way out" "exit $rc: $(cat "$W/err")"; fi

T -c add --allowlist "$W/allowlist.txt" --agent-plain-http >"$W/out" 2>"$W/err"; rc=$?
if [ $rc = 0 ]; then pass "add with --agent-plain-http"; else fail "add with --agent-plain-http" "exit $rc: $(cat "$W/err")"; fi
expect_grep "the add warns" "talking to it over plain HTTP" "$(cat "$W/err")"
expect_grep "the warning says the servers stay on TLS" "verifier and registrar are still reached over TLS" "$(cat "$W/err")"
if grep -q "insecure" "$W/err"; then fail "no insecure mode" "$(cat "$W/err")"; else pass "no insecure mode"; fi

ok=0
for _ in $(seq 100); do
  T -c status >"$W/st" 2>/dev/null && grep -q "attestation PASS" "$W/st" && { ok=1; break; }
  sleep 0.2
done
[ $ok = 1 ] && pass "the verifier attests it over plain HTTP" || fail "the verifier attests it over plain HTTP" "$(cat "$W/st")"

QUINCE_CONFIG=$W/plain.conf T -c update --allowlist "$W/allowlist.txt" >"$W/out" 2>"$W/err"; rc=$?
if [ $rc = 0 ] && grep -q "talking to it over plain HTTP" "$W/err"; then pass "[tenant] agent_mtls = false does the same, warned again"
else fail "[tenant] agent_mtls = false does the same, warned again" "exit $rc: $(cat "$W/err")"; fi
T -c delete >"$W/out" 2>"$W/err"; rc=$?
[ $rc = 0 ] && pass "delete" || fail "delete" "exit $rc: $(cat "$W/err")"

printf '[tenant]\nagent_mtls = maybe\n' >"$W/bad.conf"
QUINCE_CONFIG=$W/bad.conf T -c status >/dev/null 2>"$W/err"; rc=$?
if [ $rc = 2 ] && grep -q "agent_mtls" "$W/err"; then pass "a bad agent_mtls value is a config error"
else fail "a bad agent_mtls value is a config error" "exit $rc: $(cat "$W/err")"; fi
