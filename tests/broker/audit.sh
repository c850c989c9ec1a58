#!/bin/sh
# audit.sh - brokerfs's audit trail end to end: a real occfs-auditd, a
# brokerfs with --audit-socket whose spool lives on a small tmpfs, and
# mountc mounts.  Checks that a mount makes a successful Logon, that a
# forged and an expired handle make failed ones with the reason, that
# create/write/mkdir/rename/unlink make File System Activity events with
# the right paths and bytes, that I/O neither blocks nor loses events while
# occfs-auditd is down, that a full spool refuses new mounts ("audit
# unavailable", fail closed) while I/O on a mounted one goes on (fail open),
# that an unmount makes a Logoff, and that the chain verifies.  Needs root
# (FUSE, tmpfs).
. "$(dirname "$0")/../audit/lib.sh"
BROKER=$top_builddir/brokerfs/brokerfs
MOUNTC=$top_builddir/mountc/mountc
CTL=$top_builddir/tools/occfsctl
for b in "$BROKER" "$MOUNTC" "$CTL"; do
	[ -x "$b" ] || { echo "audit.sh: $b not built"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "audit.sh: needs root (FUSE, tmpfs)"; exit 77; }
[ -c /dev/fuse ] || { echo "audit.sh: no /dev/fuse"; exit 77; }
command -v python3 >/dev/null || { echo "audit.sh: needs python3"; exit 77; }

BSOCK=$T/broker.sock
TINY=$T/tiny
BROKER_PID=
MOUNTS=

stop_broker() {
	[ -n "$BROKER_PID" ] || return 0
	kill -TERM "$BROKER_PID" 2>/dev/null
	wait "$BROKER_PID"
	_brc=$?
	BROKER_PID=
	return $_brc
}
umount_all() {
	# /proc/mounts, not mountpoint(1): a mount whose broker died fails
	# every stat with ENOTCONN.
	for m in $MOUNTS; do
		grep -q " $m fuse" /proc/mounts || continue
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	MOUNTS=
}
# Run by lib.sh's exit trap before the scratch directory goes.
CLEANUP_EXTRA='umount_all; stop_broker; mountpoint -q "$TINY" && umount "$TINY"'

# mint OUT SID [occfsctl mint options...]: a handle for filesystem fs1
mint() {
	_out=$1 _sid=$2
	shift 2
	"$CTL" token mint --key "$T/key" --fsid fs1 --intent write \
		--tenant acme --sid "$_sid" --out "$_out" "$@" >/dev/null
}

# mnt DIR HANDLE: mount through mountc; its stderr in DIR.err
mnt() {
	mkdir -p "$1"
	MOUNTS="$MOUNTS $1"
	"$MOUNTC" "unix:$BSOCK" "$1" -o "handle=$2" 2>"$1.err"
}

# events FILE: every record of the log as OCSF JSON, one per line
events() { "$AUDIT" tail "$LOG" -n 100000 --json >"$1"; }

# wait_for DESCRIPTION PYTHON-EXPRESSION: poll the log until some event e
# satisfies the expression (10 s)
wait_for() {
	_i=0
	while [ $_i -lt 100 ]; do
		events "$T/ev.json"
		if python3 - "$T/ev.json" "$2" <<'EOF'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def match(e):
    try:
        return eval(sys.argv[2], {}, {"e": e})
    except (KeyError, TypeError, AttributeError):
        return False
sys.exit(0 if any(match(e) for e in evs) else 1)
EOF
		then
			ok
			return 0
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	bad "$1: no event with $2"
	python3 - "$T/ev.json" <<'EOF' | tail -40
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    u = e.get("unmapped", {})
    print(" ", e["class_uid"], e["activity_id"], e.get("status_id"),
          e.get("status_detail", ""), u.get("op", ""),
          e.get("file", {}).get("path", ""), u.get("bytes", ""))
EOF
	return 1
}

# Field helpers for the expressions.
UN='e.get("unmapped", {})'
FILE='e["class_uid"] == 1001'
AUTH='e["class_uid"] == 3002'

