"""Answers to the requests a server sends back: elicitation (ask the user) and roots; and
``console_input``, the one way the bridge reads an answer from the person at the terminal.

Each builder returns a callback in the SDK's shape, ready for ``ClientCallbacks``.
Sampling, which needs a model, lives in ``bridge.autogen.sampling``.

A callback answers whichever server asked; ``for_server(callback, label)`` (the session applies
it) makes the user's name for that server known while the callback runs, as ``server_label()``,
so a prompt can say whose request it shows.
"""

from __future__ import annotations

import inspect
import os
import shutil
import signal
import stat
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, TextIO, TypeAlias

import anyio
import mcp_types as types
from anyio.lowlevel import RunVar
from mcp.client.session import ClientRequestContext, ElicitationFnT, ListRootsFnT

from .sanitize import cut, one_line, quoted

__all__ = ["ElicitationAnswer", "console_elicitation", "console_input", "elicitation_from", "for_server",
           "server_label", "static_roots"]

_SERVER: ContextVar[str] = ContextVar("bridge_server_label", default="")


def server_label() -> str:
    """The user's name for the server whose request the running callback answers (``""``
    outside ``for_server``)."""
    return _SERVER.get()


def for_server(callback: ElicitationFnT, label: Callable[[], str]) -> ElicitationFnT:
    """``callback`` with ``label()`` (the connection's name, read at each request) as
    ``server_label()`` while it runs."""

    async def labelled(context: ClientRequestContext, params: types.ElicitRequestParams
                       ) -> types.ElicitResult | types.ErrorData:
        token = _SERVER.set(label())
        try:
            return await callback(context, params)
        finally:
            _SERVER.reset(token)

    return labelled

ElicitationAnswer: TypeAlias = Mapping[str, Any] | Literal["decline", "cancel"] | None
"""What an elicitation handler returns: the form's values (accept), ``"decline"``, or
``"cancel"``/``None`` (dismissed)."""

ElicitationHandler: TypeAlias = Callable[[str, Mapping[str, Any]], ElicitationAnswer | Awaitable[ElicitationAnswer]]


def _result(answer: ElicitationAnswer) -> types.ElicitResult:
    if answer is None or answer == "cancel":
        return types.ElicitResult(action="cancel")
    if answer == "decline":
        return types.ElicitResult(action="decline")
    assert isinstance(answer, Mapping)
    return types.ElicitResult(action="accept", content=dict(answer))


def elicitation_from(handler: ElicitationHandler) -> ElicitationFnT:
    """Wrap ``handler(message, requested_schema)`` (sync or async) as an elicitation callback.

    URL-mode requests (open a link out of band) are declined: a library cannot open a browser
    on someone's behalf.
    """

    async def callback(context: ClientRequestContext, params: types.ElicitRequestParams
                       ) -> types.ElicitResult | types.ErrorData:
        if isinstance(params, types.ElicitRequestURLParams):
            return types.ElicitResult(action="decline")
        answer = handler(params.message, params.requested_schema)
        if inspect.isawaitable(answer):
            answer = await answer
        return _result(answer)

    return callback


# -- reading the terminal ----------------------------------------------------------------------

_STDIN: RunVar[anyio.Lock] = RunVar("bridge_stdin_lock")
_UNREAD = bytearray()
"""Bytes read from stdin past the last line returned (a pipe may hold several answers)."""


def _stdin_lock() -> anyio.Lock:
    # One waiter on the descriptor at a time (the event loop refuses a second one).
    try:
        return _STDIN.get()
    except LookupError:
        lock = anyio.Lock()
        _STDIN.set(lock)
        return lock


def _stdin_fd() -> int:
    try:
        if sys.stdin is None:
            raise EOFError("there is no stdin")
        return sys.stdin.fileno()
    except (OSError, ValueError) as e:  # closed, or replaced by an object without a descriptor
        raise EOFError(f"stdin cannot be read: {e}") from None


async def console_input(prompt: str = "", output: TextIO | None = None) -> str:
    """``input()`` for async code: print ``prompt``, read one line from stdin, without a thread.

    The event loop waits for stdin to become readable (a terminal hands over a whole line at
    once) and only then reads, so the wait is an ordinary await that any cancel scope ends,
    and nothing is left behind blocked on the terminal to keep the interpreter alive. A pipe
    or a file works too, one line per call.

    Ctrl-C while it waits raises ``KeyboardInterrupt`` at once, as at Python's own prompt: on
    asyncio, ``asyncio.run`` then cancels every task (whoever runs this one: a framework's
    runtime often runs tool calls in tasks of its own, which cancelling the main task alone
    would leave waiting) and re-raises it.

    Args:
        prompt: written to ``output`` (default: stdout, as ``input()`` does) before reading.

    Returns:
        The line, without its line ending.

    Raises:
        EOFError: stdin is closed, at its end, or not a file (nobody can answer).
    """
    out = output or sys.stdout
    # From before the prompt shows: a person who presses Ctrl-C as soon as they see it must not
    # meet asyncio's handler, which would leave this prompt (in another task) waiting.
    with _ctrl_c_interrupts():
        if prompt:
            out.write(prompt)
            out.flush()
        async with _stdin_lock():
            fd = _stdin_fd()
            while b"\n" not in _UNREAD:
                chunk = await _read_some(fd)
                if not chunk:
                    if not _UNREAD:
                        raise EOFError("stdin is at its end")
                    break
                _UNREAD.extend(chunk)
            line, _, rest = bytes(_UNREAD).partition(b"\n")
            _UNREAD[:] = rest
    encoding = getattr(sys.stdin, "encoding", None) or "utf-8"
    return line.decode(encoding, errors="replace").removesuffix("\r")


