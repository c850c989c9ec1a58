# tests/controld/lib.sh - sourced by the control-plane tests: a scratch
# directory with a key pair and a policy, a real occfs-controld and a real
# brokerfs linked to it, mounts through mountc, and cleanup of all of it on
# every exit path.  Needs root and /dev/fuse (exit 77 otherwise).
set -u
top_builddir=${top_builddir:-.}
ctld=$top_builddir/controld/occfs-controld
broker=$top_builddir/brokerfs/brokerfs
ctl=$top_builddir/tools/occfsctl
mountc=$top_builddir/mountc/mountc
me=$(basename "$0")
for b in "$ctld" "$broker" "$ctl" "$mountc"; do
	[ -x "$b" ] || { echo "$me: $b not built"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "$me: needs root, skipped"; exit 77; }
[ -c /dev/fuse ] || { echo "$me: no /dev/fuse, skipped"; exit 77; }

tmp=$(mktemp -d /tmp/occfs-ctld.XXXXXX)
chmod 755 "$tmp"
ctld_pid=
broker_pid=
mnts=
bgpids=
fails=0
cleanup() {
	for p in $bgpids; do kill "$p" 2>/dev/null; done
	for m in $mnts; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null
	[ -n "$ctld_pid" ] && kill "$ctld_pid" 2>/dev/null
	wait 2>/dev/null
	if [ "$fails" != 0 ] || [ -n "${KEEP:-}" ]; then
		echo "--- controld.log"; tail -20 "$tmp/controld.log" 2>/dev/null
		echo "--- broker.log"; tail -30 "$tmp/broker.log" 2>/dev/null
	fi
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
finish() { # the exit status of the test
	# stop the daemons here so that sanitizer reports at exit are seen
	[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid"
	[ -n "$ctld_pid" ] && kill "$ctld_pid" 2>/dev/null && wait "$ctld_pid"
	broker_pid= ctld_pid=
	grep -h "Sanitizer\|runtime error" "$tmp"/*.log 2>/dev/null &&
		fail "sanitizer report in a daemon's log"
	[ "$fails" = 0 ] && { echo "$me: all passed"; exit 0; }
	echo "$me: $fails failed"; exit 1
}

mkdir -p "$tmp/root" "$tmp/pol" "$tmp/state" "$tmp/staging" "$tmp/h"
"$ctl" token keygen --private "$tmp/key" --public "$tmp/pub" >/dev/null ||
	exit 1
cat >"$tmp/pol/10-fs.yaml" <<EOF
version: 1
filesystems:
  - name: "ws-*"
    local: {root: $tmp/root}
    intents: [read, write]
    session: {ttl: 1h}
  - name: short
    local: {root: $tmp/root}
    intents: [write]
    session: {ttl: 10m}
EOF
cat >"$tmp/pol/20-tokens.yaml" <<EOF
tokens:
  public_key: $tmp/pub
  private_key: $tmp/key
  audience: ctld-test
  max_ttl: 2h
operators:
  uids: [0]
EOF

OSOCK=$tmp/controld.sock
CSOCK=$tmp/control.sock
BSOCK=$tmp/broker.sock
export OCCFS_CONTROLD_SOCKET=$OSOCK

wait_for() { # seconds command...: poll every 0.1 s
	_n=$(($1 * 10)); shift
	while [ $_n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1; _n=$((_n - 1))
	done
	return 1
}

start_ctld() { # extra options
	rm -f "$OSOCK"
	"$ctld" -f --policy "$tmp/pol" --state "$tmp/state" \
		--operator-socket "$OSOCK" --control-socket "$CSOCK" \
		--endpoint "unix:$BSOCK" --audit-spool "$tmp/spool" \
		"$@" 2>>"$tmp/controld.log" &
	ctld_pid=$!
	wait_for 10 test -S "$OSOCK" ||
		{ fail "occfs-controld did not start"; finish; }
}
stop_ctld() {
	kill "$ctld_pid" 2>/dev/null; wait "$ctld_pid" 2>/dev/null
	ctld_pid=
}

# The broker is linked once occfs-controld lists it as synced.
synced() { "$ctl" session status --json | grep -q '"synced": true'; }
start_broker() {
	"$broker" -f --listen "unix:$BSOCK" --policy "$tmp/pol" \
		--staging-dir "$tmp/staging" --control-socket "$CSOCK" \
		--socket-mode 0666 2>>"$tmp/broker.log" &
	broker_pid=$!
	wait_for 10 test -S "$BSOCK" ||
		{ fail "brokerfs did not start"; finish; }
	[ -z "$ctld_pid" ] || wait_for 10 synced ||
		{ fail "brokerfs never synced with occfs-controld"; finish; }
}

# create FSID NAME [occfsctl options]: a session; $tmp/h/NAME the handle,
# $tmp/NAME.create its --json reply; the sid is printed.
create() {
	_f=$1 _n=$2; shift 2
	rm -f "$tmp/h/$_n"
	"$ctl" session create --json --fsid "$_f" --handle-out "$tmp/h/$_n" \
		--mountpoint "$tmp/m.$_n" "$@" >"$tmp/$_n.create" || return 1
	cp "$tmp/h/$_n" "$tmp/h/$_n.saved" # mountc scrubs the file it read
	sed -n 's/.*"sid": "\([0-9a-f]*\)".*/\1/p' "$tmp/$_n.create"
}

# mount_line NAME: run the mount line occfs-controld returned, with
# mountc standing in for /sbin/mount.occfs.
mount_line() {
	_l=$(sed -n 's/.*"mount": "\(.*\)".*/\1/p' "$tmp/$1.create")
	set -- $_l
	[ "$1 $2 $3" = "mount -t occfs" ] || return 1
	mkdir -p "$5"
	mnts="$mnts $5"
	"$mountc" "$4" "$5" $6 $7 >"$tmp/mount.out" 2>&1
}

# replay NAME: mount NAME's saved handle again on a fresh directory.
replay() {
	cp "$tmp/h/$1.saved" "$tmp/h/$1.replay"
	mkdir -p "$tmp/m.$1.replay"
	"$mountc" "unix:$BSOCK" "$tmp/m.$1.replay" -o "handle=$tmp/h/$1.replay" \
		>"$tmp/mount.out" 2>&1 && { mnts="$mnts $tmp/m.$1.replay"; return 0; }
	return 1
}
