"""The audit trail in PostgreSQL: a real server of the session's own, several writer processes at once.

Also the parts every store shares since records name their worker and carry a unique id: the
SQLite migration of older files, and the worker name in JSONL.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import anyio
import psycopg
import pytest
from helpers import PY, ROOT, SECURED_PASSWORD, SECURED_ROLE, fixture_env

from bridge import AuthError, AutoApprove, ConfigError, ServerUnreachable, connect, open_audit_log
from bridge.audit import (
    AuditRecord,
    AuditTrail,
    JsonlAuditLog,
    PostgresAuditLog,
    SqliteAuditLog,
    current_worker,
    query,
)
from bridge.audit.sqlite import ADDED
from bridge.cli import main
from bridge.secrets import evidence
from fixtures.postgres import TempPostgres

pytestmark = pytest.mark.anyio





@pytest.fixture
def pg_url(postgres: TempPostgres) -> str:
    """A fresh, empty database: no table yet."""
    return postgres.new_database("audit")


def secured_url(server: TempPostgres, password: str = SECURED_PASSWORD) -> str:
    return server.url("secured_audit", user=SECURED_ROLE, password=quote(password, safe=""))


def record(**overrides: object) -> AuditRecord:
    base: dict[str, object] = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                               "agent": "a", "server": "s", "tool": "t", "arguments": {}, "outcome": "ok"}
    base.update(overrides)
    return AuditRecord(**base)  # type: ignore[arg-type]


def as_written(records: list[AuditRecord]) -> list[AuditRecord]:
    """The records without what the store's hash chain added to them."""
    return [dataclasses.replace(r, chain=None, seq=None, prev=None, hash=None, alg=None, chain_status=None)
            for r in records]


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


# -- opening ---------------------------------------------------------------------------------------


def test_importing_the_audit_package_loads_no_psycopg() -> None:
    code = "import sys, bridge, bridge.audit, bridge.cli; print('psycopg' in sys.modules)"
    done = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **fixture_env()})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_without_psycopg_opening_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    with pytest.raises(ConfigError) as caught:
        open_audit_log("postgresql://u@127.0.0.1:1/db")
    assert "pip install 'autogen-mcp-bridge[postgres]'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_urls_choose_postgres(pg_url: str) -> None:
    assert isinstance(open_audit_log(pg_url), PostgresAuditLog)
    assert isinstance(open_audit_log(pg_url.replace("postgresql://", "postgres://")), PostgresAuditLog)
    with pytest.raises(ConfigError, match="not a PostgreSQL URL"):
        PostgresAuditLog("mysql://u:hunter2@h/db")


# -- the same records and queries as SQLite --------------------------------------------------------


async def test_same_records_and_queries_as_sqlite(pg_url: str, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    written = [
        record(agent="triage", tool="check_inbox", time=(now - timedelta(hours=3)).isoformat(timespec="milliseconds"),
               arguments={"z": 1, "a": [1, "two", None], "nested": {"k": "v"}}, worker="host-a:1"),
        record(agent="drafter", tool="reply_email", alias="mail_reply_email", decision="approved",
               reviewer="console:alice", reason="fine", duration=0.25, call_id="c1", worker="host-b:2",
               time=now.isoformat()),  # microseconds, as other writers may use
        record(agent="triage", tool="get_thread", outcome="tool_error", error="nul \x00 in text", worker="host-a:1",
               time=(now + timedelta(seconds=1)).isoformat(timespec="seconds")),
    ]
    pg, lite = PostgresAuditLog(pg_url), SqliteAuditLog(tmp_path / "audit.db")
    for log in (pg, lite):
        for r in written:
            await log.append(r)
    try:
        lite_records, pg_records = lite.records(), pg.records()
        assert [r.record_id for r in pg_records] == [r.record_id for r in written]
        # Every field survives, times to the precision they were written with; text cannot hold NUL.
        assert as_written(pg_records[:2]) == as_written(lite_records[:2]) == written[:2]
        assert pg_records[2].error == lite_records[2].error == "nul \ufffd in text"
        for kwargs in ({"agent": "triage"}, {"tool": "mail_reply_email"}, {"since": now - timedelta(hours=1)},
                       {"agent": "triage", "since": now - timedelta(hours=4)}, {"tool": "nothing"}):
            assert [r.record_id for r in pg.records(**kwargs)] == [r.record_id for r in lite.records(**kwargs)], kwargs
        assert [r.tool for r in query(pg_url, since="1h")] == ["reply_email", "get_thread"]
        # The same column names as the SQLite table.
        pg_columns = [c for (c,) in rows(pg_url, "SELECT column_name FROM information_schema.columns "
                                                 "WHERE table_name = 'tool_calls' ORDER BY ordinal_position")]
        with sqlite3.connect(tmp_path / "audit.db") as db:
            lite_columns = [row[1] for row in db.execute("PRAGMA table_info(tool_calls)")]
        assert pg_columns == lite_columns
    finally:
        pg.close()
        lite.close()


async def test_reading_before_anything_was_written_finds_nothing(pg_url: str) -> None:
    assert query(pg_url) == []
    assert rows(pg_url, "SELECT to_regclass('tool_calls') IS NULL") == [(True,)]


def test_many_first_writers_at_once_create_the_table_once(pg_url: str) -> None:
    # Each thread has a log (and so a connection) of its own; all write their first record at once.
    logs = [PostgresAuditLog(pg_url) for _ in range(8)]
    start = threading.Barrier(len(logs))
    failures: list[BaseException] = []

    def first_write(log: PostgresAuditLog, n: int) -> None:
        start.wait()
        try:
            log._write(record(tool=f"t{n}"))
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=first_write, args=(log, n)) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for log in logs:
        log.close()
    assert not failures
    assert sorted(r.tool for r in query(pg_url)) == sorted(f"t{n}" for n in range(8))


