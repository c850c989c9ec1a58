#!/usr/bin/env python3
# tamper.py FILE ACTION [LINE] - damage one log segment the way an attacker
# or a crash would; .zst segments are decompressed and recompressed with
# the zstd tool so the damage is in the records, not the compression.
#   flip LINE     change one character of record LINE's JSON
#   delete LINE   remove record LINE
#   swap LINE     exchange records LINE and LINE+1
#   cut           cut the last 10 bytes (inside the last record)
#   droplast      remove the whole last record (at a line boundary)
#   rawflip       flip one byte in the middle of the file itself
import subprocess
import sys

path, action = sys.argv[1], sys.argv[2]
line = int(sys.argv[3]) if len(sys.argv) > 3 else 0
if action == "rawflip":
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(path, "wb").write(data)
    sys.exit(0)
zst = path.endswith(".zst")
data = open(path, "rb").read()
if zst:
    data = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True,
                          check=True).stdout
lines = data.split(b"\n")[:-1]
if action == "flip":
    l = bytearray(lines[line - 1])
    i = l.index(b'"class_uid"') + 2
    l[i] = ord("C")
    lines[line - 1] = bytes(l)
elif action == "delete":
    del lines[line - 1]
elif action == "swap":
    lines[line - 1], lines[line] = lines[line], lines[line - 1]
out = b"".join(l + b"\n" for l in lines)
if action == "cut":
    out = out[:-10]
elif action == "droplast":
    out = b"".join(l + b"\n" for l in lines[:-1])
if zst:
    out = subprocess.run(["zstd", "-cq", "--check"], input=out,
                         capture_output=True, check=True).stdout
open(path, "wb").write(out)
