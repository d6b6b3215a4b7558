#!/usr/bin/env bash
# Certificate purposes on all three mTLS APIs: the verifier's own server certificate (extended key
# usage serverAuth only) presented as a client certificate is refused with 403 (Keylime's code for a refused client certificate) by the verifier
# API, the registrar's TLS port and an agent, while the tenant's certificate (clientAuth) is
# accepted; and a client refuses a server whose certificate is for clients only.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
for t in swtpm curl python3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0e0e0
LIST=$QUINCE_TMP/ima/ascii_runtime_measurements
mkdir -p "$QUINCE_TMP/ima"
"$TOOLS/ima_gen" --out-dir "$QUINCE_TMP/ima" --entries 5 --seed 3 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }
start_swtpm tpm ekcert
start_verifier || { fail "verifier starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 0; }
start_agent a1 "$UUID" "$TCTI_tpm" "$LIST"
AG=$(AG_URL a1)
wait_http "$AG/version" 60 || { fail "agent serves" "$(tail -5 "$QUINCE_TMP/a1/agent.log")"; exit 0; }

SRV=("$TLS_DIR/server-cert.pem" "$TLS_DIR/server-key.pem")
TEN=("$TLS_DIR/tenant-cert.pem" "$TLS_DIR/tenant-key.pem")
ACA=$QUINCE_TMP/a1/state/mtls-cert.pem
for target in "verifier API|$CV_URL/v2.6/agents/|$TLS_DIR/cacert.pem" \
              "registrar TLS port|$REG_URL/v2.6/agents/|$TLS_DIR/cacert.pem" \
              "agent|$AG/v2.6/agent/info|$ACA"; do
  IFS='|' read -r name url ca <<<"$target"
  extra=()
  [ "$name" = agent ] && extra=(-k)
  r=$(curl -s --max-time 20 "${extra[@]}" --cacert "$ca" --cert "${SRV[0]}" --key "${SRV[1]}" -o "$QUINCE_TMP/body" -w '%{http_code}' "$url")
  body=$(head -c 300 "$QUINCE_TMP/body")
  if [ "$r" = 403 ] && printf '%s' "$body" | grep -q "intended purpose"; then
    pass "$name refuses the server certificate as a client certificate (403, purpose)"
  else
    fail "$name refuses the server certificate as a client certificate" "HTTP $r: $body"
  fi
  r=$(curl -s --max-time 20 "${extra[@]}" --cacert "$ca" --cert "${TEN[0]}" --key "${TEN[1]}" -o /dev/null -w '%{http_code}' "$url")
  if [ "$r" = 200 ]; then pass "$name accepts the tenant's certificate"; else fail "$name accepts the tenant's certificate" "HTTP $r"; fi
done

# A server presenting a certificate of the CA for clients only (clientAuth, the right address as
# its name) is refused by a client: the purpose, not the name, decides.
"$TOOLS/tls_tool" leaf --ca-dir "$TLS_DIR" --cn client-only --eku client --san 127.0.0.1 \
  --cert "$QUINCE_TMP/co-cert.pem" --key "$QUINCE_TMP/co-key.pem" || fail "tls_tool leaf"
PORT=$(free_port)
python3 - "$PORT" "$QUINCE_TMP/co-cert.pem" "$QUINCE_TMP/co-key.pem" >"$QUINCE_TMP/srv.log" 2>&1 <<'PY' &
import http.server, ssl, sys
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
PY
SPID=$!
RIG_PIDS+=("$SPID")
for _ in $(seq 100); do grep -q ready "$QUINCE_TMP/srv.log" && break; sleep 0.05; done
out=$("$TENANT" -vp "$PORT" -rp "$REG_TLS_PORT" -c cvlist 2>&1); rc=$?
if [ $rc != 0 ] && printf '%s' "$out" | grep -qi "TLS"; then pass "the tenant refuses a server with a client-only certificate"
else fail "the tenant refuses a server with a client-only certificate" "exit $rc: $out"; fi
r=$(curl -s --max-time 10 --cacert "$TLS_DIR/cacert.pem" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT/"; echo " rc=$?")
case $r in *"rc=0") fail "curl refuses it too" "$r" ;; *) pass "curl refuses it too ($r)" ;; esac

for f in "$QUINCE_TMP/verifier.log" "$QUINCE_TMP/a1/agent.log"; do
  if grep -q Sanitizer "$f"; then fail "no sanitizer reports in $(basename "$f")"; else pass "no sanitizer reports in $(basename "$f")"; fi
done