async def test_a_repeated_write_stores_nothing_new(pg_url: str, postgres: TempPostgres) -> None:
    log = PostgresAuditLog(pg_url)
    once = record(tool="send_email")
    await log.append(once)
    await log.append(once)
    # The server drops every connection of the log: the next write reconnects and still lands once.
    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'mcp-bridge audit' AND pid <> pg_backend_pid()")
    after = record(tool="check_inbox")
    await log.append(after)
    await log.append(once)
    log.close()
    assert [r.record_id for r in query(pg_url)] == [once.record_id, after.record_id]


# -- several writer processes ----------------------------------------------------------------------

WRITER = textwrap.dedent('''
    import asyncio, json, os, sys
    from autogen_core import CancellationToken
    from bridge import connect

    async def main(audit_url, zoo_url, calls, parallel):
        worker = os.environ["MCP_BRIDGE_WORKER"]
        async with connect(zoo_url, name="zoo") as zoo:
            tools = {t.mcp_name: t for t in await zoo.tools_for(
                f"agent-{worker}", include=["stats", "echo_types"], approval=False, audit=audit_url)}
            gate = asyncio.Semaphore(parallel)

            async def one(n):
                async with gate:
                    if n % 2:
                        await tools["stats"].run_json({"numbers": [n, 1]}, CancellationToken(), call_id=f"{worker}/{n}")
                    else:
                        await tools["echo_types"].run_json({"count": n, "name": worker}, CancellationToken(),
                                                           call_id=f"{worker}/{n}")

            await asyncio.gather(*(one(n) for n in range(calls)))
        print(json.dumps({"worker": worker, "calls": calls}))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
''')
PROCESSES, CALLS = 4, 200


