#!/bin/sh
# DLP through a real mount on the local backend: files with a planted AWS
# key id or a Luhn-valid card number fail at close with EACCES, stay out
# of the tree (empty there) and are kept in the quarantine, which occfsctl
# lists, releases and deletes; an audit rule lets its file through with a
# finding (an OCSF Data Security Finding in the audit log, as blocks are;
# the broker's audit settings come from the policy's audit section);
# a clean file passes; a secret split across two writes (the
# first half already accepted by an fsync) is found; hooks that block,
# and that time out with on_error block and allow.  Needs root and
# /dev/fuse (skips otherwise).  Run by `make check` from the build dir.
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/root" "$tmp/m"
cat >"$tmp/hook-block" <<'EOF'
#!/bin/sh
cat >/dev/null
echo "block the hook said no"
EOF
cat >"$tmp/hook-slow" <<'EOF'
#!/bin/sh
exec sleep 30
EOF
chmod 755 "$tmp/hook-block" "$tmp/hook-slow"
cat >"$tmp/pol/10-fs.yaml" <<EOF
version: 1
tokens: {public_key: $tmp/pub, audience: dlp-test}
audit:
  socket: $tmp/audit.sock
  spool_dir: $tmp/spool
filesystems:
  - name: fs1
    local: {root: $tmp/root}
    intents: [read, write]
dlp:
  rules:
    - {name: aws-keys, builtin: aws_access_key_id, action: block, severity: high}
    - {name: cards, builtin: card_number, action: block}
    - {name: employee-ids, regex: 'EMP-[0-9]{6}', action: audit}
    - name: hook-says-no
      hook: {program: $tmp/hook-block}
      files: ["*.hook"]
      action: block
    - name: slow-closed
      hook: {program: $tmp/hook-slow, timeout: 300ms, on_error: block}
      files: ["*.slowclosed"]
      action: block
    - name: slow-open
      hook: {program: $tmp/hook-slow, timeout: 300ms, on_error: allow}
      files: ["*.slowopen"]
      action: block
EOF

"$auditd" -s "$tmp/audit.sock" -d "$tmp/auditlog" 2>"$tmp/auditd.log" &
apid=$!
i=0
until [ -S "$tmp/audit.sock" ]; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "dlp.sh: occfs-auditd did not start"; cat "$tmp/auditd.log"; exit 1; }
	sleep 0.05
done
start_broker --policy "$tmp/pol" --staging-dir "$tmp/staging"
"$ctl" token mint --key "$tmp/key" --fsid fs1 --intent write \
	--aud dlp-test --out "$tmp/h" || exit 1
mnts="$tmp/m"
"$mountc" "unix:$tmp/sock" "$tmp/m" -o "handle=$tmp/h" >"$tmp/mount.out" 2>&1 ||
	{ echo "dlp.sh: mount failed"; cat "$tmp/mount.out"; exit 1; }

# write FILE PART... : each part one write(2), "fsync" as a part fsyncs;
# prints "close=0" or "close=<errno>" (and "fsync=<errno>" on failure).
cat >"$tmp/writer.py" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for part in sys.argv[2:]:
    if part == "fsync":
        try:
            os.fsync(fd)
        except OSError as e:
            print("fsync=%d" % e.errno)
    else:
        os.write(fd, part.encode())
try:
    os.close(fd)
    print("close=0")
except OSError as e:
    print("close=%d" % e.errno)
EOF
w() { python3 "$tmp/writer.py" "$@"; }
qlist() { "$ctl" quarantine list --root "$tmp/root"; }

