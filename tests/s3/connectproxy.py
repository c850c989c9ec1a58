#!/usr/bin/env python3
"""connectproxy.py - a logging HTTP CONNECT proxy standing in for the egress edge.

Accepts "CONNECT host:port" on 127.0.0.1, logs the target (one line per
tunnel: "CONNECT host:port"), and tunnels bytes both ways.  --map
host:port=ADDR:PORT sends a target somewhere else, so a test can name an S3
endpoint that only the proxy can reach.  Targets not mapped and not on
127.0.0.1 are refused (403), as an allow-list would; anything but CONNECT
gets 405 and is logged as "REFUSED METHOD TARGET".

  connectproxy.py --log FILE [--port-file FILE] [--map T=ADDR]...
"""
import argparse
import os
import socket
import socketserver
import threading

MAX_HEAD = 16 * 1024


def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        c = self.request
        srv = self.server
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(4096)
            if not d or len(buf) > MAX_HEAD:
                return
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        parts = head.split(b"\r\n")[0].decode("latin-1").split(" ")
        method, target = parts[0], parts[1] if len(parts) > 1 else ""
        if method != "CONNECT":
            srv.log("REFUSED %s %s" % (method, target))
            c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        dest = srv.maps.get(target)
        if dest is None:
            host, _, port = target.rpartition(":")
            if host not in ("127.0.0.1", "localhost"):
                srv.log("REFUSED CONNECT %s" % target)
                c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            dest = (host, int(port))
        srv.log("CONNECT %s" % target)
        try:
            up = socket.create_connection(dest, timeout=30)
        except OSError:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        up.settimeout(None)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            up.sendall(rest)
        t = threading.Thread(target=pump, args=(up, c), daemon=True)
        t.start()
        pump(c, up)
        t.join()
        up.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def log(self, line):
        with self.lock:
            self.logf.write(line + "\n")


def main():
    ap = argparse.ArgumentParser(description="logging CONNECT proxy")
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--map", action="append", default=[],
                    help="TARGET=ADDR:PORT, e.g. s3.example:80=127.0.0.1:7480")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.lock = threading.Lock()
    srv.logf = open(a.log, "a", buffering=1)
    srv.maps = {}
    for m in a.map:
        t, _, d = m.partition("=")
        h, _, p = d.rpartition(":")
        srv.maps[t] = (h, int(p))
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
