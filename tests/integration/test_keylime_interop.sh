#!/usr/bin/env bash
# Mixing with Python Keylime, both ways, on loopback with software TPMs:
#   1. Quince tenant -> Keylime verifier and registrar, with a Quince agent registered at the
#      Keylime registrar: add, status, delete (so the Keylime verifier also attests a Quince agent).
#   2. Keylime tenant -> Quince verifier and registrar, with a Quince agent: add, status, delete.
# Keylime is run from a source tree given in QUINCE_KEYLIME_SRC (e.g. a checkout of
# github.com/keylime/keylime), with Debian's python3 packages (python3-tornado python3-sqlalchemy
# python3-alembic python3-cryptography python3-requests python3-jinja2 python3-lark
# python3-jsonschema python3-pyasn1 python3-pyasn1-modules python3-psutil python3-yaml
# python3-typing-extensions python3-gpg). Without QUINCE_KEYLIME_SRC, or when a module is
# missing, it prints "SKIP: ..." and passes nothing. CI does not run it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rig.sh"
if [ -z "${QUINCE_KEYLIME_SRC:-}" ]; then
  echo "SKIP: QUINCE_KEYLIME_SRC is not set (a Keylime source tree); the Keylime interop test did not run"
  exit 0
fi
KL=$QUINCE_KEYLIME_SRC
if [ ! -f "$KL/keylime/cmd/verifier.py" ] || [ ! -d "$KL/templates" ]; then
  echo "SKIP: QUINCE_KEYLIME_SRC=$KL is not a Keylime source tree (no keylime/cmd/verifier.py or templates/)"
  exit 0
fi
for t in swtpm curl python3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done
export PYTHONPATH=$KL${PYTHONPATH:+:$PYTHONPATH}
missing=$(python3 - <<'PY'
import importlib
mods = ["tornado", "sqlalchemy", "alembic", "cryptography", "requests", "jinja2", "lark", "jsonschema",
        "pyasn1", "pyasn1_modules", "psutil", "yaml", "keylime.cmd.verifier", "keylime.cmd.registrar",
        "keylime.cmd.tenant", "keylime.cmd.convert_config"]
out = []
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as e:
        out.append("%s (%s)" % (m, type(e).__name__))
print(" ".join(out))
PY
)
if [ -n "$missing" ]; then
  echo "SKIP: Keylime cannot run with this machine's python3: missing $missing"
  exit 0
fi

W=$QUINCE_TMP/work
export KEYLIME_DIR=$QUINCE_TMP/keylime       # Keylime's working directory (CA, databases)
KCONF=$QUINCE_TMP/keylime-conf
mkdir -p "$W" "$KEYLIME_DIR" "$KCONF"
: >"$W/empty.conf"
export QUINCE_CONFIG=$W/empty.conf
IMA=$QUINCE_TMP/ima
LIST=$IMA/ascii_runtime_measurements
mkdir -p "$IMA"
"$TOOLS/ima_gen" --out-dir "$IMA" --entries 20 --seed 21 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }
cp "$IMA/allowlist.txt" "$W/allowlist.txt"

if python3 -m keylime.cmd.convert_config --defaults --out "$KCONF" --templates "$KL/templates" >"$W/convert.log" 2>&1; then
  pass "Keylime configuration generated"
else fail "Keylime configuration generated" "$(tail -3 "$W/convert.log" | tr '\n' ' ')"; exit 0; fi
export KEYLIME_VERIFIER_CONFIG=$KCONF/verifier.conf KEYLIME_REGISTRAR_CONFIG=$KCONF/registrar.conf
export KEYLIME_TENANT_CONFIG=$KCONF/tenant.conf KEYLIME_CA_CONFIG=$KCONF/ca.conf
export KEYLIME_LOGGING_CONFIG=$KCONF/logging.conf

# kset FILE SECTION KEY=VALUE...: set options in a generated Keylime configuration file.
kset() {
  local f=$1 s=$2; shift 2
  python3 - "$f" "$s" "$@" <<'PY'
import configparser, sys
f, s, kv = sys.argv[1], sys.argv[2], sys.argv[3:]
c = configparser.RawConfigParser()
c.optionxform = str
c.read(f)
for item in kv:
    k, v = item.split("=", 1)
    c[s][k] = v
with open(f, "w") as fh:
    c.write(fh)
PY
}

