#!/bin/sh
# tamper.sh - rotation by size and age, zstd compression of closed
# segments, verify across segments and a restart; then each kind of damage
# (a modified byte, a deleted, reordered or truncated record, a cut tail,
# swapped or deleted segments, corrupt compressed data) is found by
# `occfs-audit verify` at the right segment and record.
srcdir=$(cd "${top_srcdir:-.}/tests/audit" && pwd)
. "$srcdir/lib.sh"
command -v zstd >/dev/null || { echo "tamper.sh: zstd not installed"; exit 77; }

start_auditd --segment-size 8192
"$AUDIT" tail "$LOG" -f -n 0 >"$T/follow.out" &
tailpid=$!
CLEANUP_EXTRA='kill $tailpid 2>/dev/null'
sleep 0.5 # -n 0: only records after it started
"$EMIT" --spool "$T/sp" --socket "$SOCK" file:200 flush:20000 >"$T/e.out"
has "flush r=0" "$T/e.out"
sleep 1
kill $tailpid
wait $tailpid 2>/dev/null
CLEANUP_EXTRA=
eq "tail -f followed across rotation" "$(cut -d' ' -f1 "$T/follow.out" | sort -nu | wc -l)" 200
stop_auditd
nseg=$(ls "$LOG" | grep -c '^seg-')
nzst=$(ls "$LOG" | grep -c '^seg-.*\.log\.zst$')
check "several segments ($nseg)" test "$nseg" -ge 5
eq "all but the open segment compressed" "$nzst" $((nseg - 1))
check "no leftovers" test -z "$(ls "$LOG" | grep -v '^seg-.*\.log\(\.zst\)\?$' | grep -v '^HEAD$')"
"$AUDIT" verify "$LOG" >"$T/v.out"
eq "verify exit" $? 0
has "^ok: 200 records in $nseg segments" "$T/v.out"
"$AUDIT" verify "$LOG" --json >"$T/vj.out"
has '"ok":true' "$T/vj.out"

# Age rotation: a segment older than two seconds is closed at the next
# turn; the one opened after it must stay open until auditd stops.
start_auditd --segment-age 2
"$EMIT" --spool "$T/sp" --socket "$SOCK" file:3 flush:20000 sleep:3000 \
	file:3 flush:20000 >"$T/e.out"
stop_auditd
eq "age rotation" "$(ls "$LOG" | grep -c '^seg-.*\.log\.zst$')" $((nzst + 1))
eq "records in the new open segment" "$(cat "$LOG"/seg-*.log | wc -l)" 3
"$AUDIT" verify "$LOG" >"$T/v.out"
has "^ok: 206 records" "$T/v.out"

first=$(ls "$LOG" | grep '^seg-' | sed -n 1p)
second=$(ls "$LOG" | grep '^seg-' | sed -n 2p)
third=$(ls "$LOG" | grep '^seg-' | sed -n 3p)
open=$(ls "$LOG" | grep '^seg-.*\.log$')
n2=$(echo "$second" | sed 's/seg-0*\([0-9]*\)\.log.*/\1/')
lines_open=$(wc -l <"$LOG/$open")
last=206

# expect_bad NAME PATTERN: copy the log, run "$@" on it, verify must fail
# with PATTERN in its one-line report.
expect_bad() {
	_name=$1 _pat=$2
	shift 2
	rm -rf "$T/c"
	cp -a "$LOG" "$T/c"
	(cd "$T/c" && "$@")
	"$AUDIT" verify "$T/c" >"$T/bad.out" 2>&1
	_rc=$?
	if [ $_rc -eq 1 ] && grep -q -- "$_pat" "$T/bad.out"; then ok; else
		bad "$_name: exit $_rc, want 1 and '$_pat': $(cat "$T/bad.out")"
	fi
}
tp() { python3 "$srcdir/tamper.py" "$@"; }

expect_bad "flipped byte, compressed segment" \
	"^$first: line 3 (record 3): hash mismatch: record 3 was modified" tp "$first" flip 3
expect_bad "flipped byte, open segment" \
	"^$open: line 2 (record $((last - lines_open + 2))): hash mismatch" tp "$open" flip 2
expect_bad "deleted record" \
	"^$second: line 2 (record $((n2 + 1))): records $((n2 + 1))..$((n2 + 1)) are missing (deleted)" \
	tp "$second" delete 2
expect_bad "reordered records" \
	"^$second: line 2 (record $((n2 + 1))): records out of order.*reordered" tp "$second" swap 2
expect_bad "truncated inside a record" \
	"^$open: line $lines_open (record $last): truncated" tp "$open" cut
expect_bad "whole last record cut" \
	"^HEAD: line 0 (record $last): log ends at record $((last - 1)) but HEAD records $last" \
	tp "$open" droplast
expect_bad "swapped segments" \
	"^$first: line 1 (record 1): segment name says record 1 but it starts at $n2 (segments swapped" \
	sh -c "mv $first x && mv $second $first && mv x $second"
expect_bad "deleted segment" \
	"^$third: line 0 (record $n2): segment starts at .*records missing" rm "$second"
expect_bad "corrupt compressed data" \
	"^$second: line [0-9]* (record [0-9]*): corrupt or truncated compressed data" \
	tp "$second" rawflip
expect_bad "truncated compressed segment" \
	"^$second: .*\(truncated\|corrupt\)" truncate -s 100 "$second"
expect_bad "flip for the JSON report" "hash mismatch" tp "$first" flip 3
"$AUDIT" verify "$T/c" --json >"$T/bad.out"
has '"ok":false,.*"segment":"'"$first"'","line":3,"record":3,"problem":"hash mismatch' "$T/bad.out"

check "unknown directory is an error" sh -c "'$AUDIT' verify '$T/none' 2>/dev/null; [ \$? -eq 2 ]"
finish
