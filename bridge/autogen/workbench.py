"""``MCPWorkbench``: an AutoGen ``Workbench`` over one agent's ``Toolset``.

``AssistantAgent`` asks its workbench for the tool list before every model call and again for
every tool call. AutoGen's own MCP workbench answers each time with a tools/list round trip;
this one answers from the connections' cached catalogues, which re-list only after the server
announced tools/list_changed (or a reconnect). So a running agent sees tools the server adds or
removes, without a restart and without a request per model call. In a deferred catalogue, the
tools a search found join the list from the next model call on, with their real inputSchema.

Selection is enforced on calls as well as listings: a tool the agent's guards leave out
answers "not found" even when called by its MCP name. Each tool is described to the model as the
adapter contract's ``ModelTool`` says, and a failed call reads as its ``error_text``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from autogen_core import CancellationToken, Component
from autogen_core.tools import TextResultContent, ToolResult, ToolSchema, Workbench
from typing_extensions import Self

from ..adapters import ModelTool, reply_text
from ..catalogue import ToolEntry
from ..connection import Connection
from ..errors import BridgeError
from ..guards import Guards
from ..tasks import linked_to
from ..toolset import Toolset
from .components import WorkbenchComponentConfig, specs_of
from .tool import autogen_step

__all__ = ["MCPWorkbench"]


def _tool_schema(view: ModelTool) -> ToolSchema:
    return ToolSchema(name=view.name, description=view.description, parameters=cast(Any, view.schema()),
                      strict=view.strict)


class MCPWorkbench(Workbench, Component[WorkbenchComponentConfig]):
    """Tools of MCP servers for ``AssistantAgent(workbench=...)``, bound to one agent.

    Build one with ``bridge.autogen.workbench_for(source, agent=...)`` (or ``server.workbench_for``). A workbench
    over live connections needs no ``start()``: the connections' own ``async with`` owns them.
    One loaded from a component config opens its servers through the shared registry on
    ``start()`` (or on first use) and releases them on ``stop()``.

    Args:
        toolset: the agent's tools (``Server.toolset(agent, ..., growing=True)``).
        timeout: seconds for each call (default: the connection's own).
    """

    component_type = "workbench"
    component_provider_override = "bridge.autogen.MCPWorkbench"
    component_config_schema = WorkbenchComponentConfig

    def __init__(self, toolset: Toolset, *, timeout: float | None = None) -> None:
        self._toolset = toolset
        self.timeout = timeout
        self._key: list[ToolEntry] = []
        self._schemas: list[ToolSchema] = []

    @property
    def toolset(self) -> Toolset:
        """The agent's tool set every call goes through."""
        return self._toolset

    @property
    def agent(self) -> str | None:
        """The agent named in approvals and audit records."""
        return self._toolset.agent

    @property
    def guards(self) -> Guards:
        """Selection, approval, audit and catalogue presentation."""
        return self._toolset.guards

    @property
    def connections(self) -> list[Connection]:
        """The live connections (after ``start()`` for a loaded workbench)."""
        return self._toolset.connections

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the servers of a loaded workbench (a no-op for one built from live connections).

        Raises:
            ConnectError: a server could not be started or reached.
        """
        await self._toolset.start()

    async def stop(self) -> None:
        """Release what ``start()`` opened; connections passed in live stay open."""
        await self._toolset.stop()

    async def reset(self) -> None:
        """Forget cached listings and what deferred searches found."""
        self._toolset.reset()

    async def save_state(self) -> Mapping[str, Any]:
        """Nothing to keep: the state lives on the servers."""
        return {"type": "MCPWorkbenchState"}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Accepts what ``save_state`` wrote; there is nothing to restore."""
        return None

    # -- tools ---------------------------------------------------------------------------

    async def list_tools(self) -> list[ToolSchema]:
        """The agent's tools, from the cached catalogues (no request unless a server announced a change)."""
        entries = await self._toolset.tools()
        if len(entries) != len(self._key) or any(a is not b for a, b in zip(entries, self._key, strict=True)):
            self._schemas = [_tool_schema(ModelTool.of(self._toolset, e)) for e in entries]
            self._key = entries
        return list(self._schemas)

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None,
                        cancellation_token: CancellationToken | None = None,
                        call_id: str | None = None) -> ToolResult:
        """Call one of the agent's tools; every failure becomes a ``ToolResult`` with ``is_error=True``.

        The model sees the rendered result text (media as short placeholders, never base64).
        """
        token = cancellation_token or CancellationToken()
        try:
            async with linked_to(token, f"tool {name!r}"):
                result = await self._toolset.call(name, dict(arguments or {}), call_id=call_id,
                                                  timeout=self.timeout, step=autogen_step(call_id))
        except BridgeError as e:
            return ToolResult(name=name, result=[TextResultContent(content=reply_text(e))], is_error=True)
        return ToolResult(name=name, result=[TextResultContent(content=reply_text(result))],
                          is_error=result.is_error)

    # -- component -----------------------------------------------------------------------

    def _to_config(self) -> WorkbenchComponentConfig:
        """Servers (secrets as ``${VAR}``, every option), agent and guards.

        Raises:
            ValueError: a guard or option cannot be written down (refused, never dropped).
        """
        return WorkbenchComponentConfig(servers=specs_of(self._toolset), agent=self._toolset.agent,
                                        guards=self._toolset.guards.to_config(), timeout=self.timeout)

    @classmethod
    def _from_config(cls, config: WorkbenchComponentConfig) -> Self:
        """A workbench that opens its servers on ``start()`` or first use (no I/O here).

        Raises:
            ConfigError: unknown guard keys or interceptor kinds.
        """
        return cls(Toolset(list(config.servers), agent=config.agent, guards=Guards.from_config(config.guards),
                           growing=True), timeout=config.timeout)

    def __repr__(self) -> str:
        names = [c.name for c in self._toolset.connections] or [s.name for s in self._toolset.specs]
        return f"MCPWorkbench(servers={names!r}, agent={self._toolset.agent!r})"
