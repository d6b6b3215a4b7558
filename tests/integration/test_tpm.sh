#!/usr/bin/env bash
# `quince-agent ima-emulator` against a private swtpm (unix socket in QUINCE_TMP, stopped by PID):
# PCR 10 equals the value computed in software, a restart neither skips nor repeats entries, the
# emulator leaves the TPM free for other clients while it follows the list, SIGTERM stops it.
# The TPM library itself (EK, AK, quotes, credentials, timeouts) is covered by tests/unit/test_tpm.c.
source "$(dirname "$0")/lib.sh"

if ! command -v swtpm >/dev/null || ! command -v tpm2_pcrread >/dev/null; then
  echo "SKIP: test_tpm: swtpm or tpm2-tools not installed"
  exit 0
fi

D=$QUINCE_TMP/tpm
mkdir -p "$D/state"
SOCK=$D/tpm.sock
export TPM2TOOLS_TCTI="swtpm:path=$SOCK"
TCTI=$TPM2TOOLS_TCTI
SWTPM_PID=
EMU_PID=
cleanup() {
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
  if [ -n "$SWTPM_PID" ]; then kill -CONT "$SWTPM_PID" 2>/dev/null; kill "$SWTPM_PID" 2>/dev/null; wait "$SWTPM_PID" 2>/dev/null; fi
}
trap cleanup EXIT

swtpm socket --tpm2 --server "type=unixio,path=$SOCK" --ctrl "type=unixio,path=$SOCK.ctrl" \
  --tpmstate "dir=$D/state" --flags not-need-init,startup-clear --log "file=$D/swtpm.log,level=1" &
SWTPM_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && [ -S "$SOCK.ctrl" ] && break; sleep 0.05; done

