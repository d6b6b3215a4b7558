#!/usr/bin/env bash
# Revocation webhook and metrics: with [revocations] enabled_revocation_notifications =
# ["webhook"], a local HTTPS receiver gets Keylime's revocation message for an agent that fails
# IMA (msg fields, the failing entry in context, empty signature), the good agent next to it
# keeps attesting, and [verifier] metrics_listen serves agents by state, failures by event id
# and the build info.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fake_rig.sh"
for t in python3 openssl jq sqlite3 curl; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

IMA="$QUINCE_TMP/ima"
OTHER="$QUINCE_TMP/other"
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 12 --seed 5 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }
"$TOOLS/ima_gen" --out-dir "$OTHER" --entries 6 --seed 9 >/dev/null 2>&1 || { fail setup "ima_gen"; exit 0; }

# The receiver: HTTPS on loopback with its own self-signed certificate; one body per line.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$QUINCE_TMP/hook.key" -out "$QUINCE_TMP/hook.crt" >/dev/null 2>&1 || { fail setup "openssl"; exit 0; }
cat >"$QUINCE_TMP/hook.py" <<'PY'
import http.server, ssl, sys
out, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(n, 1 << 20))
        with open(out, "ab") as f:
            f.write(self.path.encode() + b" " + body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
python3 "$QUINCE_TMP/hook.py" "$QUINCE_TMP/hook.out" "$QUINCE_TMP/hook.crt" "$QUINCE_TMP/hook.key" >"$QUINCE_TMP/hook.port" 2>"$QUINCE_TMP/hook.log" &
RIG_PIDS+=("$!")
for _ in $(seq 100); do [ -s "$QUINCE_TMP/hook.port" ] && break; sleep 0.1; done
HOOK_PORT=$(head -1 "$QUINCE_TMP/hook.port")
[ -n "$HOOK_PORT" ] || { fail setup "webhook receiver did not start: $(cat "$QUINCE_TMP/hook.log")"; exit 0; }

rig_config metrics_listen=127.0.0.1:0 quote_interval=0.5
cat >>"$QUINCE_TMP/quince.conf" <<CONF
[revocations]
enabled_revocation_notifications = ["webhook"]
webhook_url = https://127.0.0.1:$HOOK_PORT/revoked
webhook_ca_cert = $QUINCE_TMP/hook.crt
webhook_retry_interval_ms = 100
CONF
if ! rig_start_verifier; then fail start_verifier "no API port"; exit 0; fi
METRICS=$(grep -o 'metrics listening on [0-9.]*:[0-9]*' "$RIG_VLOG" | tail -1 | awk -F: '{print $NF}')
[ -n "$METRICS" ] && pass "metrics server up" || fail "metrics server up" "$(grep -i metric "$RIG_VLOG")"

GOOD=b0b0b0b0-0000-4000-8000-000000000001
BAD=b0b0b0b0-0000-4000-8000-000000000002
rig_fake good good --ima-log "$IMA/ascii_runtime_measurements" || fail start_good "fake agent did not start"
rig_register "$GOOD" "$QUINCE_TMP/good.ak" "$FAKE_PORT"
[ "$(rig_add "$GOOD" "$IMA/runtime_policy.json")" = 200 ] || fail add_good "$(cat "$QUINCE_TMP/add.out")"
# The bad agent's list is not in its policy: every entry is "not found".
rig_fake bad good --ima-log "$OTHER/ascii_runtime_measurements" || fail start_bad "fake agent did not start"
rig_register "$BAD" "$QUINCE_TMP/bad.ak" "$FAKE_PORT"
[ "$(rig_add "$BAD" "$IMA/runtime_policy.json")" = 200 ] || fail add_bad "$(cat "$QUINCE_TMP/add.out")"

# A third agent attests its 12 entries, then its list grows by one entry not in the policy.
GROW=b0b0b0b0-0000-4000-8000-000000000003
cp "$IMA/ascii_runtime_measurements" "$QUINCE_TMP/grow.txt"
rig_fake grow good --ima-log "$QUINCE_TMP/grow.txt" || fail start_grow "fake agent did not start"
rig_register "$GROW" "$QUINCE_TMP/grow.ak" "$FAKE_PORT"
[ "$(rig_add "$GROW" "$IMA/runtime_policy.json")" = 200 ] || fail add_grow "$(cat "$QUINCE_TMP/add.out")"
rig_wait 60 "agent_id = '$GROW' AND next_ima_ml_entry = 12" && pass "grow agent: 12 entries verified" || fail "grow agent verified" "$(rig_field "$GROW" next_ima_ml_entry)"
rig_wait 30 "agent_id = '$GROW' AND ima_good_total = 12" && pass "the running good count is stored with the agent" \
  || fail "good count stored" "$(rig_field "$GROW" ima_good_total)"
tail -1 "$OTHER/ascii_runtime_measurements" >>"$QUINCE_TMP/grow.txt"   # not boot_aggregate
rig_wait 60 "agent_id = '$GROW' AND operational_state = 9" && pass "grow agent fails on the new entry" || fail "grow agent fails" "state $(rig_state "$GROW")"
expect_grep "IMA lines name the agent" "quince.ima - WARNING - agent $GROW: File not found in allowlist" "$(cat "$RIG_VLOG")"
expect_grep "counts line: good is the running total since replay began" "quince.ima - ERROR - agent $GROW: IMA ERRORS: template-hash 0 fnf 1 hash 0 good 12" "$(cat "$RIG_VLOG")"

rig_wait 60 "agent_id = '$BAD' AND operational_state = 9" && pass "bad agent: Invalid Quote" || fail "bad agent: Invalid Quote" "state $(rig_state "$BAD")"
got=0
for _ in $(seq 300); do grep -q "$BAD" "$QUINCE_TMP/hook.out" 2>/dev/null && { got=1; break; }; sleep 0.1; done
[ $got = 1 ] && pass "the HTTPS webhook received the revocation event" || fail "webhook received the event" "$(grep -i revocation "$RIG_VLOG" | tail -3)"
line=$(grep "$BAD" "$QUINCE_TMP/hook.out" | head -1)
path=${line%% *}; body=${line#* }
[ "$path" = /revoked ] && pass "posted to the configured path" || fail "posted to the path" "$path"
msg=$(jq -r .msg <<<"$body")
sig=$(jq -r .signature <<<"$body")
[ "$sig" = "" ] && pass "signature empty without a revocation key" || fail "signature empty" "$sig"
for k in type ip agent_id port tpm_policy meta_data event_time event_id severity_label context; do
  jq -e "has(\"$k\")" <<<"$msg" >/dev/null && pass "msg has $k" || fail "msg has $k" "$msg"
done
[ "$(jq -r .type <<<"$msg")" = revocation ] && pass "type revocation" || fail "type revocation" "$msg"
[ "$(jq -r .agent_id <<<"$msg")" = "$BAD" ] && pass "agent_id is the failed agent" || fail "agent_id" "$msg"
jq -e '.context.entry >= 0 and (.context.path | length > 0) and (.context.message | length > 0)' <<<"$msg" >/dev/null \
  && pass "context names the failing entry" || fail "context names the failing entry" "$(jq -c .context <<<"$msg")"
grep -q "$GOOD" "$QUINCE_TMP/hook.out" && fail "no event for the good agent" || pass "no event for the good agent"
[ "$(rig_state "$GOOD")" = 3 ] && pass "the good agent keeps attesting" || fail "good agent" "state $(rig_state "$GOOD")"
grep -q "agent $BAD: revocation webhook delivered" "$RIG_VLOG" && pass "delivery logged with the agent" || fail "delivery logged" "$(grep -i webhook "$RIG_VLOG" | tail -2)"

# Metrics.
m=$(curl -s "http://127.0.0.1:$METRICS/metrics")
expect_grep "metrics: build info" 'quince_build_info{version="' "$m"
expect_grep "metrics: agents in Get Quote" 'quince_agents{state="Get Quote"} 1' "$m"
expect_grep "metrics: agents in Invalid Quote" 'quince_agents{state="Invalid Quote"} 2' "$m"
expect_grep "metrics: failures by event id" 'quince_failures_total{event_id="ima.' "$m"
grep -Eq '^quince_attestations_total [1-9]' <<<"$m" && pass "metrics: attestations counted" || fail "metrics: attestations" "$(grep attestations <<<"$m")"
grep -Eq '^quince_round_seconds_count [1-9]' <<<"$m" && pass "metrics: round latency recorded" || fail "metrics: round latency recorded" "$(grep round_seconds_count <<<"$m")"
grep -Eq '^quince_store_write_seconds_count [1-9]' <<<"$m" && pass "metrics: store write latency recorded" || fail "metrics: store write latency recorded" "$(grep store_write_seconds_count <<<"$m")"
grep -Eq '^quince_revocation_webhook_sent_total [1-9]' <<<"$m" && pass "metrics: webhook sent" || fail "metrics: webhook sent" "$(grep webhook <<<"$m")"
st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS/other")
[ "$st" = 404 ] && pass "metrics: other paths 404" || fail "metrics: other paths 404" "$st"
rig_stop_verifier && pass "verifier: clean stop" || fail "verifier: clean stop"
