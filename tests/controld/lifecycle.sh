#!/bin/sh
# The session lifecycle through real daemons and a real mount: occfsctl
# session create (policy limits enforced, the handle in a 0600 file), mount
# with the returned line, write, list, destroy (the guest is cut with
# EACCES, the data is in the backend), a destroyed handle refused at
# HELLO, a forged handle refused, a re-created session for the same
# filesystem_id sees the data again, quota overrides pushed to the broker,
# and every action in the audit spool.
. "$(dirname "$0")/lib.sh"

start_ctld
start_broker

# ---- create: the policy's limits ------------------------------------------------
"$ctl" session create --fsid short --ttl 3600 --handle-out "$tmp/h/x" \
	2>"$tmp/err" && fail "ttl above the filesystem's session.ttl accepted"
grep -q "EINVAL: ttl 3600 s is outside the policy's limit of 1 to 600 s" \
	"$tmp/err" && ok "ttl over the policy limit refused: $(cat "$tmp/err")" ||
	fail "ttl refusal: $(cat "$tmp/err")"
"$ctl" session create --fsid short --intent read --handle-out "$tmp/h/x" \
	2>"$tmp/err" && fail "intent the policy does not allow accepted"
grep -q "EACCES: intent 'read' is not allowed" "$tmp/err" ||
	fail "intent refusal: $(cat "$tmp/err")"
"$ctl" session create --fsid nosuch --handle-out "$tmp/h/x" 2>"$tmp/err" &&
	fail "a filesystem not in the policy accepted"
grep -q "ENOENT: no filesystem 'nosuch'" "$tmp/err" ||
	fail "unknown fsid refusal: $(cat "$tmp/err")"
"$ctl" session create --fsid '../x' --handle-out "$tmp/h/x" 2>/dev/null &&
	fail "an unsafe fsid accepted"
[ -e "$tmp/h/x" ] && fail "a refused create left a handle file"

# ---- create, mount with the returned line, write ------------------------------------
sid=$(create ws-a a --ttl 600) || fail "create: $(cat "$tmp/a.create")"
[ "$(stat -c %a "$tmp/h/a")" = 600 ] && ok "handle file mode 0600" ||
	fail "handle file mode $(stat -c %a "$tmp/h/a")"
grep -q '"handle"' "$tmp/a.create" && fail "--json output shows the handle"
grep -q "\"fstab\": \"unix:$BSOCK  $tmp/m.a  occfs  handle=$tmp/h/a,_netdev,nofail  0 0\"" \
	"$tmp/a.create" && ok "fstab line" || fail "fstab line: $(cat "$tmp/a.create")"
"$ctl" token verify --pubkey "$tmp/pub" --aud ctld-test "$tmp/h/a" \
	>"$tmp/verify" || fail "handle does not verify"
grep -q "sid=$sid filesystem_id=ws-a .*intent=write" "$tmp/verify" ||
	fail "handle claims: $(cat "$tmp/verify")"
cp "$tmp/h/a" "$tmp/a.saved" # mountc scrubs the file it read
mount_line a && ok "mounted with the returned line" ||
	{ fail "mount: $(cat "$tmp/mount.out")"; finish; }
m=$tmp/m.a
dd if=/dev/urandom of="$tmp/data" bs=64k count=16 2>/dev/null
cp "$tmp/data" "$m/f" && sync || fail "write through the mount"
"$ctl" session list >"$tmp/list" || fail "list"
grep -q "^$sid  *ws-a  *write  *active" "$tmp/list" && ok "list shows it" ||
	fail "list: $(cat "$tmp/list")"

# ---- quota override: pushed to the broker, enforced on new sessions --------------
# (the local backend counts usage only for filesystems opened under a
# quota, so the override is checked on a session opened after it)
"$ctl" session quota --fsid ws-q --bytes 2000000 --inodes 0 >"$tmp/q" ||
	fail "quota: $(cat "$tmp/q")"
grep -q "1 of 1 brokers acknowledged" "$tmp/q" || fail "quota ack: $(cat "$tmp/q")"
create ws-q q >/dev/null && mount_line q || fail "mount q: $(cat "$tmp/mount.out")"
dd if=/dev/zero of="$tmp/m.q/big" bs=1M count=3 conv=fsync 2>"$tmp/dd" &&
	fail "write past the override succeeded"
