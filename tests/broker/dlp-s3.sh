#!/bin/sh
# DLP on the s3 backend through a real mount against a throw-away radosgw,
# checked with an independent client (tests/s3/s3cli.py): mode strict
# blocks files with an AWS key id or a card number at close (EACCES) and
# the object never appears; the quarantine lists them, delete removes one
# and release makes the other appear after the broker's next start; an
# audit rule lets its file through; a clean file passes; a key split
# across two multipart parts, and one completed by a small change to a
# large object, are found; mode visible uploads parts while a slow hook
# scans but shows no object until the pass, and aborts on a block.  Needs
# root and /dev/fuse; skips when radosgw cannot run.
needs_s3=1
. "$(dirname "$0")/lib.sh"

m=$tmp/mnt
mnts=$m
mkdir -p "$m"
cat >"$tmp/hook-slow" <<'EOF'
#!/bin/sh
cat >/dev/null
sleep 4
echo allow
EOF
chmod 755 "$tmp/hook-slow"
write_policy() { # mode
	cat >"$tmp/pol/10-fs.yaml" <<EOF
version: 1
filesystems:
  - name: dfs
    s3:
      endpoint: $S3_ENDPOINT
      bucket: $S3_BUCKET
      prefix: dlp
      credentials_file: $tmp/cred
      rgw_quirks: true
      part_size: 5MiB
    intents: [read, write]
tokens:
  public_key: $tmp/pub
dlp:
  mode: $1
  rules:
    - {name: aws-keys, builtin: aws_access_key_id, action: block}
    - {name: cards, builtin: card_number, action: block}
    - {name: employee-ids, regex: 'EMP-[0-9]{6}', action: audit}
    - name: slow-scanner
      hook: {program: $tmp/hook-slow, timeout: 20s}
      files: ["*.vis"]
      action: block
EOF
}
write_policy strict
start_broker() {
	"$broker" -f --listen "unix:$tmp/sock" --policy "$tmp/pol" \
		--staging-dir "$tmp/staging" 2>>"$tmp/broker.log" &
	pid=$!
	i=0
	while [ ! -S "$tmp/sock" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
			echo "dlp-s3.sh: broker did not start"; cat "$tmp/broker.log"
			exit 1
		fi
		sleep 0.1
	done
	# mountc scrubs the handle file once read: a new one each mount
	"$ctl" token mint --key "$tmp/key" --fsid dfs --intent write \
		--out "$tmp/h" || exit 1
	"$mountc" "unix:$tmp/sock" "$m" -o "handle=$tmp/h" >"$tmp/mount.out" 2>&1 ||
		{ echo "mount: $(cat "$tmp/mount.out")"; tail "$tmp/broker.log"; exit 1; }
}
stop_broker() {
	umount "$m"
	kill "$pid"
	wait "$pid"
	pid=
}
start_broker

cat >"$tmp/writer.py" <<'EOF'
# writer.py FILE [trunc|keep] then ops: "@OFF" seeks, "xN" writes N x's,
# "zN" writes N MiB
# of filler in 1 MiB writes, anything else is written as is.
import os, sys
fl = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if sys.argv[2] == "trunc" else 0)
fd = os.open(sys.argv[1], fl, 0o644)
for op in sys.argv[3:]:
    if op.startswith("@"):
        os.lseek(fd, int(op[1:]), 0)
    elif op.startswith("x"):
        os.write(fd, b"x" * int(op[1:]))
    elif op.startswith("z"):
        for i in range(int(op[1:])):
            os.write(fd, (b"lorem ipsum dolor sit amet\n" * 40000)[:1 << 20])
    else:
        os.write(fd, op.encode())
try:
    os.close(fd)
    print("close=0")
except OSError as e:
    print("close=%d" % e.errno)
EOF
w() { python3 "$tmp/writer.py" "$@"; }
exists() { $s3cli exists "dlp/dfs/$1" 2>/dev/null; }
qlist() { "$ctl" quarantine list --staging-dir "$tmp/staging"; }
uploads() { # in-progress multipart uploads of key: "uploadid parts" lines
	python3 - "$1" <<'EOF'
import sys, re
sys.path.insert(0, sys.argv[0] and "%s/tests/s3" % __import__("os").environ["SRC"])
import s3cli
s = s3cli.S3()
st, h, d = s.request("GET", None, [("uploads", "")])
for key, uid in re.findall(rb"<Key>([^<]*)</Key>\s*<UploadId>([^<]*)</UploadId>", d):
    if key.decode() != sys.argv[1]:
        continue
    st, h, p = s.request("GET", key.decode(), [("uploadId", uid.decode())])
    print(uid.decode(), len(re.findall(rb"<PartNumber>", p)))
EOF
}
export SRC="$top_srcdir"

