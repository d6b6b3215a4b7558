#!/usr/bin/env bash
# quince-verifier end to end with real binaries on loopback: one verifier, six real quince-agents
# (each on its own swtpm, kept in step with its list by the ima-emulator), added through the REST
# API with Keylime's add body. Covers: allowed entries arriving while attested (Get Quote across
# many rounds), an unknown file, a modified file, a forged line, a deleted line, a reboot with a
# fresh and longer list, kill -9 and SIGTERM of the verifier, bad requests (400/404/413, an agent
# answering garbage) and 40 fake agents attested while the API writes (no 5xx, no "database is
# locked"). Crafted quotes (wrong key, stale nonce, ...) are covered by test_poller.sh with the
# fake agent and are not repeated here.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm tpm2_shutdown tpm2_readclock curl python3 sqlite3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

T=$QUINCE_TMP
# A quote every 0.4 s; 60 retries at 0.2 s ride out an agent that restarts (reboot scenario).
export QUOTE_INTERVAL=0.4 MAX_RETRIES=60
DB=$T/verifier/db.sqlite
VLOG=$T/verifier.log

# ---- helpers ----------------------------------------------------------------------------------------
# vq.py: status reads and bounded waits over the REST API (one python process per wait).
cat >"$T/vq.py" <<'PY'
import base64, json, os, ssl, sys, time, urllib.request, urllib.error

# mTLS: the verifier's CA and the tenant's client certificate (lib_rig.sh's TLS_DIR), loaded at
# the first request (the verifier makes them when it starts).
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
    return {"r": r, "f": (r or {}).get("failures") or [], "st": (r or {}).get("operational_state")}

def addbody(reg, uuid, pol, out):
    code, rec = get("%s/v2.6/agents/%s" % (reg, uuid))
    rec = rec["results"] if code == 200 else {}
    body = {
        "v": base64.b64encode(os.urandom(32)).decode(),
        "cloudagent_ip": rec.get("ip", "127.0.0.1"), "cloudagent_port": rec.get("port", 1),
        "tpm_policy": json.dumps({"mask": "0x400"}), "metadata": "{}",
        "runtime_policy": base64.b64encode(open(pol, "rb").read()).decode() if pol else "",
        "runtime_policy_name": None, "runtime_policy_key": "",
        "mb_policy": None, "mb_policy_name": None,
        "ima_sign_verification_keys": "", "revocation_key": "",
        "accept_tpm_hash_algs": ["sha512", "sha384", "sha256"],
        "accept_tpm_encryption_algs": ["ecc", "rsa"],
        "accept_tpm_signing_algs": ["ecschnorr", "rsassa"],
        "ak_tpm": rec.get("aik_tpm"), "mtls_cert": rec.get("mtls_cert"), "supported_version": "2.2",
    }
    json.dump(body, open(out, "w"))

cmd = sys.argv[1]
if cmd == "get":                       # get URL EXPR → prints the value
    code, body = get(sys.argv[2])
    if code != 200:
        print("HTTP%d" % code); sys.exit(1)
    v = eval(sys.argv[3], env(body["results"]))
    print(json.dumps(v) if not isinstance(v, str) else v)
elif cmd == "wait":                    # wait URL SECS EXPR [STAY] → 0 when EXPR holds (HTTP 200)
    url, secs, expr = sys.argv[2], float(sys.argv[3]), sys.argv[4]
    stay = int(sys.argv[5]) if len(sys.argv) > 5 else None
    end, r = time.time() + secs, None
    while time.time() < end:
        code, body = get(url)
        if code == 200:
            r = body["results"]
            st = r.get("operational_state") if isinstance(r, dict) else None
            if stay is not None and st is not None and st != stay:
                print("left state %d: now %s, failures %s" % (stay, st, r.get("failures"))); sys.exit(2)
            if eval(expr, env(r)):
                sys.exit(0)
        time.sleep(0.1)
    if isinstance(r, dict):
        r = {k: r.get(k) for k in ("operational_state", "attestation_count", "next_ima_ml_entry", "failures") if k in r} or r
    print("timeout; last: %s" % json.dumps(r)[:600]); sys.exit(1)
elif cmd == "addbody":                 # addbody REG_URL UUID POLICY_FILE|"" OUT
    addbody(*sys.argv[2:6])
elif cmd == "addbodies":               # addbodies REG_URL POLICY_FILE DIR UUID... → DIR/add-UUID.json
    for u in sys.argv[5:]:
        addbody(sys.argv[2], u, sys.argv[3], "%s/add-%s.json" % (sys.argv[4], u))
elif cmd == "merge":                   # merge OUT POLICY... → a runtime policy with every digest
    out, pols = sys.argv[2], [json.load(open(p)) for p in sys.argv[3:]]
    m = pols[0]
    for p in pols[1:]:
        for k, v in p["digests"].items():
            m["digests"].setdefault(k, [])
            m["digests"][k] += [d for d in v if d not in m["digests"][k]]
    json.dump(m, open(out, "w"))
