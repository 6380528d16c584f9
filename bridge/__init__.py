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

# Agents: selection, approval, audit, workbench, server groups, components, oversight (issue 5).
from .approval import (
    ApprovalGate,
    ApprovalPolicy,
    Approver,
    AutoApprove,
    AutoDeny,
    CallbackApprover,
    ConsoleApprover,
    Decision,
    Rule,
    approval_interceptor,
)
from .audit import (
    AuditLog,
    AuditRecord,
    AuditTrail,
    JsonlAuditLog,
    SqliteAuditLog,
    audit_interceptor,
    open_audit_log,
)
from .audit import query as query_audit
from .audit import render_table as render_audit_table
from .autogen import (
    MCPWorkbench,
    ServerGroup,
    ServerGroupError,
    ServerSkippedWarning,
    close_shared_connections,
    open_servers,
)
from .oversight import DecisionTimeout, EmailDecision, wait_for_decision
from .selection import MULTIMAIL_ACCOUNT_TOOLS, ToolFilter

__all__ += [
    "MULTIMAIL_ACCOUNT_TOOLS",
    "ApprovalGate",
    "ApprovalPolicy",
    "Approver",
    "AuditLog",
    "AuditRecord",
    "AuditTrail",
    "AutoApprove",
    "AutoDeny",
    "CallbackApprover",
    "ConsoleApprover",
    "Decision",
    "DecisionTimeout",
    "EmailDecision",
    "JsonlAuditLog",
    "MCPWorkbench",
    "Rule",
    "ServerGroup",
    "ServerGroupError",
    "ServerSkippedWarning",
    "SqliteAuditLog",
    "ToolFilter",
    "approval_interceptor",
    "audit_interceptor",
    "close_shared_connections",
    "open_audit_log",
    "open_servers",
    "query_audit",
    "render_audit_table",
    "wait_for_decision",
]

# Reliability and security: pinned catalogues, prompt-injection checks, skipped tools (issue 7).
# (Imported after the __all__ extension above, hence E402: this block is appended, not merged.)
from .connection import Guard  # noqa: E402
from .inspection import suspicious_text, suspicious_tool  # noqa: E402
from .lock import DEFAULT_LOCK_FILE, Drift, LockFile, LockGuard, LockPolicy, ServerPin, ToolChange  # noqa: E402
from .wire import SkippedTool  # noqa: E402

__all__ += [
    "DEFAULT_LOCK_FILE",
    "Drift",
    "Guard",
    "LockFile",
    "LockGuard",
    "LockPolicy",
    "ServerPin",
    "SkippedTool",
    "ToolChange",
    "suspicious_text",
    "suspicious_tool",
]

# Answers to server-initiated requests, for connect(sampling=, elicitation=, roots=) or ClientCallbacks (issue 6).
from .autogen.sampling import sampling_from_model_client  # noqa: E402
from .callbacks import ElicitationAnswer, console_elicitation, elicitation_from, static_roots  # noqa: E402

__all__ += [
    "ElicitationAnswer",
    "console_elicitation",
    "elicitation_from",
    "sampling_from_model_client",
    "static_roots",
]
