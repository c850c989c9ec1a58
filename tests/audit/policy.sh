#!/bin/sh
# policy.sh - occfs-auditd --policy: the policy's audit section gives the
# socket, the log directory and the segment size; the command line wins
# over it; a broken policy stops the daemon with file:line:column problems
# (and -n says the same).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/audit/lib.sh"

mkdir -p "$T/pol" "$T/bad"
cat >"$T/pol/50-audit.yaml" <<YAML
audit:
  socket: $T/from-policy.sock
  log_dir: $T/policy-log
  segment_max_bytes: 8KiB
YAML
"$AUDITD" --policy "$T/pol" 2>>"$T/auditd.err" &
AUDITD_PID=$!
_i=0
while [ ! -S "$T/from-policy.sock" ] && [ $_i -lt 500 ]; do
	sleep 0.01
	_i=$((_i + 1))
done
check "listens on the policy's socket" test -S "$T/from-policy.sock"
"$EMIT" --spool "$T/sp" --socket "$T/from-policy.sock" --product p \
	file:200 flush:10000 >/dev/null
check "writes to the policy's log_dir" test -d "$T/policy-log"
eq "records in the policy's log" "$("$AUDIT" tail "$T/policy-log" -n 100000 --json | wc -l)" 200
# 200 records of a few hundred bytes with 8 KiB segments: rotated.
segs=$(ls "$T/policy-log" | grep -c -v HEAD)
check "the policy's segment size rotates ($segs segments)" test "$segs" -gt 2
check "the chain verifies" "$AUDIT" verify "$T/policy-log"
stop_auditd

# The command line wins over the policy.
start_auditd --policy "$T/pol"
check "-s and -d win over the policy" test -S "$SOCK"
stop_auditd

# A broken policy: problems with their place, exit 1, nothing started.
printf 'audit:\n  socket: relative/path\n  bogus: 1\n' >"$T/bad/50-audit.yaml"
"$AUDITD" -n --policy "$T/bad" >"$T/n.out" 2>&1
eq "-n on a broken policy exits 1" $? 1
has "50-audit.yaml:[0-9]*:[0-9]*:" "$T/n.out"
"$AUDITD" --policy "$T/bad" -s "$T/never.sock" >"$T/run.out" 2>&1
eq "a broken policy stops the daemon" $? 1
check "nothing listens after a broken policy" test ! -e "$T/never.sock"
finish
