#!/bin/bash
# tests/s3/writeback.sh - the guest's writeback toward a broker that stages
# writes (HELLO flag STAGED, mount option max_dirty_ratio).
#
# 1. an s3 mount's bdi may hold 50% of the host's dirty-page limit, with
#    no strict per-mount limit; max_dirty_ratio=0 keeps the kernel's 1%,
#    strict; max_dirty_ratio=20 sets 20;
# 2. a 160 MiB file, preallocated (fallocate) and then written with dd and
#    fsync'ed, has its bytes in S3, on a mount with max_dirty_ratio=0 and
#    on one with the default.  Under the kernel's strict limit the
#    writeback reaches the broker out of order and in pieces, partial
#    blocks fetched from the (zero) base between whole blocks written:
#    that once lost written blocks (a fetch forgot its neighbour was
#    present, and the upload fetched the base over it).  The session's
#    request count is logged (in 1 MiB WRITEs: about 170).
#
#   sudo tests/s3/writeback.sh
. "$(dirname "$0")/lib.sh"
s3t_init writeback

s3t_broker_start b -v || s3t_abort "brokerfs with the s3 backend did not start"
M=$S3T_WORK/m

# bdi_of DIR: "max_ratio strict_limit" of the mount's bdi, after a first
# request (mountc tunes the bdi then)
bdi_of() {
	local bdi
	stat "$1" >/dev/null
	bdi=$(mountpoint -d "$1") || return 1
	echo "$(cat "/sys/class/bdi/$bdi/max_ratio") $(cat "/sys/class/bdi/$bdi/strict_limit")"
}

s3t_mount b W "$M" || s3t_abort "mount of fsid W"
s3t_eq "STAGED: the s3 mount may hold half the host's dirty limit" "50 0" "$(bdi_of "$M")"
s3t_umount "$M"
s3t_mount b W "$M" write max_dirty_ratio=0 || s3t_abort "mount with max_dirty_ratio=0"
s3t_eq "max_dirty_ratio=0 keeps the kernel's strict 1%" "1 1" "$(bdi_of "$M")"
s3t_umount "$M"
s3t_mount b W "$M" write max_dirty_ratio=20 || s3t_abort "mount with max_dirty_ratio=20"
s3t_eq "max_dirty_ratio=20" "20 0" "$(bdi_of "$M")"
s3t_umount "$M"

closes() { grep -c 'session close: .*fsid=W ' "$S3T_LASTLOG"; }
head -c $((160 << 20)) /dev/urandom >"$S3T_WORK/big"
want=$(md5sum <"$S3T_WORK/big")
for opts in max_dirty_ratio=0 ""; do
	name=big${opts:+-strict}
	before=$(closes)
	s3t_mount b W "$M" write $opts || s3t_abort "mount ${opts:-(default)}"
	fallocate -l $((160 << 20)) "$M/$name" || s3t_fail "fallocate"
	dd if="$S3T_WORK/big" of="$M/$name" bs=4M conv=fsync,notrunc status=none ||
		s3t_fail "write of 160 MiB"
	s3t_umount "$M"
	for i in $(seq 100); do
		[ "$(closes)" -gt "$before" ] && break
		sleep 0.1
	done
	n=$(sed -n 's/.*session close: .*fsid=W .*requests=\([0-9]*\).*/\1/p' "$S3T_LASTLOG" | tail -1)
	s3t_log "${opts:-default}: the session that wrote 160 MiB made ${n:-?} requests"
	s3t_eq "${opts:-default}: the object has the file's bytes" "${want%% *}" \
		"$(s3t_obj_md5 "$(s3t_key W "$name")")"
done
s3t_done
