"""autogen-mcp-bridge: any MCP server's tools as lossless AutoGen ``FunctionTool``s.

```python
from bridge import connect

async with connect(["python", "-m", "fixtures.multimail"], env={"MULTIMAIL_API_KEY": key}) as server:
    tools = await server.tools()          # list[MCPTool], each an autogen_core FunctionTool
    result = await server.call("check_inbox", {"limit": 5})
```
"""

from .autogen import DEFAULT_CALL_TIMEOUT, MCPTool, Server, connect
from .catalogue import Annotations, Catalogue, ToolEntry, safe_names
from .connection import Connection, Handler, Interceptor, ToolCall
from .errors import (
    AuthError,
    BridgeError,
    CallTimeout,
    CatalogueDrift,
    ConfigError,
    ConnectError,
    ConnectionLost,
    InvalidArguments,
    ProtocolError,
    ServerStartError,
    ServerUnreachable,
    ToolError,
    ToolNotFound,
)
from .results import CallResult, render
from .schema import OMIT, CompiledSchema, Parameter, compile_schema
from .session import ClientCallbacks, ServerInfo, Session
from .targets import HttpTarget, StdioTarget, Target, load_config, parse_config, resolve_target

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "OMIT",
    "Annotations",
    "AuthError",
    "BridgeError",
    "CallResult",
    "CallTimeout",
    "Catalogue",
    "CatalogueDrift",
    "ClientCallbacks",
    "CompiledSchema",
    "ConfigError",
    "ConnectError",
    "Connection",
    "ConnectionLost",
    "Handler",
    "HttpTarget",
    "Interceptor",
    "InvalidArguments",
    "MCPTool",
    "Parameter",
    "ProtocolError",
    "Server",
    "ServerInfo",
    "ServerStartError",
    "ServerUnreachable",
    "Session",
    "StdioTarget",
    "Target",
    "ToolCall",
    "ToolEntry",
    "ToolError",
    "ToolNotFound",
    "__version__",
    "compile_schema",
    "connect",
    "load_config",
    "parse_config",
    "render",
    "resolve_target",
    "safe_names",
]
