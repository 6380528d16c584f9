"""The adapter contract: every framework adapter behaves alike on the same server.

One table, ``ADAPTERS``, one row per adapter: how to drive that framework's real agent through its
real OpenAI-compatible model client against the scripted model server (``fixtures.openai_compat``),
with tools from ``bridge.<framework>.tools_for``. Every row runs the same three runs against the
schema zoo over stdio and reports the same observations (``Observed``):

* ``plain``: the model calls four tools at once: a valid call, a read-only one, invalid
  arguments, and a tool that answers ``isError``; a recording ``CallbackApprover`` and an audit log;
* ``strict``: ``schema_profile="openai-strict"``, nothing called;
* ``deferred``: ``catalogue="deferred"``; the model searches with ``find_tools`` and calls what it
  found with ``call_tool``;
* ``queue``: a ``QueueApprover`` on a SQLite queue; a scripted reviewer (another thread) decides
  each request through the CLI's code path (``mcp-bridge approvals approve|deny``);
* ``resources``: ``resources=["zoo://docs/*"]`` and ``timeout=1.5`` given to ``tools_for``; the model
  reads a listed resource inside the globs and one outside them with ``read_resource``, calls a tool
  whose result is text and an image, and one that sleeps past the timeout;
* ``code``: ``code=True``; the model is offered ``run_python`` alone and runs one program whose
  calls each pass the approver (one denied and caught inside the program) and the audit.

The assertions compare each adapter with the core itself (a plain ``Toolset`` on the same server
and ``bridge.adapters``): the schema on the wire, the refusal and error texts, who was asked,
the audit fields. MetaGPT runs in its own venv (``tests/metagpt_scripts/contract.py``), given the
same scenario as JSON. A fifth adapter is one more row.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import ROOT, canonical, fixture_env, module_cmd

from bridge import CallbackApprover, InvalidArguments, Server, connect
from bridge.adapters import error_text, reply_text
from bridge.approvals import QueueApprover
from bridge.audit.records import READER_FIELDS, AuditRecord
from bridge.connection import ToolCall
from bridge.profiles import apply_profile
from bridge.resource_tools import READ_METHOD
from bridge.steps import Step as StepRecord
from fixtures.openai_compat import Call, ScriptedModel, Step, message_text, text, tool_call, tool_calls
from fixtures.schema_zoo import ZOO_SCHEMAS

STORED = set(AuditRecord.__dataclass_fields__) - READER_FIELDS
"""The fields of every stored audit record, whichever adapter made the call."""
STEP_FIELDS = set(StepRecord.__dataclass_fields__)
AGENT = "contract"
SERVER = "zoo"
TOOLS = ["nested_objects", "nullable_clears", "validated_order", "stats", "error_result", "files.read"]
# label -> (agent-facing name, arguments); the label is the model's tool call id.
CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "call_ok": ("stats", {"numbers": [1, 2]}),
    "call_read": ("files_read", {"path": "notes.txt"}),
    "call_bad": ("stats", {"numbers": "many"}),
    "call_err": ("error_result", {"message": "it broke"}),
}
QUEUED: dict[str, tuple[str, dict[str, Any]]] = {
    "call_yes": ("error_result", {"message": "approve me"}),
    "call_no": ("error_result", {"message": "deny me"}),
}
QUEUE_REVIEWER = "queue-reviewer"
DEFERRED: dict[str, tuple[str, dict[str, Any]]] = {
    "call_find": ("find_tools", {"query": "numbers statistics structured content"}),
    "call_through": ("call_tool", {"name": "stats", "arguments": {"numbers": [3]}}),
}
# Code mode: one program, three inner calls (a result, a denial caught, a tool error caught).
PROGRAM = """r = await stats(numbers=[1, 2])
print("count", r["count"])
try:
    await error_result(message="deny me")
except PermissionError as e:
    print("caught:", e)
try:
    await error_result(message="it broke")
except ToolError as e:
    print("tool error:", e)
