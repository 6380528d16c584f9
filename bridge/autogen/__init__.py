"""The AutoGen adapter: the only part of the bridge that imports ``autogen_core``."""

from .components import ServerSpec, SharedConnections, close_shared_connections, shared_connections
from .group import ServerGroup, ServerGroupError, ServerSkippedWarning, open_servers
from .server import DEFAULT_CALL_TIMEOUT, Server, connect
from .tool import MCPTool
from .workbench import MCPWorkbench

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "MCPTool",
    "MCPWorkbench",
    "Server",
    "ServerGroup",
    "ServerGroupError",
    "ServerSkippedWarning",
    "ServerSpec",
    "SharedConnections",
    "close_shared_connections",
    "connect",
    "open_servers",
    "shared_connections",
]
