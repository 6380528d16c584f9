"""Tools that run as MCP tasks, in both protocol eras, against real servers.

``fixtures.task_server`` serves task-only and task-optional tools over 2025-11-25 experimental
tasks and the 2026-07-28 ``io.modelcontextprotocol/tasks`` extension; its ``ledger`` tool says
which tasks it created and which ``tasks/cancel`` requests it received, so each test checks what
the server saw, not just what the bridge said. server-everything's ``simulate-research-query``
is the third-party task-only tool.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from helpers import PY, ROOT, http_server
from test_cli_signals import interruptible
from thirdparty import servers

from bridge import AutoApprove, connect
from bridge.audit.jsonl import JsonlAuditLog
from bridge.errors import CallTimeout
from bridge.server import Server
from bridge.task_calls import RELATED_TASK

pytestmark = pytest.mark.anyio

ERAS = {"legacy": "2025-11-25", "auto": "2026-07-28"}
TASK_SERVER = [sys.executable, "-m", "fixtures.task_server"]


@pytest.fixture(scope="module")
def task_url() -> Iterator[str]:
    """One task server over Streamable HTTP for the module; each test opens its own session."""
    with http_server("fixtures.task_server") as url:
        yield url


async def ledger(server: Server) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((await server.call("ledger")).text)
    return data


def task_of(result: Any) -> str:
    task_id: str = result.meta[RELATED_TASK]["taskId"]
    return task_id


@pytest.mark.parametrize("mode", list(ERAS))
async def test_a_task_only_tool_runs_as_a_task_and_reports_its_status(task_url: str, mode: str,
                                                                      tmp_path: Path) -> None:
    seen: list[str] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    async with connect(task_url, mode=mode) as server:
        assert server.info.protocol_version == ERAS[mode]
        assert "research" in await server.catalogue() and not server.withheld
        toolset = server.toolset("analyst", approver=AutoApprove(), audit=str(tmp_path / "audit.jsonl"))
        result = await toolset.call("research", {"topic": "bees", "seconds": 0.2}, progress=progress)
        assert not result.is_error and result.text == "report on bees"
        task_id = task_of(result)
        assert task_id in (await ledger(server))["ids"]
        # Each status change reached the listener, naming the task; the last one is its end.
        assert seen[0].startswith(f"task {task_id}: working") and seen[-1] == f"task {task_id}: completed (done)"
        assert server.session.running_tasks == {}
        # The audit record of the call names the task it ran as.
        finished = [r for r in JsonlAuditLog(tmp_path / "audit.jsonl").records() if r.phase == "finished"]
        assert [(r.tool, r.outcome, (r.step or {}).get("task")) for r in finished] == [("research", "ok", task_id)]
        assert (await server.call("echo", {"text": "still here"})).text == "still here"


@pytest.mark.parametrize("mode", list(ERAS))
async def test_cancelling_the_call_cancels_the_task_and_the_session_stays_usable(task_url: str, mode: str) -> None:
    async with connect(task_url, mode=mode) as server:
        before = await ledger(server)
        with anyio.move_on_after(0.5):
            await server.call("forever")
        book = await ledger(server)
        assert book["created"][-1] == "forever" and book["cancels"] == [*before["cancels"], book["ids"][-1]]
        assert server.session.running_tasks == {}
        assert (await server.call("echo", {"text": "after"})).text == "after"


async def test_a_call_past_its_timeout_cancels_the_task_in_one_line(task_url: str) -> None:
    async with connect(task_url, mode="legacy") as server:
        before = await ledger(server)
        with pytest.raises(CallTimeout) as raised:
            await server.call("forever", timeout=0.4)
        book = await ledger(server)
        task_id = book["ids"][-1]
        message = str(raised.value)
        assert "\n" not in message and f"task {task_id}" in message and "not finished within 0.4s" in message
        assert book["cancels"] == [*before["cancels"], task_id]


@pytest.mark.parametrize("mode", list(ERAS))
async def test_a_task_past_its_ttl_is_one_line_naming_it(task_url: str, mode: str) -> None:
    async with connect(task_url, mode=mode) as server:
        with pytest.raises(CallTimeout) as raised:
            await server.call("short_lived")
        message = str(raised.value)
        assert "\n" not in message and "time-to-live of 0.3s passed" in message
        assert f"task {(await ledger(server))['ids'][-1]}" in message and server.session.running_tasks == {}


async def test_optional_task_tools_run_as_tasks_only_when_opted_in(task_url: str) -> None:
    async with connect(task_url, mode="legacy") as plain:
        result = await plain.call("maybe_slow", {"seconds": 0.1})
        assert result.text == "maybe_slow answered at once" and RELATED_TASK not in (result.meta or {})
    async with connect(task_url, mode="legacy", task_tools=["maybe_*"]) as opted:
        result = await opted.call("maybe_slow", {"seconds": 0.1})
        assert result.text == "maybe_slow finished" and task_of(result) in (await ledger(opted))["ids"]


async def test_a_2026_server_decides_to_answer_with_a_task(task_url: str) -> None:
    # No opt-in needed: the bridge declares the extension and the server chose a task.
    async with connect(task_url, mode="auto") as server:
        result = await server.call("maybe_slow", {"seconds": 0.1})
        assert result.text == "maybe_slow finished" and task_of(result)
        # Over HTTP each tasks/get names its task in the Mcp-Name header (SEP-2663).
        assert task_of(result) in (await ledger(server))["names"]


@pytest.mark.parametrize("mode", list(ERAS))
async def test_a_connection_killed_mid_task_resumes_polling_the_same_task(tmp_path: Path, mode: str) -> None:
    store = tmp_path / "tasks.json"
    seen: list[str] = []
    async with connect([*TASK_SERVER, "--store", str(store)], mode=mode, reconnect_backoff=0.05) as server:
        pid = int((await server.call("pid")).text)

        async def progress(done: float, total: float | None, message: str | None) -> None:
            seen.append(message or "")
            if len(seen) == 1:
                os.kill(pid, signal.SIGKILL)  # the server dies while the task runs

        result = await server.call("research", {"topic": "resilience", "seconds": 1.0}, progress=progress)
        assert result.text == "report on resilience"
        assert int((await server.call("pid")).text) != pid
        book = await ledger(server)
        # One task, created once: the reconnected session polled it rather than calling again.
        assert book["created"] == ["research"] and task_of(result) == book["ids"][0]


@pytest.mark.thirdparty
@pytest.mark.skipif(not servers.installed(), reason=servers.skip_reason() or "")
async def test_server_everything_task_only_tool(tmp_path: Path) -> None:
    launch = servers.SERVERS["everything"].launch(tmp_path)
    statuses: list[str] = []
    asked: list[str] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        statuses.append(message or "")

    async def clarify(context: Any, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"interpretation": "historical"})

    async with connect(launch.argv, env=launch.env, cwd=launch.cwd, mode="legacy", elicitation=clarify) as server:
        assert "simulate-research-query" not in server.withheld
        # Ambiguous: the task waits for input, which tasks/result delivers as an elicitation.
        result = await server.call("simulate-research-query", {"topic": "tides", "ambiguous": True},
                                   progress=progress)
        assert not result.is_error and result.text.startswith("# Research Report: tides (historical)")
        assert any(s.endswith("input required (Found multiple interpretations for \"tides\". Requesting "
                              "clarification...)") for s in statuses) and task_of(result)
        assert len(asked) == 1 and '"tides" could have multiple interpretations' in asked[0]


def test_ctrl_c_leaves_the_task_running_and_task_get_resumes_it(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from bridge.cli import main

    store = tmp_path / "tasks.json"
    server = ["--env", f"PYTHONPATH={ROOT}", "--", PY, "-m", "fixtures.task_server", "--store", str(store)]
    # --debug logs the protocol: Ctrl-C comes once the CLI polls the task (it knows the id by then).
    cli = subprocess.Popen([PY, "-m", "bridge.cli", "call", "research", "--debug", "--arg", "topic=tides",
                            "--arg", "seconds=3", *server], cwd=ROOT, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                           preexec_fn=interruptible)
    try:
        assert cli.stderr is not None
        lines = []
        for line in cli.stderr:
            lines.append(line)
            if '"method":"tasks/get"' in line:
                break
        else:
            pytest.fail("the CLI never polled its task: " + "".join(lines))
        cli.send_signal(signal.SIGINT)
        _, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
    [task_id] = json.loads(store.read_text())["tasks"]
    assert cli.returncode == 130
    # The stdio server stopped with the call; this one keeps its tasks in a file, so the task resumes.
    assert (f"task {task_id} was running when its server stopped with this call; if the server keeps tasks across "
            f"a restart, resume it with: mcp-bridge task SERVER get {task_id}") in " ".join(err.split()), err
    assert json.loads(store.read_text())["cancels"] == []  # left running, not cancelled
    # A new process resumes it by id (in-process here: the same code path as the console script).
    assert main(["task", "get", task_id, *server]) == 0
    assert capsys.readouterr().out.strip() == "report on tides"
    assert main(["task", "cancel", task_id, *server]) == 0
    assert json.loads(store.read_text())["cancels"] == [task_id]


async def test_a_2026_task_waiting_for_input_is_answered_through_the_callbacks(task_url: str) -> None:
    asked: list[str] = []

    async def elicit(context: Any, params: Any) -> Any:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"ok": True})

    async with connect(task_url, mode="auto", elicitation=elicit) as server:
        result = await server.call("confirm")
    # Asked once (the same request seen on later polls is not asked again), answered by tasks/update.
    assert asked == ["Proceed with the plan?"]
    assert result.text == 'answer: {"action": "accept", "content": {"ok": true}}'


async def test_a_hostile_status_message_reaches_listeners_as_one_bounded_inert_line(task_url: str) -> None:
    seen: list[str] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    async with connect(task_url, mode="auto") as server:
        result = await server.call("noisy", {"seconds": 0.2}, progress=progress)
    assert result.text == "noisy finished"
    working = seen[0]
    assert "\x1b" not in working and "\n" not in working and "\x07" not in working
    assert len(working) < 400 and "\\x1b[2J" in working and "line one\\x0aline two" in working