# ---- strict: blocks ---------------------------------------------------------------------
r=$(w "$m/creds.txt" trunc "aws_access_key_id = AKIAIOSFODNN7EXAMPLE")
[ "$r" = close=13 ] && ok "AWS key id: close failed with EACCES" || fail "AWS key: '$r'"
r=$(w "$m/order.json" trunc '{"card": "4111-1111-1111-1111"}')
[ "$r" = close=13 ] && ok "card number: close failed with EACCES" || fail "card: '$r'"
exists creds.txt && fail "creds.txt reached S3"
exists order.json && fail "order.json reached S3"
cat "$m/creds.txt" 2>/dev/null | grep -q AKIA && fail "guest reads blocked creds.txt back"
r=$(w "$m/split.bin" trunc x$((5 * 1048576 - 10)) " AKIAIOSFODNN7EXAMPLE " z6)
[ "$r" = close=13 ] && ok "key across the boundary of two 5 MiB parts found" ||
	fail "split across parts: '$r'"
exists split.bin && fail "split.bin reached S3"
[ -z "$(uploads dlp/dfs/split.bin)" ] || fail "strict mode started a multipart upload"
qlist >"$tmp/q1"
n=$(grep -c '^q' "$tmp/q1")
[ "$n" = 3 ] && ok "quarantine lists the 3 blocked files" ||
	{ fail "quarantine lists $n, want 3"; cat "$tmp/q1"; }
grep -q "aws-keys .*dlp/dfs/creds.txt" "$tmp/q1" || { fail "list: rule/key"; cat "$tmp/q1"; }
grep -q "dlp: blocked: rule cards .*path=/order.json.*quarantine=q" "$tmp/broker.log" ||
	fail "no block log line for order.json"

# ---- audit, clean, small change to a large object ----------------------------------------------
r=$(w "$m/staff.csv" trunc "ann,EMP-123456")
[ "$r" = close=0 ] && exists staff.csv && ok "audit rule: object stored" || fail "audit: '$r'"
grep -q "dlp: finding: rule employee-ids .*path=/staff.csv" "$tmp/broker.log" ||
	fail "audit finding not logged"
r=$(w "$m/clean.txt" trunc "qty 2 of 12")
[ "$r" = close=0 ] && exists clean.txt && ok "clean file stored" || fail "clean: '$r'"
r=$(w "$m/big.txt" trunc z12 "token AKIA" z1)
[ "$r" = close=0 ] || fail "big clean file: '$r'"
$s3cli get dlp/dfs/big.txt "$tmp/big.before" || fail "big.txt not in S3"
r=$(w "$m/big.txt" keep "@$((12 * 1048576 + 10))" "IOSFODNN7EXAMPLE ")
[ "$r" = close=13 ] && ok "small change completing a key with base bytes found" ||
	fail "small change: '$r'"
$s3cli get dlp/dfs/big.txt "$tmp/big.after"
cmp -s "$tmp/big.before" "$tmp/big.after" && ok "S3 still holds the accepted version" ||
	fail "big.txt changed in S3"

# ---- delete and release -----------------------------------------------------------------------------
qlist >"$tmp/q2"
id=$(awk '/order.json/ {print $1}' "$tmp/q2")
"$ctl" quarantine delete "$id" --staging-dir "$tmp/staging" >/dev/null || fail "delete"
qlist | grep -q "$id" && fail "deleted entry still listed"
id=$(awk '/creds.txt/ {print $1}' "$tmp/q2")
"$ctl" quarantine release "$id" --staging-dir "$tmp/staging" >/dev/null || fail "release"
qlist | grep -q "$id" && fail "released entry still listed"
exists creds.txt && fail "released object uploaded before the restart"
stop_broker
start_broker
exists creds.txt && $s3cli get dlp/dfs/creds.txt | grep -q AKIAIOSFODNN7EXAMPLE &&
	ok "released object uploaded at the broker's next start, unscanned" ||
	{ fail "released object not in S3 after restart"; tail -5 "$tmp/broker.log"; }

# ---- visible -----------------------------------------------------------------------------------------
write_policy visible
kill -HUP $pid
sleep 0.5
w "$m/big.vis" trunc z14 >"$tmp/vis.out" &
wp=$!
seen=
i=0
while [ $i -lt 40 ] && kill -0 $wp 2>/dev/null; do
	u=$(uploads dlp/dfs/big.vis)
	if [ -n "$u" ] && [ "${u#* }" -ge 1 ] && ! exists big.vis; then
		seen=$u
		break
	fi
	sleep 0.2
	i=$((i + 1))
done
wait $wp
[ -n "$seen" ] && ok "visible: parts uploaded during the scan, no object yet ($seen)" ||
	fail "visible: no upload in progress seen while scanning"
[ "$(cat "$tmp/vis.out")" = close=0 ] && exists big.vis &&
	ok "visible: object appears after the pass" || fail "visible pass: $(cat "$tmp/vis.out")"
r=$(w "$m/bad.vis" trunc z7 " card 4111 1111 1111 1111 " z5)
[ "$r" = close=13 ] && ok "visible: block fails close with EACCES" || fail "visible block: '$r'"
exists bad.vis && fail "visible: blocked object appeared"
[ -z "$(uploads dlp/dfs/bad.vis)" ] && ok "visible: multipart upload aborted" ||
	fail "visible: upload of bad.vis left in progress"

finish
