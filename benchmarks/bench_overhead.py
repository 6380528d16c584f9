"""Per-call overhead: sequential calls of server-everything's ``echo`` over stdio.

Variants, each on a server process of its own (a new one every round), measured in rounds in
one run; within a round the in-process variants' calls are interleaved in short slices:

- raw: mcp 2.x ``ClientSession.call_tool`` on one initialized session, with the per-request
  timeout the bridge also sets (the same work: the baseline), and without one (the floor);
- raw again: the baseline's code as one more variant, so the table shows how far apart two
  identical variants land on this machine (the noise floor of every ratio);
- raw on the bridge's stdio transport: the baseline's session over ``bridge.stdio`` instead of
  the SDK's ``stdio_client``, which splits the bridge's number into what its transport saves
  and what its layers cost;
- bridge: ``MCPTool.run_json`` (lookup, jsonschema validation, interceptor chain, result
  rendering) on the bridge's persistent session; goals: at most raw (≤ 1.0×), and its layers at
  most 1.10× the raw session on the same transport;
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
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
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
from bridge.stdio import stdio_streams
from bridge.targets import StdioTarget
from bridge.wire import Wire

ARGS = {"message": "hello from the benchmark"}
SLICES = 10  # interleaved slices per round: each variant runs calls/SLICES calls per slice
Call = Callable[[], Awaitable[None]]


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
    parser.add_argument("--calls", type=int, default=200,
                        help=f"sequential calls per round, at least {SLICES} (default 200)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--percall-calls", type=int, default=20,
                        help="calls per round for autogen-ext's per-call mode (default 20)")
    parser.add_argument("--percall-rounds", type=int, default=2, help="rounds that include it (default 2)")
    opts = parser.parse_args(argv)
    if opts.calls < SLICES:
        parser.error(f"--calls must be at least {SLICES} (the calls of a round are run in {SLICES} slices)")
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

    # Every in-process variant gets a server process of its own, new each round: one
    # server-everything process can run 10% slower than another for its whole life (where the VM
    # placed it), which would otherwise bias the variant that happened to get it. Within a round
    # the variants' calls are interleaved in short slices, so a noisy neighbour's burst lands on
    # all of them alike instead of on whichever batch ran then. Start-up is not timed.
    async def open_raw(stack: AsyncExitStack, timeout: float | None, ours: bool = False) -> Call:
        if ours:
            streams = stdio_streams(StdioTarget(argv_[0], tuple(argv_[1:])), stderr=devnull,
                                    observer=Wire("everything", lambda: None), grace=Options().exit_grace)
        else:
            streams = stdio_client(raw_params, errlog=devnull)
        read, write = await stack.enter_async_context(streams)
        raw = await stack.enter_async_context(ClientSession(read, write))
        protocols["raw"] = (await raw.initialize()).protocol_version

        async def call() -> None:
            result = await raw.call_tool("echo", ARGS, read_timeout_seconds=timeout)
            if result.is_error:
                raise RuntimeError(f"raw echo failed: {result}")

        return call

    async def open_bridge(stack: AsyncExitStack) -> Call:
        server = await stack.enter_async_context(connect(argv_, name="everything"))
        protocols["bridge"] = server.info.protocol_version
        tool = next(t for t in await server.tools() if t.mcp_name == "echo")
        token = CancellationToken()

        async def call() -> None:
            await tool.run_json(ARGS, token)  # raises ToolError on an error result

        return call

    openers: dict[str, Callable[[AsyncExitStack], Awaitable[Call]]] = {
        "raw": lambda stack: open_raw(stack, call_timeout),
        "raw_again": lambda stack: open_raw(stack, call_timeout),
        "raw_bare": lambda stack: open_raw(stack, None),
        "raw_ours": lambda stack: open_raw(stack, call_timeout, ours=True),
        "bridge": open_bridge,
    }

    async def run_in_process(r: int) -> dict[str, dict[str, float]]:
        async with AsyncExitStack() as stack:
            calls = {name: await open_(stack) for name, open_ in openers.items()}
            for call in calls.values():
                for _ in range(warmup):
                    await call()
            names = list(calls)
            totals = {name: [0.0, 0.0] for name in names}
            for piece in range(SLICES):
                shift = (r + piece) % len(names)
                for name in names[shift:] + names[:shift]:
                    call = calls[name]
                    with CpuClock() as clock:
                        for _ in range(opts.calls // SLICES):
                            await call()
                    totals[name][0] += clock.wall
                    totals[name][1] += clock.cpu
        n = SLICES * (opts.calls // SLICES)
        return {name: {"wall": wall / n, "cpu": cpu / n} for name, (wall, cpu) in totals.items()}

    async def count(opener: Callable[[AsyncExitStack], Awaitable[Call]]) -> float:
        async with AsyncExitStack() as stack:
            call = await opener(stack)
            for _ in range(warmup):
                await call()
            return await bytecodes(call, 50)

    with devnull:
        async with optional_driver(report.notes) as driver:
            variants: dict[str, Any] = {"in_process": run_in_process}
            if driver is not None:
                variants |= ext_variants(driver, argv_, opts.calls, opts.percall_calls, warmup)
            percall_rounds = {round(i * opts.rounds / opts.percall_rounds) for i in range(opts.percall_rounds)}
            results = await rounds(variants, opts.rounds, budget=240,
                                   skip=lambda name, r: name == "percall" and r not in percall_rounds)
            counted = {"raw": await count(openers["raw"]), "bridge": await count(openers["bridge"])}
    for name in openers:
        results[name] = [round_[name] for round_ in results["in_process"]]

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
    ours_walls = [x["wall"] for x in results["raw_ours"]]
    report.add("raw mcp ClientSession.call_tool on the bridge's stdio transport", [w * us for w in ours_walls],
               "µs/call", baseline=raw_row, paired=paired(ours_walls, raw_walls),
               note=f"CPU {_cpu(results['raw_ours'])} µs/call; the same timeout; the sending task writes to the pipe "
                    "itself (no writer task): what the bridge's transport saves, before its layers")
    bridge_walls = [x["wall"] for x in results["bridge"]]
    bridge_row = report.add("bridge MCPTool.run_json", [w * us for w in bridge_walls], "µs/call",
                            baseline=raw_row, paired=paired(bridge_walls, raw_walls))
    wall_extra = bridge_row.stats.median - raw_row.stats.median if bridge_row.stats and raw_row.stats else 0.0
    cpu_extra = float(_cpu(results["bridge"])) - float(_cpu(results["raw"]))
    layers = sorted(paired(bridge_walls, ours_walls))
    bridge_row.note = (f"CPU {_cpu(results['bridge'])} µs/call; {wall_extra:+.0f} µs wall and {cpu_extra:+.0f} µs CPU "
                       f"per call vs raw; {layers[len(layers) // 2]:.2f}× the raw session on the same transport "
                       f"(the bridge's layers alone, goal ≤ 1.10×); protocol {protocols['bridge']}; goal ≤ 1.0×")
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
        f"{len(results['raw'])} rounds of {opts.calls} calls per variant, {warmup} untimed warm-up calls each; in "
        f"every round each in-process variant has a server-everything process of its own (start-up not timed) "
        f"and their calls are interleaved in {SLICES} slices of {opts.calls // SLICES}, in rotating order, so a "
        "burst of load lands on all of them alike. The autogen-ext rows run in their own process, in rotation "
        "with the round.")
    report.notes.append("Ratios are against raw ClientSession: the median of per-round ratios. CPU is the client "
                        "process's own CPU time per call (the server's is not included).")
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
