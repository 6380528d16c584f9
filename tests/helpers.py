"""Test helpers every test module imports (``from helpers import ...``): real fixture servers as
subprocesses, on 127.0.0.1 only, and bounded waits. Shared pytest fixtures live in ``conftest.py``."""

from __future__ import annotations

import inspect
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


async def until(predicate: Callable[[], bool | Awaitable[bool]], what: str, limit: float = 60.0) -> None:
    """Wait for something the test itself set in motion (``predicate`` may be async); the limit only
    turns a hang into a named failure."""
    with anyio.move_on_after(limit):
        while True:
            done = predicate()
            if await done if inspect.isawaitable(done) else done:
                return
            await anyio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def module_cmd(module: str, *args: str) -> list[str]:
    """argv that runs ``python -m module args`` from the repo root (fixtures are not installed)."""
    return [PY, "-m", module, *args]


def fixture_env(**extra: str) -> dict[str, str]:
    """Environment for a fixture server subprocess: importable from the repo root."""
    env = {"PYTHONPATH": str(ROOT)}
    env.update(extra)
    return env


@contextmanager
def http_server(module: str, *args: str, transport: str = "http", env: dict[str, str] | None = None,
                timeout: float = 20.0) -> Iterator[str]:
    """Start ``python -m module --transport T --port 0 ...`` and yield its URL; always stopped after."""
    full_env = {**os.environ, **fixture_env(), **(env or {})}
    proc = subprocess.Popen(
        [PY, "-m", module, "--transport", transport, "--port", "0", *args],
        cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = _await_listening(proc, timeout)
        yield url
    finally:
        stop_process(proc)


def _await_listening(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {''.join(lines)[-2000:]}")
            continue
        lines.append(line)
        m = re.search(r"LISTENING (http://\S+)", line)
        if m:
            return m.group(1)
    raise RuntimeError(f"server did not report LISTENING within {timeout}s: {''.join(lines)[-2000:]}")


def stop_process(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stderr is not None:
        proc.stderr.close()


def children_of(pid: int) -> Sequence[int]:
    """Live child process ids (for leak checks)."""
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


def canonical(value: Any) -> str:
    """``value`` as sorted JSON: ``==`` would take True for 1 and 1.0 for 1, and the wire must keep
    each JSON type as listed."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


SECURED_ROLE = "secured"
SECURED_PASSWORD = "pg-S3cret@word-9137"
"""The test PostgreSQL's one role that logs in with a password (an ``@`` in it, so a URL spells it
percent-encoded and both spellings must stay hidden); every other role is trusted."""


def status_of(db: Path, rid: int) -> tuple[str, str | None]:
    """The status and reviewer of approval request ``rid`` in the SQLite queue ``db``."""
    from bridge.approvals.sqlite import SqliteApprovalStore

    async def go() -> tuple[str, str | None]:
        store = SqliteApprovalStore(db)
        try:
            request = await store.get(rid)
            return request.status, request.reviewer
        finally:
            await store.aclose()

    return anyio.run(go)
