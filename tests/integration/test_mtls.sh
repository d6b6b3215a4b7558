#!/usr/bin/env bash
# mTLS on every link, end to end with the real programs on loopback: the verifier's built-in CA
# (made on first start, safe modes), `quince-verifier ca`, a real agent on a swtpm (registration on
# the plain port, its own certificate pinned by the verifier and the tenant), the verifier API and
# the registrar's TLS port refusing clients without a certificate of the CA (none, another CA's,
# an expired one), a server with a wrong name refused by the tenant, show/list/delete refused on
# the registrar's plain port, plain HTTP to a TLS port and TLS to a plain port (clean errors,
# daemons survive), an agent registered without a certificate refused, the impersonation case (a
# fake agent with another certificate takes over an attested agent's port: the verifier fails the
# agent saying the certificate did not match, the tenant refuses too), and start-up errors (bad
# permissions, unreadable or mismatched files: one line, non-zero exit).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3 sqlite3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

T=$QUINCE_TMP
: >"$T/empty.conf"
export QUINCE_CONFIG=$T/empty.conf
DB=$T/verifier/db.sqlite
VLOG=$T/verifier.log
UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0aaa1
FUUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0fff1
mkdir -p "$T/ima"
"$TOOLS/ima_gen" --out-dir "$T/ima" --entries 20 --seed 9 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }
LIST=$T/ima/ascii_runtime_measurements
db() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
mode_of() { stat -c %a "$1"; }
# st URL [curl args]: HTTP status of a GET (000 when the transfer failed); the body is in $T/body.
st() { local u=$1; shift; curl -s --max-time 10 -o "$T/body" -w '%{http_code}' "$@" "$u"; }
status_text() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status",""))' "$T/body" 2>/dev/null; }
# one_line NAME RC-NONZERO PATTERN CMD...: the command fails (exit != 0) with exactly one line on
# stderr containing PATTERN.
one_line() {
  local name=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local nl; nl=$(wc -l <"$T/err")
  if [ "$rc" = 0 ]; then fail "$name" "exit 0"
  elif [ "$nl" != 1 ]; then fail "$name" "$nl lines on stderr: $(head -3 "$T/err" | tr '\n' '|')"
  elif ! grep -qF -- "$pat" "$T/err"; then fail "$name" "missing '$pat': $(cat "$T/err")"
  else pass "$name"; fi
}

# ---- 1. the CA made on first start, every link with the generated certificates --------------------
start_swtpm tpm ekcert
emulate "$TCTI_tpm" "$LIST" || fail "emulator"
start_verifier || { fail "verifier starts with TLS" "$(tail -5 "$VLOG")"; exit 0; }
pass "verifier starts with TLS"
ok=1
for f in cacert.pem server-cert.pem client-cert.pem tenant-cert.pem; do [ "$(mode_of "$TLS_DIR/$f")" = 644 ] || ok=0; done
for f in cakey.pem server-key.pem client-key.pem tenant-key.pem; do [ "$(mode_of "$TLS_DIR/$f")" = 600 ] || ok=0; done
[ "$(mode_of "$TLS_DIR")" = 700 ] && [ $ok = 1 ] && pass "tls_dir 0700, keys 0600, certificates 0644" \
  || fail "tls_dir 0700, keys 0600, certificates 0644" "$(ls -l "$TLS_DIR" | tr '\n' ' ')"
expect_grep "the verifier says where its CA is" "distribute $TLS_DIR/cacert.pem to every agent" "$(cat "$VLOG")"
expect_grep "verifier API: mTLS" "verifier API listening on 127.0.0.1:$CV_PORT (mTLS)" "$(cat "$VLOG")"
expect_grep "registrar: plain port for agents only" "registrar API listening on 127.0.0.1:$REG_PORT (plain HTTP: registration and activation only)" "$(cat "$VLOG")"
expect_grep "registrar: TLS port" "registrar TLS API listening on 127.0.0.1:$REG_TLS_PORT (mTLS)" "$(cat "$VLOG")"

