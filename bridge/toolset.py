"""One agent's tools, framework-neutral: what its ``Guards`` allow, and the one way to call them.

Every adapter (AutoGen, AG2, MetaGPT, Agent Framework) is a thin layer over a ``Toolset``: it
turns ``await toolset.tools()`` into that framework's tool objects and sends every call through
``await toolset.call(name, arguments)``. So the guarantees are the same everywhere because
they are written once, here and below:

* the tools are the *current* catalogues of the connections (tools/list_changed followed),
  narrowed by the guards' selection; a tool outside it is "not found", under any name;
* two servers offering the same agent-facing name is a ``ConfigError`` naming both;
* every call runs the guards' chain (audit, approval, interceptors) on the connection's one
  call path, with the agent's name in it;
* every attempt refused before it could become a call (an unknown tool, one outside the
  selection or withheld, arguments its inputSchema refuses) is told to the interceptors that
  keep records (``record_refusal``: the audit trail), so the trail shows what an agent *tried*;
* a **deferred catalogue** (``Guards(catalogue="deferred")``, or ``"auto"`` past a size) shows
  the model only the ``always`` tools plus ``find_tools``, a search over the allowed tools
  (``bridge.search``). A framework that asks for the tool list every turn (``growing=True``:
  AutoGen's workbench) then also gets each found tool, with its real inputSchema, from the next
  model call on; one that fixes its list up front gets ``call_tool(name, arguments)`` instead,
  which validates and guards the call exactly as a direct one.

Sources may be live connections or ``ServerSpec``s, which are opened through the process-wide
registry on first use (``start()``) and released by ``stop()``.
"""

from __future__ import annotations

import difflib
import json
import logging
import warnings
from collections.abc import Awaitable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.dispatcher import ProgressFnT

from .catalogue import Catalogue, ToolEntry
from .connection import Connection, ToolCall
from .errors import BridgeError, CatalogueDrift, ConfigError, InvalidArguments, ToolNotFound
from .guards import Guards
from .profiles import apply_profile, restore
from .registry import ServerSpec, shared_connections
from .results import CallResult
from .search import ToolIndex
from .session import tool_changes

__all__ = ["CALL_TOOL", "FIND_TOOLS", "Route", "Toolset", "UnguardedToolsWarning"]

logger = logging.getLogger("bridge.toolset")

FIND_TOOLS = "find_tools"
CALL_TOOL = "call_tool"

# What stops an attempt before it becomes a call: nothing was approved, nothing was sent.
_REFUSALS = (ToolNotFound, CatalogueDrift, InvalidArguments)


class UnguardedToolsWarning(UserWarning):
    """Destructive tools were handed to an agent with no approval gate (``Guards(warn_unguarded=False)``
    silences it)."""


@dataclass(frozen=True)
class Route:
    """Where an agent-facing tool name leads: a connection's catalogue entry."""

    connection: Connection
    entry: ToolEntry


