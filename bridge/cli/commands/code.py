"""``mcp-bridge code SERVER [--agent A] [--file prog.py | -]``: run a program as an agent in code mode would.

The program runs in the sandbox against the server's tools, each call through the same guards
an agent's takes: validated, approved at the console when not read-only, audited with the
program's hash and position when ``--audit`` names a log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...errors import ConfigError, ToolError
from ..context import Command, Context
from ..status import ExitCode

__all__ = ["COMMAND"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("code")
    group.add_argument("--file", metavar="PROG", default="-",
                       help="the program: a Python file, or - for stdin (the default)")
    group.add_argument("--agent", default="cli", help="the agent named in approvals and audit records (default: cli)")
    group.add_argument("--audit", metavar="PATH", help="record every call in this audit log (.jsonl, .db or "
                                                      "postgresql://)")


def _program(where: str) -> str:
    if where == "-":
        return sys.stdin.read()
    try:
        return Path(where).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--file {where}: {getattr(e, 'strerror', None) or e}") from None


async def run(ctx: Context) -> ExitCode:
    """Run the program once; print its output and value; exit 5 when it failed.

    Raises:
        ConfigError: the program cannot be read (before any server starts), or the sandbox is missing.
        ToolError: the program failed or was stopped (after printing what it printed).
    """
    from ...code import RUN_PYTHON

    args = ctx.args
    code = _program(args.file)
    async with ctx.server(calls=True) as server:
        toolset = server.toolset(args.agent, code=True, audit=args.audit)
        try:
            result = await toolset.call(RUN_PYTHON, {"code": code})
        finally:
            await toolset.stop()
        if ctx.out.json_mode:
            ctx.out.json(result.structured)
        else:
            ctx.out.plain(result.text)
        if result.is_error:
            raise ToolError(str((result.structured or {}).get("error") or "the program failed"), result=result,
                            server=server.name, tool=RUN_PYTHON)
    return ExitCode.OK


COMMAND = Command(
    name="code",
    summary="run a Python program against the server's tools, as an agent in code mode would",
    description="Run a program (from --file, or stdin) in the code-mode sandbox: no files, no network, its only "
                "way out the server's tools, each call validated, approved at the console when the tool is not "
                "read-only, and recorded with the program's hash when --audit names a log. Prints what the "
                "program printed and its last value. Exits 5 when the program fails or a limit stops it.",
    add_arguments=add_arguments,
    run=run,
    calls_tools=True,
    exits=(ExitCode.OK, ExitCode.USAGE, ExitCode.AUTH, ExitCode.UNREACHABLE, ExitCode.TOOL_ERROR, ExitCode.DRIFT,
           ExitCode.INTERRUPTED),
)