PY
VQ() { TLS_DIR=$TLS_DIR python3 "$T/vq.py" "$@"; }
CV() { echo "https://127.0.0.1:$CV_PORT/v2.6/agents/$1"; }
# api METHOD PATH [curl args...] : prints the HTTP status; the body is in $T/api.body.
api() {
  local m=$1 p=$2; shift 2
  vcurl --max-time 10 -o "$T/api.body" -w '%{http_code}' -X "$m" "$@" "https://127.0.0.1:$CV_PORT$p"
}
body_status() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status",""))' "$T/api.body" 2>/dev/null; }
# add UUID POLICY_FILE : Keylime's add body, the AK from the registrar's record; prints the status.
add() {
  VQ addbody "$REG_URL" "$1" "$2" "$T/add-$1.json"
  api POST "/v2.6/agents/$1" -H 'Content-Type: application/json' --data-binary @"$T/add-$1.json"
}
# wait_state NAME UUID SECS EXPR [STAY]: PASS/FAIL NAME.
wait_state() {
  local out
  if out=$(VQ wait "$(CV "$2")" "$3" "$4" ${5:-}); then pass "$1"; else fail "$1" "$out"; fi
}
field() { VQ get "$(CV "$1")" "$2"; }
# The store: the SQLite file, or the PostgreSQL database $DATABASE names (test_api_pg.sh).
db() {
  case ${DATABASE:-} in
    postgres*) psql -X -q -t -A -v ON_ERROR_STOP=1 "$DATABASE" ${1:+-c "$1"} ;;
    *) sqlite3 -cmd ".timeout 5000" "$DB" "$@" ;;
  esac
}
nlines() { wc -l <"$1" | tr -d ' '; }
path_of() { sed -n "${2}p" "$1" | awk '{print $5}'; }       # path column of line N (ima-ng)
digest_of() { sed -n "${2}p" "$1" | awk '{print $4}'; }
failed_lines() { grep -c "agent $1 failed, stopping polling" "$VLOG"; }
restart_verifier() {   # same configuration, database and ports
  "$VERIFIER" --config "$T/verifier.conf" >>"$VLOG" 2>&1 &
  VERIFIER_PID=$!
  RIG_PIDS+=("$VERIFIER_PID")
  wait_http "$CV_URL/version" 20 && wait_http "$REG_PLAIN_URL/version" 20 && wait_http "$REG_URL/version" 20
}

# ---- lists, TPMs, verifier, agents -------------------------------------------------------------------
# a1 grows with allowed entries, a2 runs an unknown file, a3 a modified file, a4 gets a forged line,
# a5 loses a line, a6 reboots with a fresh, longer list. Each agent serves L/aN.list; the emulator
# extends from the same file except for a4 (the forged line must not reach the TPM).
N0=15
mkdir -p "$T/L"
for i in 1 2 3 4 5 6; do
  ent=$N0; [ $i = 1 ] && ent=40; [ $i = 6 ] && ent=12
  "$TOOLS/ima_gen" --out-dir "$T/ima$i" --entries $ent --seed $((i * 7)) >/dev/null 2>&1 || { fail "ima_gen $i"; exit 0; }
  cp "$T/ima$i/runtime_policy.json" "$T/pol$i.json"
done
"$TOOLS/ima_gen" --out-dir "$T/ima6b" --entries 30 --seed 66 >/dev/null 2>&1 || { fail "ima_gen 6b"; exit 0; }
VQ merge "$T/pol6.json" "$T/ima6/runtime_policy.json" "$T/ima6b/runtime_policy.json"
head -$N0 "$T/ima1/ascii_runtime_measurements" >"$T/L/a1.list"
for i in 2 3 4 5 6; do cp "$T/ima$i/ascii_runtime_measurements" "$T/L/a$i.list"; done
N6=$(nlines "$T/L/a6.list")

for i in 1 2 3 4 5 6; do start_swtpm "tpm$i"; done
pids=()
for i in 1 2 3 4 5 6; do tv="TCTI_tpm$i"; emulate "${!tv}" "$T/L/a$i.list" & pids+=($!); done
wait "${pids[@]}"

start_verifier || { fail "verifier starts" "$(tail -5 "$VLOG")"; exit 1; }
pass "verifier starts"
REG=$REG_URL     # the registrar's TLS port (show/list/delete are not served on the plain one)
for i in 1 2 3 4 5 6; do
  eval "U$i=d432fbb3-d2f1-4a97-9ef7-75bd81c1000$i"
  u="U$i"; tv="TCTI_tpm$i"
  start_agent "a$i" "${!u}" "${!tv}" "$T/L/a$i.list"
done
ok=1
for i in 1 2 3 4 5 6; do
  u="U$i"
  VQ wait "$REG/v2.6/agents/${!u}" 60 'True' >/dev/null || { ok=0; fail "agent a$i registers and activates" "$(tail -3 "$T/a$i/agent.log")"; }
done
[ $ok = 1 ] && pass "six real agents register and activate"
for i in 1 2 3 4 5 6; do
  u="U$i"; st=$(add "${!u}" "$T/pol$i.json")
  [ "$st" = 200 ] || fail "add agent a$i" "HTTP $st: $(cat "$T/api.body")"
