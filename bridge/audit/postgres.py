"""``PostgresAuditLog``: the audit trail in a PostgreSQL table, shared by many processes and hosts.

The table is the SQLite log's ``tool_calls``: the same columns under the same names, with
native types (``time`` timestamptz, ``arguments`` json, ``duration`` double precision).
``record_id`` is UNIQUE and inserts do nothing on conflict, so a write repeated after a lost
acknowledgement stores nothing new: writes are retried on connection failures, and a record
is never lost to a dropped connection nor stored twice. Each writer (this process's worker name
plus a process-unique id, in ``chain``) keeps its own hash chain (``bridge.audit.chain``), so
workers never wait on each other; a writer's rows go in one at a time, in order. The table is created on first use
under an advisory lock, so any number of processes may start against an empty database.

psycopg (the ``postgres`` extra) is imported when a log is opened, never before. The URL's
password is secret: ``repr``, ``location``, errors and log lines show ``***``, and
``to_config`` writes a ``${VAR}`` reference (read from the environment on load). Prefer
``PGPASSWORD`` or ``~/.pgpass``, which libpq reads itself and nothing here ever sees.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..errors import AuthError, BridgeError, ConfigError, ServerUnreachable
from ..secrets import Secrets, mask_url, url_secrets
from ..targets import expand_vars
from .chain import Head, audit_key, linked_row
from .records import AuditRecord, aware, current_worker, matches, merge
from .sqlite import COLUMNS, JSON_COLUMNS
from .writer import Writer

if TYPE_CHECKING:
    import psycopg

__all__ = ["DEFAULT_PASSWORD_VAR", "PostgresAuditLog", "is_postgres_url", "password_values"]

logger = logging.getLogger("bridge.audit")

DEFAULT_PASSWORD_VAR = "MCP_BRIDGE_AUDIT_PASSWORD"
"""The variable ``to_config`` names for a password that was given literally in the URL."""

_SCHEMES = ("postgresql", "postgres")
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
# Any constant works, as long as every creator of the table uses the same one.
_SCHEMA_LOCK = 0x6D63_7062_6175_6474

_CREATE = """
CREATE TABLE IF NOT EXISTS tool_calls (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time TIMESTAMPTZ NOT NULL,
    agent TEXT,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    alias TEXT,
    arguments JSON NOT NULL,
    decision TEXT,
    reviewer TEXT,
    reason TEXT,
    outcome TEXT NOT NULL,
    error TEXT,
    duration DOUBLE PRECISION NOT NULL,
    call_id TEXT,
    worker TEXT,
    record_id TEXT NOT NULL UNIQUE,
    phase TEXT,
    ref TEXT,
    step JSON,
    chain TEXT,
    seq BIGINT,
    prev TEXT,
    hash TEXT,
    alg TEXT
)"""
_BY_TIME = "CREATE INDEX IF NOT EXISTS tool_calls_by_time ON tool_calls(time)"
# Columns added since the first release; a table created by an older version gains them.
_ADDED = {"phase": "TEXT", "ref": "TEXT", "step": "JSON", "chain": "TEXT", "seq": "BIGINT", "prev": "TEXT",
          "hash": "TEXT", "alg": "TEXT"}
_BY_CHAIN = "CREATE UNIQUE INDEX IF NOT EXISTS tool_calls_by_chain ON tool_calls(chain, seq)"
_HEAD = "SELECT seq, hash FROM tool_calls WHERE chain = %s ORDER BY seq DESC LIMIT 1"
_INSERT = (f"INSERT INTO tool_calls ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)}) "
           "ON CONFLICT (record_id) DO NOTHING")
_ATTEMPTS = 3


def is_postgres_url(value: object) -> bool:
    """Whether ``value`` is a ``postgresql://`` or ``postgres://`` URL."""
    return isinstance(value, str) and urlsplit(value.strip()).scheme.lower() in _SCHEMES


def _mask(url: str, replacement: Callable[[str], str]) -> str:
    """``url`` with the userinfo password and password parameters replaced by ``replacement(name)``."""
    return mask_url(url, replacement("password"), lambda key: replacement(key.lower()))


