#!/bin/sh
# End-to-end write throughput with DLP off and on, through a real mount of
# the s3 backend against a throw-away radosgw (tests/s3/with-rgw): 1 GiB
# in 1 MiB writes (a 256 MiB mixed corpus four times, the corpus of
# dlp-throughput.sh), timed from open to the end of close.  On s3, close
# is where the stage is scanned (DLP on, mode strict: before anything is
# sent) and uploaded, so the close time holds both.  A benchmark, not a
# test (not in make check): run by hand from the build directory as root,
# e.g.
#   top_builddir=. ../tests/broker/dlp-throughput-s3.sh
# RUNS (default 3) runs per mode, MODES (default "off on") the order.
# Prints one line per run: write and close seconds, MB/s (10^6 bytes).
# Exit 77 where radosgw cannot run.
needs_s3=1
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-3}
m=$tmp/mnt
mnts=$m
mkdir -p "$m"
corpus=$tmp/corpus
python3 - "$corpus" <<'PY'
import random, base64, sys
random.seed(1)
words = ("the of and to in is for on that with as by this be are from at "
         "or an log error request user id time value").split()
out = bytearray()
while len(out) < 256 << 20:
    k = random.random()
    if k < 0.4:
        out += (" ".join(random.choice(words) for _ in range(80)) + "\n").encode()
    elif k < 0.6:
        out += ('{"id": %d, "amount": %d.%02d, "user": "u%d"}\n' % (
            random.randrange(10**9), random.randrange(10**5),
            random.randrange(100), random.randrange(10**6))).encode()
    elif k < 0.8:
        out += base64.b64encode(random.randbytes(600)) + b"\n"
    else:
        out += b"2024-01-01 12:00:%02d INFO worker[%d] request %d in %d ms\n" % (
            random.randrange(60), random.randrange(64),
            random.randrange(10**8), random.randrange(1000))
open(sys.argv[1], "wb").write(out[:256 << 20])
PY
cat >"$tmp/writer.py" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
src = open(sys.argv[2], "rb")
t0 = time.time()
for i in range(4):
    src.seek(0)
    while True:
        b = src.read(1 << 20)
        if not b:
            break
        os.write(fd, b)
t1 = time.time()
os.close(fd)
t2 = time.time()
print("write %.2fs close %.2fs: %.0f MB/s" % (t1 - t0, t2 - t1,
      4 * (256 << 20) / 1e6 / (t2 - t0)))
PY

write_policy() { # off|on
	cat >"$tmp/pol/10-fs.yaml" <<-EOF
	version: 1
	filesystems:
	  - name: tfs
	    s3:
	      endpoint: $S3_ENDPOINT
	      bucket: $S3_BUCKET
	      prefix: bench
	      credentials_file: $tmp/cred
	      rgw_quirks: true
	    intents: [read, write]
	tokens:
	  public_key: $tmp/pub
	EOF
	# the rules of dlp-throughput.sh: six policy detectors (card numbers
	# included) and four custom patterns, 14 compiled rules
	[ "$1" = on ] && cat >>"$tmp/pol/10-fs.yaml" <<-'EOF'
	dlp:
	  mode: strict
	  rules:
	    - {name: keys, builtin: pem_private_key, action: block}
	    - {name: aws-id, builtin: aws_access_key_id, action: block}
	    - {name: aws-secret, builtin: aws_secret_access_key, action: block}
	    - {name: tokens, builtin: api_token, action: block}
	    - {name: jwt, builtin: jwt, action: audit}
	    - {name: cards, builtin: card_number, action: block}
	    - {name: anthropic, regex: 'sk-ant-api03-[A-Za-z0-9_-]{90,}', action: block}
	    - {name: openai, regex: 'sk-[A-Za-z0-9]{48}', action: block}
	    - {name: pg-url, regex: 'postgres(ql)?://[^:/ ]+:[^@ ]+@', action: block}
	    - {name: employee, regex: 'EMP-[0-9]{6}', action: audit}
	EOF
	return 0
}

# The OSD keeps its data in memory (2 GiB): a deleted object's space comes
# back only once radosgw's garbage collector has run.
gc() {
	radosgw-admin -c "$S3_CEPH_CONF" gc process --include-all \
		>/dev/null 2>&1 || echo "$me: radosgw-admin gc failed"
}

bench() { # off|on
	write_policy "$1"
	"$broker" -f --listen "unix:$tmp/sock" --policy "$tmp/pol" \
		--staging-dir "$tmp/staging" 2>>"$tmp/broker.log" &
	pid=$!
	i=0
	while [ ! -S "$tmp/sock" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
			echo "$me: broker did not start"
			tail "$tmp/broker.log"
			exit 1
		fi
		sleep 0.1
	done
	"$ctl" token mint --key "$tmp/key" --fsid tfs --intent write \
		--out "$tmp/h" || exit 1
	# mountc gives up on a broker that answers slowly (a loaded host)
	i=0
	until "$mountc" "unix:$tmp/sock" "$m" -o "handle=$tmp/h"; do
		i=$((i + 1))
		[ $i -lt 5 ] || exit 1
		sleep 2
		"$ctl" token mint --key "$tmp/key" --fsid tfs --intent write \
			--out "$tmp/h" || exit 1
	done
	i=0
	while [ $i -lt "$runs" ]; do
		if r=$(python3 "$tmp/writer.py" "$m/f" "$corpus"); then
			echo "dlp $1: $r (load $(cut -d' ' -f1 /proc/loadavg))"
			$s3cli exists bench/tfs/f 2>/dev/null ||
				fail "dlp $1: the object is not in S3 after close"
		else
			fail "dlp $1: the write failed"
		fi
		rm -f "$m/f"
		gc
		i=$((i + 1))
	done
	umount "$m"
	kill "$pid"
	wait "$pid"
	pid=
	rm -f "$tmp/sock"
	grep "dlp: " "$tmp/broker.log" | grep -v "rules in force"
	: >"$tmp/broker.log"
}

for mode in ${MODES:-off on}; do
	bench "$mode"
done
finish
