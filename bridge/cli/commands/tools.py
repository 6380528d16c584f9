"""``mcp-bridge tools SERVER``: the catalogue as AutoGen will see it."""

from __future__ import annotations

from ..context import Command, Context
from ..status import ExitCode

__all__ = ["COMMAND"]


async def run(ctx: Context) -> ExitCode:
    """List every tool (all pages): a header and a table, or the whole catalogue as JSON."""
    from ..render import catalogue_json, catalogue_table, server_header

    async with ctx.server() as server:
        catalogue = await server.catalogue()
        if ctx.out.json_mode:
            ctx.out.json(catalogue_json(server.info, catalogue, server.list_seconds, server.withheld))
            return ExitCode.OK
        ctx.out.print(server_header(ctx.out, server.info, len(catalogue), server.list_seconds))
        if len(catalogue):
            ctx.out.print_table(catalogue_table(ctx.out, catalogue))
        if catalogue.duplicates:
            ctx.out.note(f"the server lists these names more than once (the first is used): "
                         f"{', '.join(sorted(set(catalogue.duplicates)))}")
        for name, reason in sorted(server.withheld.items()):
            by, _, why = reason.partition(": ")
            ctx.out.note(f"withheld {by}: {name!r} ({why})")
    return ExitCode.OK


COMMAND = Command(
    name="tools",
    summary="list a server's tools as AutoGen will see them",
    description="Connect, list every tool (following pagination) and print a header and a table: the name "
                "AutoGen uses (and the MCP name when it differs), title, declared hints, required arguments "
                "and the number of optional ones. --json prints the whole catalogue.",
    run=run,
)
