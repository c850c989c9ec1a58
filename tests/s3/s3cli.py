#!/usr/bin/env python3
"""s3cli.py - a small S3 client for the tests, independent of the broker.

The system tests check what the broker stored with a client that shares no
code with it: this one signs with its own SigV4 (standard library only) and
talks to the server directly.  Settings come from the environment written by
rgw-start (S3_ENDPOINT S3_REGION S3_ACCESS_KEY S3_SECRET_KEY S3_BUCKET, and
S3_SESSION_TOKEN when set).

  s3cli.py get KEY [OUT]          object body to OUT or stdout
  s3cli.py head KEY               "name: value" lines (x-amz-meta-*, length)
  s3cli.py list PREFIX            every key below PREFIX with its size
  s3cli.py put KEY FILE [k=v ...] upload FILE with x-amz-meta-k: v
  s3cli.py rm KEY                 delete
  s3cli.py rmtree PREFIX          delete every key starting with PREFIX
  s3cli.py exists KEY             exit 0 if the object exists, 1 if not

Exit status: 0 on success, 1 when the server refuses (the HTTP status and
S3 error code go to stderr), 2 on usage errors.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import os
import re
import sys
import urllib.parse
import xml.sax.saxutils

UNRESERVED = "-_.~"


def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None:
        sys.exit("s3cli: %s is not set (source the rgw-start env file)" % name)
    return v


class S3:
    def __init__(self):
        u = urllib.parse.urlsplit(env("S3_ENDPOINT"))
        self.https = u.scheme == "https"
        self.netloc = u.netloc
        self.region = env("S3_REGION", "us-east-1")
        self.ak = env("S3_ACCESS_KEY")
        self.sk = env("S3_SECRET_KEY")
        self.token = os.environ.get("S3_SESSION_TOKEN")
        self.bucket = env("S3_BUCKET")

    def _sign(self, method, path, query, headers, payload_hash):
        now = datetime.datetime.now(datetime.timezone.utc)
        amzdate = now.strftime("%Y%m%dT%H%M%SZ")
        day = amzdate[:8]
        headers["host"] = self.netloc
        headers["x-amz-date"] = amzdate
        headers["x-amz-content-sha256"] = payload_hash
        if self.token:
            headers["x-amz-security-token"] = self.token
        names = sorted(k.lower() for k in headers)
        canon_h = "".join("%s:%s\n" % (n, " ".join(str(headers[n]).split()))
                          for n in names)
        signed = ";".join(names)
        cq = "&".join("%s=%s" % (urllib.parse.quote(k, safe=UNRESERVED),
                                 urllib.parse.quote(v, safe=UNRESERVED))
                      for k, v in sorted(query))
        creq = "\n".join([method, urllib.parse.quote(path, safe=UNRESERVED + "/"),
                          cq, canon_h, signed, payload_hash])
        scope = "%s/%s/s3/aws4_request" % (day, self.region)
        sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
        k = ("AWS4" + self.sk).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
            % (self.ak, scope, signed, sig))
        return cq

    def request(self, method, key=None, query=(), body=b"", headers=None):
        path = "/" + self.bucket + ("/" + key if key is not None else "")
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        cq = self._sign(method, path, list(query), headers,
                        hashlib.sha256(body).hexdigest())
        url = urllib.parse.quote(path, safe=UNRESERVED + "/") + ("?" + cq if cq else "")
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.netloc, timeout=60)
        try:
            conn.request(method, url, body=body if body else None, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
        finally:
            conn.close()


def fail(status, data):
    m = re.search(rb"<Code>([^<]*)</Code>", data or b"")
    code = m.group(1).decode() if m else ""
    print("s3cli: HTTP %d %s" % (status, code), file=sys.stderr)
    sys.exit(1)


def list_keys(s3, prefix):
    token = None
    while True:
        q = [("list-type", "2"), ("prefix", prefix), ("encoding-type", "url")]
        if token:
            q.append(("continuation-token", token))
        st, _, data = s3.request("GET", None, q)
        if st != 200:
            fail(st, data)
        for m in re.finditer(rb"<Contents>(.*?)</Contents>", data, re.S):
            c = m.group(1)
            k = re.search(rb"<Key>(.*?)</Key>", c).group(1).decode()
            size = int(re.search(rb"<Size>(\d+)</Size>", c).group(1))
            yield urllib.parse.unquote(k), size
        m = re.search(rb"<NextContinuationToken>(.*?)</NextContinuationToken>", data)
        if not m or b"<IsTruncated>true</IsTruncated>" not in data:
            return
        nxt = xml.sax.saxutils.unescape(m.group(1).decode(), {"&quot;": '"', "&apos;": "'"})
        if nxt == token:
            sys.exit("s3cli: the listing does not advance")
        token = nxt


def delete_batch(s3, keys):
    """DeleteObjects: up to 1000 keys in one request."""
    body = ("<Delete><Quiet>true</Quiet>" + "".join(
        "<Object><Key>%s</Key></Object>" % xml.sax.saxutils.escape(k) for k in keys)
        + "</Delete>").encode()
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    st, _, data = s3.request("POST", None, [("delete", "")], body=body,
                             headers={"content-md5": md5})
    if st != 200 or b"<Error>" in data:
        fail(st if st != 200 else 500, data)


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cmd, key = argv[1], argv[2]
    s3 = S3()
    if cmd == "get":
        st, _, data = s3.request("GET", key)
        if st != 200:
            fail(st, data)
        if len(argv) > 3:
            with open(argv[3], "wb") as f:
                f.write(data)
        else:
            sys.stdout.buffer.write(data)
    elif cmd == "head":
        st, h, data = s3.request("HEAD", key)
        if st != 200:
            fail(st, data)
        for k in sorted(h):
            if k.startswith("x-amz-meta-") or k in ("content-length", "content-type"):
                print("%s: %s" % (k, h[k]))
    elif cmd == "exists":
        st, _, data = s3.request("HEAD", key)
        if st == 404:
            return 1
        if st != 200:
            fail(st, data)
    elif cmd == "list":
        for k, size in list_keys(s3, key):
            print("%s %d" % (k, size))
    elif cmd == "put":
        if len(argv) < 4:
            return 2
        with open(argv[3], "rb") as f:
            body = f.read()
        hdrs = {}
        for kv in argv[4:]:
            k, _, v = kv.partition("=")
            hdrs["x-amz-meta-" + k] = v
        st, _, data = s3.request("PUT", key, body=body, headers=hdrs)
        if st != 200:
            fail(st, data)
    elif cmd == "rm":
        st, _, data = s3.request("DELETE", key)
        if st not in (200, 204):
            fail(st, data)
    elif cmd == "rmtree":
        keys = [k for k, _ in list_keys(s3, key)]
        for i in range(0, len(keys), 1000):
            delete_batch(s3, keys[i:i + 1000])
    else:
        print("s3cli: unknown command " + cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, http.client.HTTPException) as e:
        print("s3cli: %s" % e, file=sys.stderr)
        sys.exit(1)