@pytest.fixture(scope="module")
def busy_trail(postgres: TempPostgres, zoo_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database four processes filled at once through the real AuditTrail, 200 real MCP calls each.

    The database starts empty, so the processes also race to create the table.
    """
    url = postgres.new_database("audit")
    script = tmp_path_factory.mktemp("writers") / "writer.py"
    script.write_text(WRITER)
    procs = [subprocess.Popen([PY, str(script), url, zoo_url, str(CALLS), "25"], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, **fixture_env(), "MCP_BRIDGE_WORKER": f"w{i}"})
             for i in range(PROCESSES)]
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err[-3000:]
            assert json.loads(out.strip().splitlines()[-1])["calls"] == CALLS
            assert "could not write audit record" not in err, err[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return url


@pytest.mark.timeout(400)  # filling the table takes 4 processes x 200 calls on 2 shared cores
def test_concurrent_processes_lose_and_duplicate_nothing(busy_trail: str) -> None:
    records = query(busy_trail)
    assert len(records) == PROCESSES * CALLS
    assert len({r.record_id for r in records}) == len(records)
    # Two rows per call: written before it was sent, and its outcome.
    assert rows(busy_trail, "SELECT count(*), count(DISTINCT record_id) FROM tool_calls") == [(1600, 1600)]
    # Each call once, by the right worker and agent, of the tool the writer chose for it.
    seen = Counter(r.call_id for r in records)
    assert set(seen.values()) == {1}
    assert set(seen) == {f"w{i}/{n}" for i in range(PROCESSES) for n in range(CALLS)}
    for r in records:
        worker, n = r.call_id.split("/")  # type: ignore[union-attr]
        assert (r.worker, r.agent, r.server, r.outcome) == (worker, f"agent-{worker}", "zoo", "ok")
        assert r.tool == ("stats" if int(n) % 2 else "echo_types")
        assert r.arguments == ({"numbers": [int(n), 1]} if int(n) % 2 else {"count": int(n), "name": worker})
        assert r.decision is None and r.duration > 0
    assert Counter(r.worker for r in records) == {f"w{i}": CALLS for i in range(PROCESSES)}


def test_cli_prints_the_postgres_trail(busy_trail: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", busy_trail, "--agent", "agent-w2", "--tool", "stats", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown) == CALLS // 2
    assert {(r["worker"], r["agent"], r["tool"]) for r in shown} == {("w2", "agent-w2", "stats")}
    assert main(["audit", busy_trail, "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert f"{PROCESSES * CALLS} calls" in out and "server zoo" in out
    assert "worker" in out and all(f"w{i}" in out for i in range(PROCESSES))  # several workers: a column


# -- secrets ---------------------------------------------------------------------------------------


async def test_arguments_are_redacted_in_the_table(pg_url: str, zoo_url: str) -> None:
    async with connect(zoo_url, name="zoo") as zoo:
        (tool,) = await zoo.tools_for("keeper", include=["open_object"], approver=AutoApprove("ci"), audit=pg_url)
        await tool.run_json({"api_key": "sk-secret-value-123", "note": "hi",
                             "auth": {"Authorization": "Bearer t0ken-abcdef"}}, _token())
    (only,) = query(pg_url)
    assert only.arguments == {"api_key": evidence("sk-secret-value-123"), "note": "hi",
                              "auth": {"Authorization": evidence("Bearer t0ken-abcdef")}}
    dumped = json.dumps(rows(pg_url, "SELECT * FROM tool_calls"), default=str)
    assert "sk-secret-value-123" not in dumped and "t0ken-abcdef" not in dumped


def _token() -> object:
    from autogen_core import CancellationToken

    return CancellationToken()


def assert_hidden(text: str, where: str) -> None:
    for spelling in (SECURED_PASSWORD, quote(SECURED_PASSWORD, safe="")):
        assert spelling not in text, f"the URL password appears in {where}: {text}"


async def test_the_url_password_is_never_shown(postgres: TempPostgres, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    url = secured_url(postgres)
    log = PostgresAuditLog(url)
    await log.append(record(agent="secure", tool="check_inbox"))
    assert [r.agent for r in log.records()] == ["secure"]  # the password works
    assert_hidden(repr(log), "repr")
    assert_hidden(log.location, "location")
    assert "***" in log.location
    trail = AuditTrail(log)
    config = trail.to_config()
    assert_hidden(json.dumps(config), "to_config")
    assert config["log"]["url"] == url.replace(quote(SECURED_PASSWORD, safe=""), "${MCP_BRIDGE_AUDIT_PASSWORD}")
    assert_hidden(repr(trail), "the trail's repr")
    log.close()

    # Loading needs the variable, and says which one; with it set, the same database.
    monkeypatch.delenv("MCP_BRIDGE_AUDIT_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="MCP_BRIDGE_AUDIT_PASSWORD"):
        AuditTrail.from_config(config)
    monkeypatch.setenv("MCP_BRIDGE_AUDIT_PASSWORD", quote(SECURED_PASSWORD, safe=""))
    loaded = AuditTrail.from_config(config)
    assert [r.agent for r in loaded.log.records()] == ["secure"]
    assert loaded.to_config() == config  # a reference given stays that reference
    loaded.log.close()  # type: ignore[attr-defined]

    # A wrong password: an AuthError naming the database, hiding both passwords.
    wrong = secured_url(postgres, "not-the-Pa55word")
    with pytest.raises(AuthError) as refused:
        await PostgresAuditLog(wrong).append(record())
    assert "password authentication failed" in str(refused.value) and "\n" not in str(refused.value)
    assert "not-the-Pa55word" not in str(refused.value)
    # Nobody listening: unreachable, after the retries.
    closed = f"postgresql://{SECURED_ROLE}:{quote(SECURED_PASSWORD, safe='')}@127.0.0.1:1/db"
    with pytest.raises(ServerUnreachable) as unreachable:
        PostgresAuditLog(closed, connect_timeout=2).records()
    assert_hidden(str(unreachable.value), "the unreachable error")

    # Through the trail, a failed write is logged (and the call's result kept), never the password.
    caplog.set_level(logging.DEBUG, logger="bridge")
    failing = AuditTrail(PostgresAuditLog(closed, connect_timeout=2))
    await failing._write(record(tool="lost"))
    assert "could not write audit record" in caplog.text
    assert_hidden(caplog.text, "the log")



def test_the_cli_never_shows_the_url_password(postgres: TempPostgres, capsys: pytest.CaptureFixture[str]) -> None:
    url = secured_url(postgres)
    log = PostgresAuditLog(url)
    anyio.run(log.append, record(agent="cli-check", tool="check_inbox"))
    log.close()
    # Exit 0 with the right password, 3 with a wrong one, 4 with no server; never the password.
    assert main(["audit", url, "--agent", "cli-check"]) == 0
    out, err = capsys.readouterr()
    assert "cli-check" in out and "check_inbox" in out
    assert_hidden(out + err, "CLI output")
    wrong = secured_url(postgres, SECURED_PASSWORD[::-1])
    assert main(["audit", wrong]) == 3
    out, err = capsys.readouterr()
    assert "password authentication failed" in err and SECURED_PASSWORD[::-1] not in err + out
    closed = f"postgresql://{SECURED_ROLE}:{quote(SECURED_PASSWORD, safe='')}@127.0.0.1:1/db"
    assert main(["audit", closed, "--debug"]) == 4
    out, err = capsys.readouterr()
    assert "audit database" in err
    assert_hidden(out + err, "CLI errors with --debug")


# -- what every store shares ------------------------------------------------------------------------

OLD_SQLITE_SCHEMA = """
CREATE TABLE tool_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, agent TEXT, server TEXT NOT NULL,
    tool TEXT NOT NULL, alias TEXT, arguments TEXT NOT NULL, decision TEXT, reviewer TEXT, reason TEXT,
    outcome TEXT NOT NULL, error TEXT, duration REAL NOT NULL, call_id TEXT
);
CREATE INDEX tool_calls_by_time ON tool_calls(time);
INSERT INTO tool_calls (time, agent, server, tool, arguments, outcome, duration)
    VALUES ('2025-01-01T09:00:00.000+00:00', 'old', 'mail', 'check_inbox', '{"limit": 5}', 'ok', 0.01);
