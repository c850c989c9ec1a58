#!/bin/bash
# tests/s3/durability.sh - what the s3 backend promises when the broker dies.
#
# 1. kill -9 right after close returns: the object is already in S3 (read
#    with s3cli.py, not through occfs);
# 2. kill -9 mid-write (data written, file not closed): a broker restarted
#    on the same staging directory uploads the staged bytes by itself;
# 3. SIGTERM with files open and dirty: the broker uploads them and exits
#    within --flush-timeout (plus a small margin);
# 4. SIGTERM while S3 refuses everything: the broker still exits within the
#    flush timeout, says what it could not flush, keeps it staged, and a
#    restart uploads it.
#
# The mid-write cases mount with nowriteback, so that each write(2) reaches
# the broker before it returns (with the guest's writeback cache the bytes
# would still be in the guest's page cache, which no broker can save); the
# test checks that they were staged before it kills the broker.
#
#   sudo tests/s3/durability.sh
. "$(dirname "$0")/lib.sh"
s3t_init durability

FLUSH_MS=3000
M=$S3T_WORK/mnt
start() {
	s3t_broker_start b --flush-timeout "$FLUSH_MS" "$@" ||
		s3t_abort "brokerfs with the s3 backend did not start"
}
md5of() { # seed size
	local m
	m=$(s3t_gen "$1" "$2" | md5sum)
	echo "${m%% *}"
}

# ---- 1. kill -9 right after close ----------------------------------------------
start
s3t_mount b D "$M" || s3t_abort "mount of fsid D"
r=$(s3t_pywrite "$M/closed" 1 5000000)
s3t_broker_stop b KILL
s3t_eq "close returned" ok "$r"
s3t_eq "kill -9 right after close: the object is in S3 with the bytes" \
	"$(md5of 1 5000000)" "$(s3t_obj_md5 "$(s3t_key D closed)")"
r=$(s3t_pywrite "$M/after-death" 2 10)
s3t_check "the mount of the dead broker fails instead of hanging ($r)" [ "$r" != ok ]
s3t_umount "$M"

# ---- 2. kill -9 mid-write, restart ---------------------------------------------
start
s3t_mount b D "$M" write nowriteback || s3t_abort "remount of fsid D"
"$S3T_PYTHON" - "$M/open" "$S3T_WORK/mid.ready" <<'PY' &
import os, random, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
data = random.Random(3).randbytes(7000000)
for off in range(0, len(data), 1 << 20):
    os.write(fd, data[off:off + (1 << 20)])
open(sys.argv[2], "w").close()
time.sleep(60)  # killed with the mount; never closes
PY
WRITER=$!
S3T_PROCS+=($WRITER)
for _ in $(seq 200); do [ -e "$S3T_WORK/mid.ready" ] && break; sleep 0.1; done
s3t_check "the writer wrote its 7 MB" [ -e "$S3T_WORK/mid.ready" ]
sleep 1
staged=$(s3t_staged_bytes b)
s3t_check "kill -9 mid-write: the 7 MB reached the broker's staging ($staged bytes)" \
	[ "$staged" -ge 7000000 ]
s3t_broker_stop b KILL
kill "$WRITER" 2>/dev/null
wait "$WRITER" 2>/dev/null
s3t_umount "$M"
s3t_check "kill -9 mid-write: nothing was uploaded before close" \
	[ "$(s3t_obj_md5 "$(s3t_key D open)")" != "$(md5of 3 7000000)" ]
start
if s3t_wait_obj "$(s3t_key D open)" "$(md5of 3 7000000)" 20; then
	s3t_ok "kill -9 mid-write: the restarted broker uploaded the staged bytes"
else
	s3t_fail "kill -9 mid-write: after a restart the object is $(s3t_obj_md5 "$(s3t_key D open)"), not the staged bytes"