grep -q "Disk quota exceeded" "$tmp/dd" && ok "quota override enforced (EDQUOT)" ||
	fail "quota override: $(cat "$tmp/dd")"
rm -f "$tmp/m.q/big"
"$ctl" session quota --fsid ws-q --bytes 8000000 --inodes 0 >/dev/null ||
	fail "quota raised"
dd if=/dev/zero of="$tmp/m.q/big" bs=1M count=3 conv=fsync 2>"$tmp/dd" &&
	ok "a raised override applies to the open session at once" ||
	fail "raised override: $(cat "$tmp/dd")"
"$ctl" session quota --fsid ws-q --clear >/dev/null || fail "quota --clear"
"$ctl" session quota --fsid ws-q 2>/dev/null && fail "quota without sizes"

# ---- destroy ---------------------------------------------------------------------------
"$ctl" session destroy "$sid" >"$tmp/d" || fail "destroy: $(cat "$tmp/d")"
grep -q "destroyed: 1 connections cut, 1 of 1 brokers acknowledged.*staged data flushed" \
	"$tmp/d" && ok "destroy: $(cat "$tmp/d")" || fail "destroy output: $(cat "$tmp/d")"
ls "$m" >/dev/null 2>"$tmp/ls" && fail "the destroyed session still works"
grep -q "Permission denied" "$tmp/ls" && ok "guest cut with EACCES" ||
	fail "guest error after destroy: $(cat "$tmp/ls")"
cmp -s "$tmp/data" "$tmp/root/ws-a/f" && ok "data present in the backend" ||
	fail "data not in the backend"
umount "$m" 2>/dev/null || umount -l "$m"
"$ctl" session list --all | grep -q "^$sid .*destroyed" ||
	fail "list --all does not show the destroyed session"
"$ctl" session destroy "$sid" 2>"$tmp/err" && fail "destroy twice"
grep -q EALREADY "$tmp/err" || fail "second destroy: $(cat "$tmp/err")"

# ---- replayed and forged handles -----------------------------------------------------
cp "$tmp/a.create" "$tmp/a2.create"
cp "$tmp/a.saved" "$tmp/h/a"
mount_line a2 && fail "a destroyed (replayed) handle mounted"
grep -q "session revoked by the control plane" "$tmp/mount.out" &&
	ok "replayed handle refused: $(tail -1 "$tmp/mount.out")" ||
	fail "replay refusal: $(cat "$tmp/mount.out")"
"$ctl" token keygen --private "$tmp/evil.key" --public "$tmp/evil.pub" >/dev/null
"$ctl" token mint --key "$tmp/evil.key" --fsid ws-a --aud ctld-test \
	--out "$tmp/h/evil" >/dev/null
mkdir -p "$tmp/m.evil"
"$mountc" "unix:$BSOCK" "$tmp/m.evil" -o "handle=$tmp/h/evil" \
	>"$tmp/mount.out" 2>&1 && { mnts="$mnts $tmp/m.evil"; fail "forged handle mounted"; }
grep -qi "signature\|rejected\|refused" "$tmp/mount.out" &&
	ok "forged handle refused: $(tail -1 "$tmp/mount.out")" ||
	fail "forged refusal: $(cat "$tmp/mount.out")"

# ---- a new session for the same filesystem_id sees the data -------------------------
sid2=$(create ws-a b) || fail "re-create"
[ "$sid2" != "$sid" ] || fail "same sid twice"
mount_line b || fail "mount b: $(cat "$tmp/mount.out")"
cmp -s "$tmp/data" "$tmp/m.b/f" && ok "re-created session sees the data" ||
	fail "data not visible in the new session"

# ---- audit: every action above is in the spool ----------------------------------------
for op in session.create session.list session.quota session.destroy; do
	grep -rqa "\"operation\":\"$op\"" "$tmp/spool" ||
		fail "no API Activity event for $op in the spool"
done
grep -rqa '"class_uid":6003' "$tmp/spool" && ok "API Activity events spooled" ||
	fail "no API Activity events"
finish
