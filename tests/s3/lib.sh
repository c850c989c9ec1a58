# tests/s3/lib.sh - shared by the s3 backend's system tests (tests/s3/*.sh).
#
# A test sources this, calls s3t_init, and then starts brokers with the s3
# backend, mounts them through mount.occfs and checks what landed in the
# bucket with s3cli.py, an S3 client that shares no code with the broker.
# Everything started is recorded and stopped by the EXIT trap (mounts,
# brokers, proxies, the radosgw), also when the test fails half-way.
#
# Checks print "ok - what" or "FAIL - what: why"; s3t_done prints the tally
# and exits 0 only when nothing failed.  No server: exit 77.
#
# Environment: OCCFS_BIN (build dir; else brokerfs/occfsctl/mount.occfs from
# PATH), OCCFS_S3_ENV (use this rgw-start env file instead of starting a
# radosgw), S3T_KEEP=1 (keep the work directory for a post-mortem).

S3T_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
S3T_PYTHON=${PYTHON:-python3}
[ -x /usr/bin/python3 ] && S3T_PYTHON=/usr/bin/python3
S3T_PASS=0
S3T_FAIL=0
S3T_BROKERS=()   # "name pid" of running brokers
S3T_PROCS=()     # pids of helper processes (proxies)
S3T_RGW=""       # state dir of the radosgw we started

s3t_log() { echo "# $*"; }
s3t_ok() {
	S3T_PASS=$((S3T_PASS + 1))
	echo "ok - $*"
}
s3t_fail() {
	S3T_FAIL=$((S3T_FAIL + 1))
	echo "FAIL - $*"
}
# s3t_check DESCRIPTION COMMAND...: ok when COMMAND succeeds
s3t_check() {
	local what=$1
	shift
	if "$@"; then s3t_ok "$what"; else s3t_fail "$what"; fi
}
# s3t_eq DESCRIPTION EXPECTED ACTUAL
s3t_eq() {
	if [ "$2" = "$3" ]; then
		s3t_ok "$1"
	else
		s3t_fail "$1: expected [$2], got [$3]"
	fi
}
s3t_done() {
	echo "# $S3T_PASS passed, $S3T_FAIL failed"
	[ "$S3T_FAIL" = 0 ]
	exit
}
# A set-up step failed: nothing after it can be meaningful.
s3t_abort() {
	s3t_fail "$*"
	[ -n "${S3T_LASTLOG:-}" ] && [ -f "$S3T_LASTLOG" ] &&
		{ echo "# last lines of $S3T_LASTLOG:"; tail -15 "$S3T_LASTLOG" | sed 's/^/#   /'; }
	s3t_done
}

# Under make check (top_builddir set) the programs of that build are the
# ones under test, installed or not.
s3t_bin() { # name build-subpath
	if [ -z "${OCCFS_BIN:-}" ] && [ -n "${top_builddir:-}" ] &&
		[ -x "$top_builddir/$2" ]; then
		echo "$(cd "$top_builddir" && pwd)/$2"
	elif [ -n "${OCCFS_BIN:-}" ]; then
		echo "$OCCFS_BIN/$2"
	else
		command -v "$1"
	fi
}

