# A verifier and fake agents on loopback (sourced by test_poller.sh and test_fake_agent.sh after
# lib.sh). The registrar record of a fake agent is written straight into the verifier's database
# (the fake agent has no TPM to run the credential activation), then the agent is added through the
# verifier API. The database is a SQLite file, or $DATABASE when it is set (a postgresql:// URL of a
# lib_pg.sh server: rig_sql runs psql with $PGPASSFILE). Every process started here is stopped by rig_cleanup (by pid).
# mTLS is on: the verifier makes its CA in $RIG_TLS; fake agents serve TLS with their own
# self-signed certificate ($QUINCE_TMP/NAME.crt), which rig_register puts in the registrar record
# (mtls_cert), and trust that CA for clients; rig_add / rig_api use the tenant's certificate.
RIG_PIDS=()
RIG_DB="${DATABASE:-$QUINCE_TMP/verifier.sqlite}"
RIG_VLOG="$QUINCE_TMP/verifier.log"
RIG_TLS="$QUINCE_TMP/tls"
export QUINCE_TENANT_TLS_DIR=$RIG_TLS
RIG_CURL=(--cacert "$RIG_TLS/cacert.pem" --cert "$RIG_TLS/tenant-cert.pem" --key "$RIG_TLS/tenant-key.pem")

rig_cleanup() {
  local p
  for p in "${RIG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${RIG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  RIG_PIDS=()
}
trap rig_cleanup EXIT

# rig_config [KEY=VALUE...] : writes $QUINCE_TMP/quince.conf (fast polling, short timeouts).
rig_config() {
  {
    echo "[verifier]"
    echo "ip = 127.0.0.1"
    echo "port = 0"
    echo "database = $RIG_DB"
    echo "quote_interval = 0.2"
    echo "max_retries = 2"
    echo "retry_interval = 0.2"
    echo "exponential_backoff = false"
    echo "request_timeout_ms = 1000"
    echo "num_workers = 2"
    # The tests watch the counters in the store: every round is written unless a test asks
    # otherwise (RIG_CHECKPOINT_ROUNDS).
    echo "state_checkpoint_rounds = ${RIG_CHECKPOINT_ROUNDS:-1}"
    echo "log_level = ${RIG_LOG_LEVEL:-info}"
    echo "tls_dir = $RIG_TLS"
    local kv
    for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done
    echo "[registrar]"
    echo "ip = 127.0.0.1"
    echo "port = 0"
    echo "tls_port = 0"
  } >"$QUINCE_TMP/quince.conf"
}

# rig_start_verifier : starts quince-verifier (log appended to $RIG_VLOG), sets RIG_API, RIG_REG
# (plain HTTP) and RIG_REG_TLS.
rig_start_verifier() {
  local mark i
  mark=0
  [ -f "$RIG_VLOG" ] && mark=$(wc -l <"$RIG_VLOG")
  "$VERIFIER" --config "$QUINCE_TMP/quince.conf" >>"$RIG_VLOG" 2>&1 &
  RIG_VPID=$!
  RIG_PIDS+=("$RIG_VPID")
  RIG_API=; RIG_REG=; RIG_REG_TLS=
  for i in $(seq 100); do
    RIG_API=$(tail -n +"$((mark + 1))" "$RIG_VLOG" | grep -o 'verifier API listening on [0-9.]*:[0-9]*' | tail -1 | awk -F: '{print $NF}')
    RIG_REG=$(tail -n +"$((mark + 1))" "$RIG_VLOG" | grep -o 'registrar API listening on [0-9.]*:[0-9]*' | tail -1 | awk -F: '{print $NF}')
    RIG_REG_TLS=$(tail -n +"$((mark + 1))" "$RIG_VLOG" | grep -o 'registrar TLS API listening on [0-9.]*:[0-9]*' | tail -1 | awk -F: '{print $NF}')
    [ -n "$RIG_API" ] && [ -n "$RIG_REG" ] && [ -n "$RIG_REG_TLS" ] && return 0
    kill -0 "$RIG_VPID" 2>/dev/null || break
    sleep 0.1
  done
  echo "verifier did not start:"; tail -5 "$RIG_VLOG"
  return 1
}

# rig_stop_verifier : SIGTERM and wait; returns its exit status.
rig_stop_verifier() {
  kill -TERM "$RIG_VPID" 2>/dev/null
  wait "$RIG_VPID"
}

# rig_fake NAME MODE [fake_agent options...] : starts a fake agent (TLS, clients of the verifier's
# CA); sets FAKE_PORT, FAKE_PID and writes its AK to $QUINCE_TMP/NAME.ak, its certificate to
# $QUINCE_TMP/NAME.crt, its log to $QUINCE_TMP/NAME.log. Start the verifier first (it makes the CA).
rig_fake() {
  local name=$1 mode=$2; shift 2
  rm -f "$QUINCE_TMP/$name.port" "$QUINCE_TMP/$name.ak" "$QUINCE_TMP/$name.crt"
  "$TOOLS/fake_agent" --mode "$mode" --ak-out "$QUINCE_TMP/$name.ak" --tls-ca "$RIG_TLS/cacert.pem" \
      --cert-out "$QUINCE_TMP/$name.crt" "$@" >"$QUINCE_TMP/$name.port" 2>"$QUINCE_TMP/$name.log" &
  FAKE_PID=$!
  RIG_PIDS+=("$FAKE_PID")
  # The port is printed once the AK and the certificate are written: follow the file until it is
  # (tail ends with the fake agent if it dies first).
  FAKE_PORT=$(timeout 30 head -n 1 <(tail -n +1 -F --pid="$FAKE_PID" "$QUINCE_TMP/$name.port" 2>/dev/null))
  [ -n "$FAKE_PORT" ] && [ -s "$QUINCE_TMP/$name.ak" ]
}