"""


async def test_an_older_sqlite_file_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SQLITE_SCHEMA)
    # Two logs opening the old file at once: one migrates, the other finds it done.
    logs = [SqliteAuditLog(path), SqliteAuditLog(path)]
    new = record(agent="new", worker="w9")
    async with anyio.create_task_group() as tg:
        tg.start_soon(logs[0].append, new)
        tg.start_soon(logs[1].append, new)
    for log in logs:
        log.close()
    old_record, new_record = query(path)
    assert (old_record.agent, old_record.worker, old_record.arguments) == ("old", None, {"limit": 5})
    assert old_record.record_id == query(path)[0].record_id  # derived from the row, stable
    assert as_written([new_record]) == [new]
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(tool_calls)")]
    assert columns[-len(ADDED):] == list(ADDED)


def write_at_once(path: Path, records: list[AuditRecord]) -> list[BaseException]:
    """Each record appended by its own log on its own thread, all starting together; what they raised."""
    start = threading.Barrier(len(records))
    failures: list[BaseException] = []

    def open_and_write(rec: AuditRecord) -> None:
        log = SqliteAuditLog(path)
        start.wait()
        try:
            anyio.run(log.append, rec)
        except BaseException as exc:
            failures.append(exc)
        finally:
            log.close()

    threads = [threading.Thread(target=open_and_write, args=(rec,)) for rec in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_logs_opening_one_older_file_at_once_all_write(tmp_path: Path) -> None:
    # The switch to WAL is where SQLite refuses rather than waits; every opener must get through it.
    for round_ in range(40):
        path = tmp_path / f"old{round_}.db"
        with sqlite3.connect(path) as db:
            db.executescript(OLD_SQLITE_SCHEMA)
        written = [record(agent=f"opener-{i}") for i in range(4)]
        assert write_at_once(path, written) == []
        assert sorted(r.agent or "" for r in query(path)) == ["old", *sorted(r.agent or "" for r in written)]


async def test_records_name_their_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zoo_url: str) -> None:
    monkeypatch.delenv("MCP_BRIDGE_WORKER", raising=False)
    assert current_worker().endswith(f":{os.getpid()}")
    monkeypatch.setenv("MCP_BRIDGE_WORKER", "blue-7")
    assert current_worker() == "blue-7"
    path = tmp_path / "audit.jsonl"
    async with connect(zoo_url, name="zoo") as zoo:
        (tool,) = await zoo.tools_for("counter", include=["stats"], approval=False, audit=path)
        await tool.run_json({"numbers": [1]}, _token())
    started, line = map(json.loads, path.read_text().splitlines())
    assert started["phase"] == "started" and line["ref"] == started["record_id"]
    assert line["worker"] == "blue-7" and len(line["record_id"]) == 32
    # A repeated line (a retried append) is one record to readers.
    log = JsonlAuditLog(path)
    await log.append(AuditRecord.from_json(line))
    assert len(path.read_text().splitlines()) == 3 and len(query(path)) == 1