fi
s3t_mount b D "$M" || s3t_abort "mount after restart"
s3t_check "kill -9 mid-write: the file reads back through occfs" \
	cmp -s "$M/open" <(s3t_gen 3 7000000)
s3t_umount "$M"

# ---- 3. SIGTERM with dirty open files ------------------------------------------
s3t_mount b D "$M" write nowriteback || s3t_abort "mount of fsid D"
"$S3T_PYTHON" - "$M" "$S3T_WORK/term.ready" <<'PY' &
import os, random, sys, time
for i in range(4):
    fd = os.open("%s/term%d" % (sys.argv[1], i), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, random.Random(40 + i).randbytes(3000000))
open(sys.argv[2], "w").close()
time.sleep(60)
PY
WRITER=$!
S3T_PROCS+=($WRITER)
for _ in $(seq 200); do [ -e "$S3T_WORK/term.ready" ] && break; sleep 0.1; done
sleep 0.5
staged=$(s3t_staged_bytes b)
s3t_check "SIGTERM: the 12 MB reached the broker's staging ($staged bytes)" \
	[ "$staged" -ge 12000000 ]
t0=$(date +%s%N)
s3t_broker_stop b TERM
el=$((($(date +%s%N) - t0) / 1000000))
kill "$WRITER" 2>/dev/null
wait "$WRITER" 2>/dev/null
s3t_umount "$M"
s3t_check "SIGTERM: the broker exited in ${el} ms (flush timeout $FLUSH_MS ms + 1.5 s)" \
	[ "$el" -le $((FLUSH_MS + 1500)) ]
for i in 0 1 2 3; do
	s3t_eq "SIGTERM: open file term$i was uploaded before exit" \
		"$(md5of $((40 + i)) 3000000)" "$(s3t_obj_md5 "$(s3t_key D term$i)")"
done

# ---- 4. SIGTERM while S3 refuses everything ------------------------------------
s3t_faultproxy fp || s3t_abort "faultproxy did not start"
start --s3-endpoint "$S3T_FP_URL" --s3-sts-endpoint "$S3_ENDPOINT" --s3-retry-budget 20000
s3t_mount b D "$M" write nowriteback || s3t_abort "mount of fsid D"
"$S3T_PYTHON" - "$M/stuck" "$S3T_WORK/stuck.ready" <<'PY' &
import os, random, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, random.Random(50).randbytes(2000000))
open(sys.argv[2], "w").close()
time.sleep(60)
PY
WRITER=$!
S3T_PROCS+=($WRITER)
for _ in $(seq 200); do [ -e "$S3T_WORK/stuck.ready" ] && break; sleep 0.1; done
sleep 0.5
s3t_fault 5xx status=503
t0=$(date +%s%N)
s3t_broker_stop b TERM
el=$((($(date +%s%N) - t0) / 1000000))
kill "$WRITER" 2>/dev/null
wait "$WRITER" 2>/dev/null
s3t_umount "$M"
s3t_check "SIGTERM with S3 down: exited within the flush timeout (${el} ms)" \
	[ "$el" -le $((FLUSH_MS + 1500)) ]
s3t_check "SIGTERM with S3 down: the log names what was not flushed" \
	grep -qiE "not (been )?flushed|unflushed|could not flush|not uploaded|pending" "$S3T_WORK/b.log"
s3t_check "SIGTERM with S3 down: the object is not in S3 yet" \
	[ "$(s3t_obj_md5 "$(s3t_key D stuck)")" = missing ]
s3t_fault pass
start --s3-endpoint "$S3T_FP_URL" --s3-sts-endpoint "$S3_ENDPOINT"
if s3t_wait_obj "$(s3t_key D stuck)" "$(md5of 50 2000000)" 20; then
	s3t_ok "SIGTERM with S3 down: the restarted broker uploaded what was staged"
else
	s3t_fail "SIGTERM with S3 down: after a restart the staged data did not reach S3"
fi
s3t_done
