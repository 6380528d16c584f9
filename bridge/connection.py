"""A framework-neutral connection: a session plus its always-current catalogue and calls.

``Connection`` is what every framework adapter builds on. It keeps the catalogue cached
and re-lists only when the session says it may have changed (tools/list_changed or a
reconnect). Calls go through a chain of *interceptors* (approval, audit, ...), each a
small async function wrapping the next, so cross-cutting behaviour never leaks into the
session or the tool classes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.dispatcher import ProgressFnT

from .catalogue import Annotations, Catalogue, ToolEntry, safe_names
from .errors import CatalogueDrift, InvalidArguments, ToolError
from .results import DEFAULT_MAX_CHARS, CallResult
from .session import ServerInfo, Session

__all__ = ["Connection", "Guard", "Handler", "Interceptor", "ProgressListener", "ToolCall", "run_chain"]

logger = logging.getLogger("bridge.connection")


@dataclass(frozen=True)
class ToolCall:
    """One call on its way to a server, as interceptors see it.

    ``tool`` is the name the agent used (safe, maybe prefixed); ``mcp_name`` is the wire name.
    ``arguments`` have already been validated against the tool's inputSchema.
    """

    server: str
    tool: str
    mcp_name: str
    arguments: Mapping[str, Any]
    annotations: Annotations = field(default_factory=Annotations)
    agent: str | None = None
    call_id: str | None = None
    timeout: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


Handler = Callable[[ToolCall], Awaitable[CallResult]]
"""Takes a call, returns its result (``is_error`` results are returned, not raised)."""

Interceptor = Callable[[ToolCall, Handler], Awaitable[CallResult]]
"""Wraps a handler: may inspect or change the call, answer it itself (e.g. a denial),
or pass it on by awaiting ``next(call)``."""


Guard = Callable[[str, Sequence[types.Tool]], tuple[list[types.Tool], dict[str, str]]]
"""Vets a fresh listing (server name, tools) before it becomes the catalogue: returns the
tools to offer and the withheld ones with the reason, or raises (e.g. ``CatalogueDrift``).
``bridge.lock.LockGuard`` is one."""


ProgressListener = Callable[[ToolCall, float, "float | None", "str | None"], Awaitable[None]]
"""``async (call, progress, total, message)``: a server's progress report on one call."""


def _bind_progress(listener: ProgressListener, call: ToolCall) -> ProgressFnT:
    async def report(progress: float, total: float | None, message: str | None) -> None:
        await listener(call, progress, total, message)

    return report


def run_chain(interceptors: Sequence[Interceptor], terminal: Handler) -> Handler:
    """Compose interceptors so the first one listed runs outermost."""
    handler = terminal
    for interceptor in reversed(interceptors):
        handler = _bind(interceptor, handler)
    return handler


def _bind(interceptor: Interceptor, nxt: Handler) -> Handler:
    async def handler(call: ToolCall) -> CallResult:
        return await interceptor(call, nxt)

    return handler