# s3t_init NAME: work dir, binaries, radosgw, credentials, a signing key.
s3t_init() {
	S3T_NAME=$1
	if [ "$(id -u)" != 0 ]; then
		echo "$S3T_NAME: mounts filesystems: run as root" >&2
		exit 1
	fi
	S3T_WORK=$(mktemp -d "${TMPDIR:-/tmp}/occfs-s3t.$S3T_NAME.XXXXXX") || exit 1
	chmod 0755 "$S3T_WORK"
	trap s3t_cleanup EXIT
	trap 'exit 130' INT TERM HUP
	BROKERFS=$(s3t_bin brokerfs brokerfs/brokerfs)
	OCCFSCTL=$(s3t_bin occfsctl tools/occfsctl)
	MOUNTC=$(s3t_bin mountc mountc/mountc)
	MOUNT_HELPER=""
	for d in /sbin /usr/sbin /usr/local/sbin; do
		[ -x "$d/mount.occfs" ] && { MOUNT_HELPER=$d/mount.occfs; break; }
	done
	[ -x "$BROKERFS" ] && [ -x "$OCCFSCTL" ] && [ -x "$MOUNTC" ] ||
		{ echo "$S3T_NAME: brokerfs, occfsctl or mountc not found (OCCFS_BIN or PATH)" >&2; exit 1; }
	if [ -z "${OCCFS_S3_ENV:-}" ]; then
		S3T_RGW=$S3T_WORK/rgw
		"$S3T_HERE/rgw-start" "$S3T_RGW" >"$S3T_WORK/rgw-start.log" 2>&1
		local rc=$?
		if [ $rc != 0 ]; then
			cat "$S3T_WORK/rgw-start.log" >&2
			S3T_RGW=""
			exit $rc
		fi
		OCCFS_S3_ENV=$S3T_WORK/rgw/env
	fi
	set -a
	# shellcheck disable=SC1090
	. "$OCCFS_S3_ENV"
	set +a
	S3T_RGW_HOSTPORT=${S3_ENDPOINT#http://}
	S3T_PREFIX=${S3T_PREFIX:-s3t-$S3T_NAME-$$}
	(umask 077 && printf 'access_key = %s\nsecret_key = %s\n' "$S3_ACCESS_KEY" \
		"$S3_SECRET_KEY" >"$S3T_WORK/credentials" &&
		printf '%s:%s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$S3T_WORK/passwd") || exit 1
	"$OCCFSCTL" token keygen --private "$S3T_WORK/key" --public "$S3T_WORK/key.pub" \
		>/dev/null || exit 1
}

s3t_cleanup() {
	local m entry pid
	trap - EXIT
	# mounts first (deepest first), then brokers, helpers, the server
	awk -v root="$S3T_WORK" 'index($5, root "/") == 1 { print $5 }' \
		/proc/self/mountinfo | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
			fusermount3 -u -z "$m" 2>/dev/null
	done
	# only brokers still running: a stopped one's pid may be reused
	for entry in "${S3T_BROKERS[@]}"; do
		pid=$(eval "echo \${S3T_PID_${entry%% *}:-}")
		[ "$pid" = "${entry#* }" ] || continue
		kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	# helpers still running as our children (a reaped pid may be reused)
	for pid in "${S3T_PROCS[@]}"; do
		[ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$$" ] || continue
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	[ -n "$S3T_RGW" ] && "$S3T_HERE/rgw-stop" "$S3T_RGW"
	if [ "${S3T_KEEP:-0}" = 1 ]; then
		echo "# kept $S3T_WORK"
	else
		rm -rf "$S3T_WORK" 2>/dev/null || { sleep 1; rm -rf "$S3T_WORK"; }
	fi
}

# s3t_broker_start NAME [brokerfs options...]: a broker with the s3 backend
# on $S3T_WORK/NAME.sock, staging in $S3T_WORK/NAME.staging (kept across
# restarts), log in $S3T_WORK/NAME.log.  Defaults: the radosgw directly, STS
# on, prefix $S3T_PREFIX; options given later override them.
# Sets S3T_PID_<NAME>; returns non-zero when it does not come up.
s3t_broker_start() {
	local name=$1 i=0 pid sock=$S3T_WORK/$1.sock
	shift
	rm -f "$sock"
	mkdir -p "$S3T_WORK/$name.root"
	S3T_LASTLOG=$S3T_WORK/$name.log
	"$BROKERFS" -f --listen "unix:$sock" --token-pubkey "$S3T_WORK/key.pub" \
		--root "$S3T_WORK/$name.root" --backend s3 \
		--staging-dir "$S3T_WORK/$name.staging" \
		--s3-endpoint "$S3_ENDPOINT" --s3-region "$S3_REGION" \
		--s3-bucket "$S3_BUCKET" --s3-prefix "$S3T_PREFIX" \
		--s3-credentials "$S3T_WORK/credentials" --s3-rgw-quirks \
		--s3-sts-endpoint "$S3_ENDPOINT" --s3-role-arn "$S3_ROLE_ARN" \
		"$@" >>"$S3T_WORK/$name.log" 2>&1 &
	pid=$!
	S3T_BROKERS+=("$name $pid")
	eval "S3T_PID_$name=$pid"
	while [ ! -S "$sock" ]; do
		i=$((i + 1))
		if [ $i -gt 150 ] || ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
}

# s3t_broker_stop NAME [SIGNAL]: signal it and wait for it to exit.
s3t_broker_stop() {
	local pid
	pid=$(eval "echo \${S3T_PID_$1:-}")
	[ -n "$pid" ] || return 0
	kill -"${2:-TERM}" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	eval "S3T_PID_$1="
}

# s3t_mount BROKER FSID DIR [intent [options]]: a fresh handle, mounted
# like a guest.
s3t_mount() {
	local h=$S3T_WORK/handle.$$.$RANDOM opts
	mkdir -p "$3"
	"$OCCFSCTL" token mint --key "$S3T_WORK/key" --fsid "$2" \
		--intent "${4:-write}" --out "$h" || return 1
	opts="handle=$h,allow_other${5:+,$5}"
	if [ -n "$MOUNT_HELPER" ]; then
		mount -t occfs "unix:$S3T_WORK/$1.sock" "$3" -o "$opts"
	else
		"$MOUNTC" "unix:$S3T_WORK/$1.sock" "$3" -o "$opts"
	fi || { rm -f "$h"; return 1; }
	rm -f "$h"
	mountpoint -q "$3"
}

# By the mount table, not mountpoint(1): a mount whose daemon died answers
# stat with EIO and would look unmounted.
s3t_umount() {
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo || return 0
	umount "$1" 2>/dev/null || fusermount3 -u -z "$1" 2>/dev/null || umount -l "$1"
}

# The object key of PATH in filesystem FSID.
s3t_key() { echo "$S3T_PREFIX/$1/$2"; }

s3t_s3() { "$S3T_PYTHON" "$S3T_HERE/s3cli.py" "$@"; }

# s3t_absent KEY: the object does not exist (the server says 404)
s3t_absent() { ! s3t_s3 exists "$1"; }
# s3t_has_meta KEY NAME VALUE: the object has x-amz-meta-NAME: VALUE
s3t_has_meta() { s3t_s3 head "$1" | grep -x "x-amz-meta-$2: $3" >/dev/null; }

# md5 of an object as the server holds it ("missing" when absent).
s3t_obj_md5() {
	local out
	out=$(s3t_s3 get "$1" 2>/dev/null | md5sum) || true
	if s3t_s3 exists "$1"; then echo "${out%% *}"; else echo missing; fi
}

# Bytes of data held in a broker's staging directory (the .data files).
s3t_staged_bytes() { # BROKER
	find "$S3T_WORK/$1.staging" -maxdepth 1 -name '*.data' -printf '%s\n' 2>/dev/null |
		awk '{ n += $1 } END { print n + 0 }'
}

# s3t_wait_obj KEY MD5 SECONDS: poll until the object has those bytes.
s3t_wait_obj() {
	local end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -le $end ]; do
		[ "$(s3t_obj_md5 "$1")" = "$2" ] && return 0
		sleep 0.5
	done
	return 1
}

# Deterministic data: s3t_gen SEED SIZE > file
s3t_gen() {
	"$S3T_PYTHON" -c '
import random, sys
r = random.Random(int(sys.argv[1])); n = int(sys.argv[2]); out = sys.stdout.buffer
while n > 0:
    k = min(n, 1 << 20); out.write(r.randbytes(k)); n -= k
' "$1" "$2"
}

# s3t_faultproxy NAME: start faultproxy.py in front of the radosgw; sets
# S3T_FP_URL (endpoint for the broker), S3T_FP_CTL (control file) and
# S3T_FP_LOG (request log).  s3t_fault MODE...: set the fault.
s3t_faultproxy() {
	local i=0
	S3T_FP_CTL=$S3T_WORK/$1.ctl
	S3T_FP_LOG=$S3T_WORK/$1.log
	echo pass >"$S3T_FP_CTL"
	"$S3T_PYTHON" "$S3T_HERE/faultproxy.py" --upstream "$S3T_RGW_HOSTPORT" \
		--control "$S3T_FP_CTL" --log "$S3T_FP_LOG" \
		--port-file "$S3T_WORK/$1.port" 2>>"$S3T_WORK/$1.err" &
	S3T_PROCS+=($!)
	while [ ! -s "$S3T_WORK/$1.port" ]; do
		i=$((i + 1))
		[ $i -gt 100 ] && return 1
		sleep 0.05
	done
	S3T_FP_URL=http://127.0.0.1:$(cat "$S3T_WORK/$1.port")
}
s3t_fault() { echo "$*" >"$S3T_FP_CTL"; }
# How many requests got fault MODE so far.
s3t_faults_seen() { awk -v m="$1" '$5 == m' "$S3T_FP_LOG" | wc -l; }

# s3t_pywrite FILE SEED SIZE [fsync]: write, optionally fsync, close; print
# "ok" or the errno name of the first failing call (write/fsync/close).
s3t_pywrite() {
	"$S3T_PYTHON" - "$@" <<'PY'
import errno, os, random, sys
path, seed, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sync = len(sys.argv) > 4
data = random.Random(seed).randbytes(size)
step = "open"
try:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    step = "write"
    off = 0
    while off < len(data):
        off += os.write(fd, data[off:off + (1 << 20)])
    if sync:
        step = "fsync"
        os.fsync(fd)
    step = "close"
    os.close(fd)
    print("ok")
except OSError as e:
    print("%s %s" % (step, errno.errorcode.get(e.errno, e.errno)))
PY
}
