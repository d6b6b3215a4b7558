#!/usr/bin/env bash
# quince-tenant check-log driven by the synthetic list writer (tests/tools/ima_gen):
# outputs and exit codes (0 pass, 1 fail, 2 unusable input), plus an independent replay of the
# generated lists in python3 (standard library only) to cross-check the generator itself.
set -u
. "$QUINCE_ROOT/tests/integration/lib.sh"
GEN="$TOOLS/ima_gen"
T="$QUINCE_TMP"
CL() { "$TENANT" check-log "$@"; }

gen() { # gen DIR [ima_gen options]
  local d=$1; shift
  "$GEN" --out-dir "$T/$d" "$@" >/dev/null 2>"$T/$d.gen.err" || { echo "ima_gen $* failed: $(cat "$T/$d.gen.err")"; return 1; }
}
# expect_out NAME WANT-RC PATTERN CMD... : exit status and a fixed string in stdout+stderr.
expect_out() {
  local name=$1 want=$2 pat=$3; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  LAST_OUT=$out
  if [ "$rc" != "$want" ]; then fail "$name" "exit $rc, wanted $want: $(echo "$out" | tail -3 | tr '\n' ' ')"
  elif ! printf '%s' "$out" | grep -qF -- "$pat"; then fail "$name" "missing '$pat' in: $(echo "$out" | tail -3 | tr '\n' ' ')"
  else pass "$name"; fi
}

gen clean --entries 200 --seed 1 || exit 1
gen fnf --entries 200 --seed 2 --fnf 1 || exit 1
gen bad --entries 200 --seed 3 --bad-hash 2 || exit 1
gen viol --entries 200 --seed 4 --violations 3 || exit 1
gen prefix --entries 50 --seed 1 || exit 1
gen mixed --entries 400 --seed 5 --template mixed --violations 4 || exit 1
gen sha1 --entries 100 --seed 6 --file-hash sha1 --boot-aggregate-pcrs 8 || exit 1
gen imat --entries 100 --seed 7 --template ima || exit 1
gen big --entries 30000 --seed 8 || exit 1
C="$T/clean"

# --- clean list ---------------------------------------------------------------------------
expect_out clean_passes 0 "result: PASS" CL --log "$C/ascii_runtime_measurements" --allowlist "$C/allowlist.txt"
expect_grep clean_reports_pcr "pcr10(sha256)=$(cat "$C/pcr10-sha256.hex")" "$LAST_OUT"
expect_grep clean_counts "entries=200 good=200" "$LAST_OUT"
if printf '%s' "$LAST_OUT" | grep -q '^entry '; then fail clean_no_failure_lines "$LAST_OUT"; else pass clean_no_failure_lines; fi
expect_out boot_aggregate_zero_pcrs 0 "7b6436b0c98f62380866d9432c2af0ee08ce16a171bda6951aecd95ee1307d61" \
  head -1 "$C/ascii_runtime_measurements"
expect_out clean_runtime_policy 0 "result: PASS" CL --log "$C/ascii_runtime_measurements" --runtime-policy "$C/runtime_policy.json"
expect_out clean_with_sample_excludes 0 "result: PASS" CL --log "$C/ascii_runtime_measurements" --allowlist "$C/allowlist.txt" --exclude "$C/excludes.txt"

# --- file not found -----------------------------------------------------------------------
F="$T/fnf"
missing=$(awk '{print $5}' "$F/ascii_runtime_measurements" | while read -r p; do grep -qF "  $p" "$F/allowlist.txt" || echo "$p"; done | head -1)
expect_out fnf_fails 1 "File not found in allowlist: $missing" CL --log "$F/ascii_runtime_measurements" --allowlist "$F/allowlist.txt"
expect_grep fnf_seed_summary "IMA ERRORS: template-hash 0 fnf 1 hash 0 good 199" "$LAST_OUT"
expect_grep fnf_entry_line "): $missing: not_in_allowlist: File not found in allowlist: $missing" "$LAST_OUT"
expect_grep fnf_result_line "result: FAIL" "$LAST_OUT"
expect_out fnf_runtime_policy_fails 1 "fnf 1" CL --log "$F/ascii_runtime_measurements" --runtime-policy "$F/runtime_policy.json"

