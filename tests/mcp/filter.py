#!/usr/bin/env python3
"""Normalise the volatile parts of occfs-mcp replies for golden files.

Reads JSON-RPC lines on stdin (other lines pass through), rewrites values
that change from run to run (latencies, expiry times, the version, the
work directory, session ids) and prints each line compactly in the order
its keys came.  Text content that is itself JSON is normalised the same
way.  argv[1] is the test's work directory, replaced by WORKDIR."""
import json
import re
import sys

WORK = sys.argv[1] if len(sys.argv) > 1 else None
VOLATILE = {
    "latency_us": "N",
    "handle_expires_at": "TIME",
    "handle_expires_in_s": "N",
}


def norm(v, key=None):
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k in VOLATILE:
                out[k] = VOLATILE[k]
            elif k == "version" and key == "serverInfo":
                out[k] = "VERSION"
            else:
                out[k] = norm(x, k)
        return out
    if isinstance(v, list):
        return [norm(x, key) for x in v]
    if isinstance(v, str):
        if key == "text" and v.startswith("{"):
            try:
                return dumps(norm(json.loads(v)))
            except ValueError:
                pass
        if WORK:
            v = v.replace(WORK, "WORKDIR")
        return v
    return v


def dumps(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


for line in sys.stdin:
    line = line.rstrip("\n")
    try:
        obj = json.loads(line)
    except ValueError:
        if WORK:
            line = line.replace(WORK, "WORKDIR")
        print(re.sub(r"[0-9a-f]{32}", "SESSIONID", line))
        continue
    print(dumps(norm(obj)))
