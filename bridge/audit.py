"""The audit trail: one record per tool call through the bridge, in JSONL or SQLite.

``audit_interceptor(log)`` wraps every call. Put it outermost (``tools_for`` does) so it also
records calls the approval gate denied and calls that raised. Each record holds: time, agent,
server, tool (MCP name, plus the name the agent used), arguments with secrets redacted, the
approval decision and reviewer, the outcome, error text and duration.

Outcomes: ``ok``; ``tool_error`` (the tool answered ``isError``); ``denied`` (a reviewer said no;
the server never saw the call); ``exception`` (the call could not complete: lost connection,
timeout, cancellation, ...; the exception is re-raised after recording).

Storage is chosen by the developer: ``JsonlAuditLog(path)`` appends one JSON object per line
(easy to ship to a log pipeline); ``SqliteAuditLog(path)`` keeps a real SQLite file in WAL mode
(safe with several agent processes writing at once, and queryable). ``query(path, ...)`` reads
either, telling them apart by content. Writes run on a worker thread so the event loop never
waits on the disk.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import anyio

from .approval import NOTES_KEY, Decision, redact
from .connection import Handler, ToolCall
from .errors import ConfigError
from .results import CallResult

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "AuditLog",
    "AuditRecord",
    "AuditTrail",
    "JsonlAuditLog",
    "Outcome",
    "SqliteAuditLog",
    "audit_interceptor",
    "open_audit_log",
    "parse_since",
    "query",
    "render_table",
]

logger = logging.getLogger("bridge.audit")

Outcome = Literal["ok", "tool_error", "exception", "denied"]


@dataclass(frozen=True)
class AuditRecord:
    """One tool call, as the audit trail keeps it.

    ``time`` is when the call entered the bridge (UTC, ISO 8601); ``tool`` the MCP name and
    ``alias`` the name the agent used; ``decision`` is ``approved``, ``denied``,
    ``not_required`` or ``None`` (no approval gate on this tool); ``duration`` in seconds.
    """

    time: str
    agent: str | None
    server: str
    tool: str
    arguments: Mapping[str, Any]
    outcome: Outcome
    decision: str | None = None
    reviewer: str | None = None
    reason: str | None = None
    error: str | None = None
    duration: float = 0.0
    alias: str | None = None
    call_id: str | None = None

    @property
    def at(self) -> datetime:
        """``time`` as an aware datetime (a record without an offset is taken as UTC)."""
        return _aware(datetime.fromisoformat(self.time))

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-able dict (one JSONL line)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditRecord:
        """A record from ``to_json`` output; unknown keys (from newer writers) are ignored."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@runtime_checkable
class AuditLog(Protocol):
    """Where records go. ``append`` must be safe to call from many tasks at once."""

    path: Path

    async def append(self, record: AuditRecord) -> None:
        """Store one record durably."""
        ...

    def records(self, *, agent: str | None = None, tool: str | None = None,
                since: datetime | None = None) -> list[AuditRecord]:
        """Stored records, oldest first, filtered."""
        ...


def _keep(record: AuditRecord, agent: str | None, tool: str | None, since: datetime | None) -> bool:
    if agent is not None and record.agent != agent:
        return False
    if tool is not None and tool not in (record.tool, record.alias):
        return False
    return since is None or record.at >= since


