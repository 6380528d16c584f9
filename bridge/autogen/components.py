"""What lets ``MCPTool`` and ``MCPWorkbench`` live in AutoGen component configs.

A config holds the agent's servers as ``bridge.registry.ServerSpec``s (secrets as ``${VAR}``
references, and so is every value a config's ``${VAR}`` expanded into ``args`` or a URL, by
``Target.to_config``; every connection option, the lock file and its policy included), the agent's name
and its ``Guards.to_config()`` (selection, approval policy and approver, audit log, further
interceptors, catalogue presentation) and the per-call timeout. What cannot be written down (a predicate, a callback
approver, a plain-function interceptor, connection callbacks) makes the dump raise instead of
silently loading with less protection than the original had.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..registry import ServerSpec
from ..toolset import Toolset

__all__ = ["ToolComponentConfig", "WorkbenchComponentConfig", "specs_of"]


def specs_of(toolset: Toolset) -> list[ServerSpec]:
    """The specs of a toolset's servers, live ones written down.

    Raises:
        ValueError: a connection option cannot be written down.
    """
    opened = {s.name for s in toolset.specs}
    live = [ServerSpec.of(c) for c in toolset.connections if c.name not in opened]
    return [*live, *toolset.specs]


class ToolComponentConfig(BaseModel):
    """The config of one ``MCPTool``: its agent's servers, the tool as listed, and the guards."""

    servers: list[ServerSpec]
    tool: dict[str, Any] = Field(description="the MCP tool as the server listed it (wire JSON)")
    name: str = Field(description="the agent-facing (safe) name")
    agent: str | None = None
    guards: dict[str, Any] = Field(default_factory=dict, description="Guards.to_config()")
    timeout: float | None = Field(default=None, description="seconds for each call (None: the connection's own)")


class WorkbenchComponentConfig(BaseModel):
    """The config of an ``MCPWorkbench``: its servers, agent and guards."""

    servers: list[ServerSpec]
    agent: str | None = None
    guards: dict[str, Any] = Field(default_factory=dict, description="Guards.to_config()")
    timeout: float | None = Field(default=None, description="seconds for each call (None: the connection's own)")
