#!/usr/bin/env bash
# Regenerates the DSSE test vectors in this directory from the DSSE specification alone
# (no Quince code and no Keylime code is involved):
#   PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body   (decimal lengths)
# The PAE bytes are written with printf, signed with the openssl command line (ECDSA-SHA256 with
# a DER signature for EC keys, as Keylime's ecdsa backend does; RSA-PSS-SHA256 with MGF1-SHA256
# and a 32-byte salt for RSA), and the envelope JSON is written in Python's json.dumps layout:
#   {"payload": b64(body), "payloadType": type, "signatures": [{"keyid": id, "sig": b64(sig)}]}
# keyid = lower-case hex SHA-256 of the public key's PEM file (Keylime's ecdsa backend).
# Files:
#   policy.json            the payload (a runtime policy)
#   pae.bin                PAE of policy.json with type application/vnd.keylime+json
#   {ec256,ec384,rsa}.key/.pub   signing keys / their public keys; other.pub an unrelated key
#   ec256.env ec384.env rsa.env  good envelopes
#   hexpayload.env         ec256.env with the payload in hex (Keylime's b64dec tries hex first)
#   tampered.env           ec256.env with a different payload (signature no longer matches)
#   wrongtype.env          ec256.env with another payloadType (the PAE changes, so it fails)
#   ec256.crt              self-signed certificate of ec256.key (a verification key too)
# Run from anywhere: tests/data/dsse/gen.sh
set -euo pipefail
cd "$(dirname "$0")"
TYPE=application/vnd.keylime+json
D=$(printf a | sha256sum | cut -c1-64)
printf '{"meta": {"version": 1, "generator": 1}, "release": 0, "digests": {"/usr/bin/a": ["%s"]}, "excludes": [], "keyrings": {}, "ima": {"ignored_keyrings": [], "log_hash_alg": "sha256", "dm_policy": null}, "ima-buf": {}, "verification-keys": ""}' "$D" > policy.json
printf '{"meta": {"version": 1, "generator": 1}, "release": 0, "digests": {"/usr/bin/evil": ["%s"]}, "excludes": [], "keyrings": {}, "ima": {"ignored_keyrings": [], "log_hash_alg": "sha256", "dm_policy": null}, "ima-buf": {}, "verification-keys": ""}' "$D" > evil.json

pae() { # type file
  printf 'DSSEv1 %d %s %d ' "${#1}" "$1" "$(stat -c %s "$2")"; cat "$2"
}
pae "$TYPE" policy.json > pae.bin

openssl ecparam -name prime256v1 -genkey -noout | openssl pkey -out ec256.key
openssl ecparam -name secp384r1 -genkey -noout | openssl pkey -out ec384.key
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout | openssl pkey -pubout -out other.pub
for k in ec256 ec384 rsa; do openssl pkey -in $k.key -pubout -out $k.pub; done
openssl req -new -x509 -key ec256.key -subj /CN=quince-test-signer -days 36500 -out ec256.crt 2>/dev/null

b64() { base64 -w0 "$1"; }
envelope() { # out payload-field type sigfile keyid
  printf '{"payload": "%s", "payloadType": "%s", "signatures": [{"keyid": "%s", "sig": "%s"}]}\n' \
    "$2" "$3" "$5" "$(b64 "$4")" > "$1"
}
keyid() { sha256sum "$1" | cut -c1-64; }

for k in ec256 ec384; do
  openssl dgst -sha256 -sign $k.key -out $k.sig pae.bin
  envelope $k.env "$(b64 policy.json)" "$TYPE" $k.sig "$(keyid $k.pub)"
done
openssl dgst -sha256 -sign rsa.key -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
  -sigopt rsa_mgf1_md:sha256 -out rsa.sig pae.bin
envelope rsa.env "$(b64 policy.json)" "$TYPE" rsa.sig "$(keyid rsa.pub)"
envelope hexpayload.env "$(od -An -v -tx1 policy.json | tr -d ' \n')" "$TYPE" ec256.sig "$(keyid ec256.pub)"
envelope tampered.env "$(b64 evil.json)" "$TYPE" ec256.sig "$(keyid ec256.pub)"
envelope wrongtype.env "$(b64 policy.json)" "application/json" ec256.sig "$(keyid ec256.pub)"
# sanity: the signatures verify with openssl over the PAE
openssl dgst -sha256 -verify ec256.pub -signature ec256.sig pae.bin >/dev/null
openssl dgst -sha256 -verify rsa.pub -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-2 -signature rsa.sig pae.bin >/dev/null
rm -f ./*.sig
echo "DSSE test vectors written to $(pwd)"
