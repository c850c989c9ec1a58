#!/bin/sh
# malformed.sh - hostile input on the ingest socket: bad frame lengths
# close that connection, records that are not a JSON object with a
# class_uid are refused (status EINVAL) with a log line, and the daemon
# keeps serving: a real emitter still delivers and the chain verifies.
srcdir=$(cd "${top_srcdir:-.}/tests/audit" && pwd)
. "$srcdir/lib.sh"

start_auditd --mode 0660
eq "socket mode" "$(stat -c %a "$SOCK")" 660
python3 - "$SOCK" >"$T/p.out" 2>&1 <<'PY'
import socket, struct, sys

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sys.argv[1])
    return s

def ack(s, payload):
    s.sendall(struct.pack(">I", len(payload)) + payload)
    d = b""
    while len(d) < 4:
        c = s.recv(4 - len(d))
        if not c:
            return "closed"
        d += c
    return struct.unpack(">I", d)[0]

def closed_after(raw):
    s = conn()
    s.sendall(raw)
    try:
        return "closed" if s.recv(16) == b"" else "open"
    except socket.timeout:
        return "open"

s = conn()
for name, p in [("garbage", b"not json at all"), ("array", b"[1,2]"),
                ("no class", b'{"a":1}'), ("class string", b'{"class_uid":"x"}'),
                ("duplicate keys", b'{"class_uid":1,"class_uid":2}'),
                ("nul", b'{"class_uid":1001,"x":"\\u0000"}'),
                ("deep", b"[" * 5000 + b"]" * 5000),
                ("binary", bytes(range(256))),
                ("good", b'{"class_uid":1001,"metadata":{"version":"1.4.0"}}')]:
    print(name, ack(s, p))
print("zero length", closed_after(struct.pack(">I", 0)))
print("huge length", closed_after(struct.pack(">I", 0xFFFFFFFF)))
print("over limit", closed_after(struct.pack(">I", 65537) + b"{" * 100))
s2 = conn()
s2.sendall(struct.pack(">I", 100) + b'{"class_uid":')
s2.close()
print("done")
PY
for l in "garbage 22" "array 22" "no class 22" "class string 22" \
	"duplicate keys 22" "nul 22" "deep 22" "binary 22" "good 0" \
	"zero length closed" "huge length closed" "over limit closed" done; do
	has "^$l\$" "$T/p.out"
done
has "refused a record from pid [0-9]* uid 0: not JSON" "$T/auditd.err"
has "bad frame length" "$T/auditd.err"
check "daemon alive" kill -0 "$AUDITD_PID"
"$EMIT" --spool "$T/sp" --socket "$SOCK" file:20 flush:20000 >"$T/e.out"
has "flush r=0" "$T/e.out"
stop_auditd
eq "exit status" $? 0
"$AUDIT" verify "$LOG" >"$T/v.out"
eq "verify" $? 0
has "^ok: 21 records" "$T/v.out"
finish
