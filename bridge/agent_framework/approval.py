"""Approval through Agent Framework's own human-in-the-loop, recorded by the bridge's gate.

A tool the approval policy gates is handed to Agent Framework with ``approval_mode="always_require"``:
the framework stops the run and returns a ``function_approval_request`` to the caller
(``response.user_input_requests``), and runs the tool only once the caller answers with an approved
``function_approval_response``. The bridge's ``ApprovalGate`` still sits on the call path (the policy
is re-checked with the real arguments, the audit trail records the decision), but it must not ask a
second time: ``FrameworkApprovals`` is the approver that reports what the caller already decided.

It approves a call only when the tool was invoked by the framework for a model's tool call (so
after the framework's approval request was answered): the adapter hands that decision in with the
very call it is running (``Toolset.call(..., approval=...)``, carried as ``ToolCall.approval``).
Anything else, such as a tool object invoked by hand outside a run, is denied, so the gate still
fails closed.

``answer(request, approved, tools=...)`` is the caller's side: it turns a request into the
framework's response and tells the bridge who decided and why, so the audit trail names the
reviewer; a denial is recorded at once (the framework never runs a denied tool, so the bridge
would otherwise not hear of it), and never reaches the server. ``answer_from(approver, request,
tools=...)`` lets any bridge approver decide instead: a ``QueueApprover`` puts the request on the
durable queue and answers with the reviewer's decision (``mcp-bridge approvals approve ID``, the
web page), bound to the exact arguments the framework will run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent_framework import Content

from ..approval import Approver, Decision
from ..connection import ToolCall
from ..errors import ConfigError

if TYPE_CHECKING:
    from .tool import MCPFunctionTool

__all__ = ["FrameworkApprovals", "answer", "answer_from"]

REVIEWER = "agent_framework:caller"

class FrameworkApprovals:
    """The approver for tools whose approval Agent Framework asks for (``approval_mode="always_require"``).

    The default approver of ``bridge.agent_framework.tools_for``. Reports the caller's answer to the
    framework's approval request (``answer`` gives it a reviewer and a reason); denies a call the
    framework did not run after such a request.

    Args:
        reviewer: recorded as the reviewer when the caller answered without ``answer``.
    """

    def __init__(self, reviewer: str = REVIEWER) -> None:
        self.reviewer = reviewer

    async def review(self, call: ToolCall) -> Decision:
        """The caller's approval the call arrived with (``ToolCall.approval``), else a denial."""
        if call.approval is not None and call.approval.approved:
            return call.approval
        return Decision(False, self.reviewer, "no Agent Framework approval was given for this call "
                                              "(run it from an agent, or use another approver)")

    def approved(self, reason: str = "approved through Agent Framework's approval request",
                 reviewer: str | None = None) -> Decision:
        """The decision recorded for an approved request."""
        return Decision(True, reviewer or self.reviewer, reason)

    def __repr__(self) -> str:
        return f"FrameworkApprovals(reviewer={self.reviewer!r})"


def _asked_about(request: Content, tools: Sequence[Any]) -> tuple[MCPFunctionTool, Content]:
    """The tool an approval request names, among ``tools``, and the function call it asks about.

    Raises:
        ConfigError: ``request`` is not an approval request for one of ``tools``.
    """
    from .tool import MCPFunctionTool

    call = request.function_call if request.type == "function_approval_request" else None
    if call is None or call.name is None:
        raise ConfigError(f"expected a function_approval_request, got {request.type!r} content")
    tool = next((t for t in tools if isinstance(t, MCPFunctionTool) and t.name == call.name), None)
    if tool is None:
        raise ConfigError(f"the approval request names {call.name!r}, which is not among the given tools")
    return tool, call


async def answer(request: Content, approved: bool, *, tools: Sequence[Any], reason: str = "",
                 reviewer: str | None = None) -> Content:
    """Answer one of the framework's approval requests, telling the bridge who decided and why.

    ```python
    response = await agent.run("...", session=session)
    replies = [await answer(r, ask_human(r), tools=tools, reviewer="alice") for r in response.user_input_requests]
    response = await agent.run(Message("user", replies), session=session)
    ```

    Args:
        request: a ``function_approval_request`` from ``response.user_input_requests``.
        approved: the caller's answer.
        tools: the agent's tools (from ``tools_for``), to find the one asked about.
        reason: why, kept in the audit trail.
        reviewer: who decided (default: the approver's reviewer).

    Returns:
        The ``function_approval_response`` to send back to the agent.

    Raises:
        ConfigError: ``request`` is not an approval request for one of ``tools``.
    """
    tool, call = _asked_about(request, tools)
    approvals = tool.approvals
    who = reviewer or (approvals.reviewer if approvals is not None else REVIEWER)
    call_id = call.call_id or ""
    if approved:
        tool.remember(call_id, Decision(True, who, reason or "approved through Agent Framework's approval request"))
    else:
        await tool.record_denial(call_id, dict(call.parse_arguments() or {}),
                                 Decision(False, who, reason or "denied through Agent Framework's approval request"))
    return request.to_function_approval_response(approved)



async def answer_from(approver: Approver, request: Content, *, tools: Sequence[Any]) -> Content:
    """Answer one of the framework's approval requests with ``approver``'s decision.

    ```python
    queue = QueueApprover("approvals.db")
    replies = [await answer_from(queue, r, tools=tools) for r in response.user_input_requests]
    response = await agent.run(Message("user", replies), session=session)
    ```

    The approver is shown the call as the bridge will send it (validated arguments, the tool's
    hints, the agent); its reviewer and reason go to the audit trail through ``answer``.

    Raises:
        ConfigError: ``request`` is not an approval request for one of ``tools``.
        InvalidArguments: the model's arguments break the tool's inputSchema (nothing is asked).
    """
    tool, call = _asked_about(request, tools)
    route = await tool.toolset.route(tool.name)
    proposed = route.prepare(dict(call.parse_arguments() or {}), agent=tool.agent, call_id=call.call_id,
                             timeout=tool.timeout)
    decision = await approver.review(proposed)
    return await answer(request, decision.approved, tools=tools, reason=decision.reason, reviewer=decision.reviewer)