done
ok=1
for i in 1 2 3 4 5 6; do
  u="U$i"; want=$N0; [ $i = 6 ] && want=$N6
  out=$(VQ wait "$(CV "${!u}")" 30 "st == 3 and r['next_ima_ml_entry'] == $want and r['attestation_count'] >= 1") \
    || { ok=0; fail "agent a$i attested" "$out"; }
done
[ $ok = 1 ] && pass "all six agents attested (Get Quote, whole list verified)"
[ "$(field "$U1" 'r["operational_state_name"], r["attestation_status"]')" = '["Get Quote", "PASS"]' ] \
  && pass "status: Get Quote, PASS" || fail "status: Get Quote, PASS" "$(field "$U1" 'r["operational_state_name"], r["attestation_status"]')"

# ---- 2. an unknown file ---------------------------------------------------------------------------------
printf '#!/bin/sh\necho pwned\n' >"$T/evil.sh"
"$TOOLS/ima_gen" --out-dir "$T/ima2" --append-file "$T/evil.sh" --name /root/evil.sh >/dev/null 2>&1
tail -1 "$T/ima2/ascii_runtime_measurements" >>"$T/L/a2.list"     # appended, as the kernel does
emulate "$TCTI_tpm2" "$T/L/a2.list"
t0=$(date +%s%N)
# ---- 3. a modified file: an allowed path measured with another digest --------------------------------
P3=$(path_of "$T/L/a3.list" 5)
printf 'modified content\n' >"$T/modified"
"$TOOLS/ima_gen" --out-dir "$T/ima3" --append-file "$T/modified" --name "$P3" >/dev/null 2>&1
tail -1 "$T/ima3/ascii_runtime_measurements" >>"$T/L/a3.list"
emulate "$TCTI_tpm3" "$T/L/a3.list"
# ---- 5. a deleted line: line 8 leaves the served list after the TPM extended it ---------------------------
# The list is now shorter than the verifier's next entry, so the agent answers from entry 0 and
# the verifier replays the whole list from a fresh state: it can never reach the quoted PCR 10.
sed '8d' "$T/ima5/ascii_runtime_measurements" >"$T/L/a5.tmp"; cat "$T/L/a5.tmp" >"$T/L/a5.list"

out=$(VQ wait "$(CV "$U2")" 10 'st == 9'); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $rc = 0 ] && [ "$ms" -lt 4000 ]; then pass "unknown file: Invalid Quote within a few intervals (${ms} ms)"
else fail "unknown file: Invalid Quote within a few intervals" "$ms ms: $out"; fi
rec=$(field "$U2" '[[x["entry"], x["path"], x["event_id"], x["reason"]] for x in f]')
expect_grep "unknown file: failure record" "[[$N0, \"/root/evil.sh\", \"ima.validation.ima-ng.not_in_allowlist\", \"File not found in allowlist: /root/evil.sh\"]]" "$rec"
expect_grep "unknown file: last_event_id" "ima.validation.ima-ng.not_in_allowlist" "$(field "$U2" 'r["last_event_id"]')"
[ "$(field "$U2" 'r["attestation_status"]')" = FAIL ] && pass "unknown file: attestation_status FAIL" || fail "unknown file: attestation_status FAIL"
if grep -q "WARNING - agent $U2: File not found in allowlist: /root/evil.sh\$" "$VLOG"; then pass "log: File not found in allowlist: /root/evil.sh"
else fail "log: File not found in allowlist: /root/evil.sh"; fi
# good: the entries that passed since the replay began (the N0 verified before), not only this round's
grep -Eq "agent $U2: IMA ERRORS: template-hash 0 fnf 1 hash 0 good [1-9][0-9]*\$" "$VLOG" && pass "log: IMA ERRORS line (fnf 1)" \
  || fail "log: IMA ERRORS line (fnf 1)" "$(grep "agent $U2: IMA ERRORS" "$VLOG")"
expect_grep "log: agent failed, stopping polling" "agent $U2 failed, stopping polling" "$(cat "$VLOG")"

# The 40 fake agents of the load test (section 10) generate their keys meanwhile (started
# after the timed check above: key generation keeps both cores busy for a few seconds).
NF=40
head -10 "$T/ima2/ascii_runtime_measurements" >"$T/L/fake.list"
cp "$T/ima2/runtime_policy.json" "$T/polf.json"
FTLS=(--tls-ca "$TLS_DIR/cacert.pem")     # fake agents serve mTLS; each writes its certificate to fN.crt
"$TOOLS/fake_agent" --mode good --ak-out "$T/f0.ak" --ima-log "$T/L/fake.list" "${FTLS[@]}" --cert-out "$T/f0.crt" \
  >"$T/f0.port" 2>"$T/f0.log" &
RIG_PIDS+=($!)
FPIDS=()
for n in $(seq 1 $NF); do
  "$TOOLS/fake_agent" --mode good --ak-out "$T/f$n.ak" --ima-log "$T/L/fake.list" "${FTLS[@]}" --cert-out "$T/f$n.crt" \
    >"$T/f$n.port" 2>"$T/f$n.log" &
  RIG_PIDS+=($!); FPIDS+=($!)
