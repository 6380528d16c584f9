"""Shared pytest fixtures, defined once here and injected by name; plain helper functions are in
``helpers.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import SECURED_PASSWORD, SECURED_ROLE, http_server

from fixtures.postgres import PostgresUnavailable, TempPostgres


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def zoo_url() -> Iterator[str]:
    """One schema zoo over Streamable HTTP per test module (its echo tools keep no state); each
    test opens its own session."""
    with http_server("fixtures.schema_zoo", transport="http") as url:
        yield url


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A freshly seeded MultiMail database file (seeded here so server processes never race to create it)."""
    from fixtures.multimail.seed import open_store

    path = tmp_path / "multimail.sqlite3"
    open_store(path).close()
    return path


@pytest.fixture(scope="module")
def postgres() -> Iterator[TempPostgres]:
    """A throwaway PostgreSQL server per test module (tests make databases of their own in it,
    ``new_database``); one role needs a password (``SECURED_ROLE``, owning ``secured_audit``), the
    rest are trusted. A machine without PostgreSQL's programs fails these tests, never skips them."""
    import psycopg

    server = TempPostgres(hba=[f"host all {SECURED_ROLE} 127.0.0.1/32 scram-sha-256"])
    try:
        server.start()
    except PostgresUnavailable as e:
        pytest.fail(f"PostgreSQL for the tests: {e}", pytrace=False)
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {SECURED_ROLE} LOGIN PASSWORD '{SECURED_PASSWORD}'")
            conn.execute(f"CREATE DATABASE secured_audit OWNER {SECURED_ROLE}")
        yield server
    finally:
        server.stop()
