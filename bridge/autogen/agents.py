"""Giving an agent its tools in one expression: selection, approval and audit wrapped around them.

``Server.tools_for(agent, ...)`` / ``Server.workbench_for(agent, ...)`` (and the same on a
``ServerGroup``) are the entry points; the functions here do the assembly for any list of
connections. Nothing here reaches into the core: a ``ToolFilter`` chooses catalogue entries and
an interceptor chain (audit outermost, then approval, then yours) wraps every call.

```python
async with connect(cmd, env={"MULTIMAIL_API_KEY": key}) as mail:
    triage = AssistantAgent("triage", model_client=client,
                            tools=await mail.tools_for("triage", read_only=True, audit="audit.jsonl"))
    drafter = AssistantAgent("drafter", model_client=client,
                             workbench=mail.workbench_for("drafter", include=["check_inbox", "reply_email"],
                                                          approver=ConsoleApprover(), audit="audit.jsonl"))
```

Defaults, chosen to fail safe: every tool not annotated read-only needs a human's approval
(``ApprovalPolicy()``), asked at the console (``ConsoleApprover()``, which denies when no one
can answer). Pass ``approver=AutoApprove()`` for unattended runs, or ``approval=False`` to
drop the gate entirely.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Literal

from ..approval import ApprovalPolicy, Approver, approval_interceptor
from ..audit import AuditLog, audit_interceptor
from ..catalogue import ToolEntry
from ..connection import Connection, Interceptor
from ..errors import ConfigError
from ..selection import ToolFilter
from .tool import MCPTool
from .workbench import MCPWorkbench

__all__ = ["guard", "selection", "tools_for", "workbench_for"]

Patterns = str | Iterable[str] | None
AuditTarget = AuditLog | str | os.PathLike[str] | None


def selection(include: Patterns = None, exclude: Patterns = None, read_only: bool | None = None,
              select: ToolFilter | None = None) -> ToolFilter | None:
    """``select`` with the keyword shorthands merged in; ``None`` when nothing narrows the set.

    Raises:
        ConfigError: a pattern is empty or not a string.
    """
    if include is None and exclude is None and read_only is None:
        return select
    return ToolFilter.of(include, exclude, read_only, base=select)


def guard(*, approval: ApprovalPolicy | Literal[False] | None = None, approver: Approver | None = None,
          audit: AuditTarget = None, interceptors: Sequence[Interceptor] = ()) -> list[Interceptor]:
    """The interceptor chain, outermost first: audit, approval, then ``interceptors``.

    Audit is outermost so denied calls and calls that raised are recorded too.

    Args:
        approval: when to ask (default ``ApprovalPolicy()``: everything not read-only);
            ``False`` for no approval gate at all.
        approver: who answers (default ``ConsoleApprover()``).
        audit: an ``AuditLog`` or a file path (``.jsonl``, or ``.db``/``.sqlite`` for SQLite).
        interceptors: further wrappers, run inside the approval gate (so only on approved calls).

    Raises:
        ConfigError: ``approval=False`` together with an ``approver``.
    """
    chain: list[Interceptor] = []
    if audit is not None:
        chain.append(audit_interceptor(audit))
    if approval is False:
        if approver is not None:
            raise ConfigError("approver= given but approval=False disables the approval gate")
    else:
        chain.append(approval_interceptor(approval, approver))
    chain.extend(interceptors)
    return chain


def _check_unique(tools: Sequence[MCPTool]) -> None:
    seen: dict[str, str] = {}
    for tool in tools:
        server = tool.connection.name
        if tool.name in seen:
            raise ConfigError(f"tool name {tool.name!r} is offered by both {seen[tool.name]!r} and {server!r}; "
                              "open them with prefixes (open_servers(..., prefix=True)) or exclude one")
        seen[tool.name] = server


async def tools_for(connections: Connection | Sequence[Connection], agent: str, *, include: Patterns = None,
                    exclude: Patterns = None, read_only: bool | None = None, select: ToolFilter | None = None,
                    approval: ApprovalPolicy | Literal[False] | None = None, approver: Approver | None = None,
                    audit: AuditTarget = None, interceptors: Sequence[Interceptor] = ()) -> list[MCPTool]:
    """The selected tools of ``connections`` as ``MCPTool``s bound to ``agent``, guarded.

    A snapshot of the catalogue: for tools that follow tools/list_changed, use ``workbench_for``.

    Args:
        include, exclude: globs on MCP or safe names (see ``ToolFilter``).
        read_only: keep only read-only (True) or only other (False) tools, by annotation.
        select: a prepared ``ToolFilter`` the shorthands are merged into.
        approval, approver, audit, interceptors: see ``guard``.

    Raises:
        ConfigError: malformed patterns, or two servers offering the same tool name.
    """
    chain = guard(approval=approval, approver=approver, audit=audit, interceptors=interceptors)
    chosen = selection(include, exclude, read_only, select)
    tools: list[MCPTool] = []
    for connection in [connections] if isinstance(connections, Connection) else connections:
        catalogue = await connection.catalogue()
        if isinstance(approval, ApprovalPolicy):
            _check_rule_names(approval, catalogue)
        entries = list(catalogue) if chosen is None else chosen.apply(catalogue, connection.name)
        tools.extend(MCPTool(connection, e, agent=agent, interceptors=chain) for e in entries)
    _check_unique(tools)
    return tools


def _check_rule_names(policy: ApprovalPolicy, catalogue: Iterable[ToolEntry]) -> None:
    # Rules match MCP names only (so an alias can never loosen one); a rule written with an
    # alias would silently never apply, so say so while the developer is still looking.
    keys = [*policy.tools, *(r.tool for r in policy.rules)]
    mcp = {e.mcp_name: e for e in catalogue}
    aliases = {e.name: e.mcp_name for e in mcp.values() if e.name != e.mcp_name}
    for key in keys:
        if key not in mcp and key in aliases:
            raise ConfigError(f"approval rule names {key!r}, the agent-facing alias of {aliases[key]!r}; "
                              f"rules match MCP names: write {aliases[key]!r}")


def workbench_for(connections: Connection | Sequence[Connection], agent: str, *, include: Patterns = None,
                  exclude: Patterns = None, read_only: bool | None = None, select: ToolFilter | None = None,
                  approval: ApprovalPolicy | Literal[False] | None = None, approver: Approver | None = None,
                  audit: AuditTarget = None, interceptors: Sequence[Interceptor] = ()) -> MCPWorkbench:
    """An ``MCPWorkbench`` over ``connections`` for ``agent``: same arguments as ``tools_for``.

    It follows tools/list_changed, answering list requests from the cached catalogue.

    Raises:
        ConfigError: malformed patterns.
    """
    return MCPWorkbench(connections, agent=agent, select=selection(include, exclude, read_only, select),
                        interceptors=guard(approval=approval, approver=approver, audit=audit,
                                           interceptors=interceptors))
