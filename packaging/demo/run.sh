#!/usr/bin/env bash
# The end-to-end demonstration of runtime integrity monitoring on a software TPM.
#   packaging/demo/run.sh BUILD_DIR [--no-web]   (make demo runs it after building;
#                                                  make demo DEMO_ARGS=--no-web)
# It starts, in a private demo directory, a swtpm with an EK certificate, quince-verifier
# (registrar + verifier, SQLite), quince-agent and its ima-emulator on a measurement list written
# from real files of this machine; builds an allowlist from the same files with
# `quince-tenant create-allowlist`; provisions the agent with `quince-tenant`, delivering a secure
# payload (-f payload.zip: opened on the agent only after its first good quote); shows it
# attested; then "runs" a script that is not in the allowlist and shows the verifier catching it.
# The agent's payload directory is a private directory on the existing /dev/shm tmpfs (nothing
# is mounted), removed at the end.
# Every link runs mutually authenticated TLS: the verifier makes its CA in the demo directory on
# first start, the agent is given that CA (trusted_client_ca), registers its own certificate, and
# the verifier and the tenant pin it.
# When its input is a terminal it ends with the web page (quince-tenant webapp): it prints the
# URL and the one-time login token and keeps the page up until Enter is pressed. --no-web skips
# that; without a terminal it never waits.
# Every process it started is stopped by PID at the end, whatever happens.
set -u
BUILD=$(cd "${1:-build}" && pwd)
WEB=1
case ${2:-} in
  "") ;;
  --no-web) WEB=0 ;;
  *) echo "usage: $0 BUILD_DIR [--no-web]" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
AGENT=$BUILD/quince-agent VERIFIER=$BUILD/quince-verifier TENANT=$BUILD/quince-tenant
GEN=$BUILD/tests/tools/ima_gen
for b in "$AGENT" "$VERIFIER" "$TENANT"; do [ -x "$b" ] || { echo "demo: $b is missing (run make)"; exit 2; }; done
if [ ! -x "$GEN" ]; then make -C "$ROOT" --no-print-directory "BUILD=$BUILD" "$GEN" >/dev/null || exit 2; fi
for t in swtpm swtpm_setup curl python3; do command -v $t >/dev/null || { echo "demo: $t is missing (make deps)"; exit 2; }; done

DEMO=${QUINCE_DEMO_DIR:-$(mktemp -d /tmp/quince-demo.XXXXXX)}
mkdir -p "$DEMO"
SHM=$(mktemp -d /dev/shm/quince-demo.XXXXXX) || { echo "demo: cannot make a directory on /dev/shm"; exit 2; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  wait 2>/dev/null
  rm -rf "$SHM"
  echo
  echo "demo: every process it started is stopped; the payload's tmpfs directory $SHM is removed;"
  echo "      files kept in $DEMO"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# wait_http URL: until it answers (https: with the tenant's certificate; only readiness is checked).
wait_http() {
  local tls=()
  case $1 in https:*) tls=(-k --cert "$DEMO/tls/tenant-cert.pem" --key "$DEMO/tls/tenant-key.pem");; esac
  for _ in $(seq 300); do curl -s -o /dev/null --max-time 2 "${tls[@]}" "$1" && return 0; sleep 0.1; done; return 1
}
UUID=D432FBB3-D2F1-4A97-9EF7-75BD81C00000

say "1. A software TPM with an EK certificate (swtpm)"
mkdir -p "$DEMO/tpm"
swtpm_setup --tpm2 --tpmstate "$DEMO/tpm" --create-ek-cert --create-platform-cert --pcr-banks sha1,sha256 \
  --overwrite >"$DEMO/swtpm_setup.log" 2>&1 || { echo "demo: swtpm_setup failed (see $DEMO/swtpm_setup.log)"; exit 1; }
swtpm socket --tpm2 --server "type=unixio,path=$DEMO/tpm.sock" --ctrl "type=unixio,path=$DEMO/tpm.sock.ctrl" \
  --tpmstate "dir=$DEMO/tpm" --flags not-need-init,startup-clear --log "file=$DEMO/swtpm.log,level=1" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$DEMO/tpm.sock" ] && break; sleep 0.05; done
TCTI="swtpm:path=$DEMO/tpm.sock"
echo "swtpm pid ${PIDS[0]}, TCTI $TCTI"

