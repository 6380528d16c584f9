"""Code mode against direct tool calling: model requests, bytes to the model, wall time, and the sandbox's cost.

1. **The MultiMail triage task at the wire.** The task of ``examples/code_mode.py`` (read the unread
   mail, read the thread of each customer who wrote about an order, reply to each, add the new one
   to the contacts: 12 tool calls) is done by a real ``AssistantAgent`` and AutoGen's real
   ``OpenAIChatCompletionClient`` against the scripted model server, which records every request.
   Direct: the scripted turns are what a capable model sends, calls that do not depend on each
   other in one turn (inbox; 4 reads; 2 threads; 2 replies and 2 contact searches; 1 contact; the
   answer). Code mode: one ``run_python`` turn with the example's program, then the answer. Both
   must reach the server with the same calls and arguments (the audit trails are compared).
   Bytes = ``len(json.dumps(body))`` of every request (tool schemas, history, tool results).
2. **Overhead per inner call**: the same ``echo`` call N times from a program against N direct
   ``Toolset.call``s (bench server over stdio, no approval, no audit), per call.
3. **Sandbox start, warm**: a run of the program ``1`` (checkout, prelude, type check against the
   stubs, run, give back), after a warm-up run.
4. **1,000 tools**: the bench server's synthetic catalogue, deferred. Direct: ``find_tools``, the
   found tool by ``call_tool``, the answer. Code mode: one program that searches and calls, then
   the answer. Requests and bytes to the model.

Everything is loopback: stdio servers and a 127.0.0.1 model server.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from _common import ROOT, Report, bench_parser, bench_server_argv, finish
from autogen_agentchat.agents import AssistantAgent
from autogen_ext.models.openai import OpenAIChatCompletionClient

from bridge import connect
from bridge.audit import query
from bridge.code import RUN_PYTHON
from bridge.code_limits import CodeLimits
from bridge.toolset import CALL_TOOL, FIND_TOOLS
from fixtures.mailroom import receive_new_mail
from fixtures.multimail.seed import AGENT_KEY
from fixtures.openai_compat import Call, ScriptedModel, text, tool_call, tool_calls, tool_results

sys.path.insert(0, str(ROOT / "examples"))
from code_mode import PROGRAM, TOOLS

MODEL = "gpt-4o-mini-2024-07-18"
PY = sys.executable
FIXTURE_ENV = {"PYTHONPATH": str(ROOT)}
GOALS = {"requests": 3.0, "bytes": 5.0, "overhead_ms": 2.0, "start_ms": 50.0}
REPLY = ("Hi {first},\n\nthank you for writing about your order, and sorry for the trouble. A replacement ships "
         "today; you will get the tracking number by mail.\n\nAcme support")


def _result(body: dict[str, Any], call_id: str) -> Any:
    return json.loads(tool_results(body)[call_id])


def direct_script() -> list[Any]:
    """The turns a capable model sends doing the task tool by tool (independent calls batched)."""
    state: dict[str, Any] = {}

    def reads(body: dict[str, Any]) -> Any:
        state["inbox"] = _result(body, "inbox")["emails"]
        return tool_calls(*(Call("read_email", {"email_id": m["id"]}, f"read{i}") for i, m in
                            enumerate(state["inbox"])))

    def threads(body: dict[str, Any]) -> Any:
        texts = tool_results(body)
        customers: dict[str, Any] = {}
        for i, mail in enumerate(state["inbox"]):
            if "order" in texts[f"read{i}"].lower() and mail["from"] not in customers:
                customers[mail["from"]] = mail
        state["customers"] = customers
        return tool_calls(*(Call("get_thread", {"thread_id": m["thread_id"]}, f"thread{i}")
                            for i, m in enumerate(customers.values())))

    def replies(body: dict[str, Any]) -> Any:
        customers = state["customers"]
        out = [Call("reply_email", {"email_id": m["id"], "markdown": REPLY.format(first=m["from_name"].split()[0])},
                    f"reply{i}") for i, m in enumerate(customers.values())]
        out += [Call("search_contacts", {"query": a}, f"known{i}") for i, a in enumerate(customers)]
        return tool_calls(*out)

    def contacts(body: dict[str, Any]) -> Any:
        customers = list(state["customers"].items())
        new = [(a, m) for i, (a, m) in enumerate(customers) if not _result(body, f"known{i}")["contacts"]]
        return tool_calls(*(Call("add_contact", {"name": m["from_name"], "email": a, "tags": ["customer"]},
                                 f"add{i}") for i, (a, m) in enumerate(new)))

    return [tool_call("check_inbox", {"status": "unread", "limit": 20}, id="inbox"), reads, threads, replies,
            contacts, text("Replied to both customers and added the new one to the contacts.")]


def code_script() -> list[Any]:
    return [tool_call(RUN_PYTHON, {"code": PROGRAM}, id="program"), text("Done: see the program's output.")]


async def agent_run(tools: list[Any], script: list[Any], turns: int) -> tuple[list[dict[str, Any]], float]:
    with ScriptedModel(script) as model:
        client = OpenAIChatCompletionClient(model=MODEL, base_url=model.base_url, api_key="test")
        try:
            agent = AssistantAgent("support", model_client=client, tools=tools, max_tool_iterations=turns)
            t0 = time.perf_counter()
            await agent.run(task="Work the unread mail in the support inbox.")
            seconds = time.perf_counter() - t0
        finally:
            await client.close()
        bodies = model.requests
    if len(bodies) != len(script):
        raise RuntimeError(f"the model got {len(bodies)} requests, expected {len(script)}")
    return bodies, seconds


async def triage(tmp: Path, mode: str, index: int) -> dict[str, Any]:
    db, audit = tmp / f"{mode}-{index}.db", tmp / f"{mode}-{index}.jsonl"
    receive_new_mail(db)
    argv = [PY, "-m", "fixtures.multimail", "--db", str(db)]
    async with connect(argv, env={**FIXTURE_ENV, "MULTIMAIL_API_KEY": AGENT_KEY}, cwd=ROOT, name="multimail") as mail:
        code = mode == "code"
        tools = await mail.tools_for("support", include=TOOLS, approval=False, warn_unguarded=False, audit=audit,
                                     code=code)
        script = code_script() if code else direct_script()
        bodies, seconds = await agent_run(list(tools), script, len(script))
    calls = Counter(json.dumps([r.tool, r.arguments], sort_keys=True) for r in query(audit))
    # The reply's text names the customer; ids differ between runs (a new mail each time): compare shapes.
    shape = Counter(json.dumps([json.loads(c)[0], sorted(json.loads(c)[1])]) for c in calls.elements())
    return {"requests": len(bodies), "bytes": sum(len(json.dumps(b)) for b in bodies),
            "per_request": [len(json.dumps(b)) for b in bodies], "seconds": seconds, "calls": sum(calls.values()),
            "shape": shape, "tools": [r.tool for r in query(audit)]}


async def overhead(n: int, rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"direct_ms": [], "code_ms": [], "start_ms": [], "start_unchecked_ms": []}
    async with connect(bench_server_argv(10), env=FIXTURE_ENV, cwd=ROOT, name="bench") as server:
        direct = server.toolset("bench", approval=False, warn_unguarded=False)
        code = server.toolset("bench", approval=False, warn_unguarded=False,
                              code=CodeLimits(tool_calls=n + 10))
        unchecked = server.toolset("bench", approval=False, warn_unguarded=False, code=CodeLimits(type_check=False))
        program = f"for i in range({n}):\n    await echo(i=i)"
        await direct.call("echo", {"i": 0})
        await code.call(RUN_PYTHON, {"code": "1"})  # warm: the pool's worker and the stubs
        await unchecked.call(RUN_PYTHON, {"code": "1"})
        for _ in range(rounds):
            t0 = time.perf_counter()
            for i in range(n):
                await direct.call("echo", {"i": i})
            out["direct_ms"].append((time.perf_counter() - t0) * 1000 / n)
            t0 = time.perf_counter()
            await code.call(RUN_PYTHON, {"code": "1"})
            start = (time.perf_counter() - t0) * 1000
            out["start_ms"].append(start)
            t0 = time.perf_counter()
            await unchecked.call(RUN_PYTHON, {"code": "1"})
            out["start_unchecked_ms"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            result = await code.call(RUN_PYTHON, {"code": program})
            if result.is_error or len(result.structured["calls"]) != n:
                raise RuntimeError(f"the overhead program failed: {result.text[:300]}")
            out["code_ms"].append(((time.perf_counter() - t0) * 1000 - start) / n)
    return out


async def catalogue(tmp: Path) -> dict[str, Any]:
    argv = bench_server_argv(1000)
    async with connect(argv, env=FIXTURE_ENV, cwd=ROOT, name="bench") as server:
        probe = server.toolset("probe", catalogue="deferred", approval=False, warn_unguarded=False)
        await probe.tools()
        query_text, arguments = "summarise overdue invoices", {"query": "overdue", "limit": 3}
        name = json.loads(probe.find(query_text, 3).text)["matches"][0]["name"]
        runs: dict[str, Any] = {}
        for mode in ("full", "deferred", "code"):
            audit = tmp / f"bench-{mode}.jsonl"
            options: dict[str, Any] = {"approval": False, "warn_unguarded": False, "audit": audit}
            if mode == "full":
                script: list[Any] = [tool_call(name, arguments), text("done")]
            elif mode == "deferred":
                options["catalogue"] = "deferred"
                script = [tool_call(FIND_TOOLS, {"query": query_text, "limit": 3}),
                          tool_call(CALL_TOOL, {"name": name, "arguments": arguments}), text("done")]
            else:
                options |= {"catalogue": "deferred", "code": True}
                program = (f"found = await find_tools({query_text!r}, 3)\n"
                           f"r = await call_tool(found[0]['name'], {arguments!r})\nprint(found[0]['name'], r)")
                script = [tool_call(RUN_PYTHON, {"code": program}), text("done")]
            tools = await server.tools_for("bench", **options)
            bodies, seconds = await agent_run(list(tools), script, len(script))
            records = query(audit)
            runs[mode] = {"requests": len(bodies), "bytes": sum(len(json.dumps(b)) for b in bodies),
                          "seconds": seconds, "calls": [(r.tool, dict(r.arguments)) for r in records]}
        return {"name": name, "runs": runs, "tools": len(await probe.routes())}


def _median(values: list[float]) -> float:
    return statistics.median(values)


async def main(argv: list[str] | None = None) -> Path:
    parser = bench_parser(__doc__.splitlines()[0])
    opts = parser.parse_args(argv)
    rounds = 1 if opts.quick else 3
    started = time.perf_counter()
    report = Report("code_mode", "Code mode: one program against direct tool calling",
                    params=vars(opts) | {"json": str(opts.json), "rounds": rounds})
    failures: list[str] = []
    broken = False
    with tempfile.TemporaryDirectory(prefix="bench-code-") as tmp_name:
        tmp = Path(tmp_name)
        runs: dict[str, list[dict[str, Any]]] = {"direct": [], "code": []}
        for i in range(rounds):  # alternating, so both modes see the same machine load
            for mode in ("direct", "code"):
                runs[mode].append(await triage(tmp, mode, i))
        costs = await overhead(50 if opts.quick else 200, rounds)
        big = await catalogue(tmp)

    direct, code = runs["direct"][0], runs["code"][0]
    same = all(r["shape"] == direct["shape"] for r in runs["direct"] + runs["code"])
    if not same:
        broken = True
        failures.append(f"the calls differ: direct {dict(direct['shape'])}, code {dict(code['shape'])}")
    group = f"MultiMail triage ({direct['calls']} tool calls)"
    checks: list[tuple[str, bool]] = []
    for key, unit in (("requests", "requests"), ("bytes", "B")):
        base = report.add(f"direct tool calling: {key}", [r[key] for r in runs["direct"]], unit, group=group,
                          is_baseline=True,
                          note="per request " + " / ".join(f"{b:,}" for b in direct["per_request"]) + " B"
                          if key == "bytes" else "")
        factor = direct[key] / code[key]
        goal = GOALS[key]
        checks.append((f"{key}: {factor:.1f}× fewer (goal ≥ {goal:.0f}×)", factor >= goal))
        report.add(f"code mode: {key}", [r[key] for r in runs["code"]], unit, group=group, baseline=base,
                   note=f"{factor:.1f}× fewer; goal ≥ {goal:.0f}×: {'OK' if factor >= goal else 'MISSED'}"
                   + (" ; per request " + " / ".join(f"{b:,}" for b in code["per_request"]) + " B"
                      if key == "bytes" else ""))
    base = report.add("direct tool calling: wall time", [r["seconds"] for r in runs["direct"]], "s", group=group,
                      is_baseline=True)
    report.add("code mode: wall time", [r["seconds"] for r in runs["code"]], "s", group=group, baseline=base,
               note=f"same calls and arguments at the server in both modes (audit trails): {'OK' if same else 'FAIL'}")

    group = "The sandbox's cost (bench server, echo)"
    d, c = _median(costs["direct_ms"]), _median(costs["code_ms"])
    base = report.add("direct Toolset.call", costs["direct_ms"], "ms/call", group=group, is_baseline=True)
    extra = c - d
    report.add("the same call from a program", costs["code_ms"], "ms/call", group=group, baseline=base,
               note=f"{extra:+.2f} ms per call; goal ≤ {GOALS['overhead_ms']:g} ms: "
                    f"{'OK' if extra <= GOALS['overhead_ms'] else 'MISSED'}")
    start = _median(costs["start_ms"])
    report.add("sandbox start, warm (type-checked)", costs["start_ms"], "ms", group=group,
               note=f"goal ≤ {GOALS['start_ms']:g} ms: {'OK' if start <= GOALS['start_ms'] else 'MISSED'}")
    report.add("sandbox start, warm (type_check=False)", costs["start_unchecked_ms"], "ms", group=group)
    checks += [(f"overhead per inner call: {extra:+.2f} ms (goal ≤ {GOALS['overhead_ms']:g} ms)",
                extra <= GOALS["overhead_ms"]),
               (f"sandbox start, warm: {start:.1f} ms (goal ≤ {GOALS['start_ms']:g} ms)", start <= GOALS["start_ms"])]

    group = f"{big['tools']:,} tools, search inside the program"
    full = big["runs"]["full"]
    base = report.add("direct, full catalogue: bytes", [full["bytes"]], "B", group=group, is_baseline=True,
                      note=f"{full['requests']} requests")
    for mode, label in (("deferred", "direct, deferred (find_tools, call_tool)"),
                        ("code", "code mode, deferred (find_tools in the program)")):
        run = big["runs"][mode]
        report.add(f"{label}: bytes", [run["bytes"]], "B", group=group, baseline=base,
                   note=f"{run['requests']} requests; {full['bytes'] / run['bytes']:.0f}× fewer bytes than full")
    calls = {mode: run["calls"] for mode, run in big["runs"].items()}
    if len({json.dumps(v, sort_keys=True) for v in calls.values()}) != 1:
        broken = True
        failures.append(f"1,000 tools: the calls differ: {calls}")

    for label, met in checks:
        print(f"{label}: {'met' if met else 'MISSED'}")
        if not met:
            failures.append(label)
    report.notes.append(
        "Requests and bytes at the scripted model server, as AutoGen's OpenAIChatCompletionClient sent them: "
        "bytes = len(json.dumps(body)) summed over the task's requests (tool schemas, the conversation, tool "
        "results). Direct batches independent calls in one turn, as a capable model does; code mode sends the "
        "program of examples/code_mode.py. The audit trails of both hold the same tools with the same argument "
        "names (email ids differ: each run gets its own new mail).")
    report.notes.append(
        "Overhead: median per call of N echo calls from one program (minus a run of the empty program) against N "
        "direct Toolset.call; both through the same routes, no approval, no audit. Sandbox start: a run of the "
        "program `1` on a warm worker pool, type-checked against the stubs and not.")
    if failures:
        report.notes.append("MISSED/FAILED: " + "; ".join(failures))
    path = finish(report, started, opts.json)
    if broken:
        sys.exit(1)
    return path


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])

