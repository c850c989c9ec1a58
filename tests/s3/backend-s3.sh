#!/bin/bash
# backend-s3.sh - run test-backend-s3 against a fresh radosgw.
#
# usage: backend-s3.sh [BUILD_DIR]   (default: $top_builddir or .)
#
# Runs the test under with-rgw: a throw-away radosgw whose settings are
# exported, stopped on every path (exit 77 when Ceph cannot run here).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
B=$(cd "${1:-${top_builddir:-.}}" && pwd)
BIN=$B/tests/s3/test-backend-s3

if [ ! -x "$BIN" ]; then
	echo "backend-s3.sh: $BIN not built (make check builds it)" >&2
	exit 1
fi
exec "$HERE/with-rgw" "$BIN"
