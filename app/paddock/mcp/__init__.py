"""The local MCP server: the sandbox tools for any MCP client. The only user of the mcp SDK."""
