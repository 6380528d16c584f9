"""``mcp-bridge find SERVER QUERY``: what a deferred catalogue's search tool answers the model."""

from __future__ import annotations

import argparse
import json

from ..context import Command, Context
from ..option_types import whole_number
from ..status import ExitCode

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=whole_number(1, out_of_range="at least 1 match"), default=5, metavar="N",
                        help="how many matches (default 5)")


async def run(ctx: Context) -> ExitCode:
    """Search the server's tools as ``find_tools`` would for an agent with every tool allowed."""
    from rich.table import Table

    async with ctx.server() as server:
        toolset = server.toolset(catalogue="deferred", approval=False, warn_unguarded=False)
        await toolset.tools()
        answer = json.loads(toolset.find(ctx.operands["query"], ctx.args.limit).text)
        if ctx.out.json_mode:
            ctx.out.json(answer)
            return ExitCode.OK
        table = Table(title=f"find_tools({ctx.operands['query']!r}) on {server.name}", show_lines=False)
        table.add_column("#")
        table.add_column("Tool", no_wrap=True)  # a name is copied into the next command: never cut
        for column in ("Title", "Description", "Required"):
            table.add_column(column, overflow="fold")
        for rank, match in enumerate(answer["matches"], 1):
            # Everything the model is answered, as it reads it: titles too.
            table.add_row(str(rank), ctx.out.text(match["name"]), ctx.out.text(match["title"] or ""),
                          ctx.out.text(match["description"] or ""), ctx.out.text(", ".join(match["required"])))
        ctx.out.print_table(table)
        if not answer["matches"]:
            ctx.out.note("no tool matched; the model would be told to try other words")
    return ExitCode.OK


COMMAND = Command(
    name="find",
    summary="search a server's tools the way a deferred catalogue's find_tools does",
    description="Build the full-text index a deferred catalogue gives the model (SQLite FTS5, BM25 over names, "
                "titles, descriptions and argument names) and print what find_tools would answer for QUERY: "
                "the best matches with their titles, one-line descriptions and required arguments. With --lock, only "
                "pinned, unchanged tools are indexed (as for an agent). --json prints the "
                "answer exactly as the model gets it, input schemas included.",
    operands=("query",),
    add_arguments=_add_arguments,
    run=run,
)
