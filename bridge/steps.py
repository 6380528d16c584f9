"""``Step``: the model's step a tool call belongs to, a typed value that travels with the call.

A framework names the model's request for a tool (AutoGen's ``FunctionCall.id``, AG2's tool call
id, Agent Framework's call id, MetaGPT's role, action and message id), and often the run or turn
it happened in. The adapter hands that to ``Toolset.call(..., step=...)``; it rides on the call
(``ToolCall.step``) into every audit record and span, so a record leads back to the reasoning
step that made it. It lives below the call path (``bridge.connection``) for that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Step"]


@dataclass(frozen=True)
class Step:
    """Where a call came from in the model's work, as far as the framework says.

    Attributes:
        framework: ``autogen``, ``ag2``, ``agent_framework``, ``metagpt`` (or another caller's name).
        tool_call_id: the model's id for this tool call (``None`` when the framework has none).
        run_id: the run, turn or conversation the call belongs to, where the framework exposes one
            while the call runs: AutoGen, the key of the runtime agent handling the message
            (``MessageHandlerContext``: a team's id in AgentChat, the topic source under a
            ``TypeSubscription``; none for an agent run outside a runtime); Agent Framework, the
            ``AgentSession.session_id`` of the run (none for a run without a session). AG2 0.14
            names no chat while it runs (``ChatResult.chat_id`` and ``RunResponse.uuid`` exist
            only on what a chat returns) and MetaGPT no run or round (``Team.run`` counts rounds
            in a local variable), so for them it stays ``None`` unless a caller passes one;
            MetaGPT's ``role``, ``action`` and ``message_id`` place the call instead.
        role: the acting role or agent class (MetaGPT's role).
        action: the framework's action (MetaGPT's action class).
        message_id: the message that asked for the call (MetaGPT's message id).
        program: for a call made by generated code, the hash of that program.
        position: for a call made by generated code, which call of the program it is (0-based).
    """

    framework: str
    tool_call_id: str | None = None
    run_id: str | None = None
    role: str | None = None
    action: str | None = None
    message_id: str | None = None
    program: str | None = None
    position: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The fields that are set, as a JSON-able dict (what an audit record keeps)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        """Inverse of ``to_json``; unknown keys (from newer writers) are ignored."""
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("framework", "unknown")
        return cls(**values)
