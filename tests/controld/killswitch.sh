#!/bin/sh
# Revocation and the kill-switch through real mounts: revoke one session
# while its guest is writing (acknowledged data kept, later writes fail
# cleanly, no hang); revoke-all with several sessions (all cut before
# occfsctl returns, new sessions refused, create refused); occfs-controld
# restarted keeps the kill-switch and the denylist; lift (new sessions
# work, handles from before the kill stay refused).
. "$(dirname "$0")/lib.sh"

start_ctld
start_broker

# ---- revoke one while the guest writes ---------------------------------------
sid=$(create ws-w w) && mount_line w || { fail "mount w: $(cat "$tmp/mount.out")"; finish; }
python3 - "$tmp/m.w/log" "$tmp/w.acked" "$tmp/w.err" <<'PY' &
import os, sys, errno
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
acked = 0
with open(sys.argv[3], "w") as err:
    while True:
        rec = ("%08d\n" % acked).encode()
        try:
            os.write(fd, rec)
            os.fsync(fd)       # acknowledged: the broker has it on disk
        except OSError as e:
            err.write(errno.errorcode.get(e.errno, str(e.errno)) + "\n")
            break
        acked += 1
        with open(sys.argv[2], "w") as f:
            f.write("%d\n" % acked)
PY
wpid=$!
bgpids="$bgpids $wpid"
wait_for 10 test -s "$tmp/w.acked" || fail "the writer never wrote"
sleep 0.3
"$ctl" session revoke "$sid" >"$tmp/r" || fail "revoke: $(cat "$tmp/r")"
grep -q "revoked: 1 connections cut" "$tmp/r" && ok "$(cat "$tmp/r")" ||
	fail "revoke output: $(cat "$tmp/r")"
n=0
while kill -0 $wpid 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
kill -0 $wpid 2>/dev/null && fail "the writer hangs after the revocation"
acked=$(cat "$tmp/w.acked")
e=$(cat "$tmp/w.err" 2>/dev/null)
case $e in
EACCES | ENOTCONN | EIO) ok "writer stopped cleanly with $e after $acked fsynced records" ;;
*) fail "writer ended with '$e'" ;;
esac
have=$(wc -l <"$tmp/root/ws-w/log")
[ "$have" -ge "$acked" ] && ok "all $acked acknowledged records in the backend ($have)" ||
	fail "acknowledged records lost: $acked acked, $have stored"
head -n "$acked" "$tmp/root/ws-w/log" | awk '$1 != sprintf("%08d", NR - 1) { bad = 1 } END { exit bad }' ||
	fail "records out of order or damaged"
ls "$tmp/m.w" >/dev/null 2>&1 && fail "revoked mount still answers"
grep -q "session .* revoked: session revoked by the control plane" "$tmp/broker.log" ||
	fail "broker log line for the revocation"

# ---- revoke-all with several sessions -----------------------------------------
for i in 1 2 3 4; do
	create ws-k$i k$i >/dev/null && mount_line k$i ||
		fail "mount k$i: $(cat "$tmp/mount.out")"
	echo "k$i" >"$tmp/m.k$i/f" || fail "write k$i"
done
# a handle minted before the kill, kept for after the lift
create ws-old old >/dev/null || fail "create old"
"$ctl" revoke-all >"$tmp/ra" || fail "revoke-all: $(cat "$tmp/ra")"
grep -q "kill-switch engaged: 4 connections cut, 1 of 1 brokers acknowledged" \
	"$tmp/ra" && ok "$(cat "$tmp/ra")" || fail "revoke-all output: $(cat "$tmp/ra")"
for i in 1 2 3 4; do
	cat "$tmp/m.k$i/f" >/dev/null 2>"$tmp/e" && fail "k$i still readable after revoke-all"
	grep -q "Permission denied" "$tmp/e" || fail "k$i error: $(cat "$tmp/e")"
done
ok "every guest fails with EACCES right after revoke-all returned"
"$ctl" session create --fsid ws-n --handle-out "$tmp/h/n" 2>"$tmp/e" &&
	fail "create under the kill-switch"
grep -q "EACCES: the kill-switch is engaged" "$tmp/e" || fail "create refusal: $(cat "$tmp/e")"
"$ctl" session status | grep -q "kill-switch ENGAGED" || fail "status does not show the kill"

# ---- a restart keeps the kill-switch and the denylist ---------------------------
stop_ctld
wait_for 5 grep -q "control link .* down" "$tmp/broker.log" || fail "broker did not see the link drop"
start_ctld
wait_for 10 synced || fail "broker did not resync"
grep -q "sending [1-9][0-9]* denylist entries and the engaged kill-switch" \
	"$tmp/controld.log" && ok "restarted occfs-controld sent the kill-switch and the denylist" ||
	fail "state after restart: $(tail -3 "$tmp/controld.log")"
replay old && fail "mounted under the kill-switch after a restart"
grep -q "kill-switch engaged" "$tmp/mount.out" && ok "new session refused: $(tail -1 "$tmp/mount.out")" ||
	fail "refusal: $(cat "$tmp/mount.out")"

# ---- lift ------------------------------------------------------------------------
"$ctl" session lift >"$tmp/l" || fail "lift: $(cat "$tmp/l")"
replay old && fail "a handle issued before the kill-switch mounted after lift"
grep -q "revoked by the control plane\|issued before the last kill-switch" "$tmp/mount.out" &&
	ok "old handle still refused after lift: $(tail -1 "$tmp/mount.out")" ||
	fail "old handle: $(cat "$tmp/mount.out")"
create ws-k1 new >/dev/null && mount_line new ||
	fail "new session after lift: $(cat "$tmp/mount.out")"
[ "$(cat "$tmp/m.new/f" 2>/dev/null)" = k1 ] && ok "new session after lift sees its data" ||
	fail "data after lift"
# the revoked w session (a jti on the denylist) stays refused after the restart
replay w && fail "revoked handle replayed after restart and lift"
grep -q "revoked by the control plane\|issued before" "$tmp/mount.out" ||
	fail "replay: $(cat "$tmp/mount.out")"
finish
