"""The AutoGen adapter: the only part of the bridge that imports ``autogen_core``."""

from .server import DEFAULT_CALL_TIMEOUT, Server, connect
from .tool import MCPTool

__all__ = ["DEFAULT_CALL_TIMEOUT", "MCPTool", "Server", "connect"]
