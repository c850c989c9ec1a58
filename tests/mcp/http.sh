#!/bin/sh
# occfs-mcp over Streamable HTTP against a real broker, driven by curl: the
# golden transcript http.out covers the session id, the protocol version
# header, Origin and Host checks, methods other than POST, Accept and
# Content-Type, oversize bodies, malformed JSON, batches, every tool and
# DELETE.  Also: non-loopback binds are refused before the handle is read,
# and the listener is bound to loopback only.  Run by `make check`.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "http.sh: no curl, skipped"; exit 77; }

start_broker

# Refused binds: exit 2, and the handle file is still there.
mint fs-a "$tmp/h"
for a in 0.0.0.0:0 192.0.2.1:8080 '[::]:0' example.com:80 127.0.0.1; do
	"$mcp" --handle "$tmp/h" --broker "unix:$tmp/sock" --http "$a" \
		>/dev/null 2>"$tmp/err"
	rc=$?
	if [ $rc = 2 ] && [ -e "$tmp/h" ]; then
		ok "--http $a refused: $(cat "$tmp/err")"
	else
		fail "--http $a: exit $rc, handle file $(ls "$tmp/h" 2>&1)"
	fi
done

"$mcp" --handle "$tmp/h" --broker "unix:$tmp/sock" --http 127.0.0.1:0 \
	2>"$tmp/mcp.log" &
mpid=$!
extra_pids=$mpid
i=0
while ! grep -q "listening on" "$tmp/mcp.log"; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $mpid 2>/dev/null; then
		echo "occfs-mcp did not start"; cat "$tmp/mcp.log"; exit 1
	fi
	sleep 0.1
done
port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/mcp|\1|p' \
	"$tmp/mcp.log")
url=http://127.0.0.1:$port/mcp
[ ! -e "$tmp/h" ] || fail "the handle file was not scrubbed"
if ss -Hltn "sport = :$port" | grep -q "127.0.0.1:$port" &&
	[ "$(ss -Hltn "sport = :$port" | wc -l)" = 1 ]; then
	ok "listening on 127.0.0.1:$port only"
else
	fail "listener: $(ss -Hltn "sport = :$port")"
fi

J='Content-Type: application/json'
A='Accept: application/json, text/event-stream'
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
# req TITLE CURL-ARGS...: the status, the headers that matter, the body.
req() {
	echo "-- $1"
	shift
	curl -s -D "$tmp/hdr" -o "$tmp/body" "$@" >/dev/null 2>"$tmp/cerr" ||
		{ echo "curl failed: $(cat "$tmp/cerr")"; return; }
	tr -d '\r' <"$tmp/hdr" | sed -n -e '1s/^HTTP\/1.1 /status /p' \
		-e '/^Content-Type:/p' -e '/^Mcp-Session-Id:/p' -e '/^Allow:/p'
	[ -s "$tmp/body" ] && { cat "$tmp/body"; echo; }
}
sid_of() { tr -d '\r' <"$tmp/hdr" | sed -n 's/^Mcp-Session-Id: //p'; }
call() { # TITLE JSON [extra curl args]: a POST on the session
	t=$1
	b=$2
	shift 2
	req "$t" -H "$J" -H "$A" -H "Mcp-Session-Id: $sid" \
		-H "MCP-Protocol-Version: ${PV:-2025-06-18}" "$@" -d "$b" "$url"
}