done

# ---- 3 (results) ------------------------------------------------------------------------------------------
wait_state "modified file: Invalid Quote" "$U3" 10 'st == 9'
rec=$(field "$U3" '[[x["entry"], x["path"], x["event_id"]] for x in f]')
expect_grep "modified file: failure record" "[[$N0, \"$P3\", \"ima.validation.ima-ng.runtime_policy_hash\"]]" "$rec"
expect_grep "modified file: reason names the digest" "Hashes for file $P3 don't match" "$(field "$U3" 'f[0]["reason"]')"
grep -Eq "agent $U3: IMA ERRORS: template-hash 0 fnf 0 hash 1 good [1-9][0-9]*\$" "$VLOG" && pass "log: IMA ERRORS line (hash 1)" \
  || fail "log: IMA ERRORS line (hash 1)" "$(grep "agent $U3: IMA ERRORS" "$VLOG")"

# ---- 5 (results) ------------------------------------------------------------------------------------------
wait_state "deleted line: Invalid Quote" "$U5" 10 'st == 9'
rec=$(field "$U5" '[[x["entry"], x["event_id"]] for x in f]')
expect_grep "deleted line: ima.pcr_mismatch for the whole round" '[null, "ima.pcr_mismatch"]' "$rec"
expect_grep "log: IMA measurement list does not match TPM PCR" "IMA measurement list does not match TPM PCR" "$(cat "$VLOG")"

# ---- 4. a forged line: the TPM extended /usr/local/bin/dropper, the list claims an allowed file ------
[ "$(api PUT "/v2.6/agents/$U4/stop")" = 200 ] || fail "forged line: stop" "$(cat "$T/api.body")"
VQ wait "$(CV "$U4")" 5 'st == 10' >/dev/null || fail "forged line: stopped"
printf 'dropper\n' >"$T/dropper"
"$TOOLS/ima_gen" --out-dir "$T/ima4" --append-file "$T/dropper" --name /usr/local/bin/dropper >/dev/null 2>&1
emulate "$TCTI_tpm4" "$T/ima4/ascii_runtime_measurements"
P4=$(path_of "$T/L/a4.list" 3); D4=$(digest_of "$T/L/a4.list" 3)
{ cat "$T/L/a4.list"; tail -1 "$T/ima4/ascii_runtime_measurements" | awk -v d="$D4" -v p="$P4" '{print $1, $2, $3, d, p}'; } >"$T/L/a4.tmp"
cat "$T/L/a4.tmp" >"$T/L/a4.list"
[ "$(api PUT "/v2.6/agents/$U4/reactivate")" = 200 ] || fail "forged line: reactivate" "$(cat "$T/api.body")"
wait_state "forged line: Invalid Quote" "$U4" 10 'st == 9'
rec=$(field "$U4" '[[x["entry"], x["path"], x["event_id"]] for x in f]')
expect_grep "forged line: template-hash failure record" "[$N0, \"$P4\", \"ima.validation.ima_hash\"]" "$rec"
ev=$(field "$U4" '" ".join(x["event_id"] for x in f)')
case " $ev " in *" ima.validation.ima-ng."*) fail "forged line: the forged path and digest are allowed" "$ev";;
  *) pass "forged line: the forged path and digest are allowed (only the template hash betrays it)";; esac
expect_grep "log: IMA ERRORS line (template-hash 1)" "IMA ERRORS: template-hash 1 fnf 0 hash 0" "$(cat "$VLOG")"

# ---- 6. reboot: orderly TPM shutdown, swtpm restarted on its state, a fresh longer list ---------------
RC0=$(TPM2TOOLS_TCTI="$TCTI_tpm6" tpm2_readclock 2>/dev/null | sed -n 's/.*reset_count: *//p')
kill "$AGENT_PID_a6"; wait "$AGENT_PID_a6" 2>/dev/null
TPM2TOOLS_TCTI="$TCTI_tpm6" tpm2_shutdown -c >/dev/null 2>&1 || fail "reboot: TPM2_Shutdown"
kill "$SWTPM_PID_tpm6"; wait "$SWTPM_PID_tpm6" 2>/dev/null
rm -f "$T/tpm6/tpm.sock" "$T/tpm6/tpm.sock.ctrl"
start_swtpm tpm6
RC1=$(TPM2TOOLS_TCTI="$TCTI_tpm6" tpm2_readclock 2>/dev/null | sed -n 's/.*reset_count: *//p')
[ -n "$RC0" ] && [ -n "$RC1" ] && [ "$RC1" -gt "$RC0" ] && pass "reboot: resetCount increased ($RC0 → $RC1)" \
  || fail "reboot: resetCount increased" "'$RC0' → '$RC1'"
cat "$T/ima6b/ascii_runtime_measurements" >"$T/L/a6.list"
N6B=$(nlines "$T/L/a6.list")
emulate "$TCTI_tpm6" "$T/L/a6.list"
start_agent a6 "$U6" "$TCTI_tpm6" "$T/L/a6.list" "port = $AGENT_PORT_a6"

