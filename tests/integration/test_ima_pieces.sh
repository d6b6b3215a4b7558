#!/usr/bin/env bash
# An IMA list longer than the agent's max_ima_bytes: quince-agent (on a private swtpm, list kept
# in step by the ima-emulator) with max_ima_bytes = 4096 and a 60-entry list of about 9 KB serves
# it in pieces of complete entries, each at most 4096 bytes, saying "ima_measurement_list_more"
# until the last; following the pieces from entry 0 gives back the whole file; quince-verifier
# attests it piece by piece (no PCR mismatch) and reaches entry 60.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3 sqlite3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0a060
LIST=$QUINCE_TMP/ima/ascii_runtime_measurements
mkdir -p "$QUINCE_TMP/ima"
"$TOOLS/ima_gen" --out-dir "$QUINCE_TMP/ima" --entries 60 --seed 60 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }
size=$(stat -c %s "$LIST")
if [ "$size" -gt 8192 ]; then pass "the list ($size bytes) needs three pieces or more"; else fail "list size" "$size"; fi

start_swtpm tpm ekcert
emulate "$TCTI_tpm" "$LIST" || fail "emulator replays the list"
start_verifier || { fail "verifier starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 0; }
AGENT_TPM_TIMEOUT_MS=20000 start_agent a1 "$UUID" "$TCTI_tpm" "$LIST" "max_ima_bytes = 4096"
AG=$(AG_URL a1)
if wait_http "$AG/version" 60; then pass "agent serves"; else fail "agent serves" "$(tail -5 "$QUINCE_TMP/a1/agent.log")"; exit 0; fi

# Follow the pieces as a verifier would.
out=$(python3 - "$AG" "$QUINCE_TMP/a1/state/mtls-cert.pem" "$TLS_DIR" "$LIST" <<'PY'
import json, ssl, sys, urllib.request
base, agent_cert, tls, path = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=agent_cert)
ctx.check_hostname = False
ctx.load_cert_chain(tls + "/tenant-cert.pem", tls + "/tenant-key.pem")
entry, got, pieces, biggest = 0, "", 0, 0
while True:
    url = "%s/v2.6/quotes/integrity?nonce=piece%dxxxxxxxxxxxxxxxx&mask=0x400&partial=%d&ima_ml_entry=%d" % (
        base, pieces, 0 if pieces == 0 else 1, entry)
    with urllib.request.urlopen(url, timeout=30, context=ctx) as f:
        r = json.load(f)["results"]
    if r["ima_measurement_list_entry"] != entry:
        print("wrong entry %r for %d" % (r["ima_measurement_list_entry"], entry)); sys.exit(1)
    piece = r["ima_measurement_list"]
    biggest = max(biggest, len(piece.encode()))
    if piece and not piece.endswith("\n"):
        print("piece %d does not end with a complete entry" % pieces); sys.exit(1)
    got += piece
    entry += piece.count("\n")
    pieces += 1
    if not r.get("ima_measurement_list_more"):
        break
    if pieces > 100:
        print("no end"); sys.exit(1)
whole = open(path).read()
print("pieces=%d entries=%d biggest=%d same=%s" % (pieces, entry, biggest, got == whole))
PY
)
echo "  $out"
case $out in
  *"entries=60 "*"same=True"*) pass "the pieces give back the whole 60-entry list" ;;
  *) fail "the pieces give back the whole 60-entry list" "$out" ;;
esac
pieces=$(printf '%s' "$out" | sed -n 's/.*pieces=\([0-9]*\).*/\1/p')
biggest=$(printf '%s' "$out" | sed -n 's/.*biggest=\([0-9]*\).*/\1/p')
if [ "${pieces:-0}" -ge 3 ] && [ "${biggest:-99999}" -le 4096 ]; then pass "pieces of at most 4096 bytes ($pieces pieces, largest $biggest)"
else fail "pieces of at most 4096 bytes" "$out"; fi

# The verifier attests it: each round's answer is a piece; it continues from the entry after the
# piece until PCR 10 is reached, then counts the attestation.
out=$("$TENANT" -vp "$CV_PORT" -rp "$REG_TLS_PORT" -c add -u "$UUID" --allowlist "$QUINCE_TMP/ima/allowlist.txt" 2>&1) \
  && pass "tenant adds the agent" || fail "tenant adds the agent" "$out"
DB=$QUINCE_TMP/verifier/db.sqlite
ok=0
for _ in $(seq 300); do
  row=$(sqlite3 -cmd ".timeout 2000" "$DB" "SELECT operational_state, next_ima_ml_entry, attestation_count FROM agents WHERE agent_id = '$UUID';" 2>/dev/null)
  case $row in 3\|60\|[1-9]*) ok=1; break ;; 7\|*|9\|*|10\|*) break ;; esac
  sleep 0.2
done
if [ $ok = 1 ]; then pass "the verifier attests the 60-entry list piece by piece (state|next entry|count: $row)"
else fail "the verifier attests the 60-entry list piece by piece" "state|next entry|count: ${row:-none}; $(grep -m3 -E 'ERROR|failed' "$QUINCE_TMP/verifier.log" | tr '\n' ' ')"; fi
if grep -q "ima.pcr_mismatch\|does not match TPM PCR" "$QUINCE_TMP/verifier.log"; then fail "no PCR mismatch on the way" "$(grep -m2 'PCR' "$QUINCE_TMP/verifier.log")"
else pass "no PCR mismatch on the way"; fi

if grep -q "Sanitizer" "$QUINCE_TMP/verifier.log"; then fail "no sanitizer reports in the verifier" "$(grep -m3 Sanitizer "$QUINCE_TMP/verifier.log")"
else pass "no sanitizer reports in the verifier"; fi
if grep -q "Sanitizer" "$QUINCE_TMP/a1/agent.log"; then fail "no sanitizer reports" "$(grep -m3 Sanitizer "$QUINCE_TMP/a1/agent.log")"
else pass "no sanitizer reports"; fi
