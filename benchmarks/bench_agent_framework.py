"""Agent Framework: the bridge's tools against Agent Framework's own ``MCPStdioTool``, side by side.

Servers over stdio, each variant on its own server process: the schema zoo (``fixtures.schema_zoo``),
and server-everything when it is installed (``make third-party``). Measured:

- per-call overhead: sequential calls of one echoing tool through ``FunctionTool.invoke`` (what the
  framework's function loop calls), against a raw mcp ``ClientSession.call_tool`` on one session with
  the bridge's per-request timeout (the baseline); medians over rotating rounds, ratios paired per round;
- MCP requests per agent turn: an Agent Framework ``Agent`` whose scripted model (real HTTP, offline)
  asks for one tool call and then answers; every client message is counted at the wire by
  ``_count_proxy.py``;
- fidelity (zoo): per tool, whether the JSON schema the model was sent (read from the scripted model's
  recorded request) equals the server's inputSchema, and whether the tool name is OpenAI-safe.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from _common import (
    EVERYTHING,
    NODE,
    PROXY,
    ROOT,
    CpuClock,
    Report,
    bench_parser,
    everything_argv,
    finish,
    paired,
    rounds,
)
from agent_framework import Agent, FunctionTool, MCPStdioTool
from agent_framework.openai import OpenAIChatCompletionClient
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from bridge import connect
from bridge.agent_framework import tools_for
from fixtures.openai_compat import ScriptedModel, text, tool_call
from fixtures.schema_zoo import ZOO_SCHEMAS

SAFE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Target:
    """One server to measure, and the echoing tool called on it."""

    label: str
    argv: list[str]
    env: dict[str, str]
    tool: str
    arguments: dict[str, Any]
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)  # known inputSchemas, for fidelity


def targets() -> list[Target]:
    zoo = Target("schema zoo", [sys.executable, "-m", "fixtures.schema_zoo", "--transport", "stdio"],
                 {"PYTHONPATH": str(ROOT)}, "echo_types", {"count": 3, "name": "bench"}, ZOO_SCHEMAS)
    found = [zoo]
    if NODE.exists() and EVERYTHING.exists():
        found.append(Target("server-everything", everything_argv(), {}, "echo", {"message": "hello from the bench"}))
    return found


def remote_name(tool: FunctionTool) -> str:
    """The MCP name behind a function tool, for either side."""
    props = tool.additional_properties or {}
    return str(props.get("mcp_name") or props.get("_mcp_remote_name") or tool.name)


@contextlib.asynccontextmanager
async def bridge_side(argv: Sequence[str], env: dict[str, str]) -> AsyncIterator[list[FunctionTool]]:
    async with connect(list(argv), env=env, cwd=ROOT, name="bench") as server:
        yield list(await tools_for(server, agent="bench", approval=False, warn_unguarded=False))


@contextlib.asynccontextmanager
async def framework_side(argv: Sequence[str], env: dict[str, str]) -> AsyncIterator[list[FunctionTool]]:
    async with MCPStdioTool("bench", argv[0], args=list(argv[1:]), env=env, load_prompts=False) as mcp:
        yield list(mcp.functions)


def bridge_protocol(tools: list[FunctionTool]) -> str:
    toolset = getattr(tools[0], "toolset", None)
    return str(toolset.connections[0].info.protocol_version) if toolset is not None else "?"


SIDES: dict[str, Callable[[Sequence[str], dict[str, str]], contextlib.AbstractAsyncContextManager[list[FunctionTool]]]]
SIDES = {"bridge": bridge_side, "agent_framework": framework_side}
LABELS = {"bridge": "bridge tools_for -> MCPFunctionTool.invoke",
          "agent_framework": "Agent Framework MCPStdioTool function .invoke"}
SHORT = {"bridge": "bridge tools_for", "agent_framework": "Agent Framework MCPStdioTool"}


# -- per-call overhead ---------------------------------------------------------------------------


async def overhead(report: Report, target: Target, calls: int, count: int, budget: float) -> None:
    params = StdioServerParameters(command=target.argv[0], args=target.argv[1:],
                                   env={**os.environ, **target.env}, cwd=ROOT)
    with open(os.devnull, "w") as devnull:  # the SDK wants a real file for the child's stderr
        await _overhead(report, target, calls, count, budget, params, devnull)


async def _overhead(report: Report, target: Target, calls: int, count: int, budget: float,
                    params: StdioServerParameters, devnull: Any) -> None:
    warmup = 5
    async with contextlib.AsyncExitStack() as stack:
        read, write = await stack.enter_async_context(stdio_client(params, errlog=devnull))
        raw = await stack.enter_async_context(ClientSession(read, write))
        init = await raw.initialize()
        # Every page, once: a tool the session has not listed makes each call re-list (to find its outputSchema).
        cursor: str | None = None
        while True:
            page = await raw.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
            if not (cursor := page.next_cursor):
                break
        bridge = await stack.enter_async_context(bridge_side(target.argv, target.env))
        negotiated = bridge_protocol(bridge)
        framework = await stack.enter_async_context(framework_side(target.argv, target.env))
        timeout = 60.0  # the bridge's default call_timeout, so both sides do the same timer work

        async def run_raw(_: int) -> dict[str, float]:
            for _ in range(warmup):
                await raw.call_tool(target.tool, target.arguments, read_timeout_seconds=timeout)
            with CpuClock() as clock:
                for _ in range(calls):
                    if (await raw.call_tool(target.tool, target.arguments, read_timeout_seconds=timeout)).is_error:
                        raise RuntimeError(f"raw {target.tool} failed")
            return {"wall": clock.wall / calls, "cpu": clock.cpu / calls}

        def via(tools: list[FunctionTool]) -> Callable[[int], Awaitable[dict[str, float]]]:
            tool = next(t for t in tools if remote_name(t) == target.tool)

            async def run(_: int) -> dict[str, float]:
                for _ in range(warmup):
                    await tool.invoke(arguments=target.arguments)
                with CpuClock() as clock:
                    for i in range(calls):
                        result = await tool.invoke(arguments=target.arguments, tool_call_id=f"call_{i}")
                        if not result or (result[0].text or "").startswith("Error"):
                            raise RuntimeError(f"{target.tool} failed: {result[0].text if result else result}")
                return {"wall": clock.wall / calls, "cpu": clock.cpu / calls}

            return run

        toolset = getattr(bridge[0], "toolset")  # noqa: B009  (an MCPFunctionTool's; FunctionTool has none)

        async def run_core(_: int) -> dict[str, float]:
            for _ in range(warmup):
                await toolset.call(target.tool, target.arguments)
            with CpuClock() as clock:
                for _ in range(calls):
                    await toolset.call(target.tool, target.arguments)
            return {"wall": clock.wall / calls, "cpu": clock.cpu / calls}

        results = await rounds({"raw": run_raw, "core": run_core, "bridge": via(bridge),
                                "agent_framework": via(framework)}, count, budget=budget)
    us = 1e6
    raw_walls = [x["wall"] for x in results["raw"]]
    base = report.add("raw mcp ClientSession.call_tool", [w * us for w in raw_walls], "µs/call", group=target.label,
                      note=f"CPU {cpu(results['raw'])} µs/call; protocol {init.protocol_version} "
                           f"(the bridge negotiated {negotiated})", is_baseline=True)
    core = [x["wall"] for x in results["core"]]
    report.add("bridge Toolset.call (the core alone, no FunctionTool)", [w * us for w in core], "µs/call",
               baseline=base, paired=paired(core, raw_walls), group=target.label,
               note=f"CPU {cpu(results['core'])} µs/call; the rest of the row below is FunctionTool.invoke's")
    for side in SIDES:
        walls = [x["wall"] for x in results[side]]
        report.add(LABELS[side], [w * us for w in walls], "µs/call", baseline=base, paired=paired(walls, raw_walls),
                   group=target.label, note=f"CPU {cpu(results[side])} µs/call; {calls} calls × {len(walls)} rounds")


def cpu(samples: list[dict[str, float]]) -> str:
    values = sorted(x["cpu"] * 1e6 for x in samples)
    return f"{values[len(values) // 2]:.0f}"


# -- one agent turn: MCP requests at the wire, and the schemas the model was sent ----------------


async def agent_turns(target: Target, side: str, log: Path, turns: int) -> tuple[list[Counter[str]], dict[str, Any]]:
    proxied = [sys.executable, str(PROXY), "--log", str(log), "--", *target.argv]
    offsets = [log.stat().st_size]
    script = [step for i in range(turns) for step in (tool_call(target.tool, target.arguments), text(f"done {i}"))]
    async with SIDES[side](proxied, target.env) as tools:
        offsets.append(log.stat().st_size)
        with ScriptedModel(script) as model:
            client = OpenAIChatCompletionClient(model="gpt-4o-mini", base_url=model.base_url, api_key="bench")
            try:
                agent = Agent(client=client, name="bench", instructions="You are bench.", tools=tools)
                for i in range(turns):
                    await agent.run(f"turn {i}: call {target.tool}")
                    offsets.append(log.stat().st_size)
            finally:
                await client.client.close()
            sent = model.tool_definitions(0)
        if len(model.requests) != 2 * turns:
            raise RuntimeError(f"{side}: expected {2 * turns} model requests, got {len(model.requests)}")
        names = {t.name: remote_name(t) for t in tools}
    data = log.read_bytes()
    counters = [Counter(line.split(" ", 1)[1] for line in data[a:b].decode().splitlines())
                for a, b in itertools.pairwise(offsets)]
    return counters[1:], {"sent": sent, "names": names}


def requests(counter: Counter[str]) -> int:
    return sum(v for k, v in counter.items() if k.startswith("request "))


def by_turn(turns: list[Counter[str]]) -> str:
    """``turn 1: ...; turns 2–3: ...``: runs of turns with the same requests."""
    parts, start = [], 0
    for i in range(1, len(turns) + 1):
        if i == len(turns) or methods(turns[i]) != methods(turns[start]):
            span = f"turn {start + 1}" if i - start == 1 else f"turns {start + 1}–{i}"
            parts.append(f"{span}: {methods(turns[start])}")
            start = i
    return "; ".join(parts) if len(parts) > 1 else f"every turn: {methods(turns[0])}"


def what_differs(sent: Any, listed: Any) -> str:
    """``+properties``: top-level keys the model was sent that the server did not list (- missing, ~ changed)."""
    if not isinstance(sent, dict) or not isinstance(listed, dict):
        return "~"
    marks = [f"+{k}" for k in sorted(set(sent) - set(listed))] + [f"-{k}" for k in sorted(set(listed) - set(sent))]
    marks += [f"~{k}" for k in sorted(set(sent) & set(listed)) if canonical(sent[k]) != canonical(listed[k])]
    return " ".join(marks)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def methods(counter: Counter[str]) -> str:
    items = sorted((k.removeprefix("request "), v) for k, v in counter.items() if k.startswith("request "))
    return ", ".join(f"{m} ×{n}" for m, n in items) or "none"


def fidelity(report: Report, target: Target, side: str, seen: dict[str, Any]) -> None:
    sent, names = seen["sent"], seen["names"]
    equal, differs, unsafe = 0, [], []
    for name, definition in sent.items():
        mcp = names.get(name, name)
        if canonical(definition.get("parameters")) == canonical(target.schemas.get(mcp)):
            equal += 1
        else:
            differs.append(f"{mcp} ({what_differs(definition.get('parameters'), target.schemas.get(mcp))})")
        if not SAFE.match(name):
            unsafe.append(name)
    total = len(target.schemas)
    report.add(f"{SHORT[side]}: schema sent == inputSchema",
               [float(equal)], f"tools of {total}", group=f"fidelity ({target.label})",
               note=(f"differs: {', '.join(sorted(differs))}" if differs else "every tool equal")
               + f"; {len(sent)} offered; names not OpenAI-safe: {', '.join(unsafe) if unsafe else 'none'}",
               equal=equal, differs=sorted(differs), unsafe_names=unsafe, offered=len(sent))


async def main(argv: list[str] | None = None) -> Path:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="sequential calls per round (default 100)")
    parser.add_argument("--rounds", type=int, default=9, help="rounds (default 9)")
    parser.add_argument("--turns", type=int, default=3, help="agent turns per variant (default 3)")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.calls, opts.rounds, opts.turns = 20, 3, 2
    started = time.perf_counter()
    report = Report("agent_framework", "Agent Framework: bridge tools vs MCPStdioTool (stdio)",
                    params=vars(opts) | {"json": str(opts.json)})
    found = targets()
    if len(found) == 1:
        report.notes.append("server-everything rows skipped: run `make third-party` to install it")
    for target in found:
        await overhead(report, target, opts.calls, opts.rounds, budget=25)
    outcomes: dict[tuple[str, str], tuple[list[Counter[str]], dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-af-") as tmp:
        for target in found:
            for side in SIDES:
                log = Path(tmp) / f"{target.label}-{side}.log"
                log.touch()
                outcomes[target.label, side] = await agent_turns(target, side, log, opts.turns)
    for target in found:
        for side in SIDES:
            per_turn, _ = outcomes[target.label, side]
            report.add(SHORT[side], [float(requests(c)) for c in per_turn], "requests/turn",
                       group=f"MCP requests per agent turn ({target.label})",
                       note=f"{by_turn(per_turn)}; 2 model requests per turn")
    for target in found:
        for side in SIDES:
            if target.schemas:
                fidelity(report, target, side, outcomes[target.label, side][1])
    report.notes.append("Overhead rounds rotate the order of the variants; each variant has its own server process; "
                        "ratios are the median of per-round ratios against raw ClientSession.")
    return finish(report, started, opts.json)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
