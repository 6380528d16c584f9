"""``Toolkit``: one agent's MCP tools, registered with an AG2 caller (for the model) and executor (to run them)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from autogen import ConversableAgent

from ..errors import ConfigError
from ..guards import Guards
from ..toolset import Toolset
from .tool import MCPFunction, install, tool_signature

__all__ = ["ToolSource", "Toolkit"]


class ToolSource(Protocol):
    """Anything that builds a ``Toolset`` for an agent: a ``Server`` or a ``ServerGroup``."""

    def toolset(self, agent: str | None = None, guards: Guards | None = None, *, growing: bool = False,
                **guard_options: Any) -> Toolset: ...


class Toolkit:
    """The tools one agent may use, as AG2 functions over the servers' persistent sessions.

    ```python
    kit = Toolkit.of(server, agent="triage", read_only=True)
    names = await kit.register(caller=assistant, executor=user_proxy)
    ```

    Args:
        toolset: the agent's tools; AG2 fixes an agent's tool list when it is registered, so
            the toolset must not be ``growing`` (a deferred catalogue then offers
            ``find_tools`` and ``call_tool``).
        timeout: seconds for each call (default: the connection's own).

    Raises:
        ConfigError: a growing toolset.
    """

    def __init__(self, toolset: Toolset, *, timeout: float | None = None) -> None:
        if toolset.growing:
            raise ConfigError("AG2 fixes an agent's tools when they are registered: build the Toolset with "
                              "growing=False")
        self.toolset = toolset
        self.timeout = timeout
        self.functions: dict[str, MCPFunction] = {}

    @classmethod
    def of(cls, source: Toolset | ToolSource, *, agent: str | None = None, guards: Guards | None = None,
           timeout: float | None = None, **guard_options: Any) -> Toolkit:
        """A toolkit over a ``Server``, a ``ServerGroup`` or a prepared ``Toolset``.

        Raises:
            ConfigError: malformed guard options, or an agent or guards given with a prepared
                ``Toolset`` (it already has its own).
        """
        if isinstance(source, Toolset):
            if guards is not None or guard_options or (agent is not None and agent != source.agent):
                raise ConfigError("a Toolset already carries its agent and guards; pass them to "
                                  "server.toolset(...) instead")
            return cls(source, timeout=timeout)
        return cls(source.toolset(agent, guards, growing=False, **guard_options), timeout=timeout)

    @property
    def agent(self) -> str | None:
        """The agent named in approvals and audit records."""
        return self.toolset.agent

    @property
    def guards(self) -> Guards:
        """Selection, approval, audit and catalogue presentation."""
        return self.toolset.guards

    async def register(self, caller: ConversableAgent, executor: ConversableAgent | None = None) -> list[str]:
        """Offer every allowed tool to ``caller``'s model and let ``executor`` (default: ``caller``) run them.

        The model is sent each server's inputSchema unchanged as ``parameters``. The executor runs
        a tool only for calls ``caller`` proposed. Must be awaited on the event loop that owns the
        sessions (inside ``async with connect(...)``): calls are sent from that loop.

        Returns:
            The registered (agent-facing) tool names.

        Raises:
            ConfigError: ``caller`` has no ``llm_config``; two servers offer the same name.
            ConnectError: a server of a loaded toolset could not be opened.
        """
        if not caller.llm_config:
            raise ConfigError(f"agent {caller.name!r} has no llm_config, so its model cannot be offered tools; "
                              "give it one, or register the tools with the agent that calls the model")
        loop = asyncio.get_running_loop()
        entries = await self.toolset.tools()
        functions = {e.name: MCPFunction(self.toolset, e, loop, timeout=self.timeout) for e in entries}
        signatures = [tool_signature(e) for e in entries]
        if signatures:
            # Each update_tool_signature rebuilds the agent's OpenAI client (~0.1 s): all but the
            # last join the config directly, and one public update rebuilds the client once.
            config = caller.llm_config
            kept = [t for t in (config.get("tools") or []) if t.get("function", {}).get("name") not in functions]
            config["tools"] = kept + signatures[:-1]
            caller.update_tool_signature(signatures[-1], is_remove=False, silent_override=True)
        install(executor if executor is not None else caller, caller.name, functions)
        self.functions.update(functions)
        return list(functions)

    def __repr__(self) -> str:
        return f"Toolkit(agent={self.agent!r}, tools={len(self.functions)})"
