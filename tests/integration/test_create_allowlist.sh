#!/usr/bin/env bash
# quince-tenant create-allowlist: rootfs walk, initramfs images built the real way (an
# uncompressed early cpio followed by a compressed one), boot_aggregate, --json, exit codes.
. "$QUINCE_ROOT/tests/integration/lib.sh"
set -u
T=$QUINCE_TMP
cd "$T" || exit 1

# run_ca OUTVAR ARGS... : run create-allowlist, stdout into $OUT, stderr into $ERR, status into $RC
run_ca() {
  OUT=$("$TENANT" create-allowlist "$@" 2>"$T/stderr"); RC=$?
  ERR=$(cat "$T/stderr")
}
# same_text NAME GOT WANT
same_text() {
  if [ "$2" = "$3" ]; then pass "$1"; else
    fail "$1" "differs: $(diff <(printf '%s\n' "$3") <(printf '%s\n' "$2") | head -6 | tr '\n' ' ')"; fi
}
# has_line NAME TEXT LINE
has_line() {
  if printf '%s\n' "$2" | grep -qxF -- "$3"; then pass "$1"; else fail "$1" "no line '$3'"; fi
}
no_line_with() {
  if printf '%s\n' "$2" | grep -qF -- "$3"; then fail "$1" "unexpected '$3'"; else pass "$1"; fi
}
# digest ALG FILE : the hex digest of a file
digest() { "${1}sum" "$2" | cut -d' ' -f1; }

OWNER=()
if [ "$(id -u)" != 0 ]; then OWNER=(--any-owner); fi

# ---------------------------------------------------------------- a small root file system
R=$T/rootfs
mkdir -p "$R/usr/bin" "$R/usr/lib/mods" "$R/usr/share/doc/my docs" "$R/etc" "$R/tmp/cache" \
         "$R/var/log" "$R/opt/skipme/deep" "$R/opt/keep" "$R/proc"
printf 'tool binary\n' >"$R/usr/bin/tool"
head -c 3000000 /dev/urandom >"$R/usr/lib/big.so"          # more than one 1 MiB read block
printf 'module\n' >"$R/usr/lib/mods/m.ko"
printf 'spaced\n' >"$R/usr/share/doc/my docs/read me.txt"
printf 'conf\n' >"$R/etc/app.conf"
: >"$R/etc/empty"
ln -s tool "$R/usr/bin/rel-link"                # relative link to a file
ln -s /usr/bin/tool "$R/usr/bin/abs-link"       # absolute link: resolved inside the rootfs
ln -s ../lib "$R/usr/bin/dir-link"              # link to a directory: not listed, not followed
ln -s /does/not/exist "$R/usr/bin/dangling"
mkfifo "$R/usr/bin/fifo"
printf 'cache\n' >"$R/tmp/cache/c"              # top-level tmp: skipped
printf 'log\n' >"$R/var/log/l"                  # top-level var: skipped
printf 'proc\n' >"$R/proc/p"                    # top-level proc: skipped
printf 'skip\n' >"$R/opt/skipme/deep/s"         # --skip /opt/skipme
printf 'keep\n' >"$R/opt/keep/k"

want_rootfs() {  # ALG: the expected flat allowlist of $R
  local alg=$1
  {
    for f in usr/bin/tool usr/lib/big.so usr/lib/mods/m.ko "usr/share/doc/my docs/read me.txt" \
             etc/app.conf etc/empty opt/keep/k; do
      printf '%s  /%s\n' "$(digest "$alg" "$R/$f")" "${f// /_}"
    done
    printf '%s  /usr/bin/rel-link\n' "$(digest "$alg" "$R/usr/bin/tool")"
    printf '%s  /usr/bin/abs-link\n' "$(digest "$alg" "$R/usr/bin/tool")"
  } | LC_ALL=C sort -t' ' -k3
}

