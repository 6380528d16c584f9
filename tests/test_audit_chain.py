"""Hash-chained audit records: ``verify`` names the first record edited, deleted, inserted or
reordered, on JSONL, SQLite and PostgreSQL, with and without an HMAC key; concurrent writers
(threads, processes, PostgreSQL workers) keep valid chains; logs from before chaining still read."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import subprocess
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from helpers import PY, ROOT

from bridge.audit import KEY_ENV, AuditRecord, JsonlAuditLog, PostgresAuditLog, SqliteAuditLog, query, verify_log
from bridge.audit.chain import canonical
from bridge.audit.sqlite import COLUMNS, JSON_COLUMNS
from bridge.cli import main
from bridge.secrets import known_secrets
from fixtures.postgres import TempPostgres

KEY = "chain-k3y-for-tests"


def record(n: int, **overrides: Any) -> AuditRecord:
    values: dict[str, Any] = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "agent": "a",
                              "server": "mail", "tool": "send_email", "arguments": {"to": f"user{n}@example.com"},
                              "outcome": "ok", "call_id": f"c{n}"}
    values.update(overrides)
    return AuditRecord(**values)


# -- one way to read and rewrite every store's rows, to tamper with them ----------------------------


@dataclass
class Store:
    """A store's location, and raw access to its rows as stored (to play the attacker)."""

    where: str
    read: Callable[[], list[dict[str, Any]]]
    write: Callable[[list[dict[str, Any]]], None]


def jsonl_store(path: Path) -> Store:
    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text().splitlines()]

    def write(rows: list[dict[str, Any]]) -> None:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    return Store(str(path), read, write)


def sqlite_store(path: Path) -> Store:
    def read() -> list[dict[str, Any]]:
        with sqlite3.connect(path) as db:
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute(f"SELECT {', '.join(COLUMNS)} FROM tool_calls ORDER BY id")]
        for row in rows:
            for column in JSON_COLUMNS:
                row[column] = json.loads(row[column]) if row[column] is not None else None
        return rows

    def write(rows: list[dict[str, Any]]) -> None:
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM tool_calls")
            for row in rows:
                values = [json.dumps(row[c]) if c in JSON_COLUMNS and row[c] is not None else row[c] for c in COLUMNS]
                db.execute(f"INSERT INTO tool_calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})",
                           values)

    return Store(str(path), read, write)


def postgres_store(url: str) -> Store:
    def read() -> list[dict[str, Any]]:
        with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            rows = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM tool_calls ORDER BY id").fetchall()
        return [dict(r) for r in rows]

    def write(rows: list[dict[str, Any]]) -> None:
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM tool_calls")
            for row in rows:
                values = [psycopg.types.json.Json(row[c]) if c in JSON_COLUMNS and row[c] is not None else row[c]
                          for c in COLUMNS]
                conn.execute(f"INSERT INTO tool_calls ({', '.join(COLUMNS)}) "
                             f"VALUES ({', '.join('%s' for _ in COLUMNS)})", values)

    return Store(url, read, write)


