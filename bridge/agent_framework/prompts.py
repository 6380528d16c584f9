"""A server prompt as Agent Framework messages: ``prompt_messages`` for a conversation,
``system_message`` for an agent's instructions. The prompt was fetched and bounded by the core
(``server.get_prompt``, ``bridge.published.RenderedPrompt``); only the message type is Agent Framework's."""

from __future__ import annotations

from agent_framework import Message

from ..published import RenderedPrompt

__all__ = ["prompt_messages", "system_message"]


def prompt_messages(prompt: RenderedPrompt) -> list[Message]:
    """Each message of ``prompt`` as a ``Message`` whose ``author_name`` is the server."""
    return [Message(line.role, [line.text], author_name=prompt.server) for line in prompt.lines]


def system_message(prompt: RenderedPrompt) -> Message:
    """The whole prompt as one system ``Message`` (``RenderedPrompt.system_text``)."""
    return Message("system", [prompt.system_text()], author_name=prompt.server)
