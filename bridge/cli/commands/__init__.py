"""The registry of ``mcp-bridge`` subcommands.

Each module defines one ``COMMAND``; listing it here is all it takes to add a command
(its parser, help entry and dispatch are built from the ``Command`` value).
"""

from __future__ import annotations

from ..context import Command
from . import (
    approvals,
    audit,
    call,
    code,
    find,
    lock,
    prompt,
    prompts,
    read,
    resources,
    show,
    task,
    tools,
    verify,
)

__all__ = ["COMMANDS", "by_name"]

COMMANDS: tuple[Command, ...] = (tools.COMMAND, show.COMMAND, find.COMMAND, call.COMMAND, code.COMMAND, audit.COMMAND,
                                  lock.COMMAND, verify.COMMAND, approvals.COMMAND, resources.COMMAND, read.COMMAND,
                                  prompts.COMMAND, prompt.COMMAND, task.COMMAND)


def by_name() -> dict[str, Command]:
    """Commands keyed by what the user types."""
    return {c.name: c for c in COMMANDS}
