"""Approval through Agent Framework's own human-in-the-loop, recorded by the bridge's gate.

A tool the approval policy gates is handed to Agent Framework with ``approval_mode="always_require"``:
the framework stops the run and returns a ``function_approval_request`` to the caller
(``response.user_input_requests``), and runs the tool only once the caller answers with an approved
``function_approval_response``. The bridge's ``ApprovalGate`` still sits on the call path (the policy
is re-checked with the real arguments, the audit trail records the decision), but it must not ask a
second time: ``FrameworkApprovals`` is the approver that reports what the caller already decided.

It approves a call only when the tool was invoked by the framework for a model's tool call (so
after the framework's approval request was answered): the adapter binds that decision to the very
call it is running (``bind``). Anything else, such as a tool object invoked by hand outside a run,
is denied, so the gate still fails closed.

``answer(request, approved, tools=...)`` is the caller's side: it turns a request into the
framework's response and tells the bridge who decided and why, so the audit trail names the
reviewer; a denial is recorded at once (the framework never runs a denied tool, so the bridge
would otherwise not hear of it), and never reaches the server.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from agent_framework import Content

from ..approval import Decision
from ..connection import ToolCall
from ..errors import ConfigError

if TYPE_CHECKING:
    from .tool import MCPFunctionTool

__all__ = ["FrameworkApprovals", "answer"]

REVIEWER = "agent_framework:caller"

# The decision for the call the adapter is running now, with that call's id: a contextvar, so
# concurrent tool calls of one run never see each other's decisions.
_BOUND: ContextVar[tuple[str, Decision] | None] = ContextVar("bridge_agent_framework_decision", default=None)


@contextmanager
def bind(call_id: str, decision: Decision) -> Iterator[None]:
    """Make ``decision`` the answer ``FrameworkApprovals`` gives for the call ``call_id`` run inside."""
    token = _BOUND.set((call_id, decision))
    try:
        yield
    finally:
        _BOUND.reset(token)


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
        """The decision bound to this call by the adapter, else a denial."""
        bound = _BOUND.get()
        if bound is not None and call.call_id is not None and bound[0] == call.call_id:
            return bound[1]
        return Decision(False, self.reviewer, "no Agent Framework approval was given for this call "
                                              "(run it from an agent, or use another approver)")

    def approved(self, reason: str = "approved through Agent Framework's approval request",
                 reviewer: str | None = None) -> Decision:
        """The decision recorded for an approved request."""
        return Decision(True, reviewer or self.reviewer, reason)

    def __repr__(self) -> str:
        return f"FrameworkApprovals(reviewer={self.reviewer!r})"


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
    from .tool import MCPFunctionTool

    call = request.function_call if request.type == "function_approval_request" else None
    if call is None or call.name is None:
        raise ConfigError(f"expected a function_approval_request, got {request.type!r} content")
    tool: MCPFunctionTool | None = next((t for t in tools if isinstance(t, MCPFunctionTool) and t.name == call.name),
                                        None)
    if tool is None:
        raise ConfigError(f"the approval request names {call.name!r}, which is not among the given tools")
    approvals = tool.approvals
    who = reviewer or (approvals.reviewer if approvals is not None else REVIEWER)
    call_id = call.call_id or ""
    if approved:
        tool.remember(call_id, Decision(True, who, reason or "approved through Agent Framework's approval request"))
    else:
        await tool.record_denial(call_id, dict(call.parse_arguments() or {}),
                                 Decision(False, who, reason or "denied through Agent Framework's approval request"))
    return request.to_function_approval_response(approved)

