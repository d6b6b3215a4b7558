#!/usr/bin/env bash
# Measured boot end to end: a swtpm whose PCRs 0-9 and 11-15 were extended from a real UEFI event
# log (quince-agent mb-emulator), a real agent serving that log (measuredboot_ml_path), the
# verifier and the tenant. Covers the /mbpolicies API and the tenant's mb commands; an agent added
# with the reference state create-mb-policy made from the log attests (Get Quote); then each of a
# changed kernel command line in the reference, a dbx entry the machine lacks, a served log with
# a dropped event, and a log from another machine gives Invalid Quote with Keylime's event id and
# the event number; a reboot (swtpm and agent restarted, the log replayed again) judges the boot
# log afresh, while measured_boot_evaluate = once judges it once per boot; IMA's boot_aggregate is
# accepted when it is one of the aggregates computed from the boot log.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm tpm2_shutdown curl python3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
T=$QUINCE_TMP
DATA=$QUINCE_ROOT/tests/data/eventlogs
MOK=$DATA/event-moklisttrusted.bin
OTHER=$DATA/event-gce-ubuntu-2104-log.bin
UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0b007
export QUOTE_INTERVAL=0.3 MAX_RETRIES=60
VLOG=$T/verifier.log

# mbq.py: bounded waits and reads over the REST API.
cat >"$T/mbq.py" <<'PY'
import json, os, ssl, sys, time, urllib.request, urllib.error
CTX = None
def get(url):
    global CTX
    try:
        if CTX is None:
            tls = os.environ["TLS_DIR"]
            CTX = ssl.create_default_context(cafile=tls + "/cacert.pem")
            CTX.load_cert_chain(tls + "/tenant-cert.pem", tls + "/tenant-key.pem")
        with urllib.request.urlopen(url, timeout=3, context=CTX) as f:
            return f.status, json.load(f)
    except urllib.error.HTTPError as e:
        return e.code, None
    except Exception:
        return 0, None
def env(r):
    r = r or {}
    return {"r": r, "st": r.get("operational_state"), "f": r.get("failures") or [],
            "ids": [x.get("event_id") for x in (r.get("failures") or [])],
            "why": " | ".join(x.get("reason", "") for x in (r.get("failures") or []))}
cmd, url = sys.argv[1], sys.argv[2]
if cmd == "wait":                 # wait URL SECS EXPR → 0 once EXPR holds on a 200 answer
    secs, expr, r = float(sys.argv[3]), sys.argv[4], None
    end = time.time() + secs
    while time.time() < end:
        code, body = get(url)
        if code == 200:
            r = body["results"]
            if eval(expr, env(r)):
                sys.exit(0)
        time.sleep(0.1)
    print("timeout; last: %s" % json.dumps(r)[:900]); sys.exit(1)
elif cmd == "gone":               # gone URL SECS → 0 once the URL answers 404
    end = time.time() + float(sys.argv[3])
    while time.time() < end:
        if get(url)[0] == 404:
            sys.exit(0)
        time.sleep(0.1)
    sys.exit(1)
PY
MQ() { TLS_DIR=$TLS_DIR python3 "$T/mbq.py" "$@"; }
CVA() { echo "https://127.0.0.1:$CV_PORT/v2.6/agents/$UUID"; }
TN() { "$TENANT" -vp "$CV_PORT" -rp "$REG_TLS_PORT" "$@"; }
api() {   # METHOD PATH [curl args] → HTTP status; body in $T/api.body
  local m=$1 p=$2; shift 2
  vcurl --max-time 10 -o "$T/api.body" -w '%{http_code}' -X "$m" "$@" "https://127.0.0.1:$CV_PORT$p"
}
evaluated_lines() { grep -c "agent $UUID: boot event log matches its reference state" "$VLOG"; }
# readd NAME TENANT-ADD-ARGS...: removes the agent (if there) and adds it again; PASS/FAIL NAME.
readd() {
  local name=$1; shift
  TN -c delete -u "$UUID" >/dev/null 2>&1
  MQ gone "$(CVA)" 30 || { fail "$name" "the agent was not deleted"; return 1; }
  if TN -c add -u "$UUID" "$@" >"$T/add.out" 2>&1; then return 0; fi
  fail "$name" "add: $(cat "$T/add.out")"; return 1
}
# invalid NAME EVENT_ID REASON_TEXT: waits for Invalid Quote with that event id and reason text.
invalid() {
  local out
  if out=$(MQ wait "$(CVA)" 40 "st == 9 and '$2' in ids and '''$3''' in why"); then pass "$1"
  else fail "$1" "$out"; fi
}

# ---- reference states ------------------------------------------------------------------------------
"$TENANT" create-mb-policy --eventlog "$MOK" -o "$T/good.json" 2>"$T/create.err" \
  || { fail "create-mb-policy" "$(cat "$T/create.err")"; exit 1; }
