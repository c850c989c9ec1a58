#!/bin/sh
# lib.sh - sourced by the occfs-mcp tests: a real brokerfs on the local
# backend with a policy (per-session quotas), handles minted with the
# build tree's occfsctl, and a filter for the volatile fields of replies.
#   top_builddir  build directory (default .)
#   MCP_KEEP=1    keep the work directory
set -u
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
broker=$top_builddir/brokerfs/brokerfs
ctl=$top_builddir/tools/occfsctl
mcp=$top_builddir/mcp/occfs-mcp
here=$top_srcdir/tests/mcp
for b in "$broker" "$ctl" "$mcp"; do
	[ -x "$b" ] || { echo "$(basename "$0"): $b not built"; exit 1; }
done

tmp=$(mktemp -d /tmp/occfs-mcp-test.XXXXXX)
bpid=
extra_pids=
fails=0
cleanup() {
	for p in $extra_pids $bpid; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	if [ -n "${MCP_KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
ok() { echo "ok: $*"; }

# Two filesystems under one broker: fs-a (the session under test, 4 MiB /
# 100 inodes) and fs-b (another session's, which must never show).
mkdir -p "$tmp/root/fs-a" "$tmp/root/fs-b" "$tmp/pol" "$tmp/staging"
"$ctl" token keygen --private "$tmp/key" --public "$tmp/pub" >/dev/null ||
	exit 1
cat >"$tmp/pol/10-fs.yaml" <<EOT
version: 1
filesystems:
  - name: "fs-*"
    local: {root: $tmp/root}
    intents: [read, write, preview]
    quota: {bytes: 4MiB, inodes: 100}
EOT
cat >"$tmp/pol/20-tokens.yaml" <<EOT
tokens:
  public_key: $tmp/pub
  audience: mcp-test
EOT
head -c 10000 /dev/zero >"$tmp/root/fs-a/notes.txt"
mkdir "$tmp/root/fs-a/dir"

# start_broker [SOCKET]: a broker on the policy above.
start_broker() {
	sock=${1:-$tmp/sock}
	"$broker" -f --listen "unix:$sock" --policy "$tmp/pol" \
		--staging-dir "$tmp/staging" 2>>"$tmp/broker.log" &
	bpid=$!
	i=0
	while [ ! -S "$sock" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 $bpid 2>/dev/null; then
			echo "broker did not start"; cat "$tmp/broker.log"
			exit 1
		fi
		sleep 0.1
	done
}

# mint FSID FILE [INTENT]: a handle file of mode 0600.
mint() {
	"$ctl" token mint --key "$tmp/key" --fsid "$1" --intent "${3:-write}" \
		--sid "sess-$1" --aud mcp-test --out "$2" || exit 1
	chmod 600 "$2"
}

# filter: normalise volatile values of JSON-RPC lines on stdin.
filter() {
	python3 "$here/filter.py" "$tmp"
}

# No sanitizer report or crash in a log file.
clean_log() {
	if grep -q -e Sanitizer -e 'runtime error' "$1"; then
		fail "sanitizer report in $1"; cat "$1"
	fi
}
