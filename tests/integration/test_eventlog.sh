#!/usr/bin/env bash
# The UEFI event log parser against an independent one: every log in tests/data/eventlogs/ is
# replayed by Quince (tests/tools/eventlog_replay) and by tpm2_eventlog (tpm2-tools), and the
# event count and every final PCR of every bank must agree. Then malformed logs (truncated,
# an oversized event, a bank the header does not declare) must give a one-line error that
# names the event number and offset, never a crash.
set -u
. "$QUINCE_ROOT/tests/integration/lib.sh"
T=$QUINCE_TMP
REPLAY=$TOOLS/eventlog_replay
DATA=$QUINCE_ROOT/tests/data/eventlogs

if ! command -v tpm2_eventlog >/dev/null; then
  fail "tools present" "tpm2_eventlog not installed (packaging/install-deps.sh installs tpm2-tools)"; exit 1
fi

# tpm2_eventlog's YAML: "- EventNum:"/"  PCRIndex:" lines per event, then "pcrs:" with
# "  <bank>:" and "    <n>  : 0x<hex>" lines. Normalised to "events N" and "<bank> <n> 0x<hex>".
reference() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print("events %d" % len(re.findall(r'^\s*-?\s*PCRIndex:', text, re.M)))
bank = None
in_pcrs = False
for line in text.splitlines():
    if line.startswith("pcrs:"):
        in_pcrs = True; continue
    if not in_pcrs:
        continue
    m = re.match(r'^  (\w+):\s*$', line)
    if m:
        bank = m.group(1); continue
    m = re.match(r'^\s+(\d+)\s*:\s*0x([0-9a-fA-F]+)\s*$', line)
    if m and bank:
        print("%s %d 0x%s" % (bank, int(m.group(1)), m.group(2).lower()))
PY
}

n=0
for f in "$DATA"/*.bin; do
  name=$(basename "$f" .bin)
  n=$((n + 1))
  if ! tpm2_eventlog "$f" >"$T/$name.yaml" 2>"$T/$name.err"; then
    fail "$name: tpm2_eventlog read it" "$(head -2 "$T/$name.err")"; continue
  fi
  reference "$T/$name.yaml" | sort >"$T/$name.want"
  if ! "$REPLAY" "$f" >"$T/$name.got.raw" 2>"$T/$name.goterr"; then
    fail "$name: Quince replays it" "$(cat "$T/$name.goterr")"; continue
  fi
  sort "$T/$name.got.raw" >"$T/$name.got"
  if [ "$(wc -l <"$T/$name.want")" -lt 2 ]; then
    fail "$name: reference has PCRs" "tpm2_eventlog printed no pcrs section"; continue
  fi
  if diff -u "$T/$name.want" "$T/$name.got" >"$T/$name.diff"; then
    pass "$name: $(head -1 "$T/$name.want"), $(($(wc -l <"$T/$name.want") - 1)) PCRs match tpm2_eventlog"
  else
    fail "$name: matches tpm2_eventlog" "$(head -12 "$T/$name.diff" | tr '\n' ' ')"
  fi
done
[ "$n" = 6 ] && pass "all six logs were compared" || fail "all six logs were compared" "found $n"

# --- malformed logs -------------------------------------------------------------------------
GCE=$DATA/event-gce-ubuntu-2104-log.bin
size=$(stat -c %s "$GCE")
head -c $((size - 7)) "$GCE" >"$T/trunc.bin"
expect_rc "a truncated log is refused" 1 "$REPLAY" "$T/trunc.bin"
expect_grep "the error names the event and its offset" "at offset" "$LAST_OUT"
expect_grep "the error names the event number" "event 111" "$LAST_OUT"

: >"$T/empty.bin"
expect_rc "an empty log is refused" 1 "$REPLAY" "$T/empty.bin"
expect_grep "an empty log is named as such" "empty" "$LAST_OUT"

# Event 1 of the crypto-agile logs starts right after the 65-byte header plus its Spec ID data;
# corrupt its event size (the last 4 bytes before its data) to 0x7fffffff.
python3 - "$GCE" "$T/huge.bin" "$T/badalg.bin" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
hdr_len = 32 + struct.unpack_from("<I", b, 28)[0]
off = hdr_len
count = struct.unpack_from("<I", b, off + 8)[0]
p = off + 12
for _ in range(count):
    alg = struct.unpack_from("<H", b, p)[0]
    p += 2 + {4: 20, 11: 32, 12: 48, 13: 64}[alg]
huge = bytearray(b); struct.pack_into("<I", huge, p, 0x7fffffff)
open(sys.argv[2], "wb").write(huge)
bad = bytearray(b); struct.pack_into("<H", bad, off + 12, 0x0012)   # SM3, not declared
open(sys.argv[3], "wb").write(bad)
PY
expect_rc "an event larger than the limit is refused" 1 "$REPLAY" "$T/huge.bin"
expect_grep "the oversized event is event 1" "event 1 at offset" "$LAST_OUT"
expect_rc "a digest of an undeclared bank is refused" 1 "$REPLAY" "$T/badalg.bin"
expect_grep "the undeclared bank is named" "0x0012" "$LAST_OUT"
exit 0
