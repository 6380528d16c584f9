"""``SqliteAuditLog``: records in a SQLite file (table ``tool_calls``), WAL journal, one hash chain per file."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

from .chain import FILE_CHAIN, audit_key, linked_row
from .records import AuditRecord, matches, merge
from .writer import Writer

__all__ = ["ADDED", "COLUMNS", "JSON_COLUMNS", "SqliteAuditLog"]

# Columns added since the first release, with their SQLite types; older files get them on open.
ADDED = {"worker": "TEXT", "record_id": "TEXT", "phase": "TEXT", "ref": "TEXT", "step": "TEXT", "chain": "TEXT",
         "seq": "INTEGER", "prev": "TEXT", "hash": "TEXT", "alg": "TEXT"}

COLUMNS = ("time", "agent", "server", "tool", "alias", "arguments", "decision", "reviewer", "reason", "outcome",
           "error", "duration", "call_id", *ADDED)
"""The columns of ``tool_calls`` that hold an ``AuditRecord``'s fields (the PostgreSQL log has the same)."""

JSON_COLUMNS = ("arguments", "step")
"""Columns holding JSON text (SQLite) or ``json`` (PostgreSQL)."""

_CREATE = """
CREATE TABLE IF NOT EXISTS tool_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    agent TEXT,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    alias TEXT,
    arguments TEXT NOT NULL,
    decision TEXT,
    reviewer TEXT,
    reason TEXT,
    outcome TEXT NOT NULL,
    error TEXT,
    duration REAL NOT NULL,
    call_id TEXT,
    worker TEXT,
    record_id TEXT,
    phase TEXT,
    ref TEXT,
    step TEXT,
    chain TEXT,
    seq INTEGER,
    prev TEXT,
    hash TEXT,
    alg TEXT
)"""
_BY_TIME = "CREATE INDEX IF NOT EXISTS tool_calls_by_time ON tool_calls(time)"
# Rows written before records had ids keep a NULL id, which a UNIQUE index allows many times.
_UNIQUE_ID = "CREATE UNIQUE INDEX IF NOT EXISTS tool_calls_by_record_id ON tool_calls(record_id)"
_INSERT = f"INSERT OR IGNORE INTO tool_calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
# Seconds a writer waits for another process's lock before giving up.
_BUSY_WAIT = 15.0
# Rows between checkpoints (which flush to disk), run on the writer thread; SQLite's own
# automatic checkpoint is off, since it would run in whichever write crossed its threshold.
_CHECKPOINT_EVERY = 1000


