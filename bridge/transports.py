"""Open the byte streams for a target: stdio subprocess, Streamable HTTP or SSE.

Each function returns an async context manager yielding the SDK's ``(read, write)``
stream pair; it owns whatever it opened (process, HTTP client) and releases it on exit.
Nothing here knows about MCP sessions; the one thing a transport tells its caller besides
the streams is which requests it *knows* never reached the server (``on_rejected``), since
only the HTTP layer can see a 404 for a forgotten session or a refused connection.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TextIO

import httpx2
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from .targets import HttpTarget, StdioTarget, Target

__all__ = ["OnRejected", "StderrCapture", "open_streams"]

OnRejected = Callable[[Any, str], None]
"""Called with a JSON-RPC request id and a reason when that request provably never reached
the server, so re-sending it cannot run it twice."""

# Long enough for a server to hold a response stream open while a slow tool runs.
_SSE_READ_TIMEOUT = 600.0


class StderrCapture:
    """A real file the child's stderr goes to, so a failed start can report its last lines.

    The SDK needs a file with a descriptor (the child inherits it), so a spooled temp
    file on disk it is; it is closed with the connection.
    """

    def __init__(self) -> None:
        self._file: TextIO = tempfile.TemporaryFile(  # noqa: SIM115 - lives as long as the connection
            mode="w+", encoding="utf-8", errors="replace")

    @property
    def file(self) -> TextIO:
        return self._file

    def tail(self, lines: int = 5, limit: int = 2000) -> str:
        """The last ``lines`` lines written so far (at most ``limit`` characters)."""
        try:
            self._file.flush()
            size = self._file.seek(0, 2)
            self._file.seek(max(0, size - limit))
            text = self._file.read()
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def close(self) -> None:
        self._file.close()


class _RejectionWatch(httpx2.AsyncBaseTransport):
    """An HTTP transport that reports POSTed JSON-RPC requests the server never processed.

    Two cases are certain: the TCP connection could not even be opened, and the server
    answered 404 to a request carrying an ``Mcp-Session-Id`` (it forgot the session, e.g.
    after a restart, so it dispatched nothing). Anything else (a reset mid-response, a
    timeout) may have run and is not reported.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport, on_rejected: OnRejected) -> None:
        self._inner = inner
        self._on_rejected = on_rejected

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as e:
            self._report(request, f"the server is not accepting connections ({type(e).__name__})")
            raise
        if response.status_code == 404 and request.headers.get("mcp-session-id"):
            self._report(request, "the server no longer knows this session (HTTP 404)")
        return response

    def _report(self, request: httpx2.Request, reason: str) -> None:
        if request.method != "POST":
            return
        try:
            body = json.loads(request.content)
        except (ValueError, httpx2.RequestNotRead):
            return
        if isinstance(body, dict) and "id" in body and "method" in body:
            self._on_rejected(body["id"], reason)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _http_client_factory(on_rejected: OnRejected | None) -> Callable[..., httpx2.AsyncClient]:
    """Builds clients like the SDK's ``create_mcp_http_client``, plus the rejection watch."""

    def factory(headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
                auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
        inner = httpx2.AsyncHTTPTransport()
        transport = _RejectionWatch(inner, on_rejected) if on_rejected is not None else inner
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, transport=transport)

    return factory


@asynccontextmanager
async def _http_streams(target: HttpTarget, timeout: float, on_rejected: OnRejected | None
                        ) -> AsyncIterator[TransportStreams]:
    headers = dict(target.headers)
    factory = _http_client_factory(on_rejected)
    if target.transport == "sse":
        async with sse_client(target.url, headers=headers, timeout=timeout, sse_read_timeout=_SSE_READ_TIMEOUT,
                              httpx_client_factory=factory, auth=target.auth) as streams:
            yield streams
        return
    client = factory(headers=headers, timeout=httpx2.Timeout(timeout, read=_SSE_READ_TIMEOUT), auth=target.auth)
    async with client, streamable_http_client(target.url, http_client=client) as streams:
        yield streams


def open_streams(target: Target, *, timeout: float, stderr: StderrCapture | None = None,
                 on_rejected: OnRejected | None = None) -> AbstractAsyncContextManager[TransportStreams]:
    """An async context manager yielding ``(read, write)`` for ``target``.

    ``timeout`` bounds HTTP connects and writes; ``stderr`` receives a stdio child's stderr;
    ``on_rejected`` hears about HTTP requests that provably never reached the server.
    """
    if isinstance(target, StdioTarget):
        params = StdioServerParameters(command=target.command, args=list(target.args),
                                       env=dict(target.env) or None, cwd=target.cwd)
        if stderr is None:
            return stdio_client(params)
        return stdio_client(params, errlog=stderr.file)
    return _http_streams(target, timeout, on_rejected)
