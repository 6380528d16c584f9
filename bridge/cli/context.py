"""What a command is, and what it is given to run: the registry's contract.

A command is a ``Command`` value: its name, the operands it takes after the server, a
function adding its own options, and an async ``run(ctx) -> ExitCode``. ``Context`` hands
it the parsed options, the output streams and a way to connect. Commands never exit the
process and never print errors themselves: they return a status or raise a
``BridgeError``, and ``app.main`` maps it (see ``status.exit_status``).

Adding a command (``audit``, ``lock``, ``verify``, ...) means writing one module with a
``COMMAND = Command(...)`` and listing it in ``commands.COMMANDS``.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from ..options import DEFAULT_CALL_TIMEOUT
from ..server import Server, connect
from ..targets import StdioTarget, Target
from .output import Output
from .status import ExitCode

__all__ = ["DEFAULT_TIMEOUT", "Command", "Context"]

DEFAULT_TIMEOUT = 30.0
"""Seconds to start a server, handshake and list its tools, unless ``--timeout`` says otherwise."""


@dataclass
class Context:
    """Everything a command's ``run`` needs.

    Attributes:
        args: the parsed options (common, server and the command's own).
        out: stdout/stderr with secret masking; the only way commands print.
        operands: the command's positional operands by name (e.g. ``{"tool": "send_email"}``).
        target: the server, for commands that use one.
        connected: set once the session is up; decides how a timeout or protocol error
            is classified (failed to start vs. failed call).
    """

    args: argparse.Namespace
    out: Output
    operands: Mapping[str, str] = field(default_factory=dict)
    target: Target | None = None
    connected: bool = False

    @property
    def call_timeout(self) -> float:
        timeout: float | None = getattr(self.args, "timeout", None)
        return timeout if timeout is not None else DEFAULT_CALL_TIMEOUT

    @asynccontextmanager
    async def server(self, *, guarded: bool = True) -> AsyncIterator[Server]:
        """Connect to the target (with a spinner on a terminal) and list its tools.

        ``guarded``: apply ``--lock`` (``lock`` and ``verify`` compare the file themselves).

        Raises:
            ConnectError: and the other ``BridgeError``s of ``connect``; ``connected``
                stays False until the session is up.
            CatalogueDrift: ``--lock-policy strict`` and the tools differ from ``--lock``.
        """
        if self.target is None:
            raise RuntimeError("this command was registered without a server")
        timeout: float | None = getattr(self.args, "timeout", None)
        verb = "Starting" if isinstance(self.target, StdioTarget) else "Connecting to"
        if getattr(self.args, "debug", False):
            self.out.note(f"{self.target.transport}: {self.target.describe()}")
        async with AsyncExitStack() as stack:
            with self.out.status(f"{verb} {self.target.label}…"):
                lock = getattr(self.args, "lock", None) if guarded else None
                server = await stack.enter_async_context(
                    connect(self.target, timeout=timeout or DEFAULT_TIMEOUT, call_timeout=self.call_timeout,
                            lock=lock, lock_policy=getattr(self.args, "lock_policy", "pinned-only")))
            self.connected = True
            yield server


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
    """

    name: str
    summary: str
    run: Callable[[Context], Awaitable[ExitCode]]
    operands: tuple[str, ...] = ()
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    description: str = ""
    uses_server: bool = True