@pytest.fixture(params=["jsonl", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "jsonl":
        yield jsonl_store(tmp_path / "audit.jsonl")
    elif request.param == "sqlite":
        yield sqlite_store(tmp_path / "audit.db")
    else:
        postgres: TempPostgres = request.getfixturevalue("postgres")
        yield postgres_store(postgres.new_database("chain"))


def fill(where: str, n: int = 5) -> None:
    """``n`` records written the way the trail writes them (through the store's ``append``)."""
    log = JsonlAuditLog(where) if where.endswith(".jsonl") else SqliteAuditLog(where) if where.endswith(".db") \
        else PostgresAuditLog(where)
    try:
        for i in range(n):
            anyio.run(log.append, record(i))
    finally:
        log.close()


def broken_at(where: str) -> tuple[str, int]:
    report = verify_log(where)
    assert report.problems, f"verify found nothing wrong in {where}"
    first = report.problems[0]
    return first.kind, first.position


def forged(last: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A record an attacker appends: the last one copied, re-pointed and changed."""
    row = {**last, "record_id": "f" * 32, "seq": last["seq"] + 1, "prev": last["hash"], **changes}
    return row


def rehash(row: dict[str, Any], key: bytes | None) -> str:
    """The hash a forger computes with what they know: plain SHA-256, or an HMAC under ``key``."""
    r = AuditRecord.from_json({**row, "time": row["time"] if isinstance(row["time"], str) else row["time"].isoformat()})
    body = canonical(r)
    return hmac.new(key, body, hashlib.sha256).hexdigest() if key else hashlib.sha256(body).hexdigest()


# -- tampering is caught, and named ----------------------------------------------------------------


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "hmac"])
def test_verify_names_the_first_tampered_record(store: Store, keyed: bool, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    if keyed:
        monkeypatch.setenv(KEY_ENV, KEY)
    fill(store.where)
    clean = store.read()
    assert [r["seq"] for r in clean] == [1, 2, 3, 4, 5]
    assert {r["alg"] for r in clean} == {"hmac-sha256" if keyed else "sha256"}
    report = verify_log(store.where)
    assert (report.intact, report.records, report.chains, report.unchecked) == (True, 5, 1, 0)
    assert main(["audit", "verify", store.where]) == 0
    assert "intact: 5 records in 1 chain" in capsys.readouterr().out

    edited = [dict(r) for r in clean]
    edited[1]["arguments"] = {"to": "attacker@evil.example"}
    deleted = clean[:1] + clean[2:]
    swapped = [clean[0], clean[2], clean[1], *clean[3:]]
    naive = [*clean, forged(clean[-1], arguments={"to": "attacker@evil.example"})]
    cases = {"edited": (edited, ("edited", 2)), "deleted": (deleted, ("deleted", 2)),
             "swapped": (swapped, ("reordered", 2)), "appended": (naive, ("edited", 6))}
    if keyed:
        # A forger without the key can only hash in plain SHA-256, or under a key of their own.
        plain = forged(clean[-1], arguments={"to": "x@evil.example"}, alg="sha256")
        plain["hash"] = rehash(plain, None)
        guessed = forged(clean[-1], arguments={"to": "x@evil.example"})
        guessed["hash"] = rehash(guessed, b"not-the-key")
        cases["rehashed"] = ([*clean, plain], ("inserted", 6))
        cases["wrong key"] = ([*clean, guessed], ("edited", 6))
    else:
        unchained = {**clean[-1], "record_id": "e" * 32, "seq": None, "prev": None, "hash": None, "alg": None,
                     "chain": None}
        cases["unchained insert"] = ([*clean[:3], unchained, *clean[3:]], ("inserted", 4))
    for name, (rows, expected) in cases.items():
        store.write(rows)
        assert broken_at(store.where) == expected, name
        assert main(["audit", "verify", store.where]) == 6, name
        err = capsys.readouterr().err
        assert f"the first at record {expected[1]} " in err and f": {expected[0]}: " in err, (name, err)
    store.write(clean)
    assert verify_log(store.where).intact


def test_a_keyed_log_is_not_called_intact_without_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv(KEY_ENV, KEY)
    fill(str(path), 3)
    monkeypatch.delenv(KEY_ENV)
    report = verify_log(str(path))
    assert (report.intact, report.unchecked) == (True, 3)
    assert main(["audit", "verify", str(path)]) == 6
    assert f"3 records are keyed (HMAC) and could not be checked; set {KEY_ENV}" in capsys.readouterr().err
    # Links are still checked without the key.
    rows = jsonl_store(path).read()
    jsonl_store(path).write([rows[0], rows[2]])
    assert broken_at(str(path)) == ("deleted", 2)


def test_lines_that_are_not_records_are_never_called_intact(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    # Nothing but lines that are not records (not JSON, JSON but not an object): not an intact trail.
    path.write_text('{"agent": "a", "tool"\n[1, 2]\n"text"\n')
    assert main(["audit", "verify", str(path)]) == 6
    captured = capsys.readouterr()
    assert "intact" not in captured.out and "3 unreadable lines skipped (1, 2, 3)" in captured.out
    assert "3 lines could not be read as audit records (first: line 1)" in captured.err
    assert main(["audit", str(path)]) == 0  # shown without a traceback: nothing readable to list
    assert "no audit records match" in capsys.readouterr().err
    # Records around a foreign line still verify as chains; the line is named, never hidden.
    path.unlink()
    fill(str(path), 2)
    rows = path.read_text().splitlines()
    path.write_text("\n".join([rows[0], "not a record", rows[1]]) + "\n")
    report = verify_log(str(path))
    assert (report.intact, report.records, report.unreadable) == (True, 2, [2])
    assert main(["audit", "verify", "--json", str(path)]) == 6
    assert json.loads(capsys.readouterr().out)["unreadable"] == [2]


def test_reading_a_file_that_is_no_audit_log_names_it_and_leaves_it_alone(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "mail.db"  # somebody else's database
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE emails (id)")
    conn.close()
    before = other.read_bytes()
    for argv in (["audit", str(other)], ["audit", "verify", str(other)]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert "mail.db: not a readable audit database (it has no tool_calls table" in err and err.count("\n") == 1
    assert other.read_bytes() == before and not Path(f"{other}-wal").exists()
    assert main(["audit", str(tmp_path)]) == 1
    assert f"{tmp_path} is a folder: give the audit log file in it" in capsys.readouterr().err


def test_the_key_is_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv(KEY_ENV, KEY)
    fill(str(path), 1)
    assert KEY not in path.read_text()
    assert known_secrets(f"key is {KEY}") == "key is ***"


def test_a_log_from_before_chaining_reads_and_is_reported_unchained(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    old = {"time": "2025-01-01T00:00:00+00:00", "agent": "a", "server": "s", "tool": "t", "arguments": {},
           "outcome": "ok", "duration": 0.1}
    path.write_text(json.dumps(old) + "\n")
    assert main(["audit", "verify", str(path)]) == 0
    assert "1 unchained" in capsys.readouterr().out
    fill(str(path), 2)  # a newer writer goes on: its chain starts after the old record
    report = verify_log(str(path))
    assert (report.intact, report.unchained, report.records) == (True, 1, 3)
    assert [r.chain_status for r in query(path)] == ["unchained", "ok", "ok"]
    assert main(["audit", "--json", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["chain_status"] for r in shown] == ["unchained", "ok", "ok"]


# -- concurrent writers keep one valid chain per file, one per writer on PostgreSQL ------------------

WRITER = textwrap.dedent("""
    import sys
    import anyio
    from datetime import datetime, timezone
    from bridge.audit import AuditRecord, open_audit_log

    where, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

    async def main():
        log = open_audit_log(where)
        try:
            async with anyio.create_task_group() as tg:
                for n in range(count):
                    tg.start_soon(log.append, AuditRecord(time=datetime.now(timezone.utc).isoformat(), agent=name,
                                                          server="s", tool="t", arguments={"n": n}, outcome="ok"))
        finally:
            log.close()

    anyio.run(main)
""")


@pytest.mark.parametrize("kind", ["jsonl", "sqlite", "postgres"])
def test_concurrent_threads_and_processes_keep_valid_chains(kind: str, tmp_path: Path,
                                                            request: pytest.FixtureRequest) -> None:
    if kind == "postgres":
        where = request.getfixturevalue("postgres").new_database("writers")
    else:
        where = str(tmp_path / ("audit.jsonl" if kind == "jsonl" else "audit.db"))
    procs = [subprocess.Popen([PY, "-c", WRITER, where, f"proc{i}", "40"], cwd=ROOT, stderr=subprocess.PIPE,
                              text=True) for i in range(3)]

    def threads() -> None:
        log = JsonlAuditLog(where) if kind == "jsonl" else SqliteAuditLog(where) if kind == "sqlite" \
            else PostgresAuditLog(where)
        try:
            for n in range(20):
                anyio.run(log.append, record(n, agent=threading.current_thread().name))
        finally:
            log.close()

    workers = [threading.Thread(target=threads, name=f"thread{i}") for i in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    report = verify_log(where)
    assert report.intact, [str(p) for p in report.problems]
    assert report.records == 3 * 40 + 3 * 20
    # A file is one chain; on PostgreSQL each writer (3 processes, 3 thread-owned logs) has its own.
    assert report.chains == (6 if kind == "postgres" else 1)
