#!/bin/bash
# tests/s3/bg-upload.sh - background uploads and the shutdown bound.
#
# 1. an upload that failed at close (S3 refusing PUTs with 503) is retried
#    by the broker in the background once S3 is back, with no further fsync
#    or close, carrying a chmod made meanwhile; afterwards the file can be
#    opened for writing again (the broker's cache learned the new ETag: no
#    ESTALE); a file removed while its upload was pending is not brought
#    back;
# 2. a session that ends with a file still open and dirty (the mount goes
#    away) leaves it to the background upload: the object reaches S3;
# 3. SIGTERM while radosgw is stalled (SIGSTOP: requests hang, nothing is
#    refused) with a dirty open file: the broker exits within
#    --flush-timeout plus a small margin, names what it kept staged, and a
#    restart once radosgw runs again uploads it.
#
#   sudo tests/s3/bg-upload.sh
. "$(dirname "$0")/lib.sh"
s3t_init bg-upload

FLUSH_MS=2000
M=$S3T_WORK/mnt
md5of() { # seed size
	local m
	m=$(s3t_gen "$1" "$2" | md5sum)
	echo "${m%% *}"
}

# ---- 1. a failed close is retried in the background ---------------------------
s3t_faultproxy fp || s3t_abort "faultproxy did not start"
s3t_broker_start b -v --s3-endpoint "$S3T_FP_URL" --s3-sts-endpoint "$S3_ENDPOINT" \
	--s3-retry-budget 1500 || s3t_abort "brokerfs did not start"
s3t_mount b G "$M" || s3t_abort "mount of fsid G"
s3t_fault 5xx status=503 method=PUT
r=$(s3t_pywrite "$M/later" 11 3000000)
s3t_check "with S3 refusing, close reports the failed upload ($r)" [ "$r" != ok ]
r=$(s3t_pywrite "$M/gone" 14 1000)
s3t_check "a second file's upload fails too ($r)" [ "$r" != ok ]
sleep 3 # RELEASE retries too: removed after that, its stage has no holder
rm "$M/gone"
s3t_check "it can be removed while its upload is still pending" [ $? = 0 ]
chmod 600 "$M/later" # while its upload is pending: the upload carries it
before=$(grep -c "background upload failed" "$S3T_WORK/b.log")
s3t_fault pass
if s3t_wait_obj "$(s3t_key G later)" "$(md5of 11 3000000)" 20; then
	s3t_ok "the failed upload went up in the background, without fsync or close"
else
	s3t_fail "the failed upload was not retried in the background"
fi
grep -q "later: uploaded in the background" "$S3T_WORK/b.log"
s3t_check "the log says it was a background upload (after $before failed tries)" [ $? = 0 ]
# carried by the upload, or by the copy right after it when the chmod
# came while the upload was already on its way
i=0
until s3t_has_meta "$(s3t_key G later)" mode 33152 || [ $i -ge 20 ]; do
	sleep 0.25
	i=$((i + 1))
done
s3t_check "with the mode set while it was pending (0100600)" \
	s3t_has_meta "$(s3t_key G later)" mode 33152
sleep 2
s3t_check "the removed file is not brought back by the background uploader" \
	s3t_absent "$(s3t_key G gone)"
s3t_check "nor shown by the mount" [ ! -e "$M/gone" ]
r=$(s3t_pywrite "$M/later" 12 1000)
s3t_eq "the file can be written again afterwards" ok "$r"
s3t_eq "and its new bytes are in S3" "$(md5of 12 1000)" "$(s3t_obj_md5 "$(s3t_key G later)")"

# ---- 2. a session ends with a dirty open file -----------------------------------
s3t_umount "$M"
s3t_mount b G "$M" write nowriteback || s3t_abort "remount of fsid G"
"$S3T_PYTHON" - "$M/orphan" "$S3T_WORK/orphan.ready" <<'PY' &
import os, random, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, random.Random(13).randbytes(2000000))
open(sys.argv[2], "w").close()
time.sleep(60)
PY
WRITER=$!
S3T_PROCS+=($WRITER)
for _ in $(seq 200); do [ -e "$S3T_WORK/orphan.ready" ] && break; sleep 0.1; done
umount -l "$M"
kill "$WRITER" 2>/dev/null
wait "$WRITER" 2>/dev/null
if s3t_wait_obj "$(s3t_key G orphan)" "$(md5of 13 2000000)" 20; then
	s3t_ok "a dirty file left open at the session's end reached S3"
else
	s3t_fail "a dirty file left open at the session's end did not reach S3"
fi
s3t_broker_stop b

# ---- 3. SIGTERM with radosgw stalled ------------------------------------------
RGWPID=$(awk '$1 ~ /rgw/ { print $2 }' "$S3T_RGW/pids" 2>/dev/null)
[ -n "$RGWPID" ] || s3t_abort "no radosgw pid (OCCFS_S3_ENV set?): cannot stall it"
s3t_broker_start b --flush-timeout $FLUSH_MS || s3t_abort "brokerfs did not restart"
s3t_mount b G "$M" write nowriteback || s3t_abort "mount of fsid G"
"$S3T_PYTHON" - "$M/stalled" "$S3T_WORK/stalled.ready" <<'PY' &
import os, random, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, random.Random(14).randbytes(2000000))
open(sys.argv[2], "w").close()
time.sleep(60)
PY
WRITER=$!
S3T_PROCS+=($WRITER)
for _ in $(seq 200); do [ -e "$S3T_WORK/stalled.ready" ] && break; sleep 0.1; done
kill -STOP "$RGWPID"
t0=$(date +%s%N)
s3t_broker_stop b TERM
el=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "$RGWPID"
kill "$WRITER" 2>/dev/null
wait "$WRITER" 2>/dev/null
s3t_umount "$M"
s3t_check "SIGTERM with radosgw stalled: exited in ${el} ms (flush timeout $FLUSH_MS ms + 1.5 s)" \
	[ "$el" -le $((FLUSH_MS + 1500)) ]
s3t_check "SIGTERM with radosgw stalled: the log names what was kept staged" \
	grep -q "stalled.*not flushed" "$S3T_WORK/b.log"
s3t_broker_start b || s3t_abort "brokerfs did not restart"
if s3t_wait_obj "$(s3t_key G stalled)" "$(md5of 14 2000000)" 30; then
	s3t_ok "SIGTERM with radosgw stalled: a restart uploaded what was kept"
else
	s3t_fail "SIGTERM with radosgw stalled: the kept data did not reach S3 after a restart"
fi
s3t_broker_stop b
s3t_done
