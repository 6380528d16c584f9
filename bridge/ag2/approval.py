"""Approval by the human behind an AG2 ``UserProxyAgent``: the same prompt, through the agent's own input.

``HumanInputApprover(user_proxy)`` is an ``Approver`` for ``Guards(approver=...)``: the call the
policy flagged is shown (as ``ConsoleApprover`` shows it: secrets masked, whatever the server or the
model wrote shown with its controls escaped and behind a gutter) and the answer is read
with the agent's ``a_get_human_input`` (or its ``get_human_input`` on a worker thread when only
that one is overridden), so a custom input stream or UI sees approvals like any other question.
An agent with ``human_input_mode="NEVER"`` has nobody to ask: the call is denied (or, with
``unattended="approve"``, approved) without blocking.
"""

from __future__ import annotations

from typing import Literal

import anyio
from autogen import ConversableAgent

from ..approval import PROMPT, ConsoleApprover, Decision
from ..connection import ToolCall

__all__ = ["HumanInputApprover"]


class HumanInputApprover:
    """Asks the human behind ``agent`` (usually the ``UserProxyAgent``) before a flagged call.

    Prompts are asked one at a time, so parallel tool calls never interleave their questions.

    Args:
        agent: whose human input answers.
        unattended: the decision when ``agent.human_input_mode == "NEVER"``.
        reviewer: recorded as the reviewer (default ``ag2:<agent name>``).
    """

    def __init__(self, agent: ConversableAgent, *, unattended: Literal["deny", "approve"] = "deny",
                 reviewer: str | None = None) -> None:
        self.agent = agent
        self.unattended = unattended
        self.reviewer = reviewer or f"ag2:{agent.name}"
        self._describe = ConsoleApprover(reviewer=self.reviewer).describe
        self._lock: anyio.Lock | None = None

    async def review(self, call: ToolCall) -> Decision:
        """Ask the agent's human; ``y``/``yes`` approves, an empty line or ``n`` denies, other text is the reason."""
        if self.agent.human_input_mode == "NEVER":
            if self.unattended == "approve":
                return Decision(True, self.reviewer, "approved unattended (human_input_mode NEVER)")
            return Decision(False, self.reviewer, "no human to ask (human_input_mode NEVER)")
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            try:
                answer = await self._ask(self._describe(call) + PROMPT)
            except (EOFError, OSError):
                return Decision(False, self.reviewer, "no human to ask (input closed)")
        text = (answer or "").strip()
        if text.lower() in ("y", "yes"):
            return Decision(True, self.reviewer, "approved by the human")
        if text.lower() in ("", "n", "no"):
            return Decision(False, self.reviewer, "denied by the human")
        return Decision(False, self.reviewer, text)

    async def _ask(self, prompt: str) -> str:
        cls = type(self.agent)
        sync_only = (cls.get_human_input is not ConversableAgent.get_human_input
                     and cls.a_get_human_input is ConversableAgent.a_get_human_input)
        if sync_only:
            return str(await anyio.to_thread.run_sync(self.agent.get_human_input, prompt, abandon_on_cancel=True))
        return str(await self.agent.a_get_human_input(prompt))

    def __repr__(self) -> str:
        return f"HumanInputApprover({self.agent.name!r}, unattended={self.unattended!r})"
