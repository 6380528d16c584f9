"""The durable approval queue: real stores (SQLite files, a real PostgreSQL), real servers, real processes.

A call flagged by the policy waits in the queue until a decision is written by another
connection (the CLI's code path); the decision is bound to the exact arguments and used once,
survives the waiting process being SIGKILLed, and expiry and cancellation end a request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import anyio
import pytest
from helpers import SECURED_PASSWORD, SECURED_ROLE

from bridge import connect
from bridge.approvals import (
    AlreadyDecided,
    ApprovalRequest,
    ApprovalStore,
    QueueApprover,
    SqliteApprovalStore,
    open_approval_store,
)
from bridge.approvals.requests import argument_hash, request_for
from bridge.cli import main
from bridge.connection import ToolCall
from fixtures.postgres import TempPostgres

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
HANG = 60.0
"""Only turns a hang into a named failure."""

SEND = {"name": "send_email", "description": "Send an email.",
        "inputSchema": {"type": "object", "properties": {"to": {"type": "string"}, "subject": {"type": "string"},
                                                          "body": {"type": "string"}, "api_key": {"type": "string"}}}}
SENT = {"result": {"content": [{"type": "text", "text": "sent"}]}}



def hostile(journal: Path) -> tuple[list[str], dict[str, str]]:
    """The scriptable server with one unannotated (so destructive) tool, journalling every message."""
    script = {"tools": [SEND], "calls": {"send_email": [SENT]}, "journal": str(journal)}
    return [PY, "-m", "fixtures.hostile"], {"PYTHONPATH": str(ROOT), "HOSTILE_SCRIPT": json.dumps(script)}


def sent(journal: Path) -> list[dict[str, Any]]:
    """The tools/call requests the server received."""
    if not journal.exists():
        return []
    messages = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    return [m["params"]["arguments"] for m in messages if m.get("method") == "tools/call"]


async def until_pending(store: ApprovalStore, count: int = 1) -> list[ApprovalRequest]:
    with anyio.move_on_after(HANG):
        while True:
            pending = await store.list(statuses=("pending",))
            if len(pending) >= count:
                return sorted(pending, key=lambda r: r.id)
            await anyio.sleep(0.05)
    raise AssertionError(f"never happened: {count} pending request(s)")


def cli(*args: str) -> int:
    return main(["approvals", *args])


async def test_a_decision_reaches_the_waiting_call_bound_to_its_arguments(tmp_path: Path) -> None:
    db, journal = tmp_path / "approvals.db", tmp_path / "journal.jsonl"
    command, env = hostile(journal)
    reviewer_view = SqliteApprovalStore(db)
    args = {"to": "ann@example.com", "subject": "hi", "body": "hello", "api_key": "sk-" + "a1" * 20}
    async with connect(command, env=env, cwd=ROOT, name="mail") as server:
        tools = server.toolset("drafter", approver=QueueApprover(db, expires_after=HANG * 2))
        results: list[Any] = []
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: _collect(results, tools.call("send_email", args)))
            (request,) = await until_pending(reviewer_view)
            assert sent(journal) == []  # nothing leaves before the decision
            assert request.agent == "drafter" and request.server == "mail" and request.tool == "send_email"
            assert "sk-a1" not in json.dumps(request.arguments)  # masked for display
            assert request.hints == {} and "counts as destructive" in request.why
            assert await anyio.to_thread.run_sync(cli, "approve", str(request.id), "--store", str(db),
                                                  "--reviewer", "alice") == 0
        assert not results[0].is_error and "sent" in results[0].text
        assert sent(journal) == [args]
        used = await reviewer_view.get(request.id)
        assert used.status == "approved" and used.reviewer == "alice" and used.consumed is not None

        # The same arguments again: that approval was used, so this is a new request.
        changed = {**args, "to": "bob@example.com"}
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: _collect(results, tools.call("send_email", changed)))
            (again,) = await until_pending(reviewer_view)
            assert again.id != request.id and again.arguments["to"] == "bob@example.com"
            await reviewer_view.decide(again.id, False, "bob", "wrong recipient")
        assert results[1].is_error and "wrong recipient" in results[1].text
        assert sent(journal) == [args]  # the denied call never left
    await reviewer_view.aclose()


async def _collect(into: list[Any], call: Any) -> None:
    into.append(await call)


async def test_expiry_denies_with_a_reason_and_cancellation_marks_cancelled(tmp_path: Path) -> None:
    db, journal = tmp_path / "approvals.db", tmp_path / "journal.jsonl"
    command, env = hostile(journal)
    view = SqliteApprovalStore(db)
    async with connect(command, env=env, cwd=ROOT, name="mail") as server:
        result = await server.toolset("drafter", approver=QueueApprover(db, expires_after=0.3)).call(
            "send_email", {"to": "ann@example.com"})
        assert result.is_error and "expired" in result.text and "not made" in result.text
        (expired,) = await view.list()
        assert expired.status == "expired"

        tools = server.toolset("drafter", approver=QueueApprover(db, expires_after=HANG * 2))
        async with anyio.create_task_group() as group:
            group.start_soon(tools.call, "send_email", {"to": "cy@example.com"})
            waiting = next(r for r in await until_pending(view) if r.status == "pending")
            group.cancel_scope.cancel()
        cancelled = await view.get(waiting.id)
        assert cancelled.status == "cancelled"
        with pytest.raises(AlreadyDecided, match="already cancelled"):
            await view.decide(waiting.id, True, "alice")
    assert sent(journal) == []
    await view.aclose()


async def test_an_approval_that_arrives_as_its_call_is_withdrawn_is_never_used_by_a_later_call(
        tmp_path: Path) -> None:
    # The console answered first (ConsoleApprover(queue=...)) or the run was stopped, just as a
    # reviewer elsewhere approved: the withdrawn call's approval must not let a retry through unasked.
    db = tmp_path / "approvals.db"
    call = ToolCall(server="mail", tool="send_email", mcp_name="send_email", arguments={"to": "ann@example.com"},
                    agent="drafter")
    # A waiter that looks only every 60 s has certainly not seen the approval when it is withdrawn.
    slow = QueueApprover(SqliteApprovalStore(db, poll_interval=HANG), expires_after=600)
    view = SqliteApprovalStore(db)
    async with anyio.create_task_group() as group:
        group.start_soon(slow.review, call)
        (request,) = await until_pending(view)
        assert await anyio.to_thread.run_sync(cli, "approve", str(request.id), "--store", str(db)) == 0
        group.cancel_scope.cancel()
    retry = await QueueApprover(db, expires_after=0.3).review(call)
    assert not retry.approved and "expired" in retry.reason  # asked anew, and nobody answered
    assert (await view.get(request.id)).consumed is not None
    await view.aclose()
    await slow.store.aclose()


AGENT = """
import anyio, json, sys
from bridge import connect
from bridge.approvals import QueueApprover

