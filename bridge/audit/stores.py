"""``open_audit_log``: which store a path or URL names; ``hold_audit_log``: that store held open by an owner.

A store object connects on its first write and stays connected until ``close()``. Who closes it
is whoever owns the lifetime it serves: ``hold_audit_log`` puts it in an owner's ``Resources``
(a connection's), shared by everything that names the same file or URL there.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from ..resources import Resources
from .jsonl import JsonlAuditLog
from .postgres import PostgresAuditLog, is_postgres_url
from .records import AuditLog
from .sqlite import SqliteAuditLog

__all__ = ["AuditDestination", "LogType", "close_audit_log", "hold_audit_log", "open_audit_log"]

LogType = Literal["jsonl", "sqlite", "postgres"]

AuditDestination = AuditLog | str | os.PathLike[str]
"""Where records go: a store object, or a path or URL for ``open_audit_log``."""

_SQLITE_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".db3"}
_SQLITE_MAGIC = b"SQLite format 3\x00"


def open_audit_log(path: str | os.PathLike[str], kind: LogType | None = None) -> AuditLog:
    """An audit log at ``path``: PostgreSQL for a ``postgresql://`` (or ``postgres://``) URL;
    SQLite when ``kind="sqlite"``, the file already is one, or the name ends in
    ``.db``/``.sqlite``/``.sqlite3``; JSONL otherwise. Not connected yet: it connects on first
    use and stays so until ``close()`` (``hold_audit_log`` has an owner close it).

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


def hold_audit_log(resources: Resources, where: AuditDestination) -> tuple[AuditLog, Hashable]:
    """The store ``where`` names, held open in ``resources`` until the key returned is released
    (``resources.release(key)``) or the owner closes: one store per file (by its real path) or
    URL (as written), however many hold it; a store object is held as itself.

    Raises:
        ConfigError: as ``open_audit_log``.
    """
    if isinstance(where, AuditLog):
        key: Hashable = ("store", id(where))
        log = where
        return resources.acquire(key, lambda: log, close_audit_log), key
    text = os.fspath(where)
    key = ("url", text.strip()) if is_postgres_url(text) else ("file", os.path.realpath(text))
    return resources.acquire(key, lambda: open_audit_log(text), close_audit_log), key


def close_audit_log(log: AuditLog) -> None:
    """Close ``log``'s connections, when it keeps any (it reconnects if used again)."""
    close = getattr(log, "close", None)
    if callable(close):
        close()