say "2. A measurement list written from real files of this machine (the kernel's part)"
# A small "root file system": real programs and libraries, copied with their paths.
FILES=$(ls /usr/bin/* 2>/dev/null | head -150; ls /usr/lib/x86_64-linux-gnu/lib{c,m,pthread,crypto,ssl}.so* 2>/dev/null)
mkdir -p "$DEMO/rootfs"
LISTED=()
for f in $FILES; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  mkdir -p "$DEMO/rootfs$(dirname "$f")"; cp -p "$f" "$DEMO/rootfs$f" 2>/dev/null && LISTED+=("$f")
done
"$GEN" --out-dir "$DEMO/ima" --from-files "${LISTED[@]}" >"$DEMO/ima_gen.log" 2>&1 || { echo "demo: ima_gen failed"; exit 1; }
LIST=$DEMO/ima/ascii_runtime_measurements
echo "$(wc -l <"$LIST") entries (boot_aggregate first) in $LIST:"
head -3 "$LIST" | cut -c1-150

say "3. The verifier (registrar + verifier API, SQLite and its CA under $DEMO)"
REG_PORT=$(free_port); REG_TLS_PORT=$(free_port); CV_PORT=$(free_port); AG_PORT=$(free_port)
cat >"$DEMO/quince.conf" <<CONF
[verifier]
ip = 127.0.0.1
port = $CV_PORT
database = $DEMO/verifier/quince.sqlite
tls_dir = $DEMO/tls
quote_interval = 1
[registrar]
ip = 127.0.0.1
port = $REG_PORT
tls_port = $REG_TLS_PORT
[agent]
uuid = $UUID
ip = 127.0.0.1
port = $AG_PORT
registrar_ip = 127.0.0.1
registrar_port = $REG_PORT
tcti = $TCTI
tpm_release = true
ima_ml_path = $LIST
state_dir = $DEMO/agent
trusted_client_ca = $DEMO/tls/cacert.pem
secure_dir = $SHM/secure
[tenant]
verifier_ip = 127.0.0.1
verifier_port = $CV_PORT
registrar_ip = 127.0.0.1
registrar_port = $REG_TLS_PORT
tls_dir = $DEMO/tls
allowlist = $DEMO/allowlist.txt
ima_excludelist = $DEMO/excludes.txt
CONF
export QUINCE_CONFIG=$DEMO/quince.conf
"$VERIFIER" >"$DEMO/verifier.log" 2>&1 &
PIDS+=($!)
wait_http "https://127.0.0.1:$CV_PORT/version" || { echo "demo: the verifier did not start"; tail "$DEMO/verifier.log"; exit 1; }
echo "quince-verifier pid ${PIDS[-1]}: registrar on 127.0.0.1:$REG_PORT (plain HTTP: registration and activation"
echo "only) and 127.0.0.1:$REG_TLS_PORT (mTLS), verifier API on 127.0.0.1:$CV_PORT (mTLS)"
echo "On first start it made its certificate authority in $DEMO/tls:"
(cd "$DEMO/tls" && ls -l -- *.pem | awk '{print "  " $1 "  " $NF}')
grep -h "TLS: created" "$DEMO/verifier.log" | sed 's/^.* - INFO - TLS: created \(.*\) in .*/  (made now: \1)/'

say "3b. The verifier's CA reaches the agent: [agent] trusted_client_ca"
echo "cacert.pem is public: copy it to every agent machine (scp, configuration management, an image)."
echo "Here agent and verifier share a machine, so the agent's configuration names the file itself:"
grep -h '^trusted_client_ca' "$DEMO/quince.conf" | sed 's/^/  [agent] /'
echo "The agent serves its API only to clients whose certificate chains to it (the verifier's"
echo "client-cert.pem, the tenant's tenant-cert.pem), and the tenant uses [tenant] tls_dir = $DEMO/tls."

say "4. The agent and its ima-emulator (PCR 10 follows the list)"
"$AGENT" ima-emulator --tcti "$TCTI" --ima-log "$LIST" --banks sha1,sha256 --interval-ms 200 >"$DEMO/emulator.log" 2>&1 &
PIDS+=($!)
"$AGENT" >"$DEMO/agent.log" 2>&1 &
PIDS+=($!)
wait_http "https://127.0.0.1:$AG_PORT/version" || { echo "demo: the agent did not start"; tail "$DEMO/agent.log"; exit 1; }
grep -h "registered and activated\|AK\|mTLS" "$DEMO/agent.log" | sed 's/^/  /'
echo "The agent registered its own certificate (mtls_cert); the verifier and the tenant pin it:"
echo "a machine that takes over the agent's address cannot answer in its place."
echo "Without a client certificate the agent answers: $(curl -s --cacert "$DEMO/agent/mtls-cert.pem" "https://127.0.0.1:$AG_PORT/version")"

say "5. An allowlist from the same files: quince-tenant create-allowlist"
echo '$ quince-tenant create-allowlist --rootfs rootfs --ima-log ascii_runtime_measurements -o allowlist.txt'
"$TENANT" create-allowlist --rootfs "$DEMO/rootfs" --ima-log "$LIST" -o "$DEMO/allowlist.txt" || exit 1
echo "$(wc -l <"$DEMO/allowlist.txt") digests; excludes: ^/tmp/"
printf '^/tmp/\n' >"$DEMO/excludes.txt"

say "6. Provision the agent with a secure payload (keylime_tenant's options)"
mkdir -p "$DEMO/payload"
printf 'db_password = %s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$DEMO/payload/secret.conf"
printf '#!/bin/sh\necho "autorun.sh ran on the attested machine at $(date +%%T)" >autorun.out\n' >"$DEMO/payload/autorun.sh"
(cd "$DEMO/payload" && python3 -c 'import zipfile
with zipfile.ZipFile("../payload.zip", "w") as z:
    z.write("secret.conf"); z.write("autorun.sh")') || { echo "demo: cannot build payload.zip"; exit 1; }
echo "payload.zip holds secret.conf and autorun.sh. The tenant seals it with a fresh key K, sends"
echo "the agent one half (U) and the verifier the other (V); the verifier releases V only after the"
echo "agent's first good quote, and only then can the agent open the payload."
echo "\$ quince-tenant -v 127.0.0.1 -t 127.0.0.1 --uuid $UUID -f payload.zip --allowlist allowlist.txt --exclude excludes.txt --verify"
echo "(over mTLS with $DEMO/tls/tenant-cert.pem: the verifier API, the registrar's TLS port, the agent)"
"$TENANT" -v 127.0.0.1 -vp "$CV_PORT" -t 127.0.0.1 -tp "$AG_PORT" -r 127.0.0.1 -rp "$REG_TLS_PORT" --uuid "$UUID" \
  -f "$DEMO/payload.zip" --allowlist "$DEMO/allowlist.txt" --exclude "$DEMO/excludes.txt" --verify \
  || { echo "demo: provisioning failed"; exit 1; }

say "7. The agent is attested every second"
for _ in $(seq 30); do
  st=$("$TENANT" -c status -u "$UUID" 2>/dev/null)
  grep -q "Get Quote" <<<"$st" && break; sleep 0.5
done
sleep 3
"$TENANT" -c status -u "$UUID"
grep -h "attested (Provide V)\|V delivered" "$DEMO/verifier.log" | sed 's/^.* - INFO - /  verifier: /'

say "7b. The payload, opened on the agent in its tmpfs ($SHM/secure)"
for _ in $(seq 30); do [ -s "$SHM/secure/unzipped/autorun.out" ] && break; sleep 0.2; done
grep -h "bootstrap key derived\|payload decrypted\|payload script" "$DEMO/agent.log" | sed 's/^.* - INFO - /  agent: /'
(cd "$SHM/secure" && find . -type f -printf '  %M %6s  %P\n' | sort -k3)
echo "  unzipped/autorun.out: $(cat "$SHM/secure/unzipped/autorun.out" 2>/dev/null)"
cmp -s "$SHM/secure/unzipped/secret.conf" "$DEMO/payload/secret.conf" && echo "  unzipped/secret.conf is the tenant's file" \
  || { echo "demo: the payload did not arrive"; exit 1; }

say "8. Someone runs a script that is not in the allowlist"
printf '#!/bin/sh\necho "up to no good"\n' >"$DEMO/evil.sh"
echo "(its measurement is appended as the kernel would, and the emulator extends PCR 10)"
"$GEN" --out-dir "$DEMO/ima" --append-file "$DEMO/evil.sh" --name /root/evil.sh >/dev/null || exit 1
tail -1 "$LIST" | cut -c1-150
for _ in $(seq 60); do grep -q "stopping polling" "$DEMO/verifier.log" && break; sleep 0.5; done

say "9. What the verifier logged"
grep -h "File not found in allowlist\|IMA ERRORS\|failed, stopping polling" "$DEMO/verifier.log"

say "10. What the operator sees: quince-tenant -c status"
"$TENANT" -c status -u "$UUID"
grep -q "stopping polling" "$DEMO/verifier.log" || { echo "demo: the verifier did not catch the script"; exit 1; }

if [ "$WEB" = 1 ] && [ -t 0 ]; then
  say "11. The web page: quince-tenant webapp"
  WEB_PORT=8443
  python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",8443))' 2>/dev/null || WEB_PORT=$(free_port)
  "$TENANT" webapp --port "$WEB_PORT" >"$DEMO/webapp.out" 2>"$DEMO/webapp.log" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q "log in at" "$DEMO/webapp.out" && break; sleep 0.1; done
  if grep -q "log in at" "$DEMO/webapp.out"; then
    cat "$DEMO/webapp.out"
    echo "The page's certificate is signed by the verifier's CA: trust $DEMO/tls/cacert.pem in the"
    echo "browser, or accept the warning. The token works once; the session cookie keeps you logged in."
    echo "From another machine: ssh -L $WEB_PORT:127.0.0.1:$WEB_PORT this-machine, then open the URL there."
    read -r -p "Press Enter to stop the demo. " _
  else
    echo "demo: the web page did not start:"; tail -3 "$DEMO/webapp.log"
  fi
elif [ "$WEB" = 1 ]; then
  echo
  echo "demo: (no terminal: the web page step is skipped; see quince-tenant webapp --help)"
fi
echo
echo "demo: done."
