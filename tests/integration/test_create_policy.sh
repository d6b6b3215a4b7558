#!/usr/bin/env bash
# quince-tenant's offline policy tools without a verifier: create-policy from every kind of input
# (rootfs, initramfs, IMA list with keyrings and ima-buf, allowlist, base policy, package digests,
# excludes, IMA signature keys), its determinism, summary line, reports and errors; the policy it
# writes checked by check-log (including evmctl-signed ima-sig entries against -A keys);
# diff-policy; and create-allowlist taking create_allowlist.sh's "-o FILE -h sha1sum" syntax.
set -u
. "$QUINCE_ROOT/tests/integration/lib.sh"
T=$QUINCE_TMP
SIG=$QUINCE_ROOT/tests/data/imasig
CP() { "$TENANT" create-policy "$@"; }
cd "$T" || exit 1

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
jq1() { python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# ---- inputs -------------------------------------------------------------------------------
R=$T/root
mkdir -p "$R/usr/bin" "$R/etc" "$R/usr/lib" "$R/opt/skipme"
printf 'alpha\n' >"$R/usr/bin/alpha"
printf 'beta\n' >"$R/usr/bin/beta"
printf 'conf\n' >"$R/etc/app.conf"
printf 'skip\n' >"$R/opt/skipme/x"
ln -s alpha "$R/usr/bin/alias"
ln -s ../../../../../etc/shadow "$R/usr/bin/escape"
ln -s /usr/bin/beta "$R/usr/lib/abs"
printf 'unreadable\n' >"$R/usr/bin/locked"; chmod 000 "$R/usr/bin/locked"
M=$T/initrd; mkdir -p "$M/usr/sbin"; printf 'init\n' >"$M/init"; printf 'mod\n' >"$M/usr/sbin/modprobe"
(cd "$M" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -9 >"$T/boot-initrd.img"
mkdir -p "$T/boot" && cp "$T/boot-initrd.img" "$T/boot/initrd.img-6.1" && cp "$T/boot-initrd.img" "$T/boot/vmlinuz"
"$TOOLS/ima_gen" --out-dir "$T/ima" --entries 40 --seed 9 >/dev/null 2>&1 || { fail "ima_gen"; exit 0; }
"$TOOLS/ima_gen" --out-dir "$T/imabuf" --entries 30 --template ima-buf --seed 4 >/dev/null 2>&1 || { fail "ima_gen ima-buf"; exit 0; }
printf '/tmp/.*\n# comment\n\n/var/log/.*\n' >ex1
printf '/var/log/.*\n/opt/data/.*\n' >ex2
printf '%s  /usr/bin/alpha\n%s  /usr/bin/beta\n  /usr/share/doc\n' \
  "$(md5sum <"$R/usr/bin/alpha" | cut -c1-32)" "$(sha256sum <"$R/usr/bin/beta" | cut -c1-64)" >pkgs

# ---- create-policy ------------------------------------------------------------------------
expect_out "rootfs + initramfs + IMA list + excludes + key" 0 "quince-tenant: create-policy: wrote p1.json" \
  CP --rootfs "$R" -s "$R/opt/skipme" --any-owner --ramdisk-dir "$T/boot" -m "$T/ima/ascii_runtime_measurements" \
     -e ex1 -e ex2 -A "$SIG/signer.pub" -o p1.json
expect_grep "summary: files hashed" "files hashed" "$LAST_OUT"
# root reads a mode-000 file; anyone else cannot
if [ "$(id -u)" = 0 ]; then UNREAD=0; else UNREAD=1; fi
expect_grep "summary: skipped and why" "($UNREAD unreadable, 1 not regular files" "$LAST_OUT"
expect_grep "summary: time" " s" "$(printf '%s' "$LAST_OUT" | grep 'create-policy: wrote')"
expect_grep "escaping symlink reported" "symlink $R/usr/bin/escape -> ../../../../../etc/shadow climbs out of $R" "$LAST_OUT"
if [ "$UNREAD" = 1 ]; then expect_grep "unreadable file reported" "skipping $R/usr/bin/locked" "$LAST_OUT"; fi
[ "$(jq1 p1.json 'p["digests"]["/usr/bin/alias"] == p["digests"]["/usr/bin/alpha"]')" = True ] \
  && pass "symlink hashed as its target" || fail "symlink hashed as its target"
[ "$(jq1 p1.json 'p["digests"]["/usr/lib/abs"] == p["digests"]["/usr/bin/beta"]')" = True ] \
  && pass "absolute symlink resolved inside the rootfs" || fail "absolute symlink resolved inside the rootfs"
[ "$(jq1 p1.json '"/opt/skipme/x" in p["digests"]')" = False ] && pass "skip path honoured" || fail "skip path honoured"
[ "$(jq1 p1.json '"/usr/sbin/modprobe" in p["digests"] and "/init" in p["digests"]')" = True ] \
  && pass "initr* images of --ramdisk-dir hashed" || fail "initr* images of --ramdisk-dir hashed"
[ "$(jq1 p1.json 'p["excludes"]')" = "['/opt/data/.*', '/tmp/.*', '/var/log/.*']" ] \
  && pass "excludes merged, sorted, deduplicated" || fail "excludes merged, sorted, deduplicated" "$(jq1 p1.json 'p["excludes"]')"
[ "$(jq1 p1.json 'json.loads(p["verification-keys"])["keyids"] != []')" = True ] \
  && pass "-A key in verification-keys" || fail "-A key in verification-keys"
[ "$(jq1 p1.json 'p["meta"]')" = "{'version': 1, 'generator': 3}" ] && pass "generator 3, no timestamp" || fail "generator 3, no timestamp"
N_IMA=$(grep -c . "$T/ima/allowlist.txt")
[ "$(jq1 p1.json 'all(k in p["digests"] for k in [l.split(None,1)[1].strip() for l in open("'"$T"'/ima/allowlist.txt")])')" = True ] \
  && pass "IMA list entries in digests ($N_IMA)" || fail "IMA list entries in digests"

# Same inputs in another order, not on a terminal: the same bytes.
CP -o p2.json -A "$SIG/signer.pub" -e ex2 -e ex1 -m "$T/ima/ascii_runtime_measurements" --ramdisk-dir "$T/boot" \
   --any-owner -s "$R/opt/skipme" --rootfs "$R" --jobs 1 2>/dev/null
cmp -s p1.json p2.json && pass "deterministic output" || fail "deterministic output"
expect_rc "diff-policy: identical policies" 0 "$TENANT" diff-policy p1.json p2.json

# The policy is usable: check-log passes the list it was made from.
expect_rc "check-log accepts the created policy" 0 \
  "$TENANT" check-log --log "$T/ima/ascii_runtime_measurements" --runtime-policy p1.json

# IMA signature keys through the policy: evmctl-signed entries judged by check-log.
printf '0000000000000000000000000000000000000000000000000000000000000000  boot_aggregate\n' >boot.txt
CP -a boot.txt -A "$SIG/signer.der" -o sig.json 2>/dev/null
expect_rc "ima-sig: bad signature and unknown key fail" 1 \
  "$TENANT" check-log --log "$SIG/list.txt" --runtime-policy sig.json
for p in /usr/bin/tampered /usr/bin/stranger; do expect_grep "ima-sig: $p fails" "$p" "$LAST_OUT"; done
if printf '%s' "$LAST_OUT" | grep -q "/usr/bin/good"; then fail "ima-sig: the good signature passes" "$LAST_OUT"; else pass "ima-sig: the good signature passes"; fi

# keyrings / ima-buf / ignored keyrings from an ima-buf list
CP -m "$T/imabuf/ascii_runtime_measurements" -b -k -o buf.json 2>/dev/null
[ "$(jq1 buf.json 'len(p["ima-buf"]) > 0')" = True ] && pass "-b: ima-buf entries" || fail "-b: ima-buf entries"
CP -m "$T/imabuf/ascii_runtime_measurements" -o nobuf.json 2>/dev/null
[ "$(jq1 nobuf.json 'len(p["ima-buf"])')" = 0 ] && pass "without -b: no ima-buf entries" || fail "without -b: no ima-buf entries"
CP -m "$T/imabuf/ascii_runtime_measurements" --ignored-keyrings .ima --ignored-keyrings .ima -o ign.json 2>/dev/null
[ "$(jq1 ign.json 'p["ima"]["ignored_keyrings"]')" = "['.ima']" ] && pass "--ignored-keyrings" || fail "--ignored-keyrings"

# package digests: sha256 used as given, md5 replaced by hashing the file under --package-root
expect_out "package digests" 0 "1 package digests re-hashed" CP --package-digests pkgs --package-root "$R" -o pk.json
[ "$(jq1 pk.json 'p["digests"]["/usr/bin/alpha"][0]')" = "$(sha256sum <"$R/usr/bin/alpha" | cut -c1-64)" ] \
  && pass "md5 package digest re-hashed as sha256" || fail "md5 package digest re-hashed as sha256"

# base policy + allowlist merge, and diff-policy
printf '%s  /usr/bin/new\n' "$(sha256sum <"$R/etc/app.conf" | cut -c1-64)" >more.txt
CP -p p1.json -a more.txt -o p3.json 2>/dev/null
expect_out "diff-policy: added path" 1 "+ /usr/bin/new" "$TENANT" diff-policy p1.json p3.json
expect_grep "diff-policy: counts" "1 added, 0 removed, 0 changed" "$LAST_OUT"
python3 -c 'import json,sys; p=json.load(open("p1.json")); p["digests"]["/usr/bin/beta"]=["ab"*32]; del p["digests"]["/etc/app.conf"]; json.dump(p,open("p4.json","w"))'
expect_out "diff-policy: removed and changed" 1 "1 removed, 1 changed" "$TENANT" diff-policy p1.json p4.json
expect_grep "diff-policy: the change" "~ /usr/bin/beta" "$LAST_OUT"
expect_grep "diff-policy: the removal" "- /etc/app.conf" "$LAST_OUT"

# errors: one line, exit 2
expect_out "mixed digest algorithms" 2 "does not match the previously set 'sha1' algorithm" CP --algo sha1 -a "$T/ima/allowlist.txt"
printf '/ok/.*\n(unclosed\n' >badex
expect_out "invalid exclude names file and line" 2 "badex:2: invalid exclude regex" CP -e badex
expect_out "bad IMA key" 2 "does not have a supported key" CP -A pkgs
expect_out "nothing to do" 2 "nothing to do" CP
expect_out "unreadable input" 2 "cannot read" CP -a /nonexistent/allowlist

# ---- create-allowlist with create_allowlist.sh's syntax ----------------------------------------
expect_rc "create-allowlist -o FILE -h sha1sum" 0 "$TENANT" create-allowlist -o legacy.txt -h sha1sum -z "$R" -x none -y none
[ -s legacy.txt ] && [ "$(awk '{print length($1)}' legacy.txt | sort -u)" = 40 ] \
  && pass "create-allowlist -h sha1sum writes sha1 digests" || fail "create-allowlist -h sha1sum writes sha1 digests" "$(head -2 legacy.txt)"
expect_rc "create-allowlist -a sha512sum --output_file" 0 "$TENANT" create-allowlist --output_file l512.txt -a sha512sum -z "$R" -x "$T/boot" -y none
grep -q "  /usr/sbin/modprobe$" l512.txt && [ "$(awk '{print length($1)}' l512.txt | sort -u)" = 128 ] \
  && pass "-x hashes the ramdisk images, -a sha512sum" || fail "-x hashes the ramdisk images, -a sha512sum"
expect_out "create-allowlist -h alone is still help" 0 "usage: quince-tenant create-allowlist" "$TENANT" create-allowlist -h
