"""The registry of ``mcp-bridge`` subcommands.

Each module defines one ``COMMAND``; listing it here is all it takes to add a command
(its parser, help entry and dispatch are built from the ``Command`` value).
"""

from __future__ import annotations

from ..context import Command
from . import approvals, audit, call, find, lock, show, tools, verify

__all__ = ["COMMANDS", "by_name"]

COMMANDS: tuple[Command, ...] = (tools.COMMAND, show.COMMAND, find.COMMAND, call.COMMAND, audit.COMMAND,
                                  lock.COMMAND, verify.COMMAND, approvals.COMMAND)


def by_name() -> dict[str, Command]:
    """Commands keyed by what the user types."""
    return {c.name: c for c in COMMANDS}
