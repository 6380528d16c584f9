"""Discovery: connect + list + convert, against a raw connect + ``list_tools``.

Catalogues: server-everything (13 tools, Node) and the repo's bench fixture serving 100, 1,000
and 5,000 synthetic tools (~1.5 KB of schema each, 100 per page), all over stdio, a fresh
server process per measurement (start-up is part of what a user waits for).

- raw: spawn, mcp 2.x ``ClientSession.initialize()``, ``list_tools`` following every cursor;
- bridge: ``async with connect(...)`` (spawn, handshake, every page, the ``Catalogue``:
  safe names, compiled schemas) then ``server.tools()`` (an AutoGen ``FunctionTool`` per tool).

Then, in-process and without I/O, what one converted tool costs: microseconds and bytes (by
tracemalloc, what stays allocated) for its catalogue entry and for its ``MCPTool``, next to
the listed ``mcp_types.Tool`` itself for scale.
"""

from __future__ import annotations

import gc
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from _common import (
    EVERYTHING,
    NODE,
    ROOT,
    Report,
    Stats,
    bench_parser,
    bench_server_argv,
    everything_argv,
    finish,
    paired,
    require,
    rounds,
)
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from bridge import connect
from bridge.autogen.tool import MCPTool
from bridge.catalogue import Catalogue