# --- excludes (anchored at the start of the name) -----------------------------------------
printf '# comment\n\n%s\n' "${missing:1}" >"$T/excl-unanchored"
expect_out exclude_is_anchored 1 "fnf 1" CL --log "$F/ascii_runtime_measurements" --allowlist "$F/allowlist.txt" --exclude "$T/excl-unanchored"
printf '%s\n' "${missing%/*}/" >"$T/excl-dir"
expect_out exclude_prefix_passes 0 "result: PASS" CL --log "$F/ascii_runtime_measurements" --allowlist "$F/allowlist.txt" --exclude "$T/excl-dir"
expect_grep exclude_counted "excluded=" "$LAST_OUT"

# --- wrong allowlist digests --------------------------------------------------------------
B="$T/bad"
expect_out bad_hash_fails 1 "IMA ERRORS: template-hash 0 fnf 0 hash 2 good 198" CL --log "$B/ascii_runtime_measurements" --allowlist "$B/allowlist.txt"
expect_grep bad_hash_reason "runtime_policy_hash" "$LAST_OUT"
expect_grep bad_hash_seed_line "Hashes for file " "$LAST_OUT"

# --- violations ---------------------------------------------------------------------------
V="$T/viol"
expect_out violations_pass_by_default 0 "violations=3" CL --log "$V/ascii_runtime_measurements" --allowlist "$V/allowlist.txt" --pcr10 "$(cat "$V/pcr10-sha256.hex")"
expect_out violations_pass_explicit 0 "result: PASS" CL --log "$V/ascii_runtime_measurements" --allowlist "$V/allowlist.txt" --violations pass
expect_out violations_fail_option 1 "tomtou" CL --log "$V/ascii_runtime_measurements" --allowlist "$V/allowlist.txt" --violations fail
expect_out violations_bad_value 2 "--violations" CL --log "$V/ascii_runtime_measurements" --allowlist "$V/allowlist.txt" --violations maybe

# --- PCR 10 -------------------------------------------------------------------------------
L="$C/ascii_runtime_measurements"; A="$C/allowlist.txt"
expect_out pcr_sha256_matches 0 "matched at line 200" CL --log "$L" --allowlist "$A" --pcr10 "$(cat "$C/pcr10-sha256.hex")" --bank sha256
expect_out pcr_sha1_matches 0 "matched at line 200" CL --log "$L" --allowlist "$A" --pcr10 "$(cat "$C/pcr10-sha1.hex")" --bank sha1
expect_out pcr_sha1_bank_inferred 0 "pcr10(sha1)=$(cat "$C/pcr10-sha1.hex")" CL --log "$L" --allowlist "$A" --pcr10 "$(cat "$C/pcr10-sha1.hex")"
expect_out pcr_sha384_matches 0 "matched at line 200" CL --log "$L" --allowlist "$A" --pcr10 "$(cat "$C/pcr10-sha384.hex")" --bank sha384
expect_out pcr_sha512_matches 0 "matched at line 200" CL --log "$L" --allowlist "$A" --pcr10 "$(cat "$C/pcr10-sha512.hex")" --bank sha512
expect_out pcr_prefix_matches 0 "matched at line 50" CL --log "$L" --allowlist "$A" --pcr10 "$(cat "$T/prefix/pcr10-sha256.hex")"
expect_out pcr_zero_matches_line_0 0 "matched at line 0" CL --log "$L" --allowlist "$A" --pcr10 "$(printf '0%.0s' $(seq 64))"
wrong=$(cat "$T/fnf/pcr10-sha256.hex")
expect_out pcr_wrong_fails 1 "IMA measurement list does not match TPM PCR $wrong" CL --log "$L" --allowlist "$A" --pcr10 "$wrong"
expect_grep pcr_wrong_list_line "list: pcr_mismatch" "$LAST_OUT"
expect_out pcr_sha1_value_sha256_bank 2 "--pcr10" CL --log "$L" --allowlist "$A" --pcr10 "$(cat "$C/pcr10-sha1.hex")" --bank sha256
expect_out pcr_bad_hex 2 "--pcr10" CL --log "$L" --allowlist "$A" --pcr10 "xyz0"
expect_out pcr_odd_length 2 "--pcr10" CL --log "$L" --allowlist "$A" --pcr10 "abc"
expect_out pcr_bad_length 2 "--pcr10" CL --log "$L" --allowlist "$A" --pcr10 "abcd"
expect_out bank_unknown 2 "--bank" CL --log "$L" --allowlist "$A" --bank md5

