#!/usr/bin/env bash
# Secure payload delivery (U/V keys) end to end on a real rig (swtpm + ima_gen list + ima-emulator
# + quince-verifier + quince-agent, mTLS on every link). The agents' secure directories are on
# the existing /dev/shm tmpfs (lib_rig.sh: $RIG_SHM/NAME/secure), so nothing is mounted.
#  - the seed's command verbatim with -f payload.zip: decrypted, unpacked, autorun.sh ran (mTLS),
#    the verifier went Provide V → Get Quote and sends V once; V is never shown or logged;
#  - -c update -f with a new file (and --verify), -k/-p with a pre-made key file;
#  - refused before anything is sent: a payload over max_payload_size, a tampered or truncated -p;
#  - an agent whose first quote fails (a file not in the allowlist) never gets V: Invalid Quote,
#    /keys/verify never succeeds, nothing decrypted, --verify times out with a clear message;
#  - straight to the agent's /keys endpoints (curl with the rig's client certificate): bad
#    base64, wrong key lengths, a bad auth_tag form, a well-formed wrong auth_tag (never a K), a
#    V before its U (no K until the U comes), a tampered or truncated ciphertext, a zip with ../,
#    more U halves than the bound (the oldest dropped); the agent keeps running and writes nothing outside its secure directory;
#  - an insecure agent (plain HTTP, enable_insecure_payload = false) unpacks but never runs
#    autorun.sh.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
PT=$TOOLS/payload_tool
[ -x "$PT" ] || { fail "payload_tool built" "$PT missing"; exit 0; }

UUID_UP=D432FBB3-D2F1-4A97-9EF7-75BD81C00000
UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00000
UUID2=d432fbb3-d2f1-4a97-9ef7-75bd81c000b2
UUID3=d432fbb3-d2f1-4a97-9ef7-75bd81c000b3
IMA=$QUINCE_TMP/ima
LIST=$IMA/ascii_runtime_measurements
W=$QUINCE_TMP/work
mkdir -p "$IMA" "$W"
: >"$W/empty.conf"
export QUINCE_CONFIG=$W/empty.conf

"$TOOLS/ima_gen" --out-dir "$IMA" --entries 30 --seed 11 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }
cd "$W" || exit 1
cp "$IMA/allowlist.txt" allowlist.txt
printf '/tmp/.*\n' >excludes.txt

