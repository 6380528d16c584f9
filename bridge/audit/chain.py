"""Hash chains over audit records, and their verification.

Every record a chaining store writes carries its chain's name (``chain``), its number in that
chain (``seq``, from 1), the hash of the chain's previous record (``prev``, ``None`` for the
first) and its own ``hash``: SHA-256 over the record's canonical JSON as stored (masked; sorted
keys, no whitespace, fields that are ``None`` left out so a field added later cannot change an
old record's hash; ``hash`` itself and reader fields excluded). With a key in
``$MCP_BRIDGE_AUDIT_KEY`` the hash is an HMAC-SHA256 (``alg``), so someone without the key cannot
rebuild a chain after editing it. The key is registered as a known secret when read: no log,
record or error text shows it.

A JSONL file and a SQLite database hold one chain each (``chain`` is ``"log"``); on PostgreSQL
each writer (worker name plus a process-unique id) keeps its own, so writers never wait on one
another. ``verify`` walks every chain in stored order and names the first record that was edited,
deleted, inserted or reordered. Records written before chaining are *unchained*: reported, never
rejected, as long as they come before the first chained record. What a chain cannot show: records
cut off its end (the last records of a file truncated), and, without a key, a whole chain rebuilt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from ..secrets import known_secrets
from .records import READER_FIELDS, AuditRecord, aware

__all__ = ["FILE_CHAIN", "KEY_ENV", "Head", "Problem", "Verification", "audit_key", "digest", "linked_row", "verify"]

KEY_ENV = "MCP_BRIDGE_AUDIT_KEY"
"""The HMAC key for audit chains (any text; unset: plain SHA-256)."""

FILE_CHAIN = "log"
"""The chain name of a JSONL file's or a SQLite database's one chain."""

Head = tuple[int, str]
"""A chain's last record: its ``seq`` and ``hash``."""

Kind = Literal["edited", "deleted", "inserted", "reordered"]

_UNHASHED = READER_FIELDS | {"hash"}
_SHA = "sha256"
_HMAC = "hmac-sha256"


def audit_key() -> bytes | None:
    """``$MCP_BRIDGE_AUDIT_KEY`` as bytes (``None`` when unset), registered as a known secret."""
    value = os.environ.get(KEY_ENV, "")
    if not value:
        return None
    known_secrets.add([value])
    return value.encode("utf-8")


def canonical(record: AuditRecord) -> bytes:
    """What a record's hash covers: its stored fields, ``None`` ones left out, as canonical JSON."""
    return _canonical(record.stored_json())


def _canonical(stored: Mapping[str, Any]) -> bytes:
    data = {k: v for k, v in stored.items() if k not in _UNHASHED and v is not None}
    # The instant, not its spelling: a database may give the time back in another form.
    data["time"] = aware(datetime.fromisoformat(data["time"])).astimezone(timezone.utc).isoformat(
        timespec="microseconds")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def digest(record: AuditRecord, key: bytes | None) -> str:
    """The hash ``record`` should carry under its ``alg`` (``key`` for an HMAC)."""
    return _digest(record.stored_json(), key)


def _digest(stored: Mapping[str, Any], key: bytes | None) -> str:
    body = _canonical(stored)
    if stored["alg"] == _HMAC:
        if key is None:
            raise ValueError("an HMAC chain needs the key")
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


def linked_row(record: AuditRecord, chain: str, head: Head | None, key: bytes | None) -> dict[str, Any]:
    """What a chaining store writes for ``record`` as the next record of ``chain`` after ``head``
    (``None``: the chain's first): its stored form (``AuditRecord.stored_json``) with ``chain``,
    ``seq``, ``prev``, ``alg`` and ``hash`` set."""
    seq, prev = (head[0] + 1, head[1]) if head is not None else (1, None)
    row = record.stored_json()
    row.update(chain=chain, seq=seq, prev=prev, hash=None, alg=_HMAC if key is not None else _SHA)
    row["hash"] = _digest(row, key)
    return row


@dataclass(frozen=True)
class Problem:
    """The first break found in one chain."""

    chain: str
    kind: Kind
    position: int
    """1-based position of the record among all the records read, in stored order."""
    record_id: str
    seq: int | None
    detail: str

    def __str__(self) -> str:
        return f"record {self.position} (chain {self.chain}, seq {self.seq}, id {self.record_id}): {self.kind}: " \
               f"{self.detail}"


@dataclass
class Verification:
    """What ``verify`` found.

    Attributes:
        records: records read.
        chains: chains found.
        unchained: records written before chaining (never rejected).
        unchecked: keyed records whose hash could not be checked (no key given).
        problems: the first break of each broken chain, in stored order.
        unreadable: the numbers of a file's lines that could not be read as records (a crash
            mid-write leaves one torn line; anything else was not written by the bridge).
        status: record id -> ``ok``, ``unchained``, ``unchecked`` or ``broken`` (the record a
            chain breaks at and every later one of that chain).
    """

    records: int = 0
    chains: int = 0
    unchained: int = 0
    unchecked: int = 0
    problems: list[Problem] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)
    unreadable: list[int] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """No chain is broken (keyed records may still be unchecked)."""
        return not self.problems

    def summary(self) -> str:
        """One line: what was checked."""
        parts = [f"{self.records} record{'s' if self.records != 1 else ''} in {self.chains} "
                 f"chain{'s' if self.chains != 1 else ''}"]
        if self.unchained:
            parts.append(f"{self.unchained} unchained (written before records were chained)")
        if self.unchecked:
            parts.append(f"{self.unchecked} keyed but not checked (set {KEY_ENV})")
        if self.unreadable:
            shown = ", ".join(map(str, self.unreadable[:5])) + (", ..." if len(self.unreadable) > 5 else "")
            parts.append(f"{len(self.unreadable)} unreadable line{'s' if len(self.unreadable) != 1 else ''} "
                         f"skipped ({shown})")
        return ", ".join(parts)