def password_values(url: str) -> list[str]:
    """The passwords a URL carries (userinfo and ``password=`` parameters, raw and decoded): what
    output showing the URL must mask. Empty for anything that is not a URL."""
    return url_secrets(url)


class _Pool:
    """A few connections shared by worker threads; a broken one is dropped, a new one opened on demand."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], size: int) -> None:
        self._connect = connect
        self._size = size
        self._idle: list[psycopg.Connection[Any]] = []
        self._open = 0
        self._pid = os.getpid()
        self._cond = threading.Condition()
        # Bumped by close(): a connection lent out before it is closed when it comes back, not kept.
        self._generation = 0

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        conn: psycopg.Connection[Any] | None = None
        with self._cond:
            if self._pid != os.getpid():
                # A forked child shares its parent's sockets; using or closing them would corrupt
                # the parent's sessions, so the child forgets them and opens its own.
                self._idle, self._open, self._pid = [], 0, os.getpid()
            while not self._idle and self._open >= self._size:
                self._cond.wait()
            if self._idle:
                conn = self._idle.pop()
            else:
                self._open += 1
            generation = self._generation
        if conn is None:
            try:
                conn = self._connect()
            except BaseException:
                self._release(None, generation)
                raise
        try:
            yield conn
        finally:
            self._release(conn, generation)

    def _release(self, conn: psycopg.Connection[Any] | None, generation: int) -> None:
        from psycopg.pq import TransactionStatus

        with self._cond:
            if conn is not None and generation == self._generation and not conn.closed and not conn.broken and \
                    conn.info.transaction_status == TransactionStatus.IDLE:
                self._idle.append(conn)
            else:
                self._open -= 1
                if conn is not None:
                    conn.close()
            self._cond.notify()

    def close(self) -> None:
        """Close the idle connections now, and each one lent out when it comes back."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._generation += 1
        for conn in idle:
            conn.close()


