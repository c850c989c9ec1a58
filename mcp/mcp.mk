# occfs-mcp: the agent-facing MCP interface (read-only tools).