# ---- 1. allowed entries arrive while attested -------------------------------------------------------------
# A resident emulator extends new lines within ~50 ms, as the kernel would: a list running ahead
# of PCR 10 for more than one round fails the quote-progress rule (keylime-formats §4.3), and a
# one-shot emulator starting under load could take that long.
"$AGENT" ima-emulator --tcti "$TCTI_tpm1" --ima-log "$T/L/a1.list" --banks sha1,sha256 --interval-ms 50 \
  >>"$T/emulator1.log" 2>&1 &
RIG_PIDS+=($!)
c0=$(field "$U1" 'r["attestation_count"]')
ok=1
for upto in 20 28 40; do
  have=$(nlines "$T/L/a1.list")
  sed -n "$((have + 1)),${upto}p" "$T/ima1/ascii_runtime_measurements" >>"$T/L/a1.list"
  out=$(VQ wait "$(CV "$U1")" 10 "r['next_ima_ml_entry'] == $upto" 3) || { ok=0; fail "allowed growth to $upto entries" "$out"; break; }
done
[ $ok = 1 ] && pass "allowed entries: next_ima_ml_entry advances 15 → 20 → 28 → 40, always Get Quote"
c1=$(field "$U1" 'r["attestation_count"]')
wait_state "allowed entries: attestation_count keeps rising in Get Quote" "$U1" 10 "r['attestation_count'] >= $((c1 + 5)) and not f" 3
[ "$(field "$U1" 'r["attestation_count"] > '"$c0")" = true ] && pass "attestation_count rose during the growth ($c0 → $c1)" || fail "attestation_count rose during the growth"

# ---- 6 (results) ------------------------------------------------------------------------------------------
wait_state "reboot: re-attested from entry 0 with the new list, no failure" "$U6" 30 \
  "st == 3 and r['next_ima_ml_entry'] == $N6B and not f and r['attestation_count'] >= 3"
[ "$(failed_lines "$U6")" = 0 ] && pass "reboot: no failure logged" || fail "reboot: no failure logged" "$(grep -m3 "$U6" "$VLOG" | tail -3)"
AK6=$(VQ get "$REG/v2.6/agents/$U6" 'r["aik_tpm"]')
[ "$(grep -c "registered and activated" "$T/a6/agent.log")" = 2 ] && [ "$AK6" = "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ak_tpm"])' "$T/add-$U6.json")" ] \
  && pass "reboot: the agent re-registered with the same AK" || fail "reboot: the agent re-registered with the same AK" "$(tail -3 "$T/a6/agent.log")"
expect_grep "reboot: the verifier saw the TPM reset and re-read from entry 0" "agent $U6: TPM reset/restart counter changed (reboot)" "$(cat "$VLOG")"

# ---- failed agents are not polled any more: nothing changes for them while a1 completes 3 rounds --------
failed_snap() {
  local i u
  for i in 2 3 4 5; do u="U$i"; field "${!u}" '[r["rounds_completed"], r["requests_sent"], r["attestation_count"], r["last_received_quote"]]'; done
}
fs0=$(failed_snap)
r1=$(field "$U1" 'r["rounds_completed"]')
wait_state "a1 completes 3 more rounds meanwhile" "$U1" 30 "r['rounds_completed'] >= $r1 + 3" 3
fs1=$(failed_snap)
for i in 2 3 4 5; do
  u="U$i"; n=$(failed_lines "${!u}")
  [ "$n" = 1 ] || fail "a$i: failed once, polling stopped" "$n failure lines"
done
[ "$fs0" = "$fs1" ] && pass "failed agents: polling stopped (one failure line each, no new round or request)" \
  || fail "failed agents: polling stopped" "$(tr '\n' ' ' <<<"$fs0") -> $(tr '\n' ' ' <<<"$fs1")"

