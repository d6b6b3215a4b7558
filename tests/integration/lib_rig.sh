# Test rig helpers (sourced after lib.sh): a private swtpm, quince-verifier, quince-agent and the
# ima-emulator, each on its own loopback port or unix socket inside QUINCE_TMP, stopped by PID.
#   free_port                 prints a free TCP port on 127.0.0.1
#   start_swtpm NAME [ekcert] starts swtpm NAME (state in $QUINCE_TMP/NAME), sets TCTI_<NAME>
#   start_verifier            writes $QUINCE_TMP/verifier.conf ([verifier] lines from $VERIFIER_EXTRA
#                             added; database = $DATABASE when set), starts quince-verifier (mTLS on: its CA
#                             in $TLS_DIR; sets CV_PORT, REG_PORT (plain HTTP: register and activate
#                             only), REG_TLS_PORT, and the base URLs CV_URL, REG_URL (TLS), REG_PLAIN_URL)
#   start_agent NAME UUID TCTI LIST [extra conf lines...]   (trusted_client_ca = the verifier's CA;
#                             the agent serves https: AG_URL NAME prints its base URL; its payload
#                             secure_dir is $RIG_SHM/NAME/secure on the existing /dev/shm tmpfs, so
#                             no agent mounts anything; a later "secure_dir = ..." line wins)
#   emulate TCTI LIST         one ima-emulator pass (extends PCR 10 for new lines)
#   wait_http URL [secs]      waits until URL answers (https: with the tenant's certificate, not checked)
#   vcurl ARGS...             curl -s to the verifier API or the registrar's TLS port with the CA and
#                             the tenant's client certificate
#   acurl NAME ARGS...        curl -s to agent NAME: its own certificate (state_dir/mtls-cert.pem) as
#                             the CA, the tenant's client certificate
#   rig_cleanup               stops everything this rig started and removes $RIG_SHM (installed as
#                             an EXIT trap)
# quince-tenant run by a test finds the CA through QUINCE_TENANT_TLS_DIR (exported here).
RIG_PIDS=()
RIG_SWTPM_PIDS=()
TLS_DIR=$QUINCE_TMP/tls
# Agents' secure directories: a private directory on the /dev/shm tmpfs (made on first use).
RIG_SHM=
export QUINCE_TENANT_TLS_DIR=$TLS_DIR
TLS_CURL=(--cacert "$TLS_DIR/cacert.pem" --cert "$TLS_DIR/tenant-cert.pem" --key "$TLS_DIR/tenant-key.pem")
vcurl() { curl -s "${TLS_CURL[@]}" "$@"; }
acurl() { local n=$1; shift; curl -s --cacert "$QUINCE_TMP/$n/state/mtls-cert.pem" --cert "$TLS_DIR/tenant-cert.pem" --key "$TLS_DIR/tenant-key.pem" "$@"; }
AG_URL() { eval "echo https://127.0.0.1:\$AGENT_PORT_$1"; }

rig_cleanup() {
  local p
  for p in "${RIG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${RIG_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  for p in "${RIG_SWTPM_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  case $RIG_SHM in /dev/shm/quince-rig.*) rm -rf "$RIG_SHM";; esac
}

# rig_shm: makes (once) and prints the rig's directory on /dev/shm; it and the agents'
# directories in it are searchable, so an agent that drops to run_as still reaches its own.
rig_shm() {
  if [ -z "$RIG_SHM" ]; then
    RIG_SHM=$(mktemp -d /dev/shm/quince-rig.XXXXXX) || return 1
    chmod 0755 "$RIG_SHM"
  fi
  echo "$RIG_SHM"
}
trap rig_cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {
  local url=$1 secs=${2:-20} i
  local tls=()
  case $url in https:*) tls=(-k --cert "$TLS_DIR/tenant-cert.pem" --key "$TLS_DIR/tenant-key.pem");; esac
  for i in $(seq $((secs * 10))); do
    curl -s -o /dev/null --max-time 2 "${tls[@]}" "$url" && return 0
    sleep 0.1
  done
  return 1
}

# start_swtpm NAME [ekcert]: with "ekcert", swtpm_setup creates an EK certificate first.
start_swtpm() {
  local name=$1 d=$QUINCE_TMP/$1
  mkdir -p "$d/state"
  if [ "${2:-}" = ekcert ]; then
    swtpm_setup --tpm2 --tpmstate "$d/state" --create-ek-cert --create-platform-cert \
      --pcr-banks sha1,sha256 --overwrite >"$d/setup.log" 2>&1 || echo "warning: swtpm_setup failed"
  fi
  swtpm socket --tpm2 --server "type=unixio,path=$d/tpm.sock" --ctrl "type=unixio,path=$d/tpm.sock.ctrl" \
    --tpmstate "dir=$d/state" --flags not-need-init,startup-clear --log "file=$d/swtpm.log,level=1" &
  local pid=$!
  RIG_SWTPM_PIDS+=("$pid")
  eval "SWTPM_PID_$name=$pid"
  eval "TCTI_$name=swtpm:path=$d/tpm.sock"
  for _ in $(seq 100); do [ -S "$d/tpm.sock" ] && [ -S "$d/tpm.sock.ctrl" ] && break; sleep 0.05; done
  # Agents that drop to another user (run_as) must still reach both sockets.
  chmod 0755 "$d" 2>/dev/null
  chmod 0666 "$d/tpm.sock" "$d/tpm.sock.ctrl" 2>/dev/null
}

