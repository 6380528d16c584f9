"""Repairs of what mcp 2.x validates too strictly, applied to raw results before the SDK parses them.

mcp 2.x validates a whole result at once: one tool whose inputSchema lacks ``"type": "object"``
fails the entire ``tools/list`` page, one unknown content type fails the entire ``tools/call``
result. Each function here checks a result with the SDK's own validator first and changes it
only when the whole fails but its parts can be saved: offending tools are dropped (and
reported), offending content blocks become a text placeholder that keeps the original block in
its ``_meta``. Pure functions over JSON; the wire applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcp_types import methods as mcp_methods
from pydantic import ValidationError

__all__ = ["ORIGINAL_BLOCK_KEY", "SkippedTool", "ordinary_call_result", "repair_call_result", "repair_listing"]

# Where a placeholder block keeps the content block the SDK could not parse.
ORIGINAL_BLOCK_KEY = "bridge/original"
@dataclass(frozen=True)
class SkippedTool:
    """A tool left out of a listing because the SDK's models reject its definition."""

    name: str
    reason: str


def _valid(method: str, version: str, result: Mapping[str, Any]) -> str | None:
    """None when the SDK would accept ``result``; else a one-line reason."""
    try:
        mcp_methods.validate_server_result(method, version, result)
    except ValidationError as e:
        errors = e.errors()
        if not errors:
            return "invalid"
        where = ".".join(str(p) for p in errors[0]["loc"])
        return f"{where}: {errors[0]['msg']}" if where else errors[0]["msg"]
    except (KeyError, ValueError):
        return None  # a method/version pair the SDK does not check: nothing to repair
    return None


def repair_listing(result: dict[str, Any], version: str) -> list[SkippedTool]:
    """Drop the tools that make a ``tools/list`` result invalid; returns what was dropped.

    Mutates ``result`` only when it is invalid as a whole and valid without those tools;
    a result that is broken for another reason is left for the SDK to reject.
    """
    tools = result.get("tools")
    if not isinstance(tools, list) or _valid("tools/list", version, result) is None:
        return []
    if _valid("tools/list", version, {**result, "tools": []}) is not None:
        return []
    kept: list[Any] = []
    skipped: list[SkippedTool] = []
    for tool in tools:
        reason = _valid("tools/list", version, {**result, "tools": [tool]})
        if reason is None:
            kept.append(tool)
        else:
            name = tool.get("name") if isinstance(tool, Mapping) else None
            skipped.append(SkippedTool(str(name) if name is not None else "<unnamed>",
                                       reason.removeprefix("tools.0.")))
    result["tools"] = kept
    return skipped


# The fields each content type must carry, as strings: enough to tell an ordinary result
# from one worth the (pydantic) repair pass, which every call would otherwise pay.
_BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text",), "image": ("data", "mimeType"), "audio": ("data", "mimeType"),
    "resource_link": ("uri", "name"), "resource": (),
}


def ordinary_call_result(result: Mapping[str, Any]) -> bool:
    """True when every content block plainly has its type's fields, so no repair pass is needed.

    Written for speed (it runs on every ``tools/call`` answer): exact JSON types, one loop.
    """
    content = result.get("content")
    if not isinstance(content, list):
        return False
    for block in content:
        if not isinstance(block, dict):
            return False
        kind = block.get("type")
        if kind == "text":
            if not isinstance(block.get("text"), str):
                return False
            continue
        fields = _BLOCK_FIELDS.get(kind)  # type: ignore[arg-type]
        if fields is None:
            return False
        for name in fields:
            if not isinstance(block.get(name), str):
                return False
        if kind == "resource" and not isinstance(block.get("resource"), dict):
            return False
    return True


def repair_call_result(result: dict[str, Any], version: str) -> int:
    """Replace content blocks the SDK cannot parse by text placeholders; returns how many.

    The placeholder says what the block was and keeps it whole under
    ``_meta["bridge/original"]``, so nothing the server sent is lost.
    """
    content = result.get("content")
    if not isinstance(content, list) or ordinary_call_result(result) or _valid("tools/call", version, result) is None:
        return 0
    if _valid("tools/call", version, {**result, "content": []}) is not None:
        return 0
    replaced = 0
    blocks: list[Any] = []
    for block in content:
        if _valid("tools/call", version, {**result, "content": [block]}) is None:
            blocks.append(block)
            continue
        kind = block.get("type") if isinstance(block, Mapping) else type(block).__name__
        blocks.append({"type": "text", "text": f"[unsupported content block of type {kind!r}]",
                       "_meta": {ORIGINAL_BLOCK_KEY: block}})
        replaced += 1
    result["content"] = blocks
    return replaced
