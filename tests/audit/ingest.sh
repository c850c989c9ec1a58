#!/bin/sh
# ingest.sh - two emitters feed one occfs-auditd at once: every event
# arrives, the chain verifies, tail filters by session, filesystem and
# class, a live authentication event matches its golden form, the file
# sink reopens on SIGHUP and SIGTERM stops the daemon cleanly.
srcdir=$(cd "${top_srcdir:-.}/tests/audit" && pwd)
. "$srcdir/lib.sh"

start_auditd --file-sink "$T/sink.json"
"$EMIT" --spool "$T/sp1" --socket "$SOCK" --product e1 \
	file:300:sA:fsA auth api finding flush:20000 stats >"$T/e1.out" 2>&1 &
p1=$!
"$EMIT" --spool "$T/sp2" --socket "$SOCK" --product e2 \
	file:300:sB:fsB auth:fail flush:20000 stats >"$T/e2.out" 2>&1 &
p2=$!
wait $p1
wait $p2
has "flush r=0" "$T/e1.out"
has "flush r=0" "$T/e2.out"
has "auth r=0" "$T/e1.out"
has "delivered=303 refused=0 dropped=0" "$T/e1.out"
has "delivered=301 refused=0 dropped=0" "$T/e2.out"

"$AUDIT" verify "$LOG" >"$T/v.out"
eq "verify exit" $? 0
has "^ok: 604 records in 1 segments" "$T/v.out"
eq "records" "$(records)" 604
eq "sid sA" "$(records --sid sA)" 300
eq "fsid fsB" "$(records --fsid fsB)" 300
eq "class 3002" "$(records --class 3002)" 2
eq "class 6003" "$(records --class 6003)" 1
eq "class 2006" "$(records --class 2006)" 1
eq "sid s1 (auth and finding)" "$(records --sid s1)" 3
eq "tail -n 5" "$("$AUDIT" tail "$LOG" -n 5 | wc -l)" 5
"$AUDIT" tail "$LOG" -n 1 --class 3002 >"$T/human.out"
has "Authentication: Logon" "$T/human.out"

# Sequence numbers run 1..303 per emitter, with no gap or repeat.
"$AUDIT" tail "$LOG" -n 1000 --json | python3 -c '
import json, sys
seqs = {}
for l in sys.stdin:
    e = json.loads(l)
    seqs.setdefault(e["metadata"]["product"]["feature"]["name"], []).append(e["metadata"]["sequence"])
    assert "logged_time" in e["metadata"]
print(sorted(seqs["e1"]) == list(range(1, 304)), sorted(seqs["e2"]) == list(range(1, 302)))
' >"$T/seq.out" 2>&1
has "True True" "$T/seq.out"

# The live failed authentication, normalised, against its golden form.
"$AUDIT" tail "$LOG" -n 2 --class 3002 --sid s1 --json | grep '"Failure"' |
	python3 -c '
import json, sys
e = json.loads(sys.stdin.read())
m = e["metadata"]
for k in ("uid", "correlation_uid", "logged_time"):
    m[k] = "X"
m["sequence"] = 0
e["time"] = 0
e["device"]["hostname"] = "X"
print(json.dumps(e, sort_keys=True))' >"$T/live.json"
[ -n "${UPDATE_GOLDEN:-}" ] && python3 -m json.tool "$T/live.json" >"$srcdir/golden/live-auth-fail.json"
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))' \
	"$srcdir/golden/live-auth-fail.json" >"$T/live.want"
check "live auth event matches golden" cmp -s "$T/live.json" "$T/live.want"
cmp -s "$T/live.json" "$T/live.want" || diff "$T/live.want" "$T/live.json"

# The file sink got every record; after a move and SIGHUP a new file.
eq "sink lines" "$(wc -l <"$T/sink.json")" 604
mv "$T/sink.json" "$T/sink.1"
kill -HUP "$AUDITD_PID"
sleep 0.3
"$EMIT" --spool "$T/sp1" --socket "$SOCK" --product e1 file:5 flush:10000 >"$T/e3.out"
has "flush r=0" "$T/e3.out"
eq "new sink lines" "$(wc -l <"$T/sink.json" 2>/dev/null)" 5

stop_auditd
eq "auditd exit status on SIGTERM" $? 0
check "socket removed" test ! -e "$SOCK"
"$AUDIT" verify "$LOG" >"$T/v.out"
eq "verify after stop" $? 0
has "^ok: 609 records" "$T/v.out"

# A second start continues the chain.
start_auditd
"$EMIT" --spool "$T/sp1" --socket "$SOCK" file:3 flush:10000 >/dev/null
stop_auditd
"$AUDIT" verify "$LOG" >"$T/v.out"
has "^ok: 612 records" "$T/v.out"
finish
