"""A server's tool catalogue: entries, OpenAI-safe names, and lookup with suggestions.

An entry pairs the MCP ``Tool`` as the server listed it with the compiled schema and the
name agents will use. Names are mapped deterministically: a name that is already safe
(``^[a-zA-Z0-9_-]{1,64}$``) is kept; any other is transliterated, and when the result
collides or is too long a short hash of the original name makes it unique. The MCP name
is always what goes on the wire.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import mcp_types as types

from .errors import ToolNotFound
from .sanitize import invisible_chars, one_line
from .schema import CompiledSchema, compile_schema

__all__ = ["Annotations", "Catalogue", "ToolEntry", "safe_names", "withhold_unreadable_names"]

logger = logging.getLogger("bridge.catalogue")

_SAFE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX = 64


def _hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def _transliterate(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", ascii_name).strip("_") or "tool"


def safe_names(names: Iterable[str], *, prefix: str = "") -> dict[str, str]:
    """Map MCP names to unique OpenAI-safe names, independent of listing order.

    ``prefix`` (a server name, for several servers at once) is sanitised and joined with ``_``.
    """
    pre = f"{_transliterate(prefix)}_" if prefix else ""
    originals = list(dict.fromkeys(names))
    exact = {n for n in originals if _SAFE.match(pre + n)}
    out: dict[str, str] = {n: pre + n for n in exact}
    used = set(out.values())
    candidates = {n: pre + _transliterate(n) for n in originals if n not in exact}
    counts: dict[str, int] = {}
    for c in candidates.values():
        counts[c] = counts.get(c, 0) + 1
    # Sorted so the outcome never depends on the order the server listed tools in.
    for n in sorted(candidates):
        c = candidates[n]
        if len(c) > _MAX or c in used or counts[c] > 1:
            c = f"{c[: _MAX - 9]}_{_hash(n)}"
        out[n] = c
        used.add(c)
    return {n: out[n] for n in originals}


def withhold_unreadable_names(server: str, tools: Sequence[types.Tool]
                              ) -> tuple[list[types.Tool], dict[str, str]]:
    """Withhold tools whose names hold control, bidi or invisible characters (a listing check).

    Such a name reads as another to a person (``send\\u200b_email`` shows as ``send_email``), so
    the reviewer would approve, and a rule written for the name they see would judge, a tool
    other than the one the model calls; no honest server needs one (MCP names are ASCII letters,
    digits, ``_``, ``-`` and ``.``). Logged once per listing, and shown by ``mcp-bridge tools``.
    """
    withheld: dict[str, str] = {}
    for tool in tools:
        hidden = invisible_chars(tool.name)
        if hidden:
            why = (f"its name holds invisible characters ({', '.join(hidden)}), so a reviewer would not read it "
                   "as the model does")
            logger.warning("server %s: withholding tool '%s': %s", one_line(server), one_line(tool.name), why)
            withheld[tool.name] = f"by the bridge: {why}"
    return [t for t in tools if t.name not in withheld], withheld


@dataclass(frozen=True)
class Annotations:
    """MCP tool hints. They come from the server, so treat them as untrusted claims.

    A missing hint is ``None``; ``effective_*`` apply the spec's defaults (not read-only,
    destructive, not idempotent, open-world).
    """

    title: str | None = None
    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    open_world: bool | None = None

    @classmethod
    def from_mcp(cls, a: types.ToolAnnotations | None) -> Annotations:
        if a is None:
            return cls()
        return cls(a.title, a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)

    @property
    def effective_read_only(self) -> bool:
        return bool(self.read_only)

    @property
    def effective_destructive(self) -> bool:
        return not self.effective_read_only and self.destructive is not False

    @cached_property
    def effective_idempotent(self) -> bool:
        # Cached (in the instance dict, which a frozen dataclass still has): asked on every call.
        return bool(self.idempotent) or self.effective_read_only

    def to_wire(self) -> dict[str, Any]:
        pairs = {"title": self.title, "readOnlyHint": self.read_only, "destructiveHint": self.destructive,
                 "idempotentHint": self.idempotent, "openWorldHint": self.open_world}
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass(frozen=True)
class ToolEntry:
    """One tool as listed by the server, with its safe name and compiled input schema."""

    name: str
    mcp_name: str
    description: str
    title: str | None
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any] | None
    annotations: Annotations
    icons: tuple[Mapping[str, Any], ...]
    meta: Mapping[str, Any] | None
    compiled: CompiledSchema = field(repr=False, compare=False)
    execution: Mapping[str, Any] | None = None

    @classmethod
    def from_mcp(cls, tool: types.Tool, name: str) -> ToolEntry:
        title = tool.title or (tool.annotations.title if tool.annotations else None)
        description = tool.description or title or tool.name
        icons = tuple(i.model_dump(by_alias=True, mode="json", exclude_none=True) for i in (tool.icons or []))
        return cls(
            name=name,
            mcp_name=tool.name,
            description=description,
            title=title,
            input_schema=tool.input_schema,
            output_schema=tool.output_schema,
            annotations=Annotations.from_mcp(tool.annotations),
            icons=icons,
            meta=tool.meta,
            compiled=compile_schema(tool.input_schema, name=name),
            execution=tool.execution.model_dump(by_alias=True, mode="json", exclude_none=True)
            if tool.execution is not None else None,
        )

    def to_wire(self) -> dict[str, Any]:
        """The tool as MCP JSON (camelCase), e.g. for ``--json`` output and lock files."""
        out: dict[str, Any] = {"name": self.mcp_name}
        if self.title:
            out["title"] = self.title
        out["description"] = self.description
        out["inputSchema"] = self.input_schema
        if self.execution:
            out["execution"] = dict(self.execution)
        if self.output_schema is not None:
            out["outputSchema"] = self.output_schema
        annotations = self.annotations.to_wire()
        if annotations:
            out["annotations"] = annotations
        if self.icons:
            out["icons"] = list(self.icons)
        if self.meta:
            out["_meta"] = self.meta
        return out


class Catalogue:
    """An immutable snapshot of a server's tools, addressable by safe name or MCP name."""

    def __init__(self, tools: Sequence[types.Tool], *, prefix: str = "", server: str | None = None) -> None:
        self.server = server
        # Duplicate MCP names are a server bug; the first listing wins so calls stay unambiguous.
        unique: dict[str, types.Tool] = {}
        self.duplicates: list[str] = []
        for tool in tools:
            if tool.name in unique:
                self.duplicates.append(tool.name)
            else:
                unique[tool.name] = tool
        names = safe_names(unique, prefix=prefix)
        self._entries = [ToolEntry.from_mcp(tool, names[tool.name]) for tool in unique.values()]
        self._by_name = {e.name: e for e in self._entries}
        self._by_mcp = {e.mcp_name: e for e in self._entries}

    def __iter__(self) -> Iterator[ToolEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or name in self._by_mcp

    def get(self, name: str) -> ToolEntry | None:
        """The entry whose MCP name or safe name is ``name``."""
        return self._by_mcp.get(name) or self._by_name.get(name)

    def lookup(self, name: str) -> ToolEntry:
        """Like ``get``, but raises with the closest names when nothing matches.

        Raises:
            ToolNotFound: with up to three suggestions.
        """
        entry = self.get(name)
        if entry is None:
            pool = list(self._by_mcp) + [n for n in self._by_name if n not in self._by_mcp]
            close = difflib.get_close_matches(name, pool, n=3, cutoff=0.5)
            if not close:
                close = [n for n in pool if name.lower() in n.lower()][:3]
            raise ToolNotFound(name, close, server=self.server)
        return entry
