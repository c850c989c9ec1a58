#!/bin/sh
# Replay the checked-in corpus of tests/mcp/fuzz_mcp_rpc (libFuzzer or the
# plain replay driver).  Run by `make check`.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-.}
bin=$top_builddir/tests/mcp/fuzz_mcp_rpc
[ -x "$bin" ] || { echo "fuzz-replay.sh: $bin not built"; exit 1; }
set -- "$top_srcdir"/tests/mcp/corpus/*
[ -f "$1" ] || { echo "fuzz-replay.sh: no corpus"; exit 1; }
"$bin" "$@" >/tmp/occfs-mcp-fuzz.$$ 2>&1
rc=$?
if [ $rc != 0 ] || grep -q -e Sanitizer -e 'runtime error' /tmp/occfs-mcp-fuzz.$$; then
	tail -30 /tmp/occfs-mcp-fuzz.$$
	rc=1
else
	echo "ok: fuzz_mcp_rpc replayed $# inputs"
fi
rm -f /tmp/occfs-mcp-fuzz.$$
exit $rc
