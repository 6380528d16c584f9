"""``mcp-bridge prompt SERVER NAME --arg k=v``: a server prompt filled in, as an agent would be given it."""

from __future__ import annotations

import argparse

from ...sanitize import quoted
from ..arguments import parse_pairs
from ..context import Command, Context
from ..status import ExitCode
from .resources import EXITS

__all__ = ["COMMAND"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("prompt")
    group.add_argument("--arg", metavar="K=V", action="append", default=[],
                       help="one argument (repeatable); prompt arguments are strings, taken as given")


async def run(ctx: Context) -> ExitCode:
    """Fill the prompt in and print each message framed as the server's words, or ``--json``.
    A required argument missing is refused, naming it, before anything is sent."""
    from ...inspection import suspicious_text
    from ..render import print_findings

    arguments = dict(parse_pairs(ctx.args.arg))
    async with ctx.server() as server:
        prompt = await server.get_prompt(ctx.operands["name"], arguments)
        if ctx.out.json_mode:
            ctx.out.json({"server": server.name, "name": prompt.name, "description": prompt.description,
                          "messages": [{"role": line.role, "text": line.text} for line in prompt.lines]})
            return ExitCode.OK
        for line in prompt.lines:
            ctx.out.print(ctx.out.text(quoted(f"server {server.name!r}", line.text, f"writes as {line.role}",
                                                 ctx.out.frame_width)),
                          soft_wrap=True)
        findings = [f"{line.role}: {found}" for line in prompt.lines for found in suspicious_text(line.text)]
        print_findings(ctx.out, "Possible prompt injection in the prompt (read it before giving it to a model):",
                       findings)
    return ExitCode.OK


COMMAND = Command(
    name="prompt",
    summary="fill in one of a server's prompts and print its messages",
    description="Connect, check NAME is a listed prompt and every required argument is given (--arg k=v), fetch "
                "it and print each message framed as the server's words, control characters escaped. --json prints "
                "the messages as role and text.",
    run=run,
    exits=EXITS,
    lock_option="none",
    operand_help="NAME: one of the server's prompts ('mcp-bridge prompts SERVER' lists them)",
    operands=("name",),
    add_arguments=add_arguments,
)
