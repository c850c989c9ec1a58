#!/usr/bin/env python3
"""Drive occfs-mcp --stdio with every name a peer could try.

usage: confine.py MCP HANDLE ENDPOINT OUT

Prints "ok: ..." / "FAIL: ..." lines; writes every reply to OUT so the
caller can search it for another session's data.  Exit 1 on a failure."""
import json
import subprocess
import sys

mcp, handle, endpoint, outpath = sys.argv[1:5]

# Every method of the MCP specification, and the control plane's verbs
# spelt as an MCP peer might guess them.
METHODS = """initialize ping tools/list tools/call resources/list
resources/read resources/templates/list resources/subscribe
resources/unsubscribe prompts/list prompts/get completion/complete
logging/setLevel sampling/createMessage roots/list elicitation/create
tasks/list tasks/get tasks/result tasks/cancel notifications/initialized
create create_session session/create sessions/create destroy
destroy_session sessions/destroy revoke revoke_session sessions/revoke
revoke_all revoke-all revokeAll kill kill_switch killswitch lift
lift_kill_switch quota quota_override set_quota sessions/list
list_sessions admin/revoke_all control/revoke shutdown exit eval exec
tools/create tools/register tools/remove""".split()
TOOLS = """storage_usage mount_status dlp_findings create_session
destroy_session revoke revoke_session revoke_all kill kill_switch lift
quota_override set_quota list_sessions read_file write_file delete_file
exec shell audit_log other_session mount unmount STORAGE_USAGE
storage_usage/../revoke_all""".split() + ["storage_usage\u0000",
                                          " storage_usage"]
READ_ONLY_METHODS = {"initialize", "ping", "tools/list", "tools/call"}
READ_ONLY_TOOLS = {"storage_usage", "mount_status", "dlp_findings"}

reqs = [{"jsonrpc": "2.0", "id": 0, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "confine", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "list", "method": "tools/list"}]
for i, m in enumerate(METHODS):
    # initialize would only say "already initialized": a request, known.
    reqs.append({"jsonrpc": "2.0", "id": "m%d" % i, "method": m,
                 "params": {"name": "storage_usage"} if m == "tools/call"
                 else {}})
for i, t in enumerate(TOOLS):
    reqs.append({"jsonrpc": "2.0", "id": "t%d" % i, "method": "tools/call",
                 "params": {"name": t, "arguments": {}}})
# Another session's names in the arguments of every real tool.
OTHER = [{"filesystem_id": "fs-b"}, {"fsid": "fs-b"}, {"sid": "sess-fs-b"},
         {"session": "fs-b"}, {"path": "../fs-b"}, {"handle": "x.y.z"},
         {"limit": 5, "filesystem_id": "fs-b"}]
for t in sorted(READ_ONLY_TOOLS):
    for j, a in enumerate(OTHER):
        reqs.append({"jsonrpc": "2.0", "id": "o-%s-%d" % (t, j),
                     "method": "tools/call",
                     "params": {"name": t, "arguments": a}})

text = "".join(json.dumps(r) + "\n" for r in reqs)
p = subprocess.run([mcp, "--handle", handle, "--broker", endpoint, "--stdio"],
                   input=text.encode(), capture_output=True, timeout=60)
out = p.stdout.decode()
open(outpath, "w").write(out + p.stderr.decode())
replies = {r["id"]: r for r in map(json.loads, out.splitlines())}
fails = 0


def check(cond, what):
    global fails
    print(("ok: " if cond else "FAIL: ") + what)
    fails += 0 if cond else 1


accepted = {m for i, m in enumerate(METHODS)
            if replies.get("m%d" % i, {}).get("error", {}).get("code")
            != -32601}
check(accepted == READ_ONLY_METHODS,
      "of %d method names, answered: %s" % (len(METHODS), sorted(accepted)))
listed = {t["name"] for t in replies["list"]["result"]["tools"]}
check(listed == READ_ONLY_TOOLS, "tools/list: %s" % sorted(listed))
check(all(t["annotations"]["readOnlyHint"] and
          not t["annotations"]["destructiveHint"]
          for t in replies["list"]["result"]["tools"]),
      "every tool is annotated read-only, not destructive")
# A name with NUL is not even JSON to the server: a parse error (id null).
ran = {t for i, t in enumerate(TOOLS)
       if "result" in replies.get("t%d" % i, {})}
check(ran == READ_ONLY_TOOLS,
      "of %d tool names, run: %s; the rest refused with -32602"
      % (len(TOOLS), sorted(ran)))
check(all(replies["t%d" % i]["error"]["code"] == -32602
          for i, t in enumerate(TOOLS)
          if t not in READ_ONLY_TOOLS and "\0" not in t),
      "refusals are JSON-RPC errors -32602")
check(replies.get(None, {}).get("error", {}).get("code") == -32700,
      "a tool name with NUL: parse error")
other = [r for k, r in replies.items() if str(k).startswith("o-")]
check(len(other) == 3 * len(OTHER) and
      all(r.get("error", {}).get("code") == -32602 for r in other),
      "%d calls naming another session refused" % len(other))
check(p.returncode == 0, "occfs-mcp exit status %d" % p.returncode)
sys.exit(1 if fails else 0)
