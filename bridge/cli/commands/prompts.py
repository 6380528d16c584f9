"""``mcp-bridge prompts SERVER``: the prompts a server publishes, with their arguments."""

from __future__ import annotations

from ..context import Command, Context
from ..status import ExitCode
from .resources import EXITS, listing_table

__all__ = ["COMMAND"]


async def run(ctx: Context) -> ExitCode:
    """List every prompt (all pages): name, description, required and optional arguments."""
    async with ctx.server() as server:
        prompts = await server.prompts()
        if ctx.out.json_mode:
            ctx.out.json({"server": server.name,
                          "prompts": [p.model_dump(by_alias=True, mode="json", exclude_none=True) for p in prompts]})
            return ExitCode.OK
        if not prompts:
            ctx.out.note(f"server {server.name!r} offers no prompts")
            return ExitCode.OK
        rows = []
        for p in prompts:
            arguments = p.arguments or []
            rows.append((p.name, p.description or p.title or "", ", ".join(a.name for a in arguments if a.required),
                         ", ".join(a.name for a in arguments if not a.required)))
        ctx.out.print_table(listing_table(ctx.out, ("Prompt", "Description", "Required", "Optional"), rows,
                                          drop=("Optional",)))
        ctx.out.note("fill one in with 'mcp-bridge prompt SERVER NAME --arg k=v'")
    return ExitCode.OK


COMMAND = Command(
    name="prompts",
    summary="list the prompts a server publishes, with their arguments",
    description="Connect, list every prompt (following pagination) and print a table: name, description, required "
                "and optional arguments. The server's words are shown with their control characters escaped. "
                "--json prints the listing as sent.",
    run=run,
    exits=EXITS,
    lock_option="none",
)
