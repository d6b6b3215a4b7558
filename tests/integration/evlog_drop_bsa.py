#!/usr/bin/env python3
"""Test helper: copy a crypto-agile UEFI event log without its N-th EV_EFI_BOOT_SERVICES_APPLICATION
event (default the second: grub after shim), so the log neither matches its reference state nor
replays to the PCRs it came with.
usage: evlog_drop_bsa.py IN OUT [N]"""
import struct
import sys

b = open(sys.argv[1], "rb").read()
drop = int(sys.argv[3]) if len(sys.argv) > 3 else 2
hdr = 32 + struct.unpack_from("<I", b, 28)[0]
banks = {}
n = struct.unpack_from("<I", b, 32 + 24)[0]
for i in range(n):
    alg, size = struct.unpack_from("<HH", b, 32 + 28 + 4 * i)
    banks[alg] = size
off, out, bsa = hdr, bytearray(b[:hdr]), 0
while off < len(b):
    start = off
    pcr, typ, cnt = struct.unpack_from("<III", b, off)
    off += 12
    for _ in range(cnt):
        alg = struct.unpack_from("<H", b, off)[0]
        off += 2 + banks[alg]
    size = struct.unpack_from("<I", b, off)[0]
    off += 4 + size
    if typ == 0x80000003:
        bsa += 1
        if bsa == drop:
            continue
    out += b[start:off]
if bsa < drop:
    sys.exit("the log has only %d boot applications" % bsa)
open(sys.argv[2], "wb").write(out)
