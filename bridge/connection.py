"""A framework-neutral connection: a session plus its always-current catalogue and calls.

``Connection`` is what every framework adapter builds on. It keeps the catalogue cached
and re-lists only when the session says it may have changed (tools/list_changed or a
reconnect). ``Connection.call`` is the one call path every adapter's tool goes through: look
the tool up, validate the arguments against its inputSchema, run the *interceptors* (audit,
approval, ...: small async functions each wrapping the next, so cross-cutting behaviour never
leaks into the session or the tool classes), send, and wrap the answer in a ``CallResult``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.shared.dispatcher import ProgressFnT

from .catalogue import Annotations, Catalogue, ToolEntry, safe_names, withhold_unreadable_names
from .decisions import Decision
from .errors import CatalogueDrift, InvalidArguments, ToolError
from .lock import LockGuard
from .options import ProgressListener
from .repair import SkippedTool
from .resources import Resources
from .results import CallResult
from .secrets import dataclass_repr, mask_data
from .session import ServerInfo, Session
from .steps import Step

__all__ = ["Connection", "Handler", "Interceptor", "Listing", "ListingCheck", "ToolCall", "find_after_relisting",
           "run_chain"]

logger = logging.getLogger("bridge.connection")

T = TypeVar("T")


@dataclass(frozen=True)
class ToolCall:
    """One call on its way to a server, as interceptors see it.

    ``tool`` is the name the agent used (safe, maybe prefixed); ``mcp_name`` is the wire name.
    ``arguments`` have already been validated against the tool's inputSchema. ``approval`` is the
    approval decision made so far: the caller's own (its framework asked a human already) on
    the way in, the approval gate's after it (passed on with ``dataclasses.replace``). ``step`` is
    the model's step that asked for the call (``bridge.steps.Step``), when the framework names it.
    ``request_meta`` goes to the server as the request's ``_meta`` (a W3C trace context, say).
    ``protocol_version`` and ``session_id`` say which session of the server the call goes to
    (the negotiated version; the HTTP ``Mcp-Session-Id``, when the server keeps one).
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
    approval: Decision | None = None
    step: Step | None = None
    request_meta: Mapping[str, Any] = field(default_factory=dict)
    protocol_version: str | None = None
    session_id: str | None = None

    def __repr__(self) -> str:
        # Interceptors log calls: the model's arguments may hold a copied secret or a credential.
        return dataclass_repr(dataclasses.replace(self, arguments=mask_data(self.arguments)))


Handler = Callable[[ToolCall], Awaitable[CallResult]]
"""Takes a call, returns its result (``is_error`` results are returned, not raised)."""

Interceptor = Callable[[ToolCall, Handler], Awaitable[CallResult]]
"""Wraps a handler: may inspect or change the call, answer it itself (e.g. a denial),
or pass it on by awaiting ``next(call)``."""


ListingCheck = Callable[[str, Sequence[types.Tool]], tuple[list[types.Tool], dict[str, str]]]
"""Vets a fresh listing (server name, tools) before it becomes the catalogue: returns the
tools to offer and the withheld ones with the reason, or raises (e.g. ``CatalogueDrift``).
``bridge.lock.LockGuard`` is one (built from ``Options.lock``)."""


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


@dataclass(frozen=True)
class Listing:
    """What the server says now, before any check: every listed tool, the handshake's
    instructions as sent, and the tools whose definitions were invalid. For reviewing a server
    (pinning it in a lock file, comparing it with one), never for a model: nothing here is vetted.
    """

    tools: tuple[types.Tool, ...]
    instructions: str | None
    skipped: tuple[SkippedTool, ...]


async def find_after_relisting(name: str, connections: Sequence[Connection],
                               find: Callable[[], Awaitable[T | None]]) -> T | None:
    """After a lookup of the tool ``name`` found nothing: ``find()`` again on fresh listings.

    A server may add a tool without announcing it; one fresh listing of every connection settles
    whether it did. ``None`` when the tool is not there after that either.

    Raises:
        CatalogueDrift: a check (a lock file) withheld the tool ``name``; says why.
    """
    for connection in connections:
        connection.invalidate()
    found = await find()
    if found is None:
        for connection in connections:
            connection.refuse_withheld(name)
    return found


