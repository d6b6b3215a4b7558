#!/usr/bin/env bash
# quince-agent end to end on a private swtpm: registration and activation with the registrar of
# quince-verifier, the REST API and its parameter checks, quotes checked with tpm2_checkquote,
# incremental measurement lists that replay to the quoted PCR 10, the AK kept across restarts,
# kill -9 and restart five times, a stopped TPM (SIGSTOP) giving a timely 5xx and recovery,
# run_as a non-root user with a root-only list.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm tpm2_checkquote curl python3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00000
LIST=$QUINCE_TMP/ima/ascii_runtime_measurements
mkdir -p "$QUINCE_TMP/ima"
"$TOOLS/ima_gen" --out-dir "$QUINCE_TMP/ima" --entries 40 --seed 7 >/dev/null 2>&1 || fail "ima_gen"

start_swtpm tpm ekcert
emulate "$TCTI_tpm" "$LIST" || fail "emulator replays the list"
start_verifier || { fail "verifier starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 1; }
REG=$REG_URL     # the registrar's TLS port: show/list/delete are served there only

# ---- a registrar that is down: the agent retries and says so --------------------------------------
SAVED_REG=$REG_PORT; REG_PORT=$(free_port)
start_agent a1 "$UUID" "$TCTI_tpm" "$LIST"
if wait_line 60 "$QUINCE_TMP/a1/agent.log" "retrying in"; then pass "agent retries an unreachable registrar"; else fail "agent retries an unreachable registrar" "$(tail -3 "$QUINCE_TMP/a1/agent.log")"; fi
kill "$AGENT_PID_a1"; wait "$AGENT_PID_a1" 2>/dev/null
REG_PORT=$SAVED_REG

# ---- registration -----------------------------------------------------------------------------------
start_agent a1 "$UUID" "$TCTI_tpm" "$LIST"
AG=$(AG_URL a1); AGN=a1
if wait_http "$AG/version" 30; then pass "agent serves after activation"; else fail "agent serves after activation" "$(tail -5 "$QUINCE_TMP/a1/agent.log")"; exit 1; fi
expect_grep "agent logs its registration" "registered and activated" "$(cat "$QUINCE_TMP/a1/agent.log")"
REC=$(vcurl "$REG/v2.6/agents/$UUID")
expect_grep "registrar shows the active agent" '"aik_tpm"' "$REC"
AK1=$(printf '%s' "$REC" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"]["aik_tpm"])')
printf '%s' "$REC" | python3 -c 'import json,sys; r=json.load(sys.stdin)["results"]; assert r.get("ekcert"), "no ekcert"' 2>/dev/null \
  && pass "EK certificate read from NV and registered" || fail "EK certificate read from NV and registered"

# ---- REST API ----------------------------------------------------------------------------------------
code() { acurl "$AGN" -o "$QUINCE_TMP/body" -w '%{http_code}' "$@"; }
[ "$(code "$AG/version")" = 200 ] && grep -q '"supported_versions"' "$QUINCE_TMP/body" && pass "/version" || fail "/version"
[ "$(code "$AG/v2.2/agent/info")" = 200 ] && grep -q "\"agent_uuid\": *\"$UUID\"" "$QUINCE_TMP/body" && pass "/agent/info" || fail "/agent/info" "$(cat "$QUINCE_TMP/body")"
[ "$(code "$AG/v2.1/agent/info")" = 404 ] && pass "/agent/info needs 2.2" || fail "/agent/info needs 2.2"
[ "$(code "$AG/v2.1/keys/pubkey")" = 200 ] && grep -q 'BEGIN PUBLIC KEY' "$QUINCE_TMP/body" && pass "/keys/pubkey" || fail "/keys/pubkey"
[ "$(code "$AG/v2.9/keys/pubkey")" = 400 ] && grep -q 'API version not supported' "$QUINCE_TMP/body" && pass "unknown version → 400" || fail "unknown version → 400" "$(cat "$QUINCE_TMP/body")"
[ "$(code "$AG/v2.1/nothing/here")" = 404 ] && pass "unknown path → 404" || fail "unknown path → 404"
[ "$(code -X POST "$AG/v2.1/quotes/identity?nonce=abc")" = 405 ] && pass "wrong method → 405" || fail "wrong method → 405"
Q="$AG/v2.1/quotes/integrity"
[ "$(code "$Q?nonce=abc-def&mask=0x400&partial=0")" = 400 ] && pass "non-alphanumeric nonce → 400" || fail "non-alphanumeric nonce → 400"
LONG=$(printf 'a%.0s' $(seq 65))
[ "$(code "$Q?nonce=$LONG&mask=0x400&partial=0")" = 400 ] && pass "65-character nonce → 400" || fail "65-character nonce → 400"
[ "$(code "$Q?nonce=abc&mask=0xZZ&partial=0")" = 400 ] && pass "bad mask → 400" || fail "bad mask → 400"
[ "$(code "$Q?nonce=abc&mask=0x1000000&partial=0")" = 400 ] && pass "mask beyond PCR 23 → 400" || fail "mask beyond PCR 23 → 400"
[ "$(code "$Q?nonce=abc&mask=0x400&partial=2")" = 400 ] && grep -q "partial" "$QUINCE_TMP/body" && pass "partial=2 → 400" || fail "partial=2 → 400"
[ "$(code "$Q?nonce=abc&mask=0x400")" = 400 ] && pass "missing partial → 400" || fail "missing partial → 400"
[ "$(code "$Q?%zz=1&nonce=abc&mask=0x400&partial=0")" != 000 ] && kill -0 "$AGENT_PID_a1" && pass "broken query string: agent keeps running" || fail "broken query string"

# ---- identity quote checked by tpm2_checkquote ------------------------------------------------------
# split_quote JSON DIR: writes DIR/{msg,sig,pcrs,pub.pem,fields}
split_quote() {
  python3 - "$1" "$2" <<'PY'
import base64, json, sys
r = json.load(open(sys.argv[1]))["results"]
q = r["quote"]; assert q[0] == "r"
a, s, p = q[1:].split(":")
d = sys.argv[2]
open(d + "/msg", "wb").write(base64.b64decode(a))
open(d + "/sig", "wb").write(base64.b64decode(s))
open(d + "/pcrs", "wb").write(base64.b64decode(p))
if "pubkey" in r: open(d + "/pub.pem", "w").write(r["pubkey"])
open(d + "/fields", "w").write(json.dumps({k: v for k, v in r.items() if k != "ima_measurement_list"}))
if "ima_measurement_list" in r: open(d + "/list", "w").write(r["ima_measurement_list"])
PY
}
printf '%s' "$AK1" | base64 -d >"$QUINCE_TMP/ak.tss"
expect_rc "the registered AK is a TPM2B_PUBLIC that tpm2_print reads" 0 tpm2_print -t TPM2B_PUBLIC "$QUINCE_TMP/ak.tss"
python3 - "$QUINCE_TMP/ak.tss" "$QUINCE_TMP/ak.pem" <<'PY' || fail "AK to PEM"
import struct, sys, subprocess, base64
b = open(sys.argv[1], "rb").read()
# TPM2B_PUBLIC: size, type, nameAlg, attrs, authPolicy(2B), params (RSA: sym alg(=NULL 0x10), scheme, [hash], keyBits, exponent), unique(2B)
o = 2
typ, name_alg, attrs = struct.unpack(">HHI", b[o:o+8]); o += 8
n = struct.unpack(">H", b[o:o+2])[0]; o += 2 + n
assert typ == 0x0001, "RSA AK expected"
sym = struct.unpack(">H", b[o:o+2])[0]; o += 2
if sym != 0x0010: o += 4
scheme = struct.unpack(">H", b[o:o+2])[0]; o += 2
if scheme != 0x0010: o += 2
bits, exp = struct.unpack(">HI", b[o:o+6]); o += 6
n = struct.unpack(">H", b[o:o+2])[0]; mod = b[o+2:o+2+n]
e = exp or 65537
def der_len(l):
    return bytes([l]) if l < 128 else (bytes([0x81, l]) if l < 256 else bytes([0x82, l >> 8, l & 255]))
def der_int(x):
    bs = x.to_bytes((x.bit_length() + 8) // 8, "big")
    return b"\x02" + der_len(len(bs)) + bs
rsapub = der_int(int.from_bytes(mod, "big")) + der_int(e)
rsapub = b"\x30" + der_len(len(rsapub)) + rsapub
alg = bytes.fromhex("300d06092a864886f70d0101010500")
bit = b"\x03" + der_len(len(rsapub) + 1) + b"\x00" + rsapub
spki = alg + bit
spki = b"\x30" + der_len(len(spki)) + spki
pem = "-----BEGIN PUBLIC KEY-----\n" + "\n".join(base64.b64encode(spki).decode()[i:i+64] for i in range(0, len(base64.b64encode(spki)), 64)) + "\n-----END PUBLIC KEY-----\n"
open(sys.argv[2], "w").write(pem)
PY
NONCE=abcdef0123456789ABCD
mkdir -p "$QUINCE_TMP/q1"
[ "$(code "$AG/v2.1/quotes/identity?nonce=$NONCE")" = 200 ] && pass "identity quote" || fail "identity quote" "$(cat "$QUINCE_TMP/body")"
split_quote "$QUINCE_TMP/body" "$QUINCE_TMP/q1"
NHEX=$(printf '%s' "$NONCE" | od -An -tx1 | tr -d ' \n')
if tpm2_checkquote -u "$QUINCE_TMP/ak.pem" -m "$QUINCE_TMP/q1/msg" -s "$QUINCE_TMP/q1/sig" -f "$QUINCE_TMP/q1/pcrs" -g sha256 -q "$NHEX" >"$QUINCE_TMP/q1/check" 2>&1
then pass "tpm2_checkquote accepts the identity quote"; else fail "tpm2_checkquote accepts the identity quote" "$(tail -3 "$QUINCE_TMP/q1/check")"; fi
# PCR 16 = sha256(zeros || sha256(pubkey PEM))
P16=$(python3 -c 'import hashlib,sys; k=open(sys.argv[1],"rb").read(); print(hashlib.sha256(b"\0"*32+hashlib.sha256(k).digest()).hexdigest())' "$QUINCE_TMP/q1/pub.pem")
grep -qi "16 *: *0x$P16" "$QUINCE_TMP/q1/check" && pass "PCR 16 is bound to the payload key" || fail "PCR 16 is bound to the payload key" "want $P16: $(grep ' 16' "$QUINCE_TMP/q1/check")"

# ---- integrity quotes and incremental lists ------------------------------------------------------------
integrity() { # ENTRY DIR
  mkdir -p "$2"
  local c; c=$(code "$AG/v2.1/quotes/integrity?nonce=$NONCE&mask=0x400&partial=0&ima_ml_entry=$1")
  cp "$QUINCE_TMP/body" "$2/body.json"
  split_quote "$2/body.json" "$2" 2>/dev/null
  echo "$c"
}
pcr10_of() { # DIR: PCR 10 (sha256) from tpm2_checkquote's output
  tpm2_checkquote -u "$QUINCE_TMP/ak.pem" -m "$1/msg" -s "$1/sig" -f "$1/pcrs" -g sha256 -q "$NHEX" 2>/dev/null \
    | sed -n 's/^ *10 *: *0x//p' | tr 'A-F' 'a-f' | head -1
}
[ "$(integrity 0 "$QUINCE_TMP/q2")" = 200 ] && pass "integrity quote" || fail "integrity quote" "$(cat "$QUINCE_TMP/q2/body.json")"
python3 -c 'import json,sys; f=json.load(open(sys.argv[1])); assert isinstance(f["boottime"], int) and f["boottime"] > 0; assert f["ima_measurement_list_entry"] == 0' "$QUINCE_TMP/q2/fields" \
  && pass "boottime and ima_measurement_list_entry are integers" || fail "boottime and ima_measurement_list_entry are integers" "$(cat "$QUINCE_TMP/q2/fields")"
cmp -s "$QUINCE_TMP/q2/list" "$LIST" && pass "entry 0 returns the whole list" || fail "entry 0 returns the whole list"
PCR=$(pcr10_of "$QUINCE_TMP/q2")
if "$TENANT" check-log --log "$QUINCE_TMP/q2/list" --allowlist "$QUINCE_TMP/ima/allowlist.txt" --pcr10 "$PCR" --bank sha256 --quiet
then pass "the served list replays to the quoted PCR 10"; else fail "the served list replays to the quoted PCR 10" "pcr=$PCR"; fi

N0=$(wc -l <"$LIST")
# Append five entries; the last one written in two pieces (a partial line first).
for i in 1 2 3 4; do "$TOOLS/ima_gen" --out-dir "$QUINCE_TMP/ima" --append-file /etc/hostname --name "/usr/bin/new$i" >/dev/null 2>&1; done
cp "$LIST" "$QUINCE_TMP/full"; "$TOOLS/ima_gen" --out-dir "$QUINCE_TMP/ima" --append-file /etc/hostname --name /usr/bin/new5 >/dev/null 2>&1
LAST=$(tail -1 "$LIST"); cp "$QUINCE_TMP/full" "$LIST"
printf '%s' "${LAST:0:30}" >>"$LIST"
emulate "$TCTI_tpm" "$LIST"
[ "$(integrity "$N0" "$QUINCE_TMP/q3")" = 200 ] && [ "$(wc -l <"$QUINCE_TMP/q3/list")" = 4 ] \
  && pass "a partial last line is not served" || fail "a partial last line is not served" "$(wc -l <"$QUINCE_TMP/q3/list") lines"
printf '%s\n' "${LAST:30}" >>"$LIST"
emulate "$TCTI_tpm" "$LIST"
[ "$(integrity "$N0" "$QUINCE_TMP/q4")" = 200 ] && [ "$(wc -l <"$QUINCE_TMP/q4/list")" = 5 ] \
  && pass "entries appended between quotes come back incrementally" || fail "entries appended between quotes come back incrementally"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["ima_measurement_list_entry"] == int(sys.argv[2])' "$QUINCE_TMP/q4/fields" "$N0" \
  && pass "ima_measurement_list_entry is the requested entry" || fail "ima_measurement_list_entry is the requested entry"
cat "$QUINCE_TMP/q2/list" "$QUINCE_TMP/q4/list" >"$QUINCE_TMP/joined"
PCR=$(pcr10_of "$QUINCE_TMP/q4")
# The appended files are not in the allowlist (exit 1 for fnf), but the PCR must match.
out=$("$TENANT" check-log --log "$QUINCE_TMP/joined" --allowlist "$QUINCE_TMP/ima/allowlist.txt" --pcr10 "$PCR" --bank sha256 2>&1); rc=$?
if [ $rc -le 1 ] && [ -n "$PCR" ] && ! grep -q "does not match" <<<"$out"; then pass "both pieces replay to the new PCR 10"
else fail "both pieces replay to the new PCR 10" "rc=$rc pcr=$PCR"; fi
NOW=$(wc -l <"$LIST")
[ "$(integrity $((NOW + 10)) "$QUINCE_TMP/q5")" = 200 ] && python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["ima_measurement_list_entry"] == 0' "$QUINCE_TMP/q5/fields" \
  && cmp -s "$QUINCE_TMP/q5/list" "$LIST" && pass "a request beyond the end is answered from entry 0" || fail "a request beyond the end is answered from entry 0"
[ "$(integrity "$NOW" "$QUINCE_TMP/q6")" = 200 ] && [ ! -s "$QUINCE_TMP/q6/list" ] && pass "a request at the end returns an empty list" || fail "a request at the end returns an empty list"

# ---- restarts keep the AK; kill -9 five times -----------------------------------------------------------
kill "$AGENT_PID_a1"; wait "$AGENT_PID_a1" 2>/dev/null; rc=$?
[ "$rc" = 0 ] && pass "SIGTERM stops the agent cleanly" || fail "SIGTERM stops the agent cleanly" "exit $rc"
for round in 1 2 3 4 5; do
  start_agent a1 "$UUID" "$TCTI_tpm" "$LIST"
  AG=$(AG_URL a1)
  ok=0
  if wait_http "$AG/version" 30 && [ "$(code "$AG/v2.1/quotes/identity?nonce=round$round")" = 200 ]; then ok=1; fi
  kill -9 "$AGENT_PID_a1"; wait "$AGENT_PID_a1" 2>/dev/null
  [ $ok = 1 ] || break
done
[ $ok = 1 ] && pass "kill -9 and restart five times: still quotes" || fail "kill -9 and restart five times: still quotes" "round $round: $(tail -3 "$QUINCE_TMP/a1/agent.log")"
AK2=$(vcurl "$REG/v2.6/agents/$UUID" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"]["aik_tpm"])' 2>/dev/null)
[ -n "$AK2" ] && [ "$AK1" = "$AK2" ] && pass "the AK survives restarts" || fail "the AK survives restarts"
# Leave a transient object behind (as a killed process would): the next agent flushes it.
TPM2TOOLS_TCTI="$TCTI_tpm" tpm2_createprimary -C o -c "$QUINCE_TMP/leftover.ctx" >/dev/null 2>&1
LEFT=$(TPM2TOOLS_TCTI="$TCTI_tpm" tpm2_getcap handles-transient 2>/dev/null | grep -c 0x)
[ "$LEFT" -gt 0 ] && pass "a leftover transient object is in the TPM" || fail "a leftover transient object is in the TPM"

# ---- a TPM that stops answering -------------------------------------------------------------------------
AGENT_TPM_TIMEOUT_MS=3000 start_agent a1 "$UUID" "$TCTI_tpm" "$LIST"
AG=$(AG_URL a1)
wait_http "$AG/version" 30
NOW_LEFT=$(TPM2TOOLS_TCTI="$TCTI_tpm" tpm2_getcap handles-transient 2>/dev/null | grep -c 0x)
[ "$NOW_LEFT" = 0 ] && grep -q "flushed [0-9]* transient" "$QUINCE_TMP/a1/agent.log" \
  && pass "start-up flushes leftover transient objects; none stay loaded" \
  || fail "start-up flushes leftover transient objects; none stay loaded" "$NOW_LEFT left"
kill -STOP "$SWTPM_PID_tpm"
t0=$(date +%s%N)
c=$(code --max-time 20 "$AG/v2.1/quotes/identity?nonce=stopped")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "${c:0:1}" = 5 ] && [ "$ms" -lt 10000 ]; then pass "a stopped TPM gives a 5xx in time (${ms} ms)"; else fail "a stopped TPM gives a 5xx in time" "status $c after $ms ms"; fi
grep -q "did not answer" "$QUINCE_TMP/body" && pass "the 5xx says the TPM did not answer" || fail "the 5xx says the TPM did not answer" "$(cat "$QUINCE_TMP/body")"
kill -CONT "$SWTPM_PID_tpm"
ok=0
for _ in $(seq 20); do [ "$(code "$AG/v2.1/quotes/identity?nonce=back")" = 200 ] && { ok=1; break; }; sleep 0.5; done
[ $ok = 1 ] && pass "the agent recovers after SIGCONT" || fail "the agent recovers after SIGCONT" "$(cat "$QUINCE_TMP/body")"
kill "$AGENT_PID_a1"; wait "$AGENT_PID_a1" 2>/dev/null

# ---- run_as a non-root user with a root-only list ----------------------------------------------------
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  cp "$LIST" "$QUINCE_TMP/ima/rootonly"; chmod 0400 "$QUINCE_TMP/ima/rootonly"
  chmod 0755 "$QUINCE_TMP" "$QUINCE_TMP/ima"
  start_agent a2 "$UUID" "$TCTI_tpm" "$QUINCE_TMP/ima/rootonly" "run_as = nobody" "state_dir = $QUINCE_TMP/a1/state"
  AG=$(AG_URL a2); AGN=a1     # a2 shares a1's state_dir (and so its certificate)
  if wait_http "$AG/version" 30 && [ "$(integrity 0 "$QUINCE_TMP/q7")" = 200 ] && cmp -s "$QUINCE_TMP/q7/list" "$LIST"
  then pass "run_as nobody still serves a root-only list"; else fail "run_as nobody still serves a root-only list" "$(tail -3 "$QUINCE_TMP/a2/agent.log")"; fi
  grep -q "running as nobody" "$QUINCE_TMP/a2/agent.log" && pass "the agent says it dropped privileges" || fail "the agent says it dropped privileges"
  [ "$(ps -o user= -p "$AGENT_PID_a2" | tr -d ' ')" = nobody ] && pass "the agent runs as nobody" || fail "the agent runs as nobody"
  kill "$AGENT_PID_a2"; wait "$AGENT_PID_a2" 2>/dev/null
fi

# ---- a vanished list: clear error, agent keeps running --------------------------------------------------
cp "$LIST" "$QUINCE_TMP/ima/vanish"
start_agent a3 "$UUID" "$TCTI_tpm" "$QUINCE_TMP/ima/vanish" "state_dir = $QUINCE_TMP/a1/state"
AG=$(AG_URL a3); AGN=a1     # a3 shares a1's state_dir
wait_http "$AG/version" 30
: >"$QUINCE_TMP/ima/vanish"
c=$(integrity 5 "$QUINCE_TMP/q8")
[ "$c" = 200 ] && kill -0 "$AGENT_PID_a3" && pass "a truncated list is answered from entry 0, agent alive" || fail "a truncated list" "status $c"

# ---- a registrar that refuses (changed AK → 403) ends the agent with a reason ---------------------------
kill "$AGENT_PID_a3"; wait "$AGENT_PID_a3" 2>/dev/null
# A fresh state directory means a new AK under the same uuid: the registrar refuses it.
start_agent a4 "$UUID" "$TCTI_tpm" "$LIST"
for _ in $(seq 100); do kill -0 "$AGENT_PID_a4" 2>/dev/null || break; sleep 0.2; done
if ! kill -0 "$AGENT_PID_a4" 2>/dev/null && grep -q "403" "$QUINCE_TMP/a4/agent.log"; then pass "a 403 from the registrar ends the agent with a reason"
else fail "a 403 from the registrar ends the agent with a reason" "$(tail -3 "$QUINCE_TMP/a4/agent.log")"; fi
