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
``import bridge`` loads no agent framework (nor, until a name is used, the MCP SDK); ``Server.tools_for``
imports AutoGen on first use.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
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
    from .server_requests import ServerRequestGuard
    from .toolset import Toolset

# Where each public name lives. Resolved on first access (PEP 562), so `import bridge` costs next to
# nothing: the CLI's help, or a program that only needs bridge.secrets, never loads the MCP SDK.
_EXPORTS = {
    "ApprovalPolicy": "approval", "AutoApprove": "approval", "AutoDeny": "approval",
    "CallbackApprover": "approval", "ConsoleApprover": "approval",
    "open_audit_log": "audit",
    **dict.fromkeys(["AuthError", "BridgeError", "CallTimeout", "CatalogueDrift", "ConfigError", "ConnectError",
                     "ConnectionLost", "InvalidArguments", "ProtocolError", "ServerStartError",
                     "ServerUnreachable", "ToolError", "ToolNotFound"], "errors"),
    "ServerGroup": "group", "open_servers": "group",
    "Guards": "guards", "LockFile": "lock", "Options": "options", "CallResult": "results",
    "ToolFilter": "selection", "Server": "server", "connect": "server", "Toolset": "toolset",
    "ServerRequestGuard": "server_requests",
}


def __getattr__(name: str) -> _typing.Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bridge' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


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
    "ServerRequestGuard",
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