start_agent a1 "$UUID" "$TCTI_tpm" "$LIST"
if wait_http "$(AG_URL a1)/version" 30; then pass "agent registers on the plain port and serves TLS"
else fail "agent registers on the plain port and serves TLS" "$(tail -3 "$T/a1/agent.log")"; exit 0; fi
[ "$(mode_of "$T/a1/state/mtls-key.pem")" = 600 ] && pass "agent key in state_dir, mode 0600" || fail "agent key in state_dir, mode 0600"
REC=$(vcurl "$REG_URL/v2.6/agents/$UUID")
printf '%s' "$REC" | python3 -c 'import json,sys; c=json.load(sys.stdin)["results"]["mtls_cert"]; assert c == open(sys.argv[1]).read(), c[:40]' \
  "$T/a1/state/mtls-cert.pem" && pass "the registrar holds the agent's certificate (mtls_cert)" \
  || fail "the registrar holds the agent's certificate (mtls_cert)" "$(printf '%s' "$REC" | head -c 200)"
[ "$(st "$(AG_URL a1)/version" --cacert "$T/a1/state/mtls-cert.pem" --cert "$TLS_DIR/tenant-cert.pem" --key "$TLS_DIR/tenant-key.pem")" = 200 ] \
  && pass "agent: a client of the verifier's CA, checking the pinned certificate, gets 200" || fail "agent: pinned client" "$(cat "$T/body")"

Q() { "$TENANT" -vp "$CV_PORT" -rp "$REG_TLS_PORT" "$@"; }
out=$(Q -c add -u "$UUID" --allowlist "$T/ima/allowlist.txt" 2>&1); rc=$?
[ $rc = 0 ] && pass "tenant → registrar TLS port → agent (pinned, identity quote) → verifier API: add" \
  || fail "tenant add over TLS" "exit $rc: $out"
ok=0
for _ in $(seq 50); do out=$(Q -c status -u "$UUID" 2>&1); grep -q "Get Quote (state 3)" <<<"$out" && { ok=1; break; }; sleep 0.2; done
[ $ok = 1 ] && pass "verifier → agent over mTLS with the pinned certificate: Get Quote" || fail "verifier polls over mTLS" "$out"
expect_grep "status shows the registrar record over TLS" "mTLS certificate" "$out"
[ "$(Q -c reglist 2>/dev/null)" = "$UUID" ] && pass "tenant reglist on the registrar's TLS port" || fail "tenant reglist on the TLS port"

# ---- 2. `quince-verifier ca` ------------------------------------------------------------------------
out=$("$VERIFIER" ca --config "$T/verifier.conf" issue-client ops 2>&1); rc=$?
[ $rc = 0 ] && [ -f "$TLS_DIR/ops-cert.pem" ] && pass "quince-verifier ca issue-client (tls_dir from the configuration)" \
  || fail "quince-verifier ca issue-client" "exit $rc: $out"
[ "$(st "$CV_URL/version" --cacert "$TLS_DIR/cacert.pem" --cert "$TLS_DIR/ops-cert.pem" --key "$TLS_DIR/ops-key.pem")" = 200 ] \
  && pass "an issued client certificate is accepted by the verifier API" || fail "issued client certificate" "$(cat "$T/body")"
out=$("$VERIFIER" ca --config "$T/verifier.conf" list 2>&1)
expect_grep "ca list checks the certificates" "tenant-cert.pem" "$out"
"$VERIFIER" ca --dir "$T/otherca" init >/dev/null 2>&1 && pass "quince-verifier ca --dir init (another CA)" || fail "ca init"

# ---- 3. clients without a certificate of the CA: refused before any handler -------------------------
[ "$(st "$CV_URL/v2.6/agents/" --cacert "$TLS_DIR/cacert.pem")" = 403 ] && expect_grep "verifier API without a client certificate: 403" \
  "Forbidden: no client certificate" "$(status_text)" || fail "verifier API without a client certificate: 403" "$(cat "$T/body")"
c=$(st "$CV_URL/v2.6/agents/" --cacert "$TLS_DIR/cacert.pem" --cert "$T/otherca/tenant-cert.pem" --key "$T/otherca/tenant-key.pem")
if [ "$c" = 403 ] && grep -q "client certificate rejected" "$T/body"; then pass "verifier API with another CA's certificate: 403 ($(status_text))"
elif [ "$c" = 000 ]; then pass "verifier API with another CA's certificate: handshake refused"
else fail "verifier API with another CA's certificate" "$c $(cat "$T/body")"; fi
"$TOOLS/tls_tool" leaf --ca-dir "$TLS_DIR" --cn old-tenant --eku client --expired --cert "$T/expired-cert.pem" --key "$T/expired-key.pem" \
  || fail "tls_tool: expired certificate"
