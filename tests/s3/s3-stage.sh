#!/bin/bash
# s3-stage.sh - run test-s3-stage against a fresh radosgw.
#
# usage: s3-stage.sh [BUILD_DIR]   (default: $top_builddir or .)
#
# Builds tests/s3/test-s3-stage from BUILD_DIR's libbroker.a and
# libocccommon.a unless the build system already did, starts radosgw with
# rgw-start (exit 77 when Ceph is not installed), runs the test, stops it.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
B=$(cd "${1:-${top_builddir:-.}}" && pwd)
BIN=$B/tests/s3/test-s3-stage

if [ ! -x "$BIN" ] || [ "$HERE/test-s3-stage.c" -nt "$BIN" ]; then
	[ -f "$B/libbroker.a" ] && [ -f "$B/libocccommon.a" ] || {
		echo "s3-stage.sh: build libbroker.a and libocccommon.a in $B first" >&2
		exit 1
	}
	mkdir -p "$B/tests/s3"
	${CC:-cc} -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
		${SAN_CFLAGS:-} -I"$SRC/common" -I"$SRC/brokerfs" \
		-o "$BIN" "$HERE/test-s3-stage.c" "$B/libbroker.a" \
		"$B/libocccommon.a" $(pkg-config --libs libcurl libcrypto) \
		-lpthread || exit 1
fi

STATE=$(mktemp -d /tmp/occfs-rgw.XXXXXX)
rmdir "$STATE"
"$HERE/rgw-start" "$STATE"
rc=$?
if [ $rc != 0 ]; then
	[ $rc = 77 ] && echo "s3-stage.sh: no radosgw on this host: test skipped" >&2
	rm -rf "$STATE"
	exit $rc
fi
trap '"$HERE/rgw-stop" "$STATE"' EXIT
set -a
. "$STATE/env"
set +a
"$BIN"