# ---- 7. kill -9 of the verifier mid-round, restart: resumed from the stored state -----------------------
kill -9 "$VERIFIER_PID"; wait "$VERIFIER_PID" 2>/dev/null
k1=$(db "SELECT next_ima_ml_entry, attestation_count, operational_state FROM agents WHERE agent_id='$U1';")
k6=$(db "SELECT next_ima_ml_entry, attestation_count FROM agents WHERE agent_id='$U6';")
IFS='|' read -r kn1 kc1 ks1 <<<"$k1"; IFS='|' read -r kn6 kc6 <<<"$k6"
[ "$kn1" = 40 ] && [ "$ks1" = 3 ] && pass "kill -9: committed state kept (entry 40, Get Quote)" || fail "kill -9: committed state kept" "$k1"
restart_verifier || fail "kill -9: verifier restarts" "$(tail -3 "$VLOG")"
wait_resumed() { for _ in $(seq 100); do [ "$(grep -c "resuming attestation of" "$VLOG")" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_resumed 1 && expect_grep "kill -9: the two attested agents are resumed, the failed ones are not" \
  "resuming attestation of 2 agent(s)" "$(grep "resuming attestation of" "$VLOG" | tail -1)" || fail "kill -9: resume logged"
wait_state "kill -9: a1 resumed from its stored state (count continues, entry kept)" "$U1" 15 \
  "st == 3 and r['next_ima_ml_entry'] == 40 and r['attestation_count'] > ${kc1:-0} + 2 and not f"
wait_state "kill -9: a6 resumed" "$U6" 15 "st == 3 and r['next_ima_ml_entry'] == ${kn6:-0} and r['attestation_count'] > ${kc6:-0} and not f"
[ "$(failed_lines "$U1")$(failed_lines "$U6")" = 00 ] && pass "kill -9: no failure after the restart" || fail "kill -9: no failure after the restart"
[ "$(field "$U2" 'st')" = 9 ] && [ "$(failed_lines "$U2")" = 1 ] && pass "kill -9: a failed agent stays failed, not polled" || fail "kill -9: a failed agent stays failed"

# ---- 8. SIGTERM: exits 0 promptly with the state committed -----------------------------------------------
cnt=$(field "$U1" 'r["attestation_count"]')
t0=$(date +%s%N)
kill -TERM "$VERIFIER_PID"; wait "$VERIFIER_PID"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" = 0 ] && [ "$ms" -lt 5000 ] && pass "SIGTERM: exit 0 in ${ms} ms" || fail "SIGTERM: exit 0 promptly" "exit $rc after $ms ms"
dc=$(db "SELECT attestation_count FROM agents WHERE agent_id='$U1';")
[ -n "$dc" ] && [ "$dc" -ge "$cnt" ] && pass "SIGTERM: state committed (count $dc >= $cnt)" || fail "SIGTERM: state committed" "db $dc < api $cnt"
restart_verifier || fail "verifier restarts after SIGTERM" "$(tail -3 "$VLOG")"
wait_state "SIGTERM: a1 resumed after a clean restart" "$U1" 15 "st == 3 and r['attestation_count'] > $dc and not f"

# ---- 9. bad requests against the running daemon ----------------------------------------------------------
# A fake agent answering garbage, registered straight into the registrar table (it has no TPM);
# the type checks run against its id (registered, not yet added).
fake() { # NAME MODE : starts tests/tools/fake_agent; sets FPORT
  "$TOOLS/fake_agent" --mode "$2" --ak-out "$T/$1.ak" --ima-log "$T/L/a2.list" "${FTLS[@]}" --cert-out "$T/$1.crt" \
    >"$T/$1.port" 2>"$T/$1.log" &
  RIG_PIDS+=($!)
  FPORT=
  for _ in $(seq 100); do FPORT=$(head -1 "$T/$1.port" 2>/dev/null); [ -n "$FPORT" ] && [ -s "$T/$1.ak" ] && return 0; sleep 0.1; done
  return 1
}
reg_sql() { # UUID AKFILE PORT → an SQL statement for an activated registrar record (mtls_cert: AKFILE's .crt)
  echo "INSERT INTO registrar(agent_id, aik_tpm, mtls_cert, ip, port, regcount, active) VALUES ('$1', '$(tr -d '\n' <"$2")', '$(cat "${2%.ak}.crt")', '127.0.0.1', $3, 1, 1) ON CONFLICT (agent_id) DO UPDATE SET aik_tpm = excluded.aik_tpm, mtls_cert = excluded.mtls_cert, ip = excluded.ip, port = excluded.port, regcount = 1, active = 1;"
}
UG=d432fbb3-d2f1-4a97-9ef7-75bd81c1eeee
fake garbage garbage || fail "garbage fake agent starts"
db "$(reg_sql "$UG" "$T/garbage.ak" "${FPORT:-1}")"
UX=d432fbb3-d2f1-4a97-9ef7-75bd81c1ffff
st=$(api POST "/v2.6/agents/$UG" -H 'Content-Type: application/json' --data-binary '{"tpm_policy": ')
[ "$st" = 400 ] && expect_grep "malformed JSON → 400" "Invalid JSON" "$(body_status)" || fail "malformed JSON → 400" "HTTP $st $(body_status)"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); b["cloudagent_port"]="eighty"; json.dump(b,open(sys.argv[2],"w"))' "$T/add-$U1.json" "$T/badtype.json"
st=$(api POST "/v2.6/agents/$UG" -H 'Content-Type: application/json' --data-binary @"$T/badtype.json")
[ "$st" = 400 ] && expect_grep "wrong field type → 400" "cloudagent_port must be" "$(body_status)" || fail "wrong field type → 400" "HTTP $st $(body_status)"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); b["tpm_policy"]=5; json.dump(b,open(sys.argv[2],"w"))' "$T/add-$U1.json" "$T/badtype2.json"
st=$(api POST "/v2.6/agents/$UG" -H 'Content-Type: application/json' --data-binary @"$T/badtype2.json")
[ "$st" = 400 ] && pass "tpm_policy of the wrong type → 400" || fail "tpm_policy of the wrong type → 400" "HTTP $st $(body_status)"
python3 - "$T/pol1.json" "$T/badre.json" <<'PY'
import json, sys, base64
p = json.load(open(sys.argv[1])); p["excludes"] = ["^/tmp/", "/bad/([x"]
json.dump({"runtime_policy": base64.b64encode(json.dumps(p).encode()).decode(), "tpm_policy": None, "runtime_policy_key": ""}, open(sys.argv[2], "w"))
PY
st=$(api POST /v2.6/allowlists/badre -H 'Content-Type: application/json' --data-binary @"$T/badre.json")
msg=$(body_status)
# The policy's excludes array is named by its 0-based index (docs/rest-api.md).
if [ "$st" = 400 ] && [ "$msg" = "Runtime policy is malformatted: excludes:2: invalid exclude regex '/bad/([x': missing terminating ] for character class" ]
then pass "invalid exclude regex → 400 with the PCRE2 message and its line ($msg)"; else fail "invalid exclude regex → 400" "HTTP $st $msg"; fi
[ "$(api GET /v2.6/allowlists/badre)" = 404 ] && pass "the refused policy was not stored" || fail "the refused policy was not stored"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); b["runtime_policy"]=json.load(open(sys.argv[2]))["runtime_policy"]; json.dump(b,open(sys.argv[3],"w"))' \
  "$T/add-$U1.json" "$T/badre.json" "$T/badre-add.json"
