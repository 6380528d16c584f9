"""``read_resource``: the guarded tool that lets an agent read a server's resources.

Opt-in per agent: ``Guards(resources=["docs://*"])`` gives every server of the agent that offers
resources one ``read_resource`` tool (named with the server's prefix when it has one). It is a
``ToolEntry`` like any other, so every adapter offers it through the contract unchanged, and its
calls run the agent's whole chain (approval, telemetry, audit, interceptors) as a call whose
``mcp_name`` is ``resources/read`` and whose one argument is the ``uri``: the audit record names
the agent and the URI. The tool is annotated read-only, so the default approval policy lets it
through; a policy naming ``resources/read`` can still gate it.

A URI is read only when it matches one of the guards' globs **and** the server lists it or one of
its templates matches it **and** no segment of it is ``..`` (``bridge.published``). Anything else
is refused before a request is made, and the refusal is recorded like any refused attempt. The
tool's description tells the model what it may read (bounded, one line each), and follows the
server's resources/list_changed notifications.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

import mcp_types as types

from .catalogue import Annotations, ToolEntry, safe_names
from .connection import Connection, ToolCall, run_chain
from .errors import ConfigError, InvalidArguments
from .published import Published, unsafe_uri
from .results import CallResult
from .routes import Route, Routes
from .sanitize import one_line
from .secrets import clip
from .steps import Step

__all__ = ["READ_METHOD", "READ_RESOURCE", "ResourceTools"]

READ_RESOURCE = "read_resource"
READ_METHOD = "resources/read"
"""The ``mcp_name`` of a read in approval rules, audit records and spans."""

# What the description lists of the readable set: enough to orient a model, never a flood.
_LISTED = 25
_LINE = 160

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"uri": {"type": "string", "description": "The resource's URI, as listed in this description or "
                                                            "filled in from one of its URI templates."}},
    "required": ["uri"],
    "additionalProperties": False,
}
_ANNOTATIONS = types.ToolAnnotations(read_only_hint=True, idempotent_hint=True, destructive_hint=False)


class ResourceTools:
    """The ``read_resource`` tools of one agent's routes (none unless ``Guards.resources`` is set).

    Args:
        routes: the agent's routes: their connections, agent, guards and opened chain.
    """

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self._entries: dict[str, tuple[tuple[int, int], ToolEntry, Connection]] = {}

    @property
    def globs(self) -> tuple[str, ...] | None:
        return self.routes.guards.resources

    def _names(self) -> dict[str, Connection]:
        if self.globs is None:
            return {}
        found: dict[str, Connection] = {}
        for connection in self.routes.connections:
            if not Published.of(connection.session).offers("resources"):
                continue
            name = safe_names([READ_RESOURCE], prefix=connection.prefix)[READ_RESOURCE]
            if name in found:
                raise ConfigError(f"both {found[name].name!r} and {connection.name!r} would offer {name!r}; open "
                                  "them with prefixes (open_servers(..., prefix=True))")
            found[name] = connection
        return found

    def handles(self, name: str) -> bool:
        """Whether ``name`` is one of these tools (no I/O)."""
        return self.globs is not None and name in self._names()

    def known(self, name: str) -> Route | None:
        """The route of the tool ``name`` as last offered, without I/O (``None``: not one of these,
        or not offered yet)."""
        cached = self._entries.get(name) if self.handles(name) else None
        return Route(cached[2], cached[1]) if cached is not None else None

    async def route(self, name: str) -> Route:
        """The route of the tool ``name`` (one of these: ``handles(name)``), its description current."""
        connection = self._names()[name]
        return Route(connection, await self._entry(name, connection))

    async def entries(self, taken: Sequence[ToolEntry] = ()) -> list[ToolEntry]:
        """The tools to offer, their descriptions from the current listings.

        Raises:
            ConfigError: a server tool of the agent already has the name.
        """
        out = []
        clash = {e.name for e in taken}
        for name, connection in self._names().items():
            if name in clash:
                raise ConfigError(f"server {connection.name!r} has a tool named {name!r}, which Guards(resources=...) "
                                  "would shadow; exclude that tool or open the server with a prefix")
            out.append(await self._entry(name, connection))
        return out

    async def _entry(self, name: str, connection: Connection) -> ToolEntry:
        published = Published.of(connection.session)
        resources = await published.resources()
        templates = await published.resource_templates()
        key = (published.version, connection.session.tools_version)
        cached = self._entries.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        entry = ToolEntry.from_mcp(types.Tool(name=READ_METHOD, description=self._describe(connection, resources,
                                                                                           templates),
                                              input_schema=_SCHEMA, annotations=_ANNOTATIONS), name)
        self._entries[name] = (key, entry, connection)
        return entry

    def _describe(self, connection: Connection, resources: Sequence[types.Resource],
                  templates: Sequence[types.ResourceTemplate]) -> str:
        readable = [r for r in resources if self._allowed(r.uri) and unsafe_uri(r.uri) is None]
        shaped = [t for t in templates if self._allowed(t.uri_template)]
        guard = connection.lock_guard
        if guard is not None and guard.policy != "warn":
            # A lock file pins tools and instructions, not resource listings: under one, the model
            # is shown nothing the server wrote here, only the agent's own patterns and counts.
            return (f"Read a resource of the server {connection.name!r} by its URI: one the server lists or "
                    f"templates that matches {', '.join(self.globs or ())}. It lists {len(readable)} such "
                    f"resource(s) and {len(shaped)} template(s) now (not named here: a lock file pins the tools, "
                    "not the resource listings).")
        lines = [f"Read a resource of the server {connection.name!r} by its URI. Only these can be read:"]
        for r in readable[:_LISTED]:
            about = r.title or r.name
            lines.append(_clip(f"- {r.uri} ({about}{', ' + r.mime_type if r.mime_type else ''})"))
        if len(readable) > _LISTED:
            lines.append(f"- ... and {len(readable) - _LISTED} more")
        for t in shaped[:_LISTED]:
            lines.append(_clip(f"- template {t.uri_template} ({t.description or t.name})"))
        if not readable and not shaped:
            lines.append("- (nothing at the moment)")
        return "\n".join(lines)

    def _allowed(self, uri: str) -> bool:
        return any(fnmatchcase(uri, glob) for glob in self.globs or ())

    async def call(self, name: str, arguments: Mapping[str, Any] | None, *, call_id: str | None = None,
                   timeout: float | None = None, step: Step | None = None) -> CallResult:
        """Read the resource ``arguments["uri"]`` through the agent's chain.

        Raises:
            InvalidArguments: no ``uri``, or one outside the globs, unlisted, untemplated or with a
                ``..`` segment: nothing is sent, and the attempt is recorded.
            ConnectionLost, CallTimeout, ProtocolError: the read failed.
        """
        connection = self._names()[name]
        entry = await self._entry(name, connection)
        given = dict(arguments or {})
        attempt = ToolCall(server=connection.name, tool=name, mcp_name=READ_METHOD, arguments=given,
                           annotations=Annotations.from_mcp(_ANNOTATIONS), agent=self.routes.agent, call_id=call_id,
                           timeout=timeout, step=step, protocol_version=connection.session.protocol_version,
                           session_id=connection.session.session_id)
        try:
            entry.compiled.validate(given)
            uri = str(given["uri"])
            if not self._allowed(uri):
                raise InvalidArguments(f"refused to read {clip(uri, 200)!r}: outside this agent's resources "
                                       f"({', '.join(self.globs or ())})", argument="uri", rule="resources")
            problem = await Published.of(connection.session).scope_problem(uri)
            if problem is not None:
                raise InvalidArguments(f"refused to read {clip(uri, 200)!r}: {problem}", argument="uri", rule="listed")
        except InvalidArguments as refusal:
            refusal.server, refusal.tool = connection.name, name
            for record in self.routes.opened.recorders:
                await record(attempt, "resource refused", refusal)
            raise

        async def read(call: ToolCall) -> CallResult:
            # The URI checked above, whatever an interceptor did to the arguments.
            done = await Published.of(connection.session).read(uri, tool=name,
                                                               max_chars=connection.max_result_chars)
            return CallResult(server=connection.name, tool=name, content=done.blocks(), text=done.text)

        return await run_chain(self.routes.opened.chain, read)(attempt)


def _clip(line: str) -> str:
    line = one_line(line)
    return line if len(line) <= _LINE else line[:_LINE - 3] + "..."