"""
CODE: dict[str, tuple[str, dict[str, Any]]] = {"call_code": ("run_python", {"code": PROGRAM})}
# A tool that runs only as an MCP task, on fixtures.task_server: the adapter sees an ordinary call.
TASK_SERVER = module_cmd("fixtures.task_server", "--transport", "stdio")
TASKED: dict[str, tuple[str, dict[str, Any]]] = {"call_task": ("research", {"topic": "tides", "seconds": 0.1})}
# The schema zoo lists zoo://docs/readme.md and two binary resources; the agent may read zoo://docs/* only.
RESOURCES: dict[str, tuple[str, dict[str, Any]]] = {
    "call_resource": ("read_resource", {"uri": "zoo://docs/readme.md"}),
    "call_resource_out": ("read_resource", {"uri": "zoo://images/pixel.png"}),
    "call_image": ("image_result", {}),
    "call_slow": ("sleep", {"seconds": 60}),
}
# Seconds for each call, given to every adapter's tools_for: long enough for a loaded machine's
# other calls, and what call_slow runs past.
TIMEOUT = 1.5
METAGPT_PY = ROOT / ".venv-metagpt" / "bin" / "python"
# MetaGPT's import alone takes 10-25 s on a busy machine.
DEADLINE = 240


@dataclass(frozen=True)
class Run:
    """One run of the scenario: the guard options (JSON-able) and the calls the model makes."""

    name: str
    guards: dict[str, Any]
    """The keywords of ``tools_for`` (guard options, and ``timeout``); JSON-able."""
    calls: dict[str, tuple[str, dict[str, Any]]]
    approver: bool = False
    queue: str | None = None
    """A SQLite approval queue the calls wait on (``QueueApprover``)."""
    command: list[str] | None = None
    """The server's command when it is not the schema zoo."""

    def script(self) -> list[Step]:
        """The model's turns for frameworks that run one conversation: all calls at once, then text."""
        if not self.calls:
            return [text("done")]
        if self.approver:
            return [tool_calls(*(Call(n, a, label) for label, (n, a) in self.calls.items())), text("done")]
        return [*(tool_call(n, a, id=label) for label, (n, a) in self.calls.items()), text("done")]


def runs(out: Path) -> list[Run]:
    return [
        Run("plain", {"include": TOOLS, "audit": str(out / "plain.jsonl")}, CALLS, approver=True),
        Run("strict", {"include": TOOLS, "approval": False, "warn_unguarded": False,
                       "schema_profile": "openai-strict"}, {}),
        Run("deferred", {"include": TOOLS, "approval": False, "warn_unguarded": False, "catalogue": "deferred",
                         "audit": str(out / "deferred.jsonl")}, DEFERRED),
        Run("queue", {"include": TOOLS, "audit": str(out / "queue.jsonl")}, QUEUED, queue=str(out / "queue.db")),
        Run("code", {"include": TOOLS, "code": True, "audit": str(out / "code.jsonl")}, CODE, approver=True),
        Run("task", {"include": ["research"], "approval": False, "warn_unguarded": False,
                     "audit": str(out / "task.jsonl")}, TASKED, command=TASK_SERVER),
        Run("resources", {"include": ["stats", "image_result", "sleep"], "approval": False, "warn_unguarded": False,
                          "resources": ["zoo://docs/*"], "timeout": TIMEOUT,
                          "audit": str(out / "resources.jsonl")}, RESOURCES),
    ]


@contextmanager
def queue_reviewer(out: Path) -> Iterator[None]:
    """A reviewer deciding every request of every queue under ``out`` as it arrives, through the
    CLI's code path: approve ``approve me``, deny anything else."""
    from bridge.approvals import SqliteApprovalStore
    from bridge.cli import main

    stop = threading.Event()

    async def pending() -> list[tuple[str, int, Any]]:
        found = []
        for db in out.glob("*.db"):
            store = SqliteApprovalStore(db)
            try:
                found += [(str(db), r.id, r.arguments.get("message")) for r in await store.list(statuses=("pending",))]
            finally:
                await store.aclose()
        return found

    def review() -> None:
        while not stop.wait(0.05):
            for db, rid, message in anyio.run(pending):
                verdict = ["approve"] if message == "approve me" else ["deny", "--reason", "not this one"]
                main(["approvals", verdict[0], str(rid), "--store", db, "--reviewer", QUEUE_REVIEWER, *verdict[1:]])

    reviewer = threading.Thread(target=review, name="queue-reviewer")
    reviewer.start()
    try:
        yield
    finally:
        stop.set()
        reviewer.join()


