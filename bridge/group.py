"""Every server of an ``mcpServers`` config, opened together in one async context.

```python
async with open_servers("mcp.json", on_error="skip") as group:
    tools = await group.tools_for("assistant", read_only=True)
    print(group.failed)            # {"github": ServerStartError(...)} when a server was skipped
```

Servers start in parallel, each held open by a task of its own (``bridge.tasks.Held``), so a slow
``npx`` server does not hold up the others.
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
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.abc

from .catalogue import safe_names
from .connection import Interceptor
from .errors import BridgeError, ConfigError, ConnectError, translate
from .guards import Guards
from .options import Options
from .sanitize import one_line
from .server import Server, guarded
from .session import Session
from .targets import Target, load_config, parse_config
from .tasks import Held
from .toolset import Toolset

if TYPE_CHECKING:
    from .autogen import MCPTool, MCPWorkbench

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
                 prefix: bool | None = None, options: Options | None = None) -> None:
        if on_error not in ("fail", "skip"):
            raise ConfigError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        if not targets:
            raise ConfigError("no servers to open")
        self.on_error = on_error
        self.names = list(targets)
        self.options = options or Options()
        use_prefix = len(targets) > 1 if prefix is None else prefix
        # Server names become OpenAI-safe prefixes; two names that would read the same once made
        # safe ("Asset Price MCP", "Asset_Price_MCP") must still give two prefixes.
        prefixes = safe_names(targets) if use_prefix else dict.fromkeys(targets, "")
        self._pending: dict[str, Server] = {
            name: Server(Session(target, guarded(Options.of(self.options, prefix=prefixes[name]))))
            for name, target in targets.items()
        }
        self._servers: dict[str, Server] = {}
        self.failed: dict[str, BridgeError] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._held: list[Held[Server]] = []

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

        async def settle(name: str, held: Held[Server]) -> None:
            nonlocal remaining
            await held.ready.wait()
            remaining -= 1
            if held.opened:
                self._servers[name] = self._pending[name]
            else:
                self.failed[name] = translate(held.error or ConnectError("did not start"), server=name,
                                              connecting=True)
            # In fail mode the first failure settles it: no point waiting for slow starters.
            if remaining == 0 or (self.failed and self.on_error == "fail"):
                settled.set()

        try:
            for name, server in self._pending.items():
                held = Held(server, name=name)
                self._held.append(held)
                self._tg.start_soon(held.run_quietly, name=f"mcp-bridge:{name}")
                self._tg.start_soon(settle, name, held)
            await settled.wait()
            if self.failed and (self.on_error == "fail" or not self._servers):
                raise ServerGroupError({n: self.failed[n] for n in self.names if n in self.failed},
                                       len(self.names))
        except BaseException as exc:
            await self._close(exc)
            raise
        for name in self.names:
            if name in self.failed:
                # Python prints a warning as it is, and the detail may quote the server's stderr.
                warnings.warn(f"MCP server {name!r} skipped: {one_line(self.failed[name].detail)}",
                              ServerSkippedWarning, stacklevel=2)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        await self._close(exc)

    async def _close(self, exc: BaseException | None) -> None:
        tg, self._tg = self._tg, None
        if tg is None:
            return
        for held in self._held:
            held.close()
        # Servers still starting (fail mode stopped waiting for them) are cancelled; started
        # ones leave their `async with` on their own, with bounded, shielded teardown.
        if self.failed:
            tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)
        self._servers.clear()

    # -- tools ---------------------------------------------------------------------------

    def toolset(self, agent: str | None = None, guards: Guards | None = None, *, growing: bool = False,
                **guard_options: Any) -> Toolset:
        """``Server.toolset`` across every started server (``select=ToolFilter(servers=...)`` narrows).

        Raises:
            ConfigError: malformed guard options.
        """
        return Toolset(self.servers, agent=agent, guards=Guards.of(guards, **guard_options), growing=growing)

    async def tools(self, *, agent: str | None = None, interceptors: Sequence[Interceptor] = ()) -> list[MCPTool]:
        """Every tool of every started server as AutoGen tools, **unguarded** (like ``Server.tools``)."""
        from .autogen import tools_for

        return await tools_for(self.toolset(agent, approval=False, interceptors=tuple(interceptors),
                                            warn_unguarded=False))

    async def tools_for(self, agent: str, guards: Guards | None = None, **guard_options: Any) -> list[MCPTool]:
        """``Server.tools_for`` across every started server.

        Raises:
            ConfigError: malformed patterns, or two servers offering the same tool name.
        """
        from .autogen import tools_for

        return await tools_for(self, agent, guards, **guard_options)

    def workbench_for(self, agent: str, guards: Guards | None = None, **guard_options: Any) -> MCPWorkbench:
        """``Server.workbench_for`` across every started server.

        Raises:
            ConfigError: malformed patterns.
        """
        from .autogen import workbench_for

        return workbench_for(self, agent, guards, **guard_options)

    def __repr__(self) -> str:
        return f"ServerGroup(started={list(self._servers)!r}, failed={list(self.failed)!r})"


def open_servers(config: str | os.PathLike[str] | Mapping[str, Any], *, on_error: Literal["fail", "skip"] = "fail",
                 prefix: bool | None = None, only: Sequence[str] | None = None, options: Options | None = None,
                 environ: Mapping[str, str] | None = None, **option_overrides: Any) -> ServerGroup:
    """Every server of an ``mcpServers`` config (the CLI's format); use as an async context manager.

    Args:
        config: a path to the JSON file, a parsed ``{"mcpServers": {...}}`` document, or a
            mapping of names to ``Target``s.
        on_error: ``"fail"``: any server failing to start closes the others and raises;
            ``"skip"``: it is left out with a ``ServerSkippedWarning`` and listed in ``group.failed``.
        prefix: prefix tool names with the server name (default: when the config has more
            than one server).
        only: open just these servers of the config.
        options, option_overrides: connection options for every server (see ``Options``).
        environ: where ``${VAR}`` references are looked up (default ``os.environ``).

    Raises:
        ConfigError: the config or an option is malformed, or ``only`` names an unknown server.
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
    return ServerGroup(targets, on_error=on_error, prefix=prefix, options=Options.of(options, **option_overrides))