python3 - "$T/good.json" "$T/cmdline.json" "$T/dbx.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["kernels"][0]["kernel_cmdline"] += "\\ quiet"
json.dump(r, open(sys.argv[2], "w"))
r = json.load(open(sys.argv[1]))
r["dbx"].append({"SignatureOwner": "77fa9abd-0359-4d32-bd60-28f4e78f784b", "SignatureData": "0x" + "ab" * 32})
json.dump(r, open(sys.argv[3], "w"))
PY
# The event numbers the failures must name: what check-mb-log (the same engine, offline) names.
"$TENANT" check-mb-log --eventlog "$MOK" --mb-policy "$T/cmdline.json" >"$T/cmdline.offline" 2>&1
CMD_EV=$(grep -o 'event [0-9]*: kernel command line' "$T/cmdline.offline" | head -1 | awk '{print $2}' | tr -d :)
[ -n "$CMD_EV" ] || { fail "offline check names the kernel command line's event" "$(head -5 "$T/cmdline.offline")"; exit 1; }
# the log with its second boot application (grub) dropped: the served log no longer replays to PCR 4
python3 "$QUINCE_ROOT/tests/integration/evlog_drop_bsa.py" "$MOK" "$T/dropped.bin" || fail "dropping a boot application from the log"

# ---- rig -------------------------------------------------------------------------------------------
cp "$MOK" "$T/served.bin"
: >"$T/ima.list"
start_swtpm mb
"$AGENT" mb-emulator --tcti "$TCTI_mb" --log "$MOK" >"$T/emu.log" 2>&1 || { fail "mb-emulator" "$(cat "$T/emu.log")"; exit 1; }
VERIFIER_EXTRA="measured_boot_evaluate = once" start_verifier || { fail "verifier starts" "$(tail -5 "$VLOG")"; exit 1; }
start_agent mb "$UUID" "$TCTI_mb" "$T/ima.list" "measuredboot_ml_path = $T/served.bin"
MQ wait "$REG_URL/v2.6/agents/$UUID" 60 'True' >/dev/null || { fail "agent registers" "$(tail -3 "$T/mb/agent.log")"; exit 1; }
pass "verifier and agent up"

# ---- /mbpolicies and the tenant's commands ---------------------------------------------------------
out=$(TN -c addmbpolicy --mb-policy-name good --mb-policy "$T/good.json" 2>&1); rc=$?
[ $rc = 0 ] && pass "addmbpolicy" || fail "addmbpolicy" "exit $rc: $out"
out=$(TN -c listmbpolicy 2>/dev/null)
[ "$out" = good ] && pass "listmbpolicy lists it" || fail "listmbpolicy lists it" "$out"
TN -c showmbpolicy --mb-policy-name good >"$T/shown.json" 2>"$T/shown.err"
python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' "$T/good.json" "$T/shown.json" \
  && pass "showmbpolicy prints the stored reference state" || fail "showmbpolicy prints the stored reference state" "$(head -c 300 "$T/shown.json")"
out=$(TN -c addmbpolicy --mb-policy-name good --mb-policy "$T/good.json" 2>&1); rc=$?
[ $rc = 1 ] && expect_grep "addmbpolicy of an existing name: 409" "Measured boot policy with name good already exists" "$out" \
  || fail "addmbpolicy of an existing name: 409" "exit $rc: $out"
printf '{"has_secureboot": true, "kernels": []}' >"$T/bad.json"
out=$(TN -c addmbpolicy --mb-policy-name bad --mb-policy "$T/bad.json" 2>&1); rc=$?
[ $rc = 2 ] && expect_grep "a malformed reference state is refused before it is sent" "is not a measured boot reference state" "$out" \
  || fail "a malformed reference state is refused before it is sent" "exit $rc: $out"
st=$(api POST /v2.6/mbpolicies/bad -H 'Content-Type: application/json' --data-binary '{"mb_policy": "{\"has_secureboot\": true, \"kernels\": []}"}')
[ "$st" = 400 ] && expect_grep "POST of a malformed reference state: 400 with the reason" "scrtm_and_bios" "$(cat "$T/api.body")" \
  || fail "POST of a malformed reference state: 400 with the reason" "HTTP $st: $(cat "$T/api.body")"
st=$(api PUT /v2.6/mbpolicies/nosuch -H 'Content-Type: application/json' --data-binary "$(python3 -c 'import json,sys; print(json.dumps({"mb_policy": open(sys.argv[1]).read()}))' "$T/good.json")")
[ "$st" = 409 ] && pass "PUT of a missing name: 409 (as Keylime)" || fail "PUT of a missing name: 409 (as Keylime)" "HTTP $st"
st=$(api GET /v2.6/mbpolicies/nosuch)
[ "$st" = 404 ] && expect_grep "GET of a missing name: 404" "Measured boot policy nosuch not found" "$(cat "$T/api.body")" \
  || fail "GET of a missing name: 404" "HTTP $st"
