#!/bin/sh
# brokerfs --policy through real mounts: filesystem_ids and intents the
# policy refuses, byte and inode quotas on the local backend, statfs, a
# refused and an accepted SIGHUP reload, and `brokerfs -n --policy` on a
# broken directory.  Needs root and /dev/fuse (skips otherwise).  Run by
# `make check` from the build directory.
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/root" "$tmp/bad"

# The policy: a quota'd read-write filesystem, a read-only one, a pattern.
write_policy() { # bytes inodes [root of the read-only entry]
	cat >"$tmp/pol/10-fs.yaml" <<EOF
version: 1
filesystems:
  - name: quota
    local: {root: $tmp/root}
    intents: [read, write]
    quota: {bytes: $1, inodes: $2}
  - name: readonly
    local: {root: ${3:-$tmp/root}}
    intents: [read, preview]
  - name: "team-*"
    local: {root: $tmp/root}
    intents: [read, write]
EOF
}
write_policy 4MiB 10
cat >"$tmp/pol/15-limits.yaml" <<EOF
filesystems:
  - name: idle
    local: {root: $tmp/root}
    intents: [write]
    session: {ttl: 2s, idle_timeout: 2s}
  - name: shortlife
    local: {root: $tmp/root}
    intents: [write]
    session: {ttl: 2s, max_lifetime: 3s}
EOF
cat >"$tmp/pol/20-tokens.yaml" <<EOF
tokens:
  public_key: $tmp/pub
  audience: policy-test
EOF

# ---- -n: the operator's check ------------------------------------------------
"$broker" -n --listen "unix:$tmp/sock" --policy "$tmp/pol" \
	--staging-dir "$tmp/staging" >"$tmp/n.out" 2>&1 ||
	{ fail "brokerfs -n on a good policy"; cat "$tmp/n.out"; }
cp "$tmp/pol/20-tokens.yaml" "$tmp/bad/"
cat >"$tmp/bad/10-fs.yaml" <<EOF
version: 1
filesystems:
  - name: broken
    local: {root: $tmp/root}
    intents: [read, wrte]
    quota: {bytes: 10 GB}
EOF
"$broker" -n --listen "unix:$tmp/sock" --policy "$tmp/bad" \
	>"$tmp/bad.out" 2>&1
rc=$?
if [ $rc != 1 ]; then
	fail "brokerfs -n on a broken policy exited $rc, want 1"
elif ! grep -q "^$tmp/bad/10-fs.yaml:[0-9]*:[0-9]*: " "$tmp/bad.out"; then
	fail "brokerfs -n: no file:line:column: message"; cat "$tmp/bad.out"
else
	ok "brokerfs -n --policy on a broken directory: $(wc -l <"$tmp/bad.out") problems, exit 1"
fi

grep -q -e Sanitizer -e 'runtime error' "$tmp/n.out" "$tmp/bad.out" &&
	{ fail "sanitizer report from brokerfs -n"; cat "$tmp/n.out" "$tmp/bad.out"; }

# ---- the broker --------------------------------------------------------------
start_broker --policy "$tmp/pol" --staging-dir "$tmp/staging"

mint() { # fsid intent file
	"$ctl" token mint --key "$tmp/key" --fsid "$1" --intent "$2" \
		--aud policy-test --ttl 60 --out "$3"
}
mnt() { # fsid intent dir: mount, output in $tmp/mount.out
	mkdir -p "$3"
	mint "$1" "$2" "$tmp/h.$1" || return 1
	mnts="$mnts $3"
	"$mountc" "unix:$tmp/sock" "$3" -o "handle=$tmp/h.$1" \
		>"$tmp/mount.out" 2>&1
}

# ---- refusals ------------------------------------------------------------------
if mnt nosuch write "$tmp/m0"; then
	fail "a filesystem_id not in the policy was mounted"
elif ! grep -q "filesystem_id not in policy" "$tmp/mount.out"; then
	fail "refusal without the reason"; cat "$tmp/mount.out"
else
	ok "unknown filesystem_id refused: $(cat "$tmp/mount.out")"
fi
if mnt readonly write "$tmp/m1"; then
	fail "a write handle for a read-only entry was mounted"
elif ! grep -q "intent 'write' not allowed by policy" "$tmp/mount.out"; then
	fail "intent refusal without the reason"; cat "$tmp/mount.out"
else
	ok "intent not allowed refused: $(cat "$tmp/mount.out")"
fi
mnt readonly read "$tmp/m1" || fail "read handle on the read-only entry"
mnt team-a write "$tmp/m2" || fail "pattern entry team-*: $(cat "$tmp/mount.out")"
grep -q "HELLO\|session refused.*nosuch.*not in policy" "$tmp/broker.log" ||
	fail "broker log does not say why nosuch was refused"

# ---- session limits: idle timeout and maximum lifetime ------------------------
mnt idle write "$tmp/m4" || fail "mount idle: $(cat "$tmp/mount.out")"
mnt shortlife write "$tmp/m5" || fail "mount shortlife: $(cat "$tmp/mount.out")"
echo x >"$tmp/m4/idle-file" || fail "write on the idle mount"
# shortlife stays busy; idle does nothing for 3.5 s.
i=0
while [ $i -lt 7 ]; do
	stat "$tmp/m5" >/dev/null 2>&1 || break
	sleep 0.5
	i=$((i + 1))
done
if stat "$tmp/m4/idle-file" >/dev/null 2>&1 && cat "$tmp/m4/idle-file" >/dev/null 2>&1; then
	fail "the idle session was not cut after its idle_timeout"
else
	ok "idle session cut: $(cat "$tmp/m4/idle-file" 2>&1 | head -1)"
fi
grep -q "revoked: session idle timeout" "$tmp/broker.log" ||
	fail "no idle timeout line in the broker log"
