#!/bin/sh
# Directories a mount has just made (mountc/newdir.h): LOOKUPs of names
# not made through the mount are answered "no such name" by mountc for
# entry_timeout seconds after the MKDIR, without a round trip.  Checks,
# with two real mounts A and B of one filesystem on the local backend:
#   - names A made (create, mkdir, symlink, link, rename into) are found
#     again after the kernel dropped its dentries, within the window;
#   - a name B made in A's new directory is not seen by A within the
#     window (no LOOKUP was sent: that is the saving) but is once it ends,
#     and O_EXCL by A still gets EEXIST from the broker meanwhile;
#   - rmdir and a re-made directory of the same name start afresh;
#   - with entry_timeout=0 nothing is answered locally;
#   - the broker gets 3 requests per small file made, not 4.
# Needs root and /dev/fuse (skips otherwise).  Run by `make check`.
. "$(dirname "$0")/../broker/lib.sh"

mkdir -p "$tmp/root/fs1" "$tmp/a" "$tmp/b"

# mnt DIR [OPTIONS]: mount fs1 on DIR
mnt() {
	"$ctl" token mint --key "$tmp/key" --fsid fs1 --intent write \
		--out "$tmp/h.$$" || exit 1
	"$mountc" "unix:$tmp/sock" "$1" -o "handle=$tmp/h.$$${2:+,$2}" ||
		{ echo "$me: mount of $1 failed"; exit 1; }
	mnts="$mnts $1"
}
drop() { sync; echo 2 >/proc/sys/vm/drop_caches; }

start_broker --root "$tmp/root" --token-pubkey "$tmp/pub"
mnt "$tmp/a" entry_timeout=30
mnt "$tmp/b"
A=$tmp/a
B=$tmp/b

# ---- names made through the mount stay found ----------------------------
mkdir "$A/d" "$A/e"
echo x >"$A/e/moved"
i=0
while [ $i -lt 20 ]; do
	echo "$i" >"$A/d/f$i"
	i=$((i + 1))
done
mkdir "$A/d/sub"
ln -s f0 "$A/d/sym"
ln "$A/d/f1" "$A/d/hard"
mv "$A/e/moved" "$A/d/moved"
drop
miss=
for n in f0 f7 f19 sub sym hard moved; do
	[ -e "$A/d/$n" ] || [ -L "$A/d/$n" ] || miss="$miss $n"
done
[ -z "$miss" ] && ok "names made in a new directory are found after a dentry drop" ||
	fail "not found after a dentry drop:$miss"
[ "$(cat "$A/d/f7")" = 7 ] && ok "and read back" || fail "f7 reads '$(cat "$A/d/f7")'"
[ "$(ls "$A/d" | wc -l)" = 24 ] && ok "the listing has all 24" ||
	fail "listing: $(ls "$A/d" | wc -l) entries"

# ---- a name made through another mount -----------------------------------
mkdir "$A/n"
[ -d "$B/n" ] || fail "B does not see A's new directory"
echo from-b >"$B/n/x"
[ -e "$A/n/x" ] && fail "A saw B's name at once: the LOOKUP was sent" ||
	ok "within the window A answers B's name as absent itself"
if python3 -c "
import os, sys
try:
    os.open('$A/n/x', os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
except FileExistsError:
    sys.exit(0)
sys.exit(1)"; then
	ok "O_EXCL create of that name still gets EEXIST from the broker"
else
	fail "O_EXCL create of a name B made did not fail with EEXIST"
fi
[ "$(cat "$B/n/x")" = from-b ] && ok "B's file is intact" || fail "B's file changed"

# rmdir forgets the directory; one made again under the name starts afresh
rm -f "$B/n/x"
rmdir "$A/n"
mkdir "$A/n"
echo again >"$A/n/y"
drop
[ "$(cat "$A/n/y" 2>/dev/null)" = again ] && ok "a re-made directory's own names are found" ||
	fail "a re-made directory lost its own name"

# ---- the window ends ------------------------------------------------------
umount "$A"
mnt "$A" entry_timeout=1
mkdir "$A/w"
echo late >"$B/w/z"
sleep 1.2
[ "$(cat "$A/w/z" 2>/dev/null)" = late ] &&
	ok "after entry_timeout A sees B's name" ||
	fail "A does not see B's name after entry_timeout"

# ---- entry_timeout=0: off ----------------------------------------------------
umount "$A"
mnt "$A" entry_timeout=0
mkdir "$A/o"
echo now >"$B/o/z"
[ "$(cat "$A/o/z" 2>/dev/null)" = now ] &&
	ok "with entry_timeout=0 A sees B's name at once" ||
	fail "with entry_timeout=0 A does not see B's name"

# ---- the saving: requests per file ----------------------------------------
umount "$A"
umount "$B"
mnts=
# write-through: no SETATTR of times after close muddles the count
mnt "$A" nowriteback
n=100
small_files "$A/many" $n
umount "$A"
mnts=
sleep 0.2
r=$(session_requests)
# per file CREATE, WRITE, RELEASE (a LOOKUP more without the shortcut)
if [ -n "$r" ] && [ "$r" -le $((3 * n + 20)) ]; then
	ok "$n files in a new directory: $r broker requests (no LOOKUPs)"
else
	fail "$n files in a new directory: ${r:-?} broker requests, want <= $((3 * n + 20))"
fi

finish
