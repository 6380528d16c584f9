"""Write-ahead audit records: a call is on record before its request leaves, and a process killed
while the call is in flight leaves that record, shown as "no outcome". (An AutoGen worker killed
mid-call on the distributed runtime: ``tests/test_distributed.py``.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import anyio
import pytest
from helpers import PY, ROOT, fixture_env, module_cmd

from bridge import CallTimeout, ConnectionLost, Guards, connect
from bridge.audit import AuditRecord, JsonlAuditLog, SqliteAuditLog, query, verify_log
from bridge.cli import main
from bridge.connection import Handler, ToolCall
from bridge.results import CallResult
from bridge.steps import Step

pytestmark = pytest.mark.anyio

CLIENT = textwrap.dedent("""
    import sys
    import anyio
    from bridge import connect

    audit, command = sys.argv[1], sys.argv[2:]

    async def main():
        async with connect(command, name="chaos") as server:
            toolset = server.toolset("courier", approval=False, warn_unguarded=False, audit=audit)
            pid = (await toolset.call("pid", {})).text
            print(pid, flush=True)
            await toolset.call("hang", {"note": "in flight"}, call_id="the-unclear-one")

    anyio.run(main)
""")


def chaos() -> list[str]:
    return module_cmd("fixtures.chaos", "--transport", "stdio")


@pytest.mark.parametrize("filename", ["audit.jsonl", "audit.db"])
def test_a_process_killed_mid_call_leaves_a_call_with_no_outcome(tmp_path: Path, filename: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    audit = tmp_path / filename
    client = subprocess.Popen([PY, "-c", CLIENT, str(audit), *chaos()], cwd=ROOT, env=fixture_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server_pid = 0
    try:
        assert client.stdout is not None
        server_pid = int(client.stdout.readline().strip() or 0)
        assert server_pid, client.stderr.read() if client.stderr else ""
        deadline = time.monotonic() + 60
        while not [r for r in (query(audit) if audit.exists() else []) if r.tool == "hang"]:
            assert time.monotonic() < deadline, "the hanging call was never recorded"
            time.sleep(0.05)
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        if server_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server_pid, signal.SIGKILL)
    pid_call, hang = query(audit)
    assert (pid_call.tool, pid_call.outcome, pid_call.open) == ("pid", "ok", False)
    assert (hang.tool, hang.outcome, hang.open, hang.call_id) == ("hang", "started", True, "the-unclear-one")
    assert hang.arguments == {"note": "in flight"} and hang.error is None
    assert [r.call_id for r in query(audit, open_only=True)] == ["the-unclear-one"]
    assert verify_log(str(audit)).intact
    assert main(["audit", "--open", str(audit)]) == 0
    out = capsys.readouterr().out
    assert "no outcome" in out and "hang" in out and "pid" not in out.split("hang")[0].split("\n", 2)[-1]
    assert main(["audit", "--json", "--open", str(audit)]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["phase"], shown["outcome"], shown["chain_status"]) == ("started", "started", "ok")


class Witness:
    """An interceptor inside the trail: it reads the log just before the request leaves."""

    def __init__(self, log: JsonlAuditLog | SqliteAuditLog) -> None:
        self.log = log
        self.seen: list[list[tuple[str | None, str]]] = []

    async def __call__(self, call: ToolCall, call_next: Handler) -> CallResult:
        self.seen.append([(r.phase, r.outcome) for r in self.log.entries() if r.call_id == call.call_id])
        return await call_next(call)


@pytest.mark.parametrize("filename", ["audit.jsonl", "audit.db"])
async def test_the_record_is_written_before_the_request_leaves_and_finished_after(tmp_path: Path,
                                                                                  filename: str) -> None:
    log = JsonlAuditLog(tmp_path / filename) if filename.endswith(".jsonl") else SqliteAuditLog(tmp_path / filename)
    witness = Witness(log)
    guards = Guards(approval=False, warn_unguarded=False, audit=log, interceptors=(witness,))
    async with connect(chaos(), env=fixture_env(), cwd=ROOT, name="chaos") as server:
        toolset = server.toolset("courier", guards)
        step = Step("autogen", tool_call_id="call_7", run_id="run-1")
        assert json.loads((await toolset.call("echo", {"x": 1}, call_id="c-ok", step=step)).text) == {"x": 1}
        with pytest.raises(CallTimeout):
            await toolset.call("hang", {}, call_id="c-timeout", timeout=0.5)
        with anyio.move_on_after(0.5) as scope:
            await toolset.call("hang", {}, call_id="c-cancelled")
        assert scope.cancelled_caught
        with pytest.raises(ConnectionLost):
            await toolset.call("die", {}, call_id="c-died")
    # When each request left, its started record was already stored, and nothing else of it.
    assert witness.seen == [[("started", "started")]] * 4
    stored = log.entries()
    assert [(r.call_id, r.phase, r.outcome) for r in stored] == [
        ("c-ok", "started", "started"), ("c-ok", "finished", "ok"),
        ("c-timeout", "started", "started"), ("c-timeout", "finished", "timeout"),
        ("c-cancelled", "started", "started"), ("c-cancelled", "finished", "cancelled"),
        ("c-died", "started", "started"), ("c-died", "finished", "exception"),
    ]
    assert all(stored[i + 1].ref == stored[i].record_id for i in range(0, len(stored), 2))
    # Readers see one record per call, under the started record's id and time.
    calls = log.records()
    assert [(r.call_id, r.outcome, r.open) for r in calls] == [
        ("c-ok", "ok", False), ("c-timeout", "timeout", False), ("c-cancelled", "cancelled", False),
        ("c-died", "exception", False)]
    assert [r.record_id for r in calls] == [r.record_id for r in stored if r.phase == "started"]
    assert calls[0].step == {"framework": "autogen", "tool_call_id": "call_7", "run_id": "run-1"}
    assert calls[0].duration > 0 and stored[0].duration == 0


async def test_a_call_whose_started_record_cannot_be_written_is_not_sent(tmp_path: Path) -> None:
    class Refusing:
        """A store that fails every write: nothing may leave unrecorded."""

        location = "refusing-store"

        async def append(self, record: AuditRecord) -> None:
            raise OSError("disk full")

        def records(self, **_: object) -> list[AuditRecord]:
            return []

    async with connect(chaos(), env=fixture_env(), cwd=ROOT, name="chaos") as server:
        toolset = server.toolset("courier", approval=False, warn_unguarded=False, audit=Refusing())
        with pytest.raises(Exception, match="could not write a record"):
            await toolset.call("counter", {})
        count = json.loads((await server.call("counter", {})).text)
    assert count == 1  # only the direct call above ran