c=$(st "$CV_URL/v2.6/agents/" --cacert "$TLS_DIR/cacert.pem" --cert "$T/expired-cert.pem" --key "$T/expired-key.pem")
[ "$c" = 403 ] && grep -qi "expired" "$T/body" && pass "verifier API with an expired certificate: 403 ($(status_text))" \
  || fail "verifier API with an expired certificate" "$c $(cat "$T/body")"
[ "$(st "$REG_URL/v2.6/agents" --cacert "$TLS_DIR/cacert.pem")" = 403 ] && pass "registrar TLS port without a client certificate: 403" \
  || fail "registrar TLS port without a client certificate: 403"
c=$(st "$(AG_URL a1)/version" --cacert "$T/a1/state/mtls-cert.pem")
[ "$c" = 403 ] && pass "agent without a client certificate: 403" || fail "agent without a client certificate: 403" "$c"
c=$(st "$(AG_URL a1)/version" --cacert "$T/a1/state/mtls-cert.pem" --cert "$T/otherca/tenant-cert.pem" --key "$T/otherca/tenant-key.pem")
{ [ "$c" = 403 ] || [ "$c" = 000 ]; } && pass "agent with another CA's certificate: refused ($c)" || fail "agent with another CA's certificate" "$c"
out=$(QUINCE_TENANT_CLIENT_CERT=$T/expired-cert.pem QUINCE_TENANT_CLIENT_KEY=$T/expired-key.pem Q -c cvlist 2>&1); rc=$?
[ $rc = 1 ] && expect_grep "tenant with an expired certificate: the verifier's 403" "403" "$out" || fail "tenant with an expired certificate" "exit $rc: $out"

# ---- 4. a server with a wrong name: refused by the client ------------------------------------------
"$TOOLS/tls_tool" leaf --ca-dir "$TLS_DIR" --cn wrong.example --eku server --san wrong.example \
  --cert "$T/wrong-cert.pem" --key "$T/wrong-key.pem" || fail "tls_tool: wrong-name certificate"
P2=$(free_port); R2=$(free_port); RT2=$(free_port)
cat >"$T/v2.conf" <<CONF
[verifier]
ip = 127.0.0.1
port = $P2
database = $T/v2/db.sqlite
tls_dir = $TLS_DIR
server_cert = $T/wrong-cert.pem
server_key = $T/wrong-key.pem
[registrar]
ip = 127.0.0.1
port = $R2
tls_port = $RT2
CONF
"$VERIFIER" --config "$T/v2.conf" >"$T/v2.log" 2>&1 &
V2=$!; RIG_PIDS+=("$V2")
if wait_http "https://127.0.0.1:$P2/version" 20; then
  pass "operator server_cert/server_key are used instead of the generated ones"
  out=$("$TENANT" -vp "$P2" -c cvlist 2>&1); rc=$?
  [ $rc = 1 ] && expect_grep "tenant refuses a server whose certificate lacks its name" "TLS error with 127.0.0.1:$P2" "$out" \
    || fail "tenant refuses a server with a wrong name" "exit $rc: $out"
  expect_grep "the message says which name" "127.0.0.1" "$out"
  c=$(st "https://127.0.0.1:$P2/version" "${TLS_CURL[@]}"); [ "$c" = 000 ] && pass "curl refuses it too" || fail "curl refuses a wrong name" "$c"
else
  fail "second verifier with operator files starts" "$(tail -3 "$T/v2.log")"
fi
kill "$V2" 2>/dev/null; wait "$V2" 2>/dev/null

# ---- 5. the registrar's plain port serves only registration and activation --------------------------
for req in "GET /v2.6/agents" "GET /v2.6/agents/$UUID" "DELETE /v2.6/agents/$UUID"; do
  set -- $req
  c=$(curl -s --max-time 5 -o "$T/body" -w '%{http_code}' -X "$1" "$REG_PLAIN_URL$2")
  if [ "$c" = 403 ] && grep -q "served only on the registrar's TLS port ($REG_TLS_PORT)" "$T/body"; then pass "plain port: $1 ${2/$UUID/{id\}} → 403 naming the TLS port"
  else fail "plain port: $req refused" "$c $(cat "$T/body")"; fi