# --- other templates and hashes -----------------------------------------------------------
M="$T/mixed"
expect_out mixed_runtime_policy_passes 0 "matched at line 400" CL --log "$M/ascii_runtime_measurements" --runtime-policy "$M/runtime_policy.json" --pcr10 "$(cat "$M/pcr10-sha256.hex")"
expect_out mixed_sha1_bank 0 "matched at line 400" CL --log "$M/ascii_runtime_measurements" --runtime-policy "$M/runtime_policy.json" --pcr10 "$(cat "$M/pcr10-sha1.hex")"
expect_out sha1_files_8_pcrs 0 "matched at line 100" CL --log "$T/sha1/ascii_runtime_measurements" --allowlist "$T/sha1/allowlist.txt" --pcr10 "$(cat "$T/sha1/pcr10-sha256.hex")"
expect_out ima_template 0 "matched at line 100" CL --log "$T/imat/ascii_runtime_measurements" --allowlist "$T/imat/allowlist.txt" --pcr10 "$(cat "$T/imat/pcr10-sha1.hex")"

# --- a list larger than one read block (carry-over of partial lines) ----------------------
G="$T/big"
expect_out big_list_streams 0 "matched at line 30000" CL --log "$G/ascii_runtime_measurements" --allowlist "$G/allowlist.txt" --pcr10 "$(cat "$G/pcr10-sha256.hex")"

# --- empty inputs -------------------------------------------------------------------------
: >"$T/empty"
expect_out empty_log_passes 0 "result: PASS entries=0" CL --log "$T/empty" --allowlist "$A"
expect_out empty_log_zero_pcr 0 "matched at line 0" CL --log "$T/empty" --allowlist "$A" --pcr10 "$(printf '0%.0s' $(seq 40))"
expect_out empty_allowlist_fails 1 "fnf 200" CL --log "$L" --allowlist "$T/empty"
expect_out empty_both_pass 0 "result: PASS" CL --log "$T/empty" --allowlist "$T/empty"

# --- malformed lists ----------------------------------------------------------------------
sed 's/$/\r/' "$L" >"$T/crlf"
expect_out crlf_fails 1 "(line 1)" CL --log "$T/crlf" --allowlist "$A"
head -c -1 "$L" >"$T/nonl"
expect_out no_final_newline_fails 1 "line 200: incomplete last line (no newline)" CL --log "$T/nonl" --allowlist "$A"
{ head -3 "$L"; echo "10 zz ima-ng sha256:00 /x"; tail -n +4 "$L"; } >"$T/junkline"
expect_out unparsable_line_fails 1 "(line 4)" CL --log "$T/junkline" --allowlist "$A"
{ head -2 "$L"; head -c 2200000 /dev/zero | tr '\0' a; echo; tail -n +3 "$L"; } >"$T/longline"
expect_out overlong_line_fails 1 "(line 3)" CL --log "$T/longline" --allowlist "$A"
expect_grep overlong_line_rest_judged "entries=201 good=200" "$LAST_OUT"
CL --log "$T/nonl" --allowlist "$A" --json >"$T/nonl.json" 2>&1
if python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert not o["passed"] and o["stream_error"]["line"] == 200' "$T/nonl.json"; then
  pass json_incomplete_line; else fail json_incomplete_line "$(head -c 300 "$T/nonl.json")"; fi
{ head -3 "$L"; echo; tail -n +4 "$L"; } >"$T/blankline"
expect_out blank_line_skipped 0 "matched at line 201" CL --log "$T/blankline" --allowlist "$A" --pcr10 "$(cat "$C/pcr10-sha256.hex")"

