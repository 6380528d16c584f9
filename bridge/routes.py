"""An agent's routes: where each of its tool names leads, and the one way to call by name.

``Routes`` is the table behind a ``Toolset``: every tool the agent may use, by agent-facing name,
from the current catalogues of its connections, narrowed by ``Guards.selection``. Each connection
tracks its own changes (a tools/list_changed or a reconnect makes its catalogue stale), and the
table is rebuilt when any catalogue it was built from is no longer current. Building it is where
configuration mistakes surface:

* two servers offering the same agent-facing name is a ``ConfigError`` naming both;
* an approval rule written with an alias instead of the MCP name is a ``ConfigError`` (rules
  match MCP names only, so it would silently never apply);
* destructive tools with no approval gate warn once (``UnguardedToolsWarning``).

``call`` is a call by name: the route (after one fresh listing for a name not found), the
arguments restored for the guards' ``schema_profile`` and validated, then the connection's one
call path with the guards' chain. An attempt refused before it became a call is told to the
interceptors that keep records (``record_refusal``: the audit trail), so the trail shows what an
agent *tried*.
"""

from __future__ import annotations

import dataclasses
import difflib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp.shared.dispatcher import ProgressFnT

from .catalogue import Catalogue, ToolEntry
from .connection import Connection, ToolCall, find_after_relisting
from .decisions import Decision
from .errors import BridgeError, CatalogueDrift, ConfigError, InvalidArguments, ToolNotFound
from .guards import Guards, OpenGuards
from .profiles import restore
from .resources import Resources
from .results import CallResult
from .steps import Step

__all__ = ["REFUSALS", "Route", "Routes", "UnguardedToolsWarning"]

REFUSALS = (ToolNotFound, CatalogueDrift, InvalidArguments)
"""What stops an attempt before it becomes a call: nothing was approved, nothing was sent."""


class UnguardedToolsWarning(UserWarning):
    """Destructive tools were handed to an agent with no approval gate (``Guards(warn_unguarded=False)``
    silences it)."""


@dataclass(frozen=True)
class Route:
    """Where an agent-facing tool name leads: a connection's catalogue entry.

    ``profile`` is the guards' ``schema_profile``: the model was shown the entry's inputSchema
    rewritten for it, so its arguments are restored to the server's shape before validation.
    """

    connection: Connection
    entry: ToolEntry
    profile: str | None = None

    def prepare(self, arguments: Mapping[str, Any] | None, *, agent: str | None, call_id: str | None,
                timeout: float | None) -> ToolCall:
        """The call the model's ``arguments`` make, in the server's shape and validated.

        Raises:
            InvalidArguments: names the argument and the rule it breaks.
        """
        if self.profile is not None:
            arguments = restore(arguments or {}, self.entry.input_schema, self.profile)
        return self.connection.prepare(self.entry, arguments, agent=agent, call_id=call_id, timeout=timeout)


