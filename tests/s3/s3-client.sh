#!/bin/bash
# s3-client.sh - run test-s3-client against a fresh radosgw.
#
# usage: s3-client.sh [BUILD_DIR]   (default: $top_builddir or .)
#
# Builds tests/s3/test-s3-client from BUILD_DIR's libbroker.a and
# libocccommon.a unless the build system already did, runs the test under
# with-rgw (a throw-away radosgw; exit 77 when Ceph is not installed).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
B=$(cd "${1:-${top_builddir:-.}}" && pwd)
BIN=$B/tests/s3/test-s3-client

if [ ! -x "$BIN" ] || [ "$HERE/test-s3-client.c" -nt "$BIN" ]; then
	[ -f "$B/libbroker.a" ] && [ -f "$B/libocccommon.a" ] || {
		echo "s3-client.sh: build libbroker.a and libocccommon.a in $B first" >&2
		exit 1
	}
	mkdir -p "$B/tests/s3"
	${CC:-cc} -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
		${SAN_CFLAGS:-} -I"$SRC/common" -I"$SRC/brokerfs" \
		-o "$BIN" "$HERE/test-s3-client.c" "$B/libbroker.a" \
		"$B/libocccommon.a" $(pkg-config --libs libcurl libcrypto) \
		-lpthread || exit 1
fi

exec "$HERE/with-rgw" "$BIN"