# --- unusable input (exit 2) --------------------------------------------------------------
{ head -2 "$A"; echo "zzzz  /usr/bin/junk"; tail -n +3 "$A"; } >"$T/junk-allowlist"
expect_out junk_allowlist_line 2 "$T/junk-allowlist:3" CL --log "$L" --allowlist "$T/junk-allowlist"
printf '^/tmp/\n([unclosed\n' >"$T/bad-regex"
expect_out invalid_regex 2 "$T/bad-regex:2" CL --log "$L" --allowlist "$A" --exclude "$T/bad-regex"
expect_out missing_log 2 "$T/nope" CL --log "$T/nope" --allowlist "$A"
expect_out missing_allowlist 2 "$T/nope" CL --log "$L" --allowlist "$T/nope"
expect_out missing_exclude 2 "$T/nope" CL --log "$L" --allowlist "$A" --exclude "$T/nope"
expect_out log_is_directory 2 "$T" CL --log "$T" --allowlist "$A"
echo '{"meta": {"version": 1}' >"$T/broken.json"
expect_out broken_runtime_policy 2 "$T/broken.json" CL --log "$L" --runtime-policy "$T/broken.json"
expect_out both_policies 2 "not both" CL --log "$L" --allowlist "$A" --runtime-policy "$C/runtime_policy.json"
expect_out no_policy 2 "--allowlist" CL --log "$L"
expect_out no_log 2 "--log" CL --allowlist "$A"
expect_out unknown_option 2 "--frobnicate" CL --log "$L" --allowlist "$A" --frobnicate
expect_out help 0 "Exit status" CL --help

# --- quiet and JSON -----------------------------------------------------------------------
out=$(CL --log "$F/ascii_runtime_measurements" --allowlist "$F/allowlist.txt" --quiet 2>&1); rc=$?
if [ $rc = 1 ] && [ -z "$out" ]; then pass quiet_fail; else fail quiet_fail "rc $rc out '$out'"; fi
out=$(CL --log "$L" --allowlist "$A" --quiet 2>&1); rc=$?
if [ $rc = 0 ] && [ -z "$out" ]; then pass quiet_pass; else fail quiet_pass "rc $rc out '$out'"; fi
CL --log "$F/ascii_runtime_measurements" --allowlist "$F/allowlist.txt" --json --pcr10 "$(cat "$F/pcr10-sha256.hex")" >"$T/out.json" 2>"$T/out.err"; rc=$?
if [ $rc = 1 ] && python3 -m json.tool "$T/out.json" >/dev/null 2>&1; then pass json_parses; else fail json_parses "rc $rc: $(head -c 300 "$T/out.json")"; fi
if python3 - "$T/out.json" "$missing" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
f = o["failures"]
assert o["passed"] is False and o["result"] == "FAIL", o
assert o["counts"]["fnf"] == 1 and o["counts"]["good"] == 199, o["counts"]
assert o["pcr10"]["matched"] is True and o["pcr10"]["match_line"] == 200, o["pcr10"]
assert len(f) == 1 and f[0]["path"] == sys.argv[2] and f[0]["reason"] == "not_in_allowlist", f
assert f[0]["event_id"] == "ima.validation.ima-ng.not_in_allowlist", f
assert any(m.startswith("IMA ERRORS: template-hash 0 fnf 1") for m in o["messages"]), o["messages"]
EOF
then pass json_content; else fail json_content "unexpected JSON"; fi
CL --log "$L" --allowlist "$A" --json >"$T/pass.json" 2>&1; rc=$?
if [ $rc = 0 ] && python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["passed"] and o["failures"] == []' "$T/pass.json"; then
  pass json_pass; else fail json_pass "rc $rc: $(head -c 300 "$T/pass.json")"; fi

# --- --append-file (the demo "runs" a script) ---------------------------------------------
gen app --entries 20 --seed 9 || exit 1
printf '#!/bin/sh\necho evil\n' >"$T/evil.sh"
before=$(cat "$T/app/pcr10-sha256.hex")
if "$GEN" --out-dir "$T/app" --append-file "$T/evil.sh" --name /usr/local/bin/evil.sh 2>"$T/app.err"; then pass append_runs; else fail append_runs "$(cat "$T/app.err")"; fi
if [ "$(wc -l <"$T/app/ascii_runtime_measurements")" = 21 ] && [ "$(cat "$T/app/pcr10-sha256.hex")" != "$before" ]; then
  pass append_updates; else fail append_updates "list or PCR not updated"; fi
