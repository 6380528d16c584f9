"""``JsonlAuditLog``: one JSON object per line, appended."""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from .records import AuditRecord, matches

__all__ = ["JsonlAuditLog"]

logger = logging.getLogger("bridge.audit")


class JsonlAuditLog:
    """Appends one JSON object per line. Each record is a single ``write`` of a whole line on a
    file opened for appending, so concurrent writers (threads or processes) never interleave
    within a record.

    Appending never rewrites the file, so a repeated ``append`` of one record adds a second
    line; ``records()`` returns each ``record_id`` once (the first line wins).
    """

    kind = "jsonl"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        """Where the records are, for messages."""
        return str(self.path)

    async def append(self, record: AuditRecord) -> None:
        """Append one line (on a worker thread), secrets masked (``AuditRecord.masked``)."""
        line = json.dumps(record.masked().to_json(), ensure_ascii=False, default=str, separators=(",", ":")) + "\n"
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
        seen: set[str] = set()
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
                if record.record_id in seen:
                    continue
                seen.add(record.record_id)
                if matches(record, agent, tool, since):
                    out.append(record)
        return out

    def close(self) -> None:
        """Nothing stays open between writes."""

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs."""
        return {"type": self.kind, "path": str(self.path)}

    def __repr__(self) -> str:
        return f"JsonlAuditLog({str(self.path)!r})"
