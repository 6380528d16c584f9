"""The Microsoft Agent Framework adapter (``agent-framework-core`` 1.23): MCP tools as ``FunctionTool``s.

The only part of the bridge that imports ``agent_framework``. A thin layer over
``bridge.toolset.Toolset``: each allowed tool becomes an ``MCPFunctionTool`` whose JSON schema is
the server's inputSchema, unchanged, under its OpenAI-safe name; every call goes through the
core's one call path (validation, approval policy, audit naming the agent, reconnection, timeouts)
over the server's one persistent session.

```python
from agent_framework import Agent, Message
from bridge import connect
from bridge.agent_framework import answer, tools_for

async with connect(cmd) as mail:
    tools = await tools_for(mail, agent="drafter", include=["get_thread", "reply_email"], audit="audit.jsonl")
    agent = Agent(client=client, name="drafter", instructions="...", tools=tools)
    session = agent.create_session()
    response = await agent.run("Reply to em_1.", session=session)
    while response.user_input_requests:           # reply_email is gated: the framework asks
        replies = [await answer(r, True, tools=tools, reviewer="alice") for r in response.user_input_requests]
        response = await agent.run(Message("user", replies), session=session)
```

Approval uses the framework's own human-in-the-loop by default: a tool the policy gates is marked
``approval_mode="always_require"``, so the framework returns an approval request to the caller, and
``FrameworkApprovals`` (the default approver here) reports the caller's answer to the bridge's gate,
which records it without asking again. Pass any bridge approver (``approver=ConsoleApprover()``,
``CallbackApprover(...)``, ``AutoApprove()``) to have the bridge ask instead; the tools are then
``never_require`` and the gate asks on each call.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..approval import ApprovalGate, ApprovalPolicy
from ..catalogue import ToolEntry
from ..connection import ToolCall
from ..errors import ConfigError
from ..guards import Guards
from ..toolset import CALL_TOOL, FIND_TOOLS, Toolset
from .approval import FrameworkApprovals, answer
from .tool import ApprovalMode, MCPFunctionTool, render

__all__ = ["FrameworkApprovals", "MCPFunctionTool", "ToolSource", "answer", "approval_mode_for", "render",
           "tools_for"]


class ToolSource(Protocol):
    """Anything that builds a ``Toolset`` for an agent: a ``Server`` or a ``ServerGroup``."""

    def toolset(self, agent: str | None = None, guards: Guards | None = None, *, growing: bool = False,
                **guard_options: Any) -> Toolset: ...


async def tools_for(source: Toolset | ToolSource, agent: str | None = None, guards: Guards | None = None, *,
                    timeout: float | None = None, **guard_options: Any) -> list[MCPFunctionTool]:
    """The tools ``agent`` may use, as Agent Framework function tools, for ``Agent(tools=...)``.

    Unless another approver is given, the framework asks the caller for every call the approval
    policy gates (default: every tool not annotated read-only); see the module docstring.

    Args:
        source: a ``Server``, a ``ServerGroup``, or a prepared non-growing ``Toolset``.
        agent: named in approvals and audit records.
        guards, guard_options: see ``Guards`` (include, exclude, read_only, select, approval, approver,
            audit, interceptors, catalogue, always, ...).
        timeout: seconds for each call (default: the connection's own).

    Raises:
        ConfigError: malformed guard options, a growing toolset, guards given with a prepared
            ``Toolset``, or two servers offering the same name.
    """
    if isinstance(source, Toolset):
        if guards is not None or guard_options or (agent is not None and agent != source.agent):
            raise ConfigError("a Toolset already carries its agent and guards; pass them to "
                              "server.toolset(...) instead")
        if source.growing:
            raise ConfigError("Agent Framework fixes an agent's tools when it is built: use a Toolset with "
                              "growing=False")
        toolset = source
    else:
        chosen = Guards.of(guards, **guard_options)
        if chosen.approval is not False and chosen.approver is None:
            chosen = Guards.of(chosen, approver=FrameworkApprovals())
        toolset = source.toolset(agent, chosen, growing=False)
    gate = next((i for i in toolset.guards.chain if isinstance(i, ApprovalGate)), None)
    approvals = gate.approver if gate is not None and isinstance(gate.approver, FrameworkApprovals) else None
    tools = []
    for entry in await toolset.tools():
        mode: ApprovalMode = "never_require"
        if gate is not None and approvals is not None:
            mode = await approval_mode_for(toolset, entry, gate.policy)
        tools.append(MCPFunctionTool(toolset, entry, approval_mode=mode, approvals=approvals, timeout=timeout))
    return tools


async def approval_mode_for(toolset: Toolset, entry: ToolEntry, policy: ApprovalPolicy) -> ApprovalMode:
    """Whether the framework must ask before ``entry`` runs, decided per tool up front.

    The policy is evaluated once per tool with the tool's server, MCP name, annotations and the
    agent (no arguments yet). A callable mode decides per call, so it counts as asking. The
    deferred catalogue's ``find_tools`` only searches; its ``call_tool`` may reach any allowed tool,
    so it asks. The gate re-checks every call with its real arguments; a call it finds gated that
    the framework did not ask about is denied, never sent.
    """
    if entry.name == FIND_TOOLS and toolset.deferred:
        return "never_require"
    route = toolset.known_route(entry.name)
    if route is None or (entry.name == CALL_TOOL and toolset.deferred):
        return "always_require"
    call = ToolCall(server=route.connection.name, tool=entry.name, mcp_name=entry.mcp_name, arguments={},
                    annotations=entry.annotations, agent=toolset.agent)
    if callable(policy.mode_for(call)):
        return "always_require"
    return "always_require" if await policy.requires_approval(call) else "never_require"
