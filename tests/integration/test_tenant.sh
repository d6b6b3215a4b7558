#!/usr/bin/env bash
# quince-tenant's keylime_tenant command line end to end, through the CLI only, on a real rig
# (swtpm + ima_gen list + ima-emulator + quince-verifier + quince-agent): the seed's option set
# with single-dash long options and an upper-case uuid, status while attesting, an unknown script
# failing the agent (status and verifier log), an excluded path passing, a modified allowed file,
# -c update bringing a failed agent back, delete, reglist/regstatus/cvlist, 'default' from the
# configuration file, runtime-policy commands, and every error path's exit status and one-line
# message (verifier or registrar down, unknown uuid, bad files, a policy over the upload limit,
# refused options, bad payload files; payload delivery itself is in test_payload.sh).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

UUID_UP=D432FBB3-D2F1-4A97-9EF7-75BD81C00000
UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00000
IMA=$QUINCE_TMP/ima
LIST=$IMA/ascii_runtime_measurements
W=$QUINCE_TMP/work
mkdir -p "$IMA" "$W"
# A private (empty) configuration: nothing from /etc/quince leaks in.
: >"$W/empty.conf"
export QUINCE_CONFIG=$W/empty.conf

"$TOOLS/ima_gen" --out-dir "$IMA" --entries 40 --seed 5 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }
N0=$(wc -l <"$LIST")
cd "$W" || exit 1
cp "$IMA/allowlist.txt" allowlist.txt
printf '# seed excludes\n/tmp/.*\n/var/log/.*\n' >excludes.txt

