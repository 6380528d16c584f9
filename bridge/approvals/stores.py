"""``open_approval_store``: which store a path or URL names."""

from __future__ import annotations

import os

from ..audit.postgres import is_postgres_url
from .postgres import PostgresApprovalStore
from .sqlite import SqliteApprovalStore
from .store import ApprovalStore

__all__ = ["open_approval_store"]


def open_approval_store(where: str | os.PathLike[str], *, create: bool = True) -> ApprovalStore:
    """The approval store at ``where``: PostgreSQL for a ``postgresql://`` URL, else a SQLite file.

    Nothing is opened yet (the first call does). ``create=False``: a missing SQLite file is an
    error rather than a new, empty queue (for reviewers, who must name the agents' store).

    Raises:
        ConfigError: a malformed URL, or psycopg missing for a URL.
    """
    if is_postgres_url(where):
        return PostgresApprovalStore(os.fspath(where))
    return SqliteApprovalStore(where, create=create)
