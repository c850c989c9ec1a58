#!/bin/sh
# auth-closed.sh - authentication fails closed when the spool cannot be
# written: on a full filesystem (a 256 KiB tmpfs) audit_emit_auth returns
# -ENOSPC, while file events keep returning 0 (dropped and counted) and
# never block.  Needs root for the tmpfs.
srcdir=$(cd "${top_srcdir:-.}/tests/audit" && pwd)
. "$srcdir/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "auth-closed.sh: needs root"; exit 77; }
mkdir "$T/tiny"
mount -t tmpfs -o size=256k,mode=0700 occfs-audit-test "$T/tiny" 2>/dev/null ||
	{ echo "auth-closed.sh: cannot mount tmpfs"; exit 77; }
CLEANUP_EXTRA='umount "$T/tiny"'

start_auditd
"$EMIT" --spool "$T/tiny/sp" --max 16777216 auth file:2000 stats auth >"$T/e.out" 2>"$T/e.err"
eq "emitter exit" $? 0
has "^auth r=0" "$T/e.out"
has "file 2000 failed=0" "$T/e.out"
has "^auth r=-28" "$T/e.out"
dropped=$(sed -n 's/.*dropped=\([0-9]*\).*/\1/p' "$T/e.out")
check "file events dropped on a full disk ($dropped)" test "${dropped:-0}" -gt 0
has "cannot record a durable event: No space left on device" "$T/e.err"
worst=$(sed -n 's/.*max_us=\([0-9]*\).*/\1/p' "$T/e.out")
check "file events did not stall (slowest ${worst} us)" test "${worst:-999999999}" -lt 200000

# With space back and the daemon up, the spooled part is delivered and
# the drop is reported.
rm -f "$T/tiny/sp/"*.spool
"$EMIT" --spool "$T/tiny/sp" --socket "$SOCK" auth file:3 flush:20000 >"$T/e2.out" 2>&1
has "^auth r=0" "$T/e2.out"
has "flush r=0" "$T/e2.out"
finish