st=$(api POST "/v2.6/agents/$UG" -H 'Content-Type: application/json' --data-binary @"$T/badre-add.json")
[ "$st" = 400 ] && [ "$(body_status)" = "$msg" ] && pass "an add with an invalid exclude regex → 400, same message" \
  || fail "an add with an invalid exclude regex → 400" "HTTP $st $(body_status)"
[ "$(api GET "/v2.6/agents/$UX")" = 404 ] && pass "unknown agent: GET → 404" || fail "unknown agent: GET → 404"
[ "$(api DELETE "/v2.6/agents/$UX")" = 404 ] && pass "unknown agent: DELETE → 404" || fail "unknown agent: DELETE → 404"
[ "$(api PUT "/v2.6/agents/$UX/reactivate")" = 400 ] && pass "unknown agent: reactivate → 400 (Keylime's code)" || fail "unknown agent: reactivate → 400"
st=$(api POST "/v2.6/agents/$UX" -H 'Content-Type: application/json' --data-binary @"$T/add-$U1.json")
[ "$st" = 404 ] && pass "adding an agent the registrar does not know → 404" || fail "adding an unregistered agent → 404" "HTTP $st $(body_status)"
st=$(api POST "/v2.6/agents/$U1" -H 'Content-Type: application/json' --data-binary @"$T/add-$U1.json")
[ "$st" = 409 ] && pass "adding an agent twice → 409" || fail "adding an agent twice → 409" "HTTP $st"

# A second verifier with a tiny max_upload_size: 413.
P2=$(free_port); R2=$(free_port); RT2=$(free_port)
sed -e "s|^port = $CV_PORT|port = $P2|" -e "s|^port = $REG_PORT|port = $R2|" -e "s|^tls_port = $REG_TLS_PORT|tls_port = $RT2|" \
  -e "s|^database = .*|database = $T/verifier2/db.sqlite|" \
  "$T/verifier.conf" >"$T/verifier2.conf"
sed -i '/^\[registrar\]/i max_upload_size = 1024' "$T/verifier2.conf"
"$VERIFIER" --config "$T/verifier2.conf" >>"$T/verifier2.log" 2>&1 &
V2=$!; RIG_PIDS+=("$V2")
if wait_http "https://127.0.0.1:$P2/version" 20; then
  head -c 4096 /dev/zero | tr '\0' a >"$T/big.json"
  st=$(vcurl -o "$T/api.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$T/big.json" "https://127.0.0.1:$P2/v2.6/allowlists/big")
  [ "$st" = 413 ] && expect_grep "body over max_upload_size → 413" "Request body too large" "$(body_status)" || fail "body over max_upload_size → 413" "HTTP $st"
  st=$(vcurl -o /dev/null -w '%{http_code}' "https://127.0.0.1:$P2/version")
  [ "$st" = 200 ] && pass "the second verifier keeps running after a 413" || fail "the second verifier keeps running after a 413"
  kill "$V2"; wait "$V2" 2>/dev/null
else
  fail "second verifier starts" "$(tail -3 "$T/verifier2.log")"
fi

# An agent answering garbage: it fails with invalid_data, the daemon keeps running.
st=$(add "$UG" "$T/pol2.json")
[ "$st" = 200 ] || fail "garbage agent added" "HTTP $st $(body_status)"
wait_state "an agent answering garbage fails (invalid_data)" "$UG" 10 "st in (7, 9) and any('invalid_data' in x['event_id'] for x in f)"
[ "$(vcurl -o /dev/null -w '%{http_code}' "$CV_URL/version")" = 200 ] && kill -0 "$VERIFIER_PID" \
  && pass "the verifier keeps running after garbage" || fail "the verifier keeps running after garbage"

# ---- 10. 40 fake agents attested while the API writes ---------------------------------------------------
ok=1
for n in $(seq 0 $NF); do
  for _ in $(seq 100); do [ -s "$T/f$n.port" ] && [ -s "$T/f$n.ak" ] && break; sleep 0.1; done
  [ -s "$T/f$n.port" ] || ok=0