KV_PORT=$(free_port); KR_PORT=$(free_port); KR_TLS=$(free_port)
kset "$KCONF/verifier.conf" verifier ip=127.0.0.1 port="$KV_PORT" registrar_ip=127.0.0.1 registrar_port="$KR_TLS" \
  tls_dir=generate enable_agent_mtls=True database_url=sqlite quote_interval=1 max_retries=3 retry_interval=1 \
  "uuid=default" || { fail "Keylime verifier configuration"; exit 0; }
kset "$KCONF/registrar.conf" registrar ip=127.0.0.1 port="$KR_PORT" tls_port="$KR_TLS" tls_dir=default \
  database_url=sqlite || { fail "Keylime registrar configuration"; exit 0; }
kset "$KCONF/tenant.conf" tenant verifier_ip=127.0.0.1 verifier_port="$KV_PORT" registrar_ip=127.0.0.1 \
  registrar_port="$KR_TLS" tls_dir=default enable_agent_mtls=True require_ek_cert=False \
  accept_tpm_hash_algs="['sha512','sha384','sha256','sha1']" \
  accept_tpm_signing_algs="['ecschnorr','rsassa','ecdsa']" || { fail "Keylime tenant configuration"; exit 0; }

KPIDS=()
kstop() { local p; for p in "${KPIDS[@]}"; do kill "$p" 2>/dev/null; done; rig_cleanup; }
trap kstop EXIT

# ---- 1. Quince tenant -> Keylime verifier and registrar, Quince agent -------------------------------
python3 -m keylime.cmd.verifier >"$W/kverifier.log" 2>&1 &
KPIDS+=("$!")
for _ in $(seq 300); do [ -f "$KEYLIME_DIR/cv_ca/client-cert.crt" ] && break; sleep 0.1; done
python3 -m keylime.cmd.registrar >"$W/kregistrar.log" 2>&1 &
KPIDS+=("$!")
KCA=$KEYLIME_DIR/cv_ca
ok=0
for _ in $(seq 300); do
  curl -s -o /dev/null --max-time 2 --cacert "$KCA/cacert.crt" --cert "$KCA/client-cert.crt" --key "$KCA/client-private.pem" \
    "https://127.0.0.1:$KV_PORT/version" &&
  curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$KR_PORT/version" && { ok=1; break; }
  sleep 0.2
done
if [ $ok = 1 ]; then pass "Keylime verifier and registrar up"
else fail "Keylime verifier and registrar up" "$(tail -3 "$W/kverifier.log" "$W/kregistrar.log" | tr '\n' ' ')"; exit 0; fi

UUID1=quince-agent-under-keylime
start_swtpm tpm1 ekcert
emulate "$TCTI_tpm1" "$LIST" || fail "emulator replays the list"
REG_PORT=$KR_PORT                     # the agent registers with the Keylime registrar
start_agent a1 "$UUID1" "$TCTI_tpm1" "$LIST" "trusted_client_ca = $KCA/cacert.crt"
if wait_http "$(AG_URL a1)/version" 60; then pass "Quince agent up, registered with the Keylime registrar"
else fail "Quince agent up" "$(tail -3 "$QUINCE_TMP/a1/agent.log")"; exit 0; fi

printf '[tenant]\nca_cert = %s\nclient_cert = %s\nclient_key = %s\n' "$KCA/cacert.crt" "$KCA/client-cert.crt" \
  "$KCA/client-private.pem" >"$W/qtenant.conf"
QT() { QUINCE_CONFIG=$W/qtenant.conf "$TENANT" -v 127.0.0.1 -vp "$KV_PORT" -r 127.0.0.1 -rp "$KR_TLS" -u "$UUID1" "$@"; }
out=$(QT -c regstatus 2>&1); rc=$?
[ $rc = 0 ] && pass "quince-tenant regstatus at the Keylime registrar" || fail "quince-tenant regstatus at the Keylime registrar" "exit $rc: $out"
if printf '%s' "$out" | grep -q "note:"; then fail "the Keylime registrar's /version is understood" "$out"
else pass "the Keylime registrar's /version is understood"; fi
out=$(QT -c add --allowlist "$W/allowlist.txt" 2>&1); rc=$?
[ $rc = 0 ] && pass "quince-tenant add to the Keylime verifier" || fail "quince-tenant add to the Keylime verifier" "exit $rc: $out"
ok=0
for _ in $(seq 150); do
  out=$(QT -c cvstatus 2>&1) && printf '%s' "$out" | grep -q "Get Quote (state 3)" && { ok=1; break; }
  sleep 0.2