done
[ "$(Q -c reglist 2>/dev/null)" = "$UUID" ] && pass "the refused DELETE on the plain port deleted nothing" || fail "plain DELETE deleted nothing"
[ "$(st "$REG_PLAIN_URL/version")" = 200 ] && pass "plain port: /version for agents" || fail "plain port: /version"
out=$("$TENANT" --insecure -vp "$CV_PORT" -rp "$REG_PORT" -c reglist 2>&1); rc=$?
[ $rc = 1 ] && expect_grep "tenant --insecure reglist on the plain port: the 403 message" "TLS port" "$out" || fail "tenant reglist on the plain port" "exit $rc: $out"
expect_grep "--insecure warns" "warning: insecure" "$out"

# ---- 6. plain HTTP to a TLS port, TLS to a plain port: clean errors, daemons survive ----------------
c=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CV_PORT/version"); rc=$?
[ "$c" = 000 ] && [ $rc != 0 ] && pass "plain HTTP to the verifier API fails (curl exit $rc)" || fail "plain HTTP to the verifier API fails" "$c"
out=$("$TENANT" --insecure -vp "$CV_PORT" -c cvlist 2>&1); rc=$?
[ $rc = 1 ] && expect_grep "tenant --insecure on a TLS port: a clear error" "is it a TLS port? use https" "$out" || fail "plain tenant on a TLS port" "exit $rc: $out"
out=$(Q -rp "$REG_PORT" -c reglist 2>&1); rc=$?
[ $rc = 1 ] && expect_grep "tenant TLS on the plain port: a clear error" "does the server speak TLS?" "$out" || fail "TLS tenant on a plain port" "exit $rc: $out"
c=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AGENT_PORT_a1/version")
[ "$c" = 000 ] && pass "plain HTTP to the agent fails" || fail "plain HTTP to the agent fails" "$c"
kill -0 "$VERIFIER_PID" && [ "$(st "$CV_URL/version" "${TLS_CURL[@]}")" = 200 ] && pass "the verifier survives plain HTTP on its TLS port" || fail "the verifier survives"
kill -0 "$AGENT_PID_a1" && [ "$(acurl a1 -o /dev/null -w '%{http_code}' "$(AG_URL a1)/version")" = 200 ] && pass "the agent survives plain HTTP on its TLS port" || fail "the agent survives"

# ---- 7. the impersonation case ----------------------------------------------------------------------
# A TLS fake agent (software quotes) registered straight into the registrar table, added by the
# tenant (identity quote with its AK and pinned certificate), attested; then another fake agent,
# with another certificate, answers at the agent's address: it is started first, on a port of its
# own, the records (registrar and verifier) are pointed at it and the agent is reactivated, so
# every request the verifier makes from then on meets the impostor (no gap with refused
# connections in between).
fake() { # NAME [fake_agent options...]: sets FPORT
  local n=$1; shift
  rm -f "$T/$n.port" "$T/$n.ak" "$T/$n.crt"
  "$TOOLS/fake_agent" --mode good --uuid "$FUUID" --ak-out "$T/$n.ak" --ima-log "$LIST" --tls-ca "$TLS_DIR/cacert.pem" \
    --cert-out "$T/$n.crt" "$@" >"$T/$n.port" 2>"$T/$n.log" &
  RIG_PIDS+=($!); FPID=$!
  FPORT=
  for _ in $(seq 100); do FPORT=$(head -1 "$T/$n.port" 2>/dev/null); [ -n "$FPORT" ] && [ -s "$T/$n.ak" ] && return 0; sleep 0.1; done
  return 1
}
fake orig || fail "fake agent starts"
db "INSERT OR REPLACE INTO registrar(agent_id, aik_tpm, mtls_cert, ip, port, regcount, active)
    VALUES ('$FUUID', '$(tr -d '\n' <"$T/orig.ak")', '$(cat "$T/orig.crt")', '127.0.0.1', $FPORT, 1, 1);"
out=$(Q -c add -u "$FUUID" --allowlist "$T/ima/allowlist.txt" 2>&1); rc=$?
[ $rc = 0 ] && pass "tenant adds the (fake) agent over TLS" || fail "tenant adds the fake agent" "exit $rc: $out"
ok=0
for _ in $(seq 50); do out=$(Q -c status -u "$FUUID" 2>&1); grep -q "Get Quote (state 3)" <<<"$out" && { ok=1; break; }; sleep 0.2; done
[ $ok = 1 ] && pass "the fake agent is attested over mTLS" || fail "the fake agent is attested" "$out"
OPID=$FPID
fake impostor || fail "impostor starts" "$(cat "$T/impostor.log")"
db "UPDATE registrar SET port = $FPORT WHERE agent_id = '$FUUID'; UPDATE agents SET port = $FPORT WHERE agent_id = '$FUUID';"
out=$(Q -c reactivate -u "$FUUID" 2>&1) && pass "impostor: the agent is reactivated at the impostor's address" \
  || fail "impostor: reactivate" "$out"
