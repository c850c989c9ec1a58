#!/bin/bash
# tests/s3/sts.sh - STS isolation seen from the guests and from the wire.
#
# One broker, two mounts with handles for filesystem ids A and B.  Each
# guest sees only its own files; the objects land under <prefix>/A/ and
# <prefix>/B/ and nowhere else; an object planted under B's prefix never
# shows in A.  faultproxy.py (in pass mode) records the access key id of
# every request: the broker must call AssumeRole with its base key, and
# then sign A's requests and B's requests with two different temporary
# credentials (with a session token), never the base key.
#
#   sudo tests/s3/sts.sh
. "$(dirname "$0")/lib.sh"
s3t_init sts

s3t_faultproxy sniff || s3t_abort "faultproxy did not start"
s3t_broker_start b --s3-endpoint "$S3T_FP_URL" --s3-sts-endpoint "$S3T_FP_URL" ||
	s3t_abort "brokerfs with the s3 backend did not start"
A=$S3T_WORK/mnt-a
B=$S3T_WORK/mnt-b
s3t_mount b A "$A" || s3t_abort "mount of fsid A"
s3t_mount b B "$B" || s3t_abort "mount of fsid B"

echo a >"$A/a" && mkdir "$A/da" && echo in-da >"$A/da/x"
echo b >"$B/b" && mkdir "$B/empty"
s3t_eq "A sees only its own files" "a da" "$(ls "$A" 2>&1 | xargs)"
s3t_eq "B sees only its own files" "b empty" "$(ls "$B" 2>&1 | xargs)"
s3t_eq "A cannot open B's file" "No such file or directory" \
	"$(cat "$A/b" 2>&1 | sed 's/.*: //')"

s3t_s3 list "$S3T_PREFIX/" >"$S3T_WORK/keys"
awk '{ print "# key " $1 }' "$S3T_WORK/keys"
s3t_eq "every object is under <prefix>/A/ or <prefix>/B/" "" \
	"$(awk -v p="$S3T_PREFIX/" 'index($1, p "A/") != 1 && index($1, p "B/") != 1' "$S3T_WORK/keys")"
s3t_check "A's file is <prefix>/A/a" grep -q "^$S3T_PREFIX/A/a " "$S3T_WORK/keys"
s3t_check "A's nested file is <prefix>/A/da/x" grep -q "^$S3T_PREFIX/A/da/x " "$S3T_WORK/keys"
s3t_check "B's empty directory persists as a marker <prefix>/B/empty/" \
	grep -q "^$S3T_PREFIX/B/empty/ " "$S3T_WORK/keys"

echo planted >"$S3T_WORK/planted"
s3t_s3 put "$(s3t_key B planted)" "$S3T_WORK/planted" mode=33188 || s3t_abort "plant"
s3t_umount "$A"
s3t_mount b A "$A" || s3t_abort "remount of fsid A"
s3t_eq "an object under B's prefix never shows in A" "a da" "$(ls "$A" 2>&1 | xargs)"

# The wire: which credential signed what.
"$S3T_PYTHON" - "$S3T_FP_LOG" "$S3_BUCKET" "$S3T_PREFIX" "$S3_ACCESS_KEY" \
	>"$S3T_WORK/creds" <<'PY'
import sys, urllib.parse
log, bucket, prefix, base = sys.argv[1:5]
keys = {"A": set(), "B": set(), "sts": set()}
notoken = {"A": 0, "B": 0}
for line in open(log):
    f = line.split()
    if len(f) < 7:
        continue
    method, target, keyid, token = f[1], f[2], f[5], f[6]
    path, _, query = target.partition("?")
    fsid = None
    if method == "POST" and path == "/":
        keys["sts"].add(keyid)
        continue
    want = "/%s/%s/" % (bucket, prefix)
    if path.startswith(want):
        fsid = path[len(want):].split("/")[0]
    else:
        q = urllib.parse.parse_qs(query)
        p = q.get("prefix", [""])[0]
        if p.startswith(prefix + "/"):
            fsid = p[len(prefix) + 1:].split("/")[0]
    if fsid in ("A", "B"):
        keys[fsid].add(keyid)
        if token != "token":
            notoken[fsid] += 1
print("sts_keys=%s" % ",".join(sorted(keys["sts"])))
print("a_keys=%s" % ",".join(sorted(keys["A"])))
print("b_keys=%s" % ",".join(sorted(keys["B"])))
print("shared=%d" % len(keys["A"] & keys["B"]))
print("base_used=%d" % (base in keys["A"] or base in keys["B"]))
print("notoken=%d" % (notoken["A"] + notoken["B"]))
PY
. "$S3T_WORK/creds"
s3t_log "AssumeRole signed by [$sts_keys]; A by [$a_keys]; B by [$b_keys]"
s3t_eq "AssumeRole was signed with the base credential" "$S3_ACCESS_KEY" "$sts_keys"
s3t_check "A's requests were signed (credential seen)" [ -n "$a_keys" ]
s3t_check "B's requests were signed (credential seen)" [ -n "$b_keys" ]
s3t_eq "A and B never share a credential" 0 "$shared"
s3t_eq "the base credential never signs a filesystem's requests" 0 "$base_used"
s3t_eq "every request of A and B carries a session token" 0 "$notoken"
s3t_done
