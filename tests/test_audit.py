"""The audit trail: one record per call (ok, tool error, exception, denied), JSONL and SQLite."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest
from autogen_core import CancellationToken
from rich.console import Console

from bridge import ApprovalPolicy, CallbackApprover, ConfigError, ProtocolError, ToolError, connect, open_audit_log
from bridge.approval import Decision
from bridge.audit import AuditRecord, JsonlAuditLog, SqliteAuditLog, parse_since
from bridge.audit import query as query_audit
from bridge.audit import render_table as render_audit_table
from bridge.connection import ToolCall
from bridge.secrets import evidence

pytestmark = pytest.mark.anyio


def record(**overrides: object) -> AuditRecord:
    base: dict[str, object] = {"time": datetime.now(timezone.utc).isoformat(), "agent": "a", "server": "s",
                               "tool": "t", "arguments": {}, "outcome": "ok"}
    base.update(overrides)
    return AuditRecord(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("filename", ["audit.jsonl", "audit.db"])
async def test_every_outcome_is_recorded(zoo_url: str, tmp_path: Path, filename: str) -> None:
    path = tmp_path / filename

    def reviewer(call: ToolCall) -> Decision:
        ok = call.mcp_name != "sleep"
        return Decision(ok, "console:alice", "fine" if ok else "no naps")

    async with connect(zoo_url, name="zoo") as zoo:
        tools = {t.mcp_name: t for t in await zoo.tools_for(
            "worker", approval=ApprovalPolicy(tools={"stats": "never"}), approver=CallbackApprover(reviewer),
            audit=path)}
        await tools["stats"].run_json({"numbers": [1, 2]}, CancellationToken(), call_id="c1")
        with pytest.raises(ToolError):
            await tools["error_result"].run_json({"message": "it broke"}, CancellationToken())
        with pytest.raises(ProtocolError):
            await tools["protocol_error"].run_json({"message": "bad request"}, CancellationToken())
        with pytest.raises(ToolError, match="denied by reviewer: no naps"):
            await tools["sleep"].run_json({"seconds": 0}, CancellationToken())
        await tools["open_object"].run_json({"api_key": "sk-secret-value-123", "note": "hi",
                                             "auth": {"Authorization": "Bearer t0ken"}}, CancellationToken())

    records = query_audit(path)
    assert [(r.tool, r.outcome, r.decision) for r in records] == [
        ("stats", "ok", "not_required"),
        ("error_result", "tool_error", "approved"),
        ("protocol_error", "exception", "approved"),
        ("sleep", "denied", "denied"),
        ("open_object", "ok", "approved"),
    ]
    stats, error, exception, denied, secret = records
    assert stats.agent == "worker" and stats.server == "zoo" and stats.call_id == "c1"
    assert stats.arguments == {"numbers": [1, 2]} and stats.duration > 0 and stats.reviewer == "policy"
    assert error.error == "it broke" and error.reviewer == "console:alice"
    assert exception.error is not None and "bad request" in exception.error
    assert denied.reason == "no naps" and denied.error == "denied by reviewer: no naps"
    # Secret-named values are kept as evidence marks (length and keyed hash), never in plain.
    assert secret.arguments == {"api_key": evidence("sk-secret-value-123"), "note": "hi",
                                "auth": {"Authorization": evidence("Bearer t0ken")}}
    raw = path.read_bytes()
    assert b"sk-secret-value-123" not in raw and b"t0ken" not in raw
    assert datetime.fromisoformat(stats.time) <= datetime.fromisoformat(secret.time)


async def test_query_filters_and_format_detection(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    old = (now - timedelta(hours=3)).isoformat()
    jsonl, sqlite = JsonlAuditLog(tmp_path / "trail.log"), SqliteAuditLog(tmp_path / "trail.bin")
    for log in (jsonl, sqlite):
        await log.append(record(agent="triage", tool="check_inbox", time=old))
        await log.append(record(agent="drafter", tool="reply_email", alias="mail_reply_email"))
        await log.append(record(agent="triage", tool="get_thread"))
    sqlite.close()
    for path in (tmp_path / "trail.log", tmp_path / "trail.bin"):
        # Detected by content: neither extension says what the file is.
        assert isinstance(open_audit_log(path), SqliteAuditLog if path.suffix == ".bin" else JsonlAuditLog)
        assert [r.tool for r in query_audit(path, agent="triage")] == ["check_inbox", "get_thread"]
        assert [r.tool for r in query_audit(path, tool="mail_reply_email")] == ["reply_email"]
        assert [r.tool for r in query_audit(path, since="1h")] == ["reply_email", "get_thread"]
        assert [r.tool for r in query_audit(path, agent="triage", since=now - timedelta(hours=4))] == [
            "check_inbox", "get_thread"]
    with pytest.raises(ConfigError, match="not found"):
        query_audit(tmp_path / "missing.jsonl")


async def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    logs = [JsonlAuditLog(tmp_path / "a.jsonl"), JsonlAuditLog(tmp_path / "a.jsonl"),
            SqliteAuditLog(tmp_path / "a.db"), SqliteAuditLog(tmp_path / "a.db")]
    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(logs[i % 4].append, record(tool=f"t{i}", arguments={"blob": "x" * 5000}))
    assert sorted(r.tool for r in query_audit(tmp_path / "a.jsonl")) == sorted(f"t{i}" for i in range(40) if i % 4 < 2)
    assert sorted(r.tool for r in query_audit(tmp_path / "a.db")) == sorted(f"t{i}" for i in range(40) if i % 4 > 1)
    for line in (tmp_path / "a.jsonl").read_text().splitlines():
        json.loads(line)
    with sqlite3.connect(tmp_path / "a.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_torn_line_does_not_hide_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = JsonlAuditLog(path)
    await log.append(record(tool="first"))
    with path.open("a") as f:
        f.write('{"time": "2025-01-01T00:00:00+00:00", "agent": "x", "ser\n')
    await log.append(record(tool="last"))
    assert [r.tool for r in query_audit(path)] == ["first", "last"]


def test_parse_since() -> None:
    now = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_since("30m", now=now) == now - timedelta(minutes=30)
    assert parse_since("2d", now=now) == now - timedelta(days=2)
    assert parse_since("1.5h", now=now) == now - timedelta(hours=1.5)
    assert parse_since("2025-05-31T09:00") == datetime(2025, 5, 31, 9, 0, tzinfo=timezone.utc)
    assert parse_since("2025-05-31T09:00:00Z") == datetime(2025, 5, 31, 9, 0, tzinfo=timezone.utc)
    assert parse_since(None) is None
    with pytest.raises(ConfigError, match="duration like"):
        parse_since("yesterday")


def test_render_table_shows_plain_text_never_markup() -> None:
    records = [record(agent="[bold red]evil[/]", tool="send_email", outcome="denied", decision="denied",
                      reviewer="console:alice", error="denied by reviewer: no", arguments={"to": ["a@b.co"]}),
               record(tool="check_inbox", decision="not_required", reviewer="policy", duration=0.0123)]
    console = Console(width=200, record=True, color_system=None)
    console.print(render_audit_table(records, title="audit"))
    text = console.export_text()
    assert "[bold red]evil[/]" in text
    assert "denied by console:alice" in text and "not_required" in text and "12" in text
    assert "server s" in text  # one server: named in the title instead of a column
    assert '{"to":["a@b.co"]}' in text


def test_cli_audit_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bridge.cli import main

    path = tmp_path / "trail.db"
    log = SqliteAuditLog(path)
    anyio.run(log.append, record(agent="triage", tool="check_inbox", server="mail"))
    anyio.run(log.append, record(agent="drafter", tool="reply_email", server="mail", decision="denied",
                                 outcome="denied", reviewer="console:alice", error="denied by reviewer: tone"))
    log.close()
    assert main(["audit", str(path), "--agent", "drafter", "--json"]) == 0
    (only,) = json.loads(capsys.readouterr().out)
    assert (only["tool"], only["outcome"], only["reviewer"]) == ("reply_email", "denied", "console:alice")
    assert main(["audit", str(path), "--since", "1h", "--tool", "check_inbox"]) == 0
    out = capsys.readouterr().out
    assert "check_inbox" in out and "reply_email" not in out and "1 call" in out
    assert main(["audit", str(path), "--since", "last tuesday"]) == 1
    assert "duration like" in capsys.readouterr().err
    assert main(["audit", str(tmp_path / "nope.jsonl")]) == 1
    assert "audit file not found" in capsys.readouterr().err