class PostgresAuditLog:
    """Records in the PostgreSQL table ``tool_calls``, created if missing.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database[?param=value...]``; any
            ``${VAR}`` in it is expanded from the environment now, and a password given as
            ``${VAR}`` is written back as that reference by ``to_config``.
        password_var: the variable ``to_config`` names for a literal password.
        max_connections: connections this log keeps open at most (writes beyond wait).
        connect_timeout: seconds to wait for the server when connecting.

    Raises:
        ConfigError: not a PostgreSQL URL, an unset ``${VAR}``, or psycopg is not installed.
    """

    kind = "postgres"

    def __init__(self, url: str, *, password_var: str = DEFAULT_PASSWORD_VAR, max_connections: int = 4,
                 connect_timeout: float = 10.0) -> None:
        template = url.strip()
        if not is_postgres_url(template):
            raise ConfigError(f"not a PostgreSQL URL: {_mask(template, lambda _: '***')} "
                              "(expected postgresql://user@host:port/database)")
        self._template = template if "${" in template else None
        self._url = expand_vars(template, where="the audit log URL")
        given = urlsplit(template).password
        reference = _REFERENCE.match(unquote(given)) if given else None
        self.password_var = reference.group(1) if reference else password_var
        self.location = _mask(self._url, lambda _: "***")
        """The URL with its password masked: what messages show."""
        self._secrets = Secrets(password_values(self._url), min_length=1)
        try:
            import psycopg
        except ImportError:
            raise ConfigError("the PostgreSQL audit log needs psycopg: "
                              "pip install 'autogen-mcp-bridge[postgres]'") from None
        self._psycopg = psycopg
        self._connect_timeout = max(1, round(connect_timeout))
        self._pool = _Pool(self._open, max(1, max_connections))
        self._ready = False
        self._ready_lock = threading.Lock()
        # This writer's chain: its name (per process: a forked child starts its own) and head,
        # ``None`` until read back from the table (at first, and after a write that may or may not
        # have committed).
        self._chain_lock = threading.Lock()
        self._chain: tuple[int, str] | None = None
        self._head: Head | None = None
        self._head_known = False
        self._writer = Writer(self._write, "audit writer postgres")

    # -- connections ---------------------------------------------------------------------------

    def _open(self) -> psycopg.Connection[Any]:
        return self._psycopg.connect(self._url, autocommit=True, connect_timeout=self._connect_timeout,
                                     application_name="mcp-bridge audit")

    def _table_exists(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute("SELECT to_regclass('tool_calls') IS NOT NULL").fetchone()
        return bool(row and row[0])

    def _ensure_table(self, conn: psycopg.Connection[Any]) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            # Checked first so that a role allowed only to insert never needs CREATE rights.
            if not self._table_exists(conn) or self._missing_columns(conn):
                # CREATE TABLE IF NOT EXISTS alone races: two creators can both find the table
                # missing and one then fails on a catalogue unique index. The lock serialises them.
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    conn.execute(_CREATE)
                    conn.execute(_BY_TIME)
                    for column, kind in _ADDED.items():
                        conn.execute(f"ALTER TABLE tool_calls ADD COLUMN IF NOT EXISTS {column} {kind}")
                    conn.execute(_BY_CHAIN)
            self._ready = True

    def _missing_columns(self, conn: psycopg.Connection[Any]) -> bool:
        return not set(_ADDED) <= _columns(conn)

    @property
    def chain(self) -> str:
        """This writer's chain name: the worker's name and a process-unique id."""
        pid = os.getpid()
        if self._chain is None or self._chain[0] != pid:
            self._chain = (pid, f"{current_worker()}#{uuid.uuid4().hex[:12]}")
            self._head, self._head_known = None, True
        return self._chain[1]

    def _error(self, exc: Exception) -> BridgeError:
        text = self._secrets(" ".join(str(exc).split()) or type(exc).__name__)
        errors = self._psycopg.errors
        message = f"audit database {self.location}: {text}"
        if isinstance(exc, errors.InvalidPassword | errors.InvalidAuthorizationSpecification) or \
                "password authentication failed" in text or "no password supplied" in text:
            return AuthError(message)
        if isinstance(exc, self._psycopg.OperationalError):
            return ServerUnreachable(message)
        return ConfigError(message)

    # -- the AuditLog protocol -----------------------------------------------------------------

    async def append(self, record: AuditRecord) -> None:
        """Insert one row (on a worker thread), secrets masked (``AuditRecord.masked``); a record
        already stored is left as it is.

        Raises:
            AuthError: the server refused the credentials.
            ServerUnreachable: no connection after a few attempts.
            ConfigError: the server refused the row (a table of another shape, say).
        """
        await self._writer.run(record.masked())

    def _write(self, record: AuditRecord) -> None:
        record = record.masked()
        # One row of this writer's chain at a time: each names the one before it.
        with self._chain_lock:
            chain = self.chain
            if not self._head_known:
                self._head = self._read_head(chain)
                self._head_known = True
            row = linked_row(record, chain, self._head, audit_key())
            self._head_known = False  # until this write is known to have committed
            self._insert(self._params(row))
            self._head, self._head_known = (row["seq"], row["hash"]), True

    def _read_head(self, chain: str) -> Head | None:
        try:
            with self._pool.connection() as conn:
                self._ensure_table(conn)
                row = conn.execute(_HEAD, (chain,)).fetchone()
        except self._psycopg.Error as e:
            raise self._error(e) from None
        return (int(row[0]), str(row[1])) if row and row[0] is not None and row[1] else None

    def _insert(self, params: tuple[Any, ...]) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._pool.connection() as conn:
                    self._ensure_table(conn)
                    conn.execute(_INSERT, params)
                return
            except self._psycopg.OperationalError as e:
                error = self._error(e)
                if isinstance(error, AuthError) or attempt == _ATTEMPTS:
                    raise error from None
                # Safe to repeat: the insert is a no-op if the first attempt did commit.
                logger.warning("audit write to %s failed (%s); retrying", self.location, error.detail)
                time.sleep(0.2 * attempt)
            except self._psycopg.Error as e:
                raise self._error(e) from None

    def _params(self, row: dict[str, Any]) -> tuple[Any, ...]:
        from psycopg.types.json import Json

        row["time"] = aware(datetime.fromisoformat(row["time"]))
        # The json type keeps the arguments' text as written (jsonb would reorder keys).
        for column in JSON_COLUMNS:
            if row[column] is not None:
                row[column] = Json(row[column], dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))
        return tuple(_clean(row[c]) if isinstance(row[c], str) else row[c] for c in COLUMNS)

    def records(self, *, agent: str | None = None, tool: str | None = None,
                since: datetime | None = None) -> list[AuditRecord]:
        """One record per call (``merge``), in insertion order (none before the table exists).

        Raises:
            AuthError, ServerUnreachable, ConfigError: as for ``append``.
        """
        return [r for r in merge(self._select(agent, tool, since)) if matches(r, None, None, since)]

    def entries(self) -> list[AuditRecord]:
        """Every row as stored, in insertion order.

        Raises:
            AuthError, ServerUnreachable, ConfigError: as for ``append``.
        """
        return self._select(None, None, None)

    def _select(self, agent: str | None, tool: str | None, since: datetime | None) -> list[AuditRecord]:
        from psycopg.rows import dict_row

        clauses: list[str] = []
        params: list[Any] = []
        if agent is not None:
            clauses.append("agent = %s")
            params.append(agent)
        if tool is not None:
            clauses.append("(tool = %s OR alias = %s)")
            params += [tool, tool]
        if since is not None:
            clauses.append("time >= %s")
            params.append(since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        try:
            with self._pool.connection() as conn:
                if not self._table_exists(conn):
                    return []
                # A table an older version made (and a reader may not alter) lacks the newer columns.
                have = _columns(conn)
                chosen = [c for c in COLUMNS if c in have]
                with conn.cursor(row_factory=dict_row) as cur:
                    rows = cur.execute(f"SELECT {', '.join(chosen)} FROM tool_calls{where} ORDER BY id",
                                       params).fetchall()
        except self._psycopg.Error as e:
            raise self._error(e) from None
        out = []
        for row in rows:
            row["time"] = _iso(row["time"])
            record = AuditRecord.from_json(row)
            if matches(record, None, None, since):
                out.append(record)
        return out

    def close(self) -> None:
        """End the writer thread once the writes handed to it are done, and close the connections:
        idle ones now, busy ones when their write ends (a later call reconnects)."""
        self._writer.close()
        self._pool.close()

    # -- configs -------------------------------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs: the URL with its password as a ``${VAR}``
        reference (``password_var``), never the value."""
        def reference(name: str) -> str:
            return "${" + (self.password_var if name == "password" else f"{self.password_var}_SSL") + "}"

        # A URL given with references keeps them (and any other ${VAR}); literal secrets never pass.
        base = self._template or self._url
        return {"type": self.kind, "url": _mask(base, lambda name: _keep_reference(base, name, reference))}

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> PostgresAuditLog:
        """Inverse of ``to_config`` (``${VAR}`` references expanded now).

        Raises:
            ConfigError: no ``url``, or a referenced variable is not set.
        """
        url = data.get("url")
        if not isinstance(url, str):
            raise ConfigError("a postgres audit log config needs a url")
        return cls(url)

    def __repr__(self) -> str:
        return f"PostgresAuditLog({self.location!r})"


def _keep_reference(template: str, name: str, reference: Callable[[str], str]) -> str:
    parts = urlsplit(template)
    given = parts.password if name == "password" and parts.password is not None else None
    if given is None:
        values = [v for pair in parts.query.split("&") for k, _, v in [pair.partition("=")] if k.lower() == name]
        given = values[0] if values else None
    return given if given is not None and _REFERENCE.match(unquote(given)) else reference(name)


def _columns(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'tool_calls' "
                        "AND table_schema = current_schema()").fetchall()
    return {str(row[0]) for row in rows}


def _clean(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a tool's error text may.
    return value.replace("\x00", "\ufffd")


def _iso(t: datetime) -> str:
    # The precision the writer used: AuditTrail writes milliseconds, others may write more.
    t = t.astimezone(timezone.utc)
    spec = "seconds" if not t.microsecond else "milliseconds" if not t.microsecond % 1000 else "microseconds"
    return t.isoformat(timespec=spec)
