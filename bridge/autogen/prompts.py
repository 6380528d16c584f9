"""A server prompt as AutoGen messages: ``prompt_messages`` for a conversation, ``system_message``
for an agent's instructions. The prompt was fetched and bounded by the core
(``server.get_prompt``, ``bridge.published.RenderedPrompt``); only the message types are AutoGen's."""

from __future__ import annotations

import re

from autogen_core.models import AssistantMessage, LLMMessage, SystemMessage, UserMessage

from ..published import RenderedPrompt

__all__ = ["prompt_messages", "system_message"]


def prompt_messages(prompt: RenderedPrompt) -> list[LLMMessage]:
    """Each message of ``prompt`` as a ``UserMessage`` or ``AssistantMessage`` whose ``source``
    names the server (``server-<name>``, any other character as ``_``): AutoGen's OpenAI client
    sends the source as the message's ``name`` and refuses one outside ``[A-Za-z0-9_-]{1,64}``."""
    source = re.sub(r"[^A-Za-z0-9_-]", "_", f"server-{prompt.server}")[:64]
    return [AssistantMessage(content=line.text, source=source) if line.role == "assistant"
            else UserMessage(content=line.text, source=source) for line in prompt.lines]


def system_message(prompt: RenderedPrompt) -> SystemMessage:
    """The whole prompt as one ``SystemMessage`` (``RenderedPrompt.system_text``)."""
    return SystemMessage(content=prompt.system_text())
