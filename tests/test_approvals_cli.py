"""``mcp-bridge approvals``: listing, showing and deciding queued requests, as real processes.

Bad input is one line and exit 1 (an unknown or decided id, a store that cannot be opened), a
hostile argument is inert in the table, in ``show``, in ``--watch`` and at the console prompt,
and tables fit 80 columns.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import anyio

from bridge.approval import ConsoleApprover
from bridge.approvals import SqliteApprovalStore
from bridge.approvals.requests import request_for
from bridge.catalogue import Annotations
from bridge.connection import ToolCall

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_TO = "\x1b[2K\rceo@example.com\u202emoc.live@\u200b <script>alert(1)</script>"
"""Erases the row, returns the carriage, reverses the rest and hides a character."""


def run_cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge.cli", "approvals", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=60,
                          env={**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(ROOT)})


def call(to: str, agent: str = "drafter") -> ToolCall:
    return ToolCall(server="mail", tool="send_email", mcp_name="send_email", arguments={"to": to, "subject": "Q3"},
                    annotations=Annotations(destructive=True), agent=agent)


def submit(db: Path, to: str, agent: str = "drafter") -> int:
    async def go() -> int:
        store = SqliteApprovalStore(db)
        try:
            return (await store.submit(request_for(call(to, agent), expires_after=600), duplicate_window=3600)).id
        finally:
            await store.aclose()

    return anyio.run(go)


def raw_free(text: str) -> None:
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text and "\u200b" not in text


def inert(text: str) -> None:
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text and "\u200b" not in text
    # Escaped by the sanitiser (\x1b) or, inside JSON, by the JSON encoder (\u001b): either way visible.
    assert ("\\x1b" in text or "\\u001b" in text) and "\\u202e" in text


def test_unknown_and_already_decided_ids_are_one_line_errors(tmp_path: Path) -> None:
    db = tmp_path / "approvals.db"
    rid = submit(db, "ann@example.com")
    unknown = run_cli("approve", "999", "--store", str(db))
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1
    assert "no approval request #999" in unknown.stderr
    assert run_cli("deny", str(rid), "--store", str(db), "--reason", "no").returncode == 0
    again = run_cli("approve", str(rid), "--store", str(db))
    assert again.returncode == 1 and "already denied by cli:" in again.stderr and again.stderr.count("\n") == 1
    assert run_cli("approve", "--store", str(db)).returncode == 1  # no id


def test_a_store_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    missing = run_cli("list", "--store", str(tmp_path / "nope.db"))
    assert missing.returncode == 1 and "nope.db" in missing.stderr and missing.stderr.count("\n") == 1
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    broken = run_cli("list", "--store", str(garbage))
    assert broken.returncode == 1 and "garbage.db" in broken.stderr
    # Somebody else's SQLite file (here: an audit log) is named, and left exactly as it was.
    other = tmp_path / "audit.sqlite3"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE records (x)")
        conn.commit()
    before = other.read_bytes()
    foreign = run_cli("list", "--store", str(other))
    assert foreign.returncode == 1 and foreign.stderr.count("\n") == 1, foreign.stderr
    assert "audit.sqlite3 is not an approval store" in foreign.stderr
    assert other.read_bytes() == before and not Path(f"{other}-wal").exists()
    down = run_cli("list", "--store", "postgresql://bridge:hunter2-secret@127.0.0.1:1/approvals")
    assert down.returncode == 1 and "127.0.0.1:1" in down.stderr and "hunter2-secret" not in down.stderr


def test_two_reviewers_sharing_a_token_is_refused_before_serving(tmp_path: Path) -> None:
    # Otherwise a decision by alice would be recorded as bob's (the last line with that token).
    db, tokens = tmp_path / "approvals.db", tmp_path / "reviewers"
    submit(db, "ann@example.com")
    token = "shared-token-" + "4" * 20
    tokens.write_text(f"alice {token}\nbob {token}\n")
    served = run_cli("serve", "--store", str(db), "--port", "0", "--tokens", str(tokens))
    assert served.returncode == 1 and served.stderr.count("\n") == 1, served.stderr
    assert "'alice' and 'bob' share a token" in served.stderr and token not in served.stderr


def test_a_hostile_argument_is_inert_in_the_table_in_show_and_at_the_console(tmp_path: Path) -> None:
    db = tmp_path / "approvals.db"
    first = submit(db, HOSTILE_TO, agent="a\x1b[31mgent")
    second = submit(db, HOSTILE_TO, agent="reviewer")
    listed = run_cli("list", "--store", str(db))
    assert listed.returncode == 0, listed.stderr
    raw_free(listed.stdout)
    assert all(len(line) <= 80 for line in listed.stdout.splitlines()), listed.stdout
    wide = run_cli("list", "--store", str(db), columns=200)
    assert wide.returncode == 0, wide.stderr
    raw_free(wide.stdout)
    assert "\\u001b[2K\\rceo" in wide.stdout and "\\u202e" in wide.stdout
    shown = run_cli("show", str(second), "--store", str(db))
    assert shown.returncode == 0, shown.stderr
    inert(shown.stdout)
    assert f"possible duplicate of #{first}: proposed by a\\x1b[31mgent" in shown.stdout
    assert "<script>alert(1)<" in shown.stdout  # shown as text, as written (cut behind the gutter at 80)
    inert(ConsoleApprover(width=80).describe(call(HOSTILE_TO)))


def test_watch_follows_new_requests_one_line_each(tmp_path: Path) -> None:
    db = tmp_path / "approvals.db"
    submit(db, "ann@example.com")
    watch = subprocess.Popen([sys.executable, "-m", "bridge.cli", "approvals", "list", "--watch", "--store", str(db)],
                             cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert watch.stdout is not None
        assert re.match(r"#1 pending drafter mail/send_email", watch.stdout.readline())
        time.sleep(0.1)
        submit(db, HOSTILE_TO, agent="other")
        line = watch.stdout.readline()  # a hang here is caught by the subprocess timeout below
        assert line.startswith("#2 pending other mail/send_email") and line.endswith("\n")
        inert(line)
    finally:
        watch.terminate()
        watch.wait(60)
