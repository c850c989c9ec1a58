#!/bin/bash
# tests/s3/rename-syncfs.sh - syncfs after the write-temp-then-rename pattern.
#
# With the guest's writeback cache (the default) the kernel writes back the
# times of an inode whose name was replaced or removed with a SETATTR; the
# backend must take it (there is no object left to store it in), else the
# error stays on the guest's superblock and every later syncfs fails
# (tar -x and git clone call it).  Checks: syncfs succeeds after renames
# over a target and after an unlink, and the last version is in S3.
#
#   sudo tests/s3/rename-syncfs.sh
. "$(dirname "$0")/lib.sh"
s3t_init rename-syncfs

M=$S3T_WORK/mnt
s3t_broker_start b || s3t_abort "brokerfs with the s3 backend did not start"
s3t_mount b S "$M" || s3t_abort "mount of fsid S"
for i in 1 2 3 4 5; do
	echo "v$i" >"$M/tmp.$i" && mv "$M/tmp.$i" "$M/target"
done
echo gone >"$M/gone" && touch "$M/gone" && rm "$M/gone"
s3t_check "syncfs after renames over a target and an unlink" sync -f "$M"
s3t_check "a second syncfs too" sync -f "$M"
s3t_check "sync(1) of the target" sync "$M/target"
s3t_eq "the last version is the file" v5 "$(cat "$M/target")"
s3t_umount "$M"
s3t_eq "the last version is in S3" v5 "$(s3t_s3 get "$(s3t_key S target)")"
s3t_broker_stop b
s3t_done