done
[ $ok = 1 ] && pass "the Keylime verifier attests the Quince agent (Get Quote)" || fail "the Keylime verifier attests the Quince agent" "$out"
out=$(QT -c cvlist 2>&1); rc=$?
[ $rc = 0 ] && expect_grep "quince-tenant cvlist at the Keylime verifier" "$UUID1" "$out" || fail "quince-tenant cvlist" "exit $rc: $out"
out=$(QT -c delete 2>&1); rc=$?
[ $rc = 0 ] && pass "quince-tenant delete at the Keylime verifier" || fail "quince-tenant delete at the Keylime verifier" "exit $rc: $out"
for p in "${KPIDS[@]}"; do kill "$p" 2>/dev/null; done
KPIDS=()

# ---- 2. Keylime tenant -> Quince verifier and registrar, Quince agent --------------------------------
unset REG_PORT
start_verifier || { fail "Quince verifier starts" "$(tail -5 "$QUINCE_TMP/verifier.log")"; exit 0; }
UUID2=quince-agent-keylime-tenant
start_swtpm tpm2 ekcert
emulate "$TCTI_tpm2" "$LIST" || fail "emulator replays the list (2)"
start_agent a2 "$UUID2" "$TCTI_tpm2" "$LIST"
if wait_http "$(AG_URL a2)/version" 60; then pass "Quince agent up, registered with the Quince registrar"
else fail "Quince agent up (2)" "$(tail -3 "$QUINCE_TMP/a2/agent.log")"; exit 0; fi
# The Keylime tenant's TLS files, named as it expects, from the Quince verifier's CA.
KT=$QUINCE_TMP/keylime-tenant-tls
mkdir -p "$KT"
cp "$TLS_DIR/cacert.pem" "$KT/cacert.crt"
cp "$TLS_DIR/tenant-cert.pem" "$KT/client-cert.crt"
cp "$TLS_DIR/tenant-key.pem" "$KT/client-private.pem"
kset "$KCONF/tenant.conf" tenant verifier_port="$CV_PORT" registrar_port="$REG_TLS_PORT" tls_dir="$KT" \
  client_key=client-private.pem client_cert=client-cert.crt client_key_password= "trusted_server_ca=['cacert.crt']"
KT_() { python3 -m keylime.cmd.tenant -v 127.0.0.1 -vp "$CV_PORT" -r 127.0.0.1 -rp "$REG_TLS_PORT" -u "$UUID2" "$@"; }
KT_ -c add -t 127.0.0.1 -tp "$AGENT_PORT_a2" --allowlist "$W/allowlist.txt" >"$W/kt-add.log" 2>&1; rc=$?
[ $rc = 0 ] && pass "keylime_tenant add to the Quince verifier" || fail "keylime_tenant add to the Quince verifier" "exit $rc: $(tail -3 "$W/kt-add.log" | tr '\n' ' ')"
ok=0
for _ in $(seq 150); do
  vcurl "$CV_URL/v2.1/agents/$UUID2" | grep -q '"operational_state": *3' && { ok=1; break; }
  sleep 0.2
done
[ $ok = 1 ] && pass "the Quince verifier attests the agent added by keylime_tenant" || fail "the Quince verifier attests the agent added by keylime_tenant"
KT_ -c status >"$W/kt-status.log" 2>&1; rc=$?
[ $rc = 0 ] && grep -q "$UUID2" "$W/kt-status.log" && pass "keylime_tenant status" || fail "keylime_tenant status" "exit $rc: $(tail -3 "$W/kt-status.log" | tr '\n' ' ')"
KT_ -c delete >"$W/kt-delete.log" 2>&1; rc=$?
[ $rc = 0 ] && pass "keylime_tenant delete" || fail "keylime_tenant delete" "exit $rc: $(tail -3 "$W/kt-delete.log" | tr '\n' ' ')"
