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
  the model a search over the allowed tools instead of all of them (``bridge.deferred``).

Two parts do the work: ``bridge.routes.Routes`` (which name leads where, and the call by name)
and ``bridge.deferred.DeferredCatalogue`` wrapping it (what the model is offered, the meta-tools).
A ``Toolset`` adds the lifetime: sources may be live connections or ``ServerSpec``s, which are
opened through the process-wide registry on first use (``start()``) and released by ``stop()``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from mcp.shared.dispatcher import ProgressFnT

from .catalogue import ToolEntry
from .code import RUN_PYTHON, CodeMode
from .code_limits import CodeLimits
from .connection import Connection, Interceptor
from .decisions import Decision
from .deferred import CALL_TOOL, FIND_TOOLS, DeferredCatalogue
from .guards import Guards
from .profiles import apply_profile
from .registry import ServerSpec, shared_connections
from .resource_tools import ResourceTools
from .results import CallResult
from .routes import Route, Routes, UnguardedToolsWarning
from .steps import Step

__all__ = ["CALL_TOOL", "FIND_TOOLS", "Route", "Toolset", "UnguardedToolsWarning"]

logger = logging.getLogger("bridge.toolset")


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
        self.live: list[Connection] = [c for c in items if isinstance(c, Connection)]
        """Connections passed in open: used, never closed, by this toolset."""
        self.specs: list[ServerSpec] = [c for c in items if isinstance(c, ServerSpec)]
        self.opened: list[Connection] = []
        """The connections ``start()`` opened for ``specs`` (in order), released by ``stop()``."""
        self.agent = agent
        self.guards = guards if guards is not None else Guards()
        self.growing = growing
        self._start_lock = anyio.Lock()
        self._routes = Routes(agent=agent, guards=self.guards)
        self._routes.connections = self.connections
        self._offered = DeferredCatalogue(self._routes, growing=growing)
        self.code_mode = CodeMode(self.guards.code, self._offered) if isinstance(self.guards.code, CodeLimits) \
            else None
        """With ``Guards(code=...)``: the ``run_python`` tool offered instead of the tools (``bridge.code``)."""
        self._resource_tools = ResourceTools(self._routes)
        self._profiled: dict[str, tuple[ToolEntry, dict[str, Any]]] = {}

    @property
    def chain(self) -> tuple[Interceptor, ...]:
        """The interceptors every call runs through, outermost first (``Guards.open``: opened on
        first use, over the first connection's ``Resources``)."""
        return self._routes.opened.chain

    @property
    def connections(self) -> list[Connection]:
        """The live connections (after ``start()`` for specs)."""
        return [*self.live, *self.opened]

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the specs through the shared registry (a no-op when there are none, or already open).

        Raises:
            ConnectError: a server could not be started or reached.
        """
        async with self._start_lock:
            registry = shared_connections()
            while len(self.opened) < len(self.specs):
                self.opened.append(await registry.acquire(self.specs[len(self.opened)]))
                self._routes.connections = self.connections

    async def stop(self) -> None:
        """Release what ``start()`` opened, and the audit store the guards hold (closed once nothing
        else holds it); connections passed in live stay open."""
        async with self._start_lock:
            await self._routes.close()
            registry = shared_connections()
            for spec in self.specs[: len(self.opened)]:
                await registry.release(spec)
            self.opened = []
            self._routes.connections = self.connections
            self._routes.forget()

    def reset(self) -> None:
        """Forget what a deferred search found and the routes (rebuilt at the next look)."""
        self._offered.forget_found()
        self._routes.forget()

    # -- tools -----------------------------------------------------------------------------

    async def _started(self) -> DeferredCatalogue:
        if len(self.opened) < len(self.specs):
            await self.start()
        return self._offered

    async def routes(self) -> dict[str, Route]:
        """Every allowed tool by agent-facing name, from the current catalogues.

        Raises:
            ConfigError: two servers offer the same name; an approval rule names an alias.
            ConnectError: a spec could not be opened.
        """
        return await (await self._started()).table()

    @property
    def deferred(self) -> bool:
        """Whether the model sees a search tool instead of the whole catalogue (after ``tools()``)."""
        return self._offered.deferred

    async def tools(self) -> list[ToolEntry]:
        """What the model is offered now: every allowed tool, or (deferred) the ``always`` tools, what
        searches found so far (``growing`` frameworks), ``find_tools`` and, when not growing, ``call_tool``;
        plus a ``read_resource`` per server when the guards name ``resources``; in code mode, ``run_python``
        alone."""
        if self.code_mode is not None:
            await self._started()
            return [await self.code_mode.entry()]
        offered = await (await self._started()).tools()
        return [*offered, *await self._resource_tools.entries(offered)]

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
        return self._routes.known(name) or self._resource_tools.known(name)

    async def route(self, name: str) -> Route:
        """The allowed tool called ``name`` (agent-facing or MCP name).

        Raises:
            ToolNotFound: not among this agent's tools (whatever the server has), with suggestions.
            CatalogueDrift: a lock file withheld it; says why.
        """
        await self._started()
        if self._resource_tools.handles(name):
            return await self._resource_tools.route(name)
        return await self._routes.route(name)

    # -- calls -----------------------------------------------------------------------------

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None, *, call_id: str | None = None,
                   progress: ProgressFnT | None = None, timeout: float | None = None,
                   approval: Decision | None = None, step: Step | None = None) -> CallResult:
        """Call an allowed tool through the guards; an ``isError`` result is returned, not raised.

        ``find_tools`` and ``call_tool`` of a deferred catalogue are answered here. ``approval`` is a
        decision made on this call already (a framework that asked a human itself): it goes with
        the call (``ToolCall.approval``); a denial stands, an approval is the approver's to accept.
        ``step`` is the model's step that asked for the call (``ToolCall.step``: audit records and
        spans carry it).

        Raises:
            ToolNotFound, InvalidArguments: before anything is sent.
            ConnectionLost, CallTimeout, ProtocolError, ConnectError: the call could not complete.
        """
        offered = await self._started()
        if self.code_mode is not None and name == RUN_PYTHON:
            return await self.code_mode.run(arguments, step=step, timeout=timeout, approval=approval)
        if self._resource_tools.handles(name):
            return await self._resource_tools.call(name, arguments, call_id=call_id, timeout=timeout, step=step)
        return await offered.call(name, arguments, call_id=call_id, progress=progress, timeout=timeout,
                                  approval=approval, step=step)

    def find(self, query: str, limit: int = 5) -> CallResult:
        """What ``find_tools`` answers: the best matches among the allowed tools, as JSON text."""
        return self._offered.find(query, limit)
