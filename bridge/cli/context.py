"""What a command is, and what it is given to run: the registry's contract.

A command is a ``Command`` value: its name, the operands it takes after the server, a
function adding its own options, and an async ``run(ctx) -> ExitCode``. ``Context`` hands
it the parsed options, the output streams and a way to connect. Commands never exit the
process and never print errors themselves: they return a status or raise a
``BridgeError``, and ``app.main`` maps it (see ``status.exit_status``).

Adding a command means writing one module with a ``COMMAND = Command(...)`` and listing it
in ``commands.COMMANDS``. A command module imports
at its top only what its help text needs: the SDK, AutoGen, jsonschema and rich are imported
inside ``run``, so ``mcp-bridge --help`` and usage errors answer without loading them.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Literal

from ..errors import BridgeError, ProtocolError, ServerUnreachable
from ..targets import HttpTarget, StdioTarget, Target
from .output import Output
from .status import ExitCode

if TYPE_CHECKING:
    from ..group import ServerGroup
    from ..server import Server

__all__ = ["DEFAULT_TIMEOUT", "Command", "Context"]

DEFAULT_TIMEOUT = 30.0
"""Seconds to start a server, handshake and list its tools, unless ``--timeout`` says otherwise."""

_STDIO_GRACE = 0.25
"""Seconds a stdio server that ran a tool gets to exit by itself once its stdin closes, before it
is sent SIGTERM. A connection's default (``Options.exit_grace``) is 2 s, which a long-running
service can afford and a command line cannot: every run against a server that ignores end of
input (a Node server with timers) would end 2 s late. A server that was only asked for its
catalogue has nothing to finish: it gets SIGTERM as soon as its stdin is closed."""

_HTTP_FAILURE = re.compile(r"\bHTTP (\d{3})\b")


def _ignore(exc: BaseException) -> None:
    pass


def _http_failure(exc: BridgeError, target: HttpTarget) -> BridgeError:
    """One wording, with the URL, for an endpoint that answers with an HTTP error status.

    The SDK reports a 404 before any session as JSON-RPC error -32601 "Not Found" over
    Streamable HTTP, and the SSE client as the bare status: both mean the URL is wrong.
    """
    if isinstance(exc, ProtocolError) and exc.code == -32601 and exc.detail.endswith("Not Found"):
        status = 404
    elif isinstance(exc, ServerUnreachable) and (found := _HTTP_FAILURE.search(exc.detail)):
        status = int(found.group(1))
    else:
        return exc
    try:
        phrase = f" {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = ""
    hint = "; check the path (MCP servers usually answer at /mcp, or /sse for SSE)" if status == 404 else ""
    return ServerUnreachable(f"HTTP {status}{phrase} from {target.safe_url()}{hint}", server=exc.server)


@dataclass
class Context:
    """Everything a command's ``run`` needs.

    Attributes:
        args: the parsed options (common, server and the command's own).
        out: stdout/stderr with secret masking; the only way commands print.
        operands: the command's positional operands by name (e.g. ``{"tool": "send_email"}``).
        target: the server, for commands that use one (``None``: every server of ``--config``,
            for a command that takes several; see ``group``).
        connected: set once the session is up; decides how a timeout or protocol error
            is classified (failed to start vs. failed call).
        report: prints the error line for an exception and fixes the exit status (once);
            ``server()`` calls it before shutting the server down.
    """

    args: argparse.Namespace
    out: Output
    operands: Mapping[str, str] = field(default_factory=dict)
    target: Target | None = None
    connected: bool = False
    report: Callable[[BaseException], None] = _ignore

    @property
    def start_timeout(self) -> float:
        """Seconds to start the server, handshake and list its tools: ``--start-timeout`` where the
        command also calls a tool (its ``--timeout`` bounds the call), else ``--timeout``."""
        if hasattr(self.args, "start_timeout"):
            given: float | None = self.args.start_timeout
        else:
            given = getattr(self.args, "timeout", None)
        return given if given is not None else DEFAULT_TIMEOUT

    @property
    def call_timeout(self) -> float:
        """Seconds for one tool call: ``--timeout`` of a command that calls tools, else the default."""
        from ..options import DEFAULT_CALL_TIMEOUT

        timeout: float | None = getattr(self.args, "timeout", None) if hasattr(self.args, "start_timeout") else None
        return timeout if timeout is not None else DEFAULT_CALL_TIMEOUT

    @asynccontextmanager
    async def server(self, *, guarded: bool = True, calls: bool = False) -> AsyncIterator[Server]:
        """Connect to the target (with a spinner on a terminal) and list its tools.

        ``guarded``: apply ``--lock`` (``lock`` and ``verify`` compare the file themselves).
        ``calls``: the command runs a tool, so a stdio server gets a grace period to exit
        by itself at the end (see ``_STDIO_GRACE``).
        An error raised in the block is reported at once, while the server is still being
        shut down; commands print their results inside the block for the same reason.

        Raises:
            ConnectError: and the other ``BridgeError``s of ``connect``; ``connected``
                stays False until the session is up.
            CatalogueDrift: ``--lock-policy strict`` and the tools differ from ``--lock``.
        """
        from ..server import connect  # the SDK loads here, never for --help

        if self.target is None:
            raise RuntimeError("this command was registered without a server")
        target = self.target
        verb = "Starting" if isinstance(target, StdioTarget) else "Connecting to"
        if getattr(self.args, "debug", False):
            self.out.note(f"{target.transport}: {target.describe()}")
        async with AsyncExitStack() as stack:
            with self.out.status(f"{verb} {target.label}…"):
                lock = getattr(self.args, "lock", None) if guarded else None
                try:
                    server = await stack.enter_async_context(
                        connect(target, timeout=self.start_timeout, call_timeout=self.call_timeout,
                                lock=lock, lock_policy=getattr(self.args, "lock_policy", "pinned-only"),
                                exit_grace=_STDIO_GRACE if calls else 0.0,
                                # An interrupted call leaves its MCP task running, to be resumed by id.
                                cancel_tasks=not calls))
                except BridgeError as exc:
                    reworded = _http_failure(exc, target) if isinstance(target, HttpTarget) else exc
                    if reworded is exc:
                        raise
                    raise reworded from exc
            self.connected = True
            try:
                yield server
            except Exception as exc:
                self.report(exc)
                raise


    @asynccontextmanager
    async def group(self) -> AsyncIterator[ServerGroup]:
        """Every server of ``--config`` at once, as the library's ``open_servers`` opens them (tool
        names prefixed with the server's), with a spinner on a terminal; like ``server`` otherwise.

        Raises:
            ConfigError: the config is malformed.
            ServerGroupError: a server failed to start (each one named).
        """
        from ..group import open_servers
        from ..targets import load_config

        targets = load_config(self.args.config)
        for target in targets.values():
            self.out.mask.add(target.secret_values())
            if getattr(self.args, "debug", False):
                self.out.note(f"{target.label}: {target.transport}: {target.describe()}")
        async with AsyncExitStack() as stack:
            with self.out.status(f"Starting {len(targets)} servers of {self.args.config}…"):
                group = await stack.enter_async_context(
                    open_servers(targets, timeout=self.start_timeout, call_timeout=self.call_timeout,
                                 lock=getattr(self.args, "lock", None),
                                 lock_policy=getattr(self.args, "lock_policy", "pinned-only"), exit_grace=0.0))
            self.connected = True
            try:
                yield group
            except Exception as exc:
                self.report(exc)
                raise


@dataclass(frozen=True)
class Command:
    """One subcommand of ``mcp-bridge``.

    Attributes:
        name: what the user types (``tools``).
        summary: one line for ``mcp-bridge --help``.
        run: does the work; returns the exit status or raises a ``BridgeError``.
        operands: positional operands after the server, in order (``("tool",)``).
        add_arguments: adds the command's own options to its parser.
        description: the longer text of ``mcp-bridge NAME --help``.
        uses_server: whether the command connects to a server (adds the server options).
        calls_tools: the command calls a tool, so ``--timeout`` bounds the call and
            ``--start-timeout`` the start-up (else ``--timeout`` bounds the start-up).
        lock_option: ``"guard"`` (``--lock`` and ``--lock-policy`` filter the catalogue),
            ``"required"`` (``--lock FILE`` is what the command compares against) or ``"none"``.
        exits: the exit statuses the command can end with, for its ``--help``.
        operand_help: what ``--help`` says about the operands (default: the server, then each one).
        usage: the usage lines, when the ones built from the operands would mislead.
        several_servers: given a config of several servers and no ``--server``, the command
            runs against all of them (``Context.group``); otherwise it must pick one.
    """

    name: str
    summary: str
    run: Callable[[Context], Awaitable[ExitCode]]
    operands: tuple[str, ...] = ()
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    description: str = ""
    uses_server: bool = True
    calls_tools: bool = False
    lock_option: Literal["guard", "required", "none"] = "guard"
    exits: tuple[ExitCode, ...] = (ExitCode.OK, ExitCode.USAGE, ExitCode.AUTH, ExitCode.UNREACHABLE,
                                   ExitCode.DRIFT, ExitCode.INTERRUPTED)
    operand_help: str = ""
    usage: str = ""
    several_servers: bool = False
