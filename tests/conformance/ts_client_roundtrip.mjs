// A tools round trip with the official TypeScript SDK client against an opsgate server.
//   node ts_client_roundtrip.mjs stdio <command> [args...]      (env passes through)
//   node ts_client_roundtrip.mjs http <url> [bearer-token]
// Prints one JSON object: the negotiated server info, the tool names, and two calls' results.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, target, ...rest] = process.argv.slice(2);
let transport;
if (mode === "stdio") {
  transport = new StdioClientTransport({ command: target, args: rest, env: process.env, stderr: "inherit" });
} else if (mode === "http") {
  const headers = rest[0] ? { Authorization: `Bearer ${rest[0]}` } : {};
  transport = new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
} else {
  console.error("usage: ts_client_roundtrip.mjs stdio <command> [args...] | http <url> [token]");
  process.exit(2);
}

const client = new Client({ name: "ts-sdk-roundtrip", version: "1.0.0" });
await client.connect(transport);
const tools = await client.listTools();
const found = await client.callTool({ name: "runbook_search", arguments: { query: "database connection pool" } });
const invalid = await client.callTool({ name: "runbook_search", arguments: { query: "" } });
console.log(
  JSON.stringify({
    server: client.getServerVersion(),
    protocolVersion: transport.protocolVersion ?? null,
    tools: tools.tools.map((t) => ({ name: t.name, hasOutputSchema: Boolean(t.outputSchema) })),
    found: { isError: found.isError ?? false, structuredContent: found.structuredContent },
    invalid: { isError: invalid.isError ?? false, text: invalid.content?.[0]?.text ?? "" },
  }),
);
await client.close();
