"""Every server of an ``mcpServers`` config, opened together in one async context.

```python
async with open_servers("mcp.json", on_error="skip") as group:
    tools = await group.tools_for("assistant", read_only=True)
    print(group.failed)            # {"github": ServerStartError(...)} when a server was skipped
```

Servers start in parallel, each owned by its own task (so a slow ``npx`` server does not hold
up the others, and anyio's rule that a task group is left by the task that entered it holds).
With more than one server in the config, tool names are prefixed with the server's name
(``mail_send_email``); whether to prefix is decided from the config, not from which servers
happened to start, so names never shift because one server failed. Names are always
OpenAI-safe; a collision left anyway (``prefix=False``) is refused when tools are handed out.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.abc

from ..approval import ApprovalPolicy, Approver
from ..connection import Interceptor
from ..errors import BridgeError, ConfigError, ConnectError, translate
from ..results import DEFAULT_MAX_CHARS
from ..selection import ToolFilter
from ..session import ClientCallbacks, Session
from ..targets import Target, load_config, parse_config
from . import agents
from .server import DEFAULT_CALL_TIMEOUT, Server
from .tool import MCPTool
from .workbench import MCPWorkbench

__all__ = ["ServerGroup", "ServerGroupError", "ServerSkippedWarning", "open_servers"]

logger = logging.getLogger("bridge.group")


class ServerGroupError(ConnectError):
    """One or more servers of a group failed to start (``on_error="fail"``, or all of them failed).

    ``failures`` maps each failed server's name to its error.
    """

    def __init__(self, failures: Mapping[str, BridgeError], total: int) -> None:
        self.failures = dict(failures)
        if len(self.failures) == 1:
            name, err = next(iter(self.failures.items()))
            super().__init__(f"failed to start: {err.detail}", server=name)
        else:
            parts = "; ".join(f"{n!r}: {e.detail}" for n, e in self.failures.items())
            super().__init__(f"{len(self.failures)} of {total} servers failed to start: {parts}")


class ServerSkippedWarning(UserWarning):
    """A server of a group failed to start and was skipped (``on_error="skip"``)."""


class ServerGroup(Mapping[str, Server]):
    """The started servers of a config, by name; an async context manager.

    Attributes:
        failed: servers that failed to start and were skipped, with their errors.
        names: every server in the config, in config order.
    """

    def __init__(self, targets: Mapping[str, Target], *, on_error: Literal["fail", "skip"] = "fail",
                 prefix: bool | None = None, timeout: float = 30.0, call_timeout: float = DEFAULT_CALL_TIMEOUT,
                 mode: str = "auto", reconnect_attempts: int = 3, callbacks: ClientCallbacks | None = None,
                 max_result_chars: int = DEFAULT_MAX_CHARS) -> None:
        if on_error not in ("fail", "skip"):
            raise ConfigError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        if not targets:
            raise ConfigError("no servers to open")
        self.on_error = on_error
        self.names = list(targets)
        use_prefix = len(targets) > 1 if prefix is None else prefix
        self._pending: dict[str, Server] = {
            name: Server(Session(target, timeout=timeout, call_timeout=call_timeout, mode=mode,
                                 reconnect_attempts=reconnect_attempts, callbacks=callbacks),
                         prefix=name if use_prefix else "", max_result_chars=max_result_chars)
            for name, target in targets.items()
        }
        self._servers: dict[str, Server] = {}
        self.failed: dict[str, BridgeError] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._stop = anyio.Event()

    # -- Mapping -------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Server:
        return self._servers[name]

    def __iter__(self) -> Iterator[str]:
        # Config order, not the order in which servers happened to finish starting.
        return iter([n for n in self.names if n in self._servers])

    def __len__(self) -> int:
        return len(self._servers)

    @property
    def servers(self) -> list[Server]:
        """The started servers, in config order."""
        return [self._servers[n] for n in self.names if n in self._servers]

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> ServerGroup:
        settled = anyio.Event()
        remaining = len(self._pending)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()

        async def own(name: str, server: Server) -> None:
            nonlocal remaining
            started = False
            try:
                async with server:
                    started = True
                    self._servers[name] = server
                    remaining -= 1
                    if remaining == 0:
                        settled.set()
                    await self._stop.wait()
            except Exception as e:
                if started:
                    logger.debug("server %s ended: %r", name, e)
                    return
                self.failed[name] = translate(e, server=name, connecting=True)
                remaining -= 1
                # In fail mode the first failure settles it: no point waiting for slow starters.
                if remaining == 0 or self.on_error == "fail":
                    settled.set()

        try:
            for name, server in self._pending.items():
                self._tg.start_soon(own, name, server, name=f"mcp-bridge:{name}")
            await settled.wait()
            if self.failed and (self.on_error == "fail" or not self._servers):
                raise ServerGroupError({n: self.failed[n] for n in self.names if n in self.failed},
                                       len(self.names))
        except BaseException as exc:
            await self._close(exc)
            raise
        for name in self.names:
            if name in self.failed:
                warnings.warn(f"MCP server {name!r} skipped: {self.failed[name].detail}", ServerSkippedWarning,
                              stacklevel=2)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        await self._close(exc)

    async def _close(self, exc: BaseException | None) -> None:
        tg, self._tg = self._tg, None
        if tg is None:
            return
        self._stop.set()
        # Servers still starting (fail mode stopped waiting for them) are cancelled; started
        # ones leave their `async with` on their own, with bounded, shielded teardown.
        if self.on_error == "fail" and self.failed:
            tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)
        self._servers.clear()

    # -- tools ---------------------------------------------------------------------------

    async def tools(self, *, agent: str | None = None, interceptors: Sequence[Interceptor] = ()) -> list[MCPTool]:
        """Every tool of every started server (unguarded, like ``Server.tools``)."""
        out: list[MCPTool] = []
        for server in self.servers:
            out.extend(await server.tools(agent=agent, interceptors=interceptors))
        return out

    async def tools_for(self, agent: str, *, include: agents.Patterns = None, exclude: agents.Patterns = None,
                        read_only: bool | None = None, select: ToolFilter | None = None,
                        approval: ApprovalPolicy | Literal[False] | None = None, approver: Approver | None = None,
                        audit: agents.AuditTarget = None, interceptors: Sequence[Interceptor] = ()
                        ) -> list[MCPTool]:
        """``Server.tools_for`` across every started server (``ToolFilter(servers=...)`` narrows).

        Raises:
            ConfigError: malformed patterns, or two servers offering the same tool name.
        """
        return await agents.tools_for(self.servers, agent, include=include, exclude=exclude, read_only=read_only,
                                      select=select, approval=approval, approver=approver, audit=audit,
                                      interceptors=interceptors)

    def workbench_for(self, agent: str, *, include: agents.Patterns = None, exclude: agents.Patterns = None,
                      read_only: bool | None = None, select: ToolFilter | None = None,
                      approval: ApprovalPolicy | Literal[False] | None = None, approver: Approver | None = None,
                      audit: agents.AuditTarget = None, interceptors: Sequence[Interceptor] = ()) -> MCPWorkbench:
        """``Server.workbench_for`` across every started server.

        Raises:
            ConfigError: malformed patterns.
        """
        return agents.workbench_for(self.servers, agent, include=include, exclude=exclude, read_only=read_only,
                                    select=select, approval=approval, approver=approver, audit=audit,
                                    interceptors=interceptors)

    def __repr__(self) -> str:
        return f"ServerGroup(started={list(self._servers)!r}, failed={list(self.failed)!r})"


def open_servers(config: str | os.PathLike[str] | Mapping[str, Any], *, on_error: Literal["fail", "skip"] = "fail",
                 prefix: bool | None = None, only: Sequence[str] | None = None, timeout: float = 30.0,
                 call_timeout: float = DEFAULT_CALL_TIMEOUT, mode: str = "auto", reconnect_attempts: int = 3,
                 callbacks: ClientCallbacks | None = None, max_result_chars: int = DEFAULT_MAX_CHARS,
                 environ: Mapping[str, str] | None = None) -> ServerGroup:
    """Every server of an ``mcpServers`` config (the CLI's format); use as an async context manager.

    Args:
        config: a path to the JSON file, a parsed ``{"mcpServers": {...}}`` document, or a
            mapping of names to ``Target``s.
        on_error: ``"fail"``: any server failing to start closes the others and raises;
            ``"skip"``: it is left out with a ``ServerSkippedWarning`` and listed in ``group.failed``.
        prefix: prefix tool names with the server name (default: when the config has more
            than one server).
        only: open just these servers of the config.
        environ: where ``${VAR}`` references are looked up (default ``os.environ``).

    Raises:
        ConfigError: the config is malformed, or ``only`` names an unknown server.
        ServerGroupError: on entering, when servers fail to start (see ``on_error``).
    """
    if isinstance(config, str | os.PathLike):
        targets: Mapping[str, Target] = load_config(Path(config), environ=environ)
    elif config and all(not isinstance(v, Mapping) and hasattr(v, "transport") for v in config.values()):
        targets = dict(config)
    else:
        targets = parse_config(config, environ=environ)
    if only is not None:
        unknown = [n for n in only if n not in targets]
        if unknown:
            raise ConfigError(f"no server named {', '.join(map(repr, unknown))} in the config; "
                              f"it has {', '.join(map(repr, targets))}")
        targets = {n: targets[n] for n in only}
    return ServerGroup(targets, on_error=on_error, prefix=prefix, timeout=timeout, call_timeout=call_timeout,
                       mode=mode, reconnect_attempts=reconnect_attempts, callbacks=callbacks,
                       max_result_chars=max_result_chars)
