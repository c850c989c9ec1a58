#!/bin/sh
# Start a real broker on a unix socket and run the reference-model test
# against it and a plain directory.  Run by `make check` from the build dir.
#   REFMODEL_OPS   number of operations (default 10000)
#   REFMODEL_SEED  seed to reproduce a failure
#   REFMODEL_CHECK_FROM  compare the trees after every operation from this
#                  one on (names the operation after which they differ)
set -u
top_builddir=${top_builddir:-.}
broker=$top_builddir/brokerfs/brokerfs
ctl=$top_builddir/tools/occfsctl
model=$top_builddir/tests/rpc/refmodel
for b in "$broker" "$ctl" "$model"; do
	[ -x "$b" ] || { echo "refmodel.sh: $b not built"; exit 1; }
done

tmp=$(mktemp -d /tmp/occfs-refmodel.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkdir -p "$tmp/root" "$tmp/ref"
"$ctl" token keygen --private "$tmp/key" --public "$tmp/pub" || exit 1
"$ctl" token mint --key "$tmp/key" --fsid refmodel --intent write \
	--out "$tmp/handle" || exit 1
"$broker" -f --listen "unix:$tmp/sock" --root "$tmp/root" \
	--token-pubkey "$tmp/pub" 2>"$tmp/broker.log" &
pid=$!
i=0
while [ ! -S "$tmp/sock" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
		echo "refmodel.sh: broker did not start"; cat "$tmp/broker.log"
		exit 1
	fi
	sleep 0.1
done

set -- -S "unix:$tmp/sock" -H "$tmp/handle" -R "$tmp/ref" \
	-B "$tmp/root/refmodel" -n "${REFMODEL_OPS:-10000}"
[ -n "${REFMODEL_SEED:-}" ] && set -- "$@" -s "$REFMODEL_SEED"
[ -n "${REFMODEL_CHECK_FROM:-}" ] && set -- "$@" -c "$REFMODEL_CHECK_FROM"
"$model" "$@"
rc=$?
if [ $rc != 0 ]; then
	echo "refmodel.sh: broker log:"; tail -50 "$tmp/broker.log"
fi
kill "$pid" && wait "$pid"
brc=$?
pid=
if [ $brc != 0 ] && [ $rc = 0 ]; then
	echo "refmodel.sh: broker exited with status $brc on SIGTERM"
	cat "$tmp/broker.log"; rc=1
fi
# The broker must not have logged a sanitizer report or a crash.
if grep -q -e 'Sanitizer' -e 'runtime error' "$tmp/broker.log"; then
	cat "$tmp/broker.log"; rc=1
fi
exit $rc
