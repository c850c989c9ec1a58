#!/usr/bin/env python3
"""faultproxy.py - an HTTP reverse proxy that injects S3 faults, for tests.

It sits on 127.0.0.1 between the broker and the S3 server.  Requests are
forwarded byte for byte (request line, Host header and path unchanged), so
SigV4 signatures stay valid.  The fault is chosen at run time by the control
file, re-read before every request; a change of its contents restarts the
count.  One line:

  pass                              forward everything (the default)
  5xx [count=N] [status=500|503]    answer 503 SlowDown / 500 InternalError
                                    without forwarding (alternating unless
                                    status is given)
  5xx-after [count=N]               forward, then answer 500 anyway (the
                                    server did apply the request)
  slow [count=N] [delay=SECONDS]    forward, hold the reply for delay (2 s)
  latency [delay=SECONDS]           forward, hold the reply's head for delay
                                    (0.01 s), then relay its body as it
                                    comes: a far server's round trip
  reset [count=N]                   read the head and part of the body, then
                                    reset the connection (RST)
  truncate [count=N]                forward, send the reply head and only half
                                    of its body, then close
  ... [method=PUT,GET] [path=SUBSTRING]  fault only matching requests

count is how many matching requests get the fault (default: all of them).
Every request is logged as one line: "SEQ METHOD PATH STATUS FAULT KEYID
TOKEN" (FAULT is "-" when none was injected, KEYID the access key of the
Authorization header, TOKEN "token" when x-amz-security-token was sent),
when its reply is sent.  A reply held by "slow" is also logged as "METHOD
PATH" to LOG.held when the hold begins (the server has applied it then).

  faultproxy.py --upstream HOST:PORT --control FILE --log FILE
                [--port N] [--port-file FILE]
"""
import argparse
import os
import re
import socket
import socketserver
import struct
import sys
import threading
import time

MAX_HEAD = 64 * 1024

ERRORS = {
    503: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
         b"<Message>Please reduce your request rate.</Message>"
         b"<RequestId>faultproxy</RequestId></Error>",
    500: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>"
         b"<Message>We encountered an internal error. Please try again.</Message>"
         b"<RequestId>faultproxy</RequestId></Error>",
}
REASONS = {500: "Internal Server Error", 503: "Slow Down"}


class Control:
    """The current fault, from the control file; counts what was injected."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.text = None
        self.rule = {"mode": "pass"}
        self.left = -1
        self.n5xx = 0

    def _parse(self, text):
        words = text.split()
        rule = {"mode": words[0] if words else "pass"}
        for w in words[1:]:
            k, _, v = w.partition("=")
            rule[k] = v
        return rule

    def take(self, method, path):
        """The fault for this request (a dict) or None; counts it."""
        try:
            with open(self.path) as f:
                text = f.read().strip()
        except OSError:
            text = "pass"
        with self.lock:
            if text != self.text:
                self.text = text
                self.rule = self._parse(text)
                self.left = int(self.rule.get("count", "-1"))
            r = self.rule
            if r["mode"] == "pass" or self.left == 0:
                return None
            if "method" in r and method not in r["method"].split(","):
                return None
            if "path" in r and r["path"] not in path:
                return None
            if self.left > 0:
                self.left -= 1
            fault = dict(r)
            if r["mode"] in ("5xx", "5xx-after") and "status" not in r:
                self.n5xx += 1
                fault["status"] = "503" if self.n5xx % 2 else "500"
            return fault


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.held_f = open(path + ".held", "a", buffering=1)
        self.lock = threading.Lock()
        self.seq = 0

    def held(self, method, path):
        with self.lock:
            self.held_f.write("%s %s\n" % (method, path))

    def write(self, method, path, status, fault, headers):
        auth = header(headers, b"authorization") or b""
        m = re.search(rb"Credential=([^/,\s]+)", auth)
        keyid = m.group(1).decode() if m else "-"
        token = "token" if header(headers, b"x-amz-security-token") else "-"
        with self.lock:
            self.seq += 1
            self.f.write("%d %s %s %s %s %s %s\n" % (
                self.seq, method, path, status, fault or "-", keyid, token))


def header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def recv_head(sock, buf):
    """Read up to the blank line; returns (head, rest) or (None, buf) on EOF."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            raise ValueError("head too long")
        d = sock.recv(65536)
        if not d:
            return None, buf
        buf += d
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def parse_head(head):
    lines = head[:-4].split(b"\r\n")
    hdrs = []
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        hdrs.append((k.strip(), v.strip()))
    return lines[0], hdrs


def recv_exact(sock, buf, n):
    while len(buf) < n:
        d = sock.recv(min(1 << 20, n - len(buf) + 65536))
        if not d:
            raise ConnectionError("peer closed mid-body")
        buf += d
    return buf[:n], buf[n:]


def recv_chunked(sock, buf):
    """Raw bytes of a chunked body, trailers included; returns (raw, rest)."""
    out = b""
    while True:
        while b"\r\n" not in buf:
            d = sock.recv(65536)
            if not d:
                raise ConnectionError("peer closed in chunked body")
            buf += d
        i = buf.index(b"\r\n")
        size = int(buf[:i].split(b";")[0], 16)
        out += buf[:i + 2]
        buf = buf[i + 2:]
        if size == 0:
            while True:  # trailers up to an empty line
                while b"\r\n" not in buf:
                    d = sock.recv(65536)
                    if not d:
                        raise ConnectionError("peer closed in trailers")
                    buf += d
                i = buf.index(b"\r\n")
                out += buf[:i + 2]
                line, buf = buf[:i], buf[i + 2:]
                if not line:
                    return out, buf
        data, buf = recv_exact(sock, buf, size + 2)
        out += data