class _Walk:
    """One chain, record by record, in stored order."""

    def __init__(self, name: str, seqs: list[int | None], key: bytes | None, report: Verification) -> None:
        self.name = name
        self.seqs = seqs
        self.key = key
        self.report = report
        self.index = 0
        self.expected = 1
        self.last: str | None = None
        self.keyed = False
        self.seen: set[int] = set()
        self.broken = False

    def step(self, record: AuditRecord, position: int) -> None:
        if self.broken:
            self.report.status[record.record_id] = "broken"
            return
        problem = self._check(record)
        self.index += 1
        if problem is not None:
            kind, detail = problem
            self.broken = True
            self.report.status[record.record_id] = "broken"
            self.report.problems.append(Problem(self.name, kind, position, record.record_id, record.seq, detail))
            return
        assert record.seq is not None
        self.seen.add(record.seq)
        self.expected = record.seq + 1
        self.last = record.hash

    def _check(self, r: AuditRecord) -> tuple[Kind, str] | None:
        seq = r.seq if isinstance(r.seq, int) else -1
        if seq != self.expected:
            return self._out_of_place(seq)
        if r.prev != self.last:
            return "inserted", "it does not follow the record before it (its link to the previous hash differs)"
        if r.alg == _HMAC:
            self.keyed = True
            if self.key is None:
                self.report.unchecked += 1
                self.report.status[r.record_id] = "unchecked"
                return None
        elif r.alg != _SHA:
            return "edited", f"unknown hash algorithm {r.alg!r}"
        elif self.keyed or self.key is not None:
            return "inserted", "a record hashed without the key in a keyed chain (forged without the key)"
        if not r.hash or not hmac.compare_digest(digest(r, self.key), r.hash):
            return "edited", "its content does not match its hash (edited, or forged without the key)"
        self.report.status[r.record_id] = "ok"
        return None

    def _out_of_place(self, seq: int) -> tuple[Kind, str]:
        later = self.seqs[self.index + 1:]
        if seq in self.seen:
            return "inserted", f"a second record numbered {seq}"
        if seq > self.expected:
            if self.expected in later:
                return "reordered", f"record {self.expected} of this chain comes after it"
            missing = f"{self.expected}" if seq == self.expected + 1 else f"{self.expected} to {seq - 1}"
            return "deleted", f"the chain's record{'s' if seq > self.expected + 1 else ''} {missing} " \
                              f"{'are' if seq > self.expected + 1 else 'is'} missing before it"
        if seq < 1:
            return "edited", "it has no valid sequence number"
        return "reordered", f"it is numbered {seq} but comes after record {self.expected - 1}"


def verify(stored: Iterable[AuditRecord], key: bytes | None = None) -> Verification:
    """Check every chain in ``stored`` (records in stored order, as ``entries()`` gives them).

    Args:
        key: the HMAC key; without it keyed records are checked for their links only and
            counted as ``unchecked``.
    """
    records = list(stored)
    report = Verification(records=len(records))
    chains: dict[str, list[int | None]] = {}
    for r in records:
        if r.seq is not None or r.hash is not None:
            chains.setdefault(r.chain or FILE_CHAIN, []).append(r.seq)
    walks = {name: _Walk(name, seqs, key, report) for name, seqs in chains.items()}
    report.chains = len(walks)
    chained_seen = False
    for position, r in enumerate(records, 1):
        if r.seq is None and r.hash is None:
            if chained_seen:
                # Records from before chaining only ever come first; one after is an insertion.
                report.status[r.record_id] = "broken"
                report.problems.append(Problem(r.chain or FILE_CHAIN, "inserted", position, r.record_id, None,
                                               "an unchained record after chained ones"))
            else:
                report.unchained += 1
                report.status[r.record_id] = "unchained"
            continue
        chained_seen = True
        walks[r.chain or FILE_CHAIN].step(r, position)
    return report


def status_of(report: Verification, records: Iterable[AuditRecord]) -> list[AuditRecord]:
    """``records`` with their ``chain_status`` from ``report``."""
    return [replace(r, chain_status=report.status.get(r.record_id)) for r in records]


def head_of(records: Mapping[str, Any] | None) -> Head | None:
    """A head from a stored row's ``seq`` and ``hash`` (``None`` when the row is unchained or missing)."""
    if not records or records.get("seq") is None or not records.get("hash"):
        return None
    return int(records["seq"]), str(records["hash"])