class Routes:
    """The tools one agent may use over its connections, by agent-facing name.

    Args:
        agent: the agent named in approvals and audit records.
        guards: its selection, approval rules and interceptor chain.

    ``connections`` is set by the owner (a ``Toolset`` opens some of them) before the first look.
    """

    def __init__(self, *, agent: str | None, guards: Guards) -> None:
        self.agent = agent
        self.guards = guards
        self.connections: list[Connection] = []
        self.version = 0
        """Counts the rebuilds of the table: what is derived from it (a search index) is stale
        when built at another version."""
        self._table: dict[str, Route] = {}
        self._built_from: tuple[Catalogue, ...] = ()
        """The catalogue of each connection the table was built from, in ``connections`` order.
        The catalogues themselves are kept, not their ids: a freed object's id can be reused."""
        self._warned_unguarded = False
        self._open: OpenGuards | None = None
        self._own: Resources | None = None

    @property
    def opened(self) -> OpenGuards:
        """The guards at work (their chain and recorders), opened on first use over the first
        connection's ``Resources``: an audit store closes with that connection, or at ``close()``."""
        if self._open is None:
            if self.connections:
                owner = self.connections[0].holdings
            else:  # no server at all: what records its refusals is this table's to close
                owner = self._own = self._own or Resources()
            self._open = self.guards.open(owner)
        return self._open

    async def close(self) -> None:
        """Let go of what ``opened`` holds (the next use opens it again)."""
        opened, self._open = self._open, None
        if opened is not None:
            await opened.close()
        if self._own is not None:
            await self._own.aclose()

    def forget(self) -> None:
        """Drop the table: the next look rebuilds it from the connections' catalogues."""
        self._table, self._built_from = {}, ()

    @property
    def latest(self) -> Mapping[str, Route]:
        """The table last built, without I/O (empty before the first ``table()``)."""
        return self._table

    def known(self, name: str) -> Route | None:
        """The route of agent-facing ``name`` from the last table built, without I/O."""
        return self._table.get(name)

    async def table(self) -> dict[str, Route]:
        """Every allowed tool by agent-facing name, from the current catalogues.

        Raises:
            ConfigError: two servers offer the same name; an approval rule names an alias.
            ConnectError, ProtocolError, CallTimeout: a catalogue could not be listed.
        """
        if not self._stale():
            return self._table
        connections = self.connections
        catalogues = tuple([await c.catalogue() for c in connections])
        table: dict[str, Route] = {}
        selection, profile = self.guards.selection, self.guards.schema_profile
        for connection, catalogue in zip(connections, catalogues, strict=True):
            self._check_rule_names(catalogue)
            for entry in catalogue:
                if selection is not None and not selection.selects(entry, connection.name):
                    continue
                if entry.name in table:
                    first = table[entry.name].connection
                    # With prefixes on already, advising them would send the reader in a circle.
                    fix = ("rename one of the servers in the config or exclude one of the tools"
                           if first.prefix or connection.prefix
                           else "open them with prefixes (open_servers(..., prefix=True)) or exclude one")
                    raise ConfigError(f"tool name {entry.name!r} is offered by both {first.name!r} and "
                                      f"{connection.name!r}; {fix}")
                table[entry.name] = Route(connection, entry, profile)
        self._table, self._built_from = table, catalogues
        self.version += 1
        self._warn_unguarded()
        return table

    def _stale(self) -> bool:
        """Whether a connection came or went, or its catalogue changed, since the table was built."""
        connections, built_from = self.connections, self._built_from
        return len(connections) != len(built_from) or any(
            connection.current is not built for connection, built in zip(connections, built_from, strict=True))

    def _check_rule_names(self, catalogue: Iterable[ToolEntry]) -> None:
        # Rules match MCP names only (so an alias can never loosen one); a rule written with an
        # alias would silently never apply, so say so while the developer is still looking.
        policy = self.guards.approval
        if not policy:
            return
        mcp = {e.mcp_name: e for e in catalogue}
        aliases = {e.name: e.mcp_name for e in mcp.values() if e.name != e.mcp_name}
        for key in [*policy.tools, *(r.tool for r in policy.rules)]:
            if key not in mcp and key in aliases:
                raise ConfigError(f"approval rule names {key!r}, the agent-facing alias of {aliases[key]!r}; "
                                  f"rules match MCP names: write {aliases[key]!r}")

    def _warn_unguarded(self) -> None:
        guards = self.guards
        if self._warned_unguarded or not guards.warn_unguarded or guards.gated:
            return
        destructive = sorted(n for n, r in self._table.items() if r.entry.annotations.effective_destructive)
        if destructive:
            self._warned_unguarded = True
            more = f" and {len(destructive) - 5} more" if len(destructive) > 5 else ""
            warnings.warn(f"agent {self.agent or '(unnamed)'!r} gets destructive tools ({', '.join(destructive[:5])}"
                          f"{more}) with no approval gate; pass an approval policy, or Guards(warn_unguarded=False) "
                          "if that is intended", UnguardedToolsWarning, stacklevel=6)

    async def route(self, name: str) -> Route:
        """The allowed tool called ``name`` (agent-facing or MCP name).

        Raises:
            ToolNotFound: not among this agent's tools (whatever the server has), with suggestions.
            CatalogueDrift: a lock file withheld it; says why.
        """
        found = _named(await self.table(), name)
        if found is None:
            async def find() -> Route | None:
                return _named(await self.table(), name)

            found = await find_after_relisting(name, self.connections, find)
            if found is None:
                raise ToolNotFound(name, difflib.get_close_matches(name, list(self._table), n=3, cutoff=0.5))
        return found

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None, *, call_id: str | None = None,
                   progress: ProgressFnT | None = None, timeout: float | None = None,
                   approval: Decision | None = None, step: Step | None = None) -> CallResult:
        """Call the allowed tool ``name`` through the guards' chain; an ``isError`` result is returned.

        ``approval``: a decision made on this call already (``ToolCall.approval``); ``step``: the
        model's step that asked for it (``ToolCall.step``).

        Raises:
            ToolNotFound, CatalogueDrift, InvalidArguments: before anything is sent (and recorded).
            ConnectionLost, CallTimeout, ProtocolError, ConnectError: the call could not complete.
        """
        route: Route | None = None
        try:
            route = await self.route(name)
            call = route.prepare(arguments, agent=self.agent, call_id=call_id, timeout=timeout)
        except REFUSALS as refusal:
            await self.refused(name, arguments, call_id, refusal, route, step=step)
            raise
        if approval is not None or step is not None:
            call = dataclasses.replace(call, approval=approval, step=step)
        return await route.connection.send(call, interceptors=self.opened.chain, progress=progress)

    async def refused(self, name: str, arguments: Any, call_id: str | None, refusal: BridgeError,
                      route: Route | None = None, *, server: str | None = None, step: Step | None = None) -> None:
        """Tell the recording interceptors about an attempt refused before it became a call.

        ``route`` (or, for a tool of the bridge's own, ``server``): where it was headed, when known.
        """
        recorders = self.opened.recorders
        if not recorders:
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
        if route is not None:
            server = route.connection.name
        elif server is None:
            only = self.connections[0].name if len(self.connections) == 1 else "bridge"
            server = refusal.server or only
        args = dict(arguments) if isinstance(arguments, Mapping) else {} if arguments is None else {
            "(not an object)": arguments}
        attempt = ToolCall(server=server, tool=route.entry.name if route else name,
                           mcp_name=route.entry.mcp_name if route else refusal.tool or name, arguments=args,
                           agent=self.agent, call_id=call_id, step=step)
        for record in recorders:
            await record(attempt, reason, refusal)


def _named(table: Mapping[str, Route], name: str) -> Route | None:
    """The route of agent-facing or MCP name ``name`` in ``table``."""
    return table.get(name) or next((r for r in table.values() if r.entry.mcp_name == name), None)
