"""A server prompt as AG2 messages: ``prompt_messages`` for a conversation, ``system_message``
for an agent's instructions (its ``content`` is what ``ConversableAgent(system_message=...)`` takes).
The prompt was fetched and bounded by the core (``server.get_prompt``,
``bridge.published.RenderedPrompt``); only the message shape is AG2's."""

from __future__ import annotations

from ..published import RenderedPrompt

__all__ = ["prompt_messages", "system_message"]


def prompt_messages(prompt: RenderedPrompt) -> list[dict[str, str]]:
    """Each message of ``prompt`` as AG2's ``{"role", "content"}`` dict (no ``name``: OpenAI refuses
    one holding a server label's dots)."""
    return [{"role": line.role, "content": line.text} for line in prompt.lines]


def system_message(prompt: RenderedPrompt) -> dict[str, str]:
    """The whole prompt as one system message (``RenderedPrompt.system_text``)."""
    return {"role": "system", "content": prompt.system_text()}
