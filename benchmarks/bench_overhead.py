"""Per-call overhead: sequential calls of server-everything's ``echo`` over stdio.

Variants, each on a server process of its own (a new one every round), measured in rotating
rounds in one run:

- raw: mcp 2.x ``ClientSession.call_tool`` on one initialized session, with the per-request
  timeout the bridge also sets (the same work: the baseline), and without one (the floor);
- raw again: the baseline's code as one more variant, so the table shows how far apart two
  identical variants land on this machine (the noise floor of every ratio);
- bridge: ``MCPTool.run_json`` (lookup, jsonschema validation, interceptor chain, result
  rendering) on the bridge's persistent session; goal: within 5% of raw;
- autogen-ext ``McpWorkbench`` (one session, kept open across rounds);
- autogen-ext default adapter (``mcp_server_tools`` + ``tool.run_json``): a new server
  process per call, so it runs fewer calls in fewer rounds; its number is still per call.

Reported per call: wall time (what a caller waits) and, for in-process variants, this
process's CPU time (what the client code costs; a loaded machine inflates it far less).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from _common import (
    EVERYTHING,
    NODE,
    AutogenExtDriver,
    CpuClock,
    Report,
    bench_parser,
    everything_argv,
    finish,
    optional_driver,
    paired,
    require,
    rounds,
)
from autogen_core import CancellationToken
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from bridge import Options, connect

ARGS = {"message": "hello from the benchmark"}
COUNT_ROUND = -1  # the round number that counts bytecodes instead of timing


async def bytecodes(call: Any, n: int) -> float:
    """Python bytecodes executed per ``await call()``, in every task of this process."""
    count = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True

        def local(frame: Any, event: str, arg: Any) -> Any:
            nonlocal count
            if event == "opcode":
                count += 1
            return local

        return local

    sys.settrace(trace)
    try:
        for _ in range(n):
            await call()
    finally:
        sys.settrace(None)
    return count / n


async def main(argv: list[str] | None = None) -> Path:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="sequential calls per round (default 200)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--percall-calls", type=int, default=20,
                        help="calls per round for autogen-ext's per-call mode (default 20)")
    parser.add_argument("--percall-rounds", type=int, default=2, help="rounds that include it (default 2)")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.calls, opts.rounds, opts.percall_calls, opts.percall_rounds = 50, 3, 3, 1
    require(NODE, EVERYTHING)
    started = time.perf_counter()
    report = Report("overhead", f"Per-call overhead ({opts.calls} sequential echo calls, stdio, server-everything)",
                    params=vars(opts) | {"json": str(opts.json)})
    argv_ = everything_argv()
    warmup = 10
    results: dict[str, list[Any]] = {}
    raw_params = StdioServerParameters(command=argv_[0], args=argv_[1:])
    protocols: dict[str, str] = {}
    call_timeout = Options().call_timeout
    devnull = open(os.devnull, "w")  # noqa: SIM115 (the SDK wants a real file for the child's stderr)

    def timed(call: Any, r: int) -> Any:
        async def batch() -> dict[str, float]:
            for _ in range(warmup):
                await call()
            if r == COUNT_ROUND:
                return {"bytecodes": await bytecodes(call, 50)}
            with CpuClock() as clock:
                for _ in range(opts.calls):
                    await call()
            return {"wall": clock.wall / opts.calls, "cpu": clock.cpu / opts.calls}

        return batch

    # Every variant gets a server process of its own, new each round: one server-everything
    # process can run 10% slower than another for its whole life (where the VM placed it), which
    # would otherwise bias the variant that happened to get it. Start-up is not timed.
    def raw_variant(timeout: float | None) -> Any:
        async def run(r: int) -> dict[str, float]:
            async with stdio_client(raw_params, errlog=devnull) as (read, write), \
                    ClientSession(read, write) as raw:
                protocols["raw"] = (await raw.initialize()).protocol_version

                async def call() -> None:
                    result = await raw.call_tool("echo", ARGS, read_timeout_seconds=timeout)
                    if result.is_error:
                        raise RuntimeError(f"raw echo failed: {result}")

                out: dict[str, float] = await timed(call, r)()
                return out

        return run

    async def run_bridge(r: int) -> dict[str, float]:
        async with connect(argv_, name="everything") as server:
            protocols["bridge"] = server.info.protocol_version
            tool = next(t for t in await server.tools() if t.mcp_name == "echo")
            token = CancellationToken()

            async def call() -> None:
                await tool.run_json(ARGS, token)  # raises ToolError on an error result

            out: dict[str, float] = await timed(call, r)()
            return out

    run_raw = raw_variant(call_timeout)
    run_raw_again = raw_variant(call_timeout)
    run_raw_bare = raw_variant(None)
    with devnull:
        async with optional_driver(report.notes) as driver:
            variants = {"raw": run_raw, "raw_again": run_raw_again, "raw_bare": run_raw_bare, "bridge": run_bridge}
            if driver is not None:
                variants |= ext_variants(driver, argv_, opts.calls, opts.percall_calls, warmup)
            percall_rounds = {round(i * opts.rounds / opts.percall_rounds) for i in range(opts.percall_rounds)}
            results = await rounds(variants, opts.rounds, budget=240,
                                   skip=lambda name, r: name == "percall" and r not in percall_rounds)
            counted = {"raw": (await run_raw(COUNT_ROUND))["bytecodes"],
                       "bridge": (await run_bridge(COUNT_ROUND))["bytecodes"]}

    us = 1e6
    raw_walls = [x["wall"] for x in results["raw"]]
    raw_row = report.add("raw mcp ClientSession.call_tool (same timeout)", [w * us for w in raw_walls], "µs/call",
                         note=f"CPU {_cpu(results['raw'])} µs/call; protocol {protocols['raw']}; "
                              f"read_timeout_seconds={call_timeout:g}", is_baseline=True)
    again_walls = [x["wall"] for x in results["raw_again"]]
    report.add("raw mcp ClientSession.call_tool again (the noise floor)", [w * us for w in again_walls], "µs/call",
               baseline=raw_row, paired=paired(again_walls, raw_walls),
               note=f"CPU {_cpu(results['raw_again'])} µs/call; the baseline's very code, run as one more variant: "
                    "how far apart two identical variants land on this machine")
    bare_walls = [x["wall"] for x in results["raw_bare"]]
    report.add("raw mcp ClientSession.call_tool (no timeout)", [w * us for w in bare_walls], "µs/call",
               baseline=raw_row, paired=paired(bare_walls, raw_walls), note=f"CPU {_cpu(results['raw_bare'])} µs/call")
    bridge_walls = [x["wall"] for x in results["bridge"]]
    bridge_row = report.add("bridge MCPTool.run_json", [w * us for w in bridge_walls], "µs/call",
                            baseline=raw_row, paired=paired(bridge_walls, raw_walls))
    wall_extra = bridge_row.stats.median - raw_row.stats.median if bridge_row.stats and raw_row.stats else 0.0
    cpu_extra = float(_cpu(results["bridge"])) - float(_cpu(results["raw"]))
    bridge_row.note = (f"CPU {_cpu(results['bridge'])} µs/call; {wall_extra:+.0f} µs wall and {cpu_extra:+.0f} µs CPU "
                       f"per call vs raw; protocol {protocols['bridge']}; goal ≤ 1.05×")
    bridge_row.extra |= {"overhead_wall_us": wall_extra, "overhead_cpu_us": cpu_extra}
    # Noise-free: the Python bytecodes this process executes per call (the SDK's and ours, every
    # task), counted by a trace function over 50 calls. C work (pydantic, json) is not counted.
    code_base = report.add("raw mcp ClientSession.call_tool: Python bytecodes per call", [counted["raw"]], "ops",
                           is_baseline=True, note="sys.settrace opcode events, all tasks of this process")
    report.add("bridge MCPTool.run_json: Python bytecodes per call", [counted["bridge"]], "ops", baseline=code_base,
               note=f"{counted['bridge'] - counted['raw']:+.0f} per call")
    if driver is None:
        return finish(report, started, opts.json)
    ext = f"autogen-ext {driver.versions['autogen_ext']}, mcp {driver.versions['mcp']}"
    wb_walls = [x["wall"] for x in results["workbench"]]
    report.add("autogen-ext McpWorkbench.call_tool", [w * us for w in wb_walls], "µs/call", baseline=raw_row,
               paired=paired(wb_walls, raw_walls),
               note=f"{ext}; CPU {_cpu(results['workbench'])} µs/call (its process)")
    samples = [s * 1e3 for x in results["percall"] for s in x["samples"]]
    report.add("autogen-ext default adapter (mcp_server_tools + run_json)", samples, "ms/call", baseline=raw_row,
               paired=[x["wall"] / raw_walls[x["round"]] for x in results["percall"]],
               note=f"a server process per call: {opts.percall_calls} calls (not {opts.calls}) × "
                    f"{len(results['percall'])} rounds, median over the {len(samples)} calls")
    report.notes.append(
        f"Rounds rotate the order of the variants; {len(results['raw'])} rounds of {opts.calls} calls each, "
        f"{warmup} untimed warm-up calls per round; each variant starts a server-everything process of its own "
        "every round (start-up not timed), so no variant keeps a process that happens to run slow.")
    report.notes.append("Ratios are against raw ClientSession: the median of per-round ratios (each round's two "
                        "batches ran back to back under the same load). CPU is the client process's own CPU time "
                        "per call (the server's is not included).")
    return finish(report, started, opts.json)


def ext_variants(driver: AutogenExtDriver, argv: list[str], calls: int, percall_calls: int, warmup: int
                 ) -> dict[str, Any]:
    async def run_workbench(_: int) -> dict[str, float]:
        out = await driver.request({"op": "calls", "mode": "workbench", "argv": argv, "tool": "echo",
                                    "arguments": ARGS, "calls": calls, "warmup": warmup})
        return {"wall": out["wall"] / calls, "cpu": out["cpu"] / calls}

    async def run_percall(r: int) -> dict[str, Any]:
        out = await driver.request({"op": "calls", "mode": "percall", "argv": argv, "tool": "echo",
                                    "arguments": ARGS, "calls": percall_calls, "warmup": 0}, timeout=600)
        return {"wall": out["wall"] / percall_calls, "samples": out["samples"], "round": r}

    return {"workbench": run_workbench, "percall": run_percall}


def _cpu(samples: list[dict[str, float]]) -> str:
    cpus = sorted(x["cpu"] * 1e6 for x in samples)
    return f"{cpus[len(cpus) // 2]:.0f}"


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
