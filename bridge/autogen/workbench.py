"""``MCPWorkbench``: an AutoGen ``Workbench`` over one or more live MCP connections.

``AssistantAgent`` asks its workbench for the tool list before every model call and again
for every tool call. AutoGen's own MCP workbench answers each time with a tools/list round
trip; this one answers from each connection's cached catalogue, which re-lists only after the
server announced tools/list_changed (or a reconnect). So a running agent sees tools the server
adds or removes, without a restart and without a request per model call.

Selection is enforced on calls as well as listings: a tool the agent's ``ToolFilter`` leaves
out answers "not found" even when called by its MCP name.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

from autogen_core import CancellationToken, Component
from autogen_core.tools import TextResultContent, ToolResult, ToolSchema, Workbench
from typing_extensions import Self

from ..catalogue import Catalogue, ToolEntry
from ..connection import Connection, Interceptor
from ..errors import BridgeError
from ..selection import ToolFilter
from .components import (
    ServerSpec,
    WorkbenchComponentConfig,
    dump_interceptors,
    load_interceptors,
    shared_connections,
)
from .tool import run_guarded

__all__ = ["MCPWorkbench"]

logger = logging.getLogger("bridge.workbench")


class MCPWorkbench(Workbench, Component[WorkbenchComponentConfig]):
    """Tools of MCP servers for ``AssistantAgent(workbench=...)``, bound to one agent.

    Build one with ``server.workbench_for(agent, ...)`` (or ``group.workbench_for``). A
    workbench built from live connections needs no ``start()``: the connections' own
    ``async with`` owns them. One loaded from a component config opens its servers through
    the shared registry on ``start()`` (or on first use) and releases them on ``stop()``.

    Args:
        connections: live connections, or ``ServerSpec``s to open lazily.
        agent: the agent name written into approvals and audit records.
        select: which tools the agent gets (default: all).
        interceptors: wrappers run around every call, outermost first.
    """

    component_type = "workbench"
    component_provider_override = "bridge.autogen.MCPWorkbench"
    component_config_schema = WorkbenchComponentConfig

    def __init__(self, connections: Connection | ServerSpec | Sequence[Connection | ServerSpec], *,
                 agent: str | None = None, select: ToolFilter | None = None,
                 interceptors: Sequence[Interceptor] = ()) -> None:
        items = [connections] if isinstance(connections, Connection | ServerSpec) else list(connections)
        self._live: list[Connection] = [c for c in items if isinstance(c, Connection)]
        self._specs: list[ServerSpec] = [c for c in items if isinstance(c, ServerSpec)]
        self._acquired: list[ServerSpec] = []
        self._agent = agent
        self._select = select
        self._interceptors = tuple(interceptors)
        self._start_lock = asyncio.Lock()
        # Rebuilt only when some connection's catalogue object changes (i.e. after a re-list).
        # The catalogues themselves are kept, not their ids: a freed object's id can be reused.
        self._cache_key: tuple[Catalogue, ...] = ()
        self._schemas: list[ToolSchema] = []
        self._routes: dict[str, tuple[Connection, ToolEntry]] = {}

    @property
    def agent(self) -> str | None:
        """The agent named in approvals and audit records."""
        return self._agent

    @property
    def select(self) -> ToolFilter | None:
        """The selection applied to listings and calls (``None``: every tool)."""
        return self._select

    @property
    def interceptors(self) -> tuple[Interceptor, ...]:
        """The wrappers run around every call, outermost first."""
        return self._interceptors

    @property
    def connections(self) -> list[Connection]:
        """The live connections (after ``start()`` for a loaded workbench)."""
        return list(self._live)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the servers of a loaded workbench (a no-op for one built from live connections).

        Raises:
            ConnectError: a server could not be started or reached.
        """
        async with self._start_lock:
            registry = shared_connections()
            for spec in self._specs:
                if spec in self._acquired:
                    continue
                self._live.append(await registry.acquire(spec))
                self._acquired.append(spec)

    async def stop(self) -> None:
        """Release what ``start()`` opened; connections passed in live stay open."""
        async with self._start_lock:
            registry = shared_connections()
            for spec in self._acquired:
                await registry.release(spec)
            opened = len(self._acquired)
            self._acquired = []
            if opened:
                self._live = self._live[: len(self._live) - opened]
            self._cache_key = ()

    async def reset(self) -> None:
        """Forget cached listings; the next ``list_tools`` rebuilds them."""
        self._cache_key = ()

    async def save_state(self) -> Mapping[str, Any]:
        """Nothing to keep: the state lives on the servers."""
        # Everything worth keeping lives on the servers; there is no local state to persist.
        return {"type": "MCPWorkbenchState"}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Accepts what ``save_state`` wrote; there is nothing to restore."""
        return None

    # -- tools ---------------------------------------------------------------------------

    async def _refresh(self) -> None:
        if len(self._acquired) < len(self._specs):
            await self.start()
        catalogues: list[Catalogue] = [await c.catalogue() for c in self._live]
        key = tuple(catalogues)
        if len(key) == len(self._cache_key) and all(a is b for a, b in zip(key, self._cache_key, strict=True)):
            return
        schemas: list[ToolSchema] = []
        routes: dict[str, tuple[Connection, ToolEntry]] = {}
        for connection, catalogue in zip(self._live, catalogues, strict=True):
            for entry in catalogue:
                if self._select is not None and not self._select.selects(entry, connection.name):
                    continue
                if entry.name in routes:
                    other = routes[entry.name][0].name
                    logger.warning("tool name %r is offered by %s and %s; %s's is used (give the servers prefixes)",
                                   entry.name, other, connection.name, other)
                    continue
                routes[entry.name] = (connection, entry)
                schemas.append(ToolSchema(name=entry.name, description=entry.description,
                                          parameters=cast(Any, copy.deepcopy(dict(entry.input_schema))),
                                          strict=False))
        self._schemas, self._routes, self._cache_key = schemas, routes, key

    async def list_tools(self) -> list[ToolSchema]:
        """The selected tools of every server, from the cached catalogues (no request unless a
        server announced a change)."""
        await self._refresh()
        return list(self._schemas)

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None,
                        cancellation_token: CancellationToken | None = None,
                        call_id: str | None = None) -> ToolResult:
        """Call a selected tool; every failure becomes a ``ToolResult`` with ``is_error=True``.

        The model sees the rendered result text (media as short placeholders, never base64).
        """
        await self._refresh()
        route = self._routes.get(name) or self._by_mcp_name(name)
        if route is None:
            return ToolResult(name=name, result=[TextResultContent(content=f"Tool {name} not found.")], is_error=True)
        connection, entry = route
        task = asyncio.ensure_future(run_guarded(connection, entry.mcp_name, dict(arguments or {}), agent=self._agent,
                                                 call_id=call_id, interceptors=self._interceptors))
        if cancellation_token is not None:
            cancellation_token.link_future(task)
        try:
            result = await task
        except BridgeError as e:
            return ToolResult(name=name, result=[TextResultContent(content=str(e))], is_error=True)
        return ToolResult(name=name, result=[TextResultContent(content=result.text)], is_error=result.is_error)

    def _by_mcp_name(self, name: str) -> tuple[Connection, ToolEntry] | None:
        # Only among the selected tools: an MCP name must not reach a tool the filter left out.
        for connection, entry in self._routes.values():
            if entry.mcp_name == name:
                return connection, entry
        return None

    # -- component -----------------------------------------------------------------------

    def _to_config(self) -> WorkbenchComponentConfig:
        """Servers (secrets as ``${VAR}``), agent, selection and interceptors.

        Raises:
            ValueError: the selection has a predicate or an interceptor cannot be serialised.
        """
        specs = [ServerSpec.of(c) for c in self._live[: len(self._live) - len(self._acquired)]] + self._specs
        return WorkbenchComponentConfig(servers=specs, agent=self._agent,
                                        select=self._select.to_config() if self._select is not None else None,
                                        interceptors=dump_interceptors(self._interceptors))

    @classmethod
    def _from_config(cls, config: WorkbenchComponentConfig) -> Self:
        """A workbench that opens its servers on ``start()`` or first use (no I/O here).

        Raises:
            ConfigError: unknown selection keys or interceptor kinds.
        """
        select = ToolFilter.from_config(config.select) if config.select is not None else None
        return cls(list(config.servers), agent=config.agent, select=select,
                   interceptors=load_interceptors(config.interceptors))

    def __repr__(self) -> str:
        names = [c.name for c in self._live] + [s.name for s in self._specs if s not in self._acquired]
        return f"MCPWorkbench(servers={names!r}, agent={self._agent!r})"
