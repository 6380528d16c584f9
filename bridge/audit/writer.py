"""``Writer``: the one thread a store writes on, so the event loop never waits on the disk, the
network or another process's lock.

A store's writes are serial anyway (one chain, one head at a time), so one thread that takes
them in order from a queue is all they need, and handing a write to it costs about half of what
``anyio.to_thread.run_sync`` does (measured in ``benchmarks/bench_audit.py``). The thread starts
with the first write, ends after a few idle seconds or at ``close()``, and in a forked child a
new one starts; any event loop in any thread may hand it writes, and each is woken when its own
write is done. Under an async library other than asyncio, writes go to anyio's worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio

__all__ = ["Writer"]

T = TypeVar("T")
R = TypeVar("R")

_IDLE = 5.0
"""Seconds without a write after which the thread ends (the next write starts another)."""

_Job = tuple[Callable[[Any], Any], Any, asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class Writer(Generic[T, R]):
    """Runs ``write`` for each record handed to ``run``, one at a time, in the order handed.

    Args:
        write: the store's blocking write.
        name: the thread's name (for debuggers and ``threading.enumerate``).
    """

    def __init__(self, write: Callable[[T], R], name: str) -> None:
        self._write = write
        self._name = name
        self._lock = threading.Lock()
        # The running thread's queue (``None``: no thread), and the process that started it.
        self._jobs: queue.SimpleQueue[_Job | None] | None = None
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    async def run(self, item: T) -> R:
        """``write(item)`` on the writer thread; waits for it even when cancelled (a write once
        handed over happens, and its error is the caller's to see)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return await anyio.to_thread.run_sync(self._write, item)
        future: asyncio.Future[R] = loop.create_future()
        self._submit((self._write, item, loop, future))
        with anyio.CancelScope(shield=True):
            result = await future
        return result

    def _submit(self, job: _Job) -> None:
        with self._lock:
            if self._jobs is None or self._pid != os.getpid():
                self._jobs, self._pid = queue.SimpleQueue(), os.getpid()
                self._thread = threading.Thread(target=self._serve, args=(self._jobs,), name=self._name, daemon=True)
                self._thread.start()
            self._jobs.put(job)

    def _serve(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        while True:
            try:
                job = jobs.get(timeout=_IDLE)
            except queue.Empty:
                with self._lock:
                    # Checked under the lock ``_submit`` holds: a write handed over meanwhile is taken.
                    if jobs.empty():
                        if self._jobs is jobs:
                            self._jobs = self._thread = None
                        return
                continue
            if job is None:
                return
            write, item, loop, future = job
            try:
                result, error = write(item), None
            except BaseException as e:
                result, error = None, e
            # A closed event loop refuses the call: nobody waits for this write any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, result, error)
            del job, item, result, error

    def close(self) -> None:
        """Let the writes already handed over finish, then end the thread (a later write starts another)."""
        with self._lock:
            jobs, thread = self._jobs, self._thread
            self._jobs = self._thread = None
            if jobs is not None and self._pid == os.getpid():
                jobs.put(None)
            else:
                thread = None
        if thread is not None and thread is not threading.current_thread():
            thread.join()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
