#!/usr/bin/env python3
"""A recording proxy for the broker's unix socket.

usage: opsproxy.py LISTEN_SOCK BROKER_SOCK PROTO_H LOG

Forwards every connection to the broker unchanged and writes, for each
request frame the client sends, one line "conn N op NAME" to LOG (NAME from the
PROTO_OPS list in common/proto.h).  A compressed or undecodable frame is
logged as "conn N op ?".  Used to prove which operations occfs-mcp sends."""
import os
import re
import socket
import struct
import sys
import threading

listen, target, proto_h, logpath = sys.argv[1:5]
names = {}
for m in re.finditer(r"X\((\w+), (\d+),", open(proto_h).read()):
    names[int(m.group(2))] = m.group(1)
log = open(logpath, "a", buffering=1)
lock = threading.Lock()


def uint_at(body, i):
    """A msgpack unsigned int at i: (value, next index) or (None, i)."""
    if i >= len(body):
        return None, i
    b = body[i]
    if b <= 0x7F:
        return b, i + 1
    size = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}.get(b)
    if size is None or i + 1 + size > len(body):
        return None, i
    return int.from_bytes(body[i + 1:i + 1 + size], "big"), i + 1 + size


def op_of(body):
    """op of a request [kind, id, op, ...] (codec.c); None if not so."""
    if not body:
        return None
    b = body[0]
    if 0x90 <= b <= 0x9F:
        i = 1
    elif b == 0xDC:
        i = 3
    elif b == 0xDD:
        i = 5
    else:
        return None
    kind, i = uint_at(body, i)
    _, i = uint_at(body, i)
    op, i = uint_at(body, i)
    return op if kind == 0 else None


def pump(src, dst, n, record):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if not record:
                continue
            buf += data
            while len(buf) >= 4:
                (hdr,) = struct.unpack(">I", buf[:4])
                ln = hdr & 0x7FFFFFFF
                if len(buf) < 4 + ln:
                    break
                body, buf = buf[4:4 + ln], buf[4 + ln:]
                op = None if hdr & 0x80000000 else op_of(body)
                with lock:
                    log.write("conn %d op %s\n" % (n, names.get(op, "?")))
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if os.path.exists(listen):
    os.unlink(listen)
srv.bind(listen)
srv.listen(16)
n = 0
while True:
    c, _ = srv.accept()
    n += 1
    b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    b.connect(target)
    threading.Thread(target=pump, args=(c, b, n, True), daemon=True).start()
    threading.Thread(target=pump, args=(b, c, n, False), daemon=True).start()