def recv_body(sock, buf, hdrs, no_body=False):
    if no_body:
        return b"", buf, True
    te = header(hdrs, b"transfer-encoding")
    if te and b"chunked" in te.lower():
        body, buf = recv_chunked(sock, buf)
        return body, buf, True
    cl = header(hdrs, b"content-length")
    if cl is not None:
        body, buf = recv_exact(sock, buf, int(cl))
        return body, buf, True
    return None, buf, False


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        c = self.request
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up = None
        buf = b""
        ubuf = b""
        try:
            while True:
                head, buf = recv_head(c, buf)
                if head is None:
                    return
                reqline, hdrs = parse_head(head)
                method, path = reqline.decode("latin-1").split(" ")[:2]
                fault = srv.control.take(method, path)
                mode = fault["mode"] if fault else None
                expect = header(hdrs, b"expect")
                if expect:
                    hdrs = [(k, v) for k, v in hdrs if k.lower() != b"expect"]
                if mode == "5xx":
                    # answer at once, like a server refusing under load
                    st = int(fault["status"])
                    srv.log.write(method, path, st, "5xx", hdrs)
                    self._error(c, st, close=bool(expect))
                    if expect:
                        return
                    _, buf, ok = recv_body(c, buf, hdrs)
                    if not ok:
                        return
                    continue
                if expect:
                    c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                if mode == "reset":
                    cl = int(header(hdrs, b"content-length") or b"0")
                    try:
                        recv_exact(c, buf, cl // 2)
                    except ConnectionError:
                        pass
                    srv.log.write(method, path, "-", "reset", hdrs)
                    reset(c)
                    return
                body, buf, ok = recv_body(c, buf, hdrs)
                if not ok:
                    body = b""
                if up is None:
                    up = socket.create_connection(srv.upstream, timeout=120)
                    up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    ubuf = b""
                out = reqline + b"\r\n" + b"".join(
                    k + b": " + v + b"\r\n" for k, v in hdrs) + b"\r\n"
                up.sendall(out + body)
                rhead, ubuf = recv_head(up, ubuf)
                if rhead is None:
                    raise ConnectionError("upstream closed")
                status_line, rhdrs = parse_head(rhead)
                st = int(status_line.split(b" ")[1])
                no_body = method == "HEAD" or st in (204, 304) or st < 200
                if mode == "latency":
                    time.sleep(float(fault.get("delay", "0.01")))
                    if self._stream(c, up, rhead, rhdrs, no_body, ubuf):
                        ubuf = b""
                        srv.log.write(method, path, st, mode, hdrs)
                        conn = header(rhdrs, b"connection")
                        if conn and conn.lower() == b"close":
                            return
                        continue
                rbody, ubuf, framed = recv_body(up, ubuf, rhdrs, no_body)
                if not framed:  # body runs to the close
                    rbody = ubuf
                    while True:
                        d = up.recv(65536)
                        if not d:
                            break
                        rbody += d
                    up.close()
                    up = None
                if mode == "5xx-after":
                    srv.log.write(method, path, 500, "5xx-after", hdrs)
                    self._error(c, 500)
                    continue
                if mode == "slow":
                    srv.log.held(method, path)
                    time.sleep(float(fault.get("delay", "2")))
                if mode == "truncate":
                    srv.log.write(method, path, st, "truncate", hdrs)
                    if rbody:
                        c.sendall(rhead + rbody[:len(rbody) // 2])
                    else:
                        c.sendall(rhead[:len(rhead) // 2])
                    c.close()
                    return
                srv.log.write(method, path, st, mode, hdrs)
                c.sendall(rhead + (rbody or b""))
                conn = header(rhdrs, b"connection")
                if not framed or (conn and conn.lower() == b"close"):
                    return
        except (OSError, ValueError, ConnectionError) as e:
            print("faultproxy: %s" % e, file=sys.stderr)
        finally:
            if up is not None:
                up.close()
            try:
                c.close()
            except OSError:
                pass

    @staticmethod
    def _stream(c, up, rhead, rhdrs, no_body, ubuf):
        """Relay a reply whose body has a Content-Length as it arrives
        (nothing buffered whole); False, relaying nothing, for any other."""
        cl = header(rhdrs, b"content-length")
        if header(rhdrs, b"transfer-encoding") or (cl is None and not no_body):
            return False
        left = 0 if no_body else int(cl)
        first = ubuf[:left]
        c.sendall(rhead + first)
        left -= len(first)
        while left > 0:
            d = up.recv(min(1 << 20, left))
            if not d:
                raise ConnectionError("upstream closed mid-body")
            c.sendall(d)
            left -= len(d)
        return True

    def _error(self, c, st, close=False):
        body = ERRORS[st]
        c.sendall(("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
                   "Content-Length: %d\r\n%s\r\n" % (
                       st, REASONS[st], len(body),
                       "Connection: close\r\n" if close else "")).encode() + body)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="fault-injecting S3 proxy")
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the S3 server")
    ap.add_argument("--control", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    a = ap.parse_args()
    host, _, port = a.upstream.rpartition(":")
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.upstream = (host, int(port))
    srv.control = Control(a.control)
    srv.log = Log(a.log)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
