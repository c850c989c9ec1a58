#!/bin/sh
# occfs-mcp over stdio against a real broker: the golden transcript
# stdio.out covers initialize, tools/list, each tool, and the refusals
# (unknown method and tool, bad arguments, malformed JSON, an oversize
# line, batches by protocol version, version negotiation).  Volatile
# values are normalised by filter.py.  Run by `make check`.
. "$(dirname "$0")/lib.sh"

start_broker
# run IN: one occfs-mcp --stdio session, input file IN, filtered output.
run() {
	mint fs-a "$tmp/h"
	"$mcp" --handle "$tmp/h" --broker "unix:$tmp/sock" --stdio \
		<"$1" 2>>"$tmp/mcp.log" | filter
	[ ! -e "$tmp/h" ] || fail "the handle file was not scrubbed"
}
# The oversize line: 70000 bytes, past the 64 KiB limit.
python3 -c 'print("{\"x\":\"" + "a" * 70000 + "\"}")' >"$tmp/big"
sed -e "/@OVERSIZE@/{r $tmp/big" -e 'd}' "$here/stdio.in" >"$tmp/in1"
{
	echo "== protocol 2025-06-18"
	run "$tmp/in1"
	echo "== protocol 2025-03-26: batches"
	run "$here/stdio2.in"
	echo "== negotiation"
	run "$here/stdio3.in"
} >"$tmp/out"
if diff -u "$here/stdio.out" "$tmp/out" >"$tmp/diff"; then
	ok "stdio transcript matches stdio.out"
else
	fail "stdio transcript differs from stdio.out:"; cat "$tmp/diff"
	cp "$tmp/out" "${top_builddir}/tests/mcp-stdio.out.bad" 2>/dev/null
fi
# stdin closed at once: a clean exit, nothing on stdout.
mint fs-a "$tmp/h"
out=$("$mcp" --handle "$tmp/h" --broker "unix:$tmp/sock" --stdio </dev/null \
	2>>"$tmp/mcp.log")
[ $? = 0 ] && [ -z "$out" ] && ok "EOF on stdin: exit 0" ||
	fail "EOF on stdin: '$out'"
# A handle file open to others is refused and left alone.
mint fs-a "$tmp/h"
chmod 644 "$tmp/h"
"$mcp" --handle "$tmp/h" --broker "unix:$tmp/sock" --stdio </dev/null \
	>/dev/null 2>"$tmp/err" && fail "a mode 0644 handle was accepted"
grep -q "make it mode 0600" "$tmp/err" && [ -e "$tmp/h" ] &&
	ok "mode 0644 handle refused: $(cat "$tmp/err")" ||
	fail "mode 0644 handle: $(cat "$tmp/err")"
clean_log "$tmp/mcp.log"
clean_log "$tmp/broker.log"
[ $fails = 0 ]
