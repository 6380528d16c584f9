"""The Microsoft Agent Framework adapter (``agent-framework-core`` 1.23): MCP tools as ``FunctionTool``s.

The only part of the bridge that imports ``agent_framework``. A thin layer over the adapter
contract (``bridge.adapters``): ``tools_for`` is the entry point every adapter has; each allowed
tool becomes an ``MCPFunctionTool`` whose function JSON is the contract's ``ModelTool`` (the
server's inputSchema, unchanged unless the guards name a schema profile, under its OpenAI-safe
name); every call goes through the
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

from collections.abc import Mapping
from typing import Any

from ..adapters import Framework, Source, toolset_for
from ..approval import ApprovalPolicy
from ..catalogue import ToolEntry
from ..connection import ToolCall
from ..guards import Guards
from ..toolset import CALL_TOOL, FIND_TOOLS, Toolset
from .approval import FrameworkApprovals, answer, answer_from
from .tool import ApprovalMode, MCPFunctionTool

__all__ = ["AGENT_FRAMEWORK", "FrameworkApprovals", "MCPFunctionTool", "answer", "answer_from", "approval_mode_for",
           "tools_for"]

AGENT_FRAMEWORK = Framework("Agent Framework")
"""Agent Framework fixes an agent's tools when the agent is built."""


async def tools_for(source: Source, agent: str | None = None, guards: Guards | None = None, *,
                    timeout: float | None = None, **guard_options: Any) -> list[MCPFunctionTool]:
    """The tools ``agent`` may use, as Agent Framework function tools, for ``Agent(tools=...)``.

    Unless another approver is given, the framework asks the caller for every call the approval
    policy gates (default: every tool not annotated read-only); see the module docstring.

    Args:
        source, agent, guards, guard_options: the adapter contract's (``bridge.adapters.toolset_for``).
        timeout: seconds for each call (default: the connection's own).

    Raises:
        ConfigError: see ``bridge.adapters.toolset_for``; two servers offer the same name.
    """
    if not isinstance(source, Toolset) and _framework_asks(guards, guard_options):
        guard_options = {**guard_options, "approver": FrameworkApprovals()}
    toolset = toolset_for(source, AGENT_FRAMEWORK, agent, guards, **guard_options)
    gate = toolset.guards.gate
    approvals = gate.approver if gate is not None and isinstance(gate.approver, FrameworkApprovals) else None
    tools = []
    for entry in await toolset.tools():
        mode: ApprovalMode = "never_require"
        if gate is not None and approvals is not None:
            mode = await approval_mode_for(toolset, entry, gate.policy)
        tools.append(MCPFunctionTool(toolset, entry, approval_mode=mode, approvals=approvals, timeout=timeout))
    return tools


def _framework_asks(guards: Guards | None, options: Mapping[str, Any]) -> bool:
    # Decided before the one Guards is built: whether a gate is wanted that no approver answers.
    approval = options.get("approval")
    approver = options.get("approver")
    if guards is not None:
        approval = guards.approval if approval is None else approval
        approver = guards.approver if approver is None else approver
    return approval is not False and approver is None


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
