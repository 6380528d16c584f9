"""``PostgresApprovalStore``: the queue in PostgreSQL, shared by processes on many machines.

The table is the SQLite store's ``approval_requests`` with native number types. Every change
that ends a pending request also sends ``NOTIFY mcp_bridge_approvals, '<id>'`` in the same
statement, so a call waiting in any process hears of its decision as soon as it is committed:
each process keeps one connection LISTENing, read by one of its waiting calls at a time
(``Waiters``), without a thread. The table is created on first use under an advisory lock.

psycopg 3 (the ``postgres`` extra) is imported when the store is opened. The URL's password is
secret: ``location``, errors and ``repr`` show ``***``, and so do the stored requests' arguments.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio

from ..audit.postgres import is_postgres_url, password_values
from ..errors import ConfigError
from ..secrets import Secrets, mask_data, mask_url
from ..targets import expand_vars
from .requests import ApprovalRequest, Status
from .sql import CHANNEL, EXPIRED_REASON, POSTGRES, SCHEMA, from_row, to_row
from .sqlite import not_decided
from .store import StoreUnavailable, UnknownRequest, Waiters

if TYPE_CHECKING:
    import psycopg

__all__ = ["LISTEN_SLICE", "PostgresApprovalStore"]

LISTEN_SLICE = 1.0
"""The longest a waiting call listens before it looks at its request again (a safety net:
notifications normally wake it at once)."""

# Any constant works, as long as every creator of the table uses the same one.
_SCHEMA_LOCK = 0x6D63_7062_6170_7072


class PostgresApprovalStore:
    """The approval queue in the PostgreSQL table ``approval_requests``, created if missing.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database``; ``${VAR}`` is expanded now.
        connect_timeout: seconds to wait for the server when connecting.

    Raises:
        ConfigError: not a PostgreSQL URL, an unset ``${VAR}``, or psycopg is not installed.
    """

    kind = "postgres"

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        if not is_postgres_url(url):
            raise ConfigError(f"not a PostgreSQL URL: {mask_url(url.strip())} "
                              "(expected postgresql://user@host:port/database)")
        self._url = expand_vars(url.strip(), where="the approval store URL")
        self.location = mask_url(self._url)
        self._secrets = Secrets(password_values(self._url), min_length=1)
        try:
            import psycopg
        except ImportError:
            raise ConfigError("the PostgreSQL approval store needs psycopg: "
                              "pip install 'autogen-mcp-bridge[postgres]'") from None
        self._psycopg = psycopg
        self._timeout = max(1, round(connect_timeout))
        self.waiters = Waiters(self.changed, LISTEN_SLICE)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening = anyio.Lock()
        # One query connection per store: a transaction on it must not interleave with another task's statements.
        self._use = anyio.Lock()

    # -- connections -------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> StoreUnavailable:
        text = self._secrets(" ".join(str(exc).split()) or type(exc).__name__)
        return StoreUnavailable(f"approval store {self.location}: {text}")

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await self._psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=self._timeout, application_name="mcp-bridge approvals")
        except self._psycopg.Error as e:
            raise self._fail(e) from None

    def _same_loop(self) -> None:
        # Connections belong to the event loop that opened them; a store used from a later
        # loop (a second anyio.run) opens its own.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # The old loop is gone, and its connections with it: they cannot be closed from here.
            self._conn = self._listener = None
            self._opening, self._use = anyio.Lock(), anyio.Lock()
            self._loop = loop

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        self._same_loop()
        async with self._opening:
            if self._conn is None or self._conn.closed or self._conn.broken:
                conn = await self._open()
                try:
                    await self._ensure_table(conn)
                except self._psycopg.Error as e:
                    await conn.close()
                    raise self._fail(e) from None
                self._conn = conn
            return self._conn

    async def _ensure_table(self, conn: psycopg.AsyncConnection[Any]) -> None:
        row = await (await conn.execute("SELECT to_regclass('approval_requests') IS NOT NULL")).fetchone()
        if row and row[0]:
            return
        # CREATE ... IF NOT EXISTS alone races between two creators; the lock serialises them.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            await conn.execute(POSTGRES.create)
            for statement in SCHEMA:
                await conn.execute(statement)

    async def _rows(self, query: str, params: Collection[Any]) -> list[tuple[Any, ...]]:
        conn = await self._connection()
        try:
            async with self._use:
                cursor = await conn.execute(query, tuple(params))
                return await cursor.fetchall() if cursor.description else []
        except self._psycopg.Error as e:
            raise self._fail(e) from None

    async def _expire(self) -> None:
        await self._rows(POSTGRES.expire, (EXPIRED_REASON, _now()))

    # -- the ApprovalStore protocol ----------------------------------------------------------

    async def submit(self, request: ApprovalRequest, *, duplicate_window: float) -> ApprovalRequest:
        # A model that read the store's URL may copy its password into an argument; the agent does
        # not know that value as a secret, so it is masked here, before any reviewer or webhook sees it.
        request = replace(request, arguments=mask_data(request.arguments, known=self._secrets))
        conn = await self._connection()
        try:
            async with self._use, conn.transaction():
                row = await (await conn.execute(POSTGRES.insert, to_row(request))).fetchone()
                assert row is not None
                new_id = int(row[0])
                twin = await (await conn.execute(POSTGRES.duplicate, (
                    request.duplicate_key, new_id, request.created - duplicate_window, _now()))).fetchone()
                if twin is not None:
                    await conn.execute(POSTGRES.set_duplicate, (twin[0], new_id))
        except self._psycopg.Error as e:
            raise self._fail(e) from None
        # The request is committed: a connection cut right now (a restart, a failover) must not
        # lose its id, so it is read back once more, on a fresh connection, before giving up.
        try:
            return await self.get(new_id)
        except StoreUnavailable:
            return await self.get(new_id)

    async def get(self, request_id: int) -> ApprovalRequest:
        await self._expire()
        rows = await self._rows(POSTGRES.get, (request_id,))
        if not rows:
            raise UnknownRequest(f"no approval request #{request_id} in {self.location}")
        return from_row(rows[0])

    async def list(self, *, statuses: Collection[Status] = (), after: int = 0, limit: int = 100,
                   oldest_first: bool = False) -> list[ApprovalRequest]:
        await self._expire()
        query = POSTGRES.list(statuses, oldest_first)
        return [from_row(r) for r in await self._rows(query, (after, *statuses, limit))]

    async def decide(self, request_id: int, approved: bool, reviewer: str, reason: str = "") -> ApprovalRequest:
        now = _now()
        rows = await self._rows(POSTGRES.decide, ("approved" if approved else "denied", reviewer, reason, now,
                                                  request_id, now))
        if not rows:
            raise not_decided(await self.get(request_id))
        return from_row(rows[0])

    async def settle(self, request_id: int, status: Status, reason: str) -> ApprovalRequest:
        await self._rows(POSTGRES.settle, (status, reason, _now(), request_id))
        return await self.get(request_id)

    async def consume(self, request_id: int) -> bool:
        return bool(await self._rows(POSTGRES.consume, (_now(), request_id)))

    async def claim(self, agent: str | None, server: str, tool: str, arguments_sha256: str) -> ApprovalRequest | None:
        now = _now()
        rows = await self._rows(POSTGRES.claim, (now, agent, server, tool, arguments_sha256, now))
        return from_row(rows[0]) if rows else None

    async def changed(self, ids: Collection[int], seconds: float) -> set[int]:
        listener = await self._listening()
        found: set[int] = set()
        try:
            async for note in listener.notifies(timeout=seconds, stop_after=1):
                if note.payload.isdigit():
                    found.add(int(note.payload))
        except BaseException as e:
            # Cancelled (or failed) mid-read: the connection's state is unknown, so it goes.
            self._listener = None
            with anyio.CancelScope(shield=True):
                await listener.close()
            if isinstance(e, self._psycopg.Error):
                raise self._fail(e) from None
            raise
        return found

    async def _listening(self) -> psycopg.AsyncConnection[Any]:
        self._same_loop()
        await self._connection()  # the table, and a clear error, before listening
        if self._listener is None or self._listener.closed or self._listener.broken:
            listener = await self._open()
            try:
                await listener.execute(f"LISTEN {CHANNEL}")
            except self._psycopg.Error as e:
                await listener.close()
                raise self._fail(e) from None
            self._listener = listener
        return self._listener

    async def aclose(self) -> None:
        conns = [c for c in (self._conn, self._listener) if c is not None]
        self._conn = self._listener = None
        for conn in conns:
            with anyio.CancelScope(shield=True):
                await conn.close()

    def __repr__(self) -> str:
        return f"PostgresApprovalStore({self.location!r})"


def _now() -> float:
    return time.time()
