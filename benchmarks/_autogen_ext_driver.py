"""The autogen-ext 0.7.5 side of the benchmarks, run INSIDE its own venv (mcp<2).

    .third_party/venvs/autogen-ext/bin/python benchmarks/_autogen_ext_driver.py

``autogen_ext.tools.mcp`` only imports with mcp 1.x, so it cannot share a process with the
bridge (mcp 2.x). The benchmarks start this script once and send it one JSON command per line
on stdin; it answers one JSON line ``{"result": ...}`` or ``{"error": "..."}`` on stdout.
Commands (``op``):

- ``versions``: autogen-ext, mcp and Python versions.
- ``calls``: ``mode`` ``"workbench"`` (one ``McpWorkbench`` per server, kept open across
  commands, like our persistent session) or ``"percall"`` (the default adapter:
  ``mcp_server_tools(StdioServerParams(...))`` once, then ``tool.run_json`` per call, which spawns
  a server process per call); ``calls`` sequential calls of ``tool`` with ``arguments`` after
  ``warmup`` untimed ones. Returns wall and CPU seconds, and per-call seconds for ``percall``.
- ``concurrent``: ``calls`` simultaneous calls through the workbench; returns wall seconds.
- ``agent_turns``: ``turns`` AssistantAgent turns, each one tool call then a final answer, with
  the workbench or the per-call tools; returns the byte offsets of the proxy log
  (``_count_proxy.py``) at each boundary, so the caller counts the requests of each turn.

Only the standard library, autogen and mcp 1.x: nothing from the bridge is importable here.
"""

from __future__ import annotations

import asyncio
import importlib.metadata as metadata
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from autogen_core import CancellationToken
from autogen_ext.tools.mcp import McpWorkbench, StdioServerParams, mcp_server_tools

# The replay model client warns on every call ("tool_choice ... ignored in replay mode", token
# counts) through this logger; the noise would bury the results.
logging.getLogger("autogen_core.events").setLevel(logging.ERROR)

Params = tuple[tuple[str, ...], str | None]

_workbenches: dict[Params, McpWorkbench] = {}
_percall_tools: dict[Params, dict[str, Any]] = {}


def _params(command: dict[str, Any]) -> tuple[Params, StdioServerParams]:
    argv = tuple(command["argv"])
    cwd = command.get("cwd")
    # read_timeout_seconds stays at its default (5 s): we measure the adapter as shipped.
    return (argv, cwd), StdioServerParams(command=argv[0], args=list(argv[1:]), cwd=cwd)


async def _workbench(command: dict[str, Any]) -> tuple[McpWorkbench, float]:
    key, params = _params(command)
    if key in _workbenches:
        return _workbenches[key], 0.0
    started = time.perf_counter()
    workbench = McpWorkbench(params)
    await workbench.start()
    _workbenches[key] = workbench
    return workbench, time.perf_counter() - started


async def _percall(command: dict[str, Any]) -> tuple[dict[str, Any], float]:
    key, params = _params(command)
    if key in _percall_tools:
        return _percall_tools[key], 0.0
    started = time.perf_counter()
    tools = {tool.name: tool for tool in await mcp_server_tools(params)}
    _percall_tools[key] = tools
    return tools, time.perf_counter() - started


def _text(result: Any) -> str:
    # ToolResult (workbench) or the adapter's list of content blocks (per call).
    if hasattr(result, "to_text"):
        return str(result.to_text())
    return str(result)


async def op_calls(command: dict[str, Any]) -> dict[str, Any]:
    mode, name = command["mode"], command["tool"]
    arguments = command.get("arguments") or {}
    calls, warmup = int(command["calls"]), int(command.get("warmup", 0))
    samples: list[float] = []
    if mode == "workbench":
        workbench, setup = await _workbench(command)

        async def call() -> Any:
            result = await workbench.call_tool(name, arguments)
            if result.is_error:
                raise RuntimeError(f"tool error: {result.to_text()}")
            return result
    elif mode == "percall":
        tools, setup = await _percall(command)
        tool = tools[name]

        async def call() -> Any:
            return await tool.run_json(arguments, CancellationToken())
    else:
        raise ValueError(f"unknown mode {mode!r}")
    last: Any = None
    for _ in range(warmup):
        last = await call()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        t0 = time.perf_counter()
        last = await call()
        samples.append(time.perf_counter() - t0)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"wall": wall, "cpu": cpu, "calls": calls, "samples": samples if mode == "percall" else [],
            "setup": setup, "text": _text(last)[:200]}