# ---- blocks -------------------------------------------------------------------
r=$(w "$tmp/m/creds.txt" "[default]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
")
[ "$r" = "close=13" ] && ok "AWS key id: close failed with EACCES" ||
	fail "AWS key id: writer said '$r', want close=13"
r=$(w "$tmp/m/order.json" '{"card": "4111 1111 1111 1111", "qty": 2}')
[ "$r" = "close=13" ] && ok "card number: close failed with EACCES" ||
	fail "card number: writer said '$r', want close=13"
# dd conv=fsync sees the fsync fail
printf 'key AKIAIOSFODNN7EXAMPLE\n' >"$tmp/src"
if dd if="$tmp/src" of="$tmp/m/dd.txt" conv=fsync 2>"$tmp/dd.err"; then
	fail "dd conv=fsync of a secret succeeded"
elif grep -q "Permission denied" "$tmp/dd.err"; then
	ok "dd conv=fsync: $(grep -o 'fsync.*Permission denied\|Permission denied' "$tmp/dd.err" | head -1)"
else
	fail "dd conv=fsync failed without EACCES: $(cat "$tmp/dd.err")"
fi
for f in creds.txt order.json dd.txt; do
	sz=$(stat -c %s "$tmp/root/fs1/$f" 2>/dev/null)
	[ "$sz" = 0 ] || fail "$f: $sz bytes in the tree after a block, want 0"
	grep -q -e AKIA -e 4111 "$tmp/m/$f" 2>/dev/null &&
		fail "$f: the guest reads the blocked content back"
done
qlist >"$tmp/q1"
n=$(grep -c '^q' "$tmp/q1")
[ "$n" = 3 ] && ok "quarantine lists the 3 blocked files" ||
	{ fail "quarantine lists $n entries, want 3"; cat "$tmp/q1"; }
grep -q 'aws-keys .*/creds.txt' "$tmp/q1" && grep -q 'cards .*/order.json' "$tmp/q1" ||
	{ fail "quarantine list does not name rule and file"; cat "$tmp/q1"; }
grep -q "dlp: blocked: rule aws-keys .*path=/creds.txt.*quarantine=q" "$tmp/broker.log" &&
	ok "log names the rule, the file and the quarantine entry" ||
	fail "no block log line for creds.txt"
grep AKIAIOSFODNN7EXAMPLE "$tmp/broker.log" >/dev/null &&
	fail "the secret itself is in the broker's log"

# ---- release and delete --------------------------------------------------------------
id=$(awk '/creds.txt/ {print $1}' "$tmp/q1")
"$ctl" quarantine release "$id" --root "$tmp/root" >/dev/null ||
	fail "release $id"
grep -q AKIAIOSFODNN7EXAMPLE "$tmp/root/fs1/creds.txt" &&
	ok "release puts the blocked file back in the tree" ||
	fail "release did not restore creds.txt"
# The release changed the host tree behind the guest's back: the guest
# sees it once its cached attributes (size 0) expire.
i=0
until grep -q AKIAIOSFODNN7EXAMPLE "$tmp/m/creds.txt" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 50 ] && { fail "the released file is not seen through the mount"; break; }
	sleep 0.1
done
id=$(awk '/order.json/ {print $1}' "$tmp/q1")
"$ctl" quarantine delete "$id" --root "$tmp/root" >/dev/null ||
	fail "delete $id"
[ -e "$tmp/root/.occfs-quarantine/$id" ] && fail "delete left $id"
n=$(qlist | grep -c '^q')
[ "$n" = 1 ] && ok "delete and release remove their entries" ||
	fail "quarantine has $n entries after release and delete, want 1"
"$ctl" quarantine list --json --root "$tmp/root" | python3 -c '
import json, sys
l = json.load(sys.stdin)
assert len(l) == 1 and l[0]["rule"] == "aws-keys" and l[0]["path"] == "/dd.txt", l
assert l[0]["filesystem_id"] == "fs1" and l[0]["size"] > 0
' && ok "list --json" || fail "list --json"
# hostile ids
for bad in ../fs1 "q/../../x" . .. "" "$tmp/root" q..; do
	"$ctl" quarantine delete "$bad" --root "$tmp/root" 2>/dev/null
	[ $? = 2 ] || fail "id '$bad' not refused as a usage error"
done
"$ctl" quarantine release q0123 --root "$tmp/root" 2>/dev/null &&
	fail "release of a missing entry succeeded"