@dataclass
class Observed:
    """What one run showed: the functions offered (name -> function JSON as sent), the tool results
    the model read (label -> text), who the approver was asked about, the audit records."""

    offered: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)
    asked: list[list[str | None]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)


def zoo() -> Server:
    return connect(module_cmd("fixtures.schema_zoo", "--transport", "stdio"), env=fixture_env(), cwd=ROOT,
                   name=SERVER)


def read_audit(path: str | None) -> list[dict[str, Any]]:
    if path is None or not Path(path).exists():
        return []
    lines = [json.loads(line) for line in Path(path).read_text().splitlines()]
    # A call that went to the server has a write-ahead record too; its outcome record is complete.
    return [r for r in lines if r.get("phase") != "started"]


def recorder(asked: list[list[str | None]]) -> CallbackApprover:
    def review(call: ToolCall) -> bool:
        asked.append([call.agent, call.server, call.mcp_name])
        return call.arguments.get("message") != "deny me"

    return CallbackApprover(review, reviewer="contract-reviewer")


# -- the in-process adapters: only "drive" differs ------------------------------------------------------

Drive = Callable[[Server, dict[str, Any], ScriptedModel, int], Awaitable[None]]


async def drive_autogen(server: Server, guards: dict[str, Any], model: ScriptedModel, turns: int) -> None:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.teams import RoundRobinGroupChat
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    from bridge.autogen import tools_for

    tools = await tools_for(server, agent=AGENT, **guards)
    # A dated name: AutoGen resolves an alias to one and warns when the answer names another.
    client = OpenAIChatCompletionClient(model="gpt-4o-mini-2024-07-18", base_url=model.base_url, api_key="test")
    try:
        agent = AssistantAgent(AGENT, model_client=client, tools=list[Any](tools), max_tool_iterations=turns)
        # In a team, as agents run in AutoGen's runtime: the team's id is the run its records name.
        await RoundRobinGroupChat([agent], max_turns=1).run(task="Go.")
    finally:
        await client.close()


async def drive_ag2(server: Server, guards: dict[str, Any], model: ScriptedModel, turns: int) -> None:
    from autogen import AssistantAgent, UserProxyAgent

    from bridge.ag2 import register_tools

    config = {"config_list": [{"model": "gpt-4o-mini", "api_key": "test", "base_url": model.base_url}],
              "cache_seed": None}
    caller = AssistantAgent(AGENT, llm_config=config, is_termination_msg=lambda m: False)
    human = UserProxyAgent("human", human_input_mode="NEVER", code_execution_config=False)
    await register_tools(server, caller=caller, executor=human, agent=AGENT, **guards)
    await human.a_initiate_chat(caller, message="Go.", max_turns=turns)


async def drive_agent_framework(server: Server, guards: dict[str, Any], model: ScriptedModel, turns: int) -> None:
    from agent_framework import Agent
    from agent_framework.openai import OpenAIChatCompletionClient

    from bridge.agent_framework import tools_for

    tools = await tools_for(server, agent=AGENT, **guards)
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", base_url=model.base_url, api_key="test")
    try:
        agent = Agent(client=client, name=AGENT, instructions="Use the tools.", tools=tools)
        # A session: its id is the run its records name (a run without one has no id to give).
        await agent.run("Go.", session=agent.create_session())
    finally:
        await client.client.close()  # on this loop: its pool would outlive it otherwise


