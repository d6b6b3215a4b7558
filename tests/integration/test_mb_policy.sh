#!/usr/bin/env bash
# Measured boot, offline and on a software TPM:
#  - `quince-tenant create-mb-policy` writes, for every shared log, the same reference state as an
#    independent re-statement of Keylime's rules over tpm2_eventlog's output (mb_refstate_ref.py);
#  - `quince-tenant check-mb-log` passes a log against its own reference state, and names the
#    event number and what was expected for a changed kernel command line, a revoked dbx entry
#    missing from the machine, a dropped boot application and a log from another machine;
#  - `quince-agent mb-emulator` leaves a swtpm's PCRs equal to the log's replay, once per power-on.
set -u
. "$QUINCE_ROOT/tests/integration/lib.sh"
T=$QUINCE_TMP
DATA=$QUINCE_ROOT/tests/data/eventlogs
MOK=$DATA/event-moklisttrusted.bin
# Debian's interpreter, where install-deps.sh puts python3-yaml (another python3 may come first in PATH)
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3

if ! command -v tpm2_eventlog >/dev/null || ! $PY -c 'import yaml' 2>/dev/null; then
  fail "tools present" "tpm2_eventlog or python3-yaml missing (packaging/install-deps.sh installs them)"; exit 1
fi

# --- create-mb-policy against the independent reference --------------------------------------
for name in moklisttrusted gce-ubuntu-2104-log postcode arch-linux; do
  f=$DATA/event-$name.bin
  tpm2_eventlog "$f" >"$T/$name.yaml" 2>/dev/null
  $PY "$QUINCE_ROOT/tests/integration/mb_refstate_ref.py" "$T/$name.yaml" --without-secureboot >"$T/$name.want.json"
  if ! "$TENANT" create-mb-policy --eventlog "$f" --without-secureboot -o "$T/$name.ref.json" 2>"$T/$name.err"; then
    fail "$name: create-mb-policy" "$(cat "$T/$name.err")"; continue
  fi
  if python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
       "$T/$name.want.json" "$T/$name.ref.json"; then
    pass "$name: create-mb-policy gives the same keys and values as Keylime's rules"
  else
    fail "$name: create-mb-policy gives the same keys and values as Keylime's rules" "see $T/$name.ref.json"
  fi
done
expect_rc "Secure Boot off without --without-secureboot is refused" 1 \
  "$TENANT" create-mb-policy --eventlog "$DATA/event-gce-ubuntu-2104-log.bin"
expect_grep "... naming the flag" "--without-secureboot" "$LAST_OUT"
expect_rc "a SHA-1-only log cannot give a reference state" 1 \
  "$TENANT" create-mb-policy --eventlog "$DATA/event-uefi-sha1-log.bin"
expect_grep "... because it has no sha256 bank" "no sha256 bank" "$LAST_OUT"
expect_rc "a missing log is unusable input" 2 "$TENANT" create-mb-policy --eventlog "$T/none.bin"
expect_rc "a missing --eventlog is a usage error" 2 "$TENANT" create-mb-policy
expect_rc "--without-secureboot on a Secure Boot log only warns" 0 \
  "$TENANT" create-mb-policy --eventlog "$MOK" --without-secureboot -o "$T/mok.json"
expect_grep "... with a warning" "is ignored" "$LAST_OUT"

# --- check-mb-log --------------------------------------------------------------------------
expect_rc "a log passes against its own reference state" 0 \
  "$TENANT" check-mb-log --eventlog "$MOK" --mb-policy "$T/mok.json"
expect_grep "... and says so" "result: PASS" "$LAST_OUT"

# the kernel command line is event 40 of this log (PCR 8, "kernel_cmdline: ...")
python3 - "$T/mok.json" "$T/cmdline.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["kernels"][0]["kernel_cmdline"] += "\\ quiet"
json.dump(r, open(sys.argv[2], "w"))
PY
expect_rc "a changed kernel command line in the reference fails" 1 \
  "$TENANT" check-mb-log --eventlog "$MOK" --mb-policy "$T/cmdline.json"
