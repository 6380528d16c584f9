"""Exit statuses, and the one place an exception becomes one.

The codes follow the MCP Inspector's CLI so scripts can treat both tools alike::

    0  OK            the command did what was asked
    1  USAGE         bad command line, config file or tool arguments; unknown tool;
                     also any unexpected internal error
    3  AUTH          the server refused our credentials
    4  UNREACHABLE   the server could not be reached, failed to start, or went away
    5  TOOL_ERROR    the tool call failed: an ``isError`` result, a JSON-RPC error, no
                     answer within the timeout, or an audit trail that cannot be written
    6  DRIFT         the live catalogue differs from a lock file, or an audit log fails
                     ``mcp-bridge audit verify`` (a broken hash chain, keyed records unchecked)
    130 INTERRUPTED  Ctrl-C

Commands return ``ExitCode`` values; everything raised is mapped by ``exit_status``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from ..errors import (
    AuditError,
    AuthError,
    BridgeError,
    CallTimeout,
    CatalogueDrift,
    ConfigError,
    ConnectError,
    ConnectionLost,
    InvalidArguments,
    ProtocolError,
    ToolError,
    ToolNotFound,
)

__all__ = ["ExitCode", "exit_status", "exit_status_help"]


class ExitCode(enum.IntEnum):
    """What ``mcp-bridge`` exits with (see the module docstring)."""

    OK = 0
    USAGE = 1
    AUTH = 3
    UNREACHABLE = 4
    TOOL_ERROR = 5
    DRIFT = 6
    INTERRUPTED = 130


_MEANING = {
    ExitCode.OK: "ok",
    ExitCode.USAGE: "usage: bad options, config file or tool arguments; unknown tool",
    ExitCode.AUTH: "the server refused the credentials",
    ExitCode.UNREACHABLE: "the server is unreachable, failed to start or went away",
    ExitCode.TOOL_ERROR: "the tool call failed: an error result, a protocol error or no answer in time",
    ExitCode.DRIFT: "the tools differ from the lock file (verify, --lock-policy strict), or an audit log fails "
                    "audit verify",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


def exit_status_help(codes: Iterable[ExitCode] = tuple(ExitCode)) -> str:
    """The exit statuses ``codes`` (default: all) and their meaning, one per line, for ``--help``."""
    import shutil
    import textwrap

    width = min(100, max(40, shutil.get_terminal_size().columns - 1))
    return "exit status:\n" + "\n".join(
        textwrap.fill(_MEANING[code], width, initial_indent=f"  {int(code):<4} ", subsequent_indent=" " * 7,
                      break_on_hyphens=False) for code in codes)


# Most specific class first: the first isinstance match wins.
_AFTER_CONNECT: tuple[tuple[type[BridgeError], ExitCode], ...] = (
    (ConfigError, ExitCode.USAGE),
    (InvalidArguments, ExitCode.USAGE),
    (ToolNotFound, ExitCode.USAGE),
    (AuthError, ExitCode.AUTH),
    (ConnectError, ExitCode.UNREACHABLE),
    (ConnectionLost, ExitCode.UNREACHABLE),
    (CatalogueDrift, ExitCode.DRIFT),
    (ToolError, ExitCode.TOOL_ERROR),
    (AuditError, ExitCode.TOOL_ERROR),
    (ProtocolError, ExitCode.TOOL_ERROR),
    (CallTimeout, ExitCode.TOOL_ERROR),
)

# Before the session is up, a timeout or a JSON-RPC error means the server never became
# usable: that is "failed to start", not a failed tool call.
_WHILE_CONNECTING: tuple[tuple[type[BridgeError], ExitCode], ...] = (
    (ProtocolError, ExitCode.UNREACHABLE),
    (CallTimeout, ExitCode.UNREACHABLE),
)


def exit_status(exc: BaseException, *, connected: bool = True) -> ExitCode:
    """The exit status for an exception that ended a command.

    ``connected`` says whether the session had been established when ``exc`` was raised.
    """
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    table = _AFTER_CONNECT if connected else _WHILE_CONNECTING + _AFTER_CONNECT
    for cls, code in table:
        if isinstance(exc, cls):
            return code
    return ExitCode.USAGE
