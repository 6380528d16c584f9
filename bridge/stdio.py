"""The stdio transport: a server subprocess speaking newline-delimited JSON-RPC on its pipes.

``stdio_streams`` starts the server and yields the ``(read, write)`` pair the SDK session
consumes, like the SDK's own ``stdio_client``, with two differences that matter on every call:

* **The sender writes.** The SDK's transport hands each outgoing message to a writer task,
  one more event-loop pass per request (with anyio's checkpoints around the write, a raw SDK
  session takes ~15% longer per fast call on it than on this one: ``make bench``). Here
  ``send`` serialises the message and writes the whole line into the pipe's buffer itself,
  before its first await: concurrent senders never interleave, and a cancelled sender has
  written all of its line or none of it.
* **The observer sees each message where it passes.** What the bridge keeps per connection
  (``TransportObserver``: the requests sent, the answers repaired, the end of the stream) is
  told by the reader task and by ``send`` directly, not through stream wrappers.

Reading is linear in what the server sends (each read is searched for a newline once, never
the whole buffer again), and no message may exceed ``max_message_bytes``: past it the stream
cannot be resynchronised (the rest of the line could be anything), so the connection is closed
and the observer told why (``lost``); requests in flight fail at once with that reason.

The child gets the SDK's minimal environment (HOME, PATH, ...) plus the target's ``env``,
runs in a process group of its own, and its stderr goes to a real file.
Leaving the context stops it, shielded and bounded: close its stdin, give it ``grace``
seconds to exit by itself, then SIGTERM its process group and, 2 s later, SIGKILL (the
SDK's ``terminate_posix_process_tree``). Windows keeps the SDK's transport, whose Job Objects
do the same there; ``bridge.transports`` chooses.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol, TextIO, cast

import anyio
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCMessage, JSONRPCRequest, RequestId, jsonrpc_message_adapter

from .options import DEFAULT_MAX_MESSAGE_BYTES, byte_size
from .targets import StdioTarget

__all__ = ["TransportObserver", "stdio_streams"]

logger = logging.getLogger("bridge.stdio")

_CHUNK = 64 * 1024
# After SIGTERM, how long the process group gets before SIGKILL (the SDK's figure).
_KILL_AFTER = 2.0
# How often a stopping server is checked for having exited.
_EXIT_POLL = 0.01


class TransportObserver(Protocol):
    """Hears each message a transport carries, and what only the transport knows about them.

    ``bridge.wire.Wire`` is the one implementation; every transport reports to it, the stdio
    transport directly and the SDK's HTTP transports through ``bridge.transports``' wrappers.
    """

    def sending(self, message: JSONRPCMessage) -> None:
        """A message is about to be written (called in the sending task)."""

    def received(self, item: SessionMessage | Exception, size: int | None = None) -> SessionMessage | Exception:
        """A message (or a parse failure) of ``size`` bytes (if the transport knows) arrived; returns what
        the session should see instead."""

    def end(self) -> None:
        """The read side ended: no answer will come any more."""

    def lost(self, reason: str) -> None:
        """The transport closed the connection on purpose (``reason``, one line): no answer will come."""

    def reject(self, request_id: RequestId, reason: str) -> None:
        """The request provably never reached the server: re-sending it cannot run it twice."""

    def refuse(self, request_id: RequestId, status: int) -> None:
        """The server answered the request with 401/403: our credentials were refused."""

    def session(self, session_id: str) -> None:
        """The server named the session it keeps for us (HTTP ``Mcp-Session-Id``)."""


class _PipeWriter:
    """The write stream: serialises a message and writes its line into the child's stdin."""

    def __init__(self, stdin: asyncio.StreamWriter, observer: TransportObserver, sink: Any) -> None:
        self._stdin = stdin
        self._observer = observer
        self._sink = sink

    async def send(self, item: SessionMessage) -> None:
        message = item.message
        self._observer.sending(message)
        stdin = self._stdin
        try:
            if stdin.is_closing():
                raise anyio.ClosedResourceError
            line = message.model_dump_json(by_alias=True, exclude_unset=True).encode()
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("sent: %s", _logged(line))
            stdin.write(line + b"\n")
            # Returns at once unless the pipe's buffer is over its high-water mark.
            await stdin.drain()
        except (anyio.ClosedResourceError, ConnectionError, RuntimeError) as exc:
            if isinstance(message, JSONRPCRequest):
                self._observer.reject(message.id, "the connection was already closed")
            # The server cannot hear us any more: end the connection, as the read side would.
            self._observer.end()
            self._sink.close()
            raise anyio.BrokenResourceError from exc

    async def aclose(self) -> None:
        self._stdin.close()

    async def __aenter__(self) -> _PipeWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _read_lines(stdout: asyncio.StreamReader, sink: Any, observer: TransportObserver,
                      limit: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
    """Split stdout into lines and hand each, parsed and observed, to the session.

    A line that is not JSON-RPC is handed on as its parse error (the SDK's convention for
    transports), which the observer turns into an answer or counts; blank lines are skipped.
    A line longer than ``limit`` bytes ends the connection (``observer.lost``): what follows
    it cannot be told apart from the rest of it. Once nobody listens, the rest is read and
    dropped: a server blocked on a full pipe could not exit when asked to.
    """
    pending = bytearray()
    try:
        while chunk := await stdout.read(_CHUNK):
            # Only the new bytes can hold the end of the pending line: searching the whole buffer
            # on every read would make a long message quadratic in its length.
            scan = len(pending)
            pending += chunk
            begin = 0
            while (end := pending.find(b"\n", scan)) >= 0 and end - begin <= limit:
                if begin == 0 and end >= _CHUNK:
                    # A long line fills the buffer: hand the buffer itself over rather than a copy,
                    # so it is freed once parsed and the rest (less than a read) starts a new one.
                    line, pending = pending, pending[end + 1:]
                    del line[end:]
                    scan = 0
                    await _deliver(line, sink, observer)
                    continue
                await _deliver(pending[begin:end], sink, observer)
                begin = scan = end + 1
            del pending[:begin]
            if len(pending) <= limit:
                continue
            # Too long, whether it has ended or not (what is left starts with it).
            observer.lost(f"the server sent a message larger than {byte_size(limit)} (Options.max_message_bytes); "
                          "the rest of the stream cannot be told apart from it, so the connection was closed")
            return
        observer.end()
    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
        with suppress(ConnectionError, OSError):
            while await stdout.read(_CHUNK):
                pass
    except (ConnectionError, OSError) as exc:
        logger.info("reading the server's stdout failed: %s", exc)
        observer.end()


_LOGGED_MAX = 4000
"""Characters of one message a debug log line shows (a catalogue can run to megabytes)."""


def _logged(line: bytes | bytearray) -> str:
    """One protocol message for the debug log (``--debug``): its text, cut past ``_LOGGED_MAX``."""
    text = bytes(line[:_LOGGED_MAX + 1]).decode("utf-8", errors="replace")
    return text if len(line) <= _LOGGED_MAX else f"{text[:_LOGGED_MAX]}… ({byte_size(len(line))} in all)"


async def _deliver(line: bytearray, sink: Any, observer: TransportObserver) -> None:
    """Parse one line, let the observer see it, and hand it to the session (blank lines are skipped)."""
    if not line or line.isspace():
        return
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("received: %s", _logged(line))
    item: SessionMessage | Exception
    try:
        item = SessionMessage(jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        item = exc
    item = observer.received(item, len(line))
    # The session's reader is almost always waiting: hand over without send()'s checkpoint,
    # an event-loop pass per message (the next read yields anyway).
    try:
        sink.send_nowait(item)
    except anyio.WouldBlock:
        await sink.send(item)


@asynccontextmanager
async def stdio_streams(target: StdioTarget, *, stderr: TextIO, observer: TransportObserver,
                        grace: float, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
                        ) -> AsyncIterator[tuple[Any, Any]]:
    """Start the server and yield ``(read, write)`` for an SDK session; stop it on exit.

    Args:
        stderr: a real file (with a descriptor) for the child's stderr.
        observer: told about every message (see ``TransportObserver``).
        grace: seconds the server gets to exit by itself once its stdin is closed.
        max_message_bytes: a longer message from the server closes the connection (``observer.lost``).

    Raises:
        OSError: the command could not be started (not found, not executable).
    """
    process = await asyncio.create_subprocess_exec(
        target.command, *target.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
        env=get_default_environment() | dict(target.env), cwd=target.cwd, start_new_session=True)
    assert process.stdin is not None and process.stdout is not None
    sink, read = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write = _PipeWriter(process.stdin, observer, sink)

    async def reader() -> None:
        assert process.stdout is not None
        with sink:
            await _read_lines(process.stdout, sink, observer, max_message_bytes)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            try:
                yield read, write
            finally:
                with anyio.CancelScope(shield=True):
                    await _stop(process, grace)
                tg.cancel_scope.cancel()
    finally:
        read.close()


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    """Close stdin, wait ``grace`` seconds, then stop the whole process group (bounded)."""
    assert process.stdin is not None
    process.stdin.close()
    with anyio.move_on_after(grace):
        while process.returncode is None:
            await anyio.sleep(_EXIT_POLL)
    if process.returncode is None:
        # Only ``pid`` and ``returncode`` are read, which asyncio's process has too.
        await terminate_posix_process_tree(cast(Any, process), _KILL_AFTER)
    # Reaped before returning, so no zombie outlives the connection (bounded all the same).
    with anyio.move_on_after(_KILL_AFTER):
        while process.returncode is None:
            await anyio.sleep(_EXIT_POLL)
    # A descendant that left the group may still hold a pipe, which keeps asyncio's process
    # transport open (and warning when collected); nothing public closes it.
    transport = getattr(process, "_transport", None)
    if transport is not None:
        transport.close()