class Connection:
    """A live server with its catalogue; framework adapters build tools on top of it.

    Args:
        session: the session to own (entered and closed with this connection).
        prefix: prepended (with ``_``) to every safe tool name, e.g. the server's config name.
        max_result_chars: model-facing text is truncated past this (the full result is kept).
        guards: vet every fresh listing, in order (e.g. a ``LockGuard``).
    """

    def __init__(self, session: Session, *, prefix: str = "", max_result_chars: int = DEFAULT_MAX_CHARS,
                 guards: Sequence[Guard] = (), on_progress: ProgressListener | None = None) -> None:
        self.session = session
        self.on_progress = on_progress
        """Receives progress of every call that has no ``progress=`` of its own (agent calls included)."""
        self.prefix = prefix
        self.max_result_chars = max_result_chars
        self.guards = list(guards)
        self.withheld: dict[str, str] = {}
        """Tools the guards withheld from the latest listing (MCP name -> reason)."""
        self._catalogue: Catalogue | None = None
        self._catalogue_version = -1
        self._list_lock = anyio.Lock()
        self.list_seconds = 0.0
        """How long the last full tools/list walk took."""

    async def __aenter__(self) -> Connection:
        await self.session.__aenter__()
        try:
            await self.catalogue()
        except BaseException:
            await self.session.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        await self.session.__aexit__(exc_type, exc, tb)

    @property
    def name(self) -> str:
        """The server's label (config name, or derived from the command or URL)."""
        return self.session.name

    @property
    def info(self) -> ServerInfo:
        return self.session.info

    async def catalogue(self) -> Catalogue:
        """The current catalogue, re-listed (all pages) if the server announced a change."""
        if self._catalogue is not None and self._catalogue_version == self.session.tools_version:
            return self._catalogue
        async with self._list_lock:
            if self._catalogue is not None and self._catalogue_version == self.session.tools_version:
                return self._catalogue
            version = self.session.tools_version
            started = time.perf_counter()
            tools = await self.session.list_tools()
            self.list_seconds = time.perf_counter() - started
            catalogue = Catalogue(self._accept(tools), prefix=self.prefix, server=self.name)
            if catalogue.duplicates:
                logger.warning("server %s lists duplicate tool names %s; the first of each is used",
                               self.name, sorted(set(catalogue.duplicates)))
            self._catalogue, self._catalogue_version = catalogue, version
            return catalogue

    def _accept(self, tools: list[types.Tool]) -> list[types.Tool]:
        """Vet a fresh listing before it becomes the catalogue: runs the guards in order.

        Raises:
            CatalogueDrift: a guard refuses the server (e.g. a strict lock file check).
        """
        withheld: dict[str, str] = {}
        for guard in self.guards:
            tools, refused = guard(self.name, tools)
            withheld.update(refused)
        self.withheld = withheld
        return tools

    async def entry(self, name: str) -> ToolEntry:
        """The catalogue entry for ``name`` (MCP or safe name); re-lists once before giving up.

        Raises:
            ToolNotFound: with the closest names.
            CatalogueDrift: a guard (lock file) withheld the tool; says why.
        """
        catalogue = await self.catalogue()
        found = catalogue.get(name)
        if found is None:
            # The server may have added it without telling us; one fresh listing settles it.
            self._catalogue_version = -1
            catalogue = await self.catalogue()
            if catalogue.get(name) is None:
                self._refuse_withheld(name)
            found = catalogue.lookup(name)
        return found

    def _refuse_withheld(self, name: str) -> None:
        safe = safe_names(self.withheld, prefix=self.prefix)
        for mcp_name, reason in self.withheld.items():
            if name in (mcp_name, safe[mcp_name]):
                raise CatalogueDrift(f"withheld by the lock file: {reason}", server=self.name, tool=mcp_name)

    async def invoke(self, call: ToolCall, *, progress: ProgressFnT | None = None) -> CallResult:
        """Send a prepared call to the server (the end of every interceptor chain)."""
        started = time.perf_counter()
        if progress is None and self.on_progress is not None:
            progress = _bind_progress(self.on_progress, call)
        raw = await self.session.call_tool(call.mcp_name, call.arguments, timeout=call.timeout, progress=progress,
                                           idempotent=call.annotations.effective_idempotent)
        return CallResult.from_mcp(raw, server=self.name, tool=call.mcp_name, duration=time.perf_counter() - started,
                                   max_chars=self.max_result_chars)

    async def prepare(self, name: str, arguments: Mapping[str, Any] | None = None, *, validate: bool = True,
                      agent: str | None = None, call_id: str | None = None, timeout: float | None = None
                      ) -> ToolCall:
        """Look the tool up and validate the arguments against its inputSchema.

        Raises:
            ToolNotFound: no such tool.
            InvalidArguments: names the argument and the rule it breaks.
        """
        entry = await self.entry(name)
        args = dict(arguments or {})
        if validate:
            try:
                entry.compiled.validate(args)
            except InvalidArguments as e:
                e.server, e.tool = self.name, entry.mcp_name
                raise
        return ToolCall(server=self.name, tool=entry.name, mcp_name=entry.mcp_name, arguments=args,
                        annotations=entry.annotations, agent=agent, call_id=call_id, timeout=timeout)

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None, *, timeout: float | None = None,
                   validate: bool = True, progress: ProgressFnT | None = None,
                   interceptors: Sequence[Interceptor] = ()) -> CallResult:
        """Call a tool and return everything it sent back; an ``isError`` result is returned, not raised.

        Raises:
            ToolNotFound, InvalidArguments: before anything is sent.
            ConnectionLost, CallTimeout, ProtocolError, ConnectError: the call could not complete.
        """
        call = await self.prepare(name, arguments, validate=validate, timeout=timeout)

        async def terminal(c: ToolCall) -> CallResult:
            return await self.invoke(c, progress=progress)

        return await run_chain(interceptors, terminal)(call)

    async def call_checked(self, name: str, arguments: Mapping[str, Any] | None = None, **kwargs: Any) -> CallResult:
        """Like ``call``, but an ``isError`` result raises ``ToolError`` carrying the result."""
        result = await self.call(name, arguments, **kwargs)
        if result.is_error:
            raise ToolError(result.text or "the tool reported an error", result=result, server=self.name,
                            tool=result.tool)
        return result
