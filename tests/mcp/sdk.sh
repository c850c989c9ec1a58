#!/bin/sh
# occfs-mcp with a real MCP client: the official TypeScript SDK
# (@modelcontextprotocol/sdk from the npm registry, installed into a
# temporary directory at test time) over stdio and Streamable HTTP.
# Skips (77) when node or npm is missing or the package cannot be
# installed; MCP_SDK_DIR names a directory that already holds it.
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null && command -v npm >/dev/null ||
	{ echo "sdk.sh: node/npm not installed, skipped"; exit 77; }
sdk=${MCP_SDK_DIR:-$tmp/sdk}
if [ ! -d "$sdk/node_modules/@modelcontextprotocol/sdk" ]; then
	mkdir -p "$sdk"
	if ! (cd "$sdk" && timeout 300 npm install --no-audit --no-fund \
		--silent @modelcontextprotocol/sdk >"$tmp/npm.log" 2>&1); then
		echo "sdk.sh: cannot install @modelcontextprotocol/sdk from" \
			"the npm registry, skipped:"
		tail -3 "$tmp/npm.log"
		exit 77
	fi
fi
echo "SDK $(sed -n 's/^ *"version": "\(.*\)",/\1/p' \
	"$sdk/node_modules/@modelcontextprotocol/sdk/package.json"), node $(node --version)"
cp "$here/sdk-client.mjs" "$sdk/"

start_broker
mint fs-a "$tmp/h"
node "$sdk/sdk-client.mjs" stdio "$mcp" "$tmp/h" "unix:$tmp/sock" ||
	fails=$((fails + 1))

mint fs-a "$tmp/h"
"$mcp" --handle "$tmp/h" --broker "unix:$tmp/sock" --http 127.0.0.1:0 \
	2>"$tmp/mcp.log" &
extra_pids=$!
i=0
until port=$(sed -n 's|.*127.0.0.1:\([0-9]*\)/mcp|\1|p' "$tmp/mcp.log") &&
	[ -n "$port" ]; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "occfs-mcp did not start"; exit 1; }
	sleep 0.1
done
node "$sdk/sdk-client.mjs" http "http://127.0.0.1:$port/mcp" ||
	fails=$((fails + 1))
clean_log "$tmp/mcp.log"
[ $fails = 0 ]
