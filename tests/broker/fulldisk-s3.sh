#!/bin/sh
# A full staging disk under the s3 backend (an 8 MiB tmpfs as the broker's
# --staging-dir), through a real mount against a throw-away radosgw: a
# write past the space fails with ENOSPC at write, fsync or close (never
# EIO, never a hang, never a silent success), what was acknowledged before
# is in S3 intact (read with an independent client), the broker keeps
# serving, and once the file is removed writes work again.  Needs root,
# /dev/fuse and radosgw (exit 77 without).
needs_s3=1
. "$(dirname "$0")/lib.sh"

tiny=$tmp/staging
m=$tmp/m
mkdir -p "$tiny" "$m"
mount -t tmpfs -o size=8m,mode=0700 occfs-fulldisk "$tiny" ||
	{ echo "$me: cannot mount tmpfs, skipped"; exit 77; }
cleanup_extra='umount "$tiny"'

cat >"$tmp/pol/10-fs.yaml" <<EOF
version: 1
filesystems:
  - name: fs1
    s3:
      endpoint: $S3_ENDPOINT
      bucket: $S3_BUCKET
      prefix: fulldisk
      credentials_file: $tmp/cred
      rgw_quirks: true
    intents: [write]
tokens:
  public_key: $tmp/pub
EOF
"$broker" -f --listen "unix:$tmp/sock" --policy "$tmp/pol" \
	--staging-dir "$tiny" 2>"$tmp/broker.log" &
pid=$!
i=0
while [ ! -S "$tmp/sock" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
"$ctl" token mint --key "$tmp/key" --fsid fs1 --intent write --ttl 600 \
	--out "$tmp/h" >/dev/null || { fail "mint"; finish; }
mnts=$m
"$mountc" "unix:$tmp/sock" "$m" -o "handle=$tmp/h" >"$tmp/mount.out" 2>&1 ||
	{ fail "mount: $(cat "$tmp/mount.out")"; finish; }

# write PATH MIB [fsync]: MIB MiB through the mount; prints where it
# failed and the error name ("ok" when it did not).
write() {
	python3 - "$@" <<'EOF'
import errno, os, sys
path, mib = sys.argv[1], int(sys.argv[2])
sync = len(sys.argv) > 3
step = "open"
try:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    step = "write"
    block = os.urandom(1 << 20)
    for _ in range(mib):
        os.write(fd, block)
    if sync:
        step = "fsync"
        os.fsync(fd)
    step = "close"
    os.close(fd)
    print("ok")
except OSError as e:
    print(step, errno.errorcode.get(e.errno, e.errno))
EOF
}

dd if=/dev/urandom of="$tmp/keep" bs=1M count=2 2>/dev/null
cp "$tmp/keep" "$m/keep" && sync -f "$m/keep" || fail "a 2 MiB file on an 8 MiB disk"

r=$(write "$m/big" 16 fsync)
case $r in
*ENOSPC) ok "16 MiB with fsync on a full disk: $r" ;;
*) fail "16 MiB with fsync on a full disk: '$r', want ENOSPC" ;;
esac
rm -f "$m/big" || fail "remove the partial file"
r=$(write "$m/big2" 16)
case $r in
*ENOSPC) ok "16 MiB, no fsync, on a full disk: $r (the error reaches the application)" ;;
*) fail "16 MiB without fsync on a full disk: '$r', want ENOSPC at write or close" ;;
esac

kill -0 "$pid" 2>/dev/null && ok "the broker keeps running" ||
	fail "the broker died on a full disk"
$s3cli get fulldisk/fs1/keep "$tmp/keep.s3" 2>"$tmp/s3.err"
cmp -s "$tmp/keep" "$m/keep" && cmp -s "$tmp/keep" "$tmp/keep.s3" &&
	ok "the file written before is intact (mount and S3)" ||
	fail "the file written before the disk filled changed"

rm -f "$m/big2" || fail "remove the partial file"
r=$(write "$m/again" 3 fsync)
[ "$r" = ok ] && ok "writes work again once space is freed" ||
	fail "write after freeing space: $r"
$s3cli get fulldisk/fs1/again "$tmp/again.s3" 2>/dev/null &&
	[ "$(stat -c %s "$tmp/again.s3")" = 3145728 ] ||
	fail "the file written after freeing space is not in S3"
grep -q "Input/output error" "$tmp/broker.log" &&
	fail "the broker logged EIO for a full disk"

umount "$m"
mnts=
finish
