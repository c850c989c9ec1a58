#!/bin/bash
# backend-s3.sh - run test-backend-s3 against a fresh radosgw.
#
# usage: backend-s3.sh [BUILD_DIR]   (default: $top_builddir or .)
#
# Starts radosgw with rgw-start (exit 77 with its message when Ceph cannot
# run here), runs the test with the server's env file exported, and stops
# the server on every path.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
B=$(cd "${1:-${top_builddir:-.}}" && pwd)
BIN=$B/tests/s3/test-backend-s3

if [ ! -x "$BIN" ]; then
	echo "backend-s3.sh: $BIN not built (make check builds it)" >&2
	exit 1
fi
STATE=$(mktemp -d /tmp/occfs-rgw.XXXXXX)
rmdir "$STATE"
"$HERE/rgw-start" "$STATE"
rc=$?
if [ $rc != 0 ]; then
	[ $rc = 77 ] && echo "backend-s3.sh: radosgw cannot run here: skipped"
	rm -rf "$STATE"
	exit $rc
fi
trap '"$HERE/rgw-stop" "$STATE"' EXIT INT TERM
set -a
. "$STATE/env"
set +a
"$BIN"
