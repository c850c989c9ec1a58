#!/bin/sh
# spool-full.sh - the spool's size bound and its policies.  With "drop"
# (the default) file events beyond the bound are dropped without failing
# the call, durable events still fit in the reserve, and once space
# returns one "Events Dropped" event carries the exact count.  With
# "fail" the call returns -ENOSPC.  Durable events fail closed when even
# the reserve is used up.
srcdir=$(cd "${top_srcdir:-.}/tests/audit" && pwd)
. "$srcdir/lib.sh"

max=524288
"$EMIT" --spool "$T/sp" --socket "$SOCK" --max $max file:3000 stats auth \
	wait:"$T/go" flush:30000 file:1 flush:20000 stats >"$T/e.out" 2>"$T/e.err" &
ep=$!
i=0
touch "$T/e.out"
while ! grep -q "^auth" "$T/e.out" && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
has "file 3000 failed=0" "$T/e.out"
has "auth r=0" "$T/e.out"
dropped=$(sed -n '1,/^auth/s/.*dropped=\([0-9]*\).*/\1/p' "$T/e.out")
check "file events dropped ($dropped)" test "${dropped:-0}" -gt 0
used=$(cat "$T"/sp/*.spool | wc -c)
check "spool within its bound ($used)" test "$used" -le $max
start_auditd
touch "$T/go"
wait $ep
has "flush r=0" "$T/e.out"
has "dropping file events" "$T/e.err"
stop_auditd
"$AUDIT" tail "$LOG" -n 100000 --json >"$T/all.json"
n=$(python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
d = [e for e in ev if e["activity_id"] == 99 and e["class_uid"] == 1001]
print(len(d), d[0]["count"] if d else -1, len(ev))' "$T/all.json")
set -- $n
eq "one summary event" "$1" 1
eq "it counts every dropped event" "$2" "$dropped"
# Every kept file event, the auth, the summary and the last file event.
eq "records" "$3" $((3000 - dropped + 3))
"$AUDIT" verify "$LOG" >/dev/null
eq "verify" $? 0

# Policy "fail": the caller sees -ENOSPC and can refuse the operation.
"$EMIT" --spool "$T/sp3" --max $max --policy fail file:3000 stats >"$T/f.out"
failed_n=$(sed -n 's/^file 3000 failed=\([0-9]*\).*/\1/p' "$T/f.out")
check "fail policy reports failures ($failed_n)" test "${failed_n:-0}" -gt 0

# The reserve is finite: durable events then fail closed.
"$EMIT" --spool "$T/sp4" --max $max file:3000 auths:1000 >"$T/a.out"
has "auths ok=[1-9][0-9]* r=-28" "$T/a.out"

# Aggregation: 500 reads of one file become one event with the sum;
# a denial in between is its own event; sampling keeps 1 in 10.
start_auditd
"$EMIT" --spool "$T/sp5" --socket "$SOCK" --op read=aggregate:60000 \
	read:500:a.txt deny:a.txt read:250:b.txt flush:20000 stats >"$T/g.out"
has "aggregated=750" "$T/g.out"
"$EMIT" --spool "$T/sp6" --socket "$SOCK" --op write=sample:10 \
	file:600 flush:20000 stats >"$T/s.out"
has "sampled_out=90" "$T/s.out"
check "rename cannot be aggregated" sh -c "! '$EMIT' --spool '$T/sp7' --op rename=aggregate:10 >/dev/null"
stop_auditd
"$AUDIT" tail "$LOG" -n 10 --fsid fs-read --json >"$T/agg.json"
python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
r = sorted((e["file"]["path"], e.get("count", 0), e["unmapped"].get("bytes"), e["status"]) for e in ev)
print(r)' "$T/agg.json" >"$T/agg.out"
has "('a.txt', 0, 0, 'Failure'), ('a.txt', 500, 50000, 'Success'), ('b.txt', 250, 25000, 'Success')" "$T/agg.out"
finish
