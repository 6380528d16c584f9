"""``SqliteApprovalStore``: the queue in a SQLite file (table ``approval_requests``), WAL journal.

Several processes on one machine share the file (agents waiting, a reviewer's CLI, the web
page); SQLite serialises their writes (``busy_timeout``), and every change is one statement,
so none is lost or applied twice. A waiting call learns of its decision by polling, a few
times a second, with one query for every call of the process (``Waiters``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import anyio

from ..audit.sqlite import _when_free
from .requests import ApprovalRequest, Status
from .sql import EXPIRED_REASON, SCHEMA, SQLITE, from_row, to_row
from .store import AlreadyDecided, StoreUnavailable, UnknownRequest, Waiters

__all__ = ["POLL_INTERVAL", "SqliteApprovalStore"]

POLL_INTERVAL = 0.2
"""Seconds between two looks for decisions while calls wait."""

_BUSY_WAIT = 15.0
_T = TypeVar("_T")


class SqliteApprovalStore:
    """The approval queue in a SQLite file, created on first use.

    Args:
        path: the file (its folder is created when missing).
        poll_interval: seconds between two looks for decisions while calls wait.
        create: make the file when it is missing (a reviewer's tools pass False: a mistyped
            name is an error, not a new empty queue).
    """

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, poll_interval: float = POLL_INTERVAL,
                 create: bool = True) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._create = create
        self.waiters = Waiters(self.changed, poll_interval)
        self._poll = poll_interval
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    # -- the connection --------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self._create and not self.path.is_file():
                raise StoreUnavailable(f"no approval store at {self.location} (the file does not exist; "
                                       "give the file the agents' QueueApprover uses)")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=_BUSY_WAIT, isolation_level=None, check_same_thread=False)
            except (OSError, sqlite3.Error) as e:
                raise StoreUnavailable(f"cannot open the approval store {self.location}: {e}") from None
            try:
                if not self._create and not _is_store(conn):
                    conn.close()
                    # Nothing is written to a file that is not a queue: it may be anybody's database.
                    raise StoreUnavailable(f"{self.location} is not an approval store (a SQLite file without its "
                                           "approval_requests table); give the file the agents' QueueApprover uses")
                _when_free(lambda: _prepare(conn))
            except sqlite3.Error as e:
                conn.close()
                raise StoreUnavailable(f"cannot open the approval store {self.location}: {e} "
                                       "(is it an approval store, and writable?)") from None
            self._conn = conn
        return self._conn

    def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            conn = self._connection()
            try:
                return work(conn)
            except sqlite3.Error as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreUnavailable(f"approval store {self.location}: {e}") from None

    async def _do(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await anyio.to_thread.run_sync(self._run, work)

    # -- the ApprovalStore protocol --------------------------------------------------------

    async def submit(self, request: ApprovalRequest, *, duplicate_window: float) -> ApprovalRequest:
        def work(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            (new_id,) = conn.execute(SQLITE.insert, to_row(request)).fetchone()
            twin = conn.execute(SQLITE.duplicate, (request.duplicate_key, new_id, request.created - duplicate_window,
                                                   time.time())).fetchone()
            if twin is not None:
                conn.execute(SQLITE.set_duplicate, (twin[0], new_id))
            conn.execute("COMMIT")
            return int(new_id)

        return await self.get(await self._do(work))

    async def get(self, request_id: int) -> ApprovalRequest:
        def work(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            _expire(conn)
            row: tuple[Any, ...] | None = conn.execute(SQLITE.get, (request_id,)).fetchone()
            return row

        row = await self._do(work)
        if row is None:
            raise UnknownRequest(f"no approval request #{request_id} in {self.location}")
        return from_row(row)

    async def list(self, *, statuses: Collection[Status] = (), after: int = 0, limit: int = 100,
                   oldest_first: bool = False) -> list[ApprovalRequest]:
        def work(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            _expire(conn)
            return conn.execute(SQLITE.list(statuses, oldest_first), (after, *statuses, limit)).fetchall()

        return [from_row(row) for row in await self._do(work)]

    async def decide(self, request_id: int, approved: bool, reviewer: str, reason: str = "") -> ApprovalRequest:
        status = "approved" if approved else "denied"
        now = time.time()

        def work(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(
                SQLITE.decide, (status, reviewer, reason, now, request_id, now)).fetchone()
            return row

        row = await self._do(work)
        if row is None:
            raise not_decided(await self.get(request_id))
        return from_row(row)

    async def settle(self, request_id: int, status: Status, reason: str) -> ApprovalRequest:
        await self._do(lambda conn: conn.execute(SQLITE.settle, (status, reason, time.time(), request_id)).fetchall())
        return await self.get(request_id)

    async def consume(self, request_id: int) -> bool:
        return await self._do(lambda conn: conn.execute(SQLITE.consume, (time.time(), request_id)).fetchone()
                              is not None)

    async def claim(self, agent: str | None, server: str, tool: str, arguments_sha256: str) -> ApprovalRequest | None:
        now = time.time()

        def work(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(
                SQLITE.claim, (now, agent, server, tool, arguments_sha256, now)).fetchone()
            return row

        row = await self._do(work)
        return None if row is None else from_row(row)

    async def changed(self, ids: Collection[int], seconds: float) -> set[int]:
        await anyio.sleep(min(seconds, self._poll))
        if not ids:
            return set()
        wanted = list(ids)
        rows = await self._do(lambda conn: conn.execute(SQLITE.changed(len(wanted)), wanted).fetchall())
        return {int(row[0]) for row in rows}

    async def aclose(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"SqliteApprovalStore({self.location!r})"


def not_decided(request: ApprovalRequest) -> AlreadyDecided:
    """The error for deciding ``request``, which is no longer pending."""
    by = f" by {request.reviewer}" if request.reviewer else ""
    return AlreadyDecided(f"approval request #{request.id} is already {request.status}{by}; nothing was changed")


def _expire(conn: sqlite3.Connection) -> None:
    conn.execute(SQLITE.expire, (EXPIRED_REASON, time.time())).fetchall()


def _is_store(conn: sqlite3.Connection) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'approval_requests'")
    return found.fetchone() is not None


def _prepare(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    if _is_store(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(SQLITE.create)
        for statement in SCHEMA:
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
