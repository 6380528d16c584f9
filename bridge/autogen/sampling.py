"""Answer a server's ``sampling/createMessage`` with an AutoGen model client."""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from autogen_core.models import AssistantMessage, ChatCompletionClient, LLMMessage, SystemMessage, UserMessage
from mcp.client.session import ClientRequestContext, SamplingFnT

__all__ = ["sampling_from_model_client"]

logger = logging.getLogger("bridge.sampling")


def _text_of(content: Any) -> str:
    blocks = content if isinstance(content, list) else [content]
    parts = []
    for block in blocks:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        else:
            # Models behind a ChatCompletionClient take text; name what we could not pass on.
            parts.append(f"[{getattr(block, 'type', 'non-text')} content omitted]")
    return "\n".join(parts)


def sampling_from_model_client(model_client: ChatCompletionClient, *, model_name: str | None = None) -> SamplingFnT:
    """A sampling callback that asks ``model_client`` (any AutoGen ``ChatCompletionClient``).

    The server's system prompt and messages become AutoGen messages; the model's text answer
    goes back as the assistant's message. The request's ``maxTokens`` is passed on as
    ``max_tokens`` (the name AutoGen's OpenAI, Azure, Anthropic and Ollama clients take), so the
    cap ``ServerRequestGuard`` puts on it binds the model. A failure is answered with a JSON-RPC
    error, so the server's tool reports it instead of hanging.
    """
    name = model_name or str(getattr(model_client, "model_info", {}).get("family", "autogen-model"))

    async def callback(context: ClientRequestContext, params: types.CreateMessageRequestParams
                       ) -> types.CreateMessageResult | types.ErrorData:
        messages: list[LLMMessage] = []
        if params.system_prompt:
            messages.append(SystemMessage(content=params.system_prompt))
        for message in params.messages:
            text = _text_of(message.content)
            if message.role == "assistant":
                messages.append(AssistantMessage(content=text, source="assistant"))
            else:
                messages.append(UserMessage(content=text, source="user"))
        try:
            created = await model_client.create(messages, extra_create_args={"max_tokens": params.max_tokens})
        except Exception as e:  # the model failing is the server's problem to report, not a crash here
            logger.warning("sampling request failed: %s", e)
            return types.ErrorData(code=types.INTERNAL_ERROR, message=f"sampling failed: {e}")
        text = created.content if isinstance(created.content, str) else str(created.content)
        stop = {"stop": "endTurn", "length": "maxTokens", "function_calls": "toolUse"}.get(
            created.finish_reason, created.finish_reason)
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text=text),
                                         model=name, stop_reason=stop)

    return callback
