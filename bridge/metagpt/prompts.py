"""A server prompt as MetaGPT messages: ``prompt_messages`` for a role's memory, ``system_message``
for its instructions. The prompt was fetched and bounded by the core (``server.get_prompt``,
``bridge.published.RenderedPrompt``); only the message type is MetaGPT's."""

from __future__ import annotations

from metagpt.schema import Message  # type: ignore[import-not-found, unused-ignore]

from ..published import RenderedPrompt

__all__ = ["prompt_messages", "system_message"]


def prompt_messages(prompt: RenderedPrompt) -> list[Message]:
    """Each message of ``prompt`` as a ``Message`` sent from the server (``sent_from``)."""
    return [Message(content=line.text, role=line.role, sent_from=f"server:{prompt.server}") for line in prompt.lines]


def system_message(prompt: RenderedPrompt) -> Message:
    """The whole prompt as one system ``Message`` (``RenderedPrompt.system_text``)."""
    return Message(content=prompt.system_text(), role="system", sent_from=f"server:{prompt.server}")
