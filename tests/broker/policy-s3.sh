#!/bin/sh
# brokerfs --policy with an s3 filesystem entry against a throw-away
# radosgw: the entry's backend starts with the broker in its own staging
# directory, the quota is counted from a listing of what the prefix
# already holds, writes past it fail with EDQUOT without losing what was
# written, creates past the inode quota fail, df shows the quota, and a
# reload raises it.  Needs root and /dev/fuse; skips when radosgw cannot
# run here.  Run by `make check` from the build directory.
needs_s3=1
. "$(dirname "$0")/lib.sh"

m=$tmp/mnt
mnts=$m
mkdir -p "$m"
write_policy() { # bytes inodes
	cat >"$tmp/pol/10-fs.yaml" <<EOF
version: 1
filesystems:
  - name: "s3q-*"
    s3:
      endpoint: $S3_ENDPOINT
      bucket: $S3_BUCKET
      prefix: quota
      credentials_file: $tmp/cred
      rgw_quirks: true
    intents: [read, write]
    quota: {bytes: $1, inodes: $2}
tokens:
  public_key: $tmp/pub
EOF
}
write_policy 4MiB 6

"$broker" -n --listen "unix:$tmp/sock" --policy "$tmp/pol" \
	--staging-dir "$tmp/staging" >"$tmp/n.out" 2>&1 ||
	{ fail "brokerfs -n on the s3 policy"; cat "$tmp/n.out"; }
"$broker" -f --listen "unix:$tmp/sock" --policy "$tmp/pol" \
	--staging-dir "$tmp/staging" 2>"$tmp/broker.log" &
pid=$!
i=0
while [ ! -S "$tmp/sock" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
		echo "policy-s3.sh: broker did not start"; cat "$tmp/broker.log"
		exit 1
	fi
	sleep 0.1
done
grep -q "filesystem entry 's3q-\*': s3 backend started" "$tmp/broker.log" ||
	fail "the s3 entry did not start with the broker"
ls -d "$tmp/staging"/s3q-_.* >/dev/null 2>&1 ||
	fail "no staging directory of the entry: $(ls "$tmp/staging")"

"$ctl" token mint --key "$tmp/key" --fsid s3q-a --intent write \
	--out "$tmp/h" || exit 1
"$mountc" "unix:$tmp/sock" "$m" -o "handle=$tmp/h" >"$tmp/mount.out" 2>&1 ||
	{ fail "mount: $(cat "$tmp/mount.out")"; tail "$tmp/broker.log"; exit 1; }

dd if=/dev/urandom of="$tmp/a" bs=1M count=3 2>/dev/null
cp "$tmp/a" "$m/a" || fail "3 MiB under a 4 MiB quota"
dd if=/dev/urandom of="$m/b" bs=1M count=4 conv=fsync >"$tmp/dd.out" 2>&1 &&
	fail "dd past the quota succeeded"
if grep -q "Disk quota exceeded" "$tmp/dd.out"; then
	ok "dd past the byte quota: $(grep -m1 quota "$tmp/dd.out")"
else
	fail "dd past the quota: no EDQUOT"; cat "$tmp/dd.out"
fi
cmp -s "$tmp/a" "$m/a" || fail "data written before the quota changed"
set -- $(stat -f -c '%S %b %f %c' "$m")
[ $(($1 * $2)) = $((4 * 1024 * 1024)) ] || fail "statfs size $1 x $2"
[ "$3" -le 1 ] || fail "statfs free blocks $3 with the quota used up"
[ "$4" = 6 ] || fail "statfs files $4, want 6"
df -h "$m" | sed 's/^/  /'
rm -f "$m/b"
n=0
while [ $n -lt 8 ]; do
	mkdir "$m/d$n" 2>"$tmp/mkdir.out" || break
	n=$((n + 1))
done
if [ $n = 5 ] && grep -q "Disk quota exceeded" "$tmp/mkdir.out"; then
	ok "inode quota: 5 directories beside a file, then EDQUOT"
else
	fail "inode quota: made $n directories: $(cat "$tmp/mkdir.out")"
fi
write_policy 16MiB 100
kill -HUP $pid
sleep 0.5
dd if=/dev/urandom of="$m/big" bs=1M count=8 conv=fsync 2>"$tmp/dd2.out" ||
	fail "write after raising the quota: $(cat "$tmp/dd2.out")"
touch "$m/y" || fail "create after raising the inode quota"
umount "$m"

# A new broker counts what the prefix holds: a, big, y and d0..d4.
kill $pid && wait $pid
pid=
"$broker" -f --listen "unix:$tmp/sock" --policy "$tmp/pol" \
	--staging-dir "$tmp/staging" 2>>"$tmp/broker.log" &
pid=$!
sleep 1
"$ctl" token mint --key "$tmp/key" --fsid s3q-a --intent write \
	--out "$tmp/h" || exit 1
"$mountc" "unix:$tmp/sock" "$m" -o "handle=$tmp/h" >"$tmp/mount.out" 2>&1 ||
	fail "second mount: $(cat "$tmp/mount.out")"
grep -q "s3: s3q-a: $((11 * 1024 * 1024)) bytes in 8 objects" "$tmp/broker.log" ||
	fail "usage listed at first use: $(grep 'bytes in' "$tmp/broker.log")"
set -- $(stat -f -c '%S %b %f %c %d' "$m")
[ $(($1 * ($2 - $3))) = $((11 * 1024 * 1024)) ] && [ $(($4 - $5)) = 8 ] ||
	fail "statfs after restart: $*"
cmp -s "$tmp/a" "$m/a" || fail "a after restart"
umount "$m"
kill $pid && wait $pid
brc=$?
pid=
[ $brc = 0 ] || fail "broker exited with status $brc on SIGTERM"
finish
