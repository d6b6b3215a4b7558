#!/usr/bin/env python3
"""Independent reference for `quince-tenant create-mb-policy`: reads what tpm2_eventlog (YAML)
prints for a log and applies the rules of Keylime's measured-boot reference state, written here
from its documented behaviour: has_secureboot from the SecureBoot variable; scrtm (first
EV_S_CRTM_VERSION) and platform_firmware (every EV_EFI_PLATFORM_FIRMWARE_BLOB/BLOB2); pk, kek,
db, dbx as the signatures of the last EV_EFI_VARIABLE_DRIVER_CONFIG of that name; mokdig/mokxdig
from the EV_IPL events named MokList/MokListX; kernels[0] from the boot applications (not those
built into the firmware) and the PCR 8/9 EV_IPL strings. Prints the JSON, or exits 1 with a
reason when the log cannot give a reference state.
usage: mb_refstate_ref.py YAML [--without-secureboot]"""
import codecs
import json
import re
import struct
import sys
import yaml

def sha256(ev):
    for d in ev.get("Digests", []):
        if d["AlgorithmId"] == "sha256":
            return {"sha256": "0x" + d["Digest"].lower()}
    raise SystemExit("event without a sha256 digest")

def guid(b):
    a, b2, c = struct.unpack_from("<IHH", b)
    return "%08x-%04x-%04x-%s-%s" % (a, b2, c, b[8:10].hex(), b[10:16].hex())

def sigs(hexdata):
    data = bytes.fromhex(hexdata or "")
    out, off = [], 0
    while off < len(data):
        lsize, hsize, ssize = struct.unpack_from("<III", data, off + 16)
        p = off + 28 + hsize
        while p + ssize <= off + lsize:
            out.append({"SignatureOwner": guid(data[p:p + 16]),
                        "SignatureData": "0x" + data[p + 16:p + ssize].hex()})
            p += ssize
        off += lsize
    return out

def text(ev):
    s = ev.get("Event", {})
    s = s.get("String") if isinstance(s, dict) else None
    if not isinstance(s, str):
        return None
    s = s.strip()
    if s.startswith('"') and s.endswith('"'):
        s = codecs.decode(s[1:-1], "unicode_escape")
    return s.rstrip("\0")

def firmware_app(ev):
    dp = str(ev.get("Event", {}).get("DevicePath", ""))
    if not re.fullmatch(r"[0-9a-fA-F]*", dp) or len(dp) < 8 or dp[:4] != "0407":
        return False
    n = int(dp[6:8] + dp[4:6], 16) * 2
    return dp[n:n + 4] == "0406"

def main():
    events = yaml.safe_load(open(sys.argv[1]))["events"]
    without_sb = "--without-secureboot" in sys.argv
    sb = None
    for ev in events:
        e = ev.get("Event")
        if ev["EventType"] == "EV_EFI_VARIABLE_DRIVER_CONFIG" and isinstance(e, dict) and e.get("UnicodeName") == "SecureBoot":
            sb = str(e.get("VariableData", "")).lower() == "01"
            break
    if sb is None:
        sys.exit("no SecureBoot variable")
    if not sb and not without_sb:
        sys.exit("Secure Boot off")
    scrtm = [sha256(ev) for ev in events if ev["EventType"] == "EV_S_CRTM_VERSION"][:1]
    firmware = [sha256(ev) for ev in events
                if ev["EventType"] in ("EV_EFI_PLATFORM_FIRMWARE_BLOB", "EV_EFI_PLATFORM_FIRMWARE_BLOB2")]
    keys = {"pk": [], "kek": [], "db": [], "dbx": []}
    for ev in events:
        if ev["EventType"] == "EV_EFI_VARIABLE_DRIVER_CONFIG":
            name = ev["Event"]["UnicodeName"].lower()
            if name in keys:
                keys[name] = sigs(ev["Event"].get("VariableData"))
    mok = {"mokdig": [], "mokxdig": []}
    for ev in events:
        if ev["EventType"] == "EV_IPL" and text(ev) in ("MokList", "MokListX"):
            mok["mokdig" if text(ev) == "MokList" else "mokxdig"].append(sha256(ev))
    apps = [sha256(ev)["sha256"] for ev in events
            if ev["EventType"] == "EV_EFI_BOOT_SERVICES_APPLICATION" and not firmware_app(ev)]
    if (sb and len(apps) not in (3, 4)) or (not sb and len(apps) != 2):
        sys.exit("unexpected number of boot applications: %d" % len(apps))
    kernel = {"shim_authcode_sha256": apps[0], "grub_authcode_sha256": apps[1]}
    if sb:
        kernel["kernel_authcode_sha256"] = apps[2]
    ipl = [(ev["PCRIndex"], text(ev) or "", ev) for ev in events if ev["EventType"] == "EV_IPL"]
    for pcr, s, ev in ipl:
        if pcr == 9 and ("initrd" in s or "initramfs" in s):
            kernel["initrd_plain_sha256"] = sha256(ev)["sha256"]
            break
    if not sb:
        for pcr, s, ev in ipl:
            if pcr == 9 and "vmlinuz" in s:
                kernel["vmlinuz_plain_sha256"] = sha256(ev)["sha256"]
                break
    for pcr, s, ev in ipl:
        if pcr == 8 and "kernel_cmdline" in s:
            kernel["kernel_cmdline"] = re.escape(s[len("kernel_cmdline: "):])
            break
    out = {"has_secureboot": sb, "scrtm_and_bios": [dict(**({"scrtm": scrtm[0]} if scrtm else {}),
                                                         platform_firmware=firmware)]}
    out.update(keys)
    out.update(mok)
    out["kernels"] = [kernel]
    print(json.dumps(out))

main()
