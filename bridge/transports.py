"""Open the byte streams for a target: stdio subprocess, Streamable HTTP or SSE.

Each function returns an async context manager yielding the SDK's ``(read, write)``
stream pair; it owns whatever it opened (process, HTTP client) and releases it on exit.
Nothing here knows about MCP sessions.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TextIO

import httpx2
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from .targets import HttpTarget, StdioTarget, Target

__all__ = ["StderrCapture", "open_streams"]

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


@asynccontextmanager
async def _http_streams(target: HttpTarget, timeout: float) -> AsyncIterator[TransportStreams]:
    headers = dict(target.headers)
    if target.transport == "sse":
        async with sse_client(target.url, headers=headers, timeout=timeout,
                              sse_read_timeout=_SSE_READ_TIMEOUT) as streams:
            yield streams
        return
    client = create_mcp_http_client(headers=headers, timeout=httpx2.Timeout(timeout, read=_SSE_READ_TIMEOUT))
    async with client, streamable_http_client(target.url, http_client=client) as streams:
        yield streams


def open_streams(target: Target, *, timeout: float, stderr: StderrCapture | None = None
                 ) -> AbstractAsyncContextManager[TransportStreams]:
    """An async context manager yielding ``(read, write)`` for ``target``.

    ``timeout`` bounds HTTP connects and writes; ``stderr`` receives a stdio child's stderr.
    """
    if isinstance(target, StdioTarget):
        params = StdioServerParameters(command=target.command, args=list(target.args),
                                       env=dict(target.env) or None, cwd=target.cwd)
        if stderr is None:
            return stdio_client(params)
        return stdio_client(params, errlog=stderr.file)
    return _http_streams(target, timeout)
