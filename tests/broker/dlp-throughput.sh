#!/bin/sh
# End-to-end write throughput with DLP off and on, through a real mount of
# the local backend: 1 GiB in 1 MiB writes (a 256 MiB mixed corpus four
# times), timed from open to the end of close.  A benchmark, not a test:
# run by hand from the build directory as root, e.g.
#   top_builddir=. ../tests/broker/dlp-throughput.sh
# Prints one line per run: write and close seconds, MB/s (10^6 bytes).
set -u
B=${top_builddir:-.}
runs=${RUNS:-3}
corpus=$(mktemp /tmp/occfs-corpus.XXXXXX)
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
writer=$(mktemp /tmp/occfs-writer.XXXXXX)
cat >"$writer" <<'PY'
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
bench() { # on|off
	mode=$1
	tmp=$(mktemp -d /tmp/occfs-dlpbench.XXXXXX)
	mkdir -p "$tmp/root" "$tmp/pol" "$tmp/st" "$tmp/m"
	"$B/tools/occfsctl" token keygen --private "$tmp/key" \
		--public "$tmp/pub" >/dev/null || exit 1
	cat >"$tmp/pol/10.yaml" <<-EOF
	version: 1
	tokens: {public_key: $tmp/pub, audience: b}
	filesystems:
	  - {name: fs1, local: {root: $tmp/root}, intents: [read, write]}
	EOF
	[ "$mode" = on ] && cat >>"$tmp/pol/10.yaml" <<-'EOF'
	dlp:
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
	"$B/brokerfs/brokerfs" -f --listen "unix:$tmp/sock" --policy "$tmp/pol" \
		--staging-dir "$tmp/st" 2>"$tmp/log" &
	pid=$!
	while [ ! -S "$tmp/sock" ]; do sleep 0.1; done
	"$B/tools/occfsctl" token mint --key "$tmp/key" --fsid fs1 \
		--intent write --aud b --out "$tmp/h"
	"$B/mountc/mountc" "unix:$tmp/sock" "$tmp/m" -o "handle=$tmp/h"
	i=0
	while [ $i -lt "$runs" ]; do
		rm -f "$tmp/m/f"
		echo "dlp $mode: $(python3 "$writer" "$tmp/m/f" "$corpus")" \
			"(load $(cut -d' ' -f1 /proc/loadavg))"
		i=$((i + 1))
	done
	grep "dlp: " "$tmp/log" | grep -v "rules in force"
	umount "$tmp/m"
	kill "$pid"
	wait "$pid"
	rm -rf "$tmp"
}
bench off
bench on
rm -f "$corpus" "$writer"
