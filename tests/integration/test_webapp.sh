#!/usr/bin/env bash
# quince-tenant webapp in a real browser: a verifier (mTLS, its CA), two fake agents and a third
# registered with a hostile address, then the webapp; headless Chromium driven by
# webapp_browser.py logs in with the printed token, adds an agent, sees both attested, uploads an
# allowlist with one bad line (error at its line), uploads a good one and assigns it, sees the
# agent turn Invalid Quote naming an injected file (a hostile path), is refused deleting a policy
# in use, and checks that nothing injected runs and that CSRF-less requests are refused. Here,
# with curl: the page's certificate chains to the verifier's CA, the security headers, the
# one-time token, non-loopback binding needs --listen and warns. Screenshots are in
# $QUINCE_TMP/shots (kept with the logs when a check fails).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fake_rig.sh"
for t in chromium chromedriver python3 curl sqlite3; do
  command -v "$t" >/dev/null || { echo "SKIP: webapp browser test: $t not installed (packaging/install-deps.sh)"; exit 0; }
done
# Debian's python3-selenium lives in the system python; a python3 earlier in PATH may lack it.
PY=
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import selenium' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: webapp browser test: python3-selenium not installed"; exit 0; }

W=$QUINCE_TMP/work
SHOTS=$QUINCE_TMP/shots
mkdir -p "$W" "$SHOTS" "$QUINCE_TMP/profile"
U1=c0ffee00-0000-4000-8000-000000000001
U2=c0ffee00-0000-4000-8000-000000000002
UH=c0ffee00-0000-4000-8000-0000000000ee
HOSTILE_IP="<script>window.__pwned=3</script>\"'&<img src=x onerror=window.__pwned=4>"
EVIL="/tmp/evil\"'<script>window.__pwned=1</script><img/src=x/onerror=window.__pwned=2>.sh"
PNAME="web-good\"'<img src=x onerror=window.__pwned=5>"

IMA1=$QUINCE_TMP/ima1 IMA2=$QUINCE_TMP/ima2
"$TOOLS/ima_gen" --out-dir "$IMA1" --entries 10 --seed 3 >/dev/null 2>&1 || { fail setup "ima_gen 1"; exit 0; }
"$TOOLS/ima_gen" --out-dir "$IMA2" --entries 10 --seed 4 >/dev/null 2>&1 || { fail setup "ima_gen 2"; exit 0; }
# The bad allowlist: line 3 is not "<hex>  <path>".
awk 'NR == 3 {print "this-is-not-a-digest /usr/bin/oops"; next} {print}' "$IMA2/allowlist.txt" >"$W/bad-allowlist.txt"
cp "$IMA2/allowlist.txt" "$W/good-allowlist.txt"
printf '^/nonexistent/.*\n' >"$W/excludes.txt"
GOOD_PATHS=$(awk 'NF >= 2' "$W/good-allowlist.txt" | awk '{print $2}' | sort -u | wc -l)
printf 'unlisted\n' >"$W/evil.sh"

