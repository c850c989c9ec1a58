#!/bin/sh
# The broker without its control link: sessions already open keep
# working, new ones are refused with a clear reason (fail closed); after
# occfs-controld is back the broker resyncs and accepts sessions again,
# and a revocation made while it was away is applied at once.  Also: a
# session whose handle expires is cut by the broker with a clear error,
# and a destroy while no broker is linked does not claim a flush.
. "$(dirname "$0")/lib.sh"

start_ctld
start_broker
create ws-a a >/dev/null && mount_line a || { fail "mount a: $(cat "$tmp/mount.out")"; finish; }
create ws-b b >/dev/null || fail "create b"
create ws-c c >/dev/null && mount_line c || fail "mount c"
csid=$(sed -n 's/.*"sid": "\([0-9a-f]*\)".*/\1/p' "$tmp/c.create")

stop_ctld
wait_for 5 grep -q "control link .* down" "$tmp/broker.log" || fail "broker did not notice"
echo hello >"$tmp/m.a/f" && [ "$(cat "$tmp/m.a/f")" = hello ] &&
	ok "open session keeps working while the link is down" ||
	fail "open session broken by the outage"
mount_line b && fail "a new session was accepted with the link down"
grep -q "control plane unreachable" "$tmp/mount.out" &&
	ok "new session refused: $(tail -1 "$tmp/mount.out")" ||
	fail "refusal reason: $(cat "$tmp/mount.out")"

# a revocation recorded while the broker cannot hear it
start_ctld
"$ctl" session revoke "$csid" >/dev/null 2>&1 # the broker may or may not be back yet
wait_for 10 synced || fail "broker did not resync"
wait_for 5 sh -c "ls '$tmp/m.c' 2>&1 | grep -q 'Permission denied'" &&
	ok "revocation made during the outage applied at resync" ||
	fail "session revoked during the outage still works after resync"
replay b && ok "new session accepted after resync" || fail "after resync: $(cat "$tmp/mount.out")"
echo x >"$tmp/m.a/g" || fail "old session after resync"

# ---- expiry: a handle 25 s past exp is inside HELLO's 30 s leeway ----------
"$ctl" token mint --key "$tmp/key" --fsid ws-e --aud ctld-test \
	--exp $(($(date +%s) - 25)) --out "$tmp/h/e" >/dev/null
mkdir -p "$tmp/m.e"
"$mountc" "unix:$BSOCK" "$tmp/m.e" -o "handle=$tmp/h/e" >"$tmp/mount.out" 2>&1 ||
	fail "mount e: $(cat "$tmp/mount.out")"
mnts="$mnts $tmp/m.e"
ls "$tmp/m.e" >/dev/null || fail "e before expiry"
wait_for 10 sh -c "ls '$tmp/m.e' 2>&1 | grep -q 'Permission denied'" &&
	ok "expired session cut with EACCES" || fail "expired session not cut"
grep -q "revoked: session handle expired" "$tmp/broker.log" || fail "no expiry log line"

# ---- destroy with no broker linked: nobody can confirm a flush -------------
for m in $mnts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
mnts=
kill "$broker_pid" && wait "$broker_pid"
broker_pid=
bsid=$(sed -n 's/.*"sid": "\([0-9a-f]*\)".*/\1/p' "$tmp/b.create")
"$ctl" session destroy "$bsid" >"$tmp/d" 2>&1 || fail "destroy: $(cat "$tmp/d")"
grep -q "0 of 0 brokers acknowledged.*staged data NOT confirmed flushed" "$tmp/d" &&
	ok "destroy without a broker: $(cat "$tmp/d")" ||
	fail "destroy without a broker: $(cat "$tmp/d")"
finish
