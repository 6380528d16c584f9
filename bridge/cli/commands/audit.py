"""``mcp-bridge audit PATH``: the audit trail agents left (JSONL, SQLite or PostgreSQL), as a table or JSON."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from ..context import Command, Context
from ..status import ExitCode

__all__ = ["COMMAND"]

_WHOLE = 1_000_000
_ARGUMENTS_MIN = 60
# Roughly what time, agent, tool, approval, outcome and duration take on one line.
_OTHER_COLUMNS = 90


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--agent", metavar="NAME", help="only calls made by this agent")
    group.add_argument("--tool", metavar="NAME", help="only calls of this tool (MCP name or the name the agent used)")
    group.add_argument("--since", metavar="WHEN",
                       help="only calls since WHEN: a duration ago (30m, 1h, 2d) or an ISO time (2025-06-01T09:00)")


async def run(ctx: Context) -> ExitCode:
    """Read, filter and print the records, oldest first.

    Raises:
        ConfigError: the file is missing or unreadable, or ``--since`` is malformed.
    """
    from ...audit import parse_since, query, render_table
    from ...audit.postgres import password_values

    args = ctx.args
    # A PostgreSQL URL may carry a password; nothing printed below may show it.
    ctx.out.mask.add(password_values(ctx.operands["path"]))
    since = parse_since(args.since)
    records = query(ctx.operands["path"], agent=args.agent, tool=args.tool, since=since)
    if ctx.out.json_mode:
        ctx.out.json([asdict(r) for r in records])
        return ExitCode.OK
    if not records:
        ctx.out.note("no audit records match")
        return ExitCode.OK
    # render_table builds every cell as plain Text: arguments and errors are never read as markup.
    # Piped, the arguments are shown whole (the table takes its natural width); on a terminal
    # they get what the screen leaves.
    width = _WHOLE if ctx.out.piped else max(_ARGUMENTS_MIN, ctx.out.out.width - _OTHER_COLUMNS)
    title = f"{len(records)} call{'s' if len(records) != 1 else ''}"
    ctx.out.print_table(render_table(records, title=title, arguments_width=width))
    return ExitCode.OK


COMMAND = Command(
    name="audit",
    summary="show the audit trail of tool calls (JSONL, SQLite or PostgreSQL), filtered by agent, tool and time",
    description="Print the records the bridge's audit trail wrote (audit_interceptor / tools_for(audit=...)): "
                "time, agent, server, tool, approval decision and reviewer, outcome, duration and the arguments "
                "(secrets already redacted). PATH is a JSONL or SQLite file (the format is detected) or a "
                "postgresql://user@host:port/db URL.",
    operands=("path",),
    add_arguments=_add_arguments,
    run=run,
    uses_server=False,
)