start_verifier() {
  REG_PORT=$(free_port); CV_PORT=$(free_port); REG_TLS_PORT=$(free_port)
  CV_URL=https://127.0.0.1:$CV_PORT REG_URL=https://127.0.0.1:$REG_TLS_PORT REG_PLAIN_URL=http://127.0.0.1:$REG_PORT
  cat >"$QUINCE_TMP/verifier.conf" <<CONF
[verifier]
ip = 127.0.0.1
port = $CV_PORT
database = ${DATABASE:-$QUINCE_TMP/verifier/db.sqlite}
tls_dir = $TLS_DIR
quote_interval = ${QUOTE_INTERVAL:-0.5}
retry_interval = 0.2
max_retries = ${MAX_RETRIES:-3}
request_timeout_ms = 5000
accept_tpm_hash_algs = sha512, sha384, sha256, sha1
accept_tpm_signing_algs = ecschnorr, rsassa, ecdsa
log_level = ${VERIFIER_LOG_LEVEL:-info}
state_checkpoint_rounds = ${STATE_CHECKPOINT_ROUNDS:-1}
${VERIFIER_EXTRA:-}
[registrar]
ip = 127.0.0.1
port = $REG_PORT
tls_port = $REG_TLS_PORT
CONF
  "$VERIFIER" --config "$QUINCE_TMP/verifier.conf" >>"$QUINCE_TMP/verifier.log" 2>&1 &
  VERIFIER_PID=$!
  RIG_PIDS+=("$VERIFIER_PID")
  wait_http "$REG_PLAIN_URL/version" 20 && wait_http "$REG_URL/version" 20 && wait_http "$CV_URL/version" 20
}

stop_verifier() { # [signal]
  kill "-${1:-TERM}" "$VERIFIER_PID" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$VERIFIER_PID" 2>/dev/null || break; sleep 0.1; done
}

# start_agent NAME UUID TCTI LIST [extra "key = value" lines for [agent]]
start_agent() {
  local name=$1 uuid=$2 tcti=$3 list=$4; shift 4
  local port; port=$(free_port)
  mkdir -p "$QUINCE_TMP/$name"
  [ -n "$RIG_SHM" ] || rig_shm >/dev/null
  mkdir -p "$RIG_SHM/$name" && chmod 0755 "$RIG_SHM/$name"
  {
    echo "[agent]"
    echo "uuid = $uuid"
    echo "ip = 127.0.0.1"
    echo "port = $port"
    echo "registrar_ip = 127.0.0.1"
    echo "registrar_port = ${REG_PORT:-1}"
    echo "tcti = $tcti"
    echo "ima_ml_path = $list"
    echo "state_dir = $QUINCE_TMP/$name/state"
    echo "tpm_release = true"
    echo "tpm_timeout_ms = ${AGENT_TPM_TIMEOUT_MS:-10000}"   # the agent's default: creating the AK on a busy swtpm can take seconds
    echo "registrar_retry_ms = 100"
    echo "registrar_retry_max_ms = 500"
    echo "trusted_client_ca = $TLS_DIR/cacert.pem"
    echo "secure_dir = $RIG_SHM/$name/secure"
    for l in "$@"; do echo "$l"; done
  } >"$QUINCE_TMP/$name/agent.conf"
  "$AGENT" --config "$QUINCE_TMP/$name/agent.conf" >>"$QUINCE_TMP/$name/agent.log" 2>&1 &
  local pid=$!
  RIG_PIDS+=("$pid")
  eval "AGENT_PID_$name=$pid"
  eval "AGENT_PORT_$name=$port"
}

emulate() { # TCTI LIST
  "$AGENT" ima-emulator --tcti "$1" --ima-log "$2" --banks sha1,sha256 --once >>"$QUINCE_TMP/emulator.log" 2>&1
}

# fleet_wait_ready SECONDS : waits (polling every 0.1 s) until quince-fleet ($FLEET_PID, output in
# $QUINCE_TMP/fleet.out) prints "fleet: ready"; 1 when it exits first or SECONDS pass (the bound
# only stops a test that would hang).
fleet_wait_ready() {
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    grep -q '^fleet: ready' "$QUINCE_TMP/fleet.out" 2>/dev/null && return 0
    kill -0 "$FLEET_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
