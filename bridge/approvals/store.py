"""The ``ApprovalStore`` protocol every queue store implements, its errors, and how calls wait.

Errors::

    BridgeError
    └── ApprovalError            base of the queue's errors (the CLI exits 1 on each)
        ├── UnknownRequest       no request has that id
        ├── AlreadyDecided       the request is no longer pending (decided, expired, cancelled)
        └── StoreUnavailable     the store cannot be opened or read (names it, password masked)

Every store method is atomic on its own: ``decide`` changes a request only while it is pending
and unexpired, and ``consume``/``claim`` set ``consumed`` only where it is unset, in one
statement or transaction, so two processes can never both decide a request or both use one
decision.

Waiting (``Waiters``): many calls of one process may wait at once (100 pending requests from
10 agents). Instead of each polling the store, one of them at a time *reads the news* for all
(the store's ``news``: PostgreSQL's LISTEN/NOTIFY, or one poll of SQLite) and wakes the ones
whose requests changed; when it is done, it hands the reading on. No thread is held while
waiting, and a decision reaches its call within one read. A store that becomes unavailable
meanwhile (PostgreSQL restarted, its connections cut) is tried again until the deadline: the
requests are durable, so a call keeps waiting for its decision rather than failing at once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol, runtime_checkable

import anyio

from ..errors import BridgeError
from .requests import ApprovalRequest, Status

__all__ = [
    "AlreadyDecided",
    "ApprovalError",
    "ApprovalStore",
    "StoreUnavailable",
    "UnknownRequest",
    "Waiters",
    "deadline_for",
]

logger = logging.getLogger("bridge.approvals")


class ApprovalError(BridgeError):
    """Base of the approval queue's errors."""


class UnknownRequest(ApprovalError):
    """No request has that id."""


class AlreadyDecided(ApprovalError):
    """The request is no longer pending."""


class StoreUnavailable(ApprovalError):
    """The store cannot be opened or read."""


@runtime_checkable
class ApprovalStore(Protocol):
    """Where requests wait for a decision; shared by the waiting calls and every reviewer.

    ``location`` names the store in messages (a URL's password masked); ``waiters`` are the
    calls of this process waiting on it.
    """

    location: str
    waiters: Waiters

    async def submit(self, request: ApprovalRequest, *, duplicate_window: float) -> ApprovalRequest:
        """Store a new pending request and return it with its id, and ``duplicate_of`` set to the
        newest pending or approved request sharing its ``duplicate_key`` created within
        ``duplicate_window`` seconds."""
        ...

    async def get(self, request_id: int) -> ApprovalRequest:
        """The request (a pending one past its expiry is marked expired first).

        Raises:
            UnknownRequest: no such id.
        """
        ...

    async def list(self, *, statuses: Collection[Status] = (), after: int = 0, limit: int = 100,
                   oldest_first: bool = False) -> list[ApprovalRequest]:
        """Requests with id > ``after`` (any status when ``statuses`` is empty), newest first (or
        oldest first: the pending that expire first, or the next page after ``after``), at most
        ``limit``; pending requests past their expiry are marked expired first."""
        ...

    async def decide(self, request_id: int, approved: bool, reviewer: str, reason: str = "") -> ApprovalRequest:
        """Approve or deny a pending, unexpired request; wakes the call waiting on it.

        Raises:
            UnknownRequest: no such id.
            AlreadyDecided: it was decided, expired or cancelled already.
        """
        ...

    async def settle(self, request_id: int, status: Status, reason: str) -> ApprovalRequest:
        """End a request that is still pending as ``expired`` or ``cancelled`` (by the waiting
        call); a request decided meanwhile is returned as it is."""
        ...

    async def consume(self, request_id: int) -> bool:
        """Mark a decided request used; False when a call already used it."""
        ...

    async def claim(self, agent: str | None, server: str, tool: str, arguments_sha256: str) -> ApprovalRequest | None:
        """Use the oldest decided, unused, unexpired request of exactly this agent, server, tool
        and argument hash (one decided while its process was down), or None."""
        ...

    async def changed(self, ids: Collection[int], seconds: float) -> set[int]:
        """Wait up to ``seconds`` for news of ``ids`` (may return early); the ids whose status
        may have changed."""
        ...

    async def aclose(self) -> None:
        """Close the store's connections (a later call reopens them)."""
        ...


class Waiters:
    """Calls of one process waiting on requests of one store; one of them at a time reads the
    store's news (``read``) for all and wakes the others (see the module docstring).

    Args:
        read: ``ApprovalStore.changed``.
        slice: the longest single read; a waiter re-reads its request at least this often.
    """

    def __init__(self, read: Callable[[Collection[int], float], Awaitable[set[int]]], slice: float) -> None:
        self._read = read
        self._slice = slice
        self._events: dict[int, anyio.Event] = {}
        self._reading = False

    async def wait(self, request_id: int, deadline: float, fetch: Callable[[], Awaitable[ApprovalRequest]]
                   ) -> ApprovalRequest:
        """Wait until ``fetch()`` answers a request that is no longer pending, or until the
        monotonic ``deadline``; returns the last answer either way."""
        self._events.setdefault(request_id, anyio.Event())
        failing = False
        try:
            while True:
                try:
                    request = await fetch()
                    failing = False
                    remaining = deadline - time.monotonic()
                    if request.status != "pending" or remaining <= 0:
                        return request
                    await self._next(request_id, min(self._slice, remaining))
                except StoreUnavailable as e:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise
                    if not failing:  # once per outage, not once per try
                        logger.warning("approval request #%s: %s; trying again until it expires", request_id, e)
                    failing = True
                    await anyio.sleep(min(self._slice, remaining))
        finally:
            self._events.pop(request_id, None)
            self._hand_on()

    async def _next(self, request_id: int, seconds: float) -> None:
        event = self._events[request_id]
        if event.is_set():
            self._events[request_id] = anyio.Event()
            return
        if self._reading:
            with anyio.move_on_after(seconds):
                await event.wait()
            if event.is_set():
                self._events[request_id] = anyio.Event()
            return
        self._reading = True
        try:
            for changed in await self._read(list(self._events), seconds):
                if changed in self._events:
                    self._events[changed].set()
        finally:
            self._reading = False

    def _hand_on(self) -> None:
        # The reader is gone (its request changed, or it left): wake one waiter to read next.
        if not self._reading and self._events:
            next(iter(self._events.values())).set()


def deadline_for(expires: float) -> float:
    """Monotonic deadline for an epoch-seconds expiry (the wall clock only sets it)."""
    left = expires - time.time()
    return time.monotonic() + (left if math.isfinite(left) else 365 * 86400.0)
