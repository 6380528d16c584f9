"""``mcp-bridge show SERVER TOOL``: one tool in full, and whether the bridge kept it intact."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..context import Command, Context
from ..status import ExitCode

__all__ = ["COMMAND"]

if TYPE_CHECKING:
    from ...profiles import Change


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...profiles import PROFILES

    parser.add_argument("--profile", choices=PROFILES, help="show what a provider's schema profile sends the model "
                        "instead, each change as a JSON pointer with the reason")


async def run(ctx: Context) -> ExitCode:
    """Print the tool's description, hints, schemas, generated signature and fidelity verdict, the
    server's instructions, and what the injection heuristics found in either."""
    from rich.text import Text

    from ...inspection import suspicious_text, suspicious_tool
    from ..fidelity import check_fidelity
    from ..pytypes import format_function
    from ..render import findings_view, instructions_view, server_json, tool_json, tool_view

    async with ctx.server() as server:
        entry = await server.entry(ctx.operands["tool"])
        # The tool exactly as AutoGen gets it from Server.tools(), not a re-derivation.
        tool = next(t for t in await server.tools() if t.mcp_name == entry.mcp_name)
        model_schema = dict(tool.schema)
        signature = format_function(tool.name.replace("-", "_"), tool.signature)
        fidelity = check_fidelity(entry, model_schema, tool.signature)
        findings = suspicious_tool(entry.to_wire())
        # The vetted instructions: under --lock, changed ones are withheld, as an agent would get them.
        instructions = server.instructions
        about_instructions = suspicious_text(instructions or "")
        profile = ctx.args.profile
        changes: list[Change] = []
        if profile:
            from ...profiles import apply_profile

            model_schema["parameters"], changes = apply_profile(entry.input_schema, profile)
        if ctx.out.json_mode:
            out = {"server": server_json(server.info), "tool": tool_json(entry), "signature": signature,
                   "autogenSchema": model_schema, "fidelity": fidelity.to_json(), "suspicious": findings,
                   "instructionsWithheld": server.instructions_withheld, "instructionsSuspicious": about_instructions}
            if profile:
                out["profile"] = {"name": profile, "changes": [{"pointer": c.pointer, "why": c.why} for c in changes]}
            ctx.out.json(out)
        else:
            ctx.out.print(tool_view(ctx.out, entry, signature, model_schema, fidelity))
            if profile:
                ctx.out.print(Text(f"Schema profile {profile}: {len(changes) or 'no'} change(s) to what the model "
                                   "is sent (validation still uses the server's schema)", style="bold"))
                for change in changes:
                    ctx.out.print(Text("  ") + ctx.out.text(change.pointer or "(root)", style="cyan") + Text("  ")
                                  + ctx.out.text(change.why), soft_wrap=True)
            if findings:
                ctx.out.print(findings_view(ctx.out, "Possible prompt injection (read the text above before "
                                            "approving):", findings), soft_wrap=True)
            if instructions:
                ctx.out.print(Text())
                ctx.out.print(instructions_view(ctx.out, server.name, instructions), soft_wrap=True)
            if about_instructions:
                ctx.out.print(findings_view(ctx.out, "Possible prompt injection in the server's instructions (read "
                                            "them before putting them in a system message):", about_instructions),
                              soft_wrap=True)
            if server.instructions_withheld:
                ctx.out.note(f"withheld {server.instructions_withheld}")
    return ExitCode.OK


COMMAND = Command(
    name="show",
    summary="show one tool: schemas, generated signature, and a fidelity verdict",
    description="Print a tool's description and annotations, the inputSchema the server sent, the Python "
                "signature the bridge generated, the tool schema AutoGen sends to the model, and whether "
                "anything differs (each difference with its JSON pointer and the reason); then the server's "
                "instructions (framed as the server's words) and possible prompt injection in either.",
    operands=("tool",),
    add_arguments=_add_arguments,
    run=run,
)