# ---- helpers: ima-ng lines and the expected PCR 10, computed with openssl/coreutils ----------
hex2bin() { printf "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }
le32() { hex2bin "$(printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"; }
PCR1=0000000000000000000000000000000000000000
PCR256=0000000000000000000000000000000000000000000000000000000000000000
# add_line FILE NAME: appends an ima-ng line for NAME and extends PCR1/PCR256.
add_line() {
  local file=$1 name=$2 fd td th1 th256
  fd=$(printf '%s' "$name" | sha256sum | cut -c1-64)
  td=$D/td.bin
  { le32 40; printf 'sha256:\0'; hex2bin "$fd"; le32 $(( ${#name} + 1 )); printf '%s\0' "$name"; } >"$td"
  th1=$(sha1sum <"$td" | cut -c1-40)
  th256=$(sha256sum <"$td" | cut -c1-64)
  printf '10 %s ima-ng sha256:%s %s\n' "$th1" "$fd" "$name" >>"$file"
  PCR1=$( (hex2bin "$PCR1$th1") | sha1sum | cut -c1-40)
  PCR256=$( (hex2bin "$PCR256$th256") | sha256sum | cut -c1-64)
}
pcr10() { tpm2_pcrread "$1:10" 2>/dev/null | sed -n 's/.*10 *: *0x//p' | tr 'A-F' 'a-f'; }
check_pcr10() { # NAME
  local got1 got256
  got1=$(pcr10 sha1); got256=$(pcr10 sha256)
  if [ "$got1" = "$PCR1" ] && [ "$got256" = "$PCR256" ]; then pass "$1"
  else fail "$1" "PCR 10 sha1=$got1 sha256=$got256, wanted $PCR1 / $PCR256"; fi
}
emulate() { "$AGENT" ima-emulator --tcti "$TCTI" --banks sha1,sha256 "$@"; }

LOG=$D/ascii_runtime_measurements

# ---- options ------------------------------------------------------------------------------------
expect_rc "emulator --help" 0 "$AGENT" ima-emulator --help
expect_grep "emulator --help text" "--ima-log" "$LAST_OUT"
expect_rc "emulator bad --banks" 2 "$AGENT" ima-emulator --banks sha3 --once
expect_rc "emulator missing list" 1 emulate --ima-log "$D/none" --once
expect_grep "emulator missing list message" "cannot open" "$LAST_OUT"

# ---- once: a small list ---------------------------------------------------------------------------
: >"$LOG"
for i in $(seq 1 20); do add_line "$LOG" "/usr/bin/tool$i"; done
expect_rc "emulator --once" 0 emulate --ima-log "$LOG" --once
check_pcr10 "PCR 10 equals the software value"

# ---- restart with an appended list: nothing skipped or repeated -----------------------------------
for i in $(seq 21 30); do add_line "$LOG" "/usr/lib/lib$i.so"; done
expect_rc "emulator restart" 0 emulate --ima-log "$LOG" --once
expect_grep "emulator found its position" "holds the first 20 entries" "$LAST_OUT"
check_pcr10 "PCR 10 after restart with appended list"
expect_rc "emulator rerun without new lines" 0 emulate --ima-log "$LOG" --once
check_pcr10 "PCR 10 unchanged by a rerun"

# ---- a list PCR 10 never saw ------------------------------------------------------------------------
OTHER=$D/other.log
PCR1_SAVE=$PCR1; PCR256_SAVE=$PCR256
add_line "$OTHER" "/bin/unrelated"
PCR1=$PCR1_SAVE; PCR256=$PCR256_SAVE
expect_rc "emulator refuses a foreign list" 1 emulate --ima-log "$OTHER" --once
expect_grep "emulator foreign list message" "does not match any prefix of $OTHER; reset the software TPM" "$LAST_OUT"

# ---- follow mode: partial lines, other clients, SIGTERM --------------------------------------------
"$AGENT" ima-emulator --tcti "$TCTI" --banks sha1,sha256 --ima-log "$LOG" --interval-ms 50 >"$D/emu.out" 2>&1 &
EMU_PID=$!
ok=1
for i in $(seq 1 5); do   # other clients get the TPM while the emulator runs
  timeout 10 tpm2_pcrread sha256:16 >/dev/null 2>&1 || ok=0
done
[ $ok = 1 ] && pass "TPM free for other clients while following" || fail "TPM free for other clients while following" "tpm2_pcrread blocked or failed"
add_line "$LOG" "/usr/sbin/daemon1"
name="/usr/sbin/daemon2"
SAVE=$(mktemp "$D/line.XXXXXX")
add_line "$SAVE" "$name"
line=$(cat "$SAVE")
printf '%s' "${line:0:30}" >>"$LOG"        # a partial write ...
sleep 0.3
printf '%s\n' "${line:30}" >>"$LOG"        # ... completed later
want1=$PCR1
for _ in $(seq 100); do [ "$(pcr10 sha1)" = "$want1" ] && break; sleep 0.1; done
check_pcr10 "follow mode extends new lines across partial writes"
kill -TERM "$EMU_PID"
rc=0; wait "$EMU_PID" || rc=$?
EMU_PID=
[ $rc = 0 ] && pass "SIGTERM stops the emulator" || fail "SIGTERM stops the emulator" "exit status $rc: $(tail -3 "$D/emu.out")"

# ---- a stopped TPM: the emulator reports the timeout and recovers -----------------------------------
"$AGENT" ima-emulator --tcti "$TCTI" --banks sha1,sha256 --ima-log "$LOG" --interval-ms 50 --timeout-ms 300 \
  >"$D/emu2.out" 2>&1 &
EMU_PID=$!
sleep 0.3
kill -STOP "$SWTPM_PID"
add_line "$LOG" "/usr/sbin/daemon3"
sleep 1
kill -CONT "$SWTPM_PID"
for _ in $(seq 100); do [ "$(pcr10 sha1)" = "$PCR1" ] && break; sleep 0.1; done
check_pcr10 "emulator recovers after the TPM was stopped"
expect_grep "emulator reported the timeout" "did not answer within 300 ms" "$(cat "$D/emu2.out")"
kill -TERM "$EMU_PID"; wait "$EMU_PID" 2>/dev/null; EMU_PID=
exit 0
