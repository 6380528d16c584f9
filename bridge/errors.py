"""Every error the bridge raises, and the one place foreign exceptions become ours.

Hierarchy::

    BridgeError                      base of everything raised on purpose
    ├── ConfigError                  a target, config file or option is malformed
    ├── ConnectError                 no session could be established
    │   ├── ServerStartError         a stdio command is missing or exits at start
    │   ├── ServerUnreachable        an HTTP/SSE endpoint does not answer
    │   └── AuthError                the server refused our credentials (401/403)
    ├── ConnectionLost               an established session died (mid-call or idle)
    ├── ProtocolError                the server answered with a JSON-RPC error
    ├── CallTimeout                  a request outlived its timeout
    ├── ToolNotFound                 no tool of that name (with the closest names)
    ├── InvalidArguments             arguments break the tool's inputSchema
    ├── ToolError                    the tool itself returned ``isError: true``
    ├── CatalogueDrift               a tool is withheld: a lock file's pins differ, or the bridge will not offer it
    └── AuditError                   the audit trail cannot write, so calls are refused until it can

Three failure kinds stay apart on purpose: transport failures (``ConnectError``,
``ConnectionLost``), protocol errors (``ProtocolError``, ``CallTimeout``) and the
tool's own error result (``ToolError``). Every message is one line that names the
server and, where there is one, the tool.

Secrets never reach a message: every message is masked with the secrets of the open sessions
(``bridge.secrets.known_secrets``) when the error is made and again when it is shown, and
``translate`` and ``BridgeError.redact`` mask a given session's values too, because a server's
stderr, JSON-RPC error or error result quoting its own API key is common.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .secrets import mask_known, mask_text

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport on 3.10
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "AuditError",
    "AuthError",
    "BridgeError",
    "CallTimeout",
    "CatalogueDrift",
    "ConfigError",
    "ConnectError",
    "ConnectionLost",
    "InvalidArguments",
    "ProtocolError",
    "ServerStartError",
    "ServerUnreachable",
    "ToolError",
    "ToolNotFound",
    "interrupted",
    "translate",
]

# JSON-RPC / MCP codes the SDK uses for its own failures.
_REQUEST_TIMEOUT = -32001
_CONNECTION_CLOSED = -32000


class BridgeError(Exception):
    """Base class: a one-line message naming the server and tool involved."""

    def __init__(self, message: str, *, server: str | None = None, tool: str | None = None) -> None:
        self.server = server
        self.tool = tool
        message = mask_known(message)
        self.detail = message
        super().__init__(message)

    def __str__(self) -> str:
        where = []
        if self.server:
            where.append(f"server {self.server!r}")
        if self.tool:
            where.append(f"tool {self.tool!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        return mask_known(f"{prefix}{self.detail}")

    def redact(self, secrets: Iterable[str]) -> BridgeError:
        """Mask secret values in this error's text (in place); returns the error."""
        secrets = tuple(secrets)
        self.detail = mask_text(self.detail, secrets)
        self.args = (mask_text(str(self.args[0]), secrets), *self.args[1:]) if self.args else ()
        return self


class ConfigError(BridgeError):
    """A target, config file or option is malformed; the message says how to fix it."""


class ConnectError(BridgeError):
    """No session could be established with the server."""


class ServerStartError(ConnectError):
    """A stdio server's command is missing, or the process exited while starting.

    ``stderr_tail`` holds the stderr lines that say why (``StderrCapture.tail``), if any; the
    message quotes all of them, joined by `` | ``.
    """

    def __init__(self, message: str, *, server: str | None = None, stderr_tail: str = "") -> None:
        self.stderr_tail = mask_known(stderr_tail)
        quoted = " | ".join(line.strip() for line in stderr_tail.splitlines() if line.strip())
        if quoted:
            message = f"{message} (stderr: {quoted})"
        super().__init__(message, server=server)

    def redact(self, secrets: Iterable[str]) -> BridgeError:
        secrets = tuple(secrets)
        self.stderr_tail = mask_text(self.stderr_tail, secrets)
        return super().redact(secrets)


class ServerUnreachable(ConnectError):
    """An HTTP or SSE endpoint refused the connection or answered with an unusable status."""


class AuthError(ConnectError):
    """The server refused the credentials (HTTP 401/403, or an auth error result)."""


class ConnectionLost(BridgeError):
    """An established session ended underneath a request."""


class ProtocolError(BridgeError):
    """The server answered a request with a JSON-RPC error object."""

    def __init__(self, message: str, *, code: int, server: str | None = None, tool: str | None = None) -> None:
        self.code = code
        super().__init__(message, server=server, tool=tool)


class CallTimeout(BridgeError):
    """A request did not complete within its timeout."""

    def __init__(self, message: str, *, timeout: float | None, server: str | None = None, tool: str | None = None):
        self.timeout = timeout
        super().__init__(message, server=server, tool=tool)


class ToolNotFound(BridgeError):
    """No tool of that name on the server; ``suggestions`` lists the closest names."""

    def __init__(self, name: str, suggestions: Sequence[str] = (), *, server: str | None = None) -> None:
        self.suggestions = list(suggestions)
        hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown tool {name!r}{hint}", server=server)


class InvalidArguments(BridgeError):
    """The arguments break the tool's inputSchema; names the argument and the rule."""

    def __init__(self, message: str, *, argument: str = "", rule: str = "", server: str | None = None,
                 tool: str | None = None) -> None:
        self.argument = argument
        self.rule = rule
        super().__init__(message, server=server, tool=tool)


class ToolError(BridgeError):
    """The tool returned an error result (``isError: true``); ``result`` keeps all of it.

    ``str()`` is the server's own error text, which is what an agent should see.
    """

    def __init__(self, message: str, *, result: Any = None, server: str | None = None, tool: str | None = None):
        self.result = result
        super().__init__(message, server=server, tool=tool)

    def __str__(self) -> str:
        return mask_known(self.detail)


