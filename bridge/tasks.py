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
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, Generic, TypeVar

import anyio
import anyio.abc

__all__ = ["Held", "linked_to"]

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

    @property
    def closing(self) -> bool:
        return self._stop.is_set()

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


@contextmanager
def linked_to(subscribe: Callable[[Callable[[], None]], object], cancelled: bool, what: str) -> Iterator[None]:
    """Run the block in a cancel scope that a framework's cancellation token cancels.

    ``subscribe`` registers a callback with the token (AutoGen: ``token.add_callback``). A cancel
    scope, not a task linked to the token: a task per call costs two extra event-loop wake-ups,
    and a scope cancels the request in flight so the server gets ``notifications/cancelled``.

    Raises:
        asyncio.CancelledError: the token was cancelled before or during the block (nothing is
            sent when it was cancelled before).
    """
    if cancelled:
        raise asyncio.CancelledError(f"{what} cancelled by its cancellation token")
    with anyio.CancelScope() as scope:
        subscribe(scope.cancel)
        yield
    if scope.cancelled_caught:
        raise asyncio.CancelledError(f"{what} cancelled by its cancellation token")
