#!/usr/bin/env bash
# Regenerates the ima-sig test data in this directory with evmctl (ima-evm-utils) and openssl:
#   signer.key / signer.pub / signer.crt   the IMA signing key (RSA 2048), its public key in PEM,
#                                          and a self-signed certificate of it (DER: signer.der)
#   stranger.key / stranger.pub            a second key nobody hands to the verifier
#   files/good  files/tampered  files/stranger   three measured files
#   list.txt      an IMA ASCII list (ima-sig template, sha256 file digests); entries (0-based):
#                   0 boot_aggregate (no signature)
#                   1 /usr/bin/good      signed by signer (evmctl ima_sign), good
#                   2 /usr/bin/tampered  carries the signature of files/good: bad signature
#                   3 /usr/bin/stranger  signed by stranger: unknown key
#   expect.txt    "<entry> <path> good|bad|unknown" for each signed entry
# Template hashes are computed here (SHA-1 over the ima-sig template data: u32le lengths + fields,
# keylime-formats §1), so the list replays like one the kernel wrote.
set -euo pipefail
cd "$(dirname "$0")"
command -v evmctl >/dev/null || { echo "evmctl (ima-evm-utils) is needed" >&2; exit 1; }
rm -rf files && mkdir files
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out signer.key 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out stranger.key 2>/dev/null
openssl pkey -in signer.key -pubout -out signer.pub
openssl pkey -in stranger.key -pubout -out stranger.pub
openssl req -new -x509 -key signer.key -subj /CN=quince-ima-test -days 36500 -outform DER -out signer.der 2>/dev/null
printf 'good file\n' > files/good
printf 'tampered file\n' > files/tampered
printf 'stranger file\n' > files/stranger
evmctl ima_sign --sigfile -a sha256 --key signer.key files/good >/dev/null 2>&1
evmctl ima_sign --sigfile -a sha256 --key stranger.key files/stranger >/dev/null 2>&1
python3 - <<'PY'
import hashlib, struct
def td(digest_alg, digest, path, sig):
    d = digest_alg.encode() + b":\0" + digest
    n = path.encode() + b"\0"
    return (struct.pack("<I", len(d)) + d + struct.pack("<I", len(n)) + n +
            struct.pack("<I", len(sig)) + sig)
def line(path, data, sig):
    dg = hashlib.sha256(data).digest()
    th = hashlib.sha1(td("sha256", dg, path, sig)).hexdigest()
    return "10 %s ima-sig sha256:%s %s %s" % (th, dg.hex(), path, sig.hex())
# boot_aggregate: an all-zero digest and no signature (the kernel prints a trailing space)
boot = bytes(32)
th = hashlib.sha1(td("sha256", boot, "boot_aggregate", b"")).hexdigest()
lines = ["10 %s ima-sig sha256:%s boot_aggregate " % (th, boot.hex())]
good = open("files/good", "rb").read()
tampered = open("files/tampered", "rb").read()
stranger = open("files/stranger", "rb").read()
gsig = open("files/good.sig", "rb").read()
ssig = open("files/stranger.sig", "rb").read()
lines.append(line("/usr/bin/good", good, gsig))
lines.append(line("/usr/bin/tampered", tampered, gsig))
lines.append(line("/usr/bin/stranger", stranger, ssig))
open("list.txt", "w").write("\n".join(lines) + "\n")
open("expect.txt", "w").write("1 /usr/bin/good good\n2 /usr/bin/tampered bad\n3 /usr/bin/stranger unknown\n")
PY
echo "ima-sig test data written to $(pwd)"