expect_out append_fnf 1 "File not found in allowlist: /usr/local/bin/evil.sh" CL --log "$T/app/ascii_runtime_measurements" --allowlist "$T/app/allowlist.txt" --pcr10 "$(cat "$T/app/pcr10-sha256.hex")"
expect_grep append_pcr_matches "matched at line 21" "$LAST_OUT"
{ cat "$T/app/allowlist.txt"; echo "$(sha256sum <"$T/evil.sh" | cut -d' ' -f1)  /usr/local/bin/evil.sh"; } >"$T/app-allow"
expect_out append_allowed_passes 0 "matched at line 21" CL --log "$T/app/ascii_runtime_measurements" --allowlist "$T/app-allow" --pcr10 "$(cat "$T/app/pcr10-sha1.hex")"
gen real --from-files /bin/sh /etc/hostname "$T/evil.sh" || exit 1
real_digest=$(sha256sum <"$T/evil.sh" | cut -d' ' -f1)
expect_out from_files 0 "sha256:$real_digest $T/evil.sh" cat "$T/real/ascii_runtime_measurements"
expect_out from_files_passes 0 "entries=4 good=4" CL --log "$T/real/ascii_runtime_measurements" --allowlist "$T/real/allowlist.txt" --pcr10 "$(cat "$T/real/pcr10-sha256.hex")"

# --- independent replay (python3 standard library) of the generator's lists ---------------
cat >"$T/replay.py" <<'EOF'
import hashlib, struct, sys
def tdata(tmpl, rest):
    def dng(tok):
        if ":" in tok:
            alg, h = tok.split(":")
        else:
            h = tok; alg = "sha1" if len(h) == 40 else "md5"
        d = bytes.fromhex(h)
        return struct.pack("<I", len(alg) + 2 + len(d)) + alg.encode() + b":\0" + d
    def nng(n):
        n = n.encode()
        return struct.pack("<I", len(n) + 1) + n + b"\0"
    if tmpl == "ima":
        d, n = rest.split(" ", 1)
        n = n.encode()
        return bytes.fromhex(d) + n + b"\0" * (256 - len(n))
    if tmpl == "ima-ng":
        d, n = rest.split(" ", 1)
        return dng(d) + nng(n)
    d, n, x = rest.split(" ", 2)
    x = bytes.fromhex(x)
    return dng(d) + nng(n) + struct.pack("<I", len(x)) + x
d = sys.argv[1]
pcr = {"sha1": bytes(20), "sha256": bytes(32)}
for line in open(d + "/ascii_runtime_measurements", "rb").read().decode().split("\n"):
    if not line:
        continue
    col, th, tmpl, rest = line.split(" ", 3)
    assert col == "10"
    t = tdata(tmpl, rest)
    viol = bytes.fromhex(th) == bytes(20)
    if not viol:
        assert hashlib.sha1(t).hexdigest() == th, line
    for b in pcr:
        h = getattr(hashlib, b)
        e = b"\xff" * h().digest_size if viol else h(t).digest()
        pcr[b] = h(pcr[b] + e).digest()
for b in pcr:
    want = open("%s/pcr10-%s.hex" % (d, b)).read().strip()
    assert pcr[b].hex() == want, (b, pcr[b].hex(), want)
EOF
for d in clean viol mixed sha1 imat app; do
  if out=$(python3 "$T/replay.py" "$T/$d" 2>&1); then pass "independent_replay_$d"; else fail "independent_replay_$d" "$(echo "$out" | tail -2 | tr '\n' ' ')"; fi
done
if command -v evmctl >/dev/null 2>&1; then
  for d in clean viol; do
    expect_rc "evmctl_replay_$d" 0 evmctl ima_measurement --ignore-violations --pcrs "sha1,$T/$d/pcrs-sha1.txt" --pcrs "sha256,$T/$d/pcrs-sha256.txt" "$T/$d/binary_runtime_measurements"
  done
fi
exit 0
