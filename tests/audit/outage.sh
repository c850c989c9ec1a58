#!/bin/sh
# outage.sh - the audit daemon is killed while an emitter keeps emitting
# file events: no emit call stalls, the events wait in the spool and all
# arrive (at least once, none lost) when the daemon is back; the chain
# still verifies.
srcdir=$(cd "${top_srcdir:-.}/tests/audit" && pwd)
. "$srcdir/lib.sh"

start_auditd
# 600 events over 3 s; the daemon is down from 0.7 s to 2 s.
"$EMIT" --spool "$T/sp" --socket "$SOCK" spread:600:3000 flush:30000 stats \
	>"$T/e.out" 2>"$T/e.err" &
ep=$!
sleep 0.7
kill_auditd
sleep 0.6
spooled=$(cat "$T"/sp/*.spool 2>/dev/null | wc -c)
check "events wait in the spool during the outage ($spooled bytes)" test "$spooled" -gt 0
sleep 0.7
start_auditd
wait $ep
eq "emitter exit" $? 0
has "file 600 failed=0" "$T/e.out"
worst=$(sed -n 's/.*max_us=\([0-9]*\).*/\1/p' "$T/e.out")
check "no emit call stalled (slowest ${worst} us)" test "${worst:-999999999}" -lt 200000
has "flush r=0" "$T/e.out"
has "dropped=0" "$T/e.out"
has "spooling" "$T/e.err"
stop_auditd
"$AUDIT" tail "$LOG" -n 100000 --json | python3 -c '
import json, sys
uids = [json.loads(l)["metadata"]["uid"] for l in sys.stdin]
print("unique", len(set(uids)), "total", len(uids))' >"$T/u.out"
has "unique 600 total" "$T/u.out"
"$AUDIT" verify "$LOG" >"$T/v.out"
eq "verify" $? 0

# An emitter that starts while the daemon is down, exits, and a new one on
# the same spool delivers what the first one left behind.
"$EMIT" --spool "$T/sp2" --socket "$SOCK" file:50 flush:300 >"$T/e2.out"
has "flush r=-110" "$T/e2.out"
start_auditd
"$EMIT" --spool "$T/sp2" --socket "$SOCK" file:1 flush:20000 >"$T/e3.out"
has "flush r=0" "$T/e3.out"
stop_auditd
"$AUDIT" verify "$LOG" >"$T/v.out"
eq "verify after resume" $? 0
"$AUDIT" tail "$LOG" -n 100000 --json | python3 -c '
import json, sys
uids = [json.loads(l)["metadata"]["uid"] for l in sys.stdin]
print("unique", len(set(uids)))' >"$T/u.out"
has "unique 651" "$T/u.out"
# Everything acknowledged: the delivery point is at the end of the spool.
python3 -c '
import os, sys
d = sys.argv[1]
seg, off = (int(x) for x in open(d + "/ack").read().split())
segs = sorted(int(f[:20]) for f in os.listdir(d) if f.endswith(".spool"))
size = os.path.getsize("%s/%020d.spool" % (d, seg)) if seg in segs else 0
print("delivered" if seg == segs[-1] and off == size else "behind", seg, off, segs)
' "$T/sp2" >"$T/ack.out"
has "^delivered" "$T/ack.out"
finish