async def op_concurrent(command: dict[str, Any]) -> dict[str, Any]:
    workbench, setup = await _workbench(command)
    calls, name, arguments = int(command["calls"]), command["tool"], command.get("arguments") or {}
    started = time.perf_counter()
    results = await asyncio.gather(*(workbench.call_tool(name, arguments) for _ in range(calls)))
    wall = time.perf_counter() - started
    errors = [r.to_text() for r in results if r.is_error]
    return {"wall": wall, "setup": setup, "errors": len(errors), "first_error": errors[0][:300] if errors else None}


def _replay_client(turns: int, tool: str, arguments: dict[str, Any]) -> Any:
    from autogen_core import FunctionCall
    from autogen_core.models import CreateResult, RequestUsage
    from autogen_ext.models.replay import ReplayChatCompletionClient

    responses: list[Any] = []
    for i in range(turns):
        call = FunctionCall(id=f"call-{i}", name=tool, arguments=json.dumps(arguments))
        responses += [CreateResult(finish_reason="function_calls", content=[call], usage=RequestUsage(0, 0),
                                   cached=False), f"done {i}"]
    return ReplayChatCompletionClient(responses, model_info={
        "function_calling": True, "vision": False, "json_output": False, "family": "unknown",
        "structured_output": False})


async def op_agent_turns(command: dict[str, Any]) -> dict[str, Any]:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.messages import ToolCallExecutionEvent

    log = Path(command["log"])
    turns, tool, arguments = int(command["turns"]), command["tool"], command.get("arguments") or {}
    offsets = [log.stat().st_size if log.exists() else 0]
    if command["mode"] == "workbench":
        workbench, _ = await _workbench(command)
        # start() only launches its actor; one listing makes the session's initialize part of the
        # setup, not of the first turn (the agent lists again anyway).
        await workbench.list_tools()
        tools_kw: dict[str, Any] = {"workbench": workbench}
    else:
        tools, _ = await _percall(command)
        tools_kw = {"tools": list(tools.values())}
    offsets.append(log.stat().st_size)  # end of setup
    agent = AssistantAgent("bench", model_client=_replay_client(turns, tool, arguments), reflect_on_tool_use=True,
                           **tools_kw)
    walls: list[float] = []
    for i in range(turns):
        started = time.perf_counter()
        result = await agent.run(task=f"turn {i}: call {tool}")
        walls.append(time.perf_counter() - started)
        events = [m for m in result.messages if isinstance(m, ToolCallExecutionEvent)]
        if len(events) != 1 or any(r.is_error for r in events[0].content):
            raise RuntimeError(f"turn {i} did not make exactly one successful tool call: {events}")
        offsets.append(log.stat().st_size)
    return {"offsets": offsets, "walls": walls}


async def op_versions(command: dict[str, Any]) -> dict[str, Any]:
    return {"autogen_ext": metadata.version("autogen-ext"), "mcp": metadata.version("mcp"),
            "python": platform.python_version()}


OPS = {"versions": op_versions, "calls": op_calls, "concurrent": op_concurrent, "agent_turns": op_agent_turns}


async def main() -> None:
    # Answers go to a private copy of stdout; anything else printing to fd 1 lands on stderr.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            if not line.strip():
                continue
            try:
                command = json.loads(line)
                answer: dict[str, Any] = {"result": await OPS[command["op"]](command)}
            except Exception as e:  # reported to the caller, which decides what a failure means
                answer = {"error": f"{type(e).__name__}: {e}"}
            answers.write(json.dumps(answer) + "\n")
    finally:
        for workbench in _workbenches.values():
            try:
                await asyncio.wait_for(workbench.stop(), 15)
            except Exception as e:
                print(f"driver: closing a workbench failed: {e!r}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
