"""Servers written down, and the process-wide registry that opens each of them once.

* ``ServerSpec``: how to reach a server, as a component config stores it: its name, its
  ``mcpServers`` entry (``Target.to_config()``: secret values become ``${VAR}`` references, read
  from the environment when the spec is resolved) and its ``Options.to_config()`` (the lock file
  and its policy included). A spec never holds a secret.
* ``SharedConnections``: the registry a *loaded* component (of any framework) gets its
  connection from: one persistent session per resolved spec, opened on first use and
  reference-counted, so every tool and workbench of a process shares it (not a server process
  per call). Each connection is held open by one task of its own (``bridge.tasks.Held``); when
  the event loop ends, that task is cancelled and the session closes itself.
  ``await close_shared_connections()`` closes everything explicitly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from .connection import Connection
from .options import Options
from .session import Session
from .targets import Target, parse_config
from .tasks import Held

__all__ = ["ServerSpec", "SharedConnections", "close_shared_connections", "shared_connections"]

logger = logging.getLogger("bridge.registry")


class ServerSpec(BaseModel):
    """A server as a config stores it: name, ``mcpServers`` entry, connection options."""

    name: str
    target: dict[str, Any] = Field(description="the mcpServers entry; secrets as ${VAR} references")
    options: dict[str, Any] = Field(default_factory=dict, description="Options.to_config()")

    @classmethod
    def of(cls, connection: Connection) -> ServerSpec:
        """The spec of a live connection.

        Raises:
            ValueError: an option cannot be written down (callbacks, a progress listener).
        """
        return cls(name=connection.name, target=connection.session.target.to_config(),
                   options=connection.options.to_config())

    def resolve(self) -> Target:
        """The target, with ``${VAR}`` references expanded from the environment now.

        Raises:
            ConfigError: a referenced variable is not set, or the entry is malformed.
        """
        return parse_config({"mcpServers": {self.name: self.target}},
                            source=f"component config for {self.name!r}")[self.name]

    def connection(self) -> Connection:
        """A new, not yet entered, connection for this spec.

        Raises:
            ConfigError: unset variables or malformed options.
        """
        return Connection(Session(self.resolve(), Options.from_config(self.options)))

    def key(self) -> str:
        """Identity in the registry: the *resolved* target (real secret values, memory only)."""
        t = self.resolve()
        ident = {f.name: _plain(getattr(t, f.name)) for f in dataclasses.fields(t) if f.compare}
        return json.dumps([type(t).__name__, ident, self.options], sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass
class _Shared:
    held: Held[Connection]
    task: asyncio.Task[None]
    refs: int = 0


class SharedConnections:
    """Reference-counted persistent connections, one per ``ServerSpec`` key, for one event loop."""

    def __init__(self) -> None:
        self._entries: dict[str, _Shared] = {}
        self.opened = 0
        """How many sessions this registry has opened (for tests and diagnostics)."""

    async def acquire(self, spec: ServerSpec) -> Connection:
        """The live connection for ``spec``, opening it on first use; pair with ``release``.

        Raises:
            ConnectError: the server could not be started or reached.
            ConfigError: the spec refers to unset environment variables.
        """
        key = spec.key()
        entry = self._entries.get(key)
        if entry is None or entry.held.error is not None or entry.task.done():
            connection = spec.connection()
            held = Held(connection, name=spec.name)
            # A detached task, not one of the caller's: the connection outlives the call that opened it.
            task = asyncio.get_running_loop().create_task(held.run_quietly(), name=f"mcp-bridge:{spec.name}")
            entry = self._entries[key] = _Shared(held, task)
            self.opened += 1
        entry.refs += 1
        try:
            await entry.held.ready.wait()
        except BaseException:
            entry.refs -= 1
            raise
        if entry.held.error is not None:
            entry.refs -= 1
            if self._entries.get(key) is entry:
                del self._entries[key]
            raise entry.held.error
        return entry.held.context  # type: ignore[return-value]

    async def release(self, spec: ServerSpec) -> None:
        """Drop one reference; the last one closes the session (and stops a stdio server)."""
        key = spec.key()
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.refs -= 1
        if entry.refs <= 0:
            del self._entries[key]
            await self._stop(entry)

    async def aclose(self) -> None:
        """Close every connection, whatever its reference count."""
        entries, self._entries = list(self._entries.values()), {}
        await asyncio.gather(*(self._stop(e) for e in entries), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    async def _stop(entry: _Shared) -> None:
        entry.held.close()
        try:
            await asyncio.shield(entry.task)
        except Exception as e:
            logger.debug("closing shared connection: %r", e)


_registries: dict[asyncio.AbstractEventLoop, SharedConnections] = {}


def shared_connections() -> SharedConnections:
    """The registry of the running event loop (each ``asyncio.run`` gets a fresh one)."""
    loop = asyncio.get_running_loop()
    for stale in [lp for lp in _registries if lp.is_closed()]:
        del _registries[stale]
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = SharedConnections()
    return registry


async def close_shared_connections() -> None:
    """Close every connection loaded components opened on this event loop."""
    registry = _registries.pop(asyncio.get_running_loop(), None)
    if registry is not None:
        await registry.aclose()
