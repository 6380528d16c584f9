"""``mcp-bridge tools SERVER``: the catalogue as AutoGen will see it, and the server's instructions."""

from __future__ import annotations

from ..context import Command, Context
from ..status import ExitCode

__all__ = ["COMMAND"]


async def run(ctx: Context) -> ExitCode:
    """List every tool (all pages): a header, the server's instructions and a table, or the whole
    catalogue as JSON; then what the injection heuristics found in the instructions and the tools."""
    from ...inspection import suspicious_text, suspicious_tool
    from ..render import catalogue_json, catalogue_table, findings_view, instructions_view, server_header

    async with ctx.server() as server:
        catalogue = await server.catalogue()
        # The vetted instructions: under --lock, changed ones are withheld, as an agent would get them.
        instructions = server.instructions
        about_instructions = suspicious_text(instructions or "")
        flagged = [(entry, found) for entry in catalogue if (found := suspicious_tool(entry.to_wire()))]
        if ctx.out.json_mode:
            doc = catalogue_json(server.info, catalogue, server.list_seconds, server.withheld)
            doc["instructionsWithheld"] = server.instructions_withheld
            doc["suspicious"] = {"instructions": about_instructions,
                                 "tools": {entry.mcp_name: found for entry, found in flagged}}
            ctx.out.json(doc)
            return ExitCode.OK
        ctx.out.print(server_header(ctx.out, server.info, len(catalogue), server.list_seconds))
        if instructions:
            ctx.out.print(instructions_view(ctx.out, server.name, instructions), soft_wrap=True)
        if len(catalogue):
            ctx.out.print_table(catalogue_table(ctx.out, catalogue))
        if catalogue.duplicates:
            ctx.out.note(f"the server lists these names more than once (the first is used): "
                         f"{', '.join(sorted(set(catalogue.duplicates)))}")
        for name, reason in sorted(server.withheld.items()):
            by, _, why = reason.partition(": ")
            ctx.out.note(f"withheld {by}: {name!r} ({why})")
        if server.instructions_withheld:
            ctx.out.note(f"withheld {server.instructions_withheld}")
        if about_instructions:
            ctx.out.print(findings_view(ctx.out, "Possible prompt injection in the server's instructions (read them "
                                        "before putting them in a system message):", about_instructions),
                          soft_wrap=True)
        if flagged:
            ctx.out.print(findings_view(ctx.out, "Possible prompt injection in tool text (read it with 'mcp-bridge "
                                        "show' before approving):",
                                        [f"{entry.name}: {finding}" for entry, found in flagged for finding in found]),
                          soft_wrap=True)
    return ExitCode.OK


COMMAND = Command(
    name="tools",
    summary="list a server's tools as AutoGen will see them, and the server's instructions",
    description="Connect, list every tool (following pagination) and print a header, the server's instructions "
                "(framed as the server's words), and a table: the name AutoGen uses (and the MCP name when it "
                "differs), title, declared hints, required arguments and the number of optional ones. Possible "
                "prompt injection in the instructions, titles, descriptions and schemas is flagged below. --json "
                "prints the whole catalogue.",
    run=run,
)