sleep 1
if ls "$tmp/m5" >/dev/null 2>&1; then
	fail "a busy session outlived its max_lifetime"
else
	ok "busy session cut at max_lifetime"
fi
grep -q "revoked: session lifetime exceeded" "$tmp/broker.log" ||
	fail "no lifetime line in the broker log"
[ "$(cat "$tmp/root/idle/idle-file" 2>/dev/null)" = x ] ||
	fail "data written before the idle cut is missing"

# ---- quotas --------------------------------------------------------------------
m=$tmp/m3
mnt quota write "$m" || { fail "mount quota: $(cat "$tmp/mount.out")"; exit 1; }
dd if=/dev/urandom of="$tmp/a" bs=1M count=3 2>/dev/null
cp "$tmp/a" "$m/a" || fail "3 MiB under a 4 MiB quota"
dd if=/dev/urandom of="$m/b" bs=1M count=4 conv=fsync >"$tmp/dd.out" 2>&1 &&
	fail "dd past the quota succeeded"
if grep -q "Disk quota exceeded" "$tmp/dd.out"; then
	ok "dd past the byte quota: $(grep -m1 quota "$tmp/dd.out")"
else
	fail "dd past the quota: no EDQUOT"; cat "$tmp/dd.out"
fi
cmp -s "$tmp/a" "$m/a" || fail "data written before the quota was reached changed"
cmp -s "$tmp/a" "$tmp/root/quota/a" || fail "host copy of a differs"
sz=$(stat -c %s "$tmp/root/quota/b")
[ "$sz" -le $((1024 * 1024)) ] && [ "$sz" -gt 0 ] ||
	fail "b holds $sz bytes, want what fitted (0 < size <= 1 MiB)"
head -c "$sz" "$m/b" | cmp -s - "$tmp/root/quota/b" || fail "b's bytes differ"
truncate -s 8M "$m/a" 2>"$tmp/tr.out" && fail "truncate past the quota succeeded"
grep -q "Disk quota exceeded" "$tmp/tr.out" || fail "truncate: $(cat "$tmp/tr.out")"
# df: 4 MiB of blocks, what is used, and the inode quota
set -- $(stat -f -c '%S %b %f %c %d' "$m")
[ $(($1 * $2)) = $((4 * 1024 * 1024)) ] || fail "statfs size $1 x $2, want 4 MiB"
[ "$3" -le 1 ] || fail "statfs free blocks $3 with the quota used up"
[ "$4" = 10 ] || fail "statfs files $4, want 10"
df -h "$m" | sed 's/^/  /'
# freeing space makes room again
rm "$m/b"
echo more >"$m/c" || fail "write after freeing space"
# inodes: a, c and the new entries, at most 10
n=0
while [ $n -lt 12 ]; do
	mkdir "$m/d$n" 2>"$tmp/mkdir.out" || break
	n=$((n + 1))
done
if [ $n = 8 ] && grep -q "Disk quota exceeded" "$tmp/mkdir.out"; then
	ok "inode quota: 8 directories beside 2 files, then EDQUOT"
else
	fail "inode quota: made $n directories: $(cat "$tmp/mkdir.out")"
fi
touch "$m/x" 2>/dev/null && fail "create past the inode quota"
ln -s a "$m/l" 2>/dev/null && fail "symlink past the inode quota"
rmdir "$m/d0" && touch "$m/x" || fail "create after rmdir"

# ---- reload ---------------------------------------------------------------------
cp "$tmp/pol/10-fs.yaml" "$tmp/good.yaml"
printf 'filesystems:\n  - name: quota\n    bogus: 1\n' >"$tmp/pol/30-broken.yaml"
kill -HUP $pid
sleep 0.5
if grep -q "policy reload refused, keeping the old policy" "$tmp/broker.log" &&
	grep -q "30-broken.yaml:[0-9]*:[0-9]*:" "$tmp/broker.log"; then
	ok "broken policy refused on SIGHUP: $(grep -m1 30-broken.yaml "$tmp/broker.log")"
else
	fail "no refusal logged for the broken policy"; tail "$tmp/broker.log"
fi
cat "$m/a" | cmp -s - "$tmp/a" || fail "mount broken after a refused reload"
touch "$m/y" 2>/dev/null && fail "inode quota gone after a refused reload"
rm -f "$tmp/pol/30-broken.yaml"
mkdir -p "$tmp/root2"
write_policy 16MiB 100 "$tmp/root2"
kill -HUP $pid
sleep 0.5
grep -q "policy reloaded from" "$tmp/broker.log" || fail "no reload logged"
grep -q "settings of filesystem entry 'readonly' changed; they take effect at restart" \
	"$tmp/broker.log" || fail "no log of a backend change waiting for a restart"
dd if=/dev/urandom of="$m/big" bs=1M count=8 conv=fsync 2>"$tmp/dd2.out" ||
	fail "write after raising the quota: $(cat "$tmp/dd2.out")"
touch "$m/y" || fail "create after raising the inode quota"
set -- $(stat -f -c '%S %b %c' "$m")
[ $(($1 * $2)) = $((16 * 1024 * 1024)) ] && [ "$3" = 100 ] ||
	fail "statfs after reload: $1 x $2 bytes, $3 files"
ok "reload raised the quota on the open mount"
# A new policy without the read-only entry refuses new sessions only.
grep -q "removed" "$tmp/broker.log" && fail "an entry was reported removed"

# Revoked mounts fail mountpoint(1): check /proc/mounts instead.
for d in $mnts; do
	grep -q " $d fuse" /proc/mounts || continue
	umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null
done
mnts=
kill $pid && wait $pid
brc=$?
pid=
[ $brc = 0 ] || fail "broker exited with status $brc on SIGTERM"
finish
