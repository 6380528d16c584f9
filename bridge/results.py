"""A tool call's result: the full-fidelity object, and the text a model is shown.

``CallResult`` keeps everything the server sent (content blocks, structured content,
``is_error``, ``_meta``). ``render`` turns it into model-facing text: text blocks in order,
structured content as compact JSON, media as a short placeholder naming type and size,
resource links and embedded resources as their URI (and text). Never a Python repr.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

from .options import DEFAULT_MAX_CHARS
from .secrets import dataclass_repr, head

__all__ = ["DEFAULT_MAX_CHARS", "CallResult", "block_text", "render", "repeats_structured"]


def _size(data: str) -> str:
    try:
        n = len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        n = len(data)
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def block_text(block: Any) -> str:
    """One content block as a model reads it (media and binary resources as a placeholder)."""
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent):
        return f"[image: {block.mime_type}, {_size(block.data)}]"
    if isinstance(block, types.AudioContent):
        return f"[audio: {block.mime_type}, {_size(block.data)}]"
    if isinstance(block, types.ResourceLink):
        label = block.title or block.name
        mime = f", {block.mime_type}" if block.mime_type else ""
        return f"[resource link: {label} <{block.uri}>{mime}]"
    if isinstance(block, types.EmbeddedResource):
        res = block.resource
        if isinstance(res, types.TextResourceContents):
            return f"[resource <{res.uri}>]\n{res.text}"
        mime = res.mime_type or "application/octet-stream"
        return f"[resource <{res.uri}>: {mime}, {_size(res.blob)}]"
    kind = getattr(block, "type", type(block).__name__)
    return f"[{kind} content]"


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def repeats_structured(block: Any, structured: Any) -> bool:
    """Whether ``block`` is a text block holding ``structured`` as JSON: servers mirror structured
    content in a text block (the spec asks them to), and every view shows it once."""
    return (structured is not None and isinstance(block, types.TextContent)
            and _json_or_none(block.text) == structured)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def render(content: Sequence[Any], structured: Any = None, *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The text a model sees for a result; truncated past ``max_chars`` with a note saying so."""
    text = _joined(content, structured)
    if len(text) > max_chars:
        total = len(text)
        # Never through a known secret: errors and the CLI mask this text later, and half a secret
        # is no longer recognisable.
        text = (head(text, max_chars) + f"\n[truncated: showing {max_chars:,} of {total:,} characters;"
                " the full result is kept on the CallResult]")
    return text


def _joined(content: Sequence[Any], structured: Any) -> str:
    parts: list[str] = []
    wrapped = False
    for block in content:
        text = block_text(block)
        # Servers mirror structured content in a text block (the spec asks them to); show it once.
        if structured is not None and isinstance(block, types.TextContent):
            parsed = _json_or_none(text)
            if parsed == structured:
                continue  # the compact JSON below says the same, shorter
            if isinstance(structured, dict) and len(structured) == 1:
                (inner,) = structured.values()
                # {"content": <this very text>} (filesystem, memory): the text alone is clearer.
                wrapped = wrapped or inner == text or (parsed is not None and parsed == inner)
        parts.append(text)
    if structured is not None and not wrapped:
        parts.append(_compact(structured))
    return "\n".join(parts)


@dataclass(frozen=True)
class CallResult:
    """Everything a ``tools/call`` returned, plus where and how long.

    Attributes:
        content: the content blocks, as mcp types, in server order.
        structured: ``structuredContent`` (validated against ``outputSchema`` when declared).
        is_error: the server flagged the result as a tool error.
        text: what a model is shown (see ``render``).
    """

    server: str
    tool: str
    content: tuple[Any, ...]
    structured: Any = None
    is_error: bool = False
    meta: dict[str, Any] | None = None
    duration: float = 0.0
    text: str = field(default="", repr=False)

    def __repr__(self) -> str:
        # A server's result often quotes the key it was given.
        return dataclass_repr(self)

    @classmethod
    def from_mcp(cls, result: types.CallToolResult, *, server: str, tool: str, duration: float = 0.0,
                 max_chars: int = DEFAULT_MAX_CHARS) -> CallResult:
        content = tuple(result.content)
        structured = result.structured_content
        return cls(server=server, tool=tool, content=content, structured=structured, is_error=bool(result.is_error),
                   meta=result.meta, duration=duration, text=render(content, structured, max_chars=max_chars))

    @classmethod
    def error(cls, text: str, *, server: str, tool: str) -> CallResult:
        """A locally made error result (e.g. a denied call): never sent to the server."""
        return cls(server=server, tool=tool, content=(types.TextContent(type="text", text=text),), is_error=True,
                   text=text)

    def to_wire(self) -> dict[str, Any]:
        """The result as MCP JSON (camelCase), e.g. for ``--json`` output."""
        out: dict[str, Any] = {
            "content": [b.model_dump(by_alias=True, mode="json", exclude_none=True) for b in self.content],
            "isError": self.is_error,
        }
        if self.structured is not None:
            out["structuredContent"] = self.structured
        if self.meta:
            out["_meta"] = self.meta
        return out

    def __str__(self) -> str:
        return self.text
