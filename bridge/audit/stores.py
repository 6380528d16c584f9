"""``open_audit_log``: which store a path or URL names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from .jsonl import JsonlAuditLog
from .postgres import PostgresAuditLog, is_postgres_url
from .records import AuditLog
from .sqlite import SqliteAuditLog

__all__ = ["LogType", "open_audit_log"]

LogType = Literal["jsonl", "sqlite", "postgres"]

_SQLITE_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".db3"}
_SQLITE_MAGIC = b"SQLite format 3\x00"


def open_audit_log(path: str | os.PathLike[str], kind: LogType | None = None) -> AuditLog:
    """An audit log at ``path``: PostgreSQL for a ``postgresql://`` (or ``postgres://``) URL;
    SQLite when ``kind="sqlite"``, the file already is one, or the name ends in
    ``.db``/``.sqlite``/``.sqlite3``; JSONL otherwise.

    Raises:
        ConfigError: an unknown ``kind``, a malformed URL, or psycopg missing for a URL.
    """
    if kind == "postgres" or (kind is None and is_postgres_url(path)):
        return PostgresAuditLog(os.fspath(path))
    p = Path(path)
    if kind is None:
        kind = "sqlite" if _looks_sqlite(p) else "jsonl"
    if kind == "sqlite":
        return SqliteAuditLog(p)
    if kind == "jsonl":
        return JsonlAuditLog(p)
    raise ConfigError(f"unknown audit log type {kind!r}; use 'jsonl', 'sqlite' or 'postgres'")


def _looks_sqlite(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if head:
            return head == _SQLITE_MAGIC
    except OSError:
        pass
    return p.suffix.lower() in _SQLITE_SUFFIXES