out=$(TN -c updatembpolicy --mb-policy-name good --mb-policy "$T/good.json" 2>&1)
expect_grep "updatembpolicy" "measured boot policy good updated" "$out"

# ---- the known-good machine attests ----------------------------------------------------------------
if TN -c add -u "$UUID" --mb-policy-name good >"$T/add.out" 2>&1; then pass "tenant add --mb-policy-name"
else fail "tenant add --mb-policy-name" "$(cat "$T/add.out")"; exit 1; fi
if out=$(MQ wait "$(CVA)" 40 "st == 3 and r['attestation_count'] >= 3"); then pass "the agent attests (Get Quote) against its boot log"
else fail "the agent attests (Get Quote) against its boot log" "$out"; fi
out=$(MQ wait "$(CVA)" 5 "r['has_mb_refstate'] == 1 and r['mb_policy_name'] == 'good' and '0xfbff' in r['tpm_policy']") \
  && pass "status: has_mb_refstate 1, mb_policy_name, PCRs 0-9 and 11-15 in the mask" || fail "status: has_mb_refstate" "$out"
out=$(TN -c status -u "$UUID" 2>&1)
expect_grep "tenant status names the reference state" "measured boot checked against reference state good" "$out"
n=$(evaluated_lines)
[ "$n" = 1 ] && pass "measured_boot_evaluate = once: judged once over several quotes" \
  || fail "measured_boot_evaluate = once: judged once over several quotes" "$n evaluations"
out=$(TN -c deletembpolicy --mb-policy-name good 2>&1); rc=$?
[ $rc = 1 ] && expect_grep "deletembpolicy while in use: 409" "Can't delete mb_policy as it's currently in use by agent $UUID" "$out" \
  || fail "deletembpolicy while in use: 409" "exit $rc: $out"