rig_sql() {
  case $RIG_DB in
    postgres*) psql -X -q -t -A -v ON_ERROR_STOP=1 "$RIG_DB" -c "$1" ;;
    *) sqlite3 -cmd ".timeout 5000" "$RIG_DB" "$@" ;;
  esac
}

# rig_register UUID AKFILE PORT [CERTFILE|disabled] : an activated registrar record; mtls_cert is
# the fake agent's certificate (default: AKFILE with .crt for .ak).
rig_register() {
  local cert=${4:-${2%.ak}.crt} pem=disabled
  [ "$cert" != disabled ] && pem=$(cat "$cert")
  rig_sql "INSERT INTO registrar(agent_id, aik_tpm, mtls_cert, ip, port, regcount, active)
           VALUES ('$1', '$(tr -d '\n' <"$2")', '$pem', '127.0.0.1', $3, 1, 1)
           ON CONFLICT (agent_id) DO UPDATE SET aik_tpm = excluded.aik_tpm, mtls_cert = excluded.mtls_cert,
           ip = excluded.ip, port = excluded.port, regcount = 1, active = 1;"
}

# rig_add UUID [POLICY_FILE] [TPM_POLICY] : POST the agent; prints the HTTP status. With RIG_ADD_V
# set (base64 of a V key half) the body carries it as "v".
rig_add() {
  local pol="" tp=${3:-'{"mask": "0x400"}'}
  [ -n "${2:-}" ] && pol=$(base64 -w0 "$2")
  jq -n --arg p "$pol" --arg tp "$tp" --arg v "${RIG_ADD_V:-}" '{tpm_policy: $tp, metadata: "{}",
        ima_sign_verification_keys: "", revocation_key: "", mb_policy_name: "", mb_policy: "", runtime_policy: $p,
        v: (if $v == "" then null else $v end)}' >"$QUINCE_TMP/add.json"
  curl -s "${RIG_CURL[@]}" -o "$QUINCE_TMP/add.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
      --data-binary @"$QUINCE_TMP/add.json" "https://127.0.0.1:$RIG_API/v2.1/agents/$1"
}

# rig_api METHOD PATH : prints the HTTP status.
rig_api() {
  curl -s "${RIG_CURL[@]}" -o "$QUINCE_TMP/api.out" -w '%{http_code}' -X "$1" "https://127.0.0.1:$RIG_API$2"
}

rig_state() {
  rig_sql "SELECT operational_state FROM agents WHERE agent_id = '$1';"
}

rig_field() {
  rig_sql "SELECT $2 FROM agents WHERE agent_id = '$1';"
}

# rig_vlog_event : blocks until the verifier writes its next log line (at most 0.5 s): the
# event that anything in the store may have changed.
rig_vlog_event() {
  timeout 0.5 head -n 1 <(tail -n 0 -F --pid=$$ "$RIG_VLOG" 2>/dev/null) >/dev/null
}

# rig_wait SECONDS SQL-CONDITION : waits until SELECT count(*) FROM agents WHERE <cond> is > 0,
# checking again whenever the verifier logs something.
rig_wait() {
  local secs=$1 cond=$2 end=$((SECONDS + $1 + 1))
  while [ $SECONDS -lt $end ]; do
    [ "$(rig_sql "SELECT count(*) FROM agents WHERE $cond;")" -gt 0 ] 2>/dev/null && return 0
    rig_vlog_event
  done
  return 1
}

# rig_wait_log SECONDS FILE PATTERN : waits until FILE contains the fixed string PATTERN.
rig_wait_log() { wait_line "$@"; }   # lib.sh

# rig_request_line NAME N : the N-th quote request line of a fake agent's log.
rig_request_line() {
  grep 'request .* mode' "$QUINCE_TMP/$1.log" | sed -n "$2p"
}

# rig_requests NAME : quote requests the fake agent has served so far.
rig_requests() {
  local n
  n=$(grep -c 'request .* mode' "$QUINCE_TMP/$1.log" 2>/dev/null)
  echo "${n:-0}"
}

# rig_rounds UUID : the agent's rounds_completed in the verifier's status (0 when not polled).
rig_rounds() {
  curl -s "${RIG_CURL[@]}" "https://127.0.0.1:$RIG_API/v2.1/agents/$1" | jq -r '.results.rounds_completed // 0'
}

# rig_wait_rounds SECONDS UUID K : waits until the agent completed K more rounds, by following the
# verifier log (log_level debug: "agent UUID: round N done") as it is written; no polling.
rig_wait_rounds() {
  local mark target
  mark=$(($(wc -l <"$RIG_VLOG") + 1))
  target=$(($(rig_rounds "$2") + $3))
  timeout "$1" grep -m1 -qF -- "agent $2: round $target done" <(tail -n +"$mark" -F --pid=$$ "$RIG_VLOG" 2>/dev/null)
}
