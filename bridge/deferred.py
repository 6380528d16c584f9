"""What the model is offered of an agent's routes: the whole catalogue, or a deferred one.

A **deferred catalogue** (``Guards(catalogue="deferred")``, or ``"auto"`` once the allowed tools
exceed ``Guards.defer_over`` bytes) shows the model only the ``always`` tools plus
``find_tools``, a search over the allowed tools (``bridge.search``). A framework that asks for
the tool list every turn (``growing=True``: AutoGen's workbench) then also gets each found tool,
with its real inputSchema, from the next model call on; one that fixes its list up front gets
``call_tool(name, arguments)`` instead, which validates and guards the call exactly as a direct
one. Without deferral, ``DeferredCatalogue`` passes everything through to the routes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

import mcp_types as types
from mcp.shared.dispatcher import ProgressFnT

from .catalogue import ToolEntry
from .decisions import Decision
from .errors import InvalidArguments
from .results import CallResult
from .routes import Route, Routes
from .search import ToolIndex
from .steps import Step

__all__ = ["CALL_TOOL", "FIND_TOOLS", "DeferredCatalogue"]

FIND_TOOLS = "find_tools"
CALL_TOOL = "call_tool"

_FIND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What you want to do, in a few words."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5,
                  "description": "How many tools to return."},
    },
    "required": ["query"],
    "additionalProperties": False,
}
_CALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "The tool's name, as find_tools gave it."},
        "arguments": {"type": "object", "description": "The tool's arguments, matching its inputSchema."},
    },
    "required": ["name", "arguments"],
    "additionalProperties": False,
}


def _meta_tool(name: str, description: str, schema: dict[str, Any]) -> ToolEntry:
    tool = types.Tool(name=name, description=description, input_schema=schema,
                      annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    return ToolEntry.from_mcp(tool, name)


class DeferredCatalogue:
    """An agent's routes as the model is offered them: all of them, or (deferred) a search.

    Args:
        routes: the agent's routes (every call that is not a meta-tool goes to ``routes.call``).
        growing: the framework re-reads the tool list before every model call, so found tools can
            join it (else ``call_tool`` reaches them).
    """

    def __init__(self, routes: Routes, *, growing: bool = False) -> None:
        self.routes = routes
        self.growing = growing
        self.find_entry = _meta_tool(FIND_TOOLS, "Search this agent's tools by what you want to do. Returns the best "
                                     "matches with their names, descriptions and full input schemas.", _FIND_SCHEMA)
        self.call_entry = _meta_tool(CALL_TOOL, "Call a tool found with find_tools: give its name and its arguments "
                                     "(an object matching the inputSchema find_tools returned).", _CALL_SCHEMA)
        self.deferred = False
        """Whether the model sees the search instead of the whole catalogue (decided at each rebuild
        of the routes)."""
        self.found: list[str] = []
        """The tools searches found, in the order found (a growing framework offers them)."""
        self._index: ToolIndex | None = None
        self._routes_version = -1
        """``routes.version`` the decision, the index and ``found`` were last brought up to."""

    async def table(self) -> dict[str, Route]:
        """The routes' table, with this catalogue's decision and search brought up to date."""
        table = await self.routes.table()
        self._follow()
        return table

    def _follow(self) -> None:
        routes = self.routes
        if self._routes_version == routes.version:
            return
        self._routes_version = routes.version
        table, guards = routes.latest, routes.guards
        if guards.catalogue == "auto":
            self.deferred = sum(map(_offered_bytes, (r.entry for r in table.values()))) > guards.defer_over
        else:
            self.deferred = guards.catalogue == "deferred"
        if self._index is not None:
            self._index.close()
            self._index = None
        self.found = [n for n in self.found if n in table]

    def forget_found(self) -> None:
        """Forget what searches found (a new conversation starts from the search alone)."""
        self.found.clear()

    async def tools(self) -> list[ToolEntry]:
        """What the model is offered now: every allowed tool, or (deferred) the ``always`` tools, what
        searches found so far (``growing`` frameworks), ``find_tools`` and, when not growing, ``call_tool``."""
        table = await self.table()
        if not self.deferred:
            return [r.entry for r in table.values()]
        patterns = self.routes.guards.always
        always = [r.entry for r in table.values()
                  if any(fnmatchcase(n, p) for p in patterns for n in (r.entry.name, r.entry.mcp_name))]
        shown = {e.name for e in always}
        found = [table[n].entry for n in self.found if n not in shown] if self.growing else []
        meta = [self.find_entry] if self.growing else [self.find_entry, self.call_entry]
        return [*always, *found, *meta]

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None, *, call_id: str | None = None,
                   progress: ProgressFnT | None = None, timeout: float | None = None,
                   approval: Decision | None = None, step: Step | None = None) -> CallResult:
        """Call ``name``: a meta-tool when deferred, else an allowed tool through the routes
        (``approval``: a decision made on this call already; through ``call_tool``, on the tool it calls;
        ``step``: the model's step that asked for it)."""
        if name in (FIND_TOOLS, CALL_TOOL):
            await self.table()  # whether the catalogue is deferred now
        if not (self.deferred and name in (FIND_TOOLS, CALL_TOOL)):
            return await self.routes.call(name, arguments, call_id=call_id, progress=progress, timeout=timeout,
                                          approval=approval, step=step)
        entry = self.find_entry if name == FIND_TOOLS else self.call_entry
        given = dict(arguments or {})
        try:
            entry.compiled.validate(given)
        except InvalidArguments as refusal:
            await self.routes.refused(name, given, call_id, refusal, server="bridge", step=step)
            raise
        if name == FIND_TOOLS:
            return self.find(str(given["query"]), int(given.get("limit", 5)))
        inner = given["name"]
        if inner in (FIND_TOOLS, CALL_TOOL):
            return CallResult.error(f"{inner} cannot be called through call_tool", server="bridge", tool=name)
        return await self.routes.call(inner, given["arguments"], call_id=call_id, progress=progress, timeout=timeout,
                                      approval=approval, step=step)

    def find(self, query: str, limit: int = 5) -> CallResult:
        """What ``find_tools`` answers: the best matches among the allowed tools (after ``tools()``
        or a call), as JSON text; the matches join ``found``."""
        self._follow()
        table = self.routes.latest
        if self._index is None:
            # The server's name goes in with the title: "what do you remember" is about the memory server.
            self._index = ToolIndex([(name, name, " ".join(filter(None, [r.entry.title, r.connection.name])),
                                      r.entry.description, r.entry.input_schema) for name, r in table.items()])
        matches = []
        for name in self._index.search(query, limit):
            entry = table[name].entry
            if name not in self.found:
                self.found.append(name)
            matches.append({"name": name, "title": entry.title, "description": _first_line(entry.description),
                            "required": list(entry.input_schema.get("required", [])),
                            "inputSchema": entry.input_schema})
        if not matches:
            answer: dict[str, Any] = {"matches": [], "hint": "no tool matched; try other words"}
        else:
            how = ("they can be called directly from now on" if self.growing
                   else f"call one with {CALL_TOOL}(name, arguments)")
            answer = {"matches": matches, "next": how}
        text = json.dumps(answer, ensure_ascii=False)
        return CallResult(server="bridge", tool=FIND_TOOLS, content=(types.TextContent(type="text", text=text),),
                          structured=answer, text=text)


def _offered_bytes(entry: ToolEntry) -> int:
    """How much the model is sent about ``entry``: its name, description and inputSchema as JSON."""
    return len(json.dumps([entry.name, entry.description, entry.input_schema]))


_LINE = 160
"""How many characters of a description ``find_tools`` shows: enough to tell tools apart."""


def _first_line(text: str) -> str:
    """The description's first line, cut at a word with an ellipsis past ``_LINE`` characters."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(line) <= _LINE:
        return line
    cut = line[: _LINE - 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return head.rstrip(" ,;:.-") + "…"
