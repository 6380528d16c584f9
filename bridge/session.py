"""One persistent MCP session per server: connect, reconnect, list, call.

``Session`` owns the connection. A background task (one per *generation*: each
reconnect starts a new one) enters the SDK ``Client`` and keeps it open until told to
stop, so the transport's task groups are entered and left in the same task. Requests
are made from the caller's task on the shared ``ClientSession``, which multiplexes them:
many calls really run in parallel on one session.

A generation dies when its transport reaches EOF (a stdio server exited) or a request
fails with ``ConnectionLost``; the next request then reconnects (respawn, re-initialise)
with bounded, backed-off attempts. A request is only re-sent after a reconnect when it
cannot have run twice: it never reached the server, or the caller says it is idempotent.

Both protocol eras are handled by the SDK's ``mode="auto"`` negotiation; tools/list_changed
arrives as a legacy notification or through a 2026-07-28 ``subscriptions/listen`` stream,
and either way bumps ``tools_version``; resources and prompts changes arrive the same two ways
and go to ``notification_listeners`` (``bridge.published`` keeps its listings current with them).

A listing is bounded as its pages arrive: a repeated cursor, more than 10,000 pages, or more
tools or bytes than ``Options.max_listing_tools``/``max_listing_bytes`` is a ``ProtocolError``
naming the server and what was read, never a silently partial catalogue.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
from mcp import Client
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.subscriptions import ToolsListChanged, event_to_notification
from mcp_types import INTERNAL_ERROR
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .callbacks import for_server
from .errors import (
    AuthError,
    BridgeError,
    CallTimeout,
    ConnectError,
    ConnectionLost,
    ProtocolError,
    ServerStartError,
    translate,
)
from .options import ClientCallbacks, Options, byte_size
from .repair import SkippedTool
from .sanitize import one_line
from .secrets import dataclass_repr, log_mask
from .targets import StdioTarget, Target
from .task_calls import (
    TaskRun,
    TasksExtension,
    TaskState,
    cancel_task,
    create_task,
    current_run,
    offers_tool_tasks,
    task_wanted,
)
from .tasks import Held
from .transports import StderrCapture, open_streams
from .wire import Wire, WireReport, requests_sent

__all__ = ["ServerInfo", "Session"]

logger = logging.getLogger("bridge.session")

# A paginator that never ends must not hang discovery; no real catalogue comes near this.
_MAX_PAGES = 10_000
# Teardown of a generation (close stdin, TERM, KILL) gets this long before we move on.
_CLOSE_TIMEOUT = 10.0


def _client_info() -> types.Implementation:
    """Who the bridge tells servers it is (``clientInfo``), so operators can tell it apart in their logs."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("autogen-mcp-bridge")
    except PackageNotFoundError:  # run from a source tree that was never installed
        installed = "0.0.0"
    return types.Implementation(name="autogen-mcp-bridge", title="mcp-bridge", version=installed)


CLIENT_INFO = _client_info()


@dataclass(frozen=True)
class ServerInfo:
    """Who answered: the server's self-description and the negotiated protocol.

    ``label`` is the user's name for the connection (``Session.name``); everything else is what
    the server said about itself (``name`` is its ``serverInfo.name``, a claim, not an identity).
    """

    name: str
    version: str
    protocol_version: str
    transport: str
    title: str | None = None
    instructions: str | None = None
    capabilities: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    __repr__ = dataclass_repr  # the server's instructions may quote a secret a session knows


def _auth_error(status: int, server: str) -> AuthError:
    # Same wording as translate's, which sees the status only when the SDK lets it through (SSE).
    return AuthError(f"authentication refused (HTTP {status}); check the Authorization/API-key header",
                     server=server)


