"""What lets ``MCPTool`` and ``MCPWorkbench`` live in AutoGen component configs.

Two pieces:

* ``ServerSpec``: how to reach a server, as written into a config. The target comes from
  ``Target.to_config()``, so secret values (every stdio env value, Authorization/API-key
  headers) are stored as ``${VAR}`` references and read from the environment when the
  component is loaded; they never appear in the dump.
* ``SharedConnections``: the process-wide registry a *loaded* component gets its connection
  from. One persistent session per spec (not a server process per call), opened lazily on
  first use and reference-counted. Each session is owned by one background task that enters
  and leaves it, so anyio's task-group rules hold; when the event loop ends, that task is
  cancelled and the session closes itself (process terminated, bounded in time).
  ``await close_shared_connections()`` closes everything explicitly.

Interceptors are serialised by their own ``to_config()`` (``kind`` names the loader); a plain
function has none, and dumping a tool that carries one raises rather than silently dropping,
say, an approval gate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from ..approval import ApprovalGate
from ..audit import AuditTrail
from ..connection import Connection, Interceptor
from ..errors import ConfigError
from ..results import DEFAULT_MAX_CHARS
from ..session import Session
from ..targets import Target, parse_config

__all__ = [
    "ServerSpec",
    "SharedConnections",
    "close_shared_connections",
    "dump_interceptors",
    "load_interceptors",
    "shared_connections",
]

logger = logging.getLogger("bridge.components")


class ServerSpec(BaseModel):
    """A server as a component config stores it: name, ``mcpServers`` entry, session options."""

    name: str
    target: dict[str, Any]
    prefix: str = ""
    timeout: float = 30.0
    call_timeout: float = 180.0
    mode: str = "auto"
    max_result_chars: int = DEFAULT_MAX_CHARS

    @classmethod
    def of(cls, connection: Connection) -> ServerSpec:
        """The spec of a live connection (secrets become ``${VAR}`` references)."""
        session = connection.session
        return cls(name=connection.name, target=session.target.to_config(), prefix=connection.prefix,
                   timeout=session.timeout, call_timeout=session.call_timeout, mode=session.mode,
                   max_result_chars=connection.max_result_chars)

    def resolve(self) -> Target:
        """The target, with ``${VAR}`` references expanded from the environment now.

        Raises:
            ConfigError: a referenced variable is not set, or the entry is malformed.
        """
        return parse_config({"mcpServers": {self.name: self.target}}, source=f"component config for {self.name!r}"
                            )[self.name]

    def connection(self) -> Connection:
        """A new, not yet entered, connection for this spec."""
        session = Session(self.resolve(), timeout=self.timeout, call_timeout=self.call_timeout, mode=self.mode)
        return Connection(session, prefix=self.prefix, max_result_chars=self.max_result_chars)

    def key(self) -> str:
        """Identity in the registry: the *resolved* target (real secret values, memory only)."""
        t = self.resolve()
        ident = {f.name: _plain(getattr(t, f.name)) for f in dataclasses.fields(t)}
        return json.dumps([type(t).__name__, ident, self.prefix, self.timeout, self.call_timeout, self.mode,
                           self.max_result_chars], sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass
class _Shared:
    connection: Connection
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    error: BaseException | None = None
    refs: int = 0
    opened: bool = False


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
        if entry is None or entry.error is not None or (entry.task is not None and entry.task.done()):
            entry = _Shared(spec.connection())
            self._entries[key] = entry
            entry.task = asyncio.get_running_loop().create_task(self._own(entry), name=f"mcp-bridge:{spec.name}")
            self.opened += 1
        entry.refs += 1
        try:
            await entry.ready.wait()
        except BaseException:
            entry.refs -= 1
            raise
        if entry.error is not None:
            entry.refs -= 1
            if self._entries.get(key) is entry:
                del self._entries[key]
            raise entry.error
        return entry.connection

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
        entry.stop.set()
        if entry.task is not None:
            try:
                await asyncio.shield(entry.task)
            except Exception as e:
                logger.debug("closing shared connection: %r", e)

    @staticmethod
    async def _own(entry: _Shared) -> None:
        # The one task that enters and leaves the connection: anyio task groups inside the
        # session must be exited by the task that entered them.
        try:
            async with entry.connection:
                entry.opened = True
                entry.ready.set()
                await entry.stop.wait()
        except Exception as e:
            if not entry.opened:
                entry.error = e
            else:
                logger.debug("shared connection to %s ended: %r", entry.connection.name, e)
        finally:
            entry.ready.set()


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


# -- interceptors --------------------------------------------------------------------------------

_LOADERS: dict[str, Callable[[Mapping[str, Any]], Interceptor]] = {
    ApprovalGate.kind: ApprovalGate.from_config,
    AuditTrail.kind: AuditTrail.from_config,
}


def dump_interceptors(interceptors: Sequence[Interceptor]) -> list[dict[str, Any]]:
    """Each interceptor's ``to_config()``.

    Raises:
        ValueError: an interceptor cannot be serialised (a plain function, a callable policy).
    """
    out = []
    for interceptor in interceptors:
        to_config = getattr(interceptor, "to_config", None)
        if to_config is None:
            name = getattr(interceptor, "__qualname__", type(interceptor).__name__)
            raise ValueError(f"interceptor {name} cannot be written to a component config; give it a "
                             "to_config() and register a loader, or build the tool in code")
        out.append(dict(to_config()))
    return out


def load_interceptors(configs: Sequence[Mapping[str, Any]]) -> list[Interceptor]:
    """Rebuild interceptors written by ``dump_interceptors``.

    Raises:
        ConfigError: an unknown ``kind``.
    """
    out = []
    for config in configs:
        loader = _LOADERS.get(str(config.get("kind")))
        if loader is None:
            raise ConfigError(f"unknown interceptor kind {config.get('kind')!r}; known: {', '.join(_LOADERS)}")
        out.append(loader(config))
    return out


class ToolComponentConfig(BaseModel):
    """The config of one ``MCPTool``: its server, the tool as listed, and how it is guarded."""

    server: ServerSpec
    tool: dict[str, Any] = Field(description="the MCP tool as the server listed it (wire JSON)")
    name: str = Field(description="the agent-facing (safe) name")
    agent: str | None = None
    interceptors: list[dict[str, Any]] = Field(default_factory=list)


class WorkbenchComponentConfig(BaseModel):
    """The config of an ``MCPWorkbench``: its servers, agent, selection and guards."""

    servers: list[ServerSpec]
    agent: str | None = None
    select: dict[str, Any] | None = None
    interceptors: list[dict[str, Any]] = Field(default_factory=list)
