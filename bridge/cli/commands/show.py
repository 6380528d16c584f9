"""``mcp-bridge show SERVER TOOL``: one tool in full, and whether the bridge kept it intact."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, NoReturn

from ..context import Command, Context
from ..status import ExitCode

__all__ = ["COMMAND"]

if TYPE_CHECKING:
    from inspect import Signature

    from ...catalogue import ToolEntry
    from ...profiles import Change
    from ...server import Server


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...profiles import PROFILES

    parser.add_argument("--profile", choices=PROFILES, help="show what a provider's schema profile sends the model "
                        "instead, each change as a JSON pointer with the reason")
    parser.add_argument("--stubs", action="store_true", help="print the typed Python stubs code mode shows the model "
                        "for TOOL instead (a glob: '*' for every tool)")


async def _as_sent(server: Server, entry: ToolEntry, profile: str | None) -> tuple[str, dict[str, Any], Signature]:
    """The tool as the model is told about it (name, tool schema, Python signature): exactly as
    AutoGen's adapter builds it, not a re-derivation; without AutoGen installed (it is an extra),
    as the adapter contract gives it to every framework (``ModelTool``, the compiled signature)."""
    toolset = server.toolset(approval=False, warn_unguarded=False, schema_profile=profile)
    try:
        from ...autogen import tools_for
    except ImportError:
        from ...adapters import ModelTool

        view = ModelTool.of(toolset, entry)
        schema = {"name": view.name, "description": view.description, "parameters": view.schema(),
                  "strict": view.strict}
        return view.name, schema, entry.compiled.signature
    tool = next(t for t in await tools_for(toolset) if t.mcp_name == entry.mcp_name)
    return tool.name, dict(tool.schema), tool.signature


async def run(ctx: Context) -> ExitCode:
    """Print the tool's description, hints, schemas, generated signature and fidelity verdict, the
    server's instructions, and what the injection heuristics found in either."""
    from rich.text import Text

    from ...inspection import suspicious_text, suspicious_tool
    from ..fidelity import check_fidelity
    from ..pytypes import format_function
    from ..render import INSTRUCTIONS_HEADING, instructions_view, print_findings, server_json, tool_json, tool_view

    if ctx.args.stubs:
        return await show_stubs(ctx)
    async with ctx.server() as server:
        entry = await server.entry(ctx.operands["tool"])
        name, model_schema, python_signature = await _as_sent(server, entry, None)
        signature = format_function(name.replace("-", "_"), python_signature)
        fidelity = check_fidelity(entry, model_schema, python_signature)
        findings = suspicious_tool(entry.to_wire())
        # The vetted instructions: under --lock, changed ones are withheld, as an agent would get them.
        instructions = server.instructions
        about_instructions = suspicious_text(instructions or "")
        profile = ctx.args.profile
        changes: list[Change] = []
        if profile:
            from ...profiles import apply_profile
            from ..fidelity import with_profile

            # What is sent under the profile, from the adapter itself (parameters and `strict`).
            model_schema = (await _as_sent(server, entry, profile))[1]
            changes = apply_profile(entry.input_schema, profile)[1]
            fidelity = with_profile(fidelity, profile, changes)
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
                ctx.out.print(Text("  validation still uses the server's schema, not the profile's", style="dim"))
            print_findings(ctx.out, "Possible prompt injection (read the text above before approving):", findings)
            if instructions:
                ctx.out.print(Text())
                ctx.out.print(instructions_view(ctx.out, server.name, instructions), soft_wrap=True)
            print_findings(ctx.out, INSTRUCTIONS_HEADING, about_instructions)
            if server.instructions_withheld:
                ctx.out.note(f"withheld {server.instructions_withheld}")
    return ExitCode.OK


async def show_stubs(ctx: Context) -> ExitCode:
    """Print the code-mode stubs of the tools matching the TOOL operand, as ``run_python`` carries them."""
    async with ctx.server() as server:
        toolset = server.toolset("cli", approval=False, warn_unguarded=False, include=[ctx.operands["tool"]],
                                 code=True)
        assert toolset.code_mode is not None
        stubs = await toolset.code_mode.stubs()
        if not stubs.tools:
            await toolset.stop()
            await _none_match(server, ctx.operands["tool"])
        if ctx.out.json_mode:
            ctx.out.json({"stubs": stubs.source, "tools": {k: t.entry.name for k, t in stubs.tools.items()}})
        else:
            ctx.out.plain(stubs.source)
        await toolset.stop()
    return ExitCode.OK


async def _none_match(server: Server, pattern: str) -> NoReturn:
    """Stubs of no tool are a mistake to name, not an empty listing: a plain name the server lacks
    gets the closest names; a glob, the names there are."""
    from ...errors import ConfigError

    if not any(ch in pattern for ch in "*?["):
        await server.entry(pattern)  # raises ToolNotFound with the closest names
    names = [entry.name for entry in await server.catalogue()]
    shown = ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")
    raise ConfigError(f"server {server.name!r}: no tool an agent may use matches {pattern!r}"
                      f"{'; its tools: ' + shown if names else '; it lists none'}")


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