# ---- set-up ------------------------------------------------------------------

mkdir -p "$T/root/fs1" "$TINY"
mount -t tmpfs -o size=1m,mode=0700 occfs-broker-audit "$TINY" ||
	{ echo "audit.sh: cannot mount tmpfs"; exit 77; }
"$CTL" token keygen --private "$T/key" --public "$T/pub" >/dev/null || exit 1
"$CTL" token keygen --private "$T/key2" --public "$T/pub2" >/dev/null || exit 1

# -n refuses a bad aggregation mode.
if "$BROKER" -n --listen "unix:$BSOCK" --root "$T/root" \
	--token-pubkey "$T/pub" --audit-rw sometimes 2>"$T/n.err"; then
	bad "--audit-rw sometimes accepted"
else
	check "-n names --audit-rw" grep -q -- "--audit-rw" "$T/n.err"
fi

start_auditd
"$BROKER" -f --listen "unix:$BSOCK" --root "$T/root" \
	--token-pubkey "$T/pub" --audit-socket "$SOCK" \
	--audit-spool "$TINY/spool" --audit-rw aggregate:200 \
	2>"$T/broker.log" &
BROKER_PID=$!
_i=0
while [ ! -S "$BSOCK" ]; do
	_i=$((_i + 1))
	if [ $_i -gt 100 ] || ! kill -0 "$BROKER_PID" 2>/dev/null; then
		echo "audit.sh: brokerfs did not start"; cat "$T/broker.log"; exit 1
	fi
	sleep 0.1
done

# ---- a session and its file operations ----------------------------------------

M1=$T/m1
mint "$T/h1" s-one || exit 1
jti1=$("$CTL" token verify --pubkey "$T/pub" --aud occfs "$T/h1" |
	sed -n 's/.*jti=\([^ ]*\).*/\1/p')
mnt "$M1" "$T/h1" || { bad "mount m1: $(cat "$M1.err")"; exit 1; }
printf 'hello\n' >"$M1/a.txt"
mkdir "$M1/d"
mv "$M1/a.txt" "$M1/d/b.txt"
check "read back" test "$(cat "$M1/d/b.txt")" = hello
rm "$M1/d/b.txt"
chmod 0700 "$M1/d"

wait_for "logon of s-one" "$AUTH and e['activity_id'] == 1 and e['status_id'] == 1 and e['session']['uid'] == 's-one' and e['session'].get('credential_uid') == '$jti1' and e['user']['uid'] == 'acme' and $UN.get('filesystem_id') == 'fs1' and $UN.get('intent') == 'write' and 'unix' in e['src_endpoint']['name']"
wait_for "create /a.txt" "$FILE and $UN.get('op', '').lower() == 'create' and e['file']['path'] == '/a.txt' and e['status_id'] == 1 and e['actor']['session']['uid'] == 's-one'"
wait_for "write 6 bytes to /a.txt" "$FILE and $UN.get('op', '').lower() == 'write' and e['file']['path'] == '/a.txt' and $UN.get('bytes') == 6"
wait_for "mkdir /d" "$FILE and $UN.get('op', '').lower() == 'mkdir' and e['file']['path'] == '/d'"
wait_for "rename /a.txt to /d/b.txt" "$FILE and $UN.get('op', '').lower() == 'rename' and e['file']['path'] == '/a.txt' and e['file_result']['path'] == '/d/b.txt'"
wait_for "read of /d/b.txt (renamed node keeps its new name)" "$FILE and $UN.get('op', '').lower() == 'read' and e['file']['path'] == '/d/b.txt' and $UN.get('bytes') == 6"
wait_for "unlink /d/b.txt" "$FILE and $UN.get('op', '').lower() == 'unlink' and e['file']['path'] == '/d/b.txt' and e['activity_id'] == 4"
wait_for "chmod /d" "$FILE and $UN.get('op', '').lower() == 'chmod' and e['file']['path'] == '/d'"
wait_for "trace id is sid:request id" "$FILE and e['metadata']['correlation_uid'].startswith('s-one:')"