run_ca --rootfs "$R/" --skip /opt/skipme/ "${OWNER[@]}"
if [ "$RC" = 0 ]; then pass "rootfs: exit 0"; else fail "rootfs: exit 0" "exit $RC: $ERR"; fi
ROOTFS_OUT=$OUT
same_text "rootfs: sha256 allowlist (links, spaces, skips)" "$OUT" "$(want_rootfs sha256)"
no_line_with "rootfs: tmp/ var/ proc/ skipped" "$OUT" "/cache/"
no_line_with "rootfs: --skip path skipped" "$OUT" "/opt/skipme"
no_line_with "rootfs: rootfs prefix stripped" "$OUT" "$R"

run_ca --rootfs "$R" --skip //opt//skipme --hash-alg sha1 --jobs 1 "${OWNER[@]}"
same_text "rootfs: sha1 allowlist, one job" "$OUT" "$(want_rootfs sha1)"

run_ca --rootfs "$R" --skip /opt/skipme --hash-alg sha512 --jobs 7 "${OWNER[@]}"
same_text "rootfs: sha512 allowlist, seven jobs" "$OUT" "$(want_rootfs sha512)"

run_ca --rootfs "$R" --skip /opt/skipme -o "$T/out.al" "${OWNER[@]}"
if [ "$RC" = 0 ] && [ -z "$OUT" ] && [ "$(cat "$T/out.al")" = "$ROOTFS_OUT" ]; then
  pass "rootfs: -o FILE holds the same allowlist"
else fail "rootfs: -o FILE holds the same allowlist" "exit $RC"; fi

run_ca --rootfs "$R" --skip /opt/skipme "${OWNER[@]}"
if grep -v -e rel-link -e abs-link -e '_' <<<"$OUT" | sed 's#  /#  '"$R"'/#' | sha256sum -c --quiet - >/dev/null 2>&1
then pass "rootfs: sha256sum -c accepts the digests"; else fail "rootfs: sha256sum -c accepts the digests"; fi

if [ "$(id -u)" = 0 ]; then
  printf 'user file\n' >"$R/etc/user-owned"; chown 1000:1000 "$R/etc/user-owned"
  run_ca --rootfs "$R" --skip /opt/skipme
  no_line_with "rootfs: files not owned by root left out" "$OUT" "/etc/user-owned"
  run_ca --rootfs "$R" --skip /opt/skipme --any-owner
  has_line "rootfs: --any-owner includes them" "$OUT" "$(digest sha256 "$R/etc/user-owned")  /etc/user-owned"
  rm -f "$R/etc/user-owned"
else
  printf 'secret\n' >"$R/etc/unreadable"; chmod 000 "$R/etc/unreadable"
  run_ca --rootfs "$R" --skip /opt/skipme --any-owner
  if [ "$RC" = 0 ] && ! grep -q unreadable <<<"$OUT" && grep -q 'warning: skipping.*unreadable' <<<"$ERR"; then
    pass "rootfs: unreadable file warned and left out"
  else fail "rootfs: unreadable file warned and left out" "exit $RC: $ERR"; fi
  rm -f "$R/etc/unreadable"
fi