kill "$OPID"; wait "$OPID" 2>/dev/null
ok=0
for _ in $(seq 100); do out=$(Q -c status -u "$FUUID" 2>&1); grep -q "Failed (state 7)" <<<"$out" && { ok=1; break; }; sleep 0.2; done
[ $ok = 1 ] && pass "impostor: the verifier ends the agent in Failed (unreachable)" || fail "impostor: verifier fails the agent" "$out"
expect_grep "impostor: event not_reachable" "internal.verifier.not_reachable" "$out"
expect_grep "impostor: the verifier log says the certificate did not match" \
  "agent $FUUID: quote request failed (the agent's TLS certificate did not match the certificate it registered" "$(cat "$VLOG")"
expect_grep "impostor: so does the tenant's status" "did not match the certificate it registered" "$out"
n=$(grep -c 'request .* mode' "$T/impostor.log")
[ "$n" = 0 ] && pass "impostor: it never received a request (no nonce leaked)" || fail "impostor received requests" "$n"
out=$(Q -c add -u "$FUUID" --allowlist "$T/ima/allowlist.txt" 2>&1); rc=$?
[ $rc = 1 ] && expect_grep "impostor: tenant add refuses it" "did not present the certificate it registered" "$out" \
  || fail "impostor: tenant add refuses it" "exit $rc: $out"
[ "$(grep -c 'request .* mode' "$T/impostor.log")" = 0 ] && pass "impostor: the tenant sent it nothing either" || fail "impostor got a tenant request"

# ---- 8. an agent registered without a certificate ---------------------------------------------------
start_agent a2 d432fbb3-d2f1-4a97-9ef7-75bd81c0aaa2 "$TCTI_tpm" "$LIST" "insecure = true" "trusted_client_ca ="
if wait_http "http://127.0.0.1:$AGENT_PORT_a2/version" 30; then pass "agent insecure = true serves plain HTTP"
else fail "agent insecure = true serves plain HTTP" "$(tail -3 "$T/a2/agent.log")"; fi
expect_grep "agent insecure = true logs a WARNING" "WARNING - INSECURE: [agent] insecure = true" "$(cat "$T/a2/agent.log")"
REC=$(vcurl "$REG_URL/v2.6/agents/d432fbb3-d2f1-4a97-9ef7-75bd81c0aaa2")
expect_grep "it registered mtls_cert disabled" '"mtls_cert":"disabled"' "$REC"
out=$(Q -c add -u d432fbb3-d2f1-4a97-9ef7-75bd81c0aaa2 --allowlist "$T/ima/allowlist.txt" 2>&1); rc=$?
[ $rc = 1 ] && expect_grep "tenant refuses to talk plain HTTP to it" "registered without an mTLS certificate" "$out" \
  || fail "tenant refuses a plain agent" "exit $rc: $out"
python3 -c 'import json,sys; json.dump({"tpm_policy": "{\"mask\": \"0x400\"}", "metadata": "{}", "runtime_policy": "", "mb_policy": None, "mb_policy_name": "",
  "ima_sign_verification_keys": "", "revocation_key": "", "mtls_cert": open(sys.argv[1]).read()}, open(sys.argv[2], "w"))' \
  "$T/a1/state/mtls-cert.pem" "$T/plain-add.json"
