#!/bin/sh
# dlp_findings end to end: a policy with dlp rules, fs-a and fs-b mounted
# through mountc, files with a planted AWS key id (block) and an employee
# id (audit) written in each; then occfs-mcp --stdio with a read-intent
# handle per filesystem.  fs-a's answer lists fs-a's findings, newest
# first, with the rule names, paths and a redacted excerpt, and nothing
# of fs-b's; fs-b's the reverse; fs-c (no findings) an empty list; limit
# is honoured.  Needs root and /dev/fuse (skips otherwise).  Run by
# `make check`.
. "$(dirname "$0")/lib.sh"
mountc=$top_builddir/mountc/mountc
[ -x "$mountc" ] || { echo "findings.sh: $mountc not built"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "findings.sh: needs root, skipped"; exit 77; }
[ -c /dev/fuse ] || { echo "findings.sh: no /dev/fuse, skipped"; exit 77; }
mnts=
unmount_all() {
	for m in $mnts; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	cleanup
}
trap unmount_all EXIT

cat >"$tmp/pol/30-dlp.yaml" <<EOT
dlp:
  rules:
    - {name: aws-keys, builtin: aws_access_key_id, action: block, severity: high}
    - {name: employee-ids, regex: 'EMP-[0-9]{6}', action: audit}
EOT
mkdir -p "$tmp/root/fs-c"
start_broker

# mount FSID: fs FSID mounted on $tmp/m-FSID.
mount_fs() {
	mkdir -p "$tmp/m-$1"
	mint "$1" "$tmp/hm-$1"
	"$mountc" "unix:$tmp/sock" "$tmp/m-$1" -o "handle=$tmp/hm-$1" \
		>"$tmp/mount-$1.out" 2>&1 ||
		{ echo "findings.sh: mount of $1 failed"; cat "$tmp/mount-$1.out"; exit 1; }
	mnts="$mnts $tmp/m-$1"
}
# put FILE TEXT: write and close; prints close=0 or close=<errno>.
put() {
	python3 - "$1" "$2" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, sys.argv[2].encode())
try:
    os.close(fd)
    print("close=0")
except OSError as e:
    print("close=%d" % e.errno)
EOF
}
mount_fs fs-a
mount_fs fs-b
mkdir "$tmp/m-fs-a/sub"
r1=$(put "$tmp/m-fs-a/sub/a-creds-4e1f.txt" "aws_access_key_id = AKIAIOSFODNN7EXAMPLE")
r2=$(put "$tmp/m-fs-a/a-staff-9c3d.txt" "owner: EMP-123456")
r3=$(put "$tmp/m-fs-b/b-creds-77aa.txt" "key AKIAI44QH8DHBEXAMPLE")
r4=$(put "$tmp/m-fs-b/b-staff-61d0.txt" "EMP-654321")
[ "$r1 $r2 $r3 $r4" = "close=13 close=0 close=13 close=0" ] &&
	ok "blocks fail close with EACCES, audits pass" ||
	fail "writes said '$r1 $r2 $r3 $r4'"

# ask FSID [ARGS-JSON]: dlp_findings' structuredContent for FSID's session.
ask() {
	mint "$1" "$tmp/hq-$1" read
	printf '%s\n' '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}' \
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"dlp_findings\",\"arguments\":${2:-{\}}}}" |
		"$mcp" --handle "$tmp/hq-$1" --broker "unix:$tmp/sock" --stdio \
			2>>"$tmp/mcp.log" | tee -a "$tmp/replies" |
		python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("id") == 1:
        print(json.dumps(m["result"]["structuredContent"]))'
}
ask fs-a >"$tmp/fa"
ask fs-b >"$tmp/fb"
ask fs-c >"$tmp/fc"
ask fs-a '{"limit":1}' >"$tmp/fa1"

# check FILE PYTHON-EXPR-ON-r: r is the structuredContent.
check() {
	python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}
check "$tmp/fa" 'r["available"] and [(f["rule"], f["verdict"], f["path"]) for f in r["findings"]] == [("employee-ids", "audit", "/a-staff-9c3d.txt"), ("aws-keys", "block", "/sub/a-creds-4e1f.txt")]' &&
	ok "fs-a: its two findings, newest first, with rule, verdict and path" ||
	fail "fs-a findings: $(cat "$tmp/fa")"
check "$tmp/fa" 'r["findings"][1]["severity"] == "high" and isinstance(r["findings"][1]["quarantine"], str) and r["findings"][1]["quarantine"] and r["findings"][0]["quarantine"] is None and r["findings"][1]["offset"] == 20 and r["findings"][1]["time"] > 1600000000' &&
	ok "fs-a: severity, quarantine id, offset and time" ||
	fail "fs-a details: $(cat "$tmp/fa")"
check "$tmp/fb" '[(f["rule"], f["path"]) for f in r["findings"]] == [("employee-ids", "/b-staff-61d0.txt"), ("aws-keys", "/b-creds-77aa.txt")]' &&
	ok "fs-b: its own two findings" || fail "fs-b findings: $(cat "$tmp/fb")"
check "$tmp/fc" 'r["available"] and r["findings"] == []' &&
	ok "fs-c: no findings" || fail "fs-c findings: $(cat "$tmp/fc")"
check "$tmp/fa1" '[f["path"] for f in r["findings"]] == ["/a-staff-9c3d.txt"]' &&
	ok "limit 1: only the newest" || fail "limit 1: $(cat "$tmp/fa1")"
for s in b-creds-77aa b-staff-61d0 fs-b AKIAI44QH8DHBEXAMPLE EMP-654321; do
	grep -q -e "$s" "$tmp/fa" "$tmp/fa1" "$tmp/fc" &&
		fail "fs-b's '$s' appears in another session's findings"
done
for s in AKIAIOSFODNN7EXAMPLE AKIAI44QH8DHBEXAMPLE EMP-123456 EMP-654321; do
	grep -q -e "$s" "$tmp/replies" && fail "the secret '$s' appears in a reply"
done
ok "no other filesystem's findings and no secret in any reply"
for f in broker.log mcp.log; do
	clean_log "$tmp/$f"
done
[ $fails = 0 ]