async def raw_discovery(argv: list[str]) -> dict[str, Any]:
    params = StdioServerParameters(command=argv[0], args=argv[1:], cwd=str(ROOT))
    started = time.perf_counter()
    with open(os.devnull, "w") as devnull:  # the SDK wants a real file for the child's stderr
        async with stdio_client(params, errlog=devnull) as (read, write), ClientSession(read, write) as session:
            init = await session.initialize()
            listing = time.perf_counter()
            tools: list[types.Tool] = []
            cursor: str | None = None
            while True:
                page = await session.list_tools(
                    params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
            done = time.perf_counter()
    return {"total": done - started, "list": done - listing, "tools": len(tools), "protocol": init.protocol_version}


async def bridge_discovery(argv: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    async with connect(argv, cwd=ROOT) as server:
        connected = time.perf_counter()
        tools = await server.tools()
        done = time.perf_counter()
        return {"total": done - started, "connect": connected - started, "list": server.list_seconds,
                "tools_call": done - connected, "tools": len(tools), "protocol": server.info.protocol_version}


def convert_cost(listed: Sequence[types.Tool], connection: Any, reps: int) -> dict[str, Any]:
    """Per-tool time and retained memory of a catalogue entry and an ``MCPTool``, no I/O."""
    n = len(listed)
    entry_s: list[float] = []
    tool_s: list[float] = []
    for _ in range(reps):
        t0 = time.perf_counter()
        catalogue = Catalogue(listed, server="bench")
        t1 = time.perf_counter()
        made = [MCPTool(connection, entry) for entry in catalogue]
        t2 = time.perf_counter()
        entry_s.append((t1 - t0) / n * 1e6)
        tool_s.append((t2 - t1) / n * 1e6)
        del made, catalogue
    listed_b = _retained(lambda: [types.Tool.model_validate(t.model_dump()) for t in listed]) / n
    holder: list[Any] = []
    entry_b = _retained(lambda: holder.append(Catalogue(listed, server="bench"))) / n
    tools_b = _retained(lambda: [MCPTool(connection, entry) for entry in holder[0]]) / n
    return {"entry_us": entry_s, "tool_us": tool_s, "listed_bytes": listed_b, "entry_bytes": entry_b,
            "tool_bytes": tools_b, "n": n}


def _retained(build: Callable[[], Any]) -> float:
    """Bytes still allocated after ``build()`` while its result is alive (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del keep
    return float(after - before)


async def main(argv: list[str] | None = None) -> Path:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 5000],
                        help="bench fixture catalogue sizes (default 100 1000 5000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds for catalogues up to 100 tools (default 7)")
    parser.add_argument("--sample", type=int, default=500,
                        help="tools converted in-process for the per-tool figures (default 500)")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.sizes, opts.rounds, opts.sample = [100], 2, 100
    require(NODE, EVERYTHING)
    started = time.perf_counter()
    report = Report("discovery", "Discovery: connect + list + convert (stdio)", params=vars(opts) | {
        "json": str(opts.json)})
    catalogues: list[tuple[str, list[str], int]] = [("server-everything", everything_argv(), opts.rounds)]
    for size in opts.sizes:
        # Fewer rounds for the big ones: a 5,000-tool round takes tens of seconds on a small machine.
        count = opts.rounds if size <= 100 else 3 if size <= 1000 else 2
        catalogues.append((f"bench fixture, {size:,} tools", bench_server_argv(size), count))
    if opts.quick:
        catalogues = catalogues[:2]

    for label, server_argv, count in catalogues:
        async def run_raw(_: int, a: list[str] = server_argv) -> dict[str, Any]:
            return await raw_discovery(a)

        async def run_bridge(_: int, a: list[str] = server_argv) -> dict[str, Any]:
            return await bridge_discovery(a)

        results = await rounds({"raw": run_raw, "bridge": run_bridge}, count)
        raw, ours = results["raw"], results["bridge"]
        n = ours[0]["tools"]
        if raw[0]["tools"] != n:
            report.notes.append(f"{label}: raw listed {raw[0]['tools']} tools, the bridge {n}")
        raw_row = report.add("raw connect + list_tools", [x["total"] * 1e3 for x in raw], "ms", group=label,
                             is_baseline=True,
                             note=f"{n:,} tools; list {_med(raw, 'list'):.0f} ms; protocol {raw[0]['protocol']}")
        # What the bridge adds besides the listing: its total minus its list, minus raw's start-up.
        beyond = _med(ours, "total") - _med(ours, "list") - (_med(raw, "total") - _med(raw, "list"))
        row = report.add("bridge connect + list + convert", [x["total"] * 1e3 for x in ours], "ms", group=label,
                         baseline=raw_row, paired=paired([x["total"] for x in ours], [x["total"] for x in raw]),
                         note=f"list {_med(ours, 'list'):.0f} ms; {beyond:.0f} ms more than raw outside the "
                              f"listing, of which tools() {_med(ours, 'tools_call'):.0f} ms; protocol "
                              f"{ours[0]['protocol']}")
        if raw_row.stats and row.stats:
            row.extra["extra_us_per_tool"] = (row.stats.median - raw_row.stats.median) * 1e3 / n

    await per_tool(report, opts.sample, 3 if not opts.quick else 1)
    report.notes.append(f"Every measurement starts its own server process; raw and bridge alternate in rotating "
                        f"rounds ({opts.rounds} for server-everything and 100 tools, 3 for 1,000, 2 for 5,000); "
                        "ratios are medians of per-round ratios.")
    report.notes.append("'list' is the tools/list walk alone (all pages): raw's own timing vs the bridge's "
                        "Connection.list_seconds; the bridge's walk also repairs and vets each page.")
    return finish(report, started, opts.json)


async def per_tool(report: Report, sample: int, reps: int) -> None:
    """Per converted tool, for both kinds of schema; needs a live connection only as a reference."""
    from fixtures.bench_server import synthetic_tool

    sources: list[tuple[str, list[str], list[types.Tool] | None]] = [
        (f"bench fixture tool (~1.5 KB schema), {sample} converted", bench_server_argv(0),
         [synthetic_tool(i) for i in range(sample)]),
        ("server-everything tool, 13 converted", everything_argv(), None),
    ]
    for label, server_argv, listed in sources:
        async with connect(server_argv, cwd=ROOT) as server:
            tools = listed if listed is not None else await server.session.list_tools()
            cost = convert_cost(tools, server.toolset("bench", approval=False, warn_unguarded=False), reps)
        entry = report.add("catalogue entry (names, compiled schema)", cost["entry_us"], "µs/tool", group=label,
                           note=f"{cost['entry_bytes']:,.0f} bytes/tool retained")
        tool = report.add("MCPTool (AutoGen FunctionTool)", cost["tool_us"], "µs/tool", group=label,
                          note=f"{cost['tool_bytes']:,.0f} bytes/tool retained")
        if entry.stats and tool.stats:
            total = Stats.of([a + b for a, b in zip(cost["entry_us"], cost["tool_us"], strict=True)])
            report.add("converted tool, total", total, "µs/tool", group=label,
                       note=f"{cost['entry_bytes'] + cost['tool_bytes']:,.0f} bytes/tool; the listed mcp Tool "
                            f"itself holds {cost['listed_bytes']:,.0f}",
                       bytes_per_tool=cost["entry_bytes"] + cost["tool_bytes"], listed_bytes=cost["listed_bytes"])


def _med(samples: list[dict[str, Any]], key: str) -> float:
    return Stats.of([x[key] for x in samples]).median * 1e3


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
