"""How records reach a store: masked once by the trail and never again, yet masked by every store
whatever it is given; written on one writer thread per store, from any event loop, until ``close()``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.audit import AuditRecord, AuditTrail, JsonlAuditLog, SqliteAuditLog, verify_log
from bridge.connection import ToolCall, run_chain
from bridge.decisions import Decision
from bridge.results import CallResult
from bridge.secrets import known_secrets

pytestmark = pytest.mark.anyio

SECRET = "pw-Zq8rT4vX9nM2kL7w"
RAW_ARGUMENTS = {"to": "ana@example.com", "password": "hunter2-hunter2", "note": f"use {SECRET} now\x00",
                 "auth": {"token": "t0ken-value"}, "key": "sk-abcdefghijklmnopqrstuvwxyz0123456789"}
RAW_REASON = f"fine, the key is {SECRET}"
RAW_ERROR = f"server said {SECRET}\x00" + "x" * 3000

Store = Callable[[Path], JsonlAuditLog | SqliteAuditLog]
STORES: dict[str, Store] = {"jsonl": lambda d: JsonlAuditLog(d / "a.jsonl"),
                            "sqlite": lambda d: SqliteAuditLog(d / "a.db")}


class Kept:
    """A store that keeps what the trail hands it, then passes it on."""

    def __init__(self, log: JsonlAuditLog | SqliteAuditLog) -> None:
        self.log = log
        self.handed: list[AuditRecord] = []

    async def append(self, record: AuditRecord) -> None:
        self.handed.append(record)
        await self.log.append(record)

    def records(self, **filters: Any) -> list[AuditRecord]:
        return self.log.records(**filters)


def stored(log: JsonlAuditLog | SqliteAuditLog) -> list[dict[str, Any]]:
    return [r.to_json() for r in log.entries()]


@pytest.mark.parametrize("kind", list(STORES))
async def test_records_masked_once_by_the_trail_are_stored_as_records_masked_by_the_store(
        kind: str, tmp_path: Path) -> None:
    known_secrets.add([SECRET])
    (tmp_path / "fast").mkdir()
    (tmp_path / "slow").mkdir()
    fast, slow = STORES[kind](tmp_path / "fast"), STORES[kind](tmp_path / "slow")
    kept = Kept(fast)
    call = ToolCall(server="mail", tool="send", mcp_name="send_email", arguments=RAW_ARGUMENTS, agent="a",
                    call_id="c1", approval=Decision(True, "console:alice", RAW_REASON))

    async def failing(call: ToolCall) -> CallResult:
        return CallResult.error(RAW_ERROR, server="mail", tool="send_email")

    try:
        await run_chain((AuditTrail(kept),), failing)(call)
        await AuditTrail(kept).record_refusal(call, f"refused: {SECRET}", RAW_ERROR)
        # The fast path: every record arrived masked, so no store masked it again.
        assert [r.is_masked() for r in kept.handed] == [True, True, True]
        # The slow path: the same records, unmasked, are masked by the store itself.
        for r in kept.handed:
            raw = replace(r, arguments=RAW_ARGUMENTS, error=RAW_ERROR if r.error else None,
                          reason=(RAW_REASON if r.outcome != "refused" else f"refused: {SECRET}") if r.reason else None)
            assert not raw.is_masked() and raw.arguments["password"] == "hunter2-hunter2"
            await slow.append(raw)
        rows = stored(fast)
        assert rows == stored(slow)  # field for field, hashes included
        if kind == "jsonl":
            assert (tmp_path / "fast" / "a.jsonl").read_bytes() == (tmp_path / "slow" / "a.jsonl").read_bytes()
        text = repr(rows)
        for secret in (SECRET, "hunter2-hunter2", "t0ken-value", "sk-abcdefghij", "\x00"):
            assert secret not in text
        assert [r["outcome"] for r in rows] == ["started", "tool_error", "refused"]
        assert len(rows[1]["error"]) == 2000 and rows[0]["reason"] == "fine, the key is ***"
    finally:
        fast.close()
        slow.close()
        known_secrets.remove([SECRET])


def test_a_masked_record_changed_afterwards_is_masked_again(tmp_path: Path) -> None:
    masked = AuditRecord(time=datetime.now(timezone.utc).isoformat(), agent="a", server="s", tool="t",
                         arguments={"password": "hunter2-hunter2"}, outcome="ok").masked()
    assert masked.masked() is masked and masked.amend(outcome="ok").is_masked()
    # A record made from a masked one by any other means than ``amend`` is not taken as masked.
    changed = replace(masked, arguments={"password": "changed-pass"})
    assert not changed.is_masked()
    log = SqliteAuditLog(tmp_path / "a.db")
    try:
        log.write(changed)
        assert "changed-pass" not in repr(log.entries())
    finally:
        log.close()


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("audit writer")]


@pytest.mark.parametrize("kind", list(STORES))
def test_one_store_takes_writes_from_many_event_loops_and_close_ends_its_thread(kind: str, tmp_path: Path) -> None:
    log = STORES[kind](tmp_path)
    before = writer_threads()

    def loop_of_writes(n: int) -> None:
        async def main() -> None:
            for i in range(25):
                await log.append(AuditRecord(time=datetime.now(timezone.utc).isoformat(), agent=f"loop{n}",
                                             server="s", tool="t", arguments={"i": i}, outcome="ok"))
        anyio.run(main)

    threads = [threading.Thread(target=loop_of_writes, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(writer_threads()) == len(before) + 1
    log.close()
    assert writer_threads() == before
    # Used again after close, it starts a thread again; a cancelled caller's write still happens.

    async def cancelled_write() -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await log.append(AuditRecord(time=datetime.now(timezone.utc).isoformat(), agent="late", server="s",
                                         tool="t", arguments={}, outcome="ok"))

    anyio.run(cancelled_write)
    log.close()
    assert writer_threads() == before
    report = verify_log(str(log.path))
    assert report.intact and report.records == 4 * 25 + 1
    assert [r.agent for r in log.entries()].count("late") == 1


async def test_a_failed_write_raises_in_the_caller(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    log = SqliteAuditLog(tmp_path / "file" / "a.db")  # its directory is a file
    try:
        with pytest.raises(OSError):
            await log.append(AuditRecord(time=datetime.now(timezone.utc).isoformat(), agent="a", server="s",
                                         tool="t", arguments={}, outcome="ok"))
    finally:
        log.close()


def test_under_another_async_library_writes_still_leave_the_loop(tmp_path: Path) -> None:
    log = SqliteAuditLog(tmp_path / "a.db")
    before = writer_threads()

    async def main() -> None:
        await log.append(AuditRecord(time=datetime.now(timezone.utc).isoformat(), agent="trio", server="s",
                                     tool="t", arguments={}, outcome="ok"))

    try:
        anyio.run(main, backend="trio")
        assert [r.agent for r in log.entries()] == ["trio"] and writer_threads() == before
    finally:
        log.close()


async def test_rows_written_at_once_and_rows_left_to_the_writer_thread_are_the_same(tmp_path: Path) -> None:
    # SQLite rows are written on the caller's thread when nothing can make that wait, else on the
    # writer thread (another process holds the write lock): the rows and the chain must not differ.
    known_secrets.add([SECRET])
    records = [AuditRecord(time=datetime.now(timezone.utc).isoformat(), agent="a", server="s", tool="t",
                           arguments={"i": i, "note": f"use {SECRET}", "password": "hunter2-hunter2"},
                           outcome="ok", record_id=f"{i:032x}") for i in range(5)]
    at_once, waited = SqliteAuditLog(tmp_path / "now.db"), SqliteAuditLog(tmp_path / "waited.db")
    try:
        for log in (at_once, waited):
            await log.append(records[0])  # opens the database, on the writer thread
            log._writer.close()
        before = writer_threads()
        for r in records[1:]:
            await at_once.append(r)
        assert writer_threads() == before  # written here: no writer thread was needed

        import sqlite3
        holder = sqlite3.connect(tmp_path / "waited.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # as another process writing the file
        done: list[int] = []

        async def append_all() -> None:
            for r in records[1:]:
                await waited.append(r)
                done.append(1)

        async with anyio.create_task_group() as tg:
            tg.start_soon(append_all)
            await anyio.sleep(0.3)
            # The event loop ran on while the write waited for the lock, on the writer thread.
            assert done == [] and len(writer_threads()) == len(before) + 1
            holder.execute("COMMIT")
        holder.close()
        assert len(done) == 4
        assert stored(at_once) == stored(waited)  # field for field, hashes included
        assert SECRET not in repr(stored(at_once))
        for log in (at_once, waited):
            report = verify_log(str(log.path))
            assert report.intact and report.records == 5
    finally:
        at_once.close()
        waited.close()
        known_secrets.remove([SECRET])


def test_the_step_is_masked_by_value_and_keeps_its_ids(tmp_path: Path) -> None:
    # A task id or tool-call id is written by a server or a model: a known secret in it is masked,
    # while an id that only looks random stays whole (it is what leads back to the step).
    known_secrets.add([SECRET])
    log = SqliteAuditLog(tmp_path / "a.db")
    try:
        step = {"framework": "autogen", "tool_call_id": "call_Q8xZr2LmN4vT7kP1sW9yB3dF",
                "task": f"task-{SECRET}"}
        log.write(AuditRecord(time=datetime.now(timezone.utc).isoformat(), agent="a", server="s", tool="t",
                              arguments={}, outcome="ok", step=step))
        (stored_step,) = [r.step for r in log.entries()]
        assert stored_step == {**step, "task": "task-***"}
        assert verify_log(str(log.path)).intact
    finally:
        log.close()
        known_secrets.remove([SECRET])
