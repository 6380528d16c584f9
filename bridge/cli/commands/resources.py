"""``mcp-bridge resources SERVER``: the resources and resource templates a server publishes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..context import Command, Context
from ..status import ExitCode

if TYPE_CHECKING:
    from rich.table import Table

    from ..output import Output

__all__ = ["COMMAND", "EXITS", "listing_table"]

EXITS = (ExitCode.OK, ExitCode.USAGE, ExitCode.AUTH, ExitCode.UNREACHABLE, ExitCode.TOOL_ERROR, ExitCode.INTERRUPTED)
"""How a command reading what a server publishes can end (a refused read or prompt is a usage error, a
server's own refusal a protocol error)."""


def listing_table(out: Output, headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], *,
                  drop: Sequence[str] = ()) -> Table:
    """A compact table of server-supplied cells that reads at 80 columns: the first column (what
    the user copies into the next command) is never split while it fits in two thirds of the
    screen, the columns headed ``drop`` giving way first (``render.fit_table``); a longer one
    folds rather than being cut. The others wrap between words."""
    from rich import box
    from rich.table import Table

    from ..render import fit_table

    cells = [[out.line(cell, style="cyan" if n == 0 else "") for n, cell in enumerate(row)] for row in rows]
    whole = max((row[0].cell_len for row in cells), default=0) <= out.out.width * 2 // 3
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for n, header in enumerate(headers):
        table.add_column(header, overflow="fold", ratio=2 if n == 0 else 1, no_wrap=n == 0 and whole)
    for row in cells:
        table.add_row(*row)
    return fit_table(out, table, drop=drop) if whole else table


def _size(value: int | None) -> str:
    if value is None:
        return ""
    return f"{value:,} B" if value < 1024 else f"{value / 1024:,.1f} KB" if value < 1024 ** 2 \
        else f"{value / 1024 ** 2:,.1f} MB"


async def run(ctx: Context) -> ExitCode:
    """List every resource and template (all pages), as tables or ``--json``."""
    async with ctx.server() as server:
        resources = await server.resources()
        templates = await server.resource_templates()
        if ctx.out.json_mode:
            doc: dict[str, Any] = {
                "server": server.name,
                "resources": [r.model_dump(by_alias=True, mode="json", exclude_none=True) for r in resources],
                "resourceTemplates": [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in templates]}
            ctx.out.json(doc)
            return ExitCode.OK
        if not server.published.offers("resources"):
            ctx.out.note(f"server {server.name!r} offers no resources")
            return ExitCode.OK
        if resources:
            ctx.out.print_table(listing_table(ctx.out, ("URI", "Name", "Type", "Size"), [
                (r.uri, r.title or r.name, r.mime_type or "", _size(r.size)) for r in resources],
                drop=("Size", "Type")))
        if templates:
            ctx.out.print_table(listing_table(ctx.out, ("URI template", "Name", "Description"), [
                (t.uri_template, t.title or t.name, t.description or "") for t in templates],
                drop=("Description",)))
        ctx.out.note(f"{len(resources)} resource(s), {len(templates)} template(s); read one with "
                     f"'mcp-bridge read SERVER URI'")
    return ExitCode.OK


COMMAND = Command(
    name="resources",
    summary="list the resources and resource templates a server publishes",
    description="Connect, list every resource and resource template (following pagination) and print them as "
                "tables: URI, name, type and size. Names and descriptions are the server's words, shown with "
                "their control characters escaped. --json prints the listings as sent.",
    run=run,
    exits=EXITS,
    lock_option="none",
)