c=$(vcurl -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$T/plain-add.json" \
    "$CV_URL/v2.6/agents/d432fbb3-d2f1-4a97-9ef7-75bd81c0aaa2")
[ "$c" = 400 ] && [ "$(status_text)" = "mTLS certificate for agent is required!" ] \
  && pass "verifier refuses it (a certificate in the add request does not count): 400 mTLS certificate for agent is required!" \
  || fail "verifier refuses an agent without a registered certificate" "$c $(cat "$T/body")"
kill "$AGENT_PID_a2"; wait "$AGENT_PID_a2" 2>/dev/null

# ---- 9. start-up errors: one line, non-zero exit ----------------------------------------------------
mkv() { # NAME [extra [verifier] lines...]: a verifier configuration on free ports
  local n=$1; shift
  { echo "[verifier]"; echo "ip = 127.0.0.1"; echo "port = $(free_port)"; echo "database = $T/$n/db.sqlite"
    for l in "$@"; do echo "$l"; done
    echo "[registrar]"; echo "ip = 127.0.0.1"; echo "port = $(free_port)"; echo "tls_port = $(free_port)"; } >"$T/$n.conf"
}
cp -a "$TLS_DIR" "$T/badperm"; chmod 0777 "$T/badperm"
mkv vbad1 "tls_dir = $T/badperm"
one_line "tls_dir writable by others: refused at start-up" "writable by group or others" timeout 20 "$VERIFIER" --config "$T/vbad1.conf"
mkv vbad2 "tls_dir = $TLS_DIR" "server_cert = $TLS_DIR/server-cert.pem" "server_key = $TLS_DIR/client-key.pem"
one_line "mismatched server key and certificate: refused at start-up" "does not match" timeout 20 "$VERIFIER" --config "$T/vbad2.conf"
mkv vbad3 "tls_dir = $TLS_DIR" "trusted_client_ca = $T/nothing.pem"
one_line "unreadable trusted_client_ca: refused at start-up" "nothing.pem" timeout 20 "$VERIFIER" --config "$T/vbad3.conf"
cp "$TLS_DIR/client-key.pem" "$T/open-key.pem"; chmod 0644 "$T/open-key.pem"
mkv vbad4 "tls_dir = $TLS_DIR" "client_key = $T/open-key.pem"
one_line "a key file readable by others: refused at start-up" "open-key.pem" timeout 20 "$VERIFIER" --config "$T/vbad4.conf"
mkdir -p "$T/a3"
printf '[agent]\nuuid = %s\ntrusted_client_ca = %s\n' "$UUID" "$T/nothing.pem" >"$T/a3/agent.conf"
one_line "agent: unreadable trusted_client_ca refused at start-up" "trusted_client_ca" timeout 20 "$AGENT" --config "$T/a3/agent.conf"
printf '[agent]\nuuid = %s\n' "$UUID" >"$T/a3/agent2.conf"
one_line "agent: trusted_client_ca is required" "trusted_client_ca is required" timeout 20 "$AGENT" --config "$T/a3/agent2.conf"
# An agent whose key does not belong to its certificate (a4 keeps a1's certificate, another key).
mkdir -p "$T/a4/state"; chmod 0700 "$T/a4/state"
cp "$T/a1/state/mtls-cert.pem" "$T/a4/state/"
"$TOOLS/tls_tool" leaf --ca-dir "$TLS_DIR" --cn x --eku client --cert "$T/a4/x.pem" --key "$T/a4/state/mtls-key.pem" || fail "tls_tool key"
start_agent a4 "$UUID" "$TCTI_tpm" "$LIST" "state_dir = $T/a4/state"
for _ in $(seq 100); do kill -0 "$AGENT_PID_a4" 2>/dev/null || break; sleep 0.1; done
if ! kill -0 "$AGENT_PID_a4" 2>/dev/null && tail -1 "$T/a4/agent.log" | grep -q "^quince-agent: mtls: .*does not match"; then
  pass "agent: a key that does not match its certificate stops it with one line"
else fail "agent: mismatched mTLS key" "$(tail -2 "$T/a4/agent.log")"; fi
out=$(QUINCE_TENANT_TLS_DIR=$T/nowhere Q -c cvlist 2>&1); rc=$?
[ $rc = 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && expect_grep "tenant without its certificate: one line, exit 2" "TLS: " "$out" \
  || fail "tenant without its certificate" "exit $rc: $out"

# ---- the end -----------------------------------------------------------------------------------------
kill -TERM "$VERIFIER_PID"; wait "$VERIFIER_PID"; rc=$?
[ "$rc" = 0 ] && pass "verifier: clean stop" || fail "verifier: clean stop" "exit $rc"
if grep -q "Sanitizer\|runtime error" "$VLOG" "$T"/a?/agent.log "$T/v2.log" 2>/dev/null; then
  fail "no sanitizer reports" "$(grep -l "Sanitizer\|runtime error" "$VLOG" "$T"/a?/agent.log "$T/v2.log" | tr '\n' ' ')"
else pass "no sanitizer reports"; fi
