"""Scripted model turns for offline AutoGen agents: real tool calls, no model, no network."""

from __future__ import annotations

import itertools
import json
from typing import Any

from autogen_core import FunctionCall
from autogen_core.models import CreateResult, ModelInfo, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient

MODEL_INFO: ModelInfo = {"function_calling": True, "vision": False, "json_output": False, "family": "unknown",
                         "structured_output": False}

_ids = itertools.count(1)


def calls(*pairs: tuple[str, dict[str, Any]]) -> CreateResult:
    """One model turn asking for these tool calls (run in parallel by AssistantAgent)."""
    return CreateResult(finish_reason="function_calls", usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                        cached=False,
                        content=[FunctionCall(id=f"call_{next(_ids)}", name=name, arguments=json.dumps(args))
                                 for name, args in pairs])


def script(*turns: CreateResult | str) -> ReplayChatCompletionClient:
    """A model client that answers with ``turns`` in order."""
    return ReplayChatCompletionClient(list(turns), model_info=MODEL_INFO)
