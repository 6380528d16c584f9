"""The model behind the examples: a scripted OpenAI-compatible server offline, a real model when a key is set.

Offline, each agent gets AutoGen's real ``OpenAIChatCompletionClient`` talking HTTP to a scripted
model server on 127.0.0.1 (``fixtures.openai_compat``): the model's turns are canned, but the
client, the wire format, the tool schemas sent and the tool calls made are exactly those of a real
run, with no network and no key. With ``OPENAI_API_KEY`` (or ``OPENAI_BASE_URL``) set, the same
client talks to that endpoint instead (``OPENAI_MODEL``, default ``gpt-4o-mini``) and the script is
ignored.

The README's first snippet uses it from the repo root (``from examples._models import calls,
model_client``), so what a newcomer pastes runs offline as it stands.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import Any

if __package__:  # imported from the repo root (the README's snippet: ``from examples._models import ...``)
    from ._mailroom import live
else:  # an example run as a script, with examples/ on sys.path
    from _mailroom import live  # also puts the repo root on sys.path, for fixtures
from autogen_core.models import ChatCompletionClient

from fixtures.openai_compat import ScriptedModel, Text, ToolCalls, text, tool_calls

# A dated name: AutoGen resolves "gpt-4o-mini" to one and warns when an answer names another.
OFFLINE_MODEL = "gpt-4o-mini-2024-07-18"


def calls(*pairs: tuple[str, dict[str, Any]]) -> ToolCalls:
    """A scripted model turn that asks for these tool calls (run in parallel by AssistantAgent)."""
    return tool_calls(*pairs)


def _client(**options: Any) -> ChatCompletionClient:
    try:
        from autogen_ext.models.openai import OpenAIChatCompletionClient
    except ImportError as e:  # the openai extra is optional
        raise SystemExit(f"the examples need AutoGen's OpenAI client ({e}); pip install -e '.[openai]'") from None
    client: ChatCompletionClient = OpenAIChatCompletionClient(**options)
    return client


def model_client(*offline_turns: ToolCalls | Text | str | Callable[[dict[str, Any]], str]) -> ChatCompletionClient:
    """A real model when one is configured (see ``live``), else one playing ``offline_turns`` (a
    callable turn is given the request and answers what fits it, such as a reviewer's denial)."""
    if not live():
        model = ScriptedModel([text(t) if isinstance(t, str) else t for t in offline_turns], daemon=True).start()
        atexit.register(model.stop)
        return _client(model=OFFLINE_MODEL, base_url=model.base_url, api_key="offline")
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    # Local OpenAI-compatible servers often need no key, but the client insists on one.
    options: dict[str, Any] = {"model": os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
                               "api_key": os.environ.get("OPENAI_API_KEY") or "not-needed"}
    if base_url:
        options["base_url"] = base_url
        # An OpenAI-compatible server's model names are unknown to AutoGen: say what we need.
        options["model_info"] = {"function_calling": True, "vision": False, "json_output": True,
                                 "family": "unknown", "structured_output": False}
    return _client(**options)


def unless_denied(done: str, denied: str) -> Callable[[dict[str, Any]], str]:
    """A scripted last word true to what happened: ``denied`` when a reviewer refused a call of
    this turn (the model read ``denied by reviewer: ...``), else ``done``."""
    from fixtures.openai_compat import tool_results

    def says(body: dict[str, Any]) -> str:
        return denied if any("denied by reviewer" in r for r in tool_results(body).values()) else done

    return says