class SqliteAuditLog:
    """Records in a SQLite file (table ``tool_calls``), WAL journal, one connection per log.

    Several processes may write the same file; SQLite serialises them (``busy_timeout``). A
    file written by an older version gains the newer columns (``ADDED``) on open.

    Each row extends the file's hash chain (``bridge.audit.chain``): the last row is read and the
    new one inserted in one ``BEGIN IMMEDIATE`` transaction, so concurrent writers keep one
    unbroken chain. ``synchronous=NORMAL``: in WAL mode a committed row survives the writing
    process being killed (only a power loss can take the last commits back), at a fraction of
    the cost of a disk flush per row.
    """

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._writer = Writer(self.write, f"audit writer {self.path.name}")
        self._unsynced = 0
        """Rows committed since the last checkpoint this log ran."""

    @property
    def location(self) -> str:
        """Where the records are, for messages."""
        return str(self.path)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Used from the writer thread and readers' threads, one at a time under self._lock.
            conn = sqlite3.connect(self.path, timeout=_BUSY_WAIT, isolation_level=None, check_same_thread=False)
            try:
                _when_free(lambda: _prepare(conn))
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    async def append(self, record: AuditRecord) -> None:
        """Insert one row, secrets masked (``AuditRecord.masked``), chained; a record already
        stored is left as it is.

        The row is written at once, on the calling thread, when nothing can make that wait: the
        database is open, this log is not writing, no other process holds the file's write lock
        (asked with a busy timeout of 0) and no checkpoint is due. Otherwise, and for every
        checkpoint, this log's writer thread does it, so the event loop never waits on a lock or
        a disk flush. Handing a row to a thread costs more than writing it (two thread wake-ups,
        each slow on an idle machine: ``benchmarks/bench_audit.py``).
        """
        record = record.masked()
        if not self._write_now(record):
            await self._writer.run(record)

    def write(self, record: AuditRecord) -> None:
        """``append`` on the calling thread (it blocks on the disk and other writers' locks)."""
        record = record.masked()
        with self._lock:
            conn = self._connection()
            self._insert(conn, record)
            if self._unsynced >= _CHECKPOINT_EVERY:
                # PASSIVE: never waits for readers; what it cannot copy yet waits for the next one.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self._unsynced = 0

    def _write_now(self, record: AuditRecord) -> bool:
        """Insert ``record`` here and now if nothing can make that wait; ``False``: nothing was written."""
        if self._conn is None or self._unsynced >= _CHECKPOINT_EVERY or not self._lock.acquire(blocking=False):
            return False
        try:
            conn = self._conn
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                self._insert(conn, record)
            except sqlite3.OperationalError as exc:
                if "database is locked" in str(exc):
                    return False  # another process is writing: the writer thread waits for it
                raise
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_WAIT * 1000)}")
        finally:
            self._lock.release()
        return True

    def _insert(self, conn: sqlite3.Connection, record: AuditRecord) -> None:
        """One row, linked to the file's chain head, in one ``BEGIN IMMEDIATE`` transaction."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = conn.execute("SELECT seq, hash FROM tool_calls ORDER BY id DESC LIMIT 1").fetchone()
            head = (int(last[0]), str(last[1])) if last is not None and last[0] is not None and last[1] else None
            row = linked_row(record, FILE_CHAIN, head, audit_key())
            for column in JSON_COLUMNS:
                if row[column] is not None:
                    row[column] = json.dumps(row[column], ensure_ascii=False, default=str)
            conn.execute(_INSERT, tuple(row[c] for c in COLUMNS))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._unsynced += 1

    def records(self, *, agent: str | None = None, tool: str | None = None,
                since: datetime | None = None) -> list[AuditRecord]:
        """One record per call (``merge``), in insertion order.

        Raises:
            sqlite3.DatabaseError: the file is not an audit database.
        """
        clauses, params = [], []
        if agent is not None:
            clauses.append("agent = ?")
            params.append(agent)
        if tool is not None:
            clauses.append("(tool = ? OR alias = ?)")
            params += [tool, tool]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        # Times are compared as datetimes: offsets in stored strings may differ.
        return [r for r in merge(self._select(where, params)) if matches(r, None, None, since)]

    def entries(self) -> list[AuditRecord]:
        """Every row as stored, in insertion order.

        Raises:
            sqlite3.DatabaseError: the file is not an audit database.
        """
        return self._select("", [])

    def _select(self, where: str, params: list[str]) -> list[AuditRecord]:
        if not self.path.exists():
            return []
        with self._lock:
            if self._conn is None and not _holds_records(self.path):
                # Reading must not turn somebody else's database into an audit log.
                raise sqlite3.DatabaseError("it has no tool_calls table: not an audit log")
            conn = self._connection()
            conn.row_factory = sqlite3.Row
            try:
                rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM tool_calls{where} ORDER BY id",
                                    params).fetchall()
            finally:
                conn.row_factory = None
        out = []
        for row in rows:
            data = dict(row)
            for column in JSON_COLUMNS:
                if data[column] is not None:
                    data[column] = json.loads(data[column])
            out.append(AuditRecord.from_json(data))
        return out

    def close(self) -> None:
        """End the writer thread once the writes handed to it are done, and close the database
        connection (a later call reopens both)."""
        self._writer.close()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs."""
        return {"type": self.kind, "path": str(self.path)}

    def __repr__(self) -> str:
        return f"SqliteAuditLog({str(self.path)!r})"


def _prepare(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    _migrate(conn)


def _when_free(step: Callable[[], None]) -> None:
    # Turning a rollback-journal file into WAL upgrades a read lock to a write lock, and SQLite
    # answers "database is locked" at once there rather than wait (waiting could deadlock), so a
    # second process opening a fresh or older file at the same moment retries until the first is done.
    deadline = time.monotonic() + _BUSY_WAIT
    pause = 0.005
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "database is locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _holds_records(path: Path) -> bool:
    """Whether the SQLite file at ``path`` has an audit table (looked at read-only)."""
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_WAIT)) as conn:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tool_calls'")
        return found.fetchone() is not None


def _current(conn: sqlite3.Connection) -> bool:
    have = {row[1] for row in conn.execute("PRAGMA table_info(tool_calls)")}
    indexed = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'tool_calls_by_record_id'"
                           ).fetchone()
    return set(ADDED) <= have and indexed is not None


def _migrate(conn: sqlite3.Connection) -> None:
    # A current file needs no write lock, so a reader with read-only access can still open it.
    if _current(conn):
        return
    # One writer at a time: two processes opening an old file must not both add a column.
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_CREATE)
        conn.execute(_BY_TIME)
        have = {row[1] for row in conn.execute("PRAGMA table_info(tool_calls)")}
        for column, kind in ADDED.items():
            if column not in have:
                conn.execute(f"ALTER TABLE tool_calls ADD COLUMN {column} {kind}")
        conn.execute(_UNIQUE_ID)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