def _meta_tool(name: str, description: str, schema: dict[str, Any]) -> ToolEntry:
    tool = types.Tool(name=name, description=description, input_schema=schema,
                      annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    return ToolEntry.from_mcp(tool, name)


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


class Toolset:
    """The tools one agent may use, over one or more servers.

    Args:
        sources: live connections, or ``ServerSpec``s to open through the shared registry.
        agent: the agent named in approvals and audit records.
        guards: selection, approval, audit and catalogue presentation (default: the safe defaults).
        growing: the framework re-reads the tool list before every model call, so tools found by a
            deferred search can join it (else ``call_tool`` reaches them).

    Raises:
        ConfigError: malformed guards.
    """

    def __init__(self, sources: Connection | ServerSpec | Sequence[Connection | ServerSpec], *,
                 agent: str | None = None, guards: Guards | None = None, growing: bool = False) -> None:
        items = [sources] if isinstance(sources, Connection | ServerSpec) else list(sources)
        self._live: list[Connection] = [c for c in items if isinstance(c, Connection)]
        self.specs: list[ServerSpec] = [c for c in items if isinstance(c, ServerSpec)]
        self._own: list[Connection] = []
        self.agent = agent
        self.guards = guards if guards is not None else Guards()
        self.growing = growing
        self._start_lock = anyio.Lock()
        # Rebuilt only when some connection's catalogue object changes (i.e. after a re-list).
        # The catalogues themselves are kept, not their ids: a freed object's id can be reused.
        self._key: tuple[Catalogue, ...] = ()
        # ``tool_changes.count`` when the routes were last known current: while it stands, no
        # connection anywhere has a changed catalogue, and the check below is skipped.
        self._seen = -1
        self._routes: dict[str, Route] = {}
        self._index: ToolIndex | None = None
        self._deferred = False
        self._found: dict[str, None] = {}
        self._warned = False
        self._profiled: dict[str, tuple[ToolEntry, dict[str, Any]]] = {}
        # Interceptors that keep records are told of refused attempts too (``AuditTrail.record_refusal``).
        hooks = [getattr(i, "record_refusal", None) for i in self.guards.chain]
        self._recorders = tuple(hook for hook in hooks if callable(hook))
        self._find = _meta_tool(FIND_TOOLS, "Search this agent's tools by what you want to do. Returns the best "
                                "matches with their names, descriptions and full input schemas.", _FIND_SCHEMA)
        self._call = _meta_tool(CALL_TOOL, "Call a tool found with find_tools: give its name and its arguments "
                                "(an object matching the inputSchema find_tools returned).", _CALL_SCHEMA)

    @property
    def connections(self) -> list[Connection]:
        """The live connections (after ``start()`` for specs)."""
        return [*self._live, *self._own]

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the specs through the shared registry (a no-op when there are none, or already open).

        Raises:
            ConnectError: a server could not be started or reached.
        """
        async with self._start_lock:
            registry = shared_connections()
            while len(self._own) < len(self.specs):
                self._own.append(await registry.acquire(self.specs[len(self._own)]))

    async def stop(self) -> None:
        """Release what ``start()`` opened; connections passed in live stay open."""
        async with self._start_lock:
            registry = shared_connections()
            for spec in self.specs[: len(self._own)]:
                await registry.release(spec)
            self._own = []
            self._key, self._seen = (), -1

    def reset(self) -> None:
        """Forget what a deferred search found and the cached routes."""
        self._found.clear()
        self._key, self._seen = (), -1

    # -- tools -----------------------------------------------------------------------------

    async def routes(self) -> dict[str, Route]:
        """Every allowed tool by agent-facing name, from the current catalogues.

        Raises:
            ConfigError: two servers offer the same name; an approval rule names an alias.
            ConnectError: a spec could not be opened.
        """
        seen = tool_changes.count
        if seen == self._seen:
            return self._routes
        if len(self._own) < len(self.specs):
            await self.start()
        connections = self.connections
        if len(connections) == len(self._key):
            for connection, known in zip(connections, self._key):  # noqa: B905 (lengths just compared)
                if connection.current is not known:
                    break
            else:
                self._seen = seen
                return self._routes
        catalogues = tuple([c.current or await c.catalogue() for c in connections])
        selection = self.guards.selection
        routes: dict[str, Route] = {}
        for connection, catalogue in zip(connections, catalogues, strict=True):
            self._check_rule_names(catalogue)
            for entry in catalogue:
                if selection is not None and not selection.selects(entry, connection.name):
                    continue
                if entry.name in routes:
                    other = routes[entry.name].connection.name
                    raise ConfigError(f"tool name {entry.name!r} is offered by both {other!r} and {connection.name!r}; "
                                      "open them with prefixes "
                                      "(open_servers(..., prefix=True)) or exclude one")
                routes[entry.name] = Route(connection, entry)
        self._routes, self._key = routes, catalogues
        self._rebuild_presentation()
        self._seen = seen
        return routes

    def _rebuild_presentation(self) -> None:
        guards = self.guards
        if guards.catalogue == "auto":
            size = sum(len(json.dumps(_model_json(r.entry))) for r in self._routes.values())
            self._deferred = size > guards.defer_over
        else:
            self._deferred = guards.catalogue == "deferred"
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._deferred:
            self._index = self._build_index()
        self._found = {n: None for n in self._found if n in self._routes}
        if guards.warn_unguarded and not guards.gated and not self._warned:
            destructive = sorted(n for n, r in self._routes.items() if r.entry.annotations.effective_destructive)
            if destructive:
                self._warned = True
                more = f" and {len(destructive) - 5} more" if len(destructive) > 5 else ""
                shown = ", ".join(destructive[:5]) + more
                warnings.warn(f"agent {self.agent or '(unnamed)'!r} gets destructive tools ({shown}) with no approval "
                              "gate; pass an approval policy, or Guards(warn_unguarded=False) if that is intended",
                              UnguardedToolsWarning, stacklevel=4)

    def _build_index(self) -> ToolIndex:
        # The server's name goes in with the title: "what do you remember" is about the memory server.
        return ToolIndex([(name, name, " ".join(filter(None, [r.entry.title, r.connection.name])),
                           r.entry.description, r.entry.input_schema) for name, r in self._routes.items()])

    def _check_rule_names(self, catalogue: Iterable[ToolEntry]) -> None:
        # Rules match MCP names only (so an alias can never loosen one); a rule written with an
        # alias would silently never apply, so say so while the developer is still looking.
        policy = self.guards.approval
        if not policy:
            return
        keys = [*policy.tools, *(r.tool for r in policy.rules)]
        mcp = {e.mcp_name: e for e in catalogue}
        aliases = {e.name: e.mcp_name for e in mcp.values() if e.name != e.mcp_name}
        for key in keys:
            if key not in mcp and key in aliases:
                raise ConfigError(f"approval rule names {key!r}, the agent-facing alias of {aliases[key]!r}; "
                                  f"rules match MCP names: write {aliases[key]!r}")

    @property
    def deferred(self) -> bool:
        """Whether the model sees a search tool instead of the whole catalogue (after ``tools()``)."""
        return self._deferred

    async def tools(self) -> list[ToolEntry]:
        """What the model is offered now: every allowed tool, or (deferred) the ``always`` tools, what
        searches found so far (``growing`` frameworks), ``find_tools`` and, when not growing, ``call_tool``."""
        routes = await self.routes()
        if not self._deferred:
            return [r.entry for r in routes.values()]
        always = [r.entry for r in routes.values()
                  if any(fnmatchcase(n, p) for p in self.guards.always for n in (r.entry.name, r.entry.mcp_name))]
        shown = {e.name for e in always}
        found = [routes[n].entry for n in self._found if n in routes and n not in shown] if self.growing else []
        meta = [self._find] if self.growing else [self._find, self._call]
        return [*always, *found, *meta]

    def model_schema(self, entry: ToolEntry) -> Mapping[str, Any]:
        """What the model is sent as ``entry``'s parameters: its inputSchema, unchanged unless the
        guards name a ``schema_profile`` (then rewritten for that provider, see ``bridge.profiles``)."""
        profile = self.guards.schema_profile
        if profile is None:
            return entry.input_schema
        cached = self._profiled.get(entry.name)
        if cached is None or cached[0] is not entry:
            cached = self._profiled[entry.name] = (entry, apply_profile(entry.input_schema, profile)[0])
        return cached[1]

    def known_route(self, name: str) -> Route | None:
        """The route of ``name`` from the last listing seen, without I/O (``None`` before the first)."""
        return self._routes.get(name)

    async def route(self, name: str) -> Route:
        """The allowed tool called ``name`` (agent-facing or MCP name).

        Raises:
            ToolNotFound: not among this agent's tools (whatever the server has), with suggestions.
            CatalogueDrift: a lock file withheld it; says why.
        """
        routes = await self.routes()
        found = routes.get(name)
        if found is None:
            found = next((r for r in routes.values() if r.entry.mcp_name == name), None)
        if found is None:
            # A tool may have been added without notice; one fresh listing settles it.
            for connection in self.connections:
                connection.invalidate()
            routes = await self.routes()
            found = routes.get(name) or next((r for r in routes.values() if r.entry.mcp_name == name), None)
        if found is None:
            for connection in self.connections:
                connection.refuse_withheld(name)
            raise ToolNotFound(name, difflib.get_close_matches(name, list(routes), n=3, cutoff=0.5))
        return found

    # -- calls -----------------------------------------------------------------------------

    def call(self, name: str, arguments: Mapping[str, Any] | None = None, *, call_id: str | None = None,
             progress: ProgressFnT | None = None, timeout: float | None = None) -> Awaitable[CallResult]:
        """Call an allowed tool through the guards (await it); an ``isError`` result is returned, not raised.

        ``find_tools`` and ``call_tool`` of a deferred catalogue are answered here.

        Raises:
            ToolNotFound, InvalidArguments: before anything is sent.
            ConnectionLost, CallTimeout, ProtocolError, ConnectError: the call could not complete.
        """
        # A plain method handing back the connection's coroutine when the route is known and
        # current (almost every call): one coroutine frame fewer on every resumption. Not when a
        # refusal must be recorded: the connection would refuse invalid arguments unrecorded.
        route = self._routes.get(name) if self._seen == tool_changes.count and not self._deferred else None
        if route is None or self.guards.schema_profile is not None or self._recorders:
            return self._looked_up(name, arguments, call_id=call_id, progress=progress, timeout=timeout)
        return self._through(route, arguments, call_id, progress, timeout)

    async def _looked_up(self, name: str, arguments: Mapping[str, Any] | None, *, call_id: str | None,
                         progress: ProgressFnT | None, timeout: float | None) -> CallResult:
        if self._deferred and name in (FIND_TOOLS, CALL_TOOL):
            return await self._meta(name, dict(arguments or {}), call_id=call_id, progress=progress, timeout=timeout)
        route: Route | None = None
        try:
            route = await self.route(name)
            if self.guards.schema_profile is not None:
                arguments = restore(arguments or {}, route.entry.input_schema, self.guards.schema_profile)
            # Validated here rather than on the connection, so a refusal can be recorded.
            arguments = route.connection.prepare(route.entry, arguments).arguments
        except _REFUSALS as refusal:
            await self._refused(name, arguments, call_id, refusal, route.connection.name if route else None,
                                route.entry if route else None)
            raise
        return await self._through(route, arguments, call_id, progress, timeout, validate=False)

    def _through(self, route: Route, arguments: Mapping[str, Any] | None, call_id: str | None,
                 progress: ProgressFnT | None, timeout: float | None, *,
                 validate: bool = True) -> Coroutine[Any, Any, CallResult]:
        return route.connection.call(route.entry, arguments, agent=self.agent, call_id=call_id, timeout=timeout,
                                     validate=validate, progress=progress, interceptors=self.guards.chain)

    async def _refused(self, name: str, arguments: Any, call_id: str | None, refusal: BridgeError,
                       server: str | None = None, entry: ToolEntry | None = None) -> None:
        """Tell the recording interceptors about an attempt refused before it became a call (``server``
        and ``entry``: where it was headed, when that was found)."""
        if not self._recorders:
            return
        if isinstance(refusal, InvalidArguments):
            reason = "invalid arguments"
        elif isinstance(refusal, CatalogueDrift):
            reason = "tool withheld"
        elif any(c.current is not None and c.current.get(name) is not None for c in self.connections):
            # The server has it; this agent may not: worth telling apart in the trail, never to the model.
            reason = "tool outside the agent's selection"
        else:
            reason = "unknown tool"
        if server is None:
            only = self.connections[0].name if len(self.connections) == 1 else "bridge"
            server = refusal.server or only
        args = dict(arguments) if isinstance(arguments, Mapping) else {} if arguments is None else {
            "(not an object)": arguments}
        attempt = ToolCall(server=server, tool=entry.name if entry else name,
                           mcp_name=entry.mcp_name if entry else refusal.tool or name, arguments=args,
                           agent=self.agent, call_id=call_id)
        for record in self._recorders:
            await record(attempt, reason, refusal)

    async def _meta(self, name: str, arguments: dict[str, Any], *, call_id: str | None,
                    progress: ProgressFnT | None, timeout: float | None) -> CallResult:
        entry = self._find if name == FIND_TOOLS else self._call
        try:
            entry.compiled.validate(arguments)
        except InvalidArguments as refusal:
            await self._refused(name, arguments, call_id, refusal, "bridge", entry)
            raise
        if name == CALL_TOOL:
            inner = arguments["name"]
            if inner in (FIND_TOOLS, CALL_TOOL):
                return CallResult.error(f"{inner} cannot be called through call_tool", server="bridge", tool=name)
            return await self.call(inner, arguments["arguments"], call_id=call_id, progress=progress, timeout=timeout)
        return self.find(str(arguments["query"]), int(arguments.get("limit", 5)))

    def find(self, query: str, limit: int = 5) -> CallResult:
        """What ``find_tools`` answers: the best matches among the allowed tools, as JSON text."""
        if self._index is None:
            self._index = self._build_index()
        names = self._index.search(query, limit)
        matches = []
        for n in names:
            entry = self._routes[n].entry
            self._found[n] = None
            matches.append({"name": n, "title": entry.title, "description": _first_line(entry.description),
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


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:200]


def _model_json(entry: ToolEntry) -> dict[str, Any]:
    return {"type": "function", "function": {"name": entry.name, "description": entry.description,
                                             "parameters": entry.input_schema}}