export QUOTE_INTERVAL=0.3
start_swtpm tpm ekcert
emulate "$TCTI_tpm" "$LIST" || fail "emulator replays the list"
start_verifier || { fail "verifier starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 0; }
start_agent a1 "$UUID_UP" "$TCTI_tpm" "$LIST"
if wait_http "$(AG_URL a1)/version" 30; then pass "agent up"; else fail "agent up" "$(tail -3 "$QUINCE_TMP/a1/agent.log")"; exit 0; fi

# The tenant talks TLS to the verifier and to the registrar's TLS port (its CA through
# QUINCE_TENANT_TLS_DIR, set by lib_rig.sh) and pins the agent's registered certificate.
T() { "$TENANT" -vp "$CV_PORT" -rp "$REG_TLS_PORT" "$@"; }
VLOG=$QUINCE_TMP/verifier.log

# status_has PATTERN SECS [tenant args]: waits until `-c status` output contains PATTERN.
status_has() {
  local pat=$1 secs=$2; shift 2
  local i
  for i in $(seq $((secs * 5))); do
    STATUS=$(T -c status -u "$UUID" "$@" 2>&1)
    printf '%s' "$STATUS" | grep -qF -- "$pat" && return 0
    sleep 0.2
  done
  return 1
}
# verified_all SECS: waits until the verifier has checked every line of the list.
verified_all() {
  local n; n=$(wc -l <"$LIST")
  status_has "$n IMA entries verified" "$1"
}
# expect_err NAME RC PATTERN CMD...: exit status RC, exactly one line on stderr starting with
# "quince-tenant: " and containing PATTERN, nothing on stdout.
expect_err() {
  local name=$1 want=$2 pat=$3; shift 3
  "$@" >"$W/out" 2>"$W/err"; local rc=$?
  local nl; nl=$(wc -l <"$W/err")
  if [ "$rc" != "$want" ]; then fail "$name" "exit $rc, wanted $want: $(tr '\n' ' ' <"$W/err")"
  elif [ "$nl" != 1 ]; then fail "$name" "$nl lines on stderr: $(tr '\n' '|' <"$W/err")"
  elif ! grep -q '^quince-tenant: ' "$W/err"; then fail "$name" "no prefix: $(cat "$W/err")"
  elif ! grep -qF -- "$pat" "$W/err"; then fail "$name" "missing '$pat': $(cat "$W/err")"
  elif [ -s "$W/out" ]; then fail "$name" "stdout: $(head -2 "$W/out")"
  else pass "$name"; fi
}

# ---- the seed's option set, verbatim, with single-dash ports ----------------------------------------
out=$("$TENANT" -v 127.0.0.1 -t 127.0.0.1 -vp "$CV_PORT" -rp "$REG_TLS_PORT" -tp "$AGENT_PORT_a1" \
      --uuid "$UUID_UP" --allowlist allowlist.txt --exclude excludes.txt 2>"$W/add.err"); rc=$?
if [ $rc = 0 ]; then pass "seed add command"; else fail "seed add command" "exit $rc: $(cat "$W/add.err")"; fi
expect_grep "add says what it did" "agent $UUID_UP added to the verifier at 127.0.0.1:$CV_PORT (runtime policy: $N0 paths, 2 excludes)" "$out"
[ ! -s "$W/add.err" ] && pass "add: nothing on stderr" || fail "add: nothing on stderr" "$(cat "$W/add.err")"
if status_has "Get Quote (state 3)" 20; then pass "agent reaches Get Quote"; else fail "agent reaches Get Quote" "$STATUS"; fi
expect_grep "status: first line" "agent $UUID: Get Quote (state 3)" "$STATUS"
expect_grep "status: attestation PASS" "attestation PASS" "$STATUS"
expect_grep "status: registrar side" "registered and active at 127.0.0.1:$REG_TLS_PORT, contact 127.0.0.1:$AGENT_PORT_a1" "$STATUS"
expect_grep "status: runtime policy named after the agent (as added)" "runtime policy $UUID_UP" "$STATUS"
if verified_all 20; then pass "every entry verified"; else fail "every entry verified" "$STATUS"; fi

# Upper-case and lower-case uuids name the same agent; the tenant names it as given, the verifier's
# list as it was added.
out=$(T -c status -u "$UUID_UP" 2>&1)
expect_grep "status with the upper-case uuid" "agent $UUID_UP: Get Quote" "$out"
out=$(T -c cvlist 2>&1)
[ "$out" = "$UUID_UP" ] && pass "cvlist: the id as added" || fail "cvlist: the id as added" "$out"
out=$(T -c cvstatus -u "$UUID" 2>&1)
expect_grep "cvstatus" "agent $UUID: Get Quote" "$out"

# ---- an excluded path passes ------------------------------------------------------------------------
printf 'scratch\n' >"$W/scratch"
"$TOOLS/ima_gen" --out-dir "$IMA" --append-file "$W/scratch" --name /tmp/build/scratch.sh >/dev/null 2>&1
emulate "$TCTI_tpm" "$LIST"
if verified_all 20 && printf '%s' "$STATUS" | grep -qF "Get Quote (state 3)"; then pass "an excluded path (/tmp/.*) passes"
else fail "an excluded path (/tmp/.*) passes" "$STATUS"; fi

# ---- an unknown script fails the agent ----------------------------------------------------------------
printf '#!/bin/sh\necho evil\n' >"$W/evil.sh"
"$TOOLS/ima_gen" --out-dir "$IMA" --append-file "$W/evil.sh" --name /root/evil.sh >/dev/null 2>&1
EVIL_ENTRY=$(( $(wc -l <"$LIST") - 1 ))
emulate "$TCTI_tpm" "$LIST"
if status_has "Invalid Quote (state 9)" 20; then pass "evil script: Invalid Quote"; else fail "evil script: Invalid Quote" "$STATUS"; fi
expect_grep "status: Failed attestation" "attestation FAIL" "$STATUS"
expect_grep "status: the fnf entry and why" "failure: entry $EVIL_ENTRY: /root/evil.sh: File not found in allowlist: /root/evil.sh [ima.validation.ima-ng.not_in_allowlist]" "$STATUS"
expect_grep "status: last event" "last event: ima.validation.ima-ng.not_in_allowlist" "$STATUS"
V=$(cat "$VLOG")
expect_grep "verifier log: fnf line" "File not found in allowlist: /root/evil.sh" "$V"
if grep -qE "IMA ERRORS: template-hash 0 fnf 1 hash 0 good [0-9]+" "$VLOG"; then pass "verifier log: IMA ERRORS summary"; else fail "verifier log: IMA ERRORS summary"; fi
expect_grep "verifier log: polling stops" "agent $UUID failed, stopping polling" "$V"

# ---- -c update with an allowlist that has the script brings it back ------------------------------------
cp allowlist.txt allowlist2.txt
echo "$(sha256sum <"$W/evil.sh" | cut -d' ' -f1)  /root/evil.sh" >>allowlist2.txt
out=$(T -v 127.0.0.1 -t 127.0.0.1 -c update -u "$UUID_UP" --allowlist allowlist2.txt --exclude excludes.txt 2>&1); rc=$?
[ $rc = 0 ] && pass "update runs" || fail "update runs" "exit $rc: $out"
expect_grep "update deletes first" "agent $UUID_UP deleted from the verifier" "$out"
expect_grep "update adds again" "agent $UUID_UP added to the verifier" "$out"
if status_has "Get Quote (state 3)" 20 && verified_all 20; then pass "update: the failed agent is back in Get Quote"; else fail "update: the failed agent is back in Get Quote" "$STATUS"; fi

# ---- a modified allowed file --------------------------------------------------------------------------
VICTIM=$(awk 'NR==3 {print $2}' allowlist.txt)
printf 'tampered\n' >"$W/tampered"
"$TOOLS/ima_gen" --out-dir "$IMA" --append-file "$W/tampered" --name "$VICTIM" >/dev/null 2>&1
BAD_ENTRY=$(( $(wc -l <"$LIST") - 1 ))
emulate "$TCTI_tpm" "$LIST"
if status_has "Invalid Quote (state 9)" 20; then pass "modified file: Invalid Quote"; else fail "modified file: Invalid Quote" "$STATUS"; fi
expect_grep "status: the hash entry" "failure: entry $BAD_ENTRY: $VICTIM:" "$STATUS"
expect_grep "status: hash event id" "ima.validation.ima-ng.runtime_policy_hash" "$STATUS"
if grep -qE "IMA ERRORS: template-hash 0 fnf 0 hash 1 good [0-9]+" "$VLOG"; then pass "verifier log: hash summary"; else fail "verifier log: hash summary"; fi
cp allowlist2.txt allowlist3.txt
echo "$(sha256sum <"$W/tampered" | cut -d' ' -f1)  $VICTIM" >>allowlist3.txt

# ---- delete, lists, registrar ----------------------------------------------------------------------------
out=$(T -c delete -u "$UUID" 2>&1); rc=$?
[ $rc = 0 ] && pass "delete" || fail "delete" "exit $rc: $out"
expect_grep "delete says so" "agent $UUID deleted from the verifier at 127.0.0.1:$CV_PORT" "$out"
out=$(T -c status -u "$UUID" 2>&1); rc=$?
[ $rc = 0 ] && pass "status of a registered-only agent" || fail "status of a registered-only agent" "exit $rc: $out"
expect_grep "status says Registered" "agent $UUID: Registered (not on the verifier" "$out"
out=$(T -c reglist 2>&1)
# quince-agent registers its uuid as configured (agent/identity.c), so that is the registered case.
[ "$out" = "$UUID_UP" ] && pass "reglist lists the agent (as registered)" || fail "reglist lists the agent (as registered)" "$out"
out=$(T -c regstatus -u "$UUID_UP" 2>&1); rc=$?
[ $rc = 0 ] && pass "regstatus" || fail "regstatus" "exit $rc: $out"
expect_grep "regstatus shows the record" "registered and active at 127.0.0.1:$REG_TLS_PORT" "$out"
out=$(T -c cvlist 2>&1)
[ -z "$out" ] && pass "cvlist is empty after delete" || fail "cvlist is empty after delete" "$out"

# ---- 'default' from the configuration file (lower-case uuid this time) -----------------------------------
cat >"$W/tenant.conf" <<CONF
[tenant]
verifier_ip = 127.0.0.1
verifier_port = $CV_PORT
registrar_ip = 127.0.0.1
registrar_port = $REG_TLS_PORT
tls_dir = $TLS_DIR
allowlist = $W/allowlist3.txt
ima_excludelist = $W/excludes.txt
CONF
out=$("$TENANT" --config "$W/tenant.conf" -c add -u "$UUID" --allowlist default --exclude default 2>&1); rc=$?
[ $rc = 0 ] && pass "add with --allowlist default --exclude default" || fail "add with --allowlist default --exclude default" "exit $rc: $out"
expect_grep "default: the config's allowlist" "runtime policy: $(cut -d' ' -f3- allowlist3.txt | sort -u | wc -l) paths, 2 excludes" "$out"
if status_has "Get Quote (state 3)" 20 && verified_all 20; then pass "default policy attests"; else fail "default policy attests" "$STATUS"; fi
out=$("$TENANT" --config "$W/tenant.conf" -c cvlist 2>&1)
[ "$out" = "$UUID" ] && pass "cvlist" || fail "cvlist" "$out"
out=$("$TENANT" --config "$W/tenant.conf" -c bulkinfo 2>&1)
expect_grep "bulkinfo" "$UUID: Get Quote (state 3), attestation PASS" "$out"
expect_err "add twice: 409" 1 "Agent of uuid $UUID already exists" "$TENANT" --config "$W/tenant.conf" -u "$UUID" --allowlist allowlist3.txt
out=$(T -c reactivate -u "$UUID" 2>&1); rc=$?
[ $rc = 0 ] && expect_grep "reactivate" "agent $UUID reactivated" "$out" || fail "reactivate" "exit $rc: $out"

# ---- runtime policy commands ----------------------------------------------------------------------------
out=$(T -c addruntimepolicy --runtime-policy-name golden --allowlist allowlist3.txt --exclude excludes.txt 2>&1); rc=$?
[ $rc = 0 ] && expect_grep "addruntimepolicy" "runtime policy golden added to the verifier" "$out" || fail "addruntimepolicy" "exit $rc: $out"
out=$(T -c listruntimepolicy 2>&1)
expect_grep "listruntimepolicy" "golden" "$out"
out=$(T -c showruntimepolicy --runtime-policy-name golden 2>/dev/null)
if printf '%s' "$out" | python3 -c 'import json,sys; p=json.load(sys.stdin); assert "/root/evil.sh" in p["digests"] and len(p["excludes"]) == 2 and p["meta"]["generator"] == 3'
then pass "showruntimepolicy prints the policy JSON"; else fail "showruntimepolicy prints the policy JSON" "$(printf '%s' "$out" | head -c 200)"; fi
printf '%s' "$out" >golden.json
out=$(T -c updateruntimepolicy --runtime-policy-name golden --runtime-policy golden.json \
      --runtime-policy-checksum "$(sha256sum <golden.json | cut -d' ' -f1)" 2>&1); rc=$?
[ $rc = 0 ] && expect_grep "updateruntimepolicy with a checksum" "runtime policy golden updated on" "$out" || fail "updateruntimepolicy with a checksum" "exit $rc: $out"
expect_err "wrong checksum" 2 "checksum of runtime policy golden.json does not match" \
  T -c updateruntimepolicy --runtime-policy-name golden --runtime-policy golden.json --runtime-policy-checksum "$(printf '0%.0s' $(seq 64))"
expect_err "addruntimepolicy twice: 409" 1 "already exists" T -c addruntimepolicy --runtime-policy-name golden --runtime-policy golden.json
out=$(T -c deleteallowlist --runtime-policy-name golden 2>"$W/err"); rc=$?
[ $rc = 0 ] && expect_grep "deprecated deleteallowlist" "runtime policy golden deleted" "$out" || fail "deprecated deleteallowlist" "exit $rc: $out"
expect_grep "deprecation warning" "deprecated; use -c deleteruntimepolicy" "$(cat "$W/err")"
expect_err "showruntimepolicy of a deleted policy" 1 "404" T -c showruntimepolicy --runtime-policy-name golden

# ---- error paths: exit status and one line ----------------------------------------------------------------
DEAD=$(free_port)
expect_err "verifier down" 1 "cannot reach the verifier at 127.0.0.1:$DEAD: connection refused" \
  "$TENANT" -vp "$DEAD" -rp "$REG_TLS_PORT" -u "$UUID" -c update --allowlist allowlist3.txt
expect_err "registrar down" 1 "cannot reach the registrar at 127.0.0.1:$DEAD: connection refused" \
  "$TENANT" -vp "$CV_PORT" -rp "$DEAD" -u "$UUID" --allowlist allowlist3.txt
expect_err "unknown uuid: add" 1 "agent nosuch-agent is not registered and active at the registrar at 127.0.0.1:$REG_TLS_PORT: 404" \
  T -u nosuch-agent --allowlist allowlist3.txt
expect_err "unknown uuid: delete" 1 "agent nosuch-agent is not on the verifier at 127.0.0.1:$CV_PORT: 404" T -c delete -u nosuch-agent
expect_err "unknown uuid: status" 1 "agent nosuch-agent is neither on the verifier" T -c status -u nosuch-agent
printf '%s\nthis is not a digest line\n' "$(head -1 allowlist.txt)" >junk.txt
expect_err "allowlist with junk lines" 2 "junk.txt:2: not an allowlist line" T -u "$UUID" -c update --allowlist junk.txt
printf '/tmp/.*\n/bad/([x\n' >badex.txt
expect_err "invalid exclude regex" 2 "badex.txt:2: invalid exclude regex" T -u "$UUID" -c update --allowlist allowlist3.txt --exclude badex.txt
expect_err "missing allowlist" 2 "cannot read allowlist nofile.txt: No such file or directory" T -u "$UUID" --allowlist nofile.txt
expect_err "missing exclude list" 2 "cannot read exclude list nofile.txt" T -u "$UUID" --allowlist allowlist3.txt --exclude nofile.txt
expect_err "missing config" 2 "bad configuration" "$TENANT" --config "$W/nothing.conf" -c cvlist
expect_err "-f with a missing file" 2 "cannot read payload file $W/nofile.zip: No such file or directory" T -u "$UUID" -f "$W/nofile.zip"
expect_err "-k with a file that is not a key file" 2 "key file: line 1 (K) is not base64" T -u "$UUID" -k "$W/evil.sh"
expect_err "--verify without a payload" 2 "--verify checks a delivered payload key: it needs -f/--file or -k/--key" T -u "$UUID" --verify
expect_err "--cert refused" 2 "certificate packages (--cert) are not supported" T -u "$UUID" --cert default
expect_err "--exclude without --allowlist" 2 "--exclude cannot be used without an --allowlist" T -u "$UUID" --exclude excludes.txt
expect_err "bad --tpm_policy: PCR 10" 2 "PCR 10 is used by IMA" T -u "$UUID" --tpm_policy '{"10": "00"}'
expect_err "bad --tpm_policy: PCR 16" 2 "PCR 16" T -u "$UUID" --tpm_policy '{"16": ["aa"]}'
expect_err "bad --tpm_policy: PCR 24" 2 "invalid PCR number '24'" T -u "$UUID" --tpm_policy '{"24": "00"}'
expect_err "bad --tpm_policy: not JSON" 2 "--tpm_policy must be a JSON object" T -u "$UUID" --tpm_policy 'x'
expect_err "bad uuid" 2 "invalid agent uuid" T -u 'a b' -c status
expect_err "unknown command" 2 "unknown command 'list'" T -c list
expect_err "bad port" 2 "invalid port 'x' for -vp/--cvport" "$TENANT" -vp x -c cvlist
expect_err "addruntimepolicy without a name" 2 "--runtime-policy-name is required to add a runtime policy" T -c addruntimepolicy --allowlist allowlist3.txt
out=$(T -c status -u "$UUID" 2>&1)
expect_grep "failed operations left the agent alone" "Get Quote" "$out"

# ---- a policy over the verifier's upload limit: 413, nothing added ------------------------------------------
out=$(T -c delete -u "$UUID" 2>&1) || fail "delete before the 413 case" "$out"
stop_verifier
QUINCE_VERIFIER_MAX_UPLOAD_SIZE=2048 "$VERIFIER" --config "$QUINCE_TMP/verifier.conf" >>"$VLOG" 2>&1 &
VERIFIER_PID=$!; RIG_PIDS+=("$VERIFIER_PID")
wait_http "$CV_URL/version" 20 || fail "verifier restarts with a small upload limit"
expect_err "policy over the upload limit" 1 "413 Request body too large" T -u "$UUID" --allowlist allowlist3.txt --exclude excludes.txt
expect_grep "413 message names the limit" "upload limit (max_upload_size)" "$(cat "$W/err")"
expect_err "413: nothing was added" 1 "agent $UUID is not on the verifier" T -c cvstatus -u "$UUID"
stop_verifier
expect_err "verifier stopped: cvlist" 1 "cannot reach the verifier at 127.0.0.1:$CV_PORT" T -c cvlist
expect_err "registrar stopped: reglist" 1 "cannot reach the registrar at 127.0.0.1:$REG_TLS_PORT" T -c reglist