cmd_ev=$(tpm2_eventlog "$MOK" 2>/dev/null | $PY -c '
import sys, yaml
for e in yaml.safe_load(sys.stdin)["events"]:
    s = (e.get("Event") or {}).get("String", "") if isinstance(e.get("Event"), dict) else ""
    if e["EventType"] == "EV_IPL" and e["PCRIndex"] == 8 and "kernel_cmdline" in str(s):
        print(e["EventNum"]); break')
expect_grep "... at the kernel command line's event ($cmd_ev)" "event $cmd_ev: kernel command line" "$LAST_OUT"

python3 - "$T/mok.json" "$T/dbx.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["dbx"].append({"SignatureOwner": "77fa9abd-0359-4d32-bd60-28f4e78f784b", "SignatureData": "0x" + "ab" * 32})
json.dump(r, open(sys.argv[2], "w"))
PY
expect_rc "a revoked dbx entry missing from the machine fails" 1 \
  "$TENANT" check-mb-log --eventlog "$MOK" --mb-policy "$T/dbx.json"
expect_grep "... naming dbx and the missing entry's owner" "dbx lacks 1 of" "$LAST_OUT"
expect_grep "... at the dbx event" "77fa9abd-0359-4d32-bd60-28f4e78f784b" "$LAST_OUT"

# drop the grub boot application (the second EV_EFI_BOOT_SERVICES_APPLICATION) from the log
python3 "$QUINCE_ROOT/tests/integration/evlog_drop_bsa.py" "$MOK" "$T/dropped.bin" || fail "dropping a boot application from the log"
expect_rc "a log with a dropped boot application fails" 1 \
  "$TENANT" check-mb-log --eventlog "$T/dropped.bin" --mb-policy "$T/mok.json"
expect_grep "... naming the application that is not grub" "is not grub of kernels[0]" "$LAST_OUT"

expect_rc "a log from another machine fails" 1 \
  "$TENANT" check-mb-log --eventlog "$DATA/event-gce-ubuntu-2104-log.bin" --mb-policy "$T/mok.json"
expect_grep "... Secure Boot differs" "Secure Boot is off, the reference state expects it on" "$LAST_OUT"
expect_grep "... the PK differs" "PK holds a key the reference state does not list" "$LAST_OUT"

printf '{"has_secureboot": true, "kernels": []}' >"$T/bad.json"
expect_rc "a malformed reference state is unusable input" 2 \
  "$TENANT" check-mb-log --eventlog "$MOK" --mb-policy "$T/bad.json"
expect_grep "... naming the key" "scrtm_and_bios" "$LAST_OUT"

# --- mb-emulator on a software TPM ----------------------------------------------------------
. "$QUINCE_ROOT/tests/integration/lib_rig.sh"
start_swtpm mb
expect_rc "mb-emulator replays the log into the swtpm" 0 "$AGENT" mb-emulator --tcti "$TCTI_mb" --log "$MOK"
expect_rc "a second replay after power-on is refused" 1 "$AGENT" mb-emulator --tcti "$TCTI_mb" --log "$MOK"
expect_grep "... because PCR 0 is no longer fresh" "not at its power-on value" "$LAST_OUT"
"$TOOLS/eventlog_replay" "$MOK" | awk '$1 == "sha256" && $2 != 10 { print $2, $3 }' | sort >"$T/want.pcrs"
tpm2_pcrread -T "$TCTI_mb" sha256:0,1,2,3,4,5,6,7,8,9,11,12,13,14,15 2>/dev/null |
  awk '/^ *[0-9]+ *:/ { gsub(":", ""); v = tolower($2); print $1, v }' | sort >"$T/got.all"
join "$T/want.pcrs" "$T/got.all" | awk '$2 != $3' >"$T/diff"
if [ -s "$T/want.pcrs" ] && [ ! -s "$T/diff" ] && [ "$(wc -l <"$T/want.pcrs")" -ge 10 ]; then
  pass "the swtpm's PCRs equal the log's replay ($(wc -l <"$T/want.pcrs") PCRs)"
else
  fail "the swtpm's PCRs equal the log's replay" "$(head -3 "$T/diff")"
fi
exit 0
