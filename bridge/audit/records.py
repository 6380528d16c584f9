"""The audit record, the ``AuditLog`` protocol every store implements, and who wrote a record."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal, Protocol, runtime_checkable

from ..secrets import clip, mask_data, mask_known

__all__ = [
    "ERROR_LIMIT",
    "WORKER_ENV",
    "AuditLog",
    "AuditRecord",
    "Outcome",
    "aware",
    "current_worker",
    "matches",
    "new_record_id",
]

Outcome = Literal["ok", "tool_error", "exception", "denied", "refused"]

ERROR_LIMIT = 2000
"""A record's error is cut at this many characters (after masking: a cut never splits a secret)."""

WORKER_ENV = "MCP_BRIDGE_WORKER"
"""Names the worker in every record this process writes (default ``hostname:pid``)."""

_host: tuple[int, str] | None = None


def current_worker() -> str:
    """``$MCP_BRIDGE_WORKER`` if set, else ``hostname:pid`` of this process."""
    named = os.environ.get(WORKER_ENV)
    if named:
        return named
    global _host
    pid = os.getpid()
    # Cached per pid: a forked child must not inherit its parent's name.
    if _host is None or _host[0] != pid:
        _host = (pid, f"{socket.gethostname()}:{pid}")
    return _host[1]


def new_record_id() -> str:
    """A fresh record id: 32 hex digits, unique across processes and machines."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class AuditRecord:
    """One tool call, as the audit trail keeps it.

    ``time`` is when the call entered the bridge (UTC, ISO 8601); ``tool`` the MCP name and
    ``alias`` the name the agent used; ``decision`` is ``approved``, ``denied``,
    ``not_required`` or ``None`` (no approval gate on this tool); ``duration`` in seconds.
    ``worker`` names the process that made the call (``current_worker()``). ``record_id`` is
    unique per record, so a store can make a repeated write of the same record a no-op.
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
    worker: str | None = None
    record_id: str = field(default_factory=new_record_id)

    @property
    def at(self) -> datetime:
        """``time`` as an aware datetime (a record without an offset is taken as UTC)."""
        return aware(datetime.fromisoformat(self.time))

    def masked(self, extra_names: re.Pattern[str] | None = None) -> AuditRecord:
        """The record as a trail may keep it: the secrets of every open session masked in its
        arguments, error and reason; secret-named (or ``extra_names``) and credential-shaped
        arguments as evidence marks (``bridge.secrets.mask_data``); the error cut at
        ``ERROR_LIMIT`` after masking. Masking a masked record changes nothing, so every store
        applies it to whatever it is given."""
        return replace(self, arguments=mask_data(dict(self.arguments), extra_names),
                       error=clip(self.error, ERROR_LIMIT) if self.error else self.error,
                       reason=mask_known(self.reason) if self.reason else self.reason)

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-able dict (one JSONL line)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditRecord:
        """A record from ``to_json`` output; unknown keys (from newer writers) are ignored.

        A record written before records had ids gets one derived from its content, so reading
        the same old line twice yields the same id.
        """
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        if not values.get("record_id"):
            canonical = json.dumps({k: v for k, v in values.items() if k != "record_id"}, sort_keys=True, default=str)
            values["record_id"] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
        return cls(**values)


@runtime_checkable
class AuditLog(Protocol):
    """Where records go. ``append`` must be safe to call from many tasks at once, and a second
    ``append`` of a record with the same ``record_id`` must store nothing new."""

    async def append(self, record: AuditRecord) -> None:
        """Store one record durably."""
        ...

    def records(self, *, agent: str | None = None, tool: str | None = None,
                since: datetime | None = None) -> list[AuditRecord]:
        """Stored records, oldest first, filtered."""
        ...


def aware(t: datetime) -> datetime:
    """``t`` with UTC attached when it has no offset."""
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def matches(record: AuditRecord, agent: str | None, tool: str | None, since: datetime | None) -> bool:
    """Whether ``record`` passes the ``records()`` filters."""
    if agent is not None and record.agent != agent:
        return False
    if tool is not None and tool not in (record.tool, record.alias):
        return False
    return since is None or record.at >= since
