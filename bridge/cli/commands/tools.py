"""``mcp-bridge tools SERVER``: the catalogue as AutoGen will see it, and the server's instructions;
with ``--config`` and no ``--server``, every server of the config, grouped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..context import Command, Context
from ..status import ExitCode

if TYPE_CHECKING:
    from ...server import Server

__all__ = ["COMMAND"]


async def run(ctx: Context) -> ExitCode:
    """List every tool (all pages): a header, the server's instructions and a table, or the whole
    catalogue as JSON; then what the injection heuristics found in the instructions and the tools.
    Every server of a config, one after the other, when the command was given all of them."""
    if ctx.target is None:
        async with ctx.group() as group:
            if ctx.out.json_mode:
                ctx.out.json({"servers": {name: await _document(group[name]) for name in group}})
                return ExitCode.OK
            for n, name in enumerate(group):
                if n:
                    ctx.out.print()
                await _show(ctx, group[name], several=True)
            if _abbreviated(ctx):
                _legend(ctx)
        return ExitCode.OK
    async with ctx.server() as server:
        if ctx.out.json_mode:
            ctx.out.json(await _document(server))
            return ExitCode.OK
        await _show(ctx, server, several=False)
        if _abbreviated(ctx):
            _legend(ctx)
    return ExitCode.OK


def _abbreviated(ctx: Context) -> bool:
    from ..render import narrow

    return narrow(ctx.out)


def _legend(ctx: Context) -> None:
    from ..render import hints_legend

    ctx.out.print(hints_legend())


async def _document(server: Server) -> dict[str, Any]:
    """``--json``: the whole catalogue, what was withheld, and what the heuristics found."""
    from ...inspection import suspicious_text, suspicious_tool
    from ..render import catalogue_json

    catalogue = await server.catalogue()
    doc = catalogue_json(server.info, catalogue, server.list_seconds, server.withheld)
    doc["instructionsWithheld"] = server.instructions_withheld
    doc["suspicious"] = {"instructions": suspicious_text(server.instructions or ""),
                         "tools": {entry.mcp_name: found for entry in catalogue
                                   if (found := suspicious_tool(entry.to_wire()))}}
    return doc


async def _show(ctx: Context, server: Server, *, several: bool) -> None:
    from ...inspection import suspicious_text, suspicious_tool
    from ..render import INSTRUCTIONS_HEADING, catalogue_table, instructions_view, print_findings, server_header

    catalogue = await server.catalogue()
    # The vetted instructions: under --lock, changed ones are withheld, as an agent would get them.
    instructions = server.instructions
    about_instructions = suspicious_text(instructions or "")
    flagged = [(entry, found) for entry in catalogue if (found := suspicious_tool(entry.to_wire()))]
    ctx.out.print(server_header(ctx.out, server.info, len(catalogue), server.list_seconds))
    if instructions:
        ctx.out.print(instructions_view(ctx.out, server.name, instructions), soft_wrap=True)
    if len(catalogue) or server.withheld:
        # In a group each name carries its server's prefix: exactly what the agents are offered.
        ctx.out.print_table(catalogue_table(ctx.out, catalogue, prefix=server.prefix, withheld=server.withheld,
                                            name_header="Tool (agents' name)" if several else "Tool (AutoGen name)"))
    if catalogue.duplicates:
        ctx.out.note(f"the server lists these names more than once (the first is used): "
                     f"{', '.join(sorted(set(catalogue.duplicates)))}")
    if server.instructions_withheld:
        ctx.out.note(f"withheld {server.instructions_withheld}")
    print_findings(ctx.out, INSTRUCTIONS_HEADING, about_instructions)
    print_findings(ctx.out, "Possible prompt injection in tool text (read it with 'mcp-bridge show' before approving):",
                   [f"{entry.name}: {finding}" for entry, found in flagged for finding in found])


COMMAND = Command(
    name="tools",
    summary="list a server's tools as AutoGen will see them, and the server's instructions",
    description="Connect, list every tool (following pagination) and print a header, the server's instructions "
                "(framed as the server's words), and a table: the name AutoGen uses (and the MCP name when it "
                "differs), title, declared hints, required arguments and the number of optional ones. Possible "
                "prompt injection in the instructions, titles, descriptions and schemas is flagged below. --json "
                "prints the whole catalogue. With --config and no --server, every server of the config is listed, "
                "each tool under the prefixed name agents get from open_servers().",
    run=run,
    several_servers=True,
)
