#!/bin/sh
# Replay every fuzz target's checked-in corpus: tests/fuzz/fuzz_NAME runs
# over tests/fuzz/corpus/NAME/.  Run by `make check` from the build dir,
# which sets top_srcdir and top_builddir; by hand they default to this
# script's ../.. and the current directory.  Works with targets linked with
# libFuzzer (they run each file named on the command line once) and with
# the plain replay driver.  Exit 0 only if every target replayed its corpus.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$here/../..}
top_builddir=${top_builddir:-.}

passed=0
failed=0
for bin in "$top_builddir"/tests/fuzz/fuzz_*; do
	name=${bin##*/fuzz_}
	# Binaries only: not fuzz_*.c sources (in-tree builds) or objects.
	case $name in *.*) continue ;; esac
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	corpus=$top_srcdir/tests/fuzz/corpus/$name
	set --
	for f in "$corpus"/*; do
		[ -f "$f" ] && set -- "$@" "$f"
	done
	if [ $# -eq 0 ]; then
		echo "FAIL: fuzz_$name: no corpus in $corpus"
		failed=$((failed + 1))
		continue
	fi
	log=$(mktemp /tmp/occfs-replay.XXXXXX)
	if "$bin" "$@" >"$log" 2>&1; then
		echo "PASS: fuzz_$name: $# inputs"
		passed=$((passed + 1))
	else
		echo "FAIL: fuzz_$name (exit $?):"
		tail -n 30 "$log"
		failed=$((failed + 1))
	fi
	rm -f "$log"
done
if [ $((passed + failed)) -eq 0 ]; then
	echo "replay.sh: no fuzz targets in $top_builddir/tests/fuzz"
	failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
