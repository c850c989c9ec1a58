# lib.sh - sourced by the audit tests: a temp dir, a real occfs-auditd on a
# unix socket in it (stopped on every exit path), and pass/fail counters.
set -u
top_builddir=${top_builddir:-.}
AUDITD=$top_builddir/audit/occfs-auditd
AUDIT=$top_builddir/audit/occfs-audit
EMIT=$top_builddir/tests/audit/audit-emit
for b in "$AUDITD" "$AUDIT" "$EMIT"; do
	[ -x "$b" ] || { echo "$0: $b not built"; exit 77; }
done
T=$(mktemp -d /tmp/audit-test.XXXXXX)
SOCK=$T/audit.sock
LOG=$T/log
AUDITD_PID=
CLEANUP_EXTRA=
passed=0
failed=0

stop_auditd() {
	[ -n "$AUDITD_PID" ] || return 0
	kill -TERM "$AUDITD_PID" 2>/dev/null
	wait "$AUDITD_PID"
	_rc=$?
	AUDITD_PID=
	return $_rc
}
kill_auditd() {
	[ -n "$AUDITD_PID" ] || return 0
	kill -KILL "$AUDITD_PID" 2>/dev/null
	wait "$AUDITD_PID" 2>/dev/null
	AUDITD_PID=
}
_cleanup() {
	stop_auditd
	[ -n "$CLEANUP_EXTRA" ] && eval "$CLEANUP_EXTRA"
	rm -rf "$T"
}
trap _cleanup EXIT
trap 'exit 1' INT TERM HUP

# start_auditd [ARGS...]: on $SOCK, log in $LOG, stderr to $T/auditd.err
start_auditd() {
	rm -f "$SOCK"
	"$AUDITD" -s "$SOCK" -d "$LOG" "$@" 2>>"$T/auditd.err" &
	AUDITD_PID=$!
	_i=0
	while [ ! -S "$SOCK" ] && [ $_i -lt 500 ]; do
		sleep 0.01
		_i=$((_i + 1))
	done
	[ -S "$SOCK" ] || { echo "occfs-auditd did not start"; cat "$T/auditd.err"; exit 1; }
}

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds
check() { _d=$1; shift; if "$@"; then ok; else bad "$_d"; fi; }
# has PATTERN FILE
has() { if grep -q -- "$1" "$2"; then ok; else bad "'$1' not in $2: $(head -c 2000 "$2")"; fi; }
# records: the number of records in $LOG
records() { "$AUDIT" tail "$LOG" -n 100000000 --json "$@" | wc -l; }
# eq WHAT GOT WANT
eq() { if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi; }
finish() {
	echo "$(basename "$0"): $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
