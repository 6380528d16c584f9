"""``Resources``: what an owner opened on behalf of the things it hands out, closed with it.

A ``Connection`` (and so every ``Server``) keeps one: the audit stores its agents' toolsets write
to are opened through it, once per key however many toolsets share them, and closed when the
last toolset lets go (``Toolset.stop()``) or when the connection closes, on every exit path
(an exception, a cancellation). Values only describe (``Guards(audit="audit.db")``); the owner
of a lifetime opens and closes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

__all__ = ["Resources"]

logger = logging.getLogger("bridge.resources")

T = TypeVar("T")


@dataclass
class _Held:
    value: Any
    close: Callable[[], object]
    users: int


class Resources:
    """Reference-counted resources of one owner, one per key.

    ``acquire`` opens on first use and counts users; ``release`` closes at the last one;
    ``aclose`` closes whatever is still open. Closing runs on a worker thread (a store may wait
    on a lock held by a write in flight) and is shielded from cancellation, so an owner torn
    down by a cancelled task still closes everything.
    """

    def __init__(self) -> None:
        self._held: dict[Hashable, _Held] = {}

    def acquire(self, key: Hashable, open: Callable[[], T], close: Callable[[T], object]) -> T:
        """The resource under ``key``: the one already open, else ``open()``; pair with ``release``.

        Raises:
            whatever ``open`` raises (nothing is held then).
        """
        held = self._held.get(key)
        if held is None:
            value = open()
            held = self._held[key] = _Held(value, lambda: close(value), 0)
        held.users += 1
        return held.value  # type: ignore[no-any-return]

    async def release(self, key: Hashable) -> None:
        """Drop one use of ``key``; the last one closes it (a key not held is ignored)."""
        held = self._held.get(key)
        if held is None:
            return
        held.users -= 1
        if held.users <= 0:
            del self._held[key]
            await _close([held])

    async def aclose(self) -> None:
        """Close everything still open, whoever still uses it (the owner's life is over)."""
        held, self._held = list(self._held.values()), {}
        await _close(held)

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, key: object) -> bool:
        return key in self._held


async def _close(held: list[_Held]) -> None:
    if not held:
        return
    with anyio.CancelScope(shield=True):
        for item in held:
            try:
                await anyio.to_thread.run_sync(item.close)
            except Exception as e:  # one failing close must not keep the others open
                logger.warning("could not close %r: %s", item.value, e)