# ---- a reboot judges the new boot's log afresh -----------------------------------------------------
c0=$(MQ wait "$(CVA)" 5 True >/dev/null; vcurl "$(CVA)" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"]["attestation_count"])')
kill "$AGENT_PID_mb"; wait "$AGENT_PID_mb" 2>/dev/null
TPM2TOOLS_TCTI="$TCTI_mb" tpm2_shutdown -c >/dev/null 2>&1 || fail "reboot: TPM2_Shutdown"   # an orderly power-off
kill "$SWTPM_PID_mb"; wait "$SWTPM_PID_mb" 2>/dev/null
rm -f "$T/mb/tpm.sock" "$T/mb/tpm.sock.ctrl"
start_swtpm mb
"$AGENT" mb-emulator --tcti "$TCTI_mb" --log "$MOK" >>"$T/emu.log" 2>&1 || fail "mb-emulator after the reboot" "$(tail -2 "$T/emu.log")"
"$AGENT" --config "$T/mb/agent.conf" >>"$T/mb/agent.log" 2>&1 &     # same port and state
AGENT_PID_mb=$!; RIG_PIDS+=("$AGENT_PID_mb")
if out=$(MQ wait "$(CVA)" 60 "st == 3 and r['attestation_count'] >= $c0 + 3"); then pass "after a reboot the agent attests again"
else fail "after a reboot the agent attests again" "$out"; fi
n=$(evaluated_lines)
[ "$n" = 2 ] && pass "the reboot's boot log was judged afresh (once more, once)" \
  || fail "the reboot's boot log was judged afresh (once more, once)" "$n evaluations"

# ---- failures ---------------------------------------------------------------------------------------
if readd "changed kernel command line" --mb-policy "$T/cmdline.json" --mb-policy-name cmdline; then
  invalid "changed kernel command line: Invalid Quote, measured_boot.policy_example at event $CMD_EV" \
    measured_boot.policy_example "event $CMD_EV: kernel command line"
  out=$(TN -c status -u "$UUID" 2>&1)
  expect_grep "... tenant status shows the event number and id" "event $CMD_EV: kernel command line" "$out"
  expect_grep "... and the event id" "[measured_boot.policy_example]" "$out"
fi
if readd "dbx entry the machine lacks" --mb-policy "$T/dbx.json" --mb-policy-name dbx; then
  invalid "dbx entry the machine lacks: Invalid Quote naming dbx" measured_boot.policy_example "dbx lacks 1 of"
  out=$(MQ wait "$(CVA)" 5 "'77fa9abd-0359-4d32-bd60-28f4e78f784b' in why and 'event ' in why") \
    && pass "... naming the missing entry's owner at its event" || fail "... naming the missing entry's owner at its event" "$out"
fi
cat "$T/dropped.bin" >"$T/served.bin"       # same file (the agent keeps it open)
if readd "log with a dropped event" --mb-policy-name good; then
  invalid "log with a dropped event: Invalid Quote, measured_boot.invalid_pcr_4" measured_boot.invalid_pcr_4 \
    "boot event log PCR value does not match: PCR 4"
fi
cat "$OTHER" >"$T/served.bin"
if readd "log from another machine" --mb-policy-name good; then
  invalid "log from another machine: Invalid Quote, measured_boot.invalid_pcr_0" measured_boot.invalid_pcr_0 \
    "PCR 0 quoted"
  out=$(MQ wait "$(CVA)" 5 "'measured_boot.policy_example' in ids and 'Secure Boot is off, the reference state expects it on' in why and 'event ' in why") \
    && pass "... and its Secure Boot state differs at a named event" || fail "... and its Secure Boot state differs at a named event" "$out"
fi
cat "$MOK" >"$T/served.bin"

# ---- IMA's boot_aggregate is accepted when it is one of the boot log's aggregates ----------------
# An IMA list of one line: boot_aggregate = sha256(PCR 0 || ... || PCR 9) of the log's sha256 bank,
# which the runtime policy does not list. With the reference state it passes (Keylime adds the
# log's aggregates to the policy's boot_aggregate digests); without one it is not in the policy.
"$TOOLS/eventlog_replay" "$MOK" >"$T/replay.txt"
python3 - "$T/replay.txt" "$T/ima.list" "$T/ima-pol.json" <<'PY'
import hashlib, json, struct, sys
pcr = {}
for l in open(sys.argv[1]):
    f = l.split()
    if len(f) == 3 and f[0] == "sha256":
        pcr[int(f[1])] = bytes.fromhex(f[2][2:] if f[2].startswith("0x") else f[2])
agg = hashlib.sha256(b"".join(pcr.get(i, b"\0" * 32) for i in range(10))).digest()
d = b"sha256:\0" + agg
name = b"boot_aggregate\0"
tdata = struct.pack("<I", len(d)) + d + struct.pack("<I", len(name)) + name
open(sys.argv[2], "w").write("10 %s ima-ng sha256:%s boot_aggregate\n" % (hashlib.sha1(tdata).hexdigest(), agg.hex()))
json.dump({"meta": {"version": 1, "generator": 1}, "release": 0, "digests": {"/usr/bin/true": ["00" * 32]},
           "excludes": [], "keyrings": {}, "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1", "dm_policy": None},
           "ima-buf": {}, "verification-keys": ""}, open(sys.argv[3], "w"))
PY
emulate "$TCTI_mb" "$T/ima.list" || fail "ima-emulator extends PCR 10"
if readd "boot_aggregate from the boot log" --runtime-policy "$T/ima-pol.json" --runtime-policy-name ima1 --mb-policy-name good; then
  if out=$(MQ wait "$(CVA)" 40 "st == 3 and r['next_ima_ml_entry'] == 1 and r['attestation_count'] >= 2"); then
    pass "with the reference state, the log's boot aggregate passes IMA (not in the runtime policy)"
  else fail "with the reference state, the log's boot aggregate passes IMA (not in the runtime policy)" "$out"; fi
fi
if readd "boot_aggregate without a boot log" --runtime-policy "$T/ima-pol.json" --runtime-policy-name ima2; then
  invalid "without a reference state the same boot_aggregate is not in the policy" \
    ima.validation.ima-ng.not_in_allowlist "File not found in allowlist: boot_aggregate"
fi
# --mb-policy FILE without a name: stored under the agent id, and deleted with the agent
if readd "--mb-policy without a name" --mb-policy "$T/good.json"; then
  out=$(MQ wait "$(CVA)" 40 "st == 3 and r['mb_policy_name'] == '$UUID'") \
    && pass "--mb-policy without a name: stored under the agent id, attests" || fail "--mb-policy without a name: stored under the agent id, attests" "$out"
fi
TN -c delete -u "$UUID" >/dev/null 2>&1
MQ gone "$(CVA)" 30 && pass "agent deleted" || fail "agent deleted"
out=$(TN -c listmbpolicy 2>/dev/null)
if printf '%s\n' "$out" | grep -qx good && ! printf '%s\n' "$out" | grep -qx "$UUID"; then
  pass "the reference state named after the agent goes with it (named ones stay)"
else fail "the reference state named after the agent goes with it (named ones stay)" "$out"; fi
out=$(TN -c deletembpolicy --mb-policy-name dbx 2>&1)
expect_grep "deletembpolicy once unused" "measured boot policy dbx deleted" "$out"
exit 0