class _Generation:
    """One live connection: the SDK client, its wire, the child's stderr, and the tasks that watch it.

    Everything it opened is released when ``open()``'s context is left; the session holds that
    context with a ``Held`` task, so one task enters and leaves the client's task groups.

    Args:
        number: which connection of its session this is (1 for the first, then each reconnect).
        name: the session's name for the server (log messages, the elicitation prompt).
        target, options, callbacks: where the server is, how to connect, what answers its requests.
        opened: told the client once the handshake is done, before any request is made on it.
        tools_changed: told of every tools/list_changed, by notification or ``subscriptions/listen``.
        notified: told of every resources or prompts change, by notification or ``subscriptions/listen``.
    """

    def __init__(self, number: int, name: str, target: Target, options: Options, callbacks: ClientCallbacks, *,
                 opened: Callable[[Client], None], tools_changed: Callable[[], None],
                 notified: Callable[[object], None] = lambda message: None) -> None:
        self.number = number
        self.name = name
        self.target = target
        self.options = options
        self.callbacks = callbacks
        self.opened = opened
        self.tools_changed = tools_changed
        self.notified = notified
        self.client: Client | None = None
        self.wire = Wire(name, lambda: self.client.protocol_version if self.client is not None else None)
        self.stderr = StderrCapture() if isinstance(target, StdioTarget) else None
        self.held: Held[Client] = Held(self.open(), name=f"{name}#{number}")
        self.broken = False

    @property
    def alive(self) -> bool:
        # Plain flags, not events: asked before every request.
        return not self.broken and not self.wire.ended and self.client is not None

    def close(self) -> None:
        """Stop taking requests and ask the owning task to leave the client (returns at once)."""
        self.broken = True
        self.held.close()

    def stderr_tail(self, lines: int = 5) -> str:
        return self.stderr.tail(lines=lines) if self.stderr is not None else ""

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Client]:
        options = self.options
        callbacks = self.callbacks
        name = self.name
        streams = open_streams(self.target, timeout=options.timeout, grace=options.exit_grace, observer=self.wire,
                               stderr=self.stderr, max_message_bytes=options.max_message_bytes)
        client = Client(
            streams,  # type: ignore[arg-type]
            mode=options.mode,
            read_timeout_seconds=options.timeout,
            cache=None,  # the catalogue is our cache; the SDK's would serve stale pages
            client_info=CLIENT_INFO,
            extensions=[TasksExtension()],  # a 2026 server may answer any call with a task
            message_handler=self._on_message,
            sampling_callback=callbacks.sampling,
            # The callback learns which server asks, by the user's name for it (its prompt says so).
            elicitation_callback=(for_server(callbacks.elicitation, lambda: name)
                                  if callbacks.elicitation is not None else None),
            list_roots_callback=callbacks.list_roots,
            logging_callback=callbacks.logging,
        )
        try:
            async with client, anyio.create_task_group() as tasks:
                self.client = client
                self.opened(client)
                if _wants_listen(client):
                    tasks.start_soon(self._listen, client)
                tasks.start_soon(self._watch_eof)
                try:
                    yield client
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            self.broken = True

    def dispose(self) -> None:
        """Release what outlives the connection itself: the stderr file a failure may still quote."""
        if self.stderr is not None:
            self.stderr.close()

    async def _watch_eof(self) -> None:
        await self.wire.eof.wait()
        if self.wire.lost_reason is None:  # else the wire has said why, louder
            logger.info("server %s closed its connection", self.name)
        self.broken = True
        # Leave the client open until a reconnect or exit stops it: in-flight calls get
        # the SDK's own "connection closed" answer rather than a cancellation.

    async def _listen(self, client: Client) -> None:
        try:
            wanted = _listen_filter(client)
            async with client.listen(tools_list_changed=wanted["tools_list_changed"],
                                     resources_list_changed=wanted["resources_list_changed"],
                                     prompts_list_changed=wanted["prompts_list_changed"]) as sub:
                async for event in sub:
                    if isinstance(event, ToolsListChanged):
                        self.tools_changed()
                    else:
                        self.notified(event_to_notification(event, {}))
        except (ListenNotSupportedError, SubscriptionLost, TimeoutError) as e:
            logger.debug("tools/list_changed stream for %s ended: %r", self.name, e)
        except Exception as e:
            logger.debug("tools/list_changed stream for %s failed: %r", self.name, e)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.tools_changed()
        elif isinstance(message, _CONTENT_CHANGES):
            self.notified(message)
        elif isinstance(message, Exception):
            logger.debug("transport error from %s: %r", self.name, message)


