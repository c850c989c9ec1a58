#!/bin/sh
# HELLO feature grants on the local backend, seen by a real mountc: NOFLUSH
# is granted to a session without DLP and refused while a DLP scanner is
# active; PATTR (the parent directory's attributes in entry operations'
# replies) is granted either way.  And through a mount with PATTR, the
# directory attributes mountc answers from those replies are the ones on
# the host after each entry operation (nlink after mkdir and rmdir, mode
# after chmod, mtime after create, unlink and rename), and one GETATTR
# round trip per file created is saved.  Needs root and /dev/fuse (skips
# otherwise).  Run by `make check` from the build dir.
. "$(dirname "$0")/../broker/lib.sh"
mnt= # the mount in use (also in $mnts, which lib.sh detaches at exit)

stop_broker() {
	kill "$pid" && wait "$pid"
	pid=
}

# mount_fs FSID [AUD]: mount it on $tmp/m with -v; mountc's log in $tmp/mount.out
mount_fs() {
	set -- "$1" ${2:+--aud "$2"}
	"$ctl" token mint --key "$tmp/key" --fsid "$@" --intent write \
		--out "$tmp/h" || exit 1
	"$mountc" -v "unix:$tmp/sock" "$tmp/m" -o "handle=$tmp/h" \
		>"$tmp/mount.out" 2>&1 ||
		{ echo "$me: mount failed"; cat "$tmp/mount.out"; exit 1; }
	mnt=$tmp/m
	mnts=$mnt
}

unmount_fs() {
	umount "$mnt"
	mnt=
	mnts=
}

# features: what mountc logged the broker granted
features() {
	sed -n 's/.*, features:\(.*\)$/\1/p' "$tmp/mount.out"
}


# same DIR WHAT: stat of the mount's DIR equals the host's
same() {
	a=$(stat -c '%h %a %Y %Z %s' "$tmp/m/$1")
	b=$(stat -c '%h %a %Y %Z %s' "$tmp/root/fs1/$1")
	[ "$a" = "$b" ] && ok "$2: $1 is '$a' as on the host" ||
		fail "$2: $1 is '$a' through the mount, '$b' on the host"
}

mkdir -p "$tmp/root/fs1" "$tmp/m" "$tmp/pol"

# ---- no DLP: NOFLUSH and PATTR -------------------------------------------
start_broker --root "$tmp/root" --token-pubkey "$tmp/pub"
mount_fs fs1
f=$(features)
case "$f" in
*NOFLUSH*) ok "no DLP: NOFLUSH granted ($f)" ;;
*) fail "no DLP: NOFLUSH not granted ($f)"; cat "$tmp/mount.out" ;;
esac
case "$f" in
*PATTR*) ok "no DLP: PATTR granted" ;;
*) fail "no DLP: PATTR not granted ($f)" ;;
esac

# Every check below stats the directory right after an entry operation in
# it, when the kernel asks for its attributes and mountc answers from the
# reply.  Timestamps move on by sleeping past the second.
mkdir "$tmp/m/d"
same d "mkdir"
mkdir "$tmp/m/d/s1"
same d "mkdir inside"
sleep 1.1
: >"$tmp/m/d/f1"
same d "create"
chmod 700 "$tmp/m/d"
: >"$tmp/m/d/f2"
same d "chmod, then create"
sleep 1.1
rm "$tmp/m/d/f1"
same d "unlink"
rmdir "$tmp/m/d/s1"
same d "rmdir"
mkdir "$tmp/m/e"
sleep 1.1
mv "$tmp/m/d/f2" "$tmp/m/e/f2"
same d "rename (source)"
same e "rename (target)"
ln -s target "$tmp/m/d/l"
same d "symlink"
ln "$tmp/m/e/f2" "$tmp/m/d/f3"
same d "link"
# Creates from four processes at once, with chmods of the directory
# among them: whatever reply came last, the directory seen afterwards is
# the host's (overlapping calls must not leave an older copy behind).
mkdir "$tmp/m/p"
kids=
for k in 1 2 3 4; do
	(
		i=0
		while [ $i -lt 40 ]; do
			: >"$tmp/m/p/f$k.$i"
			[ $((i % 10)) = 0 ] && chmod $((750 + k)) "$tmp/m/p"
			i=$((i + 1))
		done
	) &
	kids="$kids $!"