# ---------------------------------------------------------------- initramfs images
E=$T/early; M=$T/main
mkdir -p "$E/kernel/x86/microcode" "$M/usr/bin" "$M/etc" "$M/lib/modules"
head -c 10000 /dev/urandom >"$E/kernel/x86/microcode/GenuineIntel.bin"
printf '#!/bin/sh\nexec /sbin/init\n' >"$M/init"
head -c 200000 /dev/urandom >"$M/usr/bin/busybox"
printf 'only in the second archive\n' >"$M/etc/second only"
printf 'hard linked\n' >"$M/lib/modules/a.ko"; ln "$M/lib/modules/a.ko" "$M/lib/modules/b.ko"
ln -s busybox "$M/usr/bin/sh"                                # symlink member: not a regular file
(cd "$E" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$T/early.cpio"
(cd "$M" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$T/main.cpio"
zstd -q -19 -c "$T/main.cpio" >"$T/main.cpio.zst"
gzip -9 -c "$T/main.cpio" >"$T/main.cpio.gz"
cat "$T/early.cpio" "$T/main.cpio.zst" >"$T/initrd-zstd.img"
cat "$T/early.cpio" "$T/main.cpio.gz" >"$T/initrd-gzip.img"
{ cat "$T/early.cpio" "$T/main.cpio.zst"; head -c 509 /dev/zero; } >"$T/initrd-zstd-padded.img"
{ cat "$T/main.cpio.gz"; head -c 13 /dev/zero; cat "$T/early.cpio"; } >"$T/initrd-gzip-first.img"

want_initrd() {
  {
    printf '%s  /kernel/x86/microcode/GenuineIntel.bin\n' "$(digest sha256 "$E/kernel/x86/microcode/GenuineIntel.bin")"
    printf '%s  /init\n' "$(digest sha256 "$M/init")"
    printf '%s  /usr/bin/busybox\n' "$(digest sha256 "$M/usr/bin/busybox")"
    printf '%s  /etc/second_only\n' "$(digest sha256 "$M/etc/second only")"
    printf '%s  /lib/modules/a.ko\n' "$(digest sha256 "$M/lib/modules/a.ko")"
    printf '%s  /lib/modules/b.ko\n' "$(digest sha256 "$M/lib/modules/a.ko")"
  } | LC_ALL=C sort -t' ' -k3
}
WANT_INITRD=$(want_initrd)
for img in zstd gzip zstd-padded gzip-first; do
  run_ca --initramfs "$T/initrd-$img.img"
  if [ "$RC" = 0 ]; then pass "initramfs $img: exit 0"; else fail "initramfs $img: exit 0" "exit $RC: $ERR"; fi
  same_text "initramfs $img: every file of both archives" "$OUT" "$WANT_INITRD"
done
run_ca --initramfs "$T/initrd-zstd.img"
has_line "initramfs: a file only in the compressed archive" "$OUT" \
  "$(digest sha256 "$M/etc/second only")  /etc/second_only"
has_line "initramfs: a file of the early uncompressed archive" "$OUT" \
  "$(digest sha256 "$E/kernel/x86/microcode/GenuineIntel.bin")  /kernel/x86/microcode/GenuineIntel.bin"
has_line "initramfs: hard link without data gets the group's digest" "$OUT" \
  "$(digest sha256 "$M/lib/modules/a.ko")  /lib/modules/a.ko"

run_ca --initramfs "$T/initrd-zstd.img" --initramfs "$T/initrd-gzip.img"
same_text "initramfs: two images, duplicates merged" "$OUT" "$WANT_INITRD"

run_ca --initramfs "$T/initrd-gzip.img" --rootfs "$R" --skip /opt/skipme "${OWNER[@]}"
same_text "initramfs + rootfs: one sorted list" "$OUT" \
  "$(printf '%s\n%s\n' "$WANT_INITRD" "$(want_rootfs sha256)" | LC_ALL=C sort -t' ' -k3)"

# ---------------------------------------------------------------- boot_aggregate
AGG256=$(printf 'boot' | sha256sum | cut -d' ' -f1)
AGG1=$(printf 'boot' | sha1sum | cut -d' ' -f1)
TH=$(printf 'th' | sha1sum | cut -d' ' -f1)
printf '10 %s ima-ng sha256:%s boot_aggregate\n10 %s ima-ng sha256:%s /usr/bin/tool\n' \
  "$TH" "$AGG256" "$TH" "$AGG256" >"$T/ima-ng.log"
printf '10 %s ima %s boot_aggregate\n' "$TH" "$AGG1" >"$T/ima.log"

run_ca --ima-log "$T/ima-ng.log"
same_text "boot_aggregate: from an ima-ng log (sha256)" "$OUT" "$AGG256  boot_aggregate"
run_ca --ima-log "$T/ima.log" --hash-alg sha1
same_text "boot_aggregate: from an ima log (sha1)" "$OUT" "$AGG1  boot_aggregate"
run_ca --ima-log "$T/ima.log"
if [ "$RC" = 2 ] && grep -q 'boot_aggregate from IMA log .* has 40 hex digits, sha256 needs 64' <<<"$ERR"; then
  pass "boot_aggregate: length that does not fit the algorithm → exit 2"
else fail "boot_aggregate: length that does not fit the algorithm → exit 2" "exit $RC: $ERR"; fi
run_ca --boot-aggregate "${AGG256^^}" --initramfs "$T/initrd-zstd.img"
if [ "$RC" = 0 ] && [ "$(head -1 <<<"$OUT")" = "$AGG256  boot_aggregate" ]; then
  pass "boot_aggregate: --boot-aggregate HEX first, lower-cased"
else fail "boot_aggregate: --boot-aggregate HEX first, lower-cased" "exit $RC: $(head -1 <<<"$OUT")"; fi
expect_rc "boot_aggregate: --boot-aggregate of the wrong length → exit 2" 2 \
  "$TENANT" create-allowlist --boot-aggregate "$AGG1"
expect_rc "boot_aggregate: --boot-aggregate not hex → exit 2" 2 \
  "$TENANT" create-allowlist --boot-aggregate "zz${AGG256:2}"
expect_grep "boot_aggregate: error line format" "quince-tenant: create-allowlist: boot_aggregate" "$LAST_OUT"

# ---------------------------------------------------------------- --json
run_ca --json --ima-log "$T/ima-ng.log" --initramfs "$T/initrd-gzip.img" -o "$T/policy.json"
if [ "$RC" = 0 ] && python3 -m json.tool "$T/policy.json" >/dev/null 2>&1; then
  pass "json: parses"
else fail "json: parses" "exit $RC: $ERR"; fi
if python3 - "$T/policy.json" "$AGG256" "$(digest sha256 "$M/etc/second only")" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
assert list(p) == ["meta", "release", "digests", "excludes", "keyrings", "ima", "ima-buf",
                   "verification-keys"], list(p)
assert p["meta"]["version"] == 1 and p["meta"]["generator"] == 3, p["meta"]
assert p["digests"]["boot_aggregate"] == [sys.argv[2]]
assert p["digests"]["/etc/second_only"] == [sys.argv[3]]
assert len(p["digests"]) == 7, len(p["digests"])
assert list(p["digests"]) == sorted(p["digests"]), "not sorted"
EOF
then pass "json: runtime policy v1, generator 3, sorted digests"
else fail "json: runtime policy v1, generator 3, sorted digests"; fi
run_ca --json --ima-log "$T/ima-ng.log" --initramfs "$T/initrd-gzip.img"
if [ "$RC" = 0 ] && [ -n "$OUT" ] && [ "$OUT" = "$(cat "$T/policy.json")" ] || \
   { [ "$RC" = 0 ] && [ -n "$OUT" ] && [ "$(sed 's/"timestamp": "[^"]*"//' <<<"$OUT")" = "$(sed 's/"timestamp": "[^"]*"//' "$T/policy.json")" ]; }; then
  pass "json: stdout and -o agree"
else fail "json: stdout and -o agree"; fi

# check-log accepts the generated policy and allowlist for a log of exactly those files
# ima_log FLAT [BADPATH] : an ima-ng list (correct template hashes) of every "<hex>  <path>" line;
# the digest of BADPATH is altered.
ima_log() {
  python3 - "$1" "${2:-}" <<'EOF'
import hashlib, struct, sys
for line in open(sys.argv[1]):
    hexd, path = line.rstrip("\n").split("  ", 1)
    d = bytes.fromhex(hexd)
    if path == sys.argv[2]:
        d = bytes(b ^ 1 for b in d)
    alg = {20: b"sha1", 32: b"sha256", 48: b"sha384", 64: b"sha512"}[len(d)]
    dng = alg + b":\0" + d
    name = path.encode() + b"\0"
    data = struct.pack("<I", len(dng)) + dng + struct.pack("<I", len(name)) + name
    print("10 %s ima-ng %s:%s %s" % (hashlib.sha1(data).hexdigest(), alg.decode(), d.hex(), path))
EOF
}
run_ca --ima-log "$T/ima-ng.log" --initramfs "$T/initrd-gzip.img" -o "$T/check.al"
run_ca --ima-log "$T/ima-ng.log" --initramfs "$T/initrd-gzip.img" --json -o "$T/check.json"
if ima_log "$T/check.al" >"$T/check.log" 2>"$T/stderr" && ima_log "$T/check.al" /init >"$T/check-bad.log"; then
  expect_rc "check-log: accepts the generated runtime policy" 0 \
    "$TENANT" check-log --log "$T/check.log" --runtime-policy "$T/check.json"
  expect_rc "check-log: accepts the generated flat allowlist" 0 \
    "$TENANT" check-log --log "$T/check.log" --allowlist "$T/check.al"
  expect_rc "check-log: a changed file fails against the generated policy" 1 \
    "$TENANT" check-log --log "$T/check-bad.log" --runtime-policy "$T/check.json"
else
  fail "check-log: test log" "$(cat "$T/stderr")"
fi

# ---------------------------------------------------------------- errors
expect_rc "error: missing rootfs → exit 2" 2 "$TENANT" create-allowlist --rootfs "$T/no-such-dir"
expect_grep "error: missing rootfs message" "quince-tenant: create-allowlist: rootfs $T/no-such-dir" "$LAST_OUT"
printf 'not a dir\n' >"$T/plainfile"
expect_rc "error: rootfs is a file → exit 2" 2 "$TENANT" create-allowlist --rootfs "$T/plainfile"
expect_rc "error: missing initramfs → exit 2" 2 "$TENANT" create-allowlist --initramfs "$T/no-such.img"
head -c 4096 /dev/urandom >"$T/random.img"
expect_rc "error: random bytes as initramfs → exit 2" 2 "$TENANT" create-allowlist --initramfs "$T/random.img"
expect_grep "error: corrupt initramfs message" "corrupt" "$LAST_OUT"
{ cat "$T/early.cpio"; head -c 300 "$T/main.cpio.gz"; } >"$T/truncated-gzip.img"
expect_rc "error: truncated gzip archive → exit 2" 2 "$TENANT" create-allowlist --initramfs "$T/truncated-gzip.img"
head -c 1000 "$T/early.cpio" >"$T/truncated-cpio.img"
expect_rc "error: truncated cpio archive → exit 2" 2 "$TENANT" create-allowlist --initramfs "$T/truncated-cpio.img"
: >"$T/empty.img"
expect_rc "error: empty initramfs → exit 2" 2 "$TENANT" create-allowlist --initramfs "$T/empty.img"
expect_rc "error: unknown --hash-alg → exit 2" 2 "$TENANT" create-allowlist --hash-alg md5 --rootfs "$R"
expect_rc "error: --ima-log and --boot-aggregate together → exit 2" 2 \
  "$TENANT" create-allowlist --ima-log "$T/ima-ng.log" --boot-aggregate "$AGG256"
expect_rc "error: no input → exit 2" 2 "$TENANT" create-allowlist
expect_rc "error: unknown option → exit 2" 2 "$TENANT" create-allowlist --frobnicate
expect_rc "help → exit 0" 0 "$TENANT" create-allowlist --help
expect_grep "help mentions --initramfs" "--initramfs FILE" "$LAST_OUT"
exit 0
