# tests/broker/lib.sh - sourced by the broker's system tests (policy, DLP):
# the programs under test, the skips (root, /dev/fuse, python3, radosgw),
# a scratch directory with a signing key pair, cleanup of every mount and
# daemon on every exit path, fail/ok and the final tally.
#
# A test that sets needs_s3=1 before sourcing runs under tests/s3/with-rgw
# (a throw-away radosgw; exit 77 where none can run) and gets the server's
# settings exported and the broker's credentials file in $tmp/cred.
#
# The test keeps in $pid the broker it started, in $apid occfs-auditd, and
# in $mnts its mounts, and may put in $cleanup_extra what else to undo
# (run after the daemons stopped); the broker logs to $tmp/broker.log.
# KEEP=1 keeps the scratch directory.
set -u
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
me=$(basename "$0")
broker=$top_builddir/brokerfs/brokerfs
ctl=$top_builddir/tools/occfsctl
mountc=$top_builddir/mountc/mountc
auditd=$top_builddir/audit/occfs-auditd
audit=$top_builddir/audit/occfs-audit
s3cli="python3 $top_srcdir/tests/s3/s3cli.py"
for b in "$broker" "$ctl" "$mountc" "$auditd" "$audit"; do
	[ -x "$b" ] || { echo "$me: $b not built"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "$me: needs root, skipped"; exit 77; }
[ -c /dev/fuse ] || { echo "$me: no /dev/fuse, skipped"; exit 77; }
command -v python3 >/dev/null || { echo "$me: no python3, skipped"; exit 77; }
if [ -n "${needs_s3:-}" ]; then
	# Before anything is created: exec leaves no trap behind.
	[ -n "${OCCFS_S3_ENV:-}" ] ||
		exec "$top_srcdir/tests/s3/with-rgw" sh "$0" "$@"
	set -a
	. "$OCCFS_S3_ENV"
	set +a
fi

tmp=$(mktemp -d "/tmp/occfs-${me%.sh}.XXXXXX")
pid=
apid=
mnts=
cleanup_extra= # shell code run after the daemons stopped, before rm
fails=0
cleanup() {
	# A mount whose broker died fails mountpoint(1): detach it anyway.
	for _m in $mnts; do
		umount "$_m" 2>/dev/null || umount -l "$_m" 2>/dev/null
	done
	for _p in $pid $apid; do
		kill "$_p" 2>/dev/null
		wait "$_p" 2>/dev/null
	done
	[ -n "$cleanup_extra" ] && eval "$cleanup_extra"
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
ok() { echo "ok: $*"; }

# start_broker ARGS...: brokerfs -f on $tmp/sock with ARGS, logging to
# $tmp/broker.log, its pid in $pid; exits the test if it does not listen.
start_broker() {
	rm -f "$tmp/sock"
	"$broker" -f --listen "unix:$tmp/sock" "$@" 2>"$tmp/broker.log" &
	pid=$!
	_i=0
	while [ ! -S "$tmp/sock" ]; do
		_i=$((_i + 1))
		if [ $_i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
			echo "$me: broker did not start"; cat "$tmp/broker.log"
			exit 1
		fi
		sleep 0.1
	done
}

# session_requests: the request count the broker logged for the session
# that closed last.
session_requests() {
	sed -n 's/.*session close: .* requests=\([0-9]*\).*/\1/p' \
		"$tmp/broker.log" | tail -1
}

# small_files DIR N: make DIR and N two-byte files f0 ... in it.
small_files() {
	mkdir "$1" || return 1
	_i=0
	while [ $_i -lt "$2" ]; do
		echo x >"$1/f$_i"
		_i=$((_i + 1))
	done
}

# finish: a sanitizer report in a daemon's log is a failure; the tally,
# with the end of the broker's log when something failed; exits.
finish() {
	grep -q -e Sanitizer -e 'runtime error' "$tmp"/*.log 2>/dev/null && {
		fail "sanitizer report in a daemon's log"
		grep -h -A20 -e Sanitizer -e 'runtime error' "$tmp"/*.log
	}
	if [ "$fails" != 0 ]; then
		echo "$me: $fails failures; broker log:"
		tail -40 "$tmp/broker.log" 2>/dev/null
		exit 1
	fi
	echo "$me: all passed"
	exit 0
}

mkdir -p "$tmp/pol" "$tmp/staging"
"$ctl" token keygen --private "$tmp/key" --public "$tmp/pub" >/dev/null ||
	exit 1
if [ -n "${needs_s3:-}" ]; then
	(umask 077 && printf 'access_key = %s\nsecret_key = %s\n' \
		"$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$tmp/cred") || exit 1
fi
