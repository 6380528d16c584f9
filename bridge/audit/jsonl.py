"""``JsonlAuditLog``: one JSON object per line, appended, in one hash chain per file."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from .chain import FILE_CHAIN, Head, audit_key, head_of, linked_row
from .records import AuditRecord, matches, merge
from .writer import Writer

__all__ = ["JsonlAuditLog"]

logger = logging.getLogger("bridge.audit")


class JsonlAuditLog:
    """Appends one JSON object per line. Each record is a single ``write`` of a whole line on a
    file opened for appending, so concurrent writers (threads or processes) never interleave
    within a record.

    Appending never rewrites the file, so a repeated ``append`` of one record adds a second
    line; ``records()`` returns each ``record_id`` once (the first line wins).

    Every line extends the file's hash chain (``bridge.audit.chain``): the last line is read and
    the new one written under an exclusive lock on the file (``flock``), so threads and processes
    appending at once keep one unbroken chain.
    """

    kind = "jsonl"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # The head this object wrote last, and the file size right after: when the size is still
        # that, nobody appended since and the head need not be read back.
        self._head: tuple[int, Head | None] | None = None
        self._writer = Writer(self.write, f"audit writer {self.path.name}")

    @property
    def location(self) -> str:
        """Where the records are, for messages."""
        return str(self.path)

    async def append(self, record: AuditRecord) -> None:
        """Append one line (on this log's writer thread), secrets masked (``AuditRecord.masked``), chained."""
        await self._writer.run(record.masked())

    def write(self, record: AuditRecord) -> None:
        """``append`` on the calling thread (it blocks on the disk and the file lock)."""
        record = record.masked()
        key = audit_key()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                head = self._head[1] if self._head is not None and self._head[0] == size else _last_head(fd, size)
                row = linked_row(record, FILE_CHAIN, head, key)
                data = (json.dumps(row, ensure_ascii=False, default=str, separators=(",", ":")) + "\n").encode("utf-8")
                if size and _last_byte(fd, size) != b"\n":
                    # A torn last line (a writer killed mid-write) must not swallow this record.
                    data = b"\n" + data
                os.write(fd, data)
                self._head = (size + len(data), (row["seq"], row["hash"]))
            finally:
                os.close(fd)  # releases the lock

    def records(self, *, agent: str | None = None, tool: str | None = None,
                since: datetime | None = None) -> list[AuditRecord]:
        """One record per call (``merge``), in file order; unreadable lines are skipped with a warning."""
        return [r for r in merge(self.entries()) if matches(r, agent, tool, since)]

    def entries(self) -> list[AuditRecord]:
        """Every record as stored, in file order (a repeated ``record_id`` once: the first line);
        unreadable lines are skipped with a warning."""
        return self.scan()[0]

    def scan(self) -> tuple[list[AuditRecord], list[int]]:
        """``entries()``, and the numbers of the lines that could not be read as a record."""
        if not self.path.exists():
            return [], []
        out = []
        unreadable = []
        seen: set[str] = set()
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = AuditRecord.from_json(json.loads(line))
                except (ValueError, TypeError) as e:
                    # A torn last line (a crash mid-write) must not hide the rest of the trail.
                    logger.warning("%s:%d: skipping unreadable audit record (%s)", self.path, n, e)
                    unreadable.append(n)
                    continue
                if record.record_id in seen:
                    continue
                seen.add(record.record_id)
                out.append(record)
        return out, unreadable

    def close(self) -> None:
        """End the writer thread once the writes handed to it are done (no file stays open between writes)."""
        self._writer.close()

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs."""
        return {"type": self.kind, "path": str(self.path)}

    def __repr__(self) -> str:
        return f"JsonlAuditLog({str(self.path)!r})"


_TAIL = 65536


def _last_byte(fd: int, size: int) -> bytes:
    return os.pread(fd, 1, size - 1)


def _last_head(fd: int, size: int) -> Head | None:
    """The chain head: the last chained line of the file (``None`` for an empty or unchained file)."""
    end = size
    carry = b""
    while end > 0:
        start = max(0, end - _TAIL)
        chunk = os.pread(fd, end - start, start) + carry
        lines = chunk.split(b"\n")
        # The first piece may be a partial line unless this chunk reaches the file's start.
        carry, complete = (lines[0], lines[1:]) if start > 0 else (b"", lines)
        for line in reversed(complete):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                continue  # a torn line: the chain goes on from the last whole one
            if isinstance(data, dict):
                return head_of(data)
        end = start
    return None
