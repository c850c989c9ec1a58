#!/bin/bash
# tests/s3/egress.sh - with --s3-proxy the backend leg goes through the egress
# edge's CONNECT proxy, and the broker never dials the object store itself.
#
# The broker's S3 (and STS) endpoint is 127.0.0.1:TRAP, where a trap listener
# records every connection and serves nothing; only the CONNECT proxy
# (connectproxy.py) knows that this target is really the radosgw.  A second
# broker names the endpoint s3.occfs.invalid, which does not resolve at all.
# Files written and read through the mounts must arrive intact, the proxy
# must have carried the tunnels, the trap must see no connection, and with
# the proxy gone a write must fail at close (no direct fallback).
#
#   sudo tests/s3/egress.sh
. "$(dirname "$0")/lib.sh"
s3t_init egress

# The trap: accepts, logs, closes.
"$S3T_PYTHON" - "$S3T_WORK/trap.port" "$S3T_WORK/trap.log" <<'PY' &
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
log = open(sys.argv[2], "a", buffering=1)
while True:
    c, a = s.accept()
    log.write("direct connection from %s:%d\n" % a)
    c.close()
PY
S3T_PROCS+=($!)
for _ in $(seq 100); do [ -s "$S3T_WORK/trap.port" ] && break; sleep 0.05; done
TRAP=127.0.0.1:$(cat "$S3T_WORK/trap.port")
: >"$S3T_WORK/trap.log"

"$S3T_PYTHON" "$S3T_HERE/connectproxy.py" --log "$S3T_WORK/proxy.log" \
	--port-file "$S3T_WORK/proxy.port" --map "$TRAP=$S3T_RGW_HOSTPORT" \
	--map "s3.occfs.invalid:80=$S3T_RGW_HOSTPORT" &
PROXY_PID=$!
S3T_PROCS+=($PROXY_PID)
for _ in $(seq 100); do [ -s "$S3T_WORK/proxy.port" ] && break; sleep 0.05; done
PROXY=http://127.0.0.1:$(cat "$S3T_WORK/proxy.port")
: >>"$S3T_WORK/proxy.log"
s3t_log "endpoint http://$TRAP (a trap), proxy $PROXY -> $S3T_RGW_HOSTPORT"

s3t_broker_start b --s3-endpoint "http://$TRAP" --s3-sts-endpoint "http://$TRAP" \
	--s3-proxy "$PROXY" --s3-retry-budget 4000 ||
	s3t_abort "brokerfs with --s3-proxy did not start"
M=$S3T_WORK/mnt
s3t_mount b E "$M" || s3t_abort "mount of fsid E"

mkdir "$M/dir" && s3t_gen 1 300000 >"$M/dir/a" && s3t_gen 2 9000000 >"$M/b"
want_a=$(s3t_gen 1 300000 | md5sum)
want_b=$(s3t_gen 2 9000000 | md5sum)
s3t_eq "write through the proxy: dir/a in S3" "${want_a%% *}" \
	"$(s3t_obj_md5 "$(s3t_key E dir/a)")"
s3t_eq "write through the proxy: b in S3" "${want_b%% *}" "$(s3t_obj_md5 "$(s3t_key E b)")"
s3t_eq "listing through the proxy" "b dir" "$(ls "$M" | xargs)"
s3t_umount "$M"
s3t_mount b E "$M" || s3t_abort "remount of fsid E"
s3t_eq "read back through the proxy" "${want_a%% *}" "$(md5sum <"$M/dir/a" | cut -d' ' -f1)"

tunnels=$(grep -c "^CONNECT $TRAP\$" "$S3T_WORK/proxy.log")
s3t_check "the proxy carried the backend traffic ($tunnels tunnels to $TRAP)" [ "$tunnels" -ge 1 ]
s3t_eq "no other target was asked of the proxy" "" \
	"$(grep -v "^CONNECT $TRAP\$" "$S3T_WORK/proxy.log")"
s3t_eq "the broker never dialed the endpoint directly" "" "$(cat "$S3T_WORK/trap.log")"

# A name only the proxy can resolve.
s3t_broker_start n --s3-endpoint "http://s3.occfs.invalid" \
	--s3-sts-endpoint "http://s3.occfs.invalid" --s3-proxy "$PROXY" \
	--s3-retry-budget 4000 || s3t_abort "brokerfs with an unresolvable endpoint did not start"
N=$S3T_WORK/mnt-n
s3t_mount n E2 "$N" || s3t_abort "mount of fsid E2"
echo named >"$N/f" 2>"$S3T_WORK/named.err"
s3t_eq "an endpoint name only the proxy resolves works" "named" \
	"$(s3t_s3 get "$(s3t_key E2 f)" 2>&1)"
s3t_check "the proxy carried it" grep -q "^CONNECT s3.occfs.invalid:80\$" "$S3T_WORK/proxy.log"
s3t_umount "$N"

# Without the proxy nothing reaches S3, and the broker does not go direct.
kill "$PROXY_PID" && wait "$PROXY_PID" 2>/dev/null
t0=$(date +%s)
r=$(s3t_pywrite "$M/after-proxy-gone" 5 100000)
el=$(($(date +%s) - t0))
# The guest may learn it at create or at close, but as EIO: the retry
# budget is spent, the backend cannot be reached.
case "$r" in
"open EIO" | "write EIO" | "close EIO") s3t_ok "proxy gone: the write fails with EIO ($r)" ;;
ok) s3t_fail "proxy gone: close reported success" ;;
*) s3t_fail "proxy gone: expected EIO, got '$r'" ;;
esac
s3t_check "proxy gone: the error came within the retry budget + 10 s (${el}s)" [ "$el" -le 14 ]
s3t_check "proxy gone: the object is not in S3" \
	[ "$(s3t_obj_md5 "$(s3t_key E after-proxy-gone)")" = missing ]
s3t_eq "proxy gone: still no direct connection" "" "$(cat "$S3T_WORK/trap.log")"
s3t_done
