#!/bin/sh
# Golden tests of occfs-policy: `check` on every directory under
# tests/policy/cases/ is compared with cases/NAME.out (stdout, stderr and
# the exit status); where cases/NAME.json exists, `show` is compared with
# it.  Then the shipped examples/policy.d must pass, and usage errors exit
# 2.  Secret files the cases name are made here, below a scratch root
# passed with --root, because git does not keep file modes.
#
# Run by `make check` (top_srcdir, top_builddir set); by hand from a build
# directory: top_srcdir=/path/to/src sh /path/to/src/tests/policy/check.sh
# With REGEN=1 the .out and .json files are rewritten from the results.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$here/../..}
top_builddir=${top_builddir:-.}
builddir=$(cd "$top_builddir" && pwd)
bin=$builddir/policy/occfs-policy
# Failed results are kept here as NAME.bad (never in the source tree).
bad=$builddir/tests/policy/results
cases=$(cd "$top_srcdir/tests/policy/cases" && pwd)
examples=$(cd "$top_srcdir/examples/policy.d" && pwd)

[ -x "$bin" ] || { echo "check.sh: no $bin"; exit 1; }
root=$(mktemp -d /tmp/occfs-policy.XXXXXX)
out=$(mktemp /tmp/occfs-policy-out.XXXXXX)
trap 'rm -rf "$root" "$out"' EXIT
mkdir -p "$root/etc/occfs/secrets"
for f in s3.cred rgw.cred token.key secrets/k secrets/openai \
	secrets/github; do
	echo secret >"$root/etc/occfs/$f"
	chmod 600 "$root/etc/occfs/$f"
done
echo secret >"$root/etc/occfs/loose.cred"
chmod 644 "$root/etc/occfs/loose.cred"
echo secret >"$root/etc/occfs/group.key"
chmod 640 "$root/etc/occfs/group.key"

passed=0
failed=0
# compare NAME EXPECTED: the result in $out against a golden file.
compare() {
	if [ "${REGEN:-}" = 1 ]; then
		cp "$out" "$2"
	fi
	if cmp -s "$out" "$2"; then
		echo "PASS: $1"
		passed=$((passed + 1))
	else
		echo "FAIL: $1"
		diff -u "$2" "$out" | head -n 40
		mkdir -p "$bad" && cp "$out" "$bad/${2##*/}.bad"
		failed=$((failed + 1))
	fi
}

cd "$cases" || exit 1
for d in */; do
	name=${d%/}
	"$bin" check --root "$root" "$name" >"$out" 2>&1
	echo "exit $?" >>"$out"
	compare "check $name" "$name.out"
	if [ -f "$name.json" ]; then
		"$bin" show --root "$root" "$name" >"$out" 2>&1
		compare "show $name" "$name.json"
	fi
done

# The shipped examples are valid.
"$bin" check --root "$root" "$examples" >"$out" 2>&1
echo "exit $?" >>"$out"
printf 'OK: 5 files\nexit 0\n' >"$root/examples.out"
REGEN= compare "examples/policy.d" "$root/examples.out"

# A directory that is not there; usage errors exit 2.
"$bin" check "$root/none" >"$out" 2>&1
echo "exit $?" >>"$out"
printf '%s\nexit 1\n' "$root/none: No such file or directory" \
	>"$root/none.out"
REGEN= compare "missing directory" "$root/none.out"
for args in "" "check" "frobnicate x" "check a b" "check --bogus x"; do
	# shellcheck disable=SC2086
	"$bin" $args >/dev/null 2>&1
	rc=$?
	if [ "$rc" -eq 2 ]; then
		echo "PASS: usage '$args' exits 2"
		passed=$((passed + 1))
	else
		echo "FAIL: usage '$args' exits $rc, not 2"
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