def in_process(drive: Drive) -> Callable[[Path], dict[str, Observed]]:
    """Every run of the scenario through ``drive``, each on a fresh zoo and a fresh scripted model."""

    async def one(run: Run) -> Observed:
        seen = Observed()
        guards = dict(run.guards)
        if run.approver:
            guards["approver"] = recorder(seen.asked)
        if run.queue is not None:
            guards["approver"] = QueueApprover(run.queue, expires_after=DEADLINE)
        script = run.script()
        source = zoo() if run.command is None else connect(run.command, env=fixture_env(), cwd=ROOT, name=SERVER)
        async with source as server:
            with ScriptedModel(script) as model:
                await drive(server, guards, model, len(script))
        seen.offered = model.tool_definitions(0)
        for index in range(len(model.requests)):
            seen.results.update(model.tool_results(index))
        seen.audit = read_audit(run.guards.get("audit"))
        return seen

    def observe(out: Path) -> dict[str, Observed]:
        with queue_reviewer(out):
            return {run.name: anyio.run(one, run) for run in runs(out)}

    return observe


def metagpt(out: Path) -> dict[str, Observed]:
    """The same runs in ``.venv-metagpt``, by ``tests/metagpt_scripts/contract.py``."""
    if not METAGPT_PY.exists():
        pytest.fail(f"{METAGPT_PY.relative_to(ROOT)} is missing: build it with `make metagpt`", pytrace=False)
    scenario = {"agent": AGENT, "server": SERVER, "command": module_cmd("fixtures.schema_zoo", "--transport", "stdio"),
                "runs": [{"name": r.name, "guards": r.guards, "calls": r.calls, "approver": r.approver,
                          "queue": r.queue, "command": r.command} for r in runs(out)]}
    (out / "scenario.json").write_text(json.dumps(scenario))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = str(ROOT)
    with queue_reviewer(out):
        done = subprocess.run([str(METAGPT_PY), "tests/metagpt_scripts/contract.py", str(out)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=DEADLINE, check=False)
    report = out / "observed.json"
    if done.returncode != 0 or not report.exists():
        pytest.fail(f"contract.py exited {done.returncode}:\n{done.stderr[-3000:]}", pytrace=False)
    return {name: Observed(**seen) for name, seen in json.loads(report.read_text()).items()}


@dataclass(frozen=True)
class Adapter:
    """One row of the contract: how to observe the scenario through one framework."""

    name: str
    observe: Callable[[Path], dict[str, Observed]]
    model_call_id: bool
    """The audit's call id is the model's tool call id (else one the adapter made)."""
    run_id: bool
    """The framework names the run a call belongs to (``Step.run_id``; AG2 and MetaGPT have none)."""


ADAPTERS = [
    Adapter("autogen", in_process(drive_autogen), model_call_id=True, run_id=True),
    Adapter("ag2", in_process(drive_ag2), model_call_id=True, run_id=False),
    Adapter("agent_framework", in_process(drive_agent_framework), model_call_id=True, run_id=True),
    Adapter("metagpt", metagpt, model_call_id=False, run_id=False),
]


@pytest.fixture(scope="module", params=ADAPTERS, ids=[a.name for a in ADAPTERS])
def seen(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[Adapter, dict[str, Observed]]]:
    adapter: Adapter = request.param
    yield adapter, adapter.observe(tmp_path_factory.mktemp(adapter.name))


# -- what the core says (the expected values) -----------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    names: dict[str, str]  # agent-facing -> MCP name
    descriptions: dict[str, str]  # agent-facing name -> the server's description
    refusal: str
    tool_error: str
    ok: str  # call_ok's text: a result with text and structuredContent
    image: str  # call_image's text: a text block and a PNG


@pytest.fixture(scope="module")
def truth() -> Truth:
    async def ask() -> Truth:
        async with zoo() as server:
            toolset = server.toolset(AGENT, approval=False, warn_unguarded=False, include=TOOLS)
            entries = await toolset.tools()
            names = {e.name: e.mcp_name for e in entries}
            descriptions = {e.name: e.description for e in entries}
            try:
                await toolset.call(*CALLS["call_bad"])
            except InvalidArguments as e:
                refusal = error_text(e)
            else:
                raise AssertionError("the core accepted invalid arguments")
            failed = await toolset.call(*CALLS["call_err"])
            assert failed.is_error
            ok = reply_text(await toolset.call(*CALLS["call_ok"]))
            media = server.toolset(AGENT, approval=False, warn_unguarded=False, include=["image_result"])
            image = reply_text(await media.call(*RESOURCES["call_image"]))
            return Truth(names, descriptions, refusal, error_text(failed), ok, image)

    return anyio.run(ask)


# -- the contract -------------------------------------------------------------------------------------


def test_the_model_is_sent_the_servers_input_schema(seen: tuple[Adapter, dict[str, Observed]], truth: Truth) -> None:
    offered = seen[1]["plain"].offered
    assert set(offered) == set(truth.names)
    for name, function in offered.items():
        assert canonical(function["parameters"]) == canonical(ZOO_SCHEMAS[truth.names[name]]), name
        assert function["description"] == truth.descriptions[name], name
        assert not function.get("strict", False), name


def test_a_schema_profile_is_what_the_model_is_sent(seen: tuple[Adapter, dict[str, Observed]], truth: Truth) -> None:
    offered = seen[1]["strict"].offered
    assert set(offered) == set(truth.names)
    for name, function in offered.items():
        profiled, _ = apply_profile(ZOO_SCHEMAS[truth.names[name]], "openai-strict")
        assert canonical(function["parameters"]) == canonical(profiled), name
        assert function.get("strict") is True, name


def test_invalid_arguments_get_the_one_refusal(seen: tuple[Adapter, dict[str, Observed]], truth: Truth) -> None:
    refusal = seen[1]["plain"].results["call_bad"]
    assert refusal == truth.refusal
    assert "\n" not in refusal and refusal.startswith("Error: ")


def test_an_is_error_result_reaches_the_model_flagged(seen: tuple[Adapter, dict[str, Observed]], truth: Truth) -> None:
    results = seen[1]["plain"].results
    assert results["call_err"] == truth.tool_error == "Error: " + truth.tool_error.removeprefix("Error: ")
    # And a result is just its text: text with structuredContent beside it reads as the core renders it.
    assert results["call_ok"] == truth.ok and json.loads(results["call_ok"])["count"] == 2


def test_the_same_tools_ask_the_same_approver(seen: tuple[Adapter, dict[str, Observed]]) -> None:
    # Of the tools called, only error_result is not annotated read-only; the invalid call is
    # refused before any approval.
    assert seen[1]["plain"].asked == [[AGENT, SERVER, "error_result"]]


def test_the_same_audit_fields_appear(seen: tuple[Adapter, dict[str, Observed]]) -> None:
    adapter, observed = seen
    records = observed["plain"].audit
    # A set: MetaGPT retries refused arguments itself, so its trail holds that refusal twice.
    shape = {(r["agent"], r["server"], r["tool"], r["decision"], r["outcome"]) for r in records}
    assert shape == {
        (AGENT, SERVER, "stats", "not_required", "ok"),
        (AGENT, SERVER, "files.read", "not_required", "ok"),
        (AGENT, SERVER, "stats", None, "refused"),
        (AGENT, SERVER, "error_result", "approved", "tool_error"),
    }, shape
    ids = {r["call_id"] for r in records}
    assert all(ids) and len(ids) == len(records)
    if adapter.model_call_id:
        assert ids == set(CALLS)


def test_every_record_names_the_models_step(seen: tuple[Adapter, dict[str, Observed]]) -> None:
    adapter, observed = seen
    records = observed["plain"].audit
    # One record schema for every adapter: every stored field, chained, and a step of known fields.
    assert all(set(r) == STORED for r in records), [sorted(set(r) ^ STORED) for r in records]
    assert all(r["hash"] and r["seq"] and r["chain"] for r in records)
    assert {r["phase"] for r in records if r["outcome"] != "refused"} == {"finished"}
    steps = [r["step"] for r in records]
    assert all(step and step["framework"] == adapter.name and set(step) <= STEP_FIELDS for step in steps), steps
    if adapter.model_call_id:
        assert {step["tool_call_id"] for step in steps} == set(CALLS)
    else:  # no tool-call id from the model: the role and the action that acted stand for it
        assert all(step["role"] == AGENT and step["action"] for step in steps), steps
    # The framework's run: one for every call of a run, another for the next run; none where the
    # framework names none (then it is absent, never made up).
    runs = [{r["step"].get("run_id") for r in observed[name].audit} for name in ("plain", "code")]
    if adapter.run_id:
        assert all(len(ids) == 1 and None not in ids for ids in runs) and runs[0] != runs[1], runs
    else:
        assert runs == [{None}, {None}], runs


def test_a_queued_call_waits_for_the_reviewers_decision(seen: tuple[Adapter, dict[str, Observed]]) -> None:
    observed = seen[1]["queue"]
    # Approved through the queue: the tool ran on the server (its own error text came back).
    assert observed.results["call_yes"].startswith("Error: ") and "approve me" in observed.results["call_yes"]
    assert "denied by reviewer" not in observed.results["call_yes"]
    # Denied: the model reads the reviewer's reason, flagged as any failure, and nothing reached the server.
    assert observed.results["call_no"] == "Error: denied by reviewer: not this one"
    shape = {(r["tool"], r["arguments"].get("message"), r["decision"], r["reviewer"], r["outcome"])
             for r in observed.audit}
    assert shape == {("error_result", "approve me", "approved", QUEUE_REVIEWER, "tool_error"),
                     ("error_result", "deny me", "denied", QUEUE_REVIEWER, "denied")}, shape


def test_a_deferred_catalogue_finds_and_calls_the_same_tool(seen: tuple[Adapter, dict[str, Observed]]) -> None:
    observed = seen[1]["deferred"]
    assert set(observed.offered) == {"find_tools", "call_tool"}
    found = json.loads(observed.results["call_find"])
    assert "stats" in [m["name"] for m in found["matches"]]
    assert json.loads(observed.results["call_through"])["count"] == 1
    (record,) = [r for r in observed.audit if r["tool"] == "stats"]
    assert (record["agent"], record["outcome"]) == (AGENT, "ok")


def test_code_mode_runs_every_inner_call_through_the_guards(seen: tuple[Adapter, dict[str, Observed]]) -> None:
    import hashlib

    adapter, observed = seen
    code = observed["code"]
    assert set(code.offered) == {"run_python"}
    description = code.offered["run_python"]["description"]
    assert "async def stats(*, numbers: list[float]" in description and "async def error_result(" in description
    assert code.results["call_code"].splitlines() == [
        "count 2", "caught: denied by reviewer: rejected", "tool error: it broke"]
    # Approval per inner call, never for the block: the approver was asked about each gated call.
    assert code.asked == [[AGENT, SERVER, "error_result"]] * 2
    program = hashlib.sha256(PROGRAM.encode()).hexdigest()[:16]
    # MetaGPT first runs each action on a text answer, which it reads as code for run_python: refused.
    outside = [(r["tool"], r["outcome"]) for r in code.audit if "program" not in r["step"]]
    assert set(outside) <= {("run_python", "refused")}, outside
    shape = [(r["agent"], r["tool"], r["arguments"], r["decision"], r["outcome"], r["step"]["program"],
              r["step"]["position"], r["step"]["framework"]) for r in code.audit if "program" in r["step"]]
    assert shape == [
        (AGENT, "stats", {"numbers": [1, 2]}, "not_required", "ok", program, 0, adapter.name),
        (AGENT, "error_result", {"message": "deny me"}, "denied", "denied", program, 1, adapter.name),
        (AGENT, "error_result", {"message": "it broke"}, "approved", "tool_error", program, 2, adapter.name),
    ], shape


def test_a_task_only_tool_returns_its_result(seen: tuple[Adapter, dict[str, Observed]]) -> None:
    observed = seen[1]["task"]
    assert "research" in observed.offered
    assert observed.results["call_task"] == "report on tides"
    # Audited like any call, and the record names the MCP task it ran as.
    [record] = observed.audit
    assert (record["tool"], record["outcome"]) == ("research", "ok") and record["step"]["task"]


def test_a_guarded_read_resource_tool_reads_what_the_server_listed(seen: tuple[Adapter, dict[str, Observed]]) -> None:
    observed = seen[1]["resources"]
    # MetaGPT asks its model only for a tool that takes arguments (image_result takes none).
    assert set(observed.offered) - {"image_result"} == {"stats", "sleep", "read_resource"}
    assert "zoo://docs/readme.md" in observed.offered["read_resource"]["description"]
    assert "pixel" not in observed.offered["read_resource"]["description"]
    assert observed.results["call_resource"] == ("[resource <zoo://docs/readme.md>]\n"
                                                 "# Schema zoo\n\nA fixture MCP server full of awkward tools.\n")
    refusal = observed.results["call_resource_out"]
    assert refusal.startswith("Error: ") and "outside this agent's resources" in refusal and "\n" not in refusal
    shape = {(r["agent"], r["server"], r["tool"], r["arguments"]["uri"], r["outcome"])
             for r in observed.audit if r["tool"] == READ_METHOD}
    assert shape == {(AGENT, SERVER, READ_METHOD, "zoo://docs/readme.md", "ok"),
                     (AGENT, SERVER, READ_METHOD, "zoo://images/pixel.png", "refused")}, shape


def test_media_and_a_timeout_read_alike(seen: tuple[Adapter, dict[str, Observed]], truth: Truth) -> None:
    observed = seen[1]["resources"]
    # An image is a short placeholder after the text, never base64, as the core renders it.
    assert observed.results["call_image"] == truth.image and "[image: image/png" in truth.image
    # Every entry point takes a per-call timeout; running past it reads as one flagged line.
    assert observed.results["call_slow"] == f"Error: server '{SERVER}', tool 'sleep': no answer within {TIMEOUT}s"
    # (A set: MetaGPT calls a tool without arguments once more, when it first asks its model.)
    shape = {(r["agent"], r["tool"], r["outcome"]) for r in observed.audit if r["tool"] != READ_METHOD}
    assert shape == {(AGENT, "image_result", "ok"), (AGENT, "sleep", "timeout")}, shape


def test_every_adapter_has_one_entry_point() -> None:
    import inspect

    import bridge.ag2
    import bridge.agent_framework
    import bridge.autogen

    for module in (bridge.autogen, bridge.ag2, bridge.agent_framework):
        params = inspect.signature(module.tools_for).parameters
        assert list(params)[:3] == ["source", "agent", "guards"], module.__name__
        assert params["agent"].default is None and params["guards"].default is None
        # (MetaGPT's takes it too: the resources run passes it to every adapter.)
        assert params["timeout"].kind is inspect.Parameter.KEYWORD_ONLY and params["timeout"].default is None


def test_a_source_needs_a_named_agent_and_a_toolset_is_taken_as_prepared() -> None:
    from bridge import ConfigError
    from bridge.adapters import Framework, toolset_for

    async def check() -> None:
        async with zoo() as server:
            fixed, growing = Framework("Fixed"), Framework("Growing", growing=True)
            with pytest.raises(ConfigError, match="name the agent"):
                toolset_for(server, fixed)
            with pytest.raises(ConfigError, match="growing toolsets are refused"):
                toolset_for(server.toolset("a", growing=True), fixed)
            with pytest.raises(ConfigError, match="carries its agent"):
                toolset_for(server.toolset("a"), fixed, "b")
            prepared = server.toolset("a", growing=True)
            assert toolset_for(prepared, growing) is prepared
            assert toolset_for(server, growing, "a", read_only=True).growing

    anyio.run(check)


def test_agent_frameworks_own_approval_requests_are_answered_from_the_queue(tmp_path: Path) -> None:
    from agent_framework import Agent, Message
    from agent_framework.openai import OpenAIChatCompletionClient

    from bridge.agent_framework import answer_from, tools_for

    async def go() -> tuple[list[str], list[dict[str, Any]]]:
        audit = tmp_path / "native.jsonl"
        async with zoo() as server:
            tools = await tools_for(server, agent=AGENT, include=["error_result"], audit=str(audit))
            assert [t.approval_mode for t in tools] == ["always_require"]
            script = [tool_call(*QUEUED["call_yes"], id="call_yes"), tool_call(*QUEUED["call_no"], id="call_no"),
                      text("done")]
            with ScriptedModel(script) as model:
                client = OpenAIChatCompletionClient(model="gpt-4o-mini", base_url=model.base_url, api_key="test")
                try:
                    agent = Agent(client=client, name=AGENT, instructions="Use the tools.", tools=tools)
                    session = agent.create_session()
                    response = await agent.run("Go.", session=session)
                    while response.user_input_requests:
                        queue = QueueApprover(tmp_path / "native.db", expires_after=DEADLINE)
                        replies = [await answer_from(queue, r, tools=tools) for r in response.user_input_requests]
                        response = await agent.run(Message("user", replies), session=session)
                finally:
                    await client.client.close()
            results = [text for i in range(len(model.requests)) for text in model.tool_results(i).values()]
        return results, read_audit(str(audit))

    with queue_reviewer(tmp_path):
        results, records = anyio.run(go)
    assert any("approve me" in r and "denied" not in r for r in results), results
    assert not any("deny me" in r and "denied" not in r for r in results), results  # never reached the server
    shape = {(r["arguments"].get("message"), r["decision"], r["reviewer"], r["outcome"]) for r in records}
    assert shape == {("approve me", "approved", QUEUE_REVIEWER, "tool_error"),
                     ("deny me", "denied", QUEUE_REVIEWER, "denied")}, shape


# Each adapter's prompt helpers, sent by that framework's own OpenAI client (MetaGPT keeps a prompt
# as role memory, rendered into its own prompt text: nothing of the messages' shape reaches its model).
PROMPT_LINES = (("user", "Review."), ("assistant", "OK."))


async def send_autogen(prompt: Any, base_url: str) -> None:
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    from bridge.autogen.prompts import prompt_messages, system_message

    client = OpenAIChatCompletionClient(model="gpt-4o-mini-2024-07-18", base_url=base_url, api_key="test")
    try:
        await client.create([system_message(prompt), *prompt_messages(prompt)])
    finally:
        await client.close()


async def send_ag2(prompt: Any, base_url: str) -> None:
    from autogen import OpenAIWrapper

    from bridge.ag2.prompts import prompt_messages, system_message

    client = OpenAIWrapper(config_list=[{"model": "gpt-4o-mini", "api_key": "test", "base_url": base_url}],
                           cache_seed=None)
    messages = [system_message(prompt), *prompt_messages(prompt)]
    await anyio.to_thread.run_sync(lambda: client.create(messages=messages))


async def send_agent_framework(prompt: Any, base_url: str) -> None:
    from agent_framework.openai import OpenAIChatCompletionClient

    from bridge.agent_framework.prompts import prompt_messages, system_message

    client = OpenAIChatCompletionClient(model="gpt-4o-mini", base_url=base_url, api_key="test")
    try:
        await client.get_response([system_message(prompt), *prompt_messages(prompt)])
    finally:
        await client.client.close()


@pytest.mark.parametrize("send", [send_autogen, send_ag2, send_agent_framework], ids=["autogen", "ag2",
                                                                                      "agent_framework"])
def test_a_servers_prompt_reaches_the_model_through_each_frameworks_client(
        send: Callable[[Any, str], Awaitable[None]]) -> None:
    from bridge.published import PromptLine, RenderedPrompt

    # A server name a model API refuses as a message name, as a label often is.
    prompt = RenderedPrompt("mail.v2", "review", "A review", tuple(PromptLine(r, t) for r, t in PROMPT_LINES))
    with ScriptedModel([text("fine")]) as model:
        anyio.run(send, prompt, model.base_url)
    messages = model.requests[0]["messages"]
    assert [(m["role"], message_text(m)) for m in messages] == [("system", prompt.system_text()), *PROMPT_LINES]
    # A message's name, where a framework sends one, is one OpenAI accepts.
    names = [m["name"] for m in messages if "name" in m]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", n) for n in names), names
