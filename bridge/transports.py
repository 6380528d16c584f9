"""Open the message streams for a target: stdio subprocess, Streamable HTTP or SSE.

``open_streams`` returns an async context manager yielding the ``(read, write)`` stream pair
an SDK session consumes; it owns whatever it opened (process, HTTP client) and releases it on
exit. Nothing here knows about MCP sessions. Every transport reports to a
``TransportObserver``: each message both ways, the end of the stream, which requests it
*knows* never reached the server (a 404 for a forgotten session, a refused connection, a
write to a closed pipe) and which the server refused for bad credentials (401/403). Only the
HTTP layer sees those statuses: the SDK turns them into generic JSON-RPC errors before
anything above it can tell them apart.

stdio is the bridge's own transport (``bridge.stdio``), which tells the observer itself; the
SDK's HTTP and SSE transports (and its stdio transport on Windows) are seen through a pair of
stream wrappers that do the telling.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TextIO

import anyio
import httpx2
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCRequest

from .options import DEFAULT_MAX_MESSAGE_BYTES
from .secrets import Secrets, known_secrets
from .stdio import TransportObserver, stdio_streams
from .targets import HttpTarget, StdioTarget, Target

__all__ = ["StderrCapture", "TransportObserver", "open_streams"]

_OWN_STDIO = sys.platform != "win32"
"""Whether stdio servers run on ``bridge.stdio``; on Windows the SDK's transport, whose Job
Objects stop a server's whole process tree there, serves instead."""

# Long enough for a server to hold a response stream open while a slow tool runs.
_SSE_READ_TIMEOUT = 600.0


# How much of the end of a child's stderr is searched for the lines that say why it failed.
_STDERR_WINDOW = 64 * 1024
_STDERR_LINE_MAX = 300
# Lines that look like a failure, in the words of common runtimes and tools (npm, Python, Node, Go).
_FAILURE_LINE = re.compile(
    r"\w*(?:error|exception)\b|\berr!|\bfatal\b|\bpanic\b|\bdenied\b|\brefused\b|\bforbidden\b"
    r"|\bunauthori[sz]ed\b|\bnot found\b|\bno such\b|\bcannot\b|\bcan't\b|\bcould not\b|\bfailed\b"
    r"|\binvalid\b|\bmissing\b",
    re.IGNORECASE)
# Lines that never say why: stack frames (indented), traceback headers, pointers to log files,
# and the boilerplate npm appends to every 404.
_NOISE_LINE = re.compile(
    r"^\s|^traceback \(most recent call last\)|^during handling of the above exception"
    r"|^the above exception was the direct cause|a complete log of this run can be found"
    r"|note that you can also install from a$|tarball, folder, http url, or git url\.?$|^node\.js v\d"
    r"|^(?:npm (?:error|err!)(?: \d{3})?|[\W_]*)$",
    re.IGNORECASE)


def _relevant_lines(text: str, lines: int = 5, limit: int = 2000) -> str:
    """The lines of a child's stderr that say why it failed, in the order written.

    Lines that look like errors win (when there are more than ``lines``, the first ones and the
    last one: the cause and the final word); without any, the last lines that are not noise
    (stack frames, traceback headers, "a complete log can be found in ..."). Repeated lines
    are kept once; each line is cut at 300 characters and the result at ``limit``. ``text`` must
    be masked already: these cuts could split a secret.
    """
    seen: set[str] = set()
    kept: list[str] = []
    for raw in text.splitlines():
        if raw.strip() and raw not in seen:
            seen.add(raw)
            kept.append(raw)
    signal = [line for line in kept if not _NOISE_LINE.search(line)]
    failures = [line for line in signal if _FAILURE_LINE.search(line)]
    if failures:
        chosen = failures if len(failures) <= lines else [*failures[:max(lines - 1, 0)], failures[-1]]
    else:
        chosen = (signal or kept)[-lines:] if lines > 0 else []
    clipped = [c.strip() if len(c.strip()) <= _STDERR_LINE_MAX else c.strip()[:_STDERR_LINE_MAX - 1] + "…"
               for c in chosen]
    return "\n".join(clipped)[:limit]


class StderrCapture:
    """A real file the child's stderr goes to, so a failed start can report why.

    The SDK needs a file with a descriptor (the child inherits it), so a spooled temp
    file on disk it is; it is closed with the connection. What ``tail`` returns is masked
    with ``secrets`` (default: every open session's, ``known_secrets``) before any cut.
    """

    def __init__(self, secrets: Secrets | None = None) -> None:
        self._file: TextIO = tempfile.TemporaryFile(  # noqa: SIM115 - lives as long as the connection
            mode="w+", encoding="utf-8", errors="replace")
        self._secrets = known_secrets if secrets is None else secrets

    @property
    def file(self) -> TextIO:
        return self._file

    def tail(self, lines: int = 5, limit: int = 2000) -> str:
        """The lines of the stderr written so far that say why the server failed (see
        ``_relevant_lines``): at most ``lines`` lines and ``limit`` characters, newline-separated,
        secrets masked."""
        try:
            self._file.flush()
            size = self._file.seek(0, 2)
            # Read a secret's length more than the window: a secret straddling the window's start
            # is then read whole, masked, and kept; one cut by the read itself lies in the margin.
            margin = self._secrets.longest
            start = max(0, size - _STDERR_WINDOW - margin)
            self._file.seek(start)
            text = self._file.read()
        except (OSError, ValueError):
            return ""
        return _relevant_lines(self._secrets(text[self._window_start(text, start, margin):]), lines, limit)

    def _window_start(self, text: str, start: int, margin: int) -> int:
        """Where the window begins in ``text`` (read from file offset ``start``): never inside a secret."""
        if start == 0:
            return 0
        cut = max(margin, len(text) - _STDERR_WINDOW)
        for begin, end in self._secrets.spans(text):
            if begin < cut < end:
                return begin
        return cut

    def close(self) -> None:
        self._file.close()