class JsonlAuditLog:
    """Appends one JSON object per line. Each record is a single ``write`` of a whole line on a
    file opened for appending, so concurrent writers (threads or processes) never interleave
    within a record.
    """

    kind = "jsonl"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    async def append(self, record: AuditRecord) -> None:
        """Append one line (on a worker thread)."""
        line = json.dumps(record.to_json(), ensure_ascii=False, default=str, separators=(",", ":")) + "\n"
        await anyio.to_thread.run_sync(self._write, line)

    def _write(self, line: str) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)

    def records(self, *, agent: str | None = None, tool: str | None = None,
                since: datetime | None = None) -> list[AuditRecord]:
        """Records in file order; unreadable lines are skipped with a warning."""
        if not self.path.exists():
            return []
        out = []
        with self.path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = AuditRecord.from_json(json.loads(line))
                except (ValueError, TypeError) as e:
                    # A torn last line (a crash mid-write) must not hide the rest of the trail.
                    logger.warning("%s:%d: skipping unreadable audit record (%s)", self.path, n, e)
                    continue
                if _keep(record, agent, tool, since):
                    out.append(record)
        return out

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs."""
        return {"type": self.kind, "path": str(self.path)}

    def __repr__(self) -> str:
        return f"JsonlAuditLog({str(self.path)!r})"


_COLUMNS = ("time", "agent", "server", "tool", "alias", "arguments", "decision", "reviewer", "reason", "outcome",
            "error", "duration", "call_id")
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
    call_id TEXT
);
CREATE INDEX IF NOT EXISTS tool_calls_by_time ON tool_calls(time);
"""


class SqliteAuditLog:
    """Records in a SQLite file (table ``tool_calls``), WAL journal, one connection per log.

    Several processes may write the same file; SQLite serialises them (``busy_timeout``).
    """

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Used from anyio worker threads, one at a time under self._lock.
            conn = sqlite3.connect(self.path, timeout=15.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=15000")
            conn.executescript(_CREATE)
            self._conn = conn
        return self._conn

    async def append(self, record: AuditRecord) -> None:
        """Insert one row (on a worker thread)."""
        await anyio.to_thread.run_sync(self._write, record)

    def _write(self, record: AuditRecord) -> None:
        row = record.to_json()
        row["arguments"] = json.dumps(row["arguments"], ensure_ascii=False, default=str)
        with self._lock:
            self._connection().execute(
                f"INSERT INTO tool_calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
                tuple(row[c] for c in _COLUMNS))

    def records(self, *, agent: str | None = None, tool: str | None = None,
                since: datetime | None = None) -> list[AuditRecord]:
        """Rows in insertion order.

        Raises:
            sqlite3.DatabaseError: the file is not an audit database.
        """
        if not self.path.exists():
            return []
        clauses, params = [], []
        if agent is not None:
            clauses.append("agent = ?")
            params.append(agent)
        if tool is not None:
            clauses.append("(tool = ? OR alias = ?)")
            params += [tool, tool]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            conn = self._connection()
            conn.row_factory = sqlite3.Row
            try:
                rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM tool_calls{where} ORDER BY id",
                                    params).fetchall()
            finally:
                conn.row_factory = None
        out = []
        for row in rows:
            data = dict(row)
            data["arguments"] = json.loads(data["arguments"])
            record = AuditRecord.from_json(data)
            # Times are compared as datetimes: offsets in stored strings may differ.
            if _keep(record, None, None, since):
                out.append(record)
        return out

    def close(self) -> None:
        """Close the database connection (a later call reopens it)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs."""
        return {"type": self.kind, "path": str(self.path)}

    def __repr__(self) -> str:
        return f"SqliteAuditLog({str(self.path)!r})"


_SQLITE_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".db3"}
_SQLITE_MAGIC = b"SQLite format 3\x00"


def open_audit_log(path: str | os.PathLike[str], kind: Literal["jsonl", "sqlite"] | None = None) -> AuditLog:
    """An audit log at ``path``: SQLite when ``kind="sqlite"``, the file already is one, or the
    name ends in ``.db``/``.sqlite``/``.sqlite3``; JSONL otherwise.

    Raises:
        ConfigError: an unknown ``kind``.
    """
    p = Path(path)
    if kind is None:
        kind = "sqlite" if _looks_sqlite(p) else "jsonl"
    if kind == "sqlite":
        return SqliteAuditLog(p)
    if kind == "jsonl":
        return JsonlAuditLog(p)
    raise ConfigError(f"unknown audit log type {kind!r}; use 'jsonl' or 'sqlite'")


