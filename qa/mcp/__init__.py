"""The MCP edge: `qa mcp` (stdio) and `/mcp` on `qa serve` (streamable HTTP)."""

from qa.mcp.server import NotReadyError, Source, build_server

__all__ = ["NotReadyError", "Source", "build_server"]
