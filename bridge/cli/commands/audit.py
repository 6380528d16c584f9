"""``mcp-bridge audit PATH``: the audit trail agents left (JSONL, SQLite or PostgreSQL), as a table or JSON;
``mcp-bridge audit verify PATH``: check its hash chains."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict
from typing import TYPE_CHECKING

from ...errors import ConfigError
from ..context import Command, Context
from ..status import ExitCode

if TYPE_CHECKING:
    from ...audit.chain import Verification

__all__ = ["COMMAND"]

_WHOLE = 1_000_000
_ARGUMENTS_MIN = 60
# Roughly what time, agent, tool, approval, outcome and duration take on one line.
_OTHER_COLUMNS = 90
_VERIFY = "verify"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--agent", metavar="NAME", help="only calls made by this agent")
    group.add_argument("--tool", metavar="NAME", help="only calls of this tool (MCP name or the name the agent used)")
    group.add_argument("--since", metavar="WHEN",
                       help="only calls since WHEN: a duration ago (30m, 1h, 2d) or an ISO time (2025-06-01T09:00)")
    group.add_argument("--open", action="store_true",
                       help="only calls with no outcome: recorded as started, never finished (their process died)")


async def run(ctx: Context) -> ExitCode:
    """Read, filter and print the records, oldest first.

    Raises:
        ConfigError: the file is missing or unreadable, or ``--since`` is malformed.
    """
    from ...audit import parse_since, query, render_table
    from ...audit.postgres import password_values
    from ..render import fit_table

    args = ctx.args
    path, target = ctx.operands["path"], ctx.operands.get("target")
    # A PostgreSQL URL may carry a password; nothing printed below may show it.
    ctx.out.mask.add(password_values(target or path))
    if path == _VERIFY and (target is not None or not os.path.exists(path)):
        if target is None:
            raise ConfigError("audit verify needs the log to check: mcp-bridge audit verify FILE|DB|postgresql://...")
        return _verify(ctx, target)
    if target is not None:
        raise ConfigError(f"unexpected argument {target!r} (usage: mcp-bridge audit PATH [options])")
    since = parse_since(args.since)
    records = query(path, agent=args.agent, tool=args.tool, since=since, open_only=args.open)
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
    # Read at any width: the step, chain and duration columns go first when the screen is narrow,
    # then the arguments (--json has them all).
    table = fit_table(ctx.out, render_table(records, title=title, arguments_width=width),
                      drop=("step", "chain", "ms", "worker", "arguments"))
    ctx.out.print_table(table)
    broken = sum(r.chain_status == "broken" for r in records)
    if broken:
        ctx.out.error(f"{broken} record{'s' if broken != 1 else ''} shown fail the hash chain; run "
                      "mcp-bridge audit verify PATH for where it breaks")
    return ExitCode.OK


def _verify(ctx: Context, path: str) -> ExitCode:
    """Check every chain; exit ``DRIFT`` (6) at a break, when keyed records could not be checked, or
    when lines of the file could not be read as records."""
    from ...audit import verify_log

    report = verify_log(path)
    if ctx.out.json_mode:
        ctx.out.json(_report_json(report))
    else:
        for problem in report.problems:
            ctx.out.print(ctx.out.line(f"BROKEN {problem}", style="bold red"))
        whole = report.intact and not report.unchecked and not report.unreadable
        ctx.out.print(ctx.out.line(("intact: " if whole else "checked: ")
                                   + report.summary()))
    if not report.intact:
        ctx.out.error(f"{path}: {len(report.problems)} chain{'s' if len(report.problems) != 1 else ''} broken: "
                      f"the first at {report.problems[0]}")
        return ExitCode.DRIFT
    if report.unchecked:
        from ...audit.chain import KEY_ENV

        ctx.out.error(f"{path}: {report.unchecked} records are keyed (HMAC) and could not be checked; set {KEY_ENV} "
                      "to the key they were written with")
        return ExitCode.DRIFT
    if report.unreadable:
        count = len(report.unreadable)
        ctx.out.error(f"{path}: {count} line{'s' if count != 1 else ''} could not be read as audit records "
                      f"(first: line {report.unreadable[0]}); a crash mid-write leaves one torn line, anything "
                      "else was written by something other than the bridge: look at them")
        return ExitCode.DRIFT
    return ExitCode.OK


def _report_json(report: Verification) -> dict[str, object]:
    return {"intact": report.intact, "records": report.records, "chains": report.chains,
            "unchained": report.unchained, "unchecked": report.unchecked, "unreadable": report.unreadable,
            "problems": [asdict(p) for p in report.problems]}


COMMAND = Command(
    name="audit",
    summary="show the audit trail of tool calls (JSONL, SQLite or PostgreSQL), filtered by agent, tool and time",
    description="Print the records the bridge's audit trail wrote (audit_interceptor / tools_for(audit=...)): "
                "time, agent, server, tool, the model's step, approval decision and reviewer, outcome (\"no "
                "outcome\" for a call whose process died while it was in flight), duration, chain status and the "
                "arguments (secrets already redacted). PATH is a JSONL or SQLite file (the format is detected) or a "
                "postgresql://user@host:port/db URL. 'mcp-bridge audit verify PATH' checks every hash chain and "
                "names the first record edited, deleted, inserted or reordered (exit 6, also for lines it cannot "
                "read); set MCP_BRIDGE_AUDIT_KEY for a keyed log.",
    operands=("path", "[target]"),
    add_arguments=_add_arguments,
    run=run,
    uses_server=False,
    operand_help="PATH: a JSONL or SQLite file, or a postgresql:// URL; or 'verify' and then the log to check",
    usage="mcp-bridge audit PATH [options]\n       mcp-bridge audit verify PATH",
    exits=(ExitCode.OK, ExitCode.USAGE, ExitCode.AUTH, ExitCode.UNREACHABLE, ExitCode.DRIFT, ExitCode.INTERRUPTED),
)
