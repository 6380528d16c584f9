"""Agent turn: MCP requests per AssistantAgent turn, our workbench against autogen-ext's.

One turn = ``agent.run(task=...)`` with a ``ReplayChatCompletionClient`` that asks for one
``echo`` call and then answers (``reflect_on_tool_use=True``: two model calls per turn). The
server is server-everything over stdio, behind ``_count_proxy.py``, which logs every message
the client sends; requests are counted per turn from that log, so the numbers are exact and
measured the same way for both clients. Variants:

- bridge ``server.workbench_for(...)`` (``MCPWorkbench``): lists from its cached catalogue;
- bridge ``server.tools_for(...)`` as ``tools=`` (AutoGen wraps them in a ``StaticWorkbench``);
- autogen-ext ``McpWorkbench`` (its venv): asks the server on every ``list_tools``;
- autogen-ext ``mcp_server_tools`` as ``tools=``: a new server process (initialize) per call.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from _common import (
    EVERYTHING,
    NODE,
    PROXY,
    Report,
    Stats,
    bench_parser,
    everything_argv,
    finish,
    optional_driver,
    require,
)
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient

from bridge import connect

# The replay model client warns on every call ("tool_choice ... ignored in replay mode", token
# counts) through this logger; the noise would bury the results.
logging.getLogger("autogen_core.events").setLevel(logging.ERROR)

TOOL, ARGS = "echo", {"message": "hello from the agent"}


def replay_client(turns: int) -> ReplayChatCompletionClient:
    """Per turn: a function call to ``echo``, then a final answer (same script as the driver's)."""
    responses: list[Any] = []
    for i in range(turns):
        call = FunctionCall(id=f"call-{i}", name=TOOL, arguments=json.dumps(ARGS))
        responses += [CreateResult(finish_reason="function_calls", content=[call], usage=RequestUsage(0, 0),
                                   cached=False), f"done {i}"]
    return ReplayChatCompletionClient(responses, model_info={
        "function_calling": True, "vision": False, "json_output": False, "family": "unknown",
        "structured_output": False})


async def bridge_turns(log: Path, turns: int, mode: str) -> dict[str, Any]:
    """Run ``turns`` turns with our workbench or tools; log offsets at each boundary, like the driver."""
    offsets = [log.stat().st_size if log.exists() else 0]
    proxied = [sys.executable, str(PROXY), "--log", str(log), "--", *everything_argv()]
    async with connect(proxied, name="everything") as server:
        if mode == "workbench":
            kw: dict[str, Any] = {"workbench": server.workbench_for("bench", approval=False)}
        else:
            kw = {"tools": await server.tools_for("bench", approval=False)}
        offsets.append(log.stat().st_size)
        agent = AssistantAgent("bench", model_client=replay_client(turns), reflect_on_tool_use=True, **kw)
        walls = []
        for i in range(turns):
            t0 = time.perf_counter()
            result = await agent.run(task=f"turn {i}: call {TOOL}")
            walls.append(time.perf_counter() - t0)
            events = [m for m in result.messages if isinstance(m, ToolCallExecutionEvent)]
            if len(events) != 1 or any(r.is_error for r in events[0].content):
                raise RuntimeError(f"turn {i} did not make exactly one successful tool call: {events}")
            offsets.append(log.stat().st_size)
    return {"offsets": offsets, "walls": walls}


def count(log: Path, offsets: list[int]) -> tuple[Counter[str], list[Counter[str]]]:
    """Client messages of the setup and of each turn, by kind and method, from the proxy log."""
    data = log.read_bytes()
    slices = [data[a:b].decode().splitlines() for a, b in itertools.pairwise(offsets)]
    counters = [Counter(line.split(" ", 1)[1] for line in lines) for lines in slices]
    return counters[0], counters[1:]


def describe(counter: Counter[str]) -> str:
    """``tools/call ×1, tools/list ×2``, plus what the server itself announced meanwhile."""
    def by(prefix: str) -> str:
        items = sorted((k.removeprefix(prefix), v) for k, v in counter.items() if k.startswith(prefix))
        return ", ".join(f"{method} ×{n}" for method, n in items)

    text = by("request ") or "none"
    announced = by("server-notification ")
    return f"{text} (server sent {announced})" if announced else text


def describe_turns(turns: list[Counter[str]]) -> str:
    """``turn 1: ...; turns 2–5: ...``: runs of turns with the same requests, in order."""
    parts: list[str] = []
    start = 0
    for i in range(1, len(turns) + 1):
        if i == len(turns) or describe(turns[i]) != describe(turns[start]):
            span = f"turn {start + 1}" if i - start == 1 else f"turns {start + 1}–{i}"
            parts.append(f"{span}: {describe(turns[start])}")
            start = i
    return "; ".join(parts) if len(parts) > 1 else f"every turn: {describe(turns[0])}"


def requests(counter: Counter[str]) -> int:
    return sum(v for k, v in counter.items() if k.startswith("request "))


async def main(argv: list[str] | None = None) -> Path:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5, help="turns per variant (default 5)")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.turns = 2
    require(NODE, EVERYTHING)
    started = time.perf_counter()
    report = Report("agent_turn", "Agent turn: MCP requests per AssistantAgent turn (1 tool call, 2 model calls)",
                    params=vars(opts) | {"json": str(opts.json)})
    outcomes: dict[str, tuple[Path, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        async with optional_driver(report.notes) as driver:
            for name in ("bridge-workbench", "bridge-tools", "ext-workbench", "ext-tools"):
                log = Path(tmp) / f"{name}.log"
                log.touch()
                side, _, mode = name.partition("-")
                if side == "bridge":
                    outcomes[name] = (log, await bridge_turns(log, opts.turns, mode))
                elif driver is not None:
                    proxied = [sys.executable, str(PROXY), "--log", str(log), "--", *everything_argv()]
                    out = await driver.request({"op": "agent_turns", "mode": "workbench" if mode == "workbench"
                                                else "percall", "argv": proxied, "log": str(log), "turns": opts.turns,
                                                "tool": TOOL, "arguments": ARGS}, timeout=300)
                    outcomes[name] = (log, out)
            ext = f"autogen-ext {driver.versions['autogen_ext']}, mcp {driver.versions['mcp']}" if driver else ""
        labels = {
            "bridge-workbench": "bridge server.workbench_for() (MCPWorkbench)",
            "bridge-tools": "bridge server.tools_for() as tools=",
            "ext-workbench": "autogen-ext McpWorkbench",
            "ext-tools": "autogen-ext mcp_server_tools() as tools= (per-call mode)",
        }
        base = None
        for name, (log, out) in outcomes.items():
            setup, turns = count(log, out["offsets"])
            per_turn = [requests(c) for c in turns]
            wall = Stats.of([w * 1e3 for w in out["walls"]]).median
            note = f"{describe_turns(turns)}; setup: {describe(setup)}; {wall:.0f} ms/turn"
            if name.startswith("ext") and ext:
                note += f"; {ext}"
            row = report.add(labels[name], per_turn, "requests/turn", baseline=base, note=note,
                             is_baseline=base is None, per_turn=[dict(c) for c in turns], setup=dict(setup))
            base = base or row
    report.notes.append(f"{opts.turns} turns per variant, median per turn; counts are client→server JSON-RPC "
                        "requests (each one a round trip) seen by a stdio proxy between client and server; "
                        "notifications are not counted. Setup = connecting and handing the tools to the agent.")
    report.notes.append("server-everything announces tools/list_changed right after initialize; the bridge "
                        "re-lists once on its next use, as it should. mcp 1.x's ClientSession lists tools before "
                        "the first call on a session (to learn output schemas), hence autogen-ext per-call mode's "
                        "tools/list in every turn.")
    return finish(report, started, opts.json)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
