#!/bin/sh
# What no MCP request can reach.  occfs-mcp runs with a handle for fs-a
# while fs-b holds another session's data (and has a live MCP session of
# its own): every method and tool name a peer could try is enumerated and
# the set answered must be exactly the read-only one; calls naming fs-b are
# refused; no reply ever holds fs-b's names, data or usage.  A recording
# proxy in front of the broker proves the only operations occfs-mcp ever
# sends are HELLO, PING, STATFS and DLP_FINDINGS (no kill-switch, no file
# operation; DLP_FINDINGS names no filesystem: the broker answers it for
# the session's own; tests/mcp/findings.sh checks that with real findings),
# strace that it connects to nothing but the broker, and the broker's log
# that its only sessions are fs-a's.  Run by `make check`.
. "$(dirname "$0")/lib.sh"

# fs-b: another session's names, contents and a distinctive size.
mkdir "$tmp/root/fs-b/b-secret-dir-5d1e"
printf 'B-CONTENT-91c2' >"$tmp/root/fs-b/b-secret-name-7f3a"
head -c 3333333 /dev/urandom >"$tmp/root/fs-b/b-big-file"
start_broker
python3 "$here/opsproxy.py" "$tmp/proxy.sock" "$tmp/sock" \
	"$top_srcdir/common/proto.h" "$tmp/ops.log" 2>"$tmp/proxy.log" &
extra_pids=$!
i=0
while [ ! -S "$tmp/proxy.sock" ]; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "proxy did not start"; exit 1; }
	sleep 0.1
done

# fs-b's own MCP session, live on the same broker throughout.
mint fs-b "$tmp/hb"
"$mcp" --handle "$tmp/hb" --broker "unix:$tmp/sock" --http 127.0.0.1:0 \
	2>"$tmp/mcp-b.log" &
extra_pids="$extra_pids $!"

mint fs-a "$tmp/ha"
python3 "$here/confine.py" "$mcp" "$tmp/ha" "unix:$tmp/proxy.sock" \
	"$tmp/replies" || fails=$((fails + 1))

# The same refusals over HTTP (the same core, a different way in).
mint fs-a "$tmp/ha"
"$mcp" --handle "$tmp/ha" --broker "unix:$tmp/proxy.sock" \
	--http 127.0.0.1:0 2>"$tmp/mcp-a.log" &
apid=$!
extra_pids="$extra_pids $apid"
i=0
until port=$(sed -n 's|.*127.0.0.1:\([0-9]*\)/mcp|\1|p' "$tmp/mcp-a.log") &&
	[ -n "$port" ]; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "occfs-mcp did not start"; exit 1; }
	sleep 0.1
done
post() {
	curl -s -D "$tmp/hdr" -H 'Content-Type: application/json' \
		-H 'Accept: application/json, text/event-stream' \
		${sid:+-H "Mcp-Session-Id: $sid"} -d "$1" \
		"http://127.0.0.1:$port/mcp"
	echo
}
sid=
post '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}' >>"$tmp/replies"
sid=$(tr -d '\r' <"$tmp/hdr" | sed -n 's/^Mcp-Session-Id: //p')
for m in revoke_all sessions/revoke create_session kill; do
	post "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$m\",\"params\":{\"filesystem_id\":\"fs-b\"}}"
done >"$tmp/http-m"
for t in revoke_all kill create_session; do
	post "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"$t\",\"arguments\":{}}}"
done >"$tmp/http-t"
for t in storage_usage mount_status dlp_findings; do
	post "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"$t\",\"arguments\":{\"filesystem_id\":\"fs-b\"}}}"
	post "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"$t\"}}"
done >"$tmp/http-o"
cat "$tmp/http-m" "$tmp/http-t" "$tmp/http-o" >>"$tmp/replies"
[ "$(grep -c '"code":-32601' "$tmp/http-m")" = 4 ] &&
	ok "HTTP: control-plane methods are unknown (-32601)" ||
	fail "HTTP methods: $(cat "$tmp/http-m")"
[ "$(grep -c '"code":-32602' "$tmp/http-t")" = 3 ] &&
	ok "HTTP: control-plane tools are unknown (-32602)" ||
	fail "HTTP tools: $(cat "$tmp/http-t")"
[ "$(grep -c '"code":-32602' "$tmp/http-o")" = 3 ] &&
	[ "$(grep -c '"isError":false' "$tmp/http-o")" = 3 ] &&
	ok "HTTP: fs-b in arguments refused, own calls answered" ||
	fail "HTTP other session: $(cat "$tmp/http-o")"
kill $apid && wait $apid

# Nothing of fs-b in anything fs-a's server said.
for s in fs-b sess-fs-b b-secret-name-7f3a b-secret-dir-5d1e B-CONTENT-91c2 \
	3333333 3338240; do
	grep -q -e "$s" "$tmp/replies" "$tmp/mcp-a.log" &&
		fail "fs-b's '$s' appears in fs-a's replies"
done
grep -q '"used":12288' "$tmp/replies" &&
	ok "fs-a's usage is its own (12288 bytes); no trace of fs-b in $(wc -l <"$tmp/replies") replies" ||
	fail "fs-a's usage not found"

# The wire: only HELLO, PING, STATFS and DLP_FINDINGS, on fs-a's connections.
ops=$(sed -n 's/^conn [0-9]* op //p' "$tmp/ops.log" | sort -u | tr '\n' ' ')
[ "$ops" = "DLP_FINDINGS HELLO PING STATFS " ] &&
	ok "operations sent to the broker: $ops($(wc -l <"$tmp/ops.log") frames)" ||
	fail "operations sent to the broker: $ops"
opened=$(sed -n 's/.*session open: sid=\([^ ]*\) fsid=\([^ ]*\) .*/\2/p' \
	"$tmp/broker.log" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
sed -n 's/.*session open: sid=[^ ]* fsid=\([^ ]*\) .*/\1/p' \
	"$tmp/broker.log" | sort -u | tr '\n' ' ' | grep -qx 'fs-a fs-b ' &&
	ok "broker sessions:$opened (fs-b's only from its own server)" ||
	fail "broker sessions:$opened"

# The process connects to the broker and nothing else.
if command -v strace >/dev/null; then
	mint fs-a "$tmp/ha"
	printf '%s\n' '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}' \
		'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mount_status"}}' \
		'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"storage_usage"}}' |
		strace -f -qq -e trace=connect -o "$tmp/strace" "$mcp" \
			--handle "$tmp/ha" --broker "unix:$tmp/sock" --stdio \
			>/dev/null 2>&1
	n=$(grep -c 'connect(' "$tmp/strace")
	other=$(grep 'connect(' "$tmp/strace" | grep -v "sun_path=\"$tmp/sock\"")
	[ "$n" -ge 1 ] && [ -z "$other" ] &&
		ok "connect(2): $n call(s), all to the broker socket" ||
		fail "connect(2): $(cat "$tmp/strace")"
else
	echo "strace not installed: connect(2) check skipped"
fi
for f in broker.log mcp-a.log mcp-b.log replies; do
	clean_log "$tmp/$f"
done
[ $fails = 0 ]