rig_config
if ! rig_start_verifier; then fail start_verifier "no API port"; exit 0; fi
rig_fake a1 good --ima-log "$IMA1/ascii_runtime_measurements" || { fail start_a1 "fake agent"; exit 0; }
rig_register "$U1" "$QUINCE_TMP/a1.ak" "$FAKE_PORT"
st=$(rig_add "$U1" "$IMA1/runtime_policy.json")
[ "$st" = 200 ] || fail add_a1 "HTTP $st: $(cat "$QUINCE_TMP/add.out")"
rig_fake a2 good --ima-log "$IMA2/ascii_runtime_measurements" || { fail start_a2 "fake agent"; exit 0; }
rig_register "$U2" "$QUINCE_TMP/a2.ak" "$FAKE_PORT"
# An agent that registered a hostile address (the verifier cannot reach it: it ends Failed).
SQL_IP=${HOSTILE_IP//\'/\'\'}
rig_sql "INSERT OR REPLACE INTO registrar(agent_id, aik_tpm, mtls_cert, ip, port, regcount, active)
         VALUES ('$UH', '$(tr -d '\n' <"$QUINCE_TMP/a1.ak")', '$(cat "$QUINCE_TMP/a1.crt")', '$SQL_IP', 9, 1, 1);"
st=$(rig_add "$UH" "$IMA1/runtime_policy.json")
[ "$st" = 200 ] || fail add_hostile "HTTP $st: $(cat "$QUINCE_TMP/add.out")"

: >"$W/empty.conf"
WLOG=$QUINCE_TMP/webapp.log
start_webapp() {   # start_webapp OUT ERR [options]: sets WEB_PID
  local out=$1 err=$2; shift 2
  "$TENANT" webapp --config "$W/empty.conf" -vp "$RIG_API" -rp "$RIG_REG_TLS" "$@" >"$out" 2>"$err" &
  WEB_PID=$!
  RIG_PIDS+=("$WEB_PID")
}

# Bad options and a missing CA: one line, exit 2, nothing served.
expect_rc "unknown option: exit 2" 2 "$TENANT" webapp --bogus
expect_grep "unknown option: one line" "unknown option '--bogus'" "$LAST_OUT"
expect_rc "--cert without --key: exit 2" 2 "$TENANT" webapp --cert "$W/x.pem"
expect_rc "no CA: exit 2" 2 env QUINCE_TENANT_TLS_DIR="$W/none" "$TENANT" webapp --config "$W/empty.conf" --port 0
expect_grep "no CA: names the file" "$W/none/cacert.pem" "$LAST_OUT"

# Binding beyond loopback needs --listen (there is no other way to set it) and warns.
start_webapp "$W/wide.out" "$W/wide.err" --listen 0.0.0.0 --port 0
if rig_wait_log 30 "$W/wide.out" "log in at" && grep -q "warning: serving on 0.0.0.0, not on loopback" "$W/wide.err"; then
  pass "a non-loopback --listen prints a warning"
else
  fail "a non-loopback --listen prints a warning" "$(cat "$W/wide.err")"
fi
kill "$WEB_PID"; wait "$WEB_PID"

start_webapp "$WLOG" "$QUINCE_TMP/webapp.err" --port 0
if ! rig_wait_log 30 "$WLOG" "log in at"; then fail "webapp starts" "$(cat "$QUINCE_TMP/webapp.err")"; exit 0; fi
LOGIN=$(grep -o 'https://[^ ]*/login?token=[0-9a-f]*' "$WLOG")
BASE=${LOGIN%%/login*}
case $BASE in https://127.0.0.1:*) pass "serves https on 127.0.0.1 by default";; *) fail "serves https on 127.0.0.1 by default" "$BASE";; esac
C=(curl -sS --cacert "$RIG_TLS/cacert.pem")

# The certificate chains to the verifier's CA (curl checks it with only that CA).
if "${C[@]}" -o /dev/null -w '%{http_code}' "$BASE/login" | grep -q 200; then
  pass "the page's certificate is signed by the verifier's CA"
else
  fail "the page's certificate is signed by the verifier's CA" "$("${C[@]}" "$BASE/login" 2>&1 | tail -1)"
fi
H=$("${C[@]}" -D - -o /dev/null "$BASE/")
expect_grep "CSP without inline script" "script-src 'self';" "$H"
expect_grep "no session: redirect to the login page" "Location: /login" "$H"
expect_grep "nosniff" "X-Content-Type-Options: nosniff" "$H"
st=$("${C[@]}" -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data '{}' "$BASE/api/upload")
[ "$st" = 401 ] && pass "upload without a session is refused" || fail "upload without a session is refused" "HTTP $st"
st=$("${C[@]}" -o /dev/null -w '%{http_code}' "$BASE/login?token=$(printf '%064d' 0)")
[ "$st" = 403 ] && pass "a wrong token is refused" || fail "a wrong token is refused" "HTTP $st"
st=$("${C[@]}" -o /dev/null -w '%{http_code}' "$BASE/static/app.js")
[ "$st" = 200 ] && pass "static files are compiled in" || fail "static files are compiled in" "HTTP $st"
# Upload size limit: a body over --max-upload (default 16 MiB) is refused before it is read.
head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$W/huge.json"
st=$("${C[@]}" -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$W/huge.json" "$BASE/api/upload")
[ "$st" = 413 ] && pass "an upload over the size limit is refused (413)" || fail "an upload over the size limit is refused (413)" "HTTP $st"

# The browser. The injection appends the unlisted (hostile) file to agent 2's measurement list.
jq -n --arg base "$BASE" --arg login "$LOGIN" --arg shots "$SHOTS" --arg profile "$QUINCE_TMP/profile" \
  --arg cacert "$RIG_TLS/cacert.pem" --arg u1 "$U1" --arg u2 "$U2" --arg uh "$UH" --arg hip "$HOSTILE_IP" \
  --arg bad "$W/bad-allowlist.txt" --arg good "$W/good-allowlist.txt" --arg excl "$W/excludes.txt" \
  --arg pname "$PNAME" --arg evil "$EVIL" --argjson paths "$GOOD_PATHS" \
  --arg json "$IMA1/runtime_policy.json" --arg ima_gen "$TOOLS/ima_gen" --arg ima2 "$IMA2" --arg evilfile "$W/evil.sh" \
  '{base: $base, login_url: $login, shots: $shots, profile: $profile, cacert: $cacert, uuid1: $u1, uuid2: $u2,
    hostile_uuid: $uh, hostile_ip: $hip, bad_allowlist: $bad, bad_line: 3, bad_text: "this-is-not-a-digest",
    good_allowlist: $good, excludes: $excl, exclude_pattern: "^/nonexistent/.*", good_paths: $paths,
    policy_name: $pname, base_policy: "web-base", json_policy: $json, evil_path: $evil, wait: 60,
    inject: [$ima_gen, "--out-dir", $ima2, "--append-file", $evilfile, "--name", $evil]}' >"$W/browser.json"
"$PY" "$QUINCE_ROOT/tests/integration/webapp_browser.py" "$W/browser.json" 2>"$QUINCE_TMP/browser.err"
rc=$?
[ $rc = 0 ] || { echo "browser script exited $rc:"; tail -20 "$QUINCE_TMP/browser.err"; }

# The token works once.
st=$("${C[@]}" -o /dev/null -w '%{http_code}' "$LOGIN")
[ "$st" = 403 ] && pass "the login token works once" || fail "the login token works once" "HTTP $st"
kill "$WEB_PID"
if wait "$WEB_PID"; then pass "webapp stops cleanly on SIGTERM"; else fail "webapp stops cleanly on SIGTERM" "exit $? $(tail -3 "$QUINCE_TMP/webapp.err")"; fi
echo "screenshots: $SHOTS ($(ls "$SHOTS" | tr '\n' ' '))"