class _Observed(httpx2.AsyncBaseTransport):
    """An HTTP transport that tells a ``TransportObserver`` about POSTed JSON-RPC requests.

    Rejected (never processed), with certainty: the TCP connection could not be opened, or
    the server answered 404 to a request carrying an ``Mcp-Session-Id`` (it forgot the
    session, e.g. after a restart, so it dispatched nothing). Anything else (a reset
    mid-response, a timeout) may have run and is not reported. Refused: 401 or 403.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport, observer: TransportObserver) -> None:
        self._inner = inner
        self._observer = observer

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as e:
            if (request_id := _request_id(request)) is not None:
                self._observer.reject(request_id, f"the server is not accepting connections ({type(e).__name__})")
            raise
        status = response.status_code
        if session_id := response.headers.get("mcp-session-id"):
            self._observer.session(session_id)
        if status in (401, 403) or (status == 404 and request.headers.get("mcp-session-id")):
            request_id = _request_id(request)
            if request_id is not None and status == 404:
                self._observer.reject(request_id, "the server no longer knows this session (HTTP 404)")
            elif request_id is not None:
                # An httpx Auth flow (OAuth) may still retry with a token; the observer only
                # matters if the request then fails.
                self._observer.refuse(request_id, status)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _request_id(request: httpx2.Request) -> Any:
    """The JSON-RPC id of a POSTed request, or None (a GET stream, a notification)."""
    if request.method != "POST":
        return None
    try:
        body = json.loads(request.content)
    except (ValueError, httpx2.RequestNotRead):
        return None
    return body.get("id") if isinstance(body, dict) and "method" in body else None


def _http_client_factory(observer: TransportObserver) -> Callable[..., httpx2.AsyncClient]:
    """Builds clients like the SDK's ``create_mcp_http_client``, observed."""

    def factory(headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
                auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
        inner = httpx2.AsyncHTTPTransport()
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, transport=_Observed(inner, observer))

    return factory


@asynccontextmanager
async def _http_streams(target: HttpTarget, timeout: float, observer: TransportObserver
                        ) -> AsyncIterator[TransportStreams]:
    headers = dict(target.headers)
    factory = _http_client_factory(observer)
    if target.transport == "sse":
        async with sse_client(target.url, headers=headers, timeout=timeout, sse_read_timeout=_SSE_READ_TIMEOUT,
                              httpx_client_factory=factory, auth=target.auth) as streams:
            yield streams
        return
    client = factory(headers=headers, timeout=httpx2.Timeout(timeout, read=_SSE_READ_TIMEOUT), auth=target.auth)
    async with client, streamable_http_client(target.url, http_client=client) as streams:
        yield streams


@asynccontextmanager
async def _observed(streams: AbstractAsyncContextManager[Any], observer: TransportObserver) -> AsyncIterator[Any]:
    async with streams as (read, write):
        yield _ObservedRead(read, observer), _ObservedWrite(write, observer)


def open_streams(target: Target, *, timeout: float, grace: float, observer: TransportObserver,
                 stderr: StderrCapture | None = None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
                 ) -> AbstractAsyncContextManager[Any]:
    """An async context manager yielding ``(read, write)`` for ``target``, reporting to ``observer``.

    ``timeout`` bounds HTTP connects and writes; ``stderr`` receives a stdio child's stderr;
    ``grace`` is how long a stdio server gets to exit by itself once its stdin is closed;
    ``max_message_bytes`` caps one message from a stdio server (``bridge.stdio``).
    """
    if isinstance(target, StdioTarget):
        errlog = stderr.file if stderr is not None else sys.stderr
        if not _OWN_STDIO:
            return _observed(_sdk_stdio(target, errlog), observer)
        return stdio_streams(target, stderr=errlog, observer=observer, grace=grace,
                             max_message_bytes=max_message_bytes)
    return _observed(_http_streams(target, timeout, observer), observer)


def _sdk_stdio(target: StdioTarget, errlog: TextIO) -> AbstractAsyncContextManager[Any]:
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=target.command, args=list(target.args), env=dict(target.env) or None,
                                   cwd=target.cwd)
    return stdio_client(params, errlog=errlog)


class _ObservedStream:
    """One of an SDK transport's streams, seen through the observer (the rest passes through)."""

    def __init__(self, inner: Any, observer: TransportObserver) -> None:
        self._inner = inner
        self._observer = observer

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        # ``last_context`` (the per-message context the SDK's dispatcher asks an HTTP stream
        # for) and anything else it duck-types on.
        return getattr(self._inner, name)


class _ObservedRead(_ObservedStream):
    """An SDK transport's read stream, reporting each message and its end to the observer."""

    async def receive(self) -> SessionMessage | Exception:
        try:
            item: SessionMessage | Exception = await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._observer.end()
            raise
        return self._observer.received(item)

    def __aiter__(self) -> _ObservedRead:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None


class _ObservedWrite(_ObservedStream):
    """An SDK transport's write stream, reporting each message, and a request it could not send."""

    async def send(self, item: SessionMessage) -> None:
        self._observer.sending(item.message)
        try:
            await self._inner.send(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            if isinstance(item.message, JSONRPCRequest):
                self._observer.reject(item.message.id, "the connection was already closed")
            raise
