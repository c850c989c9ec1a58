#!/bin/sh
# A full disk under the broker, through a real mount: the local backend's
# root, or with FULLDISK_BACKEND=s3 (fulldisk-s3.sh) the s3 backend's
# --staging-dir against a throw-away radosgw, on an 8 MiB tmpfs.  A write
# past the space fails with ENOSPC at write, fsync or close (never EIO,
# never a hang, never a silent success), what was acknowledged before is
# intact in the backend (in S3: read with an independent client), the
# broker keeps serving, and once space is freed writes work again.  Needs
# root and /dev/fuse (and radosgw for s3: exit 77 without).
backend=${FULLDISK_BACKEND:-local}
[ "$backend" = s3 ] && needs_s3=1
. "$(dirname "$0")/lib.sh"

tiny=$tmp/staging
m=$tmp/m
mkdir -p "$tiny" "$m"
mount -t tmpfs -o size=8m,mode=0700 occfs-fulldisk "$tiny" ||
	{ echo "$me: cannot mount tmpfs, skipped"; exit 77; }
cleanup_extra='umount "$tiny"'

if [ "$backend" = s3 ]; then
	cat >"$tmp/pol/10-fs.yaml" <<EOP
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
EOP
	start_broker --policy "$tmp/pol" --staging-dir "$tiny"
else
	start_broker --root "$tiny" --token-pubkey "$tmp/pub"
fi
"$ctl" token mint --key "$tmp/key" --fsid fs1 --intent write --ttl 600 \
	--out "$tmp/h" >/dev/null || { fail "mint"; finish; }
mnts=$m
"$mountc" "unix:$tmp/sock" "$m" -o "handle=$tmp/h" >"$tmp/mount.out" 2>&1 ||
	{ fail "mount: $(cat "$tmp/mount.out")"; finish; }

# write PATH MIB [fsync]: MIB MiB through the mount; prints where it
# failed and the error name ("ok" when it did not).
write() {
	python3 - "$@" <<'EOP'
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
EOP
}

# in_backend NAME COPY: the backend's bytes of NAME into COPY
in_backend() {
	if [ "$backend" = s3 ]; then
		$s3cli get "fulldisk/fs1/$1" "$2" 2>"$tmp/s3.err"
	else
		cp "$tiny/fs1/$1" "$2"
	fi
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
in_backend keep "$tmp/keep.b"
cmp -s "$tmp/keep" "$m/keep" && cmp -s "$tmp/keep" "$tmp/keep.b" &&
	ok "the file written before is intact (mount and $backend backend)" ||
	fail "the file written before the disk filled changed"

rm -f "$m/big2" || fail "remove the partial file"
r=$(write "$m/again" 3 fsync)
[ "$r" = ok ] && ok "writes work again once space is freed" ||
	fail "write after freeing space: $r"
in_backend again "$tmp/again.b" &&
	[ "$(stat -c %s "$tmp/again.b")" = 3145728 ] ||
	fail "the file written after freeing space is not in the backend"
grep -q "Input/output error" "$tmp/broker.log" &&
	fail "the broker logged EIO for a full disk"

umount "$m"
mnts=
finish