@contextmanager
def _ctrl_c_interrupts() -> Iterator[None]:
    """Python's own SIGINT handler while the person is asked, on asyncio's main thread.

    asyncio.run's handler only cancels the main task; a prompt in another task (a framework's
    runtime runs tool calls in its own) would go on waiting, and the run with it. A handler
    that ignores SIGINT (a background job) is left alone, and so is trio's.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
        main = threading.current_thread() is threading.main_thread()
    except RuntimeError:
        main = False
    previous = signal.getsignal(signal.SIGINT) if main else None
    if previous in (None, signal.SIG_IGN, signal.default_int_handler):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def _read_some(fd: int) -> bytes:
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError as e:
        raise EOFError(f"stdin cannot be read: {e}") from None
    if sys.platform == "win32":
        # Windows cannot wait on a console handle: a thread reads there (and may outlive a cancel).
        return await anyio.to_thread.run_sync(os.read, fd, 65536, abandon_on_cancel=True)
    if not regular:  # a file is always readable (and the loop refuses to watch one)
        try:
            await anyio.wait_readable(fd)
        except (anyio.ClosedResourceError, OSError) as e:
            raise EOFError(f"stdin cannot be read: {e}") from None
    try:
        return os.read(fd, 65536)
    except BlockingIOError:  # someone else took the line first
        return await _read_some(fd)
    except OSError as e:
        raise EOFError(f"stdin cannot be read: {e}") from None


def _coerce(raw: str, prop: Mapping[str, Any]) -> Any:
    kind = prop.get("type")
    if kind == "boolean":
        return raw.strip().lower() in ("y", "yes", "true", "1")
    if kind == "integer":
        return int(raw)
    if kind == "number":
        return float(raw)
    if kind == "array":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


_MIN_FIELD = 16
"""The columns a field's title keeps on the narrowest screen."""


def _field_prompt(key: str, prop: Mapping[str, Any], required: bool, columns: int) -> str:
    # Title, choices and default are the server's words: one line each, controls escaped, and cut to
    # the screen: a terminal wrapping them would start a row with the server's text (its own prompt).
    label = one_line(str(prop.get("title") or key))
    hint = f" ({'/'.join(one_line(str(v)) for v in prop['enum'])})" if prop.get("enum") else ""
    default = prop.get("default")
    suffix = f" [{one_line(str(default))}]" if default is not None else ""
    tail = f"{'' if required else ' (optional)'}: "
    return f"  {cut(label + hint + suffix, max(_MIN_FIELD, columns - 2 - len(tail)))}{tail}"


def console_elicitation(input_fn: Callable[[str], str | Awaitable[str]] | None = None,
                        print_fn: Callable[[str], None] = print, width: int | None = None) -> ElicitationFnT:
    """Ask the person at the console to fill the server's form, one field at a time.

    Reads with ``console_input`` (no thread: Ctrl-C ends the wait at once) unless ``input_fn``
    (sync or async) is given; an empty answer to an optional field leaves it out, ``!decline``
    declines and ``!cancel`` dismisses; stdin closed dismisses the form.

    The server's message is shown as its own (``server 'mail' asks:``, every row behind a ``|``
    gutter cut to ``width``, default the terminal's; controls, bidi and invisible characters
    escaped), so it cannot pose as the bridge's approval prompt and take the answer meant for it.
    """

    async def read(prompt: str) -> str:
        if input_fn is None:
            return await console_input(prompt)
        answer = input_fn(prompt)
        return await answer if inspect.isawaitable(answer) else answer

    async def ask(message: str, schema: Mapping[str, Any]) -> ElicitationAnswer:
        server = server_label()
        columns = width or shutil.get_terminal_size().columns
        print_fn(quoted(f"server '{server}'" if server else "an unnamed server", message, "asks", columns))
        required = set(schema.get("required") or [])
        values: dict[str, Any] = {}
        for key, prop in (schema.get("properties") or {}).items():
            default = prop.get("default")
            while True:
                try:
                    raw = (await read(_field_prompt(str(key), prop, key in required, columns))).strip()
                except EOFError:
                    return "cancel"  # nobody at the console to fill it in
                if raw in ("!decline", "!cancel"):
                    return "decline" if raw == "!decline" else "cancel"
                if not raw:
                    if default is not None:
                        values[key] = default
                        break
                    if key not in required:
                        break
                    print_fn("  this field is required")
                    continue
                try:
                    values[key] = _coerce(raw, prop)
                    break
                except ValueError:
                    print_fn(f"  expected a {one_line(str(prop.get('type')))}")
        return values

    return elicitation_from(ask)


def static_roots(roots: Iterable[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]]) -> ListRootsFnT:
    """Answer ``roots/list`` with fixed directories (paths or ``file://`` URIs; a mapping names them)."""
    named: list[tuple[str | None, str]] = []
    items = roots.items() if isinstance(roots, Mapping) else ((None, r) for r in roots)
    for name, root in items:
        text = os.fspath(root)
        uri = text if text.startswith("file://") else Path(text).resolve().as_uri()
        named.append((name if isinstance(name, str) else None, uri))
    result = types.ListRootsResult(roots=[types.Root(uri=uri, name=name) for name, uri in named])  # type: ignore[arg-type]

    async def callback(context: ClientRequestContext) -> types.ListRootsResult | types.ErrorData:
        return result

    return callback

