"""The audit record, the ``AuditLog`` protocol every store implements, and who wrote a record."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal, Protocol, runtime_checkable

from ..secrets import clip, mask_data, mask_known

__all__ = [
    "ERROR_LIMIT",
    "READER_FIELDS",
    "WORKER_ENV",
    "AuditLog",
    "AuditRecord",
    "Outcome",
    "aware",
    "current_worker",
    "matches",
    "merge",
    "new_record_id",
]

Outcome = Literal["ok", "tool_error", "exception", "cancelled", "timeout", "denied", "refused", "started"]
"""How a call ended. ``started`` is the outcome of a call's write-ahead record: it stands for
"no outcome" when no later record finished the call (its process died in between)."""

Phase = Literal["started", "finished"]
"""A call that went to a server has two records: ``started`` (written before the request left)
and ``finished`` (its outcome, ``ref`` naming the started one). A record with no phase is a call
in one record: one the guards stopped, or one written before records had phases."""

READER_FIELDS = frozenset({"chain_status"})
"""Fields a reader fills in (``query``); never stored, never hashed."""

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

    ``phase`` and ``ref`` link a call's write-ahead record to its outcome (``Phase``); ``step`` is
    the model's step that asked for the call (``bridge.steps.Step.to_json()``). ``chain``, ``seq``,
    ``prev``, ``hash`` and ``alg`` are set by a chaining store (``bridge.audit.chain``): which chain
    the record is in, its number there, the previous record's hash, its own, and how it was made.
    ``chain_status`` is a reader's verdict (``query``), never stored.
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
    phase: Phase | None = None
    ref: str | None = None
    step: Mapping[str, Any] | None = None
    chain: str | None = None
    seq: int | None = None
    prev: str | None = None
    hash: str | None = None
    alg: str | None = None
    chain_status: str | None = None

    @property
    def at(self) -> datetime:
        """``time`` as an aware datetime (a record without an offset is taken as UTC)."""
        return aware(datetime.fromisoformat(self.time))

    def masked(self, extra_names: re.Pattern[str] | None = None) -> AuditRecord:
        """The record as a trail may keep it: the secrets of every open session masked in its
        arguments, error, reason, step and call id; secret-named (or ``extra_names``) and credential-shaped
        arguments as evidence marks (``bridge.secrets.mask_data``); the error cut at
        ``ERROR_LIMIT`` after masking; NUL characters replaced (PostgreSQL text cannot hold them,
        and a record must read back as it was hashed).

        Every store applies it to whatever it is given. Masking a masked record changes nothing,
        and costs nothing for a record this method (or ``amend``) made: that record is itself
        returned. Any other record, however made (``dataclasses.replace`` of a masked one, a
        copy, one read back), is masked in full.
        """
        if self.is_masked(extra_names):
            return self
        return _marked(replace(self, **{name: mask(value, extra_names) for name, mask in _MASKERS.items()
                                        if (value := getattr(self, name)) is not None}), extra_names)

    def amend(self, extra_names: re.Pattern[str] | None = None, **changes: Any) -> AuditRecord:
        """``masked(extra_names)`` with ``changes``: when this record is masked already, only the
        fields changed are masked (``arguments``, ``error``, ``reason``, ``step``, ``call_id``), so a call's
        arguments are masked once for both of its records."""
        if not self.is_masked(extra_names):
            return replace(self, **changes).masked(extra_names)
        for name, mask in _MASKERS.items():
            if changes.get(name) is not None:
                changes[name] = mask(changes[name], extra_names)
        return _marked(replace(self, **changes), extra_names)

    def is_masked(self, extra_names: re.Pattern[str] | None = None) -> bool:
        """Whether ``masked(extra_names)`` made this very record (or ``amend`` did)."""
        rules = self.__dict__.get(_MASKED_WITH, _UNMASKED)
        return rules is not _UNMASKED and (extra_names is None or rules is extra_names)

    def __getstate__(self) -> dict[str, Any]:
        # A copy or an unpickled record is masked again: the secrets known where it lands may differ.
        return {k: v for k, v in self.__dict__.items() if k != _MASKED_WITH}

    @property
    def open(self) -> bool:
        """A write-ahead record no later record finished: the call's fate is unknown."""
        return self.phase == "started"

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-able dict, reader fields included (``--json`` output)."""
        return asdict(self)

    def stored_json(self) -> dict[str, Any]:
        """The record as a store keeps it (one JSONL line): ``to_json`` without ``READER_FIELDS``."""
        # Shallow: a write serialises it at once, and asdict's deep copy costs more than the write's hash.
        return {name: getattr(self, name) for name in _STORED}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditRecord:
        """A record from ``to_json`` output; unknown keys (from newer writers) are ignored.

        A record written before records had ids gets one derived from its content, so reading
        the same old line twice yields the same id.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"an audit record is a JSON object, not {type(data).__name__}")
        known = set(cls.__dataclass_fields__) - READER_FIELDS
        values = {k: v for k, v in data.items() if k in known}
        if not values.get("record_id"):
            canonical = json.dumps({k: v for k, v in values.items() if k != "record_id"}, sort_keys=True, default=str)
            values["record_id"] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
        return cls(**values)