_CONTENT_CHANGES = (types.ResourceListChangedNotification, types.ResourceUpdatedNotification,
                    types.PromptListChangedNotification)


def _listen_filter(client: Client) -> dict[str, bool]:
    """What a 2026-07-28 ``subscriptions/listen`` asks for: each list change the server can announce."""
    caps = client.server_capabilities
    return {"tools_list_changed": bool(caps.tools and caps.tools.list_changed),
            "resources_list_changed": bool(caps.resources and caps.resources.list_changed),
            "prompts_list_changed": bool(caps.prompts and caps.prompts.list_changed)}


def _wants_listen(client: Client) -> bool:
    if client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    return any(_listen_filter(client).values())


class Session:
    """A persistent, self-healing MCP session with one server.

    Use as an async context manager; everything it started is stopped on exit, also on
    error, cancellation or Ctrl-C.

    Args:
        target: where the server is.
        options: timeouts, protocol mode, reconnection and callbacks (``Options``).
    """

    def __init__(self, target: Target, options: Options | None = None) -> None:
        self.target = target
        self.options = options or Options()
        self.name = target.label
        """The user's name for the server (``name=``, the config key, or from the target); never
        the server's own ``serverInfo`` claim, which ``info`` keeps."""
        guard = self.options.server_requests
        self.callbacks = guard.bind(self.name, self.options.callbacks) if guard is not None else self.options.callbacks
        """``Options.callbacks`` wrapped by ``Options.server_requests`` for this connection (one
        budget for its whole life, reconnects included)."""
        self.tools_version = 0
        """Bumped on every reconnect and every tools/list_changed: a catalogue built at an
        older version is stale."""
        self._tools_changed = anyio.Event()
        self.notification_listeners: list[Callable[[object], None]] = []
        """Told of every resources/prompts list_changed and resources/updated the server sends
        (``bridge.published.Published`` keeps its listings current with them)."""
        self._gen: _Generation | None = None
        self._generations = 0
        self._tg: anyio.abc.TaskGroup | None = None
        self._lock = anyio.Lock()
        self._closing = False
        self._info: ServerInfo | None = None
        self._listing: Sequence[types.Tool] = ()
        self._secrets = tuple(target.secret_values())
        self.skipped_tools: tuple[SkippedTool, ...] = ()
        """Tools the last listing left out because their definitions are invalid."""
        self.running_tasks: dict[str, TaskState] = {}
        """MCP tasks this session's calls are waiting for, by task id (see ``bridge.task_calls``)."""
        self._task_tools: dict[str, types.Tool] = {}

    @property
    def timeout(self) -> float:
        return self.options.timeout

    @property
    def call_timeout(self) -> float:
        return self.options.call_timeout

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Session:
        log_mask.add(self._secrets)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            self._gen = await self._open_generation()
        except BaseException as exc:
            await self._shutdown(exc)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        await self._shutdown(exc)

    async def _shutdown(self, exc: BaseException | None) -> None:
        self._closing = True
        tg, self._tg = self._tg, None
        if tg is None:
            return
        if self._gen is not None:
            self._gen.close()
        # Give the generation task a bounded, cancellation-proof window to close the
        # process or HTTP session politely; then cancel whatever is left.
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
            if self._gen is not None:
                await self._gen.held.closed.wait()
        tg.cancel_scope.cancel()
        # Exited directly (never inside another scope, or anyio's scope stack breaks); its
        # children are cancelled and their own teardown is bounded, so this cannot hang.
        try:
            await tg.__aexit__(None, None, None)
        except Exception as e:  # teardown noise must not mask the caller's error
            logger.debug("error while closing %s: %r", self.name, e)
        if self._gen is not None:
            self._gen.dispose()
        log_mask.remove(self._secrets)

    async def _open_generation(self) -> _Generation:
        assert self._tg is not None
        self._generations += 1
        gen = _Generation(self._generations, self.name, self.target, self.options, self.callbacks,
                          opened=self._opened, tools_changed=self._mark_tools_changed, notified=self._notified)
        try:
            with anyio.fail_after(self.timeout):
                await self._tg.start(gen.held.run)
        except BaseException as exc:
            gen.close()
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                gen.dispose()
                raise
            error = self._start_error(exc, gen)
            gen.dispose()
            raise error from exc
        self.tools_version += 1
        return gen

    def _start_error(self, exc: BaseException, gen: _Generation) -> BridgeError:
        refused = gen.wire.refused()
        if refused is not None:
            return _auth_error(refused, self.name)
        if gen.wire.lost_reason is not None:
            return ConnectError(gen.wire.lost_reason, server=self.name)
        err = translate(exc, server=self.name, timeout=self.timeout, connecting=True)
        if gen.stderr is not None:
            tail = gen.stderr_tail(lines=3)
            if isinstance(err, ServerStartError) and not err.stderr_tail:
                err = ServerStartError(err.detail, server=self.name, stderr_tail=tail)
            elif isinstance(err, ConnectError) and not isinstance(err, ServerStartError):
                err = ServerStartError("the server process exited while starting", server=self.name,
                                       stderr_tail=tail)
            elif tail and not isinstance(err, ConnectError):
                # e.g. a timeout while starting: the stderr tail usually says why.
                err.detail = f"{err.detail} (stderr: {' | '.join(tail.splitlines())})"
        return err.redact(self._secrets)

    def _opened(self, client: Client) -> None:
        self._info = self._read_info(client)
        if self._listing:
            # A new client knows no tools: without this, a call re-sent right after a reconnect
            # makes the SDK re-list page one and warn that it cannot validate the result.
            _absorb(client, self._listing)

    def _mark_tools_changed(self) -> None:
        self.tools_version += 1
        self._tools_changed.set()
        self._tools_changed = anyio.Event()

    def _notified(self, message: object) -> None:
        for listener in self.notification_listeners:
            listener(message)

    async def wait_tools_changed(self) -> None:
        """Block until the next tools/list_changed (or reconnect)."""
        await self._tools_changed.wait()

    def _read_info(self, client: Client) -> ServerInfo:
        # The server's name is kept as its claim only: a label it could choose would let it take
        # the name of a server the user trusts (its approval rules, its audit records).
        info = client.server_info
        caps = client.server_capabilities.model_dump(by_alias=True, mode="json", exclude_none=True)
        return ServerInfo(
            label=self.name,
            name=info.name if info else "",
            version=(info.version if info else "") or "",
            protocol_version=client.protocol_version,
            transport=self.target.transport,
            title=info.title if info else None,
            instructions=client.instructions,
            capabilities=caps,
        )

    @property
    def protocol_version(self) -> str | None:
        """The protocol version the latest handshake negotiated (None before the first)."""
        return self._info.protocol_version if self._info is not None else None

    @property
    def session_id(self) -> str | None:
        """The session the server keeps for this connection (HTTP ``Mcp-Session-Id``), if it named one."""
        return self._gen.wire.session_id if self._gen is not None else None

    @property
    def info(self) -> ServerInfo:
        """The server's self-description from the latest handshake."""
        if self._info is None:
            raise ConnectError("not connected; use 'async with'", server=self.name)
        return self._info

    # -- requests --------------------------------------------------------------------

    async def _live(self) -> _Generation:
        gen = self._gen
        if gen is not None and gen.alive:
            return gen
        async with self._lock:
            gen = self._gen
            if gen is not None and gen.alive:
                return gen
            if self._closing or self._tg is None:
                raise ConnectionLost("the session is closed", server=self.name)
            if gen is not None:
                gen.close()
            attempts = self.options.reconnect_attempts
            if attempts <= 0:
                raise ConnectionLost("the server connection ended and reconnection is disabled", server=self.name)
            last: BridgeError | None = None
            for attempt in range(attempts):
                if attempt:
                    await anyio.sleep(self.options.reconnect_backoff * math.pow(2, attempt - 1))
                try:
                    self._gen = await self._open_generation()
                    if gen is not None:
                        gen.dispose()
                    logger.info("reconnected to %s (generation %d)", self.name, self._gen.number)
                    return self._gen
                except BridgeError as e:
                    last = e
                    logger.info("reconnect %d/%d to %s failed: %s", attempt + 1, attempts,
                                self.name, e.detail)
            assert last is not None
            raise ConnectError(f"gave up after {attempts} reconnect attempts: {last.detail}",
                               server=self.name)

    async def request(self, op: Callable[..., Awaitable[Any]], *args: Any, tool: str | None = None,
                      timeout: float | None = None, retry: bool = False) -> Any:
        """Run ``op(client, *args)`` on the live session, reconnecting first if it died.

        A request is sent a second time, on a fresh connection, only when that cannot run
        it twice: the transport proved it never reached the server (HTTP 404 for a
        forgotten session, a refused connection), or ``retry`` says it is safe to repeat
        (listing, an idempotent or read-only tool) and the connection died under it.

        Raises:
            ConnectionLost: the connection died during the request and it was not re-sent.
            ConnectError: the connection was dead and could not be re-established.
            CallTimeout, ProtocolError: translated from what the SDK or transport raised.
        """
        for attempt in (0, 1):
            gen = self._gen
            if gen is None or not gen.alive:
                gen = await self._live()
            malformed = gen.wire.malformed
            sent: list[Any] = []
            tracking = requests_sent.set(sent)
            try:
                return await op(gen.client, *args)
            except Exception as exc:
                failure = exc
            finally:
                requests_sent.reset(tracking)
            report = gen.wire.report(sent, malformed_before=malformed)
            error = self._request_error(failure, report, gen, tool, timeout)
            if not isinstance(error, ConnectionLost):
                raise error from failure
            gen.broken = True
            # Re-sent only when that cannot run it twice; never after a deliberate close, whose
            # cause (e.g. an answer past a bound) the request would meet again.
            if attempt == 0 and report.lost_reason is None and (report.never_arrived or retry):
                logger.info("%s; re-sending on a new connection", error)
                continue
            raise error from failure
        raise AssertionError("unreachable")

    def _request_error(self, failure: Exception, report: WireReport, gen: _Generation, tool: str | None,
                       timeout: float | None) -> BridgeError:
        """The error a failed request raises, from what it raised and what its wire saw.

        A ``ConnectionLost`` means the generation is gone (the next request reconnects).
        """
        if report.refused is not None:
            return _auth_error(report.refused, self.name)
        error = translate(failure, server=self.name, tool=tool, timeout=timeout, secrets=self._secrets)
        if report.lost_reason is not None:
            then = ("; the next request reconnects" if self.options.reconnect_attempts > 0
                    else "; reconnection is disabled")
            return ConnectionLost(report.lost_reason + then, server=self.name, tool=tool)
        if report.never_arrived:
            detail = f"the request did not reach the server: {report.never_arrived}"
        elif isinstance(error, ConnectionLost):
            detail = error.detail
        elif report.ended:
            detail = f"the server went away during the request ({error.detail})"
        elif isinstance(error, CallTimeout) and report.malformed:
            # The answer may have been among them: say so rather than just "no answer".
            return CallTimeout(f"{error.detail}; meanwhile the server sent {report.malformed} message(s) that are "
                               f"not valid JSON-RPC (last: {report.last_malformed})", timeout=error.timeout,
                               server=self.name, tool=tool).redact(self._secrets)
        else:
            return error
        # A dying process often says why on its way out.
        last = gen.stderr_tail(lines=1) if report.ended else ""
        if last:
            detail += f"; the server process exited (stderr: {last})"
        return ConnectionLost(detail, server=self.name, tool=tool).redact(self._secrets)

    async def list_tools(self) -> list[types.Tool]:
        """Every tool, following ``nextCursor`` to the last page.

        Tools whose definitions the SDK rejects are left out (the rest of the listing is
        kept) and recorded in ``skipped_tools``.

        Raises:
            ProtocolError: the pages never end (a cursor repeats, or more than 10,000 pages), or
                hold more tools or bytes than ``Options.max_listing_tools``/``max_listing_bytes``.
            CallTimeout: the listing did not finish within ``Options.timeout`` (says how far it got).
        """
        skipped: list[SkippedTool] = []

        async def op(client: Client) -> list[types.Tool]:
            wire = self._gen.wire if self._gen is not None else None
            if wire is not None:
                wire.skipped_tools.clear()
                wire.listing_bytes = 0
            walk = _Walk(self.name, self.options)
            tools: list[types.Tool] = []
            cursor: str | None = None
            try:
                with anyio.fail_after(self.timeout):
                    while True:
                        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
                        walk.read(page, wire.listing_bytes if wire is not None else 0)
                        tools.extend(page.tools)
                        cursor = page.next_cursor
                        if cursor is None:
                            break
                        walk.follow(cursor)
            except TimeoutError:
                if not walk.pages:
                    raise  # nothing answered at all: the ordinary "no answer" says it best
                raise CallTimeout(f"tools/list did not finish within {self.timeout:g}s (read {walk.so_far()}, and "
                                  "the listing had not ended)", timeout=self.timeout, server=self.name) from None
            if wire is not None:
                skipped[:] = wire.skipped_tools
            _absorb(client, tools)
            return tools

        version = self.tools_version
        tools: list[types.Tool] = await self.request(op, timeout=self.timeout, retry=True)
        self.skipped_tools = tuple(skipped)
        self._listing = tuple(tools)
        self._task_tools = {t.name: t for t in tools if t.execution is not None and t.execution.task_support}
        if self.tools_version != version:
            logger.debug("catalogue of %s changed while listing", self.name)
        return tools

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None, *, timeout: float | None = None,
                        progress: ProgressFnT | None = None, idempotent: bool = False,
                        meta: Mapping[str, Any] | None = None) -> types.CallToolResult:
        """Send ``tools/call`` and return the SDK result (``is_error`` results are returned, not raised).

        ``idempotent``: the tool may run twice, so a call cut off by a lost connection is re-sent.
        ``meta``: the request's ``_meta`` (a W3C trace context, say).

        A call that runs as an MCP task (``bridge.task_calls``: a task-only tool, an opted-in
        ``Options.task_tools`` one, or a 2026-07-28 server's choice) is followed to its end within
        ``timeout``; its status changes reach ``progress``, and a connection lost meanwhile is
        re-established and the same task polled again (never a second ``tools/call``).
        """
        seconds = timeout if timeout is not None else self.options.call_timeout
        sent = types.RequestParamsMeta(**dict(meta)) if meta else None  # type: ignore[typeddict-item]
        run = TaskRun(self.name, name, timeout=seconds, request_timeout=self.timeout, progress=progress,
                      cancel=self.options.cancel_tasks, running=self.running_tasks)

        async def op(client: Client) -> types.CallToolResult:
            if run.state is not None:  # the connection dropped while the task ran: follow it, never call again
                return await run.follow(client.session)
            tool = self._task_tools.get(name)  # only tools that declare task support are in it
            if tool is not None and client.protocol_version not in MODERN_PROTOCOL_VERSIONS and task_wanted(
                    tool, self.options.task_tools, offers_tool_tasks(client.server_capabilities)):
                return await create_task(client.session, run, name, arguments or {}, meta)
            token = current_run.set(run)  # a 2026 server answering with a task hands it to this run
            try:
                return await client.call_tool(name, dict(arguments or {}), seconds, progress, meta=sent)
            finally:
                current_run.reset(token)

        resumed = 0
        while True:
            try:
                result: types.CallToolResult = await self.request(op, tool=name, timeout=seconds, retry=idempotent)
                return result
            except ConnectionLost:
                if run.state is None or run.state.done or resumed >= self.options.reconnect_attempts:
                    raise
                resumed += 1
                logger.info("connection to %s lost while %s ran; resuming it", self.name, run.state.describe())


    async def follow_task(self, task_id: str, *, timeout: float | None = None,
                          progress: ProgressFnT | None = None) -> types.CallToolResult:
        """Poll a task by its id until it ends and return its result: a call that an interrupt, a
        timeout or a lost process left running on the server, resumed.

        Raises:
            ProtocolError: the server does not know the task (or it was cancelled, or failed).
            CallTimeout: it did not end within ``timeout`` (default ``Options.call_timeout``) or its TTL.
        """
        seconds = timeout if timeout is not None else self.options.call_timeout
        run = TaskRun(self.name, None, timeout=seconds, request_timeout=self.timeout, progress=progress,
                      cancel=self.options.cancel_tasks, running=self.running_tasks)

        async def op(client: Client) -> types.CallToolResult:
            if run.state is None:
                return await run.resume(client.session, task_id)
            return await run.follow(client.session)

        result: types.CallToolResult = await self.request(op, timeout=seconds, retry=True)  # polling repeats safely
        return result

    async def cancel_task(self, task_id: str) -> None:
        """Ask the server to cancel the task ``task_id`` (``tasks/cancel``; the server may still finish it).

        Raises:
            ProtocolError: the server does not know the task.
        """
        async def op(client: Client) -> None:
            await cancel_task(client.session, task_id, timeout=self.timeout)

        await self.request(op, timeout=self.timeout, retry=True)
        self.running_tasks.pop(task_id, None)


