"""The sandbox programs run in: pydantic-monty's worker pool, loaded on first use, driven from a thread.

Monty runs Python in ``monty`` worker subprocesses (no filesystem, no network, no imports beyond
its own small standard set). Each program gets a fresh session (``checkout``) and is driven with
``feed_start``/``resume``: every external call the program makes pauses it and comes back here as
a snapshot, which the host answers.

Why the sync interface on a worker thread, not ``AsyncMonty``: ``AsyncMonty``'s tokio worker
threads call into Python on their own (to wake the asyncio loop: ``call_soon_threadsafe`` writes its
self-pipe socket). When one does so while the interpreter finalizes, CPython (before 3.14) ends
that thread with ``pthread_exit`` on taking the GIL, and the forced unwind through Rust frames
aborts the process: SIGABRT at exit, closed pool or not (seen under gdb; 4-12 of 40 runs with
``scripts/monty_exit_cycles.py --interface async``). The sync session never calls into Python
from a thread of its own: output goes to a native ``CollectString``, external calls come back as
snapshots on the thread that drives them. Every call into it here goes through
``anyio.to_thread`` (the event loop never blocks), and the pool is closed by an ``atexit`` hook.
``scripts/monty_exit_cycles.py`` proves the exit path over 200 start/stop cycles.

Cancellation: a turn that is running in the worker cannot be interrupted from Python, so
``kill()`` ends the worker process (the pool replaces it); the blocked thread then returns.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import signal
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

import anyio

from ..errors import ConfigError

__all__ = ["INSTALL_HINT", "Sandbox", "monty", "shared_pool"]

INSTALL_HINT = "code mode needs the sandbox: pip install 'autogen-mcp-bridge[code]'"

T = TypeVar("T")

_lock = threading.Lock()
_pool: Any = None


def monty() -> ModuleType:
    """``pydantic_monty``, imported on first use.

    Raises:
        ConfigError: it is not installed (says how to install it).
    """
    try:
        return importlib.import_module("pydantic_monty")
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None


def shared_pool() -> Any:
    """The process-wide worker pool (one warm worker, more on demand), closed at exit."""
    global _pool
    with _lock:
        if _pool is None:
            pool = monty().Monty(min_processes=1, max_processes=max(2, os.cpu_count() or 2))
            pool.__enter__()
            _pool = pool
            atexit.register(close_pool)
        return _pool


def close_pool() -> None:
    """Stop the workers (registered with ``atexit``; safe to call again)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.__exit__(None, None, None)


class Sandbox:
    """One program's session: opened by ``open``, driven turn by turn off the event loop, then closed.

    Args:
        limits: Monty ``ResourceLimits``.
        stubs: type-check the program against these (``None``: no type check).
    """

    def __init__(self, limits: dict[str, Any], stubs: str | None) -> None:
        self.limits = limits
        self.stubs = stubs
        self.session: Any = None
        self.pid: int | None = None
        self.killed = False

    async def open(self) -> None:
        pool = await anyio.to_thread.run_sync(shared_pool)
        session = pool.checkout(script_name="program.py", limits=self.limits, type_check=self.stubs is not None,
                                type_check_stubs=self.stubs, type_check_format="concise")
        await anyio.to_thread.run_sync(session.__enter__)
        self.session = session
        self.pid = session.worker_pid

    async def turn(self, step: Callable[[], T]) -> T:
        """Run ``step`` (one blocking call into the session) on a worker thread; when the caller is
        cancelled meanwhile, the worker is killed so the thread comes back at once."""
        try:
            return await anyio.to_thread.run_sync(step, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            self.kill()
            raise

    def kill(self) -> None:
        """End the worker process mid-turn (the pool starts another)."""
        if self.pid is not None and not self.killed:
            self.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    async def close(self) -> None:
        """Give the session back (its worker is reset, or replaced if it was killed); never raises."""
        session, self.session = self.session, None
        if session is None:
            return
        # A killed worker's session reports its crash here: already known.
        with anyio.CancelScope(shield=True), anyio.move_on_after(10), contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(session.__exit__, None, None, None)