_STORED = tuple(name for name in AuditRecord.__dataclass_fields__ if name not in READER_FIELDS)

# Which rules masked a record (its ``extra_names``), kept beside the fields: never stored, compared
# or hashed, and absent from any record ``replace`` makes, which is therefore masked again.
_MASKED_WITH = "_masked_with"
_UNMASKED = object()


def _marked(record: AuditRecord, extra_names: re.Pattern[str] | None) -> AuditRecord:
    object.__setattr__(record, _MASKED_WITH, extra_names)
    return record


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd")


_MASKERS: dict[str, Callable[[Any, re.Pattern[str] | None], Any]] = {
    "arguments": lambda value, extra: mask_data(dict(value), extra),
    "error": lambda value, _: _no_nul(clip(value, ERROR_LIMIT)) if value else value,
    "reason": lambda value, _: _no_nul(mask_known(value)) if value else value,
    # Ids from the framework, the model or the server (a task id): known secrets only, never by
    # shape, since a random-looking id is the evidence that leads back to the step.
    "step": lambda value, _: {k: _no_nul(mask_known(v)) if isinstance(v, str) else v for k, v in value.items()},
    "call_id": lambda value, _: _no_nul(mask_known(value)),  # the step's tool_call_id, kept beside it
}
"""How each field a secret can reach is masked (``AuditRecord.masked``)."""


def merge(stored: Iterable[AuditRecord]) -> list[AuditRecord]:
    """One record per call from records as stored: a ``finished`` record takes the place of the
    ``started`` record it names (keeping that one's id and time, so a call keeps one id however
    it is read); a ``started`` record nothing finished stays, open (``AuditRecord.open``).

    Calls come in the order they ended (an open one where it started), as stores have always
    listed them. A reader's ``chain_status`` of the two records is kept: the worse of them.
    """
    items = list(stored)
    finished = {r.ref: r for r in items if r.phase == "finished" and r.ref}
    started = {r.record_id: r for r in items if r.phase == "started"}
    out = []
    for r in items:
        if r.phase == "started" and r.record_id in finished:
            continue
        if r.phase == "finished" and r.ref in started:
            first = started[r.ref]
            r = replace(r, record_id=first.record_id, time=first.time,
                        chain_status=_worse(first.chain_status, r.chain_status))
        out.append(r)
    return out


_RANK = {None: 0, "ok": 1, "unchained": 2, "unchecked": 3, "broken": 4}


def _worse(a: str | None, b: str | None) -> str | None:
    return a if _RANK.get(a, 4) >= _RANK.get(b, 4) else b


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