async def main() -> None:
    command, env, db = json.loads(sys.argv[1])
    async with connect(command, env=env, name="mail") as server:
        tools = server.toolset("drafter", approver=QueueApprover(db, expires_after=600))
        result = await tools.call("send_email", {"to": "ann@example.com", "subject": "report"})
        print(json.dumps({"error": result.is_error, "text": result.text}), flush=True)

anyio.run(main)
"""


def start_agent(db: Path, journal: Path) -> subprocess.Popen[str]:
    command, env = hostile(journal)
    return subprocess.Popen([PY, "-c", AGENT, json.dumps([command, env, str(db)])], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


async def test_a_decision_made_while_the_agent_was_killed_is_used_once_after_a_restart(tmp_path: Path) -> None:
    db, journal = tmp_path / "approvals.db", tmp_path / "journal.jsonl"
    view = SqliteApprovalStore(db)
    first = start_agent(db, journal)
    try:
        (request,) = await until_pending(view)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(HANG)
    assert await anyio.to_thread.run_sync(cli, "approve", str(request.id), "--store", str(db)) == 0

    second = start_agent(db, journal)
    out, _ = await anyio.to_thread.run_sync(lambda: second.communicate(timeout=HANG))
    assert json.loads(out) == {"error": False, "text": "sent"}
    assert len(sent(journal)) == 1
    assert (await view.get(request.id)).consumed is not None
    assert len(await view.list()) == 1  # it asked nobody again

    # Never twice: a third run of the same proposal asks anew (and the reviewer sees the duplicate).
    third = start_agent(db, journal)
    try:
        new = next(r for r in await until_pending(view) if r.id != request.id)
        assert new.duplicate_of == request.id
    finally:
        third.send_signal(signal.SIGKILL)
        third.wait(HANG)
    assert len(sent(journal)) == 1
    await view.aclose()


async def test_duplicates_by_chosen_fields_name_who_proposed_and_who_decided(tmp_path: Path) -> None:
    db, journal = tmp_path / "approvals.db", tmp_path / "journal.jsonl"
    command, env = hostile(journal)
    view = SqliteApprovalStore(db)
    fields = {"send_email": ["to", "subject"]}
    async with connect(command, env=env, cwd=ROOT, name="mail") as server, anyio.create_task_group() as group:
        for agent, body in (("drafter", "v1"), ("reviewer", "v2 with other words")):
            tools = server.toolset(agent, approver=QueueApprover(db, duplicate_fields=fields))
            group.start_soon(tools.call, "send_email", {"to": "ann@example.com", "subject": "Q3", "body": body})
            await until_pending(view, 1 if agent == "drafter" else 2)
        one, two = await until_pending(view, 2)
        assert one.duplicate_of is None and two.duplicate_of == one.id
        await view.decide(one.id, True, "alice")
        await view.decide(two.id, False, "alice", "duplicate of the drafter's email")
    # ``show`` names the other request's proposer and reviewer.
    assert len(sent(journal)) == 1
    await view.aclose()




async def test_the_postgres_store_never_stores_its_own_password_in_arguments(postgres: TempPostgres) -> None:
    # The model copied the store URL's password (unknown to the agent as a secret) into an argument.
    url = postgres.url("secured_audit", user=SECURED_ROLE, password=quote(SECURED_PASSWORD, safe=""))
    call = ToolCall(server="mail", tool="send_email", mcp_name="send_email", agent="drafter",
                    arguments={"to": "ann@example.com", "body": f"db pass {SECURED_PASSWORD}"})
    store = open_approval_store(url)
    try:
        request = await store.submit(request_for(call, expires_after=600), duplicate_window=0)
        stored = await store.get(request.id)
    finally:
        await store.aclose()
    assert stored.arguments == {"to": "ann@example.com", "body": "db pass ***"}
    assert stored.arguments_sha256 == argument_hash(call.arguments)  # bound to the real arguments still


async def test_a_waiting_call_outlives_its_postgres_connections_being_cut(postgres: TempPostgres) -> None:
    # A PostgreSQL restart or failover cuts every connection; the request is durable, so the call
    # keeps waiting and gets the decision given after it, rather than failing (and being denied) at once.
    import psycopg

    url = postgres.new_database("approvals")
    call = ToolCall(server="mail", tool="send_email", mcp_name="send_email", agent="drafter",
                    arguments={"to": "ann@example.com"})
    agent, view = QueueApprover(url, expires_after=HANG * 2), open_approval_store(url)
    decided: list[Any] = []
    async with anyio.create_task_group() as group:
        group.start_soon(_collect, decided, agent.review(call))
        (request,) = await until_pending(view)
        await view.aclose()
        with psycopg.connect(url, autocommit=True) as admin:
            cut = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = 'mcp-bridge approvals'").fetchall()
        assert cut  # the agent's connections, listener included
        assert await anyio.to_thread.run_sync(cli, "approve", str(request.id), "--store", url,
                                              "--reviewer", "alice") == 0
    assert [(d.approved, d.reviewer) for d in decided] == [(True, "alice")]
    assert (await view.get(request.id)).consumed is not None
    await view.aclose()
    await agent.store.aclose()


async def test_two_workers_sharing_a_postgres_queue_each_get_only_their_decision(
        tmp_path: Path, postgres: TempPostgres) -> None:
    url, journal = postgres.new_database("approvals"), tmp_path / "journal.jsonl"
    command, env = hostile(journal)
    view = open_approval_store(url)
    results: dict[str, Any] = {}

    async def worker(agent: str, to: str) -> None:
        # Each worker has a store (connections, listener) of its own, as separate processes would.
        async with connect(command, env=env, cwd=ROOT, name="mail") as server:
            tools = server.toolset(agent, approver=QueueApprover(url, expires_after=HANG * 2))
            results[agent] = await tools.call("send_email", {"to": to})

    async with anyio.create_task_group() as group:
        group.start_soon(worker, "w1", "ann@example.com")
        group.start_soon(worker, "w2", "bob@example.com")
        by_agent = {r.agent: r for r in await until_pending(view, 2)}
        await view.decide(by_agent["w2"].id, True, "alice")
        with anyio.fail_after(HANG):
            while "w2" not in results:
                await anyio.sleep(0.02)
        assert "w1" not in results  # w2's approval did not release w1
        await view.decide(by_agent["w1"].id, False, "alice", "not to ann")
    assert not results["w2"].is_error and results["w1"].is_error and "not to ann" in results["w1"].text
    assert sent(journal) == [{"to": "bob@example.com"}]
    await view.aclose()


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []
    failures = 1

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        failing = type(self).failures > 0
        type(self).failures -= 1
        self.send_response(503 if failing else 200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


async def test_the_webhook_is_retried_and_carries_no_secret(tmp_path: Path) -> None:
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    db, journal = tmp_path / "approvals.db", tmp_path / "journal.jsonl"
    command, env = hostile(journal)
    view = SqliteApprovalStore(db)
    secret = "sk-" + "z9" * 20
    try:
        approver = QueueApprover(db, notify=f"http://127.0.0.1:{http.server_port}/hook", expires_after=HANG * 2)
        async with connect(command, env=env, cwd=ROOT, name="mail") as server, anyio.create_task_group() as group:
            group.start_soon(server.toolset("drafter", approver=approver).call, "send_email",
                             {"to": "ann@example.com", "api_key": secret})
            (request,) = await until_pending(view)
            with anyio.fail_after(HANG):
                while len(_Receiver.bodies) < 2:
                    await anyio.sleep(0.02)
            await view.decide(request.id, True, "alice")
    finally:
        http.shutdown()
    first, second = _Receiver.bodies[:2]
    assert first == second  # the 503 was retried with the same body
    assert f"approval #{request.id} needed" in second["text"] and "ann@example.com" in second["text"]
    assert secret not in json.dumps(second) and second["request"]["arguments_sha256"] == request.arguments_sha256
    await view.aclose()