def _looks_sqlite(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if head:
            return head == _SQLITE_MAGIC
    except OSError:
        pass
    return p.suffix.lower() in _SQLITE_SUFFIXES


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|w|wk)s?\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "sec": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "hr": "hours",
          "d": "days", "day": "days", "w": "weeks", "wk": "weeks"}


def parse_since(value: str | datetime | None, *, now: datetime | None = None) -> datetime | None:
    """``1h``, ``30m``, ``2d``, ``45s``, ``1w`` ago, or an ISO 8601 time (naive means UTC).

    Raises:
        ConfigError: neither a duration nor an ISO time.
    """
    if value is None or isinstance(value, datetime):
        return _aware(value) if value is not None else None
    m = _RELATIVE.match(value)
    if m:
        delta = timedelta(**{_UNITS[m.group(2).lower()]: float(m.group(1))})
        return (now or datetime.now(timezone.utc)) - delta
    try:
        return _aware(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        raise ConfigError(f"--since {value!r}: give a duration like 30m, 1h, 2d or an ISO time like "
                          "2025-01-31T09:00") from None


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def query(path: str | os.PathLike[str], *, agent: str | None = None, tool: str | None = None,
          since: str | datetime | None = None) -> list[AuditRecord]:
    """Records from an audit file (JSONL or SQLite, detected), oldest first.

    Args:
        agent: only this agent's calls.
        tool: only calls of this tool (MCP name or the name the agent used).
        since: only calls at or after this time (``parse_since`` formats).

    Raises:
        ConfigError: the file does not exist or ``since`` is malformed.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"audit file not found: {p}")
    log = open_audit_log(p)
    try:
        records = log.records(agent=agent, tool=tool, since=parse_since(since))
        # Stored in completion order; parallel calls finish out of order, so sort by start time.
        return sorted(records, key=lambda r: r.at)
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"{p}: not a readable audit database ({e})") from None
    finally:
        if isinstance(log, SqliteAuditLog):
            log.close()


class AuditTrail:
    """The audit ``Interceptor``: records every call that passes through it, whatever happens.

    A record that cannot be written is logged as an error and the call's result is still
    returned: by then the call has happened, and failing it would make the model retry a
    call that already had its effect (a second email, say).
    """

    kind = "audit"

    def __init__(self, log: AuditLog, *, redact_keys: str | None = None) -> None:
        self.log = log
        self.redact_keys = redact_keys
        self._extra = re.compile(redact_keys, re.IGNORECASE) if redact_keys else None

    async def __call__(self, call: ToolCall, call_next: Handler) -> CallResult:
        notes: dict[str, Any] = {}
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        started = time.perf_counter()
        base = AuditRecord(time=at, agent=call.agent, server=call.server, tool=call.mcp_name,
                           alias=call.tool if call.tool != call.mcp_name else None,
                           arguments=redact(dict(call.arguments), self._extra), outcome="ok", call_id=call.call_id)
        try:
            result = await call_next(replace(call, meta={**call.meta, NOTES_KEY: notes}))
        except BaseException as e:
            error = "cancelled" if isinstance(e, anyio.get_cancelled_exc_class()) else (str(e) or type(e).__name__)
            await self._write(self._finish(base, notes, "exception", error, started))
            raise
        decision = notes.get("approval")
        if isinstance(decision, Decision) and not decision.approved:
            outcome: Outcome = "denied"
        else:
            outcome = "tool_error" if result.is_error else "ok"
        await self._write(self._finish(base, notes, outcome, result.text if result.is_error else None, started))
        return result

    @staticmethod
    def _finish(base: AuditRecord, notes: Mapping[str, Any], outcome: Outcome, error: str | None,
                started: float) -> AuditRecord:
        decision = notes.get("approval")
        d = decision if isinstance(decision, Decision) else None
        return replace(base, outcome=outcome, error=error[:2000] if error else None,
                       duration=round(time.perf_counter() - started, 6),
                       decision=d.status if d else None, reviewer=d.reviewer if d else None,
                       reason=d.reason if d and d.reason else None)

    async def _write(self, record: AuditRecord) -> None:
        # Shielded: a cancelled call is exactly the kind of event the trail must not lose.
        with anyio.CancelScope(shield=True):
            try:
                await self.log.append(record)
            except Exception:
                logger.exception("could not write audit record for %s/%s to %s", record.server, record.tool,
                                 getattr(self.log, "path", self.log))

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs.

        Raises:
            ValueError: the log type cannot be written down.
        """
        to_config = getattr(self.log, "to_config", None)
        if to_config is None:
            raise ValueError(f"audit log {type(self.log).__name__} cannot be serialised")
        out = {"kind": self.kind, "log": to_config()}
        if self.redact_keys:
            out["redact_keys"] = self.redact_keys
        return out

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> AuditTrail:
        """Inverse of ``to_config``.

        Raises:
            ConfigError: malformed log settings.
        """
        log = data.get("log") or {}
        if "path" not in log:
            raise ConfigError("audit config needs log.path")
        return cls(open_audit_log(log["path"], log.get("type")), redact_keys=data.get("redact_keys"))

    def __repr__(self) -> str:
        return f"AuditTrail({self.log!r})"


def audit_interceptor(log: AuditLog | str | os.PathLike[str], *, redact_keys: str | None = None) -> AuditTrail:
    """The audit interceptor, writing to ``log`` (an ``AuditLog`` or a path for ``open_audit_log``).

    Args:
        redact_keys: a regex of further argument names to redact, beyond the built-in
            password/token/secret/api_key/authorization/... set.

    Raises:
        ConfigError: ``redact_keys`` is not a valid regex.
    """
    if not isinstance(log, AuditLog):
        log = open_audit_log(log)
    try:
        return AuditTrail(log, redact_keys=redact_keys)
    except re.error as e:
        raise ConfigError(f"redact_keys is not a valid regular expression: {e}") from None


def render_table(records: Sequence[AuditRecord] | Iterable[AuditRecord], *, title: str | None = None,
                 arguments_width: int = 60) -> Table:
    """The records as a ``rich`` table. Cells are plain ``Text``: server- and model-supplied
    strings are never interpreted as rich markup. The server column is left out (and named in
    the title) when every record comes from the same server."""
    from rich.table import Table
    from rich.text import Text

    rows = list(records)
    servers = {r.server for r in rows}
    one_server = len(servers) == 1
    if one_server:
        title = f"{title} · server {next(iter(servers))}" if title else f"server {next(iter(servers))}"
    table = Table(title=title, show_lines=False)
    # Names stay whole (a tool cut to "reply_…" is useless); the arguments take what is left.
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("agent", no_wrap=True)
    if not one_server:
        table.add_column("server", no_wrap=True)
    table.add_column("tool", no_wrap=True)
    table.add_column("approval", overflow="fold")
    table.add_column("outcome", overflow="fold")
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("arguments", overflow="fold", ratio=1, min_width=12)
    styles = {"ok": "green", "tool_error": "yellow", "exception": "red", "denied": "magenta"}
    for r in rows:
        approval = r.decision or "-"
        if r.reviewer and r.decision not in (None, "not_required"):
            approval += f" by {r.reviewer}"
        args = json.dumps(r.arguments, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(args) > arguments_width:
            args = args[: arguments_width - 1] + "…"
        outcome = Text(r.outcome, style=styles.get(r.outcome, ""))
        if r.error:
            outcome.append(f": {r.error.splitlines()[0][:60]}", style="dim")
        cells = [Text(r.at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")), Text(r.agent or "-")]
        if not one_server:
            cells.append(Text(r.server))
        cells += [Text(r.tool), Text(approval), outcome, Text(f"{r.duration * 1000:.0f}"), Text(args)]
        table.add_row(*cells)
    return table
