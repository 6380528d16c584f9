"""Leak checks for reliability tests: child processes, asyncio tasks and file descriptors."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

import anyio
import psutil
from helpers import children_of

T = TypeVar("T")


class Baseline:
    """What the test process holds now; ``assert_back`` waits (bounded) until it holds no more.

    Take it inside the running event loop, before the code under test starts anything.
    """

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.children = set(children_of(os.getpid()))
        self.tasks = set(asyncio.all_tasks())
        self.fds = self._proc.num_fds()

    def _extra(self, allow: Iterable[int] = ()) -> tuple[set[int], set[asyncio.Task[object]], int]:
        gc.collect()
        children = set(children_of(os.getpid())) - self.children - set(allow)
        tasks = {t for t in asyncio.all_tasks() - self.tasks if not t.done()}
        return children, tasks, self._proc.num_fds() - self.fds

    async def assert_back(self, within: float = 5.0, allow: Iterable[int] = ()) -> None:
        """Raises AssertionError naming what is still there after ``within`` seconds.

        ``allow``: process ids the test itself started meanwhile (e.g. a restarted server).
        """
        with anyio.move_on_after(within):
            while True:
                children, tasks, fds = self._extra(allow)
                if not children and not tasks and fds <= 0:
                    return
                await anyio.sleep(0.05)
        children, tasks, fds = self._extra(allow)
        assert not children, f"leaked processes: {[psutil.Process(p).cmdline() for p in children]}"
        assert not tasks, f"leaked tasks: {[t.get_coro() for t in tasks]}"
        assert fds <= 0, f"leaked {fds} file descriptor(s)"


@asynccontextmanager
async def leak_checked(cm: AbstractAsyncContextManager[T], within: float = 5.0) -> AsyncIterator[T]:
    """Enter ``cm`` (e.g. ``connect(...)``); after it exits, assert everything it started is gone."""
    baseline = Baseline()
    async with cm as value:
        yield value
    await baseline.assert_back(within)