class CatalogueDrift(BridgeError):
    """A tool or server is withheld: the live catalogue differs from the lock file and the policy refuses
    it, or the bridge will not offer the tool (a name with invisible characters, say).

    ``drift`` is the ``bridge.lock.Drift`` (what was added, removed, changed), when known.
    """

    def __init__(self, message: str, *, server: str | None = None, tool: str | None = None, drift: Any = None):
        self.drift = drift
        super().__init__(message, server=server, tool=tool)


class AuditError(BridgeError):
    """A call refused because the audit trail could not write a record (``on_audit_failure="refuse"``);
    the message names the trail and why it failed."""


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """Flatten nested exception groups and explicit causes into their leaf exceptions."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C: a ``KeyboardInterrupt``, also inside (nested) task groups' errors,
    where an interrupt in one task comes wrapped with the cancellations it caused in the others."""
    return any(isinstance(leaf, KeyboardInterrupt) for leaf in _leaves(exc))


def _root(exc: BaseException) -> BaseException:
    """The most informative leaf: the first non-cancellation, non-closed-stream error."""
    leaves = list(_leaves(exc))
    boring = ("ClosedResourceError", "BrokenResourceError", "EndOfStream", "CancelledError")
    for leaf in leaves:
        if type(leaf).__name__ not in boring:
            return leaf
    return leaves[0] if leaves else exc


def _is_closed_message(message: str) -> bool:
    # -32000 is also the generic "server error" code servers send themselves; only the
    # SDK's own synthesized answers mean the connection is gone.
    text = message.lower()
    return text.startswith(("connection closed", "sse stream")) or "reconnection attempts" in text


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def translate(exc: BaseException, *, server: str | None = None, tool: str | None = None,
              timeout: float | None = None, connecting: bool = False, secrets: Iterable[str] = ()) -> BridgeError:
    """Map any exception raised by the SDK, anyio, httpx2 or the OS to a ``BridgeError``.

    This is the single boundary where foreign exceptions are interpreted; the rest of the
    bridge only ever sees (and raises) ``BridgeError`` subclasses. ``connecting`` tells
    whether the failure happened while establishing the session, which decides between
    ``ConnectError`` and ``ConnectionLost``; ``secrets`` are masked in the message.
    """
    return _translate(exc, server=server, tool=tool, timeout=timeout, connecting=connecting).redact(secrets)


def _translate(exc: BaseException, *, server: str | None, tool: str | None, timeout: float | None,
               connecting: bool) -> BridgeError:
    if isinstance(exc, BridgeError):
        return exc
    leaf = _root(exc)
    if isinstance(leaf, BridgeError):
        return leaf
    name = type(leaf).__name__
    module = type(leaf).__module__

    from mcp.shared.exceptions import MCPError  # local: keeps this module import-light

    if isinstance(leaf, MCPError):
        if leaf.code == _REQUEST_TIMEOUT:
            return CallTimeout(f"no answer within {timeout:g}s" if timeout else "request timed out",
                               timeout=timeout, server=server, tool=tool)
        if leaf.code == _CONNECTION_CLOSED and _is_closed_message(leaf.message):
            if connecting:
                return ConnectError(f"the server closed the connection while starting: {leaf.message}",
                                    server=server)
            return ConnectionLost(f"the connection to the server was lost ({leaf.message})", server=server, tool=tool)
        return ProtocolError(f"MCP error {leaf.code}: {leaf.message}", code=leaf.code, server=server, tool=tool)
    if isinstance(leaf, TimeoutError):
        what = "the server did not finish starting" if connecting else "no answer"
        return CallTimeout(f"{what} within {timeout:g}s" if timeout else f"{what} in time",
                           timeout=timeout, server=server, tool=tool)
    if isinstance(leaf, FileNotFoundError):
        missing = leaf.filename or str(leaf)
        return ServerStartError(f"command not found: {missing}", server=server)
    if isinstance(leaf, PermissionError):
        return ServerStartError(f"command is not executable: {leaf.filename or leaf}", server=server)
    status = _http_status(leaf)
    if status in (401, 403):
        return AuthError(f"authentication refused (HTTP {status}); check the Authorization/API-key header",
                         server=server)
    if status == 404 and not connecting:
        return ConnectionLost("the server no longer knows this session (HTTP 404)", server=server, tool=tool)
    if status is not None:
        return ServerUnreachable(f"HTTP {status} from the server", server=server)
    if module.startswith(("httpx", "httpcore")) or isinstance(leaf, ConnectionError) or (
        isinstance(leaf, OSError) and leaf.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
    ):
        detail = str(leaf) or name
        if connecting:
            return ServerUnreachable(f"cannot reach the server: {detail}", server=server)
        return ConnectionLost(f"the connection to the server was lost: {detail}", server=server, tool=tool)
    if name in ("ClosedResourceError", "BrokenResourceError", "EndOfStream"):
        if connecting:
            return ConnectError("the server closed the connection while starting", server=server)
        return ConnectionLost("the connection to the server was lost", server=server, tool=tool)
    if name == "ValidationError" and module.startswith("pydantic"):
        first = str(leaf).splitlines()
        summary = first[0] if first else "invalid data"
        return ProtocolError(f"the server sent a malformed message: {summary}", code=-32603, server=server, tool=tool)
    # The SDK's own failures (e.g. structured content breaking its outputSchema) say what happened;
    # the exception's class name would only add noise. A bare exception keeps its name as the text.
    text = (str(leaf) or name).splitlines()[0]
    return ProtocolError(text, code=-32603, server=server, tool=tool)
