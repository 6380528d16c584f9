"""Guards only describe: the owner of an agent's tools opens its audit stores and closes them on
every exit, and the approval decision reaches the trail as a typed value on the call.

Real servers (the scriptable hostile fixture over stdio), a real SQLite file and a real PostgreSQL
server: open SQLite handles are counted in ``/proc/self/fd``, PostgreSQL sessions in
``pg_stat_activity``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from autogen_core import CancellationToken
from helpers import ROOT, fixture_env, module_cmd

from bridge import Guards, InvalidArguments, Server, connect
from bridge.approval import ApprovalGate, CallbackApprover, Decision
from bridge.audit import AuditRecord, query
from bridge.connection import ToolCall
from bridge.errors import ToolError
from fixtures.postgres import TempPostgres

pytestmark = pytest.mark.anyio

OK = {"result": {"content": [{"type": "text", "text": "done"}]}}
ECHO = {"name": "echo", "description": "Echo.", "inputSchema": {"type": "object"}}
SEND = {"name": "send", "description": "Send a message.",
        "inputSchema": {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]}}
WIPE = {"name": "wipe", "description": "Wipe everything.", "inputSchema": {"type": "object"}}
SCRIPT = {"tools": [ECHO, SEND, WIPE], "calls": {"echo": [OK], "send": [OK], "wipe": [OK]}}
AGENTS = ("triage", "drafter", "auditor")


class Boom(Exception):
    """The agent code fails while the server is open."""


def hostile(journal: Path) -> Server:
    script = {**SCRIPT, "journal": str(journal)}
    return connect(module_cmd("fixtures.hostile"), env=fixture_env(HOSTILE_SCRIPT=json.dumps(script)), cwd=ROOT,
                   name="h", timeout=20, call_timeout=20)


def calls_received(journal: Path) -> list[str]:
    lines = journal.read_text(encoding="utf-8").splitlines() if journal.exists() else []
    return [m["params"]["name"] for m in map(json.loads, lines) if m.get("method") == "tools/call"]


def sqlite_handles(path: Path) -> int:
    """File descriptors of this process open on the database file itself (not its -wal/-shm)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            continue
    return count



@pytest.fixture
def pg(postgres: TempPostgres) -> tuple[TempPostgres, str]:
    name = f"audit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres, name


def pg_sessions(server: TempPostgres, database: str) -> int:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                           (database,)).fetchone()
    return int(row[0]) if row else 0


async def settled_sessions(server: TempPostgres, database: str) -> int:
    # A backend leaves pg_stat_activity a moment after its client hung up; the deadline only guards a hang.
    with anyio.move_on_after(20):
        while pg_sessions(server, database):
            await anyio.sleep(0.05)
    return pg_sessions(server, database)


def unguarded(audit: Any) -> Guards:
    return Guards(audit=audit, approval=False, warn_unguarded=False)


# -- every store opened is closed, once per file or URL ---------------------------------------------


@pytest.mark.parametrize("ending", ["normal", "exception", "cancelled"])
async def test_a_server_opens_each_audit_store_once_and_closes_it_on_every_exit(
        tmp_path: Path, pg: tuple[TempPostgres, str], ending: str) -> None:
    postgres, database = pg
    db = tmp_path / "audit.sqlite3"
    url = postgres.url(database)
    journal = tmp_path / "journal.jsonl"
    seen: dict[str, int] = {}
    with anyio.CancelScope() as scope:
        try:
            async with hostile(journal) as server:
                # Several agents, the same two stores; Guards.of re-derives a value, which opens nothing.
                base = unguarded(db)
                toolsets = [server.toolset(agent, Guards.of(base, include=["echo"])) for agent in AGENTS]
                toolsets += [server.toolset(f"{agent}-pg", unguarded(url)) for agent in AGENTS]
                assert sqlite_handles(db) == 0 and pg_sessions(postgres, database) == 0  # described, not opened
                for toolset in toolsets:
                    assert (await toolset.call("echo", {}, call_id=toolset.agent)).text == "done"
                seen = {"sqlite": sqlite_handles(db), "postgres": pg_sessions(postgres, database)}
                if ending == "exception":
                    raise Boom
                if ending == "cancelled":
                    scope.cancel()
                    await anyio.sleep_forever()
        except Boom:
            pass
    assert seen == {"sqlite": 1, "postgres": 1}
    assert sqlite_handles(db) == 0
    assert await settled_sessions(postgres, database) == 0
    records = query(db) + query(url)
    assert sorted(r.call_id or "" for r in records) == sorted([*AGENTS, *(f"{a}-pg" for a in AGENTS)])