class Connection:
    """A live server with its catalogue; framework adapters build tools on top of it.

    Everything about how it connects comes from ``session.options`` (prefix, truncation,
    progress listener, lock file).

    Args:
        session: the session to own (entered and closed with this connection).
        checks: further vetting of every fresh listing, run after the lock file's.
    """

    def __init__(self, session: Session, *, checks: Sequence[ListingCheck] = ()) -> None:
        self.session = session
        options = session.options
        self.options = options
        self.lock_guard: LockGuard | None = None
        """Vets listings and instructions against ``Options.lock`` (``None`` without a lock file)."""
        if options.lock:
            # The handshake's instructions are vetted with every listing: a reconnect, which may
            # bring new ones, is always followed by a fresh listing.
            self.lock_guard = LockGuard(options.lock, options.lock_policy,
                                        instructions=lambda: session.info.instructions)
        self.checks: list[ListingCheck] = [self.lock_guard] if self.lock_guard is not None else []
        self.checks.extend(checks)
        self.checks.append(withhold_unreadable_names)
        self.withheld: dict[str, str] = {}
        """Tools the checks withheld from the latest listing (MCP name -> reason)."""
        self._catalogue: Catalogue | None = None
        self._catalogue_version = -1
        self._list_lock = anyio.Lock()
        self.holdings = Resources()
        """What this connection's toolsets opened (audit stores), shared per key; closed with it."""
        self.list_seconds = 0.0
        """How long the last full tools/list walk took."""

    @property
    def prefix(self) -> str:
        return self.options.prefix

    @property
    def max_result_chars(self) -> int:
        return self.options.max_result_chars

    async def __aenter__(self) -> Connection:
        await self.session.__aenter__()
        try:
            await self.catalogue()
        except BaseException:
            await self.session.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            await self.session.__aexit__(exc_type, exc, tb)
        finally:
            await self.holdings.aclose()

    @property
    def name(self) -> str:
        """The server's label (config name, or derived from the command or URL)."""
        return self.session.name

    @property
    def info(self) -> ServerInfo:
        """The server's self-description (name, version, protocol, ``instructions``); its
        ``instructions`` are the vetted ones (see ``instructions``)."""
        info = self.session.info
        shown = self.instructions
        return info if shown == info.instructions else dataclasses.replace(info, instructions=shown)

    @property
    def instructions(self) -> str | None:
        """What the server asks its clients to tell the model (the handshake's ``instructions``).

        Under a lock file they are vetted like tools: instructions that changed since they were
        locked are withheld (``None``; ``instructions_withheld`` says why) unless the policy is
        ``"warn"``. The unreviewed text is never handed out here (``listing()`` has it raw).
        """
        return self._vetted_instructions()[0]

    @property
    def instructions_withheld(self) -> str | None:
        """Why the lock file withholds the server's instructions, or ``None`` when it does not."""
        return self._vetted_instructions()[1]

    async def listing(self) -> Listing:
        """A fresh ``tools/list`` (every page) and the handshake's instructions, unvetted.

        Raises:
            ProtocolError, CallTimeout: as ``Session.list_tools``.
        """
        tools = await self.session.list_tools()
        return Listing(tuple(tools), self.session.info.instructions, self.session.skipped_tools)

    def _vetted_instructions(self) -> tuple[str | None, str | None]:
        live = self.session.info.instructions
        if self.lock_guard is None:
            return live, None
        return self.lock_guard.vet_instructions(self.name, live)

    @property
    def current(self) -> Catalogue | None:
        """The cached catalogue when it is still current (no announced change), else ``None``."""
        if self._catalogue is not None and self._catalogue_version == self.session.tools_version:
            return self._catalogue
        return None

    async def catalogue(self) -> Catalogue:
        """The current catalogue, re-listed (all pages) if the server announced a change."""
        current = self.current
        if current is not None:
            return current
        async with self._list_lock:
            current = self.current
            if current is not None:
                return current
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

    def invalidate(self) -> None:
        """Forget the catalogue: the next look re-lists (a tool may have been added without notice)."""
        self._catalogue_version = -1

    def _accept(self, tools: list[types.Tool]) -> list[types.Tool]:
        """Vet a fresh listing before it becomes the catalogue: runs the checks in order.

        Raises:
            CatalogueDrift: a check refuses the server (e.g. a strict lock file check).
        """
        withheld: dict[str, str] = {}
        for check in self.checks:
            tools, refused = check(self.name, tools)
            withheld.update(refused)
        self.withheld = withheld
        return tools

    async def entry(self, name: str) -> ToolEntry:
        """The catalogue entry for ``name`` (MCP or safe name); re-lists once before giving up.

        Raises:
            ToolNotFound: with the closest names.
            CatalogueDrift: a check (lock file) withheld the tool; says why.
        """
        async def find() -> ToolEntry | None:
            return (await self.catalogue()).get(name)

        found = await find() or await find_after_relisting(name, [self], find)
        return found if found is not None else (await self.catalogue()).lookup(name)

    def refuse_withheld(self, name: str) -> None:
        """Raise ``CatalogueDrift`` saying why, when a check withheld the tool ``name``."""
        safe = safe_names(self.withheld, prefix=self.prefix)
        for mcp_name, reason in self.withheld.items():
            if name in (mcp_name, safe[mcp_name]):
                raise CatalogueDrift(f"withheld {reason}", server=self.name, tool=mcp_name)

    def prepare(self, entry: ToolEntry, arguments: Mapping[str, Any] | None = None, *, validate: bool = True,
                agent: str | None = None, call_id: str | None = None, timeout: float | None = None) -> ToolCall:
        """Validate the arguments against the entry's inputSchema and build the call.

        Raises:
            InvalidArguments: names the argument and the rule it breaks.
        """
        args = dict(arguments or {})
        if validate:
            try:
                entry.compiled.validate(args)
            except InvalidArguments as e:
                e.server, e.tool = self.name, entry.mcp_name
                raise
        session = self.session
        return ToolCall(server=self.name, tool=entry.name, mcp_name=entry.mcp_name, arguments=args,
                        annotations=entry.annotations, agent=agent, call_id=call_id, timeout=timeout,
                        protocol_version=session.protocol_version, session_id=session.session_id)

    async def send(self, call: ToolCall, *, interceptors: Sequence[Interceptor] = (),
                   progress: ProgressFnT | None = None) -> CallResult:
        """Run a prepared call through ``interceptors`` (outermost first) to the server.

        Args:
            progress: receives the server's progress reports (default: ``Options.on_progress``).
        """
        async def request(c: ToolCall) -> CallResult:
            reports = progress
            if reports is None and self.options.on_progress is not None:
                reports = _bind_progress(self.options.on_progress, c)
            started = time.perf_counter()
            raw = await self.session.call_tool(c.mcp_name, c.arguments, timeout=c.timeout, progress=reports,
                                               idempotent=c.annotations.effective_idempotent,
                                               meta=c.request_meta or None)
            return CallResult.from_mcp(raw, server=self.name, tool=c.mcp_name, duration=time.perf_counter() - started,
                                       max_chars=self.options.max_result_chars)

        return await run_chain(interceptors, request)(call)

    async def call(self, name: str | ToolEntry, arguments: Mapping[str, Any] | None = None, *,
                   agent: str | None = None, call_id: str | None = None, timeout: float | None = None,
                   validate: bool = True, progress: ProgressFnT | None = None,
                   interceptors: Sequence[Interceptor] = ()) -> CallResult:
        """Call a tool and return everything it sent back; an ``isError`` result is returned, not raised.

        The one call path: lookup, validation (``prepare``), ``interceptors`` (outermost first),
        the request, the result (``send``). Validation comes first, so approvers and the audit
        trail only ever see calls the server's schema accepts.

        Args:
            name: the MCP or agent-facing name, or a catalogue entry.
            agent: who is calling (approvals and audit records name it).
            call_id: the framework's id for this call, kept in audit records.
            timeout: seconds for this call (default ``Options.call_timeout``).
            validate: check the arguments against the inputSchema first.
            progress: receives the server's progress reports on this call.
            interceptors: wrappers around the request (see ``Guards.open``).

        Raises:
            ToolNotFound, InvalidArguments: before anything is sent.
            ConnectionLost, CallTimeout, ProtocolError, ConnectError: the call could not complete.
        """
        entry = name if isinstance(name, ToolEntry) else await self.entry(name)
        call = self.prepare(entry, arguments, validate=validate, agent=agent, call_id=call_id, timeout=timeout)
        return await self.send(call, interceptors=interceptors, progress=progress)

    async def call_checked(self, name: str | ToolEntry, arguments: Mapping[str, Any] | None = None,
                           **kwargs: Any) -> CallResult:
        """Like ``call``, but an ``isError`` result raises ``ToolError`` carrying the result."""
        result = await self.call(name, arguments, **kwargs)
        if result.is_error:
            raise ToolError(result.text or "the tool reported an error", result=result, server=self.name,
                            tool=result.tool)
        return result