done
wait $kids
: >"$tmp/m/p/last"
same p "concurrent creates and chmods"
[ "$(ls "$tmp/m/p" | wc -l)" = 161 ] && ok "161 entries after them" ||
	fail "$(ls "$tmp/m/p" | wc -l) entries after the concurrent creates"
[ "$(ls "$tmp/m/d" | tr '\n' ' ')" = "f3 l " ] &&
	ok "listing after the entry operations" ||
	fail "listing: $(ls "$tmp/m/d" | tr '\n' ' ')"
unmount_fs
stop_broker

# The saved round trip: with mountc -d (foreground, debug log) each
# GETATTR of the directory answered from the last CREATE's reply is
# logged; the kernel asks before every create but the first.  The broker
# counts the requests it got: CREATE, WRITE and RELEASE per file (no
# LOOKUP: the directory is new, see tests/rpc/newdir.sh; a SETATTR of
# times, when the kernel writes one back at close, is not counted here: it
# shows in the debug log too).
start_broker --root "$tmp/root" --token-pubkey "$tmp/pub"
"$ctl" token mint --key "$tmp/key" --fsid fs1 --intent write \
	--out "$tmp/h" || exit 1
"$mountc" -d "unix:$tmp/sock" "$tmp/m" -o "handle=$tmp/h" \
	>"$tmp/debug.out" 2>&1 &
mpid=$!
mnt=$tmp/m
mnts=$mnt
i=0
until mountpoint -q "$tmp/m"; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "$me: mountc -d did not mount"; cat "$tmp/debug.out"; exit 1; }
	sleep 0.05
done
n=50
small_files "$tmp/m/many" $n
unmount_fs
wait "$mpid"
stop_broker
hits=$(grep -c 'GETATTR [0-9]*: from the last entry' "$tmp/debug.out")
setattrs=$(grep -c 'opcode: SETATTR' "$tmp/debug.out")
r=$(session_requests)
[ "$hits" -ge $((n - 1)) ] &&
	ok "$n files: $hits directory GETATTRs answered by mountc" ||
	fail "$n files: $hits directory GETATTRs answered by mountc, want >= $((n - 1))"
if [ -n "$r" ] && [ "$r" -le $((3 * n + setattrs + 10)) ]; then
	ok "$n files: $r broker requests ($setattrs SETATTRs)"
else
	fail "$n files: ${r:-?} broker requests, want <= $((3 * n + setattrs + 10))"
fi

# ---- DLP active: no NOFLUSH ----------------------------------------------
cat >"$tmp/pol/10-fs.yaml" <<EOF
version: 1
tokens: {public_key: $tmp/pub, audience: features-test}
filesystems:
  - name: fs1
    local: {root: $tmp/root}
    intents: [read, write]
dlp:
  rules:
    - {name: ids, regex: 'EMP-[0-9]{6}', action: block}
EOF
mkdir -p "$tmp/staging"
start_broker --policy "$tmp/pol" --staging-dir "$tmp/staging"
mount_fs fs1 features-test
f=$(features)
case "$f" in
*NOFLUSH*) fail "DLP active: NOFLUSH granted ($f)" ;;
*INVAL*) ok "DLP active: NOFLUSH not granted ($f)" ;;
*) fail "DLP active: no features logged"; cat "$tmp/mount.out" ;;
esac
case "$f" in
*PATTR*) ok "DLP active: PATTR granted" ;;
*) fail "DLP active: PATTR not granted ($f)" ;;
esac
# FLUSH is still sent and scans: the close fails.
if python3 -c "
import os
fd = os.open('$tmp/m/secret.txt', os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b'id EMP-123456\n')
os.close(fd)" 2>/dev/null; then
	fail "DLP active: a blocked file closed without an error"
else
	ok "DLP active: close of a blocked file failed"
fi
unmount_fs
stop_broker

if grep -q -e Sanitizer -e 'runtime error' "$tmp/broker.log" "$tmp/mount.out" \
	"$tmp/debug.out"; then
	fail "sanitizer report"
	cat "$tmp/broker.log" "$tmp/mount.out"
fi
finish