class _Walk:
    """The bounds of one walk through ``tools/list``'s pages, checked as each page arrives."""

    def __init__(self, server: str, options: Options) -> None:
        self.server = server
        self.max_tools = options.max_listing_tools
        self.max_bytes = options.max_listing_bytes
        self.pages = 0
        self.tools = 0
        self.bytes = 0
        self.cursors: set[str] = set()

    def so_far(self) -> str:
        size = f", {byte_size(self.bytes)}" if self.bytes else ""
        return f"{_count(self.pages, 'page')} with {_count(self.tools, 'tool')}{size}"

    def _error(self, detail: str) -> ProtocolError:
        return ProtocolError(detail, code=INTERNAL_ERROR, server=self.server)

    def read(self, page: types.ListToolsResult, total_bytes: int) -> None:
        """Count a page (``total_bytes``: every answer of this listing so far, when the wire knows)."""
        self.pages += 1
        self.tools += len(page.tools)
        self.bytes = total_bytes
        if self.tools > self.max_tools:
            raise self._error(f"tools/list offers more than {self.max_tools:,} tools (read {self.so_far()}); "
                              "raise Options.max_listing_tools if the server really has that many")
        if self.bytes > self.max_bytes:
            raise self._error(f"tools/list answers exceed {byte_size(self.max_bytes)} (read {self.so_far()}); "
                              "raise Options.max_listing_bytes if the server's catalogue really is that large")

    def follow(self, cursor: str) -> None:
        """Check the next page's cursor before it is asked for."""
        if cursor in self.cursors:
            shown = one_line(cursor[:80]) + ("..." if len(cursor) > 80 else "")
            raise self._error(f"tools/list pages run in a circle: the cursor '{shown}' came back after "
                              f"{self.so_far()}, so the catalogue would never be complete")
        if self.pages >= _MAX_PAGES:
            raise self._error(f"tools/list did not end after {self.so_far()}: the server keeps sending a nextCursor")
        self.cursors.add(cursor)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _absorb(client: Client, tools: Sequence[types.Tool]) -> None:
    """Tell the SDK client the whole listing, as if it had been one page.

    The SDK keeps per-tool state (output schemas to validate results against, 2026 header maps)
    from listings it saw itself, and only prunes it on a single-page answer. Our listing walks
    every page and survives reconnects; without this the SDK would re-list page one on a call
    to any tool it has not seen, and warn that it cannot validate the result.
    """
    absorb = getattr(client.session, "_absorb_tool_listing", None)
    if absorb is not None:
        absorb(types.ListToolsResult(tools=list(tools)), complete=True)
