#!/bin/bash
# No silent loss of checking: an add/update that would check nothing is refused and names
# --no-runtime-policy; an empty allowlist or policy needs --allow-empty; -c update without a
# policy keeps the agent's current one (and its mask); -c status says "IMA: not checked" when
# nothing is checked.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00013
IMA=$QUINCE_TMP/ima
LIST=$IMA/ascii_runtime_measurements
W=$QUINCE_TMP/work
mkdir -p "$IMA" "$W"
: >"$W/empty.conf"
export QUINCE_CONFIG=$W/empty.conf
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 20 --seed 7 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }
cd "$W" || exit 1
cp "$IMA/allowlist.txt" allowlist.txt
: >empty.txt
printf '# only a comment\n' >comment-only.txt

export QUOTE_INTERVAL=0.3
export MAX_RETRIES=200          # a stopped agent stays in "Get Quote (retry)" for a while
export AGENT_TPM_TIMEOUT_MS=${AGENT_TPM_TIMEOUT_MS:-30000}   # a loaded machine must not fail the agent's start
start_swtpm tpm ekcert
emulate "$TCTI_tpm" "$LIST" || fail "emulator replays the list"
start_verifier || { fail "verifier starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 0; }
AMPORT=$(free_port)
start_agent a1 "$UUID" "$TCTI_tpm" "$LIST" "metrics_listen = 127.0.0.1:$AMPORT"
wait_http "$(AG_URL a1)/version" 30 || { fail "agent up" "$(tail -3 "$QUINCE_TMP/a1/agent.log")"; exit 0; }
# Refusals made before any request (ports 1: nothing listens there).
T0() { "$TENANT" -vp 1 -rp 1 "$@"; }
expect_rc "add without any policy: refused, exit 2" 2 T0 -c add -u "$UUID"
expect_grep "the refusal names --no-runtime-policy" "--no-runtime-policy to attest it without IMA checks" "$LAST_OUT"
expect_rc "empty allowlist refused" 2 T0 -c add -u "$UUID" --allowlist empty.txt
expect_grep "empty allowlist: says why and names --allow-empty" "allowlist empty.txt has no entries, so nothing would be checked; give --allow-empty" "$LAST_OUT"
expect_rc "comment-only allowlist (/dev/null alike) refused" 2 T0 -c add -u "$UUID" --allowlist comment-only.txt
expect_rc "allowlist /dev/null refused" 2 T0 -c add -u "$UUID" --allowlist /dev/null
expect_rc "addruntimepolicy with an empty allowlist refused" 2 T0 -c addruntimepolicy --runtime-policy-name e --allowlist empty.txt

T() { "$TENANT" -vp "$CV_PORT" -rp "$REG_TLS_PORT" "$@"; }
vget() { vcurl "https://127.0.0.1:$CV_PORT/v2.1/agents/$UUID"; }

expect_rc "add with an allowlist" 0 T -c add -u "$UUID" --allowlist allowlist.txt
mask0=$(vget | python3 -c 'import json,sys; print(json.loads(json.load(sys.stdin)["results"]["tpm_policy"])["mask"])')
[ "$mask0" = 0x400 ] && pass "mask 0x400 after the add" || fail "mask after add" "$mask0"
n0=$(vcurl "https://127.0.0.1:$CV_PORT/v2.1/allowlists/$UUID" | python3 -c 'import json,sys; print(len(json.loads(json.load(sys.stdin)["results"]["runtime_policy"])["digests"]))')

# update without a policy keeps it.
expect_rc "update without a policy" 0 T -c update -u "$UUID"
expect_grep "update says the policy was kept" "kept" "$LAST_OUT"
mask1=$(vget | python3 -c 'import json,sys; print(json.loads(json.load(sys.stdin)["results"]["tpm_policy"])["mask"])')
[ "$mask1" = 0x400 ] && pass "update keeps mask 0x400" || fail "update keeps the mask" "$mask1"
n1=$(vcurl "https://127.0.0.1:$CV_PORT/v2.1/allowlists/$UUID" | python3 -c 'import json,sys; print(len(json.loads(json.load(sys.stdin)["results"]["runtime_policy"])["digests"]))')
[ -n "$n0" ] && [ "$n0" = "$n1" ] && [ "$n1" -gt 0 ] && pass "update keeps the policy's $n1 paths" || fail "update keeps the policy" "$n0 -> $n1"
out=$(T -c status -u "$UUID" 2>&1)
expect_grep "status: IMA checked" "IMA:       checked against runtime policy" "$out"

# Explicitly without IMA: allowed, and status says so.
expect_rc "update --no-runtime-policy" 0 T -c update -u "$UUID" --no-runtime-policy
out=$(T -c status -u "$UUID" 2>&1)
expect_grep "status: IMA not checked" "IMA:       not checked" "$out"
# Now an update without a policy has nothing to keep: refused again.
expect_rc "update with nothing to keep: refused" 2 T -c update -u "$UUID"
expect_grep "that refusal names --no-runtime-policy" "--no-runtime-policy" "$LAST_OUT"
expect_rc "empty allowlist accepted with --allow-empty" 0 T -c update -u "$UUID" --allowlist empty.txt --allow-empty

# --json: stdout is one JSON document in Keylime's envelope, the text goes to stderr.
expect_rc "update back to the allowlist" 0 T -c update -u "$UUID" --allowlist allowlist.txt
for _ in $(seq 150); do T -c status -u "$UUID" 2>/dev/null | grep -q "Get Quote (state 3)" && break; sleep 0.2; done
out=$(T --json -c cvlist 2>/dev/null)
jq -e --arg u "$UUID" '.code == 200 and (.results.uuids | flatten | index($u) != null)' <<<"$out" >/dev/null \
  && pass "--json cvlist: Keylime's shape" || fail "--json cvlist" "$out"
out=$(T --json -c reglist 2>/dev/null)
jq -e --arg u "$UUID" '.results.uuids | index($u) != null' <<<"$out" >/dev/null && pass "--json reglist" || fail "--json reglist" "$out"
out=$(T --json -c status -u "$UUID" 2>/dev/null)
jq -e '.results.operational_state == 3 and .results.attestation_status == "PASS" and (.results | has("tpm_policy"))' <<<"$out" >/dev/null \
  && pass "--json status: the verifier's agent object" || fail "--json status" "$out"
out=$(T --json -c listruntimepolicy 2>/dev/null)
jq -e '.results | has("runtimepolicy names")' <<<"$out" >/dev/null && pass "--json listruntimepolicy" || fail "--json listruntimepolicy" "$out"
out=$(T --json -c status -u nosuch-agent 2>/dev/null); rc=$?
[ $rc = 1 ] && jq -e '.code == 404' <<<"$out" >/dev/null && pass "--json on an error: exit 1, the 404 answer" || fail "--json error" "rc $rc: $out"

# The agent's metrics: quotes served, TPM time, IMA entries and bytes sent.
m=$(curl -s "http://127.0.0.1:$AMPORT/metrics")
grep -Eq '^quince_agent_quotes_total\{kind="integrity"\} [1-9]' <<<"$m" && pass "agent metrics: integrity quotes" || fail "agent metrics: quotes" "$(grep quotes <<<"$m")"
grep -Eq '^quince_agent_quotes_total\{kind="identity"\} [1-9]' <<<"$m" && pass "agent metrics: identity quotes" || fail "agent metrics: identity" "$(grep quotes <<<"$m")"
grep -Eq '^quince_agent_tpm_seconds_count [1-9]' <<<"$m" && pass "agent metrics: TPM latency histogram" || fail "agent metrics: tpm" "$(grep tpm <<<"$m")"
grep -Eq '^quince_agent_ima_entries_served_total [1-9]' <<<"$m" && pass "agent metrics: IMA entries served" || fail "agent metrics: entries" "$(grep ima <<<"$m")"

# An agent that stops answering is retried: status says so, with the count and the error.
eval "apid=\$AGENT_PID_a1"
kill "$apid"
ok=0
for _ in $(seq 150); do
  out=$(T -c status -u "$UUID" 2>&1)
  grep -Eq "Get Quote \(retry\), [0-9]+ of 200, last error .*(refused|connect)" <<<"$out" && { ok=1; break; }
  sleep 0.2
done
[ $ok = 1 ] && pass "status of an agent in retry: 'Get Quote (retry), N of 200, last error ...'" || fail "retry status" "$out"
expect_grep "retry is not PASS" "attestation not confirmed (retrying)" "$out"
