"""autogen-mcp-bridge: any MCP server's tools for AutoGen (and AG2, MetaGPT, Agent Framework), losslessly.

```python
from bridge import connect

async with connect(["python", "-m", "fixtures.multimail"], env={"MULTIMAIL_API_KEY": key}) as server:
    tools = await server.tools_for("triage", read_only=True, audit="audit.jsonl")   # AutoGen FunctionTools
    result = await server.call("check_inbox", {"limit": 5})
```

The root exports what a user needs to start: ``connect`` and the ``Server`` it yields, server
groups, the ``Options`` (how to connect) and ``Guards`` (what an agent may do) values, the
``Toolset`` every framework adapter builds on, approvals, the lock file and audit entry points,
``CallResult`` and the error hierarchy. Everything else is imported from its module
(``bridge.catalogue``, ``bridge.schema``, ``bridge.audit``, ...), and each framework from its
adapter package: ``bridge.autogen``, ``bridge.ag2``, ``bridge.metagpt``, ``bridge.agent_framework``.
``import bridge`` loads no agent framework; ``Server.tools_for`` imports AutoGen on first use.
"""

from .approval import ApprovalPolicy, AutoApprove, AutoDeny, CallbackApprover, ConsoleApprover
from .audit import open_audit_log
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
from .group import ServerGroup, open_servers
from .guards import Guards
from .lock import LockFile
from .options import Options
from .results import CallResult
from .selection import ToolFilter
from .server import Server, connect
from .toolset import Toolset

__version__ = "0.1.0"

__all__ = [
    "ApprovalPolicy",
    "AuthError",
    "AutoApprove",
    "AutoDeny",
    "BridgeError",
    "CallResult",
    "CallTimeout",
    "CallbackApprover",
    "CatalogueDrift",
    "ConfigError",
    "ConnectError",
    "ConnectionLost",
    "ConsoleApprover",
    "Guards",
    "InvalidArguments",
    "LockFile",
    "Options",
    "ProtocolError",
    "Server",
    "ServerGroup",
    "ServerStartError",
    "ServerUnreachable",
    "ToolError",
    "ToolFilter",
    "ToolNotFound",
    "Toolset",
    "__version__",
    "connect",
    "open_audit_log",
    "open_servers",
]
