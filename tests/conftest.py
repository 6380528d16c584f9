"""Shared pytest fixtures, defined once here and injected by name; plain helper functions are in
``helpers.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import SECURED_PASSWORD, SECURED_ROLE, http_server

from fixtures.postgres import PostgresUnavailable, TempPostgres

# The suite starts hundreds of interpreters (CLI runs, fixture servers, examples, .venv-metagpt, whose
# packages are installed uncompiled); with PYTHONDONTWRITEBYTECODE set machine-wide, each would compile
# from source every module it imports (MetaGPT's import alone: ~12 s of CPU instead of ~5 s).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, in the controller: hand each worker this run's environment."""
    node.workerinput["environ"] = dict(os.environ)


def pytest_configure(config: pytest.Config) -> None:
    """In an xdist worker, the environment is the run's own again: a worker is started with the
    controller's C-level environment, where ``import readline`` (pytest's capture plugin does it)
    has put ``COLUMNS=80`` and ``LINES=24`` that ``os.environ`` never showed; tests of output at the
    natural width (no ``COLUMNS``) would see 80 columns in a worker and pass alone."""
    environ = getattr(config, "workerinput", {}).get("environ")
    if environ is None:
        return
    for name in set(os.environ) - set(environ):
        if not name.startswith("PYTEST_XDIST_"):
            del os.environ[name]
    os.environ.update(environ)


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