{
	req "initialize without Accept" -H "$J" -d "$INIT" "$url"
	req "initialize as text/plain" -H "Content-Type: text/plain" -H "$A" \
		-d "$INIT" "$url"
	req "initialize, unsupported MCP-Protocol-Version" -H "$J" -H "$A" \
		-H "MCP-Protocol-Version: 1999-01-01" -d "$INIT" "$url"
	req "initialize" -H "$J" -H "$A" -d "$INIT" "$url"
	sid=$(sid_of)
	req "ping without a session" -H "$J" -H "$A" \
		-d '{"jsonrpc":"2.0","id":2,"method":"ping"}' "$url"
	req "ping on an unknown session" -H "$J" -H "$A" \
		-H "Mcp-Session-Id: 0123456789abcdef0123456789abcdef" \
		-d '{"jsonrpc":"2.0","id":2,"method":"ping"}' "$url"
	call "notifications/initialized" \
		'{"jsonrpc":"2.0","method":"notifications/initialized"}'
	call "tools/list" '{"jsonrpc":"2.0","id":3,"method":"tools/list"}'
	call "storage_usage" \
		'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"storage_usage"}}'
	call "mount_status" \
		'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"mount_status","arguments":{}}}'
	call "dlp_findings" \
		'{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"dlp_findings","arguments":{"limit":3}}}'
	call "bad arguments" \
		'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"dlp_findings","arguments":{"limit":1000}}}'
	call "unknown tool" \
		'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"kill_switch"}}'
	call "unknown method" '{"jsonrpc":"2.0","id":9,"method":"sessions/create"}'
	call "malformed JSON" '{"jsonrpc":"2.0","id":10,'
	call "batch" '[{"jsonrpc":"2.0","id":11,"method":"ping"}]'
	call "a response from the client" '{"jsonrpc":"2.0","id":12,"result":{}}'
	PV=2025-03-26 call "another MCP-Protocol-Version" \
		'{"jsonrpc":"2.0","id":13,"method":"ping"}'
	call "foreign Origin" '{"jsonrpc":"2.0","id":14,"method":"ping"}' \
		-H "Origin: http://evil.example"
	call "Origin null" '{"jsonrpc":"2.0","id":15,"method":"ping"}' \
		-H "Origin: null"
	call "Origin of a rebound name" \
		'{"jsonrpc":"2.0","id":16,"method":"ping"}' \
		-H "Origin: http://127.0.0.1.evil.example:$port"
	call "loopback Origin" '{"jsonrpc":"2.0","id":17,"method":"ping"}' \
		-H "Origin: http://localhost:$port"
	call "foreign Host" '{"jsonrpc":"2.0","id":18,"method":"ping"}' \
		-H "Host: evil.example:$port"
	python3 -c 'print("{\"x\":\"" + "a" * 70000 + "\"}")' >"$tmp/big"
	call "oversize body" "@$tmp/big"
	req "GET" -H "$A" -H "Mcp-Session-Id: $sid" "$url"
	req "PUT" -X PUT -H "$J" -d '{}' "$url"
	req "another path" -H "$J" -H "$A" -d "$INIT" \
		"http://127.0.0.1:$port/admin"
	req "DELETE" -X DELETE -H "Mcp-Session-Id: $sid" "$url"
	call "ping after DELETE" '{"jsonrpc":"2.0","id":19,"method":"ping"}'
	req "DELETE again" -X DELETE -H "Mcp-Session-Id: $sid" "$url"
} | sed "s/:$port/:PORT/g" | filter >"$tmp/out"

if diff -u "$here/http.out" "$tmp/out" >"$tmp/diff"; then
	ok "HTTP transcript matches http.out"
else
	fail "HTTP transcript differs from http.out:"; cat "$tmp/diff"
fi

# The broker goes away and comes back: tool errors, then answers again.
req "initialize" -H "$J" -H "$A" -d "$INIT" "$url" >/dev/null
sid=$(sid_of)
kill $bpid && wait $bpid
bpid=
call "storage_usage, broker down" \
	'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"storage_usage"}}' >"$tmp/down"
call "mount_status, broker down" \
	'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"mount_status"}}' >>"$tmp/down"
grep -q '"isError":true' "$tmp/down" &&
	grep -q '"reachable":false' "$tmp/down" &&
	grep -q 'cannot connect' "$tmp/down" &&
	ok "broker down: storage_usage isError, mount_status unreachable" ||
	fail "broker down: $(cat "$tmp/down")"
start_broker
call "storage_usage, broker back" \
	'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"storage_usage"}}' >"$tmp/up"
grep -q '"isError":false' "$tmp/up" && grep -q '\\"used\\":12288' "$tmp/up" &&
	ok "broker back: the session reconnects with the kept handle" ||
	fail "broker back: $(cat "$tmp/up")"

# Sessions are capped at 16: of 20, the 4 least recently used are gone.
: >"$tmp/sids"
for n in $(seq 20); do
	curl -s -D "$tmp/hdr" -o /dev/null -H "$J" -H "$A" -d "$INIT" "$url"
	sid_of >>"$tmp/sids"
done
codes=
while read -r s; do
	codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -H "$J" -H "$A" \
		-H "Mcp-Session-Id: $s" -H "MCP-Protocol-Version: 2025-06-18" \
		-d '{"jsonrpc":"2.0","id":1,"method":"ping"}' "$url")"
done <"$tmp/sids"
want=" 404 404 404 404 200 200 200 200 200 200 200 200 200 200 200 200 200 200 200 200"
[ "$codes" = "$want" ] && ok "20 sessions: the 4 least recently used ended" ||
	fail "20 sessions:$codes"

kill $mpid && wait $mpid
rc=$?
extra_pids=
[ $rc = 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
clean_log "$tmp/mcp.log"
clean_log "$tmp/broker.log"
[ $fails = 0 ]
