"""Flag server text that tries to instruct the model: prompt injection in tools and instructions. Pure.

A tool's description and titles, and the server's ``instructions`` (which users put in the
system message), go straight into the model's context, so a hostile or compromised server can
use them to steer the agent ("tool poisoning"): override its instructions, make it call a tool
first, hide what it does from the user, reach for secrets, or smuggle text in invisible
characters. These checks are heuristics for a human reviewer (``mcp-bridge tools`` and ``show``
print them), not a security boundary: a finding means "read this carefully", and a clean result
proves nothing. The lock file (``bridge.lock``) is what stops reviewed text from changing later.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["suspicious_text", "suspicious_tool"]

# (label, pattern): each pattern is matched case-insensitively against the normalised text.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern, re.IGNORECASE | re.DOTALL))
    for label, pattern in (
        ("overrides the model's instructions",
         r"\b(ignore|disregard|forget|override)\b.{0,20}\b(all|any|previous|prior|above|earlier|other|system)\b"
         r".{0,20}\b(instructions?|prompts?|rules?|directions?)\b"),
        ("claims authority with a hidden-instruction tag",
         r"<\s*/?\s*(important|system|instructions?|secret|admin|hidden)\s*>|\[\s*(system|important)\s*\]"),
        ("asks to keep something from the user",
         r"\b(do\s*n[o']t|never|without)\b.{0,20}\b(tell|telling|inform|informing|mention|mentioning|reveal|"
         r"revealing|notify|notifying|show|showing)\b.{0,20}\b(the\s+)?user\b"
         r"|\buser\b.{0,20}\b(must|should)\s+not\s+(know|see|be told)\b"),
        ("tells the model to call it before or instead of other tools",
         r"\b(before|instead of)\b.{0,30}\b(any|every|all|other|the)\b.{0,15}\btools?\b"
         r"|\balways\b.{0,20}\b(call|use|invoke|run)\b.{0,20}\b(this|first)\b"),
        ("points at files that hold secrets",
         r"~/\.ssh|\bid_(rsa|ed25519|ecdsa)\b|(^|[\s/'\"`(])\.env\b|\bmcp\.json\b|\.aws/credentials|\.netrc\b"),
        # Mentioning keys is normal for a server that manages them; asking to move them is not.
        ("asks to pass secrets along",
         r"\b(send|include|pass|upload|attach|forward|share|post|copy|paste|provide|put)\b.{0,40}"
         r"\b(api[_\s-]?keys?|passwords?|credentials?|private[_\s-]?keys?|secrets?|access[_\s-]?tokens?)\b"),
        ("asks for the conversation or system prompt",
         r"\b(conversation|chat)\s+(history|log|transcript)\b|\bsystem\s+prompt\b|\bprevious\s+messages\b"),
        ("contains an HTML comment (invisible when rendered)", r"<!--.*?-->"),
    )
)

# Invisible or direction-changing characters: text a reviewer cannot see but a model reads.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]")


def _snippet(text: str, start: int, end: int) -> str:
    shown = " ".join(text[start:end].split())
    return shown if len(shown) <= 60 else shown[:57] + "..."


def suspicious_text(text: str) -> list[str]:
    """Findings for one piece of model-visible text; an empty list when nothing stands out.

    Each finding is one line: what the text does, and the words that triggered it.
    """
    if not text:
        return []
    findings: list[str] = []
    invisible = _INVISIBLE.findall(text)
    if invisible:
        names = sorted({unicodedata.name(c, f"U+{ord(c):04X}") for c in invisible})
        findings.append(f"contains {len(invisible)} invisible character(s): {', '.join(names)}")
    # Judge the text as a model reads it: invisible characters must not split a phrase.
    visible = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    for label, pattern in _RULES:
        match = pattern.search(visible)
        if match:
            findings.append(f"{label}: {_snippet(visible, match.start(), match.end())!r}")
    return findings


def _descriptions(node: Any, path: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    if depth > 32:
        return
    if isinstance(node, Mapping):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key in ("description", "title") and isinstance(value, str):
                yield where, value
            else:
                yield from _descriptions(value, where, depth + 1)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _descriptions(item, f"{path}[{i}]", depth + 1)


def suspicious_tool(tool: Mapping[str, Any]) -> list[str]:
    """Findings for a tool given as wire JSON (``ToolEntry.to_wire()``), each prefixed with where.

    Looks at the description, the title, ``annotations.title``, and every description and title
    inside the schemas, since all of them reach the model. One text in several places (a title
    that is also the model-facing description) is judged once, naming every place.
    """
    places: list[tuple[str, Any]] = [("description", tool.get("description")), ("title", tool.get("title"))]
    for key in ("inputSchema", "outputSchema", "annotations"):
        places += list(_descriptions(tool.get(key), key))
    where_by_text: dict[str, list[str]] = {}
    for where, text in places:
        if isinstance(text, str):
            where_by_text.setdefault(text, []).append(where)
    return [f"{', '.join(wheres)}: {finding}" for text, wheres in where_by_text.items()
            for finding in suspicious_text(text)]
