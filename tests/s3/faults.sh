#!/bin/bash
# tests/s3/faults.sh - the s3 backend under injected faults.
#
# faultproxy.py sits between the broker and radosgw.  Under 5xx bursts
# (SlowDown / InternalError, before and after the server applied the
# request), slow replies, connection resets mid-request and truncated reply
# bodies, every file written through the mount and closed successfully must
# be byte-identical in S3 (read back with s3cli.py, not through occfs), and
# reads must return the right bytes or fail, never wrong bytes.  When the
# faults outlast the retry budget the error must reach close or fsync (EIO),
# the data must stay staged, and it must be uploaded once the server
# behaves again.  Each fault is checked to have actually been injected.
#
#   sudo tests/s3/faults.sh      (OCCFS_BIN=build dir to test a build)
. "$(dirname "$0")/lib.sh"
s3t_init faults

BUDGET_MS=6000
s3t_faultproxy fp || s3t_abort "faultproxy did not start"
s3t_broker_start b --s3-endpoint "$S3T_FP_URL" --s3-sts-endpoint "$S3_ENDPOINT" \
	--s3-retry-budget "$BUDGET_MS" --flush-timeout 5000 ||
	s3t_abort "brokerfs with the s3 backend did not start"
M=$S3T_WORK/mnt
s3t_mount b F "$M" || s3t_abort "mount of fsid F"
s3t_log "broker on faultproxy $S3T_FP_URL -> $S3_ENDPOINT, retry budget ${BUDGET_MS} ms"

# write_and_verify LABEL: files of 1 B, 200 kB and 20 MiB (multipart), one
# closed, one fsync'ed; each must close cleanly and be identical in S3.
n=0
write_and_verify() {
	local label=$1 size sync name r want
	for size in 1 200000 20971520; do
		for sync in "" fsync; do
			n=$((n + 1))
			name=$label-$size${sync:+-sync}
			r=$(s3t_pywrite "$M/$name" "$n" "$size" $sync)
			if [ "$r" != ok ]; then
				s3t_fail "$label: $name: $r"
				continue
			fi
			want=$(s3t_gen "$n" "$size" | md5sum)
			s3t_eq "$label: $name closed ok and is identical in S3" \
				"${want%% *}" "$(s3t_obj_md5 "$(s3t_key F "$name")")"
		done
	done
}

# injected LABEL MODE: the fault must have fired at least once, or the
# checks before it proved nothing.
injected() {
	local c
	c=$(s3t_faults_seen "$2")
	if [ "$c" -gt 0 ]; then
		s3t_ok "$1: $c requests got '$2'"
	else
		s3t_fail "$1: the fault '$2' was never injected (no matching request)"
	fi
}

s3t_fault pass
write_and_verify pass

s3t_fault 5xx count=4 method=PUT,POST
write_and_verify 5xx
injected 5xx 5xx

s3t_fault 5xx-after count=3 method=PUT,POST
write_and_verify 5xx-after
injected 5xx-after 5xx-after

s3t_fault slow count=3 delay=2
write_and_verify slow
injected slow slow

s3t_fault reset count=3 method=PUT
write_and_verify reset
injected reset reset

# Truncated bodies: objects the broker has never seen (planted with the
# independent client, with s3fs-style metadata) read through a fresh mount
# while GET replies (listings included) are cut short.
for i in 1 2 3; do
	s3t_gen $((100 + i)) $((i * 700000)) >"$S3T_WORK/plant$i"
	s3t_s3 put "$(s3t_key T "p$i")" "$S3T_WORK/plant$i" mode=33188 uid=0 gid=0 \
		mtime=1600000000 || s3t_abort "planting objects"
done
s3t_fault truncate count=4 method=GET
T=$S3T_WORK/mnt-t
s3t_mount b T "$T" || s3t_abort "mount of fsid T"
s3t_eq "truncate: listing of a fresh mount" "p1 p2 p3" "$(ls "$T" 2>&1 | xargs)"
for i in 1 2 3; do
	s3t_check "truncate: p$i reads back the planted bytes" \
		cmp -s "$T/p$i" "$S3T_WORK/plant$i"
done
injected truncate truncate
s3t_umount "$T"

# Faults beyond the retry budget: the error reaches the application as EIO.
# The files exist before the outage (made while the server answered), so
# the data is accepted and staged and the upload is what fails.
: >"$M/down" && : >"$M/down-sync" || s3t_abort "creating files before the outage"
s3t_fault 5xx status=503
for sync in "" fsync; do
	t0=$(date +%s)
	r=$(s3t_pywrite "$M/down${sync:+-sync}" 77 1048576 $sync)
	el=$(($(date +%s) - t0))
	case "$r" in
	"close EIO" | "fsync EIO") s3t_ok "server down: write${sync:+ + fsync} fails at ${r% *} with EIO" ;;
	ok) s3t_fail "server down: close${sync:+/fsync} reported success while nothing could be uploaded" ;;
	*) s3t_fail "server down: expected EIO at close/fsync, got '$r'" ;;
	esac
	s3t_check "server down: the error came within the budget + 15 s (${el}s)" \
		[ "$el" -le $((BUDGET_MS / 1000 + 15)) ]
done
r=$(s3t_pywrite "$M/created-while-down" 78 10)
case "$r" in
ok) s3t_fail "server down: a new file was created and closed while nothing could be stored" ;;
*" EIO") s3t_ok "server down: creating a new file fails with EIO ($r)" ;;
*) s3t_fail "server down: creating a new file should fail with EIO, got '$r'" ;;
esac
want=$(s3t_gen 77 1048576 | md5sum)
want=${want%% *}
s3t_check "server down: nothing half-written in S3" \
	[ "$(s3t_obj_md5 "$(s3t_key F down)")" != "$want" ]
staged=$(find "$S3T_WORK/b.staging" -type f -size +1000k 2>/dev/null | wc -l)
s3t_check "server down: the data is still staged ($staged staged files of 1 MiB or more)" \
	[ "$staged" -ge 1 ]
s3t_check "server down: the staged file reads back through the mount" \
	cmp -s "$M/down" <(s3t_gen 77 1048576)
s3t_fault pass
if s3t_wait_obj "$(s3t_key F down)" "$want" 20; then
	s3t_ok "server back: the staged data was uploaded without the application's help"
else
	# The broker may wait for the next flush of that file: an fsync.
	"$S3T_PYTHON" -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd); os.close(fd)' \
		"$M/down" 2>&1 | sed 's/^/# /'
	if s3t_wait_obj "$(s3t_key F down)" "$want" 2; then
		s3t_ok "server back: the staged data was uploaded at the next fsync (not in the background)"
	else
		s3t_fail "server back: the staged data never reached S3, even after an fsync"
	fi
fi
s3t_done
