#!/bin/bash
# tests/s3/readahead.sh - read-ahead of clean objects (brokerfs/s3b_ra.c).
#
# 1. a 24 MiB object read sequentially through the mount has its bytes, and
#    the broker served it from read-ahead windows (its debug log counts
#    them);
# 2. random reads at scattered offsets have the right bytes;
# 3. never stale: a file open for reading on one mount, read half-way (the
#    windows run ahead), rewritten through a second mount of the same
#    filesystem: the rest read through the first descriptor is the new
#    object's, not what the windows held;
# 4. an object replaced in S3 behind the broker's back: windows still to be
#    fetched fail their If-Match and the read goes on with the object S3
#    has (the broker's own metadata cache is dropped by a remount);
# 5. a file written and read back while staged reads through its stage;
# 6. keep-cache (s3b_data.c): a file this mount just wrote is read back
#    from the guest's page cache (no GET), a change through a second mount
#    is read at once, a change made in S3 behind the broker is read by an
#    open more than S3B_KC_TTL_MS (1 s) after the last one S3 confirmed.
#
#   sudo tests/s3/readahead.sh
. "$(dirname "$0")/lib.sh"
s3t_init readahead

SIZE=$((24 << 20))
A=$S3T_WORK/a
B=$S3T_WORK/b
s3t_broker_start b -v || s3t_abort "brokerfs with the s3 backend did not start"
s3t_mount b R "$A" || s3t_abort "mount of fsid R"
s3t_mount b R "$B" || s3t_abort "second mount of fsid R"
md5of() { # seed size
	local m
	m=$(s3t_gen "$1" "$2" | md5sum)
	echo "${m%% *}"
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
ra_windows() {
	grep -o 'read-ahead so far: [0-9]* windows' "$S3T_WORK/b.log" |
		tail -1 | awk '{ print $4 }'
}

# ---- 1. sequential ---------------------------------------------------------------
s3t_gen 1 $SIZE >"$A/seq"
drop
s3t_eq "a sequential read has the object's bytes" "$(md5of 1 $SIZE)" \
	"$(dd if="$A/seq" bs=128k 2>/dev/null | md5sum | cut -d' ' -f1)"

# ---- 2. random -------------------------------------------------------------------
drop
r=$("$S3T_PYTHON" - "$A/seq" $SIZE <<'PY'
import os, random, sys
path, size = sys.argv[1], int(sys.argv[2])
want = random.Random(1)
data = b"".join(want.randbytes(min(1 << 20, size - o)) for o in range(0, size, 1 << 20))
fd = os.open(path, os.O_RDONLY)
r = random.Random(7)
for _ in range(40):
    off = r.randrange(0, size - 70000)
    n = r.randrange(1, 70000)
    if os.pread(fd, n, off) != data[off:off + n]:
        print("mismatch at", off, n)
        sys.exit(0)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
print("ok")
PY
)
s3t_eq "random reads have the right bytes" ok "$r"

# ---- 3. rewritten through another mount while open -----------------------------------
s3t_gen 2 $SIZE >"$A/live"
drop
r=$("$S3T_PYTHON" - "$A/live" "$B/live" $SIZE <<'PY'
import os, random, sys
a, b, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
def gen(seed):
    r = random.Random(seed)
    return b"".join(r.randbytes(min(1 << 20, size - o)) for o in range(0, size, 1 << 20))
old, new = gen(2), gen(3)
fd = os.open(a, os.O_RDONLY)
half = size // 2
off = 0
while off < half:
    d = os.pread(fd, 128 << 10, off)
    if d != old[off:off + len(d)]:
        print("old bytes wrong at", off); sys.exit(0)
    off += len(d)
with open(b, "r+b") as f:  # same size: the descriptor's view stays valid
    f.write(new)
os.sync()
with open("/proc/sys/vm/drop_caches", "w") as f:
    f.write("3")
while off < size:
    d = os.pread(fd, 128 << 10, off)
    if d != new[off:off + len(d)]:
        print("stale bytes at", off, "(old:", d == old[off:off + len(d)], ")")
        sys.exit(0)
    off += len(d)
print("ok")
PY
)
s3t_eq "after a rewrite through another mount the rest reads the new object" ok "$r"

# ---- 4. replaced in S3 behind the broker --------------------------------------------
s3t_gen 4 $SIZE >"$A/behind"
s3t_umount "$A"
s3t_umount "$B"
s3t_broker_stop b
s3t_broker_start b -v || s3t_abort "brokerfs did not restart"
s3t_mount b R "$A" || s3t_abort "remount of fsid R"
r=$("$S3T_PYTHON" - "$A/behind" $SIZE "$S3T_HERE/s3cli.py" "$(s3t_key R behind)" \
	"$S3T_WORK/new" <<'PY'
import os, random, subprocess, sys
path, size, cli, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def gen(seed):
    r = random.Random(seed)
    return b"".join(r.randbytes(min(1 << 20, size - o)) for o in range(0, size, 1 << 20))
old, new = gen(4), gen(5)
fd = os.open(path, os.O_RDONLY)
off = 0
while off < (1 << 20):
    off += len(os.pread(fd, 128 << 10, off))
with open(sys.argv[5], "wb") as f:
    f.write(new)
subprocess.run([sys.executable, cli, "put", key, sys.argv[5]], check=True)
with open("/proc/sys/vm/drop_caches", "w") as f:
    f.write("3")
tail = size - (128 << 10)
d = os.pread(fd, 128 << 10, tail)
print("ok" if d in (new[tail:], old[tail:]) and len(d) == 128 << 10 else "torn")
PY
)
s3t_eq "a read after S3 changed underneath gives one version's bytes, not a mix" ok "$r"
ERR=$(cat "$A/behind" 2>&1 >/dev/null)
s3t_eq "a fresh open reads the object S3 has" "$(md5of 5 $SIZE)" \
	"$(cat "$A/behind" 2>/dev/null | md5sum | cut -d' ' -f1)$ERR"

# ---- 5. staged files read through their stage ------------------------------------
r=$("$S3T_PYTHON" - "$A/staged" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
data = os.urandom(6 << 20)
os.write(fd, data)
os.write(fd, b"tail")
ok = all(os.pread(fd, 128 << 10, o) == (data + b"tail")[o:o + (128 << 10)]
         for o in range(0, len(data) + 4, 128 << 10))
os.close(fd)
print("ok" if ok else "mismatch")
PY
)
s3t_eq "a file being written reads back its staged bytes" ok "$r"

# ---- 6. keep-cache ----------------------------------------------------------------
s3t_mount b R "$B" || s3t_abort "second mount for keep-cache"
gets() { grep -c "s3: GET [^ ]*/R/$1:" "$S3T_WORK/b.log"; }
for v in 1 2 3; do s3t_gen $((10 + v)) 5000 >"$S3T_WORK/kc.$v"; done
cp "$S3T_WORK/kc.1" "$A/kc"
g0=$(gets kc)
ok=ok
for i in 1 2 3; do cmp -s "$A/kc" "$S3T_WORK/kc.1" || ok="wrong bytes"; done
g1=$(gets kc)
s3t_eq "a file just written reads back its bytes" ok "$ok"
# no GET at all; one if the machine stalled past the 1 s (three without)
s3t_check "three opens after the upload kept the guest's cache ($((g1 - g0)) GETs)" \
	[ $((g1 - g0)) -le 1 ]
"$S3T_PYTHON" - "$B/kc" "$S3T_WORK/kc.2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f, open(sys.argv[2], "rb") as n:
    f.write(n.read())
PY
s3t_check "a change through a second mount is read by the next open at once" \
	cmp -s "$A/kc" "$S3T_WORK/kc.2"
cat "$A/kc" >/dev/null
s3t_s3 put "$(s3t_key R kc)" "$S3T_WORK/kc.3" >/dev/null
sleep 1.5
s3t_check "a change behind the broker is read by an open after the keep-cache time" \
	cmp -s "$A/kc" "$S3T_WORK/kc.3"
s3t_umount "$B"

s3t_umount "$A"
s3t_broker_stop b
w=$(ra_windows)
s3t_check "the sequential reads were served from read-ahead windows (${w:-0})" \
	[ "${w:-0}" -gt 0 ]
s3t_done