export QUOTE_INTERVAL=0.3
start_swtpm tpm ekcert
emulate "$TCTI_tpm" "$LIST" || fail "emulator replays the list"
start_verifier || { fail "verifier starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 0; }
VLOG=$QUINCE_TMP/verifier.log
start_agent a1 "$UUID_UP" "$TCTI_tpm" "$LIST"
if wait_http "$(AG_URL a1)/version" 30; then pass "agent up"; else fail "agent up" "$(tail -3 "$QUINCE_TMP/a1/agent.log")"; exit 0; fi
SEC1=$RIG_SHM/a1/secure
ALOG1=$QUINCE_TMP/a1/agent.log
case $SEC1 in /dev/shm/*) pass "secure_dir is on /dev/shm";; *) fail "secure_dir is on /dev/shm" "$SEC1";; esac
[ "$(stat -c %a "$SEC1")" = 700 ] && pass "secure dir mode 0700" || fail "secure dir mode 0700" "$(stat -c %a "$SEC1")"
grep -q "payloads are decrypted into $SEC1 (an existing tmpfs)" "$ALOG1" && pass "agent uses the existing tmpfs (no mount)" \
  || fail "agent uses the existing tmpfs (no mount)" "$(grep -i secure "$ALOG1" | tail -2)"

T() { "$TENANT" -vp "$CV_PORT" -rp "$REG_TLS_PORT" "$@"; }
# wait_for SECS CMD...: until CMD succeeds.
wait_for() {
  local secs=$1; shift
  local i
  for i in $(seq $((secs * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}
same() { cmp -s "$1" "$2"; }
state_of() { vcurl "$CV_URL/v2.6/agents/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"]["operational_state"])' 2>/dev/null; }
# apost NAME PATH BODYFILE: POST to agent NAME (mTLS); prints "<status> <body>".
apost() { acurl "$1" -o "$W/apost.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            --data-binary "@$3" "$(AG_URL "$1")$2"; echo " $(cat "$W/apost.out")"; }
averify() { acurl "$1" "$(AG_URL "$1")/v2.6/keys/verify?challenge=$2"; }
hmac_of() { averify "$1" "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"].get("hmac",""))' 2>/dev/null; }
# expect_err NAME RC PATTERN CMD...: exit status RC and PATTERN in its one stderr line.
expect_err() {
  local name=$1 want=$2 pat=$3; shift 3
  "$@" >"$W/out" 2>"$W/err"; local rc=$?
  if [ "$rc" != "$want" ]; then fail "$name" "exit $rc, wanted $want: $(tr '\n' ' ' <"$W/err")"
  elif [ "$(wc -l <"$W/err")" != 1 ]; then fail "$name" "stderr: $(tr '\n' '|' <"$W/err")"
  elif ! grep -qF -- "$pat" "$W/err"; then fail "$name" "missing '$pat': $(cat "$W/err")"
  else pass "$name"; fi
}

# ---- the seed's command with -f payload.zip ---------------------------------------------------------
head -c 3000 /dev/urandom | base64 >secret.txt
printf '#!/bin/sh\necho "autorun ran in $(pwd)" >autorun.marker\n' >autorun.sh
python3 - <<'PY' || fail "zip built"
import zipfile
with zipfile.ZipFile("payload.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.write("secret.txt", "secret.txt")
    z.write("autorun.sh", "autorun.sh")
    z.writestr("conf/app.conf", "key = value\n")
PY
# -u in upper case: quince-agent registered its id in lower case and HMACs that form, so the
# tenant's auth_tag must cover the id as registered (the registrar record's agent_id), not -u's.
out=$("$TENANT" -v 127.0.0.1 -t 127.0.0.1 --uuid "$UUID_UP" -f payload.zip --allowlist allowlist.txt --exclude excludes.txt \
      -vp "$CV_PORT" -rp "$REG_TLS_PORT" -tp "$AGENT_PORT_a1" 2>"$W/add.err"); rc=$?
[ $rc = 0 ] && pass "seed command with -f payload.zip" || fail "seed command with -f payload.zip" "exit $rc: $(cat "$W/add.err")"
expect_grep "tenant says U and the payload went to the agent" "agent $UUID_UP: U and the encrypted payload" "$out"
expect_grep "tenant added the agent" "agent $UUID_UP added to the verifier" "$out"
if wait_for 30 same "$SEC1/decrypted_payload" payload.zip; then pass "payload arrives decrypted (same bytes)"
else fail "payload arrives decrypted (same bytes)" "$(tail -5 "$ALOG1")"; fi
[ "$(stat -c %a "$SEC1/decrypted_payload" 2>/dev/null)" = 600 ] && pass "decrypted_payload mode 0600" || fail "decrypted_payload mode 0600"
if wait_for 10 same "$SEC1/unzipped/secret.txt" secret.txt && same "$SEC1/unzipped/autorun.sh" autorun.sh &&
   [ "$(cat "$SEC1/unzipped/conf/app.conf" 2>/dev/null)" = "key = value" ]; then pass "zip unpacked into unzipped/"
else fail "zip unpacked into unzipped/" "$(ls -R "$SEC1" 2>&1 | tr '\n' ' ')"; fi
if wait_for 10 test -s "$SEC1/unzipped/autorun.marker"; then pass "autorun.sh ran (mTLS on)"; else fail "autorun.sh ran (mTLS on)" "$(grep -i script "$ALOG1")"; fi
expect_grep "autorun.sh ran in unzipped/" "autorun ran in $SEC1/unzipped" "$(cat "$SEC1/unzipped/autorun.marker" 2>/dev/null)"
grep -q "agent $UUID attested (Provide V)" "$VLOG" && pass "verifier: first good quote → Provide V" || fail "verifier: first good quote → Provide V" "$(grep "$UUID" "$VLOG" | tail -3)"
grep -q "agent $UUID: V delivered" "$VLOG" && pass "verifier: V delivered" || fail "verifier: V delivered"
wait_for 10 test "$(state_of "$UUID")" = 3 && pass "verifier: back to Get Quote" \
  || fail "verifier: back to Get Quote" "state $(state_of "$UUID"); $(grep -i "$UUID\|lease\|refused" "$VLOG" | tail -8 | tr '\n' ' ')"
sleep 2
n=$(grep -c "agent $UUID: V delivered" "$VLOG")
[ "$n" = 1 ] && pass "V is sent once (not with every quote)" || fail "V is sent once (not with every quote)" "$n times"
v=$(vcurl "$CV_URL/v2.6/agents/$UUID" | python3 -c 'import json,sys; r=json.load(sys.stdin)["results"]; print("absent" if "v" not in r else r["v"])')
[ "$v" = None ] && pass "verifier status never shows V (v: null)" || fail "verifier status never shows V (v: null)" "$v"
grep -q '"v"\|encrypted_key' "$VLOG" && fail "verifier log has no V" "$(grep '"v"\|encrypted_key' "$VLOG" | head -1)" || pass "verifier log has no V"
grep -q "payload script autorun.sh exited with status 0" "$ALOG1" && pass "agent logs the script's exit status" || fail "agent logs the script's exit status"

# ---- -c update -f with a new file, and --verify -------------------------------------------------------
printf 'second payload %s\n' "$(date +%N)" >new.txt
out=$(T -c update -u "$UUID" -f new.txt --verify --allowlist allowlist.txt --exclude excludes.txt 2>"$W/upd.err"); rc=$?
[ $rc = 0 ] && pass "update -f new.txt --verify" || fail "update -f new.txt --verify" "exit $rc: $(cat "$W/upd.err")"
expect_grep "--verify: the agent proved it derived K" "agent $UUID proved it derived the bootstrap key K" "$out"
if wait_for 20 same "$SEC1/decrypted_payload" new.txt; then pass "update delivers the new payload"; else fail "update delivers the new payload" "$(tail -3 "$ALOG1")"; fi
wait_for 5 test ! -e "$SEC1/unzipped" && pass "a non-zip payload replaces the unpacked zip" || fail "a non-zip payload replaces the unpacked zip"

# ---- -k / -p: a pre-made key file and sealed payload ----------------------------------------------------
"$PT" keys keys1.txt && printf 'sealed beforehand\n' >pre.txt && "$PT" seal keys1.txt pre.txt pre.b64 || fail "payload_tool keys/seal"
out=$(T -c update -u "$UUID" -k keys1.txt -p pre.b64 --verify --allowlist allowlist.txt 2>"$W/k.err"); rc=$?
[ $rc = 0 ] && pass "update -k keys -p sealed --verify" || fail "update -k keys -p sealed --verify" "exit $rc: $(cat "$W/k.err")"
if wait_for 20 same "$SEC1/decrypted_payload" pre.txt; then pass "-k/-p payload delivered"; else fail "-k/-p payload delivered"; fi
ch=Chal1234567890abcdefXYZ
[ "$(hmac_of a1 "$ch")" = "$("$PT" hmac keys1.txt "$ch")" ] && pass "/keys/verify answers HMAC(K, challenge)" || fail "/keys/verify answers HMAC(K, challenge)"

# ---- refused before anything is sent ---------------------------------------------------------------------
nu=$(grep -c "ukey accepted" "$ALOG1")
head -c 10000 /dev/urandom >big.bin
QUINCE_TENANT_MAX_PAYLOAD_SIZE=4096 expect_err "payload over max_payload_size: exit 2" 2 "exceeds max_payload_size (4096 bytes)" \
  T -c update -u "$UUID" -f big.bin --allowlist allowlist.txt
head -c 900000 /dev/urandom >huge.bin
expect_err "payload over the default 1 MiB limit: exit 2" 2 "exceeds max_payload_size (1048576 bytes)" T -u "$UUID" -f huge.bin
python3 - <<'PY'
import base64
raw = base64.b64decode(open("pre.b64").read())
t = bytearray(raw); t[20] ^= 1
open("tampered.b64", "w").write(base64.b64encode(bytes(t)).decode() + "\n")
open("truncated.b64", "w").write(base64.b64encode(raw[:-5]).decode() + "\n")
PY
expect_err "tampered -p: exit 2" 2 "does not open with the key file's K" T -c update -u "$UUID" -k keys1.txt -p tampered.b64
expect_err "truncated -p: exit 2" 2 "payload authentication failed" T -c update -u "$UUID" -k keys1.txt -p truncated.b64
expect_err "-p without -k: exit 2" 2 "-p/--payload needs -k/--key" T -u "$UUID" -p pre.b64
expect_err "missing -f file: exit 2" 2 "cannot read payload file nofile.zip" T -u "$UUID" -f nofile.zip
[ "$(grep -c "ukey accepted" "$ALOG1")" = "$nu" ] && pass "refused payloads sent nothing to the agent" || fail "refused payloads sent nothing to the agent"
[ "$(state_of "$UUID")" = 3 ] && pass "refused updates left the agent on the verifier" || fail "refused updates left the agent on the verifier" "state $(state_of "$UUID")"
same "$SEC1/decrypted_payload" pre.txt && pass "refused payloads left the delivered one alone" || fail "refused payloads left the delivered one alone"

# ---- an agent that fails before its first success never gets V ------------------------------------------
mkdir -p "$QUINCE_TMP/ima2"
"$TOOLS/ima_gen" --out-dir "$QUINCE_TMP/ima2" --entries 20 --seed 12 >/dev/null 2>&1
LIST2=$QUINCE_TMP/ima2/ascii_runtime_measurements
printf '#!/bin/sh\necho evil\n' >evil.sh
"$TOOLS/ima_gen" --out-dir "$QUINCE_TMP/ima2" --append-file evil.sh --name /root/evil.sh >/dev/null 2>&1
cp "$QUINCE_TMP/ima2/allowlist.txt" allowlist2.txt
sed -i '\#/root/evil.sh#d' allowlist2.txt
start_swtpm tpm2 ekcert
emulate "$TCTI_tpm2" "$LIST2"
start_agent a2 "$UUID2" "$TCTI_tpm2" "$LIST2"
wait_http "$(AG_URL a2)/version" 30 || fail "agent a2 up" "$(tail -3 "$QUINCE_TMP/a2/agent.log")"
SEC2=$RIG_SHM/a2/secure
ALOG2=$QUINCE_TMP/a2/agent.log
printf 'never for a failed agent\n' >p2.txt
QUINCE_TENANT_VERIFY_TIMEOUT_MS=3000 expect_err "--verify times out for a failed agent (exit 1)" 1 \
  "the agent did not prove it derived the key within 3 s" T -u "$UUID2" -f p2.txt --verify --allowlist allowlist2.txt
expect_grep "the timeout message names the verifier state" "state Invalid Quote" "$(cat "$W/err")"
[ "$(state_of "$UUID2")" = 9 ] && pass "failed agent: Invalid Quote" || fail "failed agent: Invalid Quote" "state $(state_of "$UUID2")"
grep -q "ukey accepted" "$ALOG2" && pass "failed agent got its U" || fail "failed agent got its U"
sleep 1
grep -q "vkey" "$ALOG2" && fail "failed agent never gets V" "$(grep vkey "$ALOG2")" || pass "failed agent never gets V"
grep -q "agent $UUID2: V delivered\|agent $UUID2 attested" "$VLOG" && fail "verifier never sends V to a failed agent" || pass "verifier never sends V to a failed agent"
expect_grep "failed agent: /keys/verify never succeeds" "Bootstrap key not yet available." "$(averify a2 abc123)"
[ -z "$(ls -A "$SEC2")" ] && pass "failed agent: nothing decrypted" || fail "failed agent: nothing decrypted" "$(ls -A "$SEC2")"

# ---- straight to the agent's /keys endpoints ------------------------------------------------------------
acurl a1 "$(AG_URL a1)/v2.6/keys/pubkey" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["results"]["pubkey"])' >pub.pem
grep -q "BEGIN PUBLIC KEY" pub.pem && pass "payload public key fetched" || fail "payload public key fetched"
TAG=$(printf 'a%.0s' $(seq 96))
# bad base64, wrong lengths, bad auth_tag form, bad payload
printf '{"auth_tag":"%s","encrypted_key":"@@not base64@@"}' "$TAG" >b1.json
r=$(apost a1 /v2.6/keys/ukey b1.json); expect_grep "bad base64 → 400" "400 " "${r:0:4}"; expect_grep "bad base64: clear error" "encrypted_key is not valid base64" "$r"
printf '{"auth_tag":"%s","encrypted_key":"%s"}' "$TAG" "$("$PT" half 20 pub.pem)" >b2.json
r=$(apost a1 /v2.6/keys/ukey b2.json); expect_grep "U of 20 bytes → 400" "400 " "${r:0:4}"; expect_grep "wrong key length: clear error" "it must be 16 or 32" "$r"
printf '{"encrypted_key":"%s"}' "$("$PT" half 24 pub.pem)" >b3.json
r=$(apost a1 /v2.6/keys/vkey b3.json); expect_grep "V of 24 bytes → 400" "400 " "${r:0:4}"; expect_grep "V length: clear error" "it must be 16 or 32" "$r"
printf '{"auth_tag":"abc","encrypted_key":"%s"}' "$("$PT" half 32 pub.pem)" >b4.json
r=$(apost a1 /v2.6/keys/ukey b4.json); expect_grep "short auth_tag → 400" "auth_tag must be 96 hexadecimal characters" "$r"
printf '{"auth_tag":"%s","encrypted_key":"%s","payload":"***"}' "$TAG" "$("$PT" half 32 pub.pem)" >b5.json
r=$(apost a1 /v2.6/keys/ukey b5.json); expect_grep "bad payload base64 → 400" "payload is not valid base64" "$r"
python3 -c 'import sys; sys.stdout.write("{\"auth_tag\":\"%s\",\"encrypted_key\":\"%s\",\"payload\":\"%s\"}" % (sys.argv[1], sys.argv[2], "A" * 1100000))' \
  "$TAG" "$("$PT" half 32 pub.pem)" >b6.json
r=$(apost a1 /v2.6/keys/ukey b6.json); expect_grep "payload over the agent's max_payload_size → 400" "exceeds max_payload_size" "$r"
printf 'not json' >b7.json
r=$(apost a1 /v2.6/keys/vkey b7.json); expect_grep "vkey: not JSON → 400" "400 " "${r:0:4}"

# a well-formed but wrong auth_tag: U and V both arrive, no K comes of them
"$PT" keys kb.txt && printf 'wrong tag payload\n' >kb.txt.in && "$PT" seal kb.txt kb.txt.in kb.b64
"$PT" ukey kb.txt "$UUID_UP" pub.pem kb.b64 --bad-tag >ub.json && "$PT" vkey kb.txt pub.pem >vb.json
r=$(apost a1 /v2.6/keys/ukey ub.json); expect_grep "ukey with a wrong auth_tag is kept (200)" "200 " "${r:0:4}"
r=$(apost a1 /v2.6/keys/vkey vb.json); expect_grep "its V is accepted (200)" "200 " "${r:0:4}"
sleep 1
K1=$("$PT" hmac keys1.txt "$ch")
h=$(hmac_of a1 "$ch")
[ "$h" = "$K1" ] && [ "$h" != "$("$PT" hmac kb.txt "$ch")" ] && pass "wrong auth_tag: no K derived (K unchanged)" || fail "wrong auth_tag: no K derived (K unchanged)"
same "$SEC1/decrypted_payload" pre.txt && pass "wrong auth_tag: payload not opened" || fail "wrong auth_tag: payload not opened"

# a V before its U: kept, no K until the U arrives; then either order works
"$PT" keys kc.txt && printf 'V came first\n' >order.txt && "$PT" seal kc.txt order.txt kc.b64
"$PT" ukey kc.txt "$UUID_UP" pub.pem kc.b64 >uc.json && "$PT" vkey kc.txt pub.pem >vc.json
r=$(apost a1 /v2.6/keys/vkey vc.json); expect_grep "vkey before the ukey: accepted and kept" "200 " "${r:0:4}"
[ "$(hmac_of a1 "$ch")" = "$K1" ] && pass "a V alone yields no K (K unchanged)" || fail "a V alone yields no K (K unchanged)"
same "$SEC1/decrypted_payload" pre.txt && pass "a V alone opens nothing" || fail "a V alone opens nothing"
r=$(apost a1 /v2.6/keys/ukey uc.json); expect_grep "then its ukey (200)" "200 " "${r:0:4}"
if wait_for 10 same "$SEC1/decrypted_payload" order.txt; then pass "V then U: payload delivered"; else fail "V then U: payload delivered"; fi
[ "$(hmac_of a1 "$ch")" = "$("$PT" hmac kc.txt "$ch")" ] && pass "V then U: K derived" || fail "V then U: K derived"

# a tampered and a truncated ciphertext with the right keys: K is derived, the payload is refused
deliver_bad() { # NAME KIND: KIND tamper|truncate
  "$PT" keys "k$1.txt" && printf 'should never appear\n' >"$1.in" && "$PT" seal "k$1.txt" "$1.in" "$1.b64"
  python3 - "$1.b64" "$2" <<'PY'
import base64, sys
raw = bytearray(base64.b64decode(open(sys.argv[1]).read()))
if sys.argv[2] == "tamper":
    raw[18] ^= 0x40
else:
    raw = raw[:-7]
open(sys.argv[1], "w").write(base64.b64encode(bytes(raw)).decode())
PY
  "$PT" ukey "k$1.txt" "$UUID_UP" pub.pem "$1.b64" >"u$1.json" && "$PT" vkey "k$1.txt" pub.pem >"v$1.json"
  apost a1 /v2.6/keys/ukey "u$1.json" >/dev/null; apost a1 /v2.6/keys/vkey "v$1.json" >/dev/null
}
nf=$(grep -c "payload not delivered" "$ALOG1")
deliver_bad tam tamper
if wait_for 10 test "$(grep -c "payload not delivered: cannot decrypt the payload: payload authentication failed" "$ALOG1")" -gt "$nf"
then pass "tampered ciphertext refused (payload authentication failed)"; else fail "tampered ciphertext refused (payload authentication failed)" "$(tail -2 "$ALOG1")"; fi
nf=$(grep -c "payload not delivered" "$ALOG1")
deliver_bad tru truncate
if wait_for 10 test "$(grep -c "payload not delivered: cannot decrypt the payload: payload authentication failed" "$ALOG1")" -gt "$nf"
then pass "truncated ciphertext refused"; else fail "truncated ciphertext refused" "$(tail -2 "$ALOG1")"; fi
same "$SEC1/decrypted_payload" order.txt && pass "refused ciphertexts left the previous payload" || fail "refused ciphertexts left the previous payload"

# a zip with ../ (and an absolute name): refused as a whole, nothing written outside
python3 - <<'PY'
import zipfile
with zipfile.ZipFile("escape.zip", "w") as z:
    z.writestr("fine.txt", "fine\n")
    z.writestr("../escape.txt", "out\n")
    z.writestr("autorun.sh", "#!/bin/sh\ntouch escaped.marker\n")
with zipfile.ZipFile("abs.zip", "w") as z:
    z.writestr("/tmp/quince-abs-escape.txt", "out\n")
PY
"$PT" keys kz.txt && "$PT" seal kz.txt escape.zip kz.b64 && "$PT" ukey kz.txt "$UUID_UP" pub.pem kz.b64 >uz.json && "$PT" vkey kz.txt pub.pem >vz.json
nf=$(grep -c "payload not delivered" "$ALOG1")
apost a1 /v2.6/keys/ukey uz.json >/dev/null; apost a1 /v2.6/keys/vkey vz.json >/dev/null
if wait_for 10 test "$(grep -c "payload not delivered" "$ALOG1")" -gt "$nf"; then pass "zip with ../ refused"
else fail "zip with ../ refused" "$(tail -2 "$ALOG1")"; fi
expect_grep "zip refusal names the entry" "../escape.txt" "$(grep "payload not delivered" "$ALOG1" | tail -1)"
"$PT" keys ka.txt && "$PT" seal ka.txt abs.zip ka.b64 && "$PT" ukey ka.txt "$UUID_UP" pub.pem ka.b64 >ua.json && "$PT" vkey ka.txt pub.pem >va.json
nf=$(grep -c "payload not delivered" "$ALOG1")
apost a1 /v2.6/keys/ukey ua.json >/dev/null; apost a1 /v2.6/keys/vkey va.json >/dev/null
if wait_for 10 test "$(grep -c "payload not delivered" "$ALOG1")" -gt "$nf"; then pass "zip with an absolute name refused"
else fail "zip with an absolute name refused" "$(tail -2 "$ALOG1")"; fi
esc=$(find "$RIG_SHM" "$QUINCE_TMP" /tmp/quince-abs-escape.txt -name 'escape*.txt' -o -name 'quince-abs-escape.txt' -o -name escaped.marker 2>/dev/null | grep -v "^$W/")
[ -z "$esc" ] && pass "nothing written outside the secure directory" || fail "nothing written outside the secure directory" "$esc"
[ "$(ls -A "$RIG_SHM/a1")" = secure ] && pass "the agent's tmpfs area holds only its secure directory" || fail "the agent's tmpfs area holds only its secure directory" "$(ls -A "$RIG_SHM/a1")"
same "$SEC1/decrypted_payload" order.txt && pass "refused zips left the previous payload" || fail "refused zips left the previous payload"

# more U halves than the bound: each accepted, the oldest waiting one dropped (logged), so junk
# posts cannot block a later delivery (test_agent_keys covers the delivery after them)
got=""
for i in $(seq 10); do
  "$PT" keys "kf$i.txt" && "$PT" ukey "kf$i.txt" "$UUID_UP" pub.pem >"uf$i.json"
  got="$got $(apost a1 /v2.6/keys/ukey "uf$i.json" | cut -c1-3)"
done
[ "$got" = "$(printf ' 200%.0s' $(seq 10))" ] && pass "more U halves than the bound → all accepted" \
  || fail "more U halves than the bound → all accepted" "$got"
expect_grep "the oldest waiting U is dropped, logged" "U halves are waiting for their V; dropping the oldest" "$(cat "$ALOG1")"

if kill -0 "$AGENT_PID_a1" 2>/dev/null && [ "$(acurl a1 -o /dev/null -w '%{http_code}' "$(AG_URL a1)/version")" = 200 ]
then pass "the agent keeps running after every refusal"; else fail "the agent keeps running after every refusal"; fi
[ "$(state_of "$UUID")" = 3 ] && pass "and keeps being attested" || fail "and keeps being attested" "state $(state_of "$UUID")"

# ---- an insecure agent (no mTLS): the payload opens, autorun.sh does not run ----------------------------
start_agent a3 "$UUID3" "$TCTI_tpm2" "$LIST2" "insecure = true" "trusted_client_ca =" "enable_insecure_payload = false"
U3=http://127.0.0.1:$AGENT_PORT_a3
wait_http "$U3/version" 30 || fail "insecure agent up" "$(tail -3 "$QUINCE_TMP/a3/agent.log")"
SEC3=$RIG_SHM/a3/secure
curl -s "$U3/v2.6/keys/pubkey" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["results"]["pubkey"])' >pub3.pem
"$PT" keys k3.txt && "$PT" seal k3.txt payload.zip k3.b64 && "$PT" ukey k3.txt "$UUID3" pub3.pem k3.b64 >u3.json && "$PT" vkey k3.txt pub3.pem >v3.json
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @u3.json "$U3/v2.6/keys/ukey"
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @v3.json "$U3/v2.6/keys/vkey"
if wait_for 10 same "$SEC3/unzipped/secret.txt" secret.txt; then pass "insecure agent: payload opened and unpacked"; else fail "insecure agent: payload opened and unpacked" "$(tail -3 "$QUINCE_TMP/a3/agent.log")"; fi
sleep 1
[ ! -e "$SEC3/unzipped/autorun.marker" ] && pass "insecure agent: autorun.sh not run (enable_insecure_payload = false)" \
  || fail "insecure agent: autorun.sh not run (enable_insecure_payload = false)"
grep -q "payload script autorun.sh not run: mTLS is off" "$QUINCE_TMP/a3/agent.log" && pass "insecure agent: says why the script did not run" \
  || fail "insecure agent: says why the script did not run" "$(grep -i script "$QUINCE_TMP/a3/agent.log")"

# ---- an agent that drops to run_as: its secure directory is handed over, the payload still opens ----------
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  chmod 0755 "$QUINCE_TMP"          # nobody must reach the swtpm socket (tpm2/ is 0755 already)
  start_agent a5 d432fbb3-d2f1-4a97-9ef7-75bd81c000b5 "$TCTI_tpm2" "$LIST2" "run_as = nobody"
  if wait_http "$(AG_URL a5)/version" 30; then
    SEC5=$RIG_SHM/a5/secure
    [ "$(stat -c '%U %a' "$SEC5")" = "nobody 700" ] && pass "run_as: the secure directory belongs to nobody (0700)" \
      || fail "run_as: the secure directory belongs to nobody (0700)" "$(stat -c '%U %a' "$SEC5")"
    acurl a5 "$(AG_URL a5)/v2.6/keys/pubkey" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["results"]["pubkey"])' >pub5.pem
    "$PT" keys k5.txt && "$PT" seal k5.txt new.txt k5.b64 && "$PT" ukey k5.txt d432fbb3-d2f1-4a97-9ef7-75bd81c000b5 pub5.pem k5.b64 >u5.json \
      && "$PT" vkey k5.txt pub5.pem >v5.json
    apost a5 /v2.6/keys/ukey u5.json >/dev/null; apost a5 /v2.6/keys/vkey v5.json >/dev/null
    if wait_for 10 same "$SEC5/decrypted_payload" new.txt && [ "$(stat -c %U "$SEC5/decrypted_payload")" = nobody ]
    then pass "run_as: the payload opens as nobody"; else fail "run_as: the payload opens as nobody" "$(tail -3 "$QUINCE_TMP/a5/agent.log")"; fi
  else
    fail "run_as agent up" "$(tail -3 "$QUINCE_TMP/a5/agent.log")"
  fi
fi

# ---- the agent without a usable secure directory refuses to start ----------------------------------------
mkdir -p "$QUINCE_TMP/a4"
sed -e "s#^secure_dir = .*#secure_dir = /proc/quince-no-such-dir#" -e "s#^port = .*#port = $(free_port)#" \
  -e "s#^state_dir = .*#state_dir = $QUINCE_TMP/a4/state#" -e "s#^tcti = .*#tcti = $TCTI_tpm2#" \
  -e "s#^uuid = .*#uuid = d432fbb3-d2f1-4a97-9ef7-75bd81c000b4#" "$QUINCE_TMP/a1/agent.conf" >"$QUINCE_TMP/a4/agent.conf"
out=$(timeout 20 "$AGENT" --config "$QUINCE_TMP/a4/agent.conf" 2>&1 >/dev/null); rc=$?
[ $rc = 2 ] && expect_grep "no usable secure_dir: the agent refuses to start (exit 2)" "payload delivery: cannot create secure directory /proc/quince-no-such-dir" "$out" \
  || fail "no usable secure_dir: the agent refuses to start (exit 2)" "exit $rc: $out"