ok "ids with path tricks and missing entries refused"

# ---- audit, allow, splits --------------------------------------------------------------
r=$(w "$tmp/m/staff.csv" "name,id
ann,EMP-123456
")
[ "$r" = "close=0" ] && grep -q EMP-123456 "$tmp/root/fs1/staff.csv" &&
	ok "audit rule: file accepted" || fail "audit rule: '$r'"
grep -q "dlp: finding: rule employee-ids (medium, audit) on fsid=fs1 path=/staff.csv" \
	"$tmp/broker.log" && ok "audit rule: finding logged" ||
	fail "audit rule: no finding in the log"
r=$(w "$tmp/m/clean.txt" "nothing to see here, qty 2 of 12 items")
[ "$r" = "close=0" ] && [ -s "$tmp/root/fs1/clean.txt" ] &&
	ok "clean file passes" || fail "clean file: '$r'"
r=$(w "$tmp/m/split.txt" "token AKIAIOSF" fsync "ODNN7EXAMPLE end")
[ "$r" = "close=13" ] && ok "key split across two writes (first half fsynced) found" ||
	fail "split key: '$r', want close=13"
r=$(w "$tmp/m/split2.txt" "pay 4111 1111" "1111 1111 now")
[ "$r" = "close=13" ] && ok "card split across two writes found" ||
	fail "split card: '$r', want close=13"

# ---- findings in the audit log (class 2006) ------------------------------------------
cat >"$tmp/findings.py" <<'EOF'
import json, sys
seen = set()
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("class_uid") != 2006:
        continue
    s = json.dumps(e)
    assert "AKIAIOSFODNN7EXAMPLE" not in s and "4111 1111" not in s, "secret in event"
    for rule, path in (("aws-keys", "/creds.txt"), ("cards", "/order.json"),
                       ("employee-ids", "/staff.csv")):
        if rule in s and path in s:
            seen.add(rule)
sys.exit(0 if len(seen) == 3 else 1)
EOF
i=0
until "$audit" tail "$tmp/auditlog" -n 1000 --json >"$tmp/ev.json" 2>/dev/null &&
	python3 "$tmp/findings.py" "$tmp/ev.json"; do
	i=$((i + 1))
	[ $i -gt 50 ] && break
	sleep 0.1
done
[ $i -le 50 ] && ok "blocks and the audit finding are OCSF findings in the audit log" ||
	fail "no class 2006 events for aws-keys, cards and employee-ids"
"$audit" verify "$tmp/auditlog" >/dev/null 2>&1 || fail "audit chain does not verify"

# ---- hooks -----------------------------------------------------------------------------
r=$(w "$tmp/m/a.hook" "harmless")
[ "$r" = "close=13" ] && ok "hook answering block blocks" || fail "hook block: '$r'"
grep -q "rule hook-says-no .*reason='the hook said no'" "$tmp/broker.log" ||
	fail "hook reason not logged"
t0=$(date +%s)
r=$(w "$tmp/m/a.slowclosed" "harmless")
[ "$r" = "close=13" ] && ok "hook timing out, on_error block: blocked" ||
	fail "slow hook on_error block: '$r'"
r=$(w "$tmp/m/a.slowopen" "harmless")
t1=$(date +%s)
[ "$r" = "close=0" ] && ok "hook timing out, on_error allow: accepted" ||
	fail "slow hook on_error allow: '$r'"
[ $((t1 - t0)) -lt 10 ] || fail "hook timeouts took $((t1 - t0)) s"

# ---- reload: rules removed, then nothing is scanned ----------------------------------
sed -i '/^dlp:/,$d' "$tmp/pol/10-fs.yaml"
kill -HUP $pid
sleep 0.5
r=$(w "$tmp/m/after.txt" "AKIAIOSFODNN7EXAMPLE")
[ "$r" = "close=0" ] && ok "after a reload without dlp rules the key passes" ||
	fail "after reload: '$r'"

umount "$tmp/m"
mnts=
finish