done
[ $ok = 1 ] || fail "fake agents start"
fid() { printf 'f0000000-0000-4000-8000-%012d\n' "$1"; }
{ echo "BEGIN;"; for n in $(seq 1 $NF); do reg_sql "$(fid "$n")" "$T/f$n.ak" "$(head -1 "$T/f$n.port")"; done
  for n in $(seq 1 30); do reg_sql "$(fid $((1000 + n)))" "$T/f0.ak" "$(head -1 "$T/f0.port")"; done; echo "COMMIT;"; } >"$T/reg.sql"
db <"$T/reg.sql"
VQ addbodies "$REG" "$T/polf.json" "$T" $(for n in $(seq 1 $NF) $(seq 1001 1030); do fid "$n"; done)
bad=0
for n in $(seq 1 $NF); do
  st=$(api POST "/v2.6/agents/$(fid "$n")" -H 'Content-Type: application/json' --data-binary @"$T/add-$(fid "$n").json")
  [ "$st" = 200 ] || bad=$((bad + 1))
done
[ $bad = 0 ] && pass "$NF fake agents added" || fail "$NF fake agents added" "$bad refused"
python3 - "$T/polf.json" "$T/polw.json" <<'PY'
import json, sys, base64
p = open(sys.argv[1], "rb").read()
json.dump({"runtime_policy": base64.b64encode(p).decode(), "tpm_policy": None, "runtime_policy_key": ""}, open(sys.argv[2], "w"))
PY
: >"$T/writes.txt"
J='Content-Type: application/json'
for n in $(seq 1 30); do
  x=$(fid $((1000 + n)))
  {
    echo "post-policy $(api POST "/v2.6/allowlists/w$n" -H "$J" --data-binary @"$T/polw.json")"
    echo "put-policy $(api PUT "/v2.6/allowlists/w$n" -H "$J" --data-binary @"$T/polw.json")"
    echo "add-agent $(api POST "/v2.6/agents/$x" -H "$J" --data-binary @"$T/add-$x.json")"
    echo "get-agent $(api GET "/v2.6/agents/$x")"
    echo "list $(api GET "/v2.6/agents/?bulk=true")"
    echo "delete-agent $(api DELETE "/v2.6/agents/$x")"
    echo "delete-policy $(api DELETE "/v2.6/allowlists/w$n")"
  } >>"$T/writes.txt"
done
want="post-policy 201 put-policy 201 add-agent 200 get-agent 200 list 200 delete-agent 200 delete-policy 204"
bad=$(paste -d' ' - - - - - - - <"$T/writes.txt" | grep -vcxF "$want")
five=$(awk '$2 ~ /^5/ || $2 == "000"' "$T/writes.txt" | wc -l)
[ "$five" = 0 ] && pass "210 API calls while $NF agents are attested: no 5xx" || fail "API calls under load: no 5xx" "$five 5xx/000: $(awk '$2 ~ /^5/ || $2 == "000"' "$T/writes.txt" | sort | uniq -c | head -3 | tr '\n' ' ')"
[ "$bad" = 0 ] && pass "every API write under load gave its expected status" || fail "API writes under load" "$bad unexpected: $(paste -d' ' - - - - - - - <"$T/writes.txt" | grep -vxF "$want" | head -2)"
out=$(VQ wait "$CV_URL/v2.6/agents/?bulk=true" 20 \
  "sum(1 for k, v in r.items() if k.startswith('f0000000') and v['operational_state'] == 3 and v['attestation_count'] >= 3) == $NF") \
  && pass "$NF fake agents in Get Quote with rounds counted" || fail "$NF fake agents in Get Quote" "$out"
if grep -qi "database is locked" "$VLOG"; then fail "no 'database is locked' in the log" "$(grep -ci 'database is locked' "$VLOG") lines"
else pass "no 'database is locked' in the log"; fi
rss=0; for p in "${FPIDS[@]}"; do r=$(ps -o rss= -p "$p" 2>/dev/null); rss=$((rss + ${r:-0})); done
echo "info: $NF fake agents use $((rss / 1024)) MiB RSS; verifier $(( $(ps -o rss= -p "$VERIFIER_PID" 2>/dev/null || echo 0) / 1024 )) MiB"
wait_state "real agents still attested after the load" "$U1" 10 "st == 3 and not f"

# ---- the end: clean stop, no sanitizer report ---------------------------------------------------------------
kill -TERM "$VERIFIER_PID"; wait "$VERIFIER_PID"; rc=$?
[ "$rc" = 0 ] && pass "final SIGTERM: exit 0" || fail "final SIGTERM: exit 0" "exit $rc"
if grep -q "Sanitizer\|runtime error" "$VLOG" "$T"/a?/agent.log "$T/verifier2.log" 2>/dev/null; then
  fail "no sanitizer reports" "$(grep -l "Sanitizer\|runtime error" "$VLOG" "$T"/a?/agent.log "$T/verifier2.log" | tr '\n' ' ')"
else pass "no sanitizer reports (verifier, agents)"; fi
