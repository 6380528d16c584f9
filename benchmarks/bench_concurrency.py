"""Concurrency: 100 simultaneous calls of a 1-second tool on one server, wall time against 1 s.

The bench fixture's ``sleep(seconds)`` over stdio, one server process and one session per
variant: the bridge (``MCPTool.run_json`` via ``asyncio.gather``), a raw mcp 2.x
``ClientSession`` for the floor, and autogen-ext's ``McpWorkbench`` (in its own venv). A
client that serialised calls would take 100 s; the ideal is 1 s plus the round trips.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from _common import ROOT, Report, bench_parser, bench_server_argv, finish, optional_driver, rounds
from autogen_core import CancellationToken
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from bridge import connect


async def main(argv: list[str] | None = None) -> Path:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="simultaneous calls (default 100)")
    parser.add_argument("--seconds", type=float, default=1.0, help="each call sleeps this long (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.rounds = 2
    started = time.perf_counter()
    report = Report("concurrency", f"Concurrency ({opts.calls} simultaneous {opts.seconds:g}-s calls, one server, "
                    "stdio)", params=vars(opts) | {"json": str(opts.json)})
    server_argv = bench_server_argv(0)
    args = {"seconds": opts.seconds}
    params = StdioServerParameters(command=server_argv[0], args=server_argv[1:], cwd=str(ROOT))
    with open(os.devnull, "w") as devnull:  # the SDK wants a real file for the child's stderr
        async with stdio_client(params, errlog=devnull) as (read, write), ClientSession(read, write) as raw, \
                connect(server_argv, cwd=ROOT, name="bench") as server, optional_driver(report.notes) as driver:
            init = await raw.initialize()
            protocols = {"raw": init.protocol_version, "bridge": server.info.protocol_version}
            tool = next(t for t in await server.tools() if t.mcp_name == "sleep")
            token = CancellationToken()

            async def run_raw(_: int) -> float:
                t0 = time.perf_counter()
                results = await asyncio.gather(*(raw.call_tool("sleep", args) for _ in range(opts.calls)))
                wall = time.perf_counter() - t0
                if any(r.is_error for r in results):
                    raise RuntimeError("raw sleep call failed")
                return wall

            async def run_bridge(_: int) -> float:
                t0 = time.perf_counter()
                await asyncio.gather(*(tool.run_json(args, token) for _ in range(opts.calls)))
                return time.perf_counter() - t0

            variants: dict[str, Any] = {"raw": run_raw, "bridge": run_bridge}
            if driver is not None:
                async def run_workbench(_: int) -> float:
                    out = await driver.request({"op": "concurrent", "argv": server_argv, "cwd": str(ROOT),
                                                "tool": "sleep", "arguments": args, "calls": opts.calls})
                    if out["errors"]:
                        raise RuntimeError(f"McpWorkbench: {out['errors']} calls failed: {out['first_error']}")
                    return float(out["wall"])

                variants["workbench"] = run_workbench
                # Its session opens lazily: one untimed call so the first round does not pay the spawn.
                await driver.request({"op": "calls", "mode": "workbench", "argv": server_argv, "cwd": str(ROOT),
                                      "tool": "sleep", "arguments": {"seconds": 0}, "calls": 1})
            results = await rounds(variants, opts.rounds)

    ideal = opts.seconds
    base = report.add("ideal (one call's sleep)", [ideal], "s", is_baseline=True,
                      note="what a fully concurrent client would approach")
    report.add("raw mcp ClientSession, asyncio.gather", results["raw"], "s", baseline=base,
               note=f"protocol {protocols['raw']}")
    report.add("bridge MCPTool.run_json, asyncio.gather", results["bridge"], "s", baseline=base,
               note=f"protocol {protocols['bridge']}")
    if "workbench" in results:
        ext = f"autogen-ext {driver.versions['autogen_ext']}, mcp {driver.versions['mcp']}" if driver else ""
        report.add("autogen-ext McpWorkbench.call_tool, asyncio.gather", results["workbench"], "s", baseline=base,
                   note=ext)
    report.notes.append(f"{len(results['raw'])} rotating rounds; each variant has its own bench-fixture server "
                        "process (python -m fixtures.bench_server --tools 0) and one session kept across rounds.")
    return finish(report, started, opts.json)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
