#!/bin/sh
# destroy on an s3 filesystem is an ordered teardown: the guest is cut, the
# data its still-open files staged in the broker is uploaded, and only then
# does occfsctl report "staged data flushed".  The objects are read back
# right after destroy returns, with an S3 client that shares no code with
# the broker.  A destroy whose uploads fail (S3 unreachable) must say the
# data is NOT confirmed flushed, within a bounded time, and the data stays
# staged.  Needs root, /dev/fuse and radosgw (exit 77 without it).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# A throw-away radosgw for this test (with-rgw exits 77 where none can run).
[ -n "${OCCFS_S3_ENV:-}" ] ||
	exec "$top_srcdir/tests/s3/with-rgw" sh "$0" "$@"
. "$(dirname "$0")/lib.sh"
s3cli="python3 $top_srcdir/tests/s3/s3cli.py"
set -a
. "$OCCFS_S3_ENV"
set +a
# The broker reaches radosgw through the fault proxy, which can hold the
# uploads of the open files back: the destroy's acknowledgement must then
# wait for them, and a reader right after it must find them in S3.
: >"$tmp/fault"
python3 "$top_srcdir/tests/s3/faultproxy.py" --upstream "${S3_ENDPOINT#http://}" \
	--control "$tmp/fault" --log "$tmp/proxy.log" \
	--port-file "$tmp/proxy.port" 2>>"$tmp/proxy.err" &
proxy_pid=$!
bgpids="$bgpids $proxy_pid"
wait_for 10 test -s "$tmp/proxy.port" || { fail "fault proxy"; finish; }
(umask 077 && printf 'access_key = %s\nsecret_key = %s\n' "$S3_ACCESS_KEY" \
	"$S3_SECRET_KEY" >"$tmp/cred")
cat >"$tmp/pol/15-s3.yaml" <<EOF
filesystems:
  - name: "s3-*"
    s3:
      endpoint: http://127.0.0.1:$(cat "$tmp/proxy.port")
      bucket: $S3_BUCKET
      prefix: destroy
      credentials_file: $tmp/cred
      rgw_quirks: true
    intents: [write]
    session: {ttl: 1h}
EOF

start_ctld
start_broker

# mount_wt NAME: mount NAME's handle without the writeback cache, so that
# what the guest writes reaches the broker at write(), not at close.
mount_wt() {
	mkdir -p "$tmp/m.$1"
	mnts="$mnts $tmp/m.$1"
	"$mountc" "unix:$BSOCK" "$tmp/m.$1" \
		-o "handle=$tmp/h/$1,nowriteback" >"$tmp/mount.out" 2>&1
}

# hold NAME FILE SRC: write SRC into FILE through the mount and keep it
# open (no close, no fsync) until killed; FILE.held appears once written.
hold() {
	python3 -c '
import os, signal, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
with open(sys.argv[2], "rb") as f:
    data = f.read()
off = 0
while off < len(data):
    off += os.write(fd, data[off:])
open(sys.argv[3], "w").close()
signal.pause()
' "$tmp/m.$1/$2" "$3" "$tmp/$1.$2.held" 2>/dev/null &
	bgpids="$bgpids $!"
	wait_for 20 test -e "$tmp/$1.$2.held"
}

# ---- destroy uploads what open files staged, then acknowledges ----------------
sid=$(create s3-a a) || { fail "create: $(cat "$tmp/a.create")"; finish; }
mount_wt a || { fail "mount: $(cat "$tmp/mount.out")"; finish; }
dd if=/dev/urandom of="$tmp/big" bs=1M count=12 2>/dev/null
dd if=/dev/urandom of="$tmp/small" bs=4k count=3 2>/dev/null
cp "$tmp/small" "$tmp/m.a/closed" || fail "write a closed file"
hold a open-big "$tmp/big" || fail "write the open big file"
hold a open-small "$tmp/small" || fail "write the open small file"
for f in open-big open-small; do
	$s3cli exists destroy/s3-a/$f 2>/dev/null &&
		fail "$f is in S3 before the destroy (nothing to test)"
done

echo "slow delay=1.5 method=PUT path=open" >"$tmp/fault"
"$ctl" session destroy "$sid" >"$tmp/d" 2>&1 || fail "destroy: $(cat "$tmp/d")"
# Read S3 at once: the acknowledgement must mean "in S3".
$s3cli get destroy/s3-a/open-big "$tmp/got-big" 2>"$tmp/s3err"
cmp -s "$tmp/big" "$tmp/got-big" &&
	ok "open 12 MiB file in S3 with the right bytes when destroy returned" ||
	fail "open big file not in S3 at the ack: $(cat "$tmp/s3err")"
$s3cli get destroy/s3-a/open-small "$tmp/got-small" 2>"$tmp/s3err"
cmp -s "$tmp/small" "$tmp/got-small" && ok "open small file in S3 at the ack" ||
	fail "open small file not in S3 at the ack: $(cat "$tmp/s3err")"
$s3cli get destroy/s3-a/closed "$tmp/got-closed" 2>/dev/null
cmp -s "$tmp/small" "$tmp/got-closed" || fail "closed file not in S3"
grep -q "destroyed: 1 connections cut, 1 of 1 brokers acknowledged.*; staged data flushed" \
	"$tmp/d" && ok "destroy: $(cat "$tmp/d")" ||
	fail "destroy output: $(cat "$tmp/d")"
ls "$tmp/m.a" >/dev/null 2>"$tmp/ls" && fail "the destroyed session still works"
grep -q "Permission denied" "$tmp/ls" || fail "guest after destroy: $(cat "$tmp/ls")"
grep -q "PUT .*open-big.* slow" "$tmp/proxy.log" ||
	fail "the proxy did not hold the upload back: $(cat "$tmp/proxy.log")"
echo pass >"$tmp/fault"
for p in $bgpids; do [ "$p" = "$proxy_pid" ] || kill "$p" 2>/dev/null; done
bgpids=$proxy_pid

# ---- the backend fails: the destroy says so, in bounded time, data kept -------
sid=$(create s3-b b) || { fail "create b: $(cat "$tmp/b.create")"; finish; }
mount_wt b || { fail "mount b: $(cat "$tmp/mount.out")"; finish; }
hold b open "$tmp/small" || fail "write the open file of b"
kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null # S3 unreachable
start=$(date +%s)
"$ctl" session destroy "$sid" >"$tmp/d" 2>&1 || fail "destroy b: $(cat "$tmp/d")"
took=$(($(date +%s) - start))
grep -q "staged data NOT confirmed flushed" "$tmp/d" &&
	ok "failed uploads reported: $(cat "$tmp/d") (${took} s)" ||
	fail "destroy with S3 down: $(cat "$tmp/d")"
[ "$took" -le 60 ] || fail "destroy with S3 down took $took s"
grep -q "s3-b: .*open left staged" "$tmp/broker.log" ||
	fail "no log line for the file left staged"
staged=no
for f in $(find "$tmp/staging" -type f -size 12k); do
	cmp -s "$f" "$tmp/small" && staged=yes
done
[ $staged = yes ] && ok "the data stays staged" ||
	fail "the open file's data is not in the staging directory"
for p in $bgpids; do kill "$p" 2>/dev/null; done
bgpids=
finish
