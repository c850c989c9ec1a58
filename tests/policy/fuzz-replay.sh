#!/bin/sh
# Replay the policy fuzz target over its checked-in corpus
# (tests/policy/corpus/), like tests/fuzz/replay.sh does for tests/fuzz/.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$here/../..}
top_builddir=${top_builddir:-.}
bin=$top_builddir/tests/policy/fuzz_policy
set --
for f in "$top_srcdir"/tests/policy/corpus/* "$top_srcdir"/examples/policy.d/*.yaml; do
	[ -f "$f" ] && set -- "$@" "$f"
done
if [ $# -eq 0 ]; then
	echo "FAIL: fuzz_policy: no corpus"
	echo "0 passed, 1 failed"
	exit 1
fi
if "$bin" "$@" >/dev/null 2>&1; then
	echo "PASS: fuzz_policy: $# inputs"
	echo "1 passed, 0 failed"
else
	echo "FAIL: fuzz_policy (exit $?)"
	"$bin" "$@" 2>&1 | tail -n 30
	echo "0 passed, 1 failed"
	exit 1
fi
