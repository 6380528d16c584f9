"""Task ownership and cancellation: ``Held`` owns a long-lived context; ``linked_to`` links a token.

One task owns each long-lived context: ``Held`` enters it, keeps it open, and leaves it.

anyio requires a task group (every transport and SDK client has some) to be left by the task
that entered it. A session's connection generation, a server of a group and a connection in
the process-wide registry all outlive the call that opened them, so each is entered by a task
of its own that waits until told to close. ``Held`` is that task's body, written once.

```python
held = Held(connection, name="mail")
value = await task_group.start(held.run)     # raises what entering raised
...
held.close(); await held.closed.wait()
```
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from typing import Any, Generic, Protocol, TypeVar

import anyio
import anyio.abc

__all__ = ["CancellationSource", "Held", "linked_to"]

T = TypeVar("T")


class Held(Generic[T]):
    """An async context manager held open by one task until ``close()``.

    Attributes:
        ready: set once entering finished, successfully or not.
        closed: set once the context was left (or never entered).
        error: what entering raised, for owners that did not use ``task_group.start``.
    """

    def __init__(self, context: AbstractAsyncContextManager[T], *, name: str = "") -> None:
        self.context = context
        self.name = name
        self.ready = anyio.Event()
        self.closed = anyio.Event()
        self.error: BaseException | None = None
        self.opened = False
        self._stop = anyio.Event()

    def close(self) -> None:
        """Ask the owning task to leave the context (returns at once)."""
        self._stop.set()

    async def run(self, *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
        """The owning task's body: enter, report ready, wait for ``close()``, leave.

        Raises:
            Exception: what entering raised (after recording it in ``error``). Once entered, an
                error while open or leaving is the context's own business and is raised too.
        """
        try:
            async with self.context as value:
                self.opened = True
                self.ready.set()
                task_status.started(value)
                await self._stop.wait()
        except BaseException as e:
            if not self.opened:
                self.error = e
            raise
        finally:
            self.ready.set()
            self.closed.set()

    async def run_quietly(self) -> None:
        """``run`` for a detached task: failures are recorded in ``error``, never raised."""
        try:
            await self.run()
        except Exception as e:
            if self.error is None:
                self.error = e


class CancellationSource(Protocol):
    """A framework's cancellation token (AutoGen's ``CancellationToken`` has this shape)."""

    def add_callback(self, callback: Callable[[], None]) -> None: ...

    def is_cancelled(self) -> bool: ...


class _Relay:
    """The one callback a token gets: it cancels the tasks running a block under the token now."""

    __slots__ = ("__weakref__", "cancelled", "fired", "tasks")

    def __init__(self) -> None:
        self.tasks: dict[asyncio.Task[Any], int] = {}
        self.fired: set[asyncio.Task[Any]] = set()
        self.cancelled = False
        """The token fired (a token never un-fires): asked on every call instead of the token's
        own ``is_cancelled()``, which takes a lock."""

    def __call__(self) -> None:
        self.cancelled = True
        for task in list(self.tasks):
            if task not in self.fired:
                self.fired.add(task)
                task.cancel()


# A token only ever collects callbacks (AutoGen's cannot remove one), and one token often
# serves a whole run of calls; one relay per token keeps it from growing with every call.
_relays: weakref.WeakKeyDictionary[Any, _Relay] = weakref.WeakKeyDictionary()


class linked_to:
    """Run the block so that a framework's cancellation token cancels it (asyncio).

    Cancelling the token cancels the task inside the block, as a cancel scope would: the request
    in flight is abandoned and the server gets ``notifications/cancelled``; the block then raises
    ``CancelledError`` and the task is not left marked as cancelling. Not a task per call (two
    more event-loop wake-ups each) nor a cancel scope per call (anyio's cost ~10 µs per call on
    a small machine, a sixth of the bridge's own work); the token is subscribed once, however
    many calls it serves.

    Only ever written ``async with linked_to(token, what):``: making the value already links the
    current task, and leaving the block unlinks it.

    Raises:
        asyncio.CancelledError: the token was cancelled before or during the block (nothing is
            sent when it was cancelled before).
    """

    __slots__ = ("_relay", "_task", "_what")

    def __init__(self, token: CancellationSource, what: str) -> None:
        relay = _relays.get(token)
        if relay is None:
            relay = _relays[token] = _Relay()
            token.add_callback(relay)
            if token.is_cancelled():
                relay.cancelled = True
        if relay.cancelled:
            raise asyncio.CancelledError(f"{what} cancelled by its cancellation token")
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("linked_to needs a running asyncio task")
        # Subscribed here rather than in __aenter__, which then has nothing to do: the value is
        # made by the ``async with`` that enters it, in the same task, with no await between.
        tasks = relay.tasks
        tasks[task] = tasks.get(task, 0) + 1
        self._relay, self._what, self._task = relay, what, task

    async def __aenter__(self) -> None:
        pass

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        relay, task = self._relay, self._task
        depth = relay.tasks.pop(task) - 1
        if depth:
            relay.tasks[task] = depth
            return
        if task not in relay.fired:
            return
        relay.fired.discard(task)
        if exc_type is None or not issubclass(exc_type, asyncio.CancelledError):
            # The block ended before the cancellation reached it: take delivery here, so it
            # cannot land on the caller's next await instead.
            with suppress(asyncio.CancelledError):
                await asyncio.sleep(0)
        # The cancellation was ours, not the caller's: take it back before saying so.
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+
        if uncancel is not None:
            uncancel()
        raise asyncio.CancelledError(f"{self._what} cancelled by its cancellation token") from None
