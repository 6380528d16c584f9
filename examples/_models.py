"""The model behind the examples: scripted offline by default, a real one when a key is set.

Offline, a ``ReplayChatCompletionClient`` plays back scripted turns; the tool calls in them are
real calls to the MCP server, so the run shows exactly what an agent would do, with no network.
With ``OPENAI_API_KEY`` (or ``OPENAI_BASE_URL``) set, an ``OpenAIChatCompletionClient`` is used instead
(``OPENAI_MODEL``, default ``gpt-4o-mini``; ``OPENAI_BASE_URL`` for any OpenAI-compatible
endpoint) and the script is ignored.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from typing import Any

from autogen_core import FunctionCall
from autogen_core.models import ChatCompletionClient, CreateResult, ModelInfo, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient

OFFLINE_MODEL_INFO: ModelInfo = {"function_calling": True, "vision": False, "json_output": False,
                                 "family": "unknown", "structured_output": False}
_ids = itertools.count(1)


def live() -> bool:
    """Whether a real model is configured (a key, or an OpenAI-compatible endpoint)."""
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def calls(*pairs: tuple[str, dict[str, Any]]) -> CreateResult:
    """A scripted model turn that asks for these tool calls."""
    return CreateResult(finish_reason="function_calls", usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                        cached=False,
                        content=[FunctionCall(id=f"call_{next(_ids)}", name=name, arguments=json.dumps(args))
                                 for name, args in pairs])


def model_client(*offline_turns: CreateResult | str) -> ChatCompletionClient:
    """A real model when one is configured (see ``live``), else the scripted ``offline_turns``."""
    if not live():
        # The replay client logs notes (tool_choice ignored, token counts approximate) that
        # only matter for real models; keep the example's output to what the agents do.
        logging.getLogger("autogen_core.events").setLevel(logging.ERROR)
        return ReplayChatCompletionClient(list(offline_turns), model_info=OFFLINE_MODEL_INFO)
    try:
        from autogen_ext.models.openai import OpenAIChatCompletionClient
    except ImportError as e:  # the openai extra is optional
        raise SystemExit(f"a real model is configured (OPENAI_API_KEY or OPENAI_BASE_URL) but the OpenAI client "
                         f"is missing ({e}); "
                         "pip install 'autogen-ext[openai]' or unset those variables to run offline") from None
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    # Local OpenAI-compatible servers often need no key, but the client insists on one.
    options: dict[str, Any] = {"model": os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
                               "api_key": os.environ.get("OPENAI_API_KEY") or "not-needed"}
    if base_url:
        options["base_url"] = base_url
        # An OpenAI-compatible server's model names are unknown to AutoGen: say what we need.
        options["model_info"] = {"function_calling": True, "vision": False, "json_output": True,
                                 "family": "unknown", "structured_output": False}
    client: ChatCompletionClient = OpenAIChatCompletionClient(**options)
    return client
