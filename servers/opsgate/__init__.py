"""opsgate: policy-gated MCP servers for SRE agents."""

__version__ = "0.1.0"