async def test_a_toolset_that_stops_lets_go_of_its_store_and_the_last_one_closes_it(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    async with hostile(tmp_path / "journal.jsonl") as server:
        first, second = (server.toolset(agent, unguarded(db)) for agent in AGENTS[:2])
        for toolset in (first, second):
            await toolset.call("echo", {})
        assert sqlite_handles(db) == 1
        await first.stop()
        assert sqlite_handles(db) == 1  # still held by the second agent
        await second.stop()
        assert sqlite_handles(db) == 0
        await first.call("echo", {})  # a stopped toolset opens again on its next call
        assert sqlite_handles(db) == 1
    assert sqlite_handles(db) == 0


def test_guards_only_describe() -> None:
    guards = Guards(audit="postgresql://audit@127.0.0.1:1/none")  # nothing listens there: nothing connects
    assert guards.audit == "postgresql://audit@127.0.0.1:1/none"
    assert isinstance(guards.gate, ApprovalGate) and guards.gated
    assert Guards(approval=False).gate is None


# -- the decision travels with the call -------------------------------------------------------------


def reviewer(call: ToolCall) -> Decision:
    ok = call.mcp_name != "wipe"
    return Decision(ok, "console:alice", "fine" if ok else "not today")


def outcomes(records: list[AuditRecord]) -> list[tuple[str | None, str, str, str | None, str | None]]:
    return [(r.call_id, r.tool, r.outcome, r.decision, r.reviewer) for r in records]


async def test_autogen_records_approval_denial_refusal_and_an_interrupted_review(tmp_path: Path) -> None:
    from bridge.autogen import tools_for

    db, journal = tmp_path / "audit.sqlite3", tmp_path / "journal.jsonl"
    review_started = anyio.Event()

    async def slow_reviewer(call: ToolCall) -> Decision:
        if call.mcp_name == "echo":
            review_started.set()
            await anyio.sleep_forever()
        return reviewer(call)

    async with hostile(journal) as server:
        tools = {t.mcp_name: t for t in await tools_for(server, "worker", approver=CallbackApprover(slow_reviewer),
                                                         audit=db)}
        await tools["send"].run_json({"to": "bob"}, CancellationToken(), call_id="approved")
        with pytest.raises(ToolError, match="denied by reviewer: not today"):
            await tools["wipe"].run_json({}, CancellationToken(), call_id="denied")
        with pytest.raises(InvalidArguments):
            await tools["send"].run_json({"to": 7}, CancellationToken(), call_id="refused")
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: tools["echo"].run_json({}, CancellationToken(), call_id="interrupted"))
            await review_started.wait()
            tg.cancel_scope.cancel()
    assert calls_received(journal) == ["send"]
    assert outcomes(query(db)) == [
        ("approved", "send", "ok", "approved", "console:alice"),
        ("denied", "wipe", "denied", "denied", "console:alice"),
        ("refused", "send", "refused", None, None),
        ("interrupted", "echo", "exception", None, None),  # nobody decided
    ]
    denied, interrupted = query(db)[1], query(db)[3]
    assert denied.reason == "not today" and denied.error == "denied by reviewer: not today"
    assert interrupted.error == "no approval decision: cancelled"


def said(contents: Any) -> str:
    """The text the framework hands the model from ``invoke``."""
    return "".join(str(getattr(c, "text", "") or "") for c in contents)


async def test_agent_framework_records_the_callers_own_answers(tmp_path: Path) -> None:
    from bridge.agent_framework import FrameworkApprovals, tools_for

    db, journal = tmp_path / "audit.sqlite3", tmp_path / "journal.jsonl"
    async with hostile(journal) as server:
        tools = {t.mcp_name: t for t in await tools_for(server, agent="drafter", audit=db)}
        send, wipe = tools["send"], tools["wipe"]
        assert send.approval_mode == "always_require" and isinstance(send.approvals, FrameworkApprovals)
        # The caller approved the framework's request: the answer goes in with the call.
        send.remember("c1", Decision(True, "alice", "looks right"))
        assert said(await send.invoke(arguments={"to": "bob"}, tool_call_id="c1")) == "done"
        # The caller denied: recorded at once, never sent, nobody asked again.
        await wipe.record_denial("c2", {}, Decision(False, "alice", "never"))
        # Invoked by hand, outside a run: no answer came with it, so the gate denies.
        by_hand = await send.invoke(arguments={"to": "eve"})
        assert "no Agent Framework approval was given" in said(by_hand)
        # Arguments the schema refuses: a refusal, before any decision.
        refused = await send.invoke(arguments={"to": 7}, tool_call_id="c3")
        assert "'to'" in said(refused)
    assert calls_received(journal) == ["send"]
    assert outcomes(query(db)) == [
        ("c1", "send", "ok", "approved", "alice"),
        ("c2", "wipe", "denied", "denied", "alice"),
        (None, "send", "denied", "denied", "agent_framework:caller"),
        ("c3", "send", "refused", None, None),
    ]
    assert [r.reason for r in query(db)][:2] == ["looks right", "never"]


async def test_a_denial_given_with_the_call_stands_whatever_the_policy(tmp_path: Path) -> None:
    db, journal = tmp_path / "audit.sqlite3", tmp_path / "journal.jsonl"
    async with hostile(journal) as server:
        from bridge.approval import ApprovalPolicy, AutoApprove

        toolset = server.toolset("bot", approval=ApprovalPolicy("never"), approver=AutoApprove(), audit=db)
        result = await toolset.call("echo", {}, call_id="x", approval=Decision(False, "alice", "stop"))
        assert result.is_error and result.text == "denied by reviewer: stop"
        await toolset.call("echo", {}, call_id="y")
    assert calls_received(journal) == ["echo"]
    assert outcomes(query(db)) == [("x", "echo", "denied", "denied", "alice"),
                                   ("y", "echo", "ok", "not_required", "policy")]
