#!/bin/bash
# tests/s3/keyorder.sh - a coalesced metadata change never overlaps a
# DELETE or an upload of the same object.
#
# chmod of a file or directory that is not being written is carried later
# by one CopyObject onto itself (s3b_cache.c).  S3 does not order two
# requests on one key that overlap: a copy that reads the object before a
# DELETE lands and writes after it brings the object back (rm -rf then
# fails with ENOTEMPTY one level up), and one that overlaps an upload can
# put the old bytes back.  So the broker makes them wait for each other.
#
# The fault proxy holds the reply to the copy for 2 s; while it is held
# the guest removes the directory (1) or rewrites the file (2).  Checks: the DELETE
# and the upload reach the proxy only after the copy is done (its log
# line, written when the hold ends, comes first), the guest's calls
# succeed, and S3 ends as the guest left it.
#
#   sudo tests/s3/keyorder.sh
. "$(dirname "$0")/lib.sh"
s3t_init keyorder

M=$S3T_WORK/mnt
HOLD=2

# The line number in the proxy log of the first request METHOD on KEY
# (exactly: the path ends with the key) with fault MODE ("-": none) after
# line AFTER; 0 when there is none.
fp_line() { # METHOD KEY MODE AFTER
	awk -v m="$1" -v k="/$2" -v f="$3" -v a="$4" '
		NR > a && $2 == m && substr($3, length($3) - length(k) + 1) == k &&
		(f == "" || $5 == f) { print NR; found = 1; exit }
		END { if (!found) print 0 }' "$S3T_FP_LOG"
}

# Wait until the proxy holds the reply to METHOD on KEY (at most 10 s).
fp_held() { # METHOD KEY
	local i=0
	until awk -v m="$1" -v k="/$2" '$1 == m &&
		substr($2, length($2) - length(k) + 1) == k { f = 1 }
		END { exit !f }' "$S3T_FP_LOG.held" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && return 1
		sleep 0.05
	done
}

# fp_line, waiting up to 5 s for the line to be written.
fp_wait_line() { # METHOD KEY MODE AFTER
	local i=0 n
	while n=$(fp_line "$@") && [ "$n" = 0 ] && [ $i -lt 100 ]; do
		i=$((i + 1))
		sleep 0.05
	done
	echo "$n"
}

s3t_faultproxy fp || s3t_abort "faultproxy did not start"
s3t_broker_start b --s3-endpoint "$S3T_FP_URL" --s3-sts-endpoint "$S3_ENDPOINT" ||
	s3t_abort "brokerfs did not start"
s3t_mount b K "$M" || s3t_abort "mount of fsid K"

# ---- 1. rmdir while the directory's metadata copy is in flight ----------------
mkdir "$M/d" || s3t_abort "mkdir"
s3t_check "mkdir made the marker" s3t_s3 exists "$(s3t_key K d/)"
s3t_fault slow count=1 delay=$HOLD method=PUT path=/K/d/
chmod 700 "$M/d"
# the change waits 1 s, then the copy starts and its reply is held
fp_held PUT "K/d/" || s3t_abort "no copy of d/ within 10 s"
s3t_check "rmdir succeeds" rmdir "$M/d"
copy=$(fp_wait_line PUT "K/d/" slow 0)
del=$(fp_line DELETE "K/d/" - 0)
s3t_check "the copy of d/ went through the proxy (line $copy)" [ "$copy" -gt 0 ]
s3t_check "the DELETE of d/ was sent after the copy ended (line $del > $copy)" \
	[ "$del" -gt "$copy" ]
s3t_check "d/ is gone from S3" s3t_absent "$(s3t_key K d/)"
s3t_check "and from the mount" [ ! -e "$M/d" ]

# ---- 2. an upload while the file's metadata copy is in flight ----------------
echo old >"$M/f" || s3t_abort "write f"
s3t_eq "f is in S3" old "$(s3t_s3 get "$(s3t_key K f)")"
mark=$(wc -l <"$S3T_FP_LOG")
s3t_fault slow count=1 delay=$HOLD method=PUT path=/K/f
chmod 600 "$M/f"
fp_held PUT "K/f" || s3t_abort "no copy of f within 10 s"
s3t_check "f is rewritten and closed" sh -c "echo new >'$M/f'"
copy=$(fp_wait_line PUT "K/f" slow "$mark")
put=$(fp_line PUT "K/f" - "$mark")
s3t_check "the copy of f went through the proxy (line $copy)" [ "$copy" -gt 0 ]
s3t_check "the upload of f was sent after the copy ended (line $put > $copy)" \
	[ "$put" -gt "$copy" ]
s3t_eq "S3 holds the new bytes" new "$(s3t_s3 get "$(s3t_key K f)")"
s3t_check "with the new mode (0100600)" s3t_has_meta "$(s3t_key K f)" mode 33152

s3t_umount "$M"
s3t_broker_stop b
s3t_done
