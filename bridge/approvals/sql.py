"""The SQL both stores run, in each one's spelling: one set of statements, so the two cannot
drift apart on what "decided once" or "used once" means. Pure (no connections here)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .requests import ApprovalRequest, Status, check_status

__all__ = ["COLUMNS", "INSERTED", "POSTGRES", "SQLITE", "Dialect", "from_row", "to_row"]

COLUMNS = ("id", "agent", "server", "tool", "alias", "arguments", "arguments_sha256", "hints", "why", "created",
           "expires", "duplicate_key", "duplicate_of", "worker", "status", "reviewer", "reason", "decided",
           "consumed")
"""The columns of ``approval_requests``, in ``ApprovalRequest`` field order."""

INSERTED = COLUMNS[1:]
"""Every column but the id the store assigns."""

_ALL = ", ".join(COLUMNS)
# The reason a request left pending without anyone deciding it.
EXPIRED_REASON = "no reviewer decided before it expired"


@dataclass(frozen=True)
class Dialect:
    """How one database spells what the statements need.

    Attributes:
        p: the parameter placeholder.
        same: the null-safe equality operator.
        create: the table's DDL (the rest of the schema is the indexes, shared).
        notify: each statement ending a pending request also sends a notification (``woken``).
    """

    p: str
    same: str
    create: str
    notify: bool = False

    def params(self, n: int) -> str:
        return ", ".join(self.p for _ in range(n))

    def woken(self, update: str) -> str:
        """``update`` (ending in ``RETURNING`` the columns), plus a notification per changed row."""
        if not self.notify:
            return update
        return f"WITH changed AS ({update}) SELECT changed.*, pg_notify('{CHANNEL}', changed.id::text) FROM changed"

    @property
    def insert(self) -> str:
        return (f"INSERT INTO approval_requests ({', '.join(INSERTED)}) VALUES ({self.params(len(INSERTED))}) "
                "RETURNING id")

    @property
    def get(self) -> str:
        return f"SELECT {_ALL} FROM approval_requests WHERE id = {self.p}"

    def list(self, statuses: Collection[Status], oldest_first: bool = False) -> str:
        which = f" AND status IN ({self.params(len(statuses))})" if statuses else ""
        order = "ASC" if oldest_first else "DESC"
        return f"SELECT {_ALL} FROM approval_requests WHERE id > {self.p}{which} ORDER BY id {order} LIMIT {self.p}"

    @property
    def duplicate(self) -> str:
        # The newest request this one may duplicate: same key, pending (and still open) or approved.
        return (f"SELECT id FROM approval_requests WHERE duplicate_key = {self.p} AND id <> {self.p} "
                f"AND created >= {self.p} AND (status = 'approved' OR (status = 'pending' AND expires > {self.p})) "
                "ORDER BY id DESC LIMIT 1")

    @property
    def set_duplicate(self) -> str:
        return f"UPDATE approval_requests SET duplicate_of = {self.p} WHERE id = {self.p}"

    @property
    def expire(self) -> str:
        return self.woken(f"UPDATE approval_requests SET status = 'expired', reason = {self.p}, decided = expires "
                          f"WHERE status = 'pending' AND expires <= {self.p} RETURNING {_ALL}")

    @property
    def decide(self) -> str:
        return self.woken(f"UPDATE approval_requests SET status = {self.p}, reviewer = {self.p}, reason = {self.p}, "
                          f"decided = {self.p} WHERE id = {self.p} AND status = 'pending' AND expires > {self.p} "
                          f"RETURNING {_ALL}")

    @property
    def settle(self) -> str:
        return self.woken(f"UPDATE approval_requests SET status = {self.p}, reason = {self.p}, decided = {self.p} "
                          f"WHERE id = {self.p} AND status = 'pending' RETURNING {_ALL}")

    @property
    def consume(self) -> str:
        return (f"UPDATE approval_requests SET consumed = {self.p} WHERE id = {self.p} AND consumed IS NULL "
                "AND status IN ('approved', 'denied') RETURNING id")

    @property
    def claim(self) -> str:
        # The inner SELECT picks a candidate; the outer WHERE re-checks ``consumed IS NULL`` on the
        # row it locks, so of two claims racing for one decision exactly one gets it.
        return (f"UPDATE approval_requests SET consumed = {self.p} WHERE id = ("
                f"SELECT id FROM approval_requests WHERE agent {self.same} {self.p} AND server = {self.p} "
                f"AND tool = {self.p} AND arguments_sha256 = {self.p} AND status IN ('approved', 'denied') "
                f"AND consumed IS NULL AND expires > {self.p} ORDER BY id LIMIT 1) AND consumed IS NULL "
                f"RETURNING {_ALL}")

    def changed(self, n: int) -> str:
        return f"SELECT id FROM approval_requests WHERE id IN ({self.params(n)}) AND status <> 'pending'"


CHANNEL = "mcp_bridge_approvals"
"""The PostgreSQL notification channel: its payload is the id of a request that left pending."""

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS approval_requests_by_call ON approval_requests(server, tool, arguments_sha256)",
    "CREATE INDEX IF NOT EXISTS approval_requests_by_duplicate ON approval_requests(duplicate_key)",
    "CREATE INDEX IF NOT EXISTS approval_requests_by_status ON approval_requests(status)",
)

SQLITE = Dialect(p="?", same="IS", create="""
CREATE TABLE IF NOT EXISTS approval_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT, agent TEXT, server TEXT NOT NULL, tool TEXT NOT NULL,
    alias TEXT NOT NULL, arguments TEXT NOT NULL, arguments_sha256 TEXT NOT NULL, hints TEXT NOT NULL,
    why TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL, duplicate_key TEXT NOT NULL,
    duplicate_of INTEGER, worker TEXT NOT NULL, status TEXT NOT NULL, reviewer TEXT, reason TEXT,
    decided REAL, consumed REAL
)""")

POSTGRES = Dialect(p="%s", same="IS NOT DISTINCT FROM", notify=True, create="""
CREATE TABLE IF NOT EXISTS approval_requests (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, agent TEXT, server TEXT NOT NULL, tool TEXT NOT NULL,
    alias TEXT NOT NULL, arguments TEXT NOT NULL, arguments_sha256 TEXT NOT NULL, hints TEXT NOT NULL,
    why TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL,
    duplicate_key TEXT NOT NULL, duplicate_of BIGINT, worker TEXT NOT NULL, status TEXT NOT NULL,
    reviewer TEXT, reason TEXT, decided DOUBLE PRECISION, consumed DOUBLE PRECISION
)""")

SCHEMA = _INDEXES
"""The indexes every store creates after its table."""


def to_row(request: ApprovalRequest) -> tuple[Any, ...]:
    """The values of ``INSERTED`` for ``request`` (arguments and hints as JSON text, NUL-free:
    PostgreSQL text cannot hold NUL, and the JSON escape keeps the value)."""
    values = {
        "agent": request.agent, "server": request.server, "tool": request.tool, "alias": request.alias,
        "arguments": json.dumps(dict(request.arguments), ensure_ascii=False, default=str),
        "arguments_sha256": request.arguments_sha256,
        "hints": json.dumps(dict(request.hints), ensure_ascii=False, default=str), "why": request.why,
        "created": request.created, "expires": request.expires, "duplicate_key": request.duplicate_key,
        "duplicate_of": request.duplicate_of, "worker": request.worker, "status": request.status,
        "reviewer": request.reviewer, "reason": request.reason, "decided": request.decided,
        "consumed": request.consumed,
    }
    return tuple(_no_nul(values[c]) for c in INSERTED)


def _no_nul(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def from_row(row: Mapping[str, Any] | tuple[Any, ...]) -> ApprovalRequest:
    """An ``ApprovalRequest`` from a row of ``COLUMNS`` (a tuple in that order, or a mapping)."""
    data = dict(row) if isinstance(row, Mapping) else dict(zip(COLUMNS, row, strict=False))
    return ApprovalRequest(
        id=int(data["id"]), agent=data["agent"], server=data["server"], tool=data["tool"], alias=data["alias"],
        arguments=json.loads(data["arguments"]), arguments_sha256=data["arguments_sha256"],
        hints=json.loads(data["hints"]), why=data["why"], created=float(data["created"]),
        expires=float(data["expires"]), duplicate_key=data["duplicate_key"],
        duplicate_of=None if data["duplicate_of"] is None else int(data["duplicate_of"]), worker=data["worker"],
        status=check_status(data["status"]), reviewer=data["reviewer"], reason=data["reason"],
        decided=None if data["decided"] is None else float(data["decided"]),
        consumed=None if data["consumed"] is None else float(data["consumed"]))