# A failed operation is recorded with its errno.
: >"$M1/d/keep"
rmdir "$M1/d" 2>/dev/null && bad "rmdir of a non-empty directory"
wait_for "rmdir of a non-empty dir fails with ENOTEMPTY" "$FILE and $UN.get('op', '').lower() == 'rmdir' and e['file']['path'] == '/d' and e.get('status_code') == 'ENOTEMPTY' and e['status_id'] == 2"

# ---- refused handles ------------------------------------------------------------

"$CTL" token mint --key "$T/key2" --fsid fs1 --intent write --tenant acme \
	--sid s-forged --out "$T/h2" >/dev/null
if mnt "$T/m2" "$T/h2"; then
	bad "forged handle mounted"
else
	check "forged: mountc says why" grep -q "signature" "$T/m2.err"
fi
mint "$T/h3" s-expired --exp $(($(date +%s) - 3600))
if mnt "$T/m3" "$T/h3"; then
	bad "expired handle mounted"
else
	check "expired: mountc says why" grep -q "expired" "$T/m3.err"
fi
wait_for "forged handle: failed logon, no claims trusted" "$AUTH and e['status_id'] == 2 and 'signature' in e.get('status_detail', '') and 'uid' not in e.get('session', {})"
wait_for "expired handle: failed logon with its sid" "$AUTH and e['status_id'] == 2 and e.get('status_detail') == 'handle expired' and e['session']['uid'] == 's-expired'"

# ---- occfs-auditd down: no stall, nothing lost ------------------------------------

stop_auditd
start=$(date +%s)
i=0
while [ $i -lt 30 ]; do
	printf 'x%s\n' $i >"$M1/out-$i" || bad "write during the outage"
	i=$((i + 1))
done
took=$(($(date +%s) - start))
check "30 files written during the outage in ${took}s" test "$took" -lt 5
sleep 1
start_auditd
wait_for "events of the outage delivered after the restart" "$FILE and $UN.get('op', '').lower() == 'create' and e['file']['path'] == '/out-29'"

# ---- spool full: new sessions refused, I/O goes on ----------------------------------

dd if=/dev/zero of="$TINY/fill" bs=4k 2>/dev/null
i=0
while [ $i -lt 40 ]; do
	printf 'y%s\n' $i >"$M1/full-$i" || bad "write with a full spool"
	i=$((i + 1))
done
check "I/O with a full spool" test "$(cat "$M1/full-39")" = y39
mint "$T/h4" s-refused
if mnt "$T/m4" "$T/h4"; then
	bad "mount with a full spool accepted"
else
	check "full spool: mount refused, audit unavailable" \
		grep -q "audit unavailable" "$T/m4.err"
fi
check "broker logged the unrecordable logon" \
	grep -q "cannot record the handle check of sid=s-refused" "$T/broker.log"
rm -f "$TINY/fill"
mint "$T/h5" s-after
mnt "$T/m5" "$T/h5" || bad "mount after space returned: $(cat "$T/m5.err")"
wait_for "logon after space returned" "$AUTH and e['status_id'] == 1 and e['session']['uid'] == 's-after'"
printf 'z\n' >"$M1/after-full"
wait_for "dropped file events reported" "$FILE and e['activity_id'] == 99 and e.get('count', 0) > 0"

# ---- logoff, shutdown, the chain --------------------------------------------------

umount "$M1"
wait_for "logoff of s-one" "$AUTH and e['activity_id'] == 2 and e['session']['uid'] == 's-one'"
umount_all
stop_broker
check "brokerfs exits 0 on SIGTERM" test $? -eq 0
check "shutdown logged the audit counts" grep -q "audit: .* delivered" "$T/broker.log"
"$AUDIT" verify "$LOG" >"$T/verify.out" 2>&1
check "chain verifies: $(cat "$T/verify.out")" grep -q "^ok" "$T/verify.out"
if grep -q -e 'Sanitizer' -e 'runtime error' "$T/broker.log"; then
	bad "sanitizer report in the broker log"
	cat "$T/broker.log"
fi
[ "$failed" -eq 0 ] || tail -30 "$T/broker.log"
finish
