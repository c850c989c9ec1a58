// sdk-client.mjs - check occfs-mcp with the official MCP TypeScript SDK.
//
// usage: node sdk-client.mjs stdio MCP HANDLE ENDPOINT
//        node sdk-client.mjs http URL
// sdk.sh copies this file next to a node_modules holding
// @modelcontextprotocol/sdk.  Prints ok:/FAIL: lines; exit 1 on a failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, ...rest] = process.argv.slice(2);
let fails = 0;
const check = (cond, what) => {
  console.log(`${cond ? "ok" : "FAIL"}: ${mode}: ${what}`);
  if (!cond) fails++;
};
// A call that must be refused with a JSON-RPC error of this code.
const refused = async (what, code, fn) => {
  try {
    const r = await fn();
    check(false, `${what} was not refused: ${JSON.stringify(r)}`);
  } catch (e) {
    check(e.code === code, `${what} refused: ${e.code} ${e.message}`);
  }
};

const transport =
  mode === "stdio"
    ? new StdioClientTransport({
        command: rest[0],
        args: ["--handle", rest[1], "--broker", rest[2], "--stdio"],
        stderr: "inherit",
      })
    : new StreamableHTTPClientTransport(new URL(rest[0]));
const client = new Client({ name: "occfs-sdk-check", version: "1.0.0" });
await client.connect(transport);
check(client.getServerVersion()?.name === "occfs-mcp",
  `connected to ${JSON.stringify(client.getServerVersion())}`);
if (mode === "http")
  check(typeof transport.sessionId === "string" && transport.sessionId.length === 32,
    `session id ${transport.sessionId ? "assigned" : "missing"}, protocol ${transport.protocolVersion}`);
await client.ping();
check(true, "ping");

const { tools } = await client.listTools();
check(tools.map((t) => t.name).sort().join(",") === "dlp_findings,mount_status,storage_usage",
  `tools/list: ${tools.map((t) => t.name).join(", ")}`);

// The SDK checks structuredContent against each tool's outputSchema.
const usage = await client.callTool({ name: "storage_usage", arguments: {} });
const u = usage.structuredContent;
check(!usage.isError && u.bytes.used === 12288 && u.bytes.limit === 4194304 &&
  u.inodes.limit === 100, `storage_usage: ${JSON.stringify({ bytes: u.bytes, inodes: u.inodes })}`);
check(JSON.stringify(JSON.parse(usage.content[0].text)) === JSON.stringify(u),
  "storage_usage: text content and structuredContent agree");
const st = await client.callTool({ name: "mount_status", arguments: {} });
const s = st.structuredContent;
check(!st.isError && s.filesystem_id === "fs-a" && s.read_only === false &&
  s.broker.reachable === true && s.handle_expires_in_s > 0,
  `mount_status: fsid ${s.filesystem_id}, intent ${s.intent}, latency ${s.broker.latency_us} us`);
const dlp = await client.callTool({ name: "dlp_findings", arguments: { limit: 5 } });
check(!dlp.isError && dlp.structuredContent.available === true &&
  Array.isArray(dlp.structuredContent.findings),
  `dlp_findings: available, ${dlp.structuredContent.findings?.length} findings`);

await refused("tools/call revoke_all", -32602,
  () => client.callTool({ name: "revoke_all", arguments: {} }));
await refused("tools/call create_session", -32602,
  () => client.callTool({ name: "create_session", arguments: { filesystem_id: "fs-b" } }));
await refused("storage_usage with filesystem_id fs-b", -32602,
  () => client.callTool({ name: "storage_usage", arguments: { filesystem_id: "fs-b" } }));
await refused("dlp_findings with limit 0", -32602,
  () => client.callTool({ name: "dlp_findings", arguments: { limit: 0 } }));
await refused("resources/list", -32601, () => client.listResources());
await refused("prompts/list", -32601, () => client.listPrompts());

if (mode === "http") await transport.terminateSession();
await client.close();
process.exit(fails ? 1 : 0);
