#!/usr/bin/env bash
# Slowloris against the verifier: 600 sockets from 127.0.0.1 to the registrar's plain port and 600
# to the verifier API, each sending a partial request and then one header byte a second. Checks
# that the verifier keeps its limits (connections per client address, the request-header
# deadline), that a client from another address (127.0.0.2) is still served within a bound, that
# polling an agent goes on meanwhile, and that the deadline closes the trickling connections.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fake_rig.sh"

UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c05101
IMA="$QUINCE_TMP/ima"
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 10 --seed 5 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }

rig_config
if ! rig_start_verifier; then fail start_verifier "no API port"; exit 0; fi
pass start_verifier
if grep -qF "connection limits: verifier API" "$RIG_VLOG"; then pass "the verifier logs its connection limits"
else fail "the verifier logs its connection limits"; fi
rig_fake_added "$UUID" "$IMA/ascii_runtime_measurements" "$IMA/runtime_policy.json" || exit 0
rig_wait 20 "agent_id = '$UUID' AND operational_state = 3 AND attestation_count >= 2" \
  || fail "agent attested before the attack" "state $(rig_state "$UUID")"

# The attacker: N sockets per port (a partial HTTP request on the plain port, a partial TLS
# record on the TLS one, then a byte a second); prints "ready PORT held=N" once connected and
# "closed PORT after=S" when the server has closed every one of them (or "timeout PORT held=N").
cat >"$QUINCE_TMP/slowloris.py" <<'PY'
import resource, socket, sys, time
# "t:PORT" is a TLS port: a TLS record header (512 bytes announced), then its body byte by byte.
tls = {int(a[2:]) for a in sys.argv[2:] if a.startswith("t:")}
ports = [int(a[2:]) if a.startswith("t:") else int(a) for a in sys.argv[2:]]
n = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks = {p: [] for p in ports}
for p in ports:
    for _ in range(n):
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", p))
            s.send(b"\x16\x03\x01\x02\x00" if p in tls else b"POST /v2.6/agents/x HTTP/1.1\r\nHost: a\r\nX-a: ")
            s.setblocking(False)
            socks[p].append(s)
        except OSError:
            s.close()
start = time.monotonic()
reported = set()
done = set()
while len(done) < len(ports) and time.monotonic() - start < 60:
    for p in ports:
        if p in done:
            continue
        live = []
        for s in socks[p]:
            try:
                if s.recv(64) == b"":
                    s.close(); continue
            except BlockingIOError:
                pass
            except OSError:
                s.close(); continue
            try:
                s.send(b"\x00" if p in tls else b"b")
            except OSError:
                s.close(); continue
            live.append(s)
        socks[p] = live
        if p not in reported and time.monotonic() - start > 2:
            print("ready %d held=%d" % (p, len(live)), flush=True); reported.add(p)
        if not live and p in reported:
            print("closed %d after=%.1f" % (p, time.monotonic() - start), flush=True); done.add(p)
    time.sleep(1)   # the trickle rate, one byte a second per socket
for p in ports:
    if p not in done:
        print("timeout %d held=%d" % (p, len(socks[p])), flush=True)
PY
ALOG=$QUINCE_TMP/slowloris.log
python3 "$QUINCE_TMP/slowloris.py" 600 "$RIG_REG" "t:$RIG_API" >"$ALOG" 2>&1 &
APID=$!
RIG_PIDS+=("$APID")
if rig_wait_log 30 "$ALOG" "ready $RIG_API" && rig_wait_log 5 "$ALOG" "ready $RIG_REG"; then
  pass "the attack is under way: $(grep ready "$ALOG" | tr '\n' ' ')"
else
  fail "the attack did not start" "$(cat "$ALOG")"
fi
held=$(sed -n "s/^ready $RIG_API held=//p" "$ALOG")
if [ -n "$held" ] && [ "$held" -le 64 ]; then pass "verifier API: at most 64 connections held from one address ($held)"
else fail "verifier API: connections held from one address" "${held:-?}"; fi
held=$(sed -n "s/^ready $RIG_REG held=//p" "$ALOG")
if [ -n "$held" ] && [ "$held" -le 64 ]; then pass "registrar: at most 64 connections held from one address ($held)"
else fail "registrar: connections held from one address" "${held:-?}"; fi

# Meanwhile, clients from another address are served (bounded by curl's --max-time).
code=$(curl -s "${RIG_CURL[@]}" --interface 127.0.0.2 --max-time 10 -o /dev/null -w '%{http_code}' \
       "https://127.0.0.1:$RIG_API/v2.6/agents/$UUID")
if [ "$code" = 200 ]; then pass "verifier API serves another client during the attack"
else fail "verifier API serves another client during the attack" "HTTP $code"; fi
code=$(curl -s --interface 127.0.0.2 --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RIG_REG/version")
if [ "$code" = 200 ]; then pass "registrar serves another client during the attack"
else fail "registrar serves another client during the attack" "HTTP $code"; fi
# ... and polling goes on: three more rounds while the sockets are held.
n0=$(rig_field "$UUID" attestation_count)
if rig_wait 20 "agent_id = '$UUID' AND operational_state = 3 AND attestation_count >= $((n0 + 3))"; then
  pass "polling goes on during the attack"
else
  fail "polling goes on during the attack" "count $n0 -> $(rig_field "$UUID" attestation_count), state $(rig_state "$UUID")"
fi

# The header deadline (15 s) closes the trickling connections although each sends a byte a second.
if rig_wait_log 40 "$ALOG" "closed $RIG_API" && rig_wait_log 10 "$ALOG" "closed $RIG_REG"; then
  pass "trickling connections closed by the header deadline: $(grep closed "$ALOG" | tr '\n' ' ')"
else
  fail "trickling connections closed by the header deadline" "$(tr '\n' ' ' <"$ALOG")"
fi
if grep -qF "from 127.0.0.1: no complete request headers within 15 s" "$RIG_VLOG"; then pass "the verifier says why"
else fail "the verifier says why" "no 'no complete request headers' line"; fi
if grep -qF "connection refused: the limit of connections" "$RIG_VLOG" &&
   [ "$(grep -c 'connection refused: the limit' "$RIG_VLOG")" -le 3 ]; then pass "refused connections are logged, briefly"
else fail "refused connections are logged, briefly" "$(grep -c 'connection refused: the limit' "$RIG_VLOG") lines"; fi
code=$(curl -s "${RIG_CURL[@]}" --max-time 10 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$RIG_API/v2.6/agents/$UUID")
if [ "$code" = 200 ]; then pass "the attacker's address is served again afterwards"
else fail "the attacker's address is served again afterwards" "HTTP $code"; fi

if rig_stop_verifier; then pass "clean stop"; else fail "clean stop" "exit status $?"; fi
if grep -q "Sanitizer" "$RIG_VLOG"; then fail "no sanitizer reports" "$(grep -m3 Sanitizer "$RIG_VLOG")"
else pass "no sanitizer reports"; fi
