"""The AutoGen adapter (autogen-agentchat 0.7): MCP tools as ``FunctionTool``s and a ``Workbench``.

The only part of the bridge that imports ``autogen_core``. A thin layer over the adapter contract
(``bridge.adapters``): ``tools_for`` is the entry point every adapter has; ``workbench_for`` is the
same toolset as a ``Workbench`` that follows tools/list_changed; ``Server.tools_for`` /
``workbench_for`` (and ``ServerGroup``'s) call in here.

```python
from bridge import connect
from bridge.autogen import tools_for

async with connect(cmd) as server:
    agent = AssistantAgent("triage", model_client=client, tools=await tools_for(server, agent="triage", read_only=True))
```
"""

from __future__ import annotations

from typing import Any

try:
    import autogen_core  # noqa: F401  (what this package builds on; autogen_agentchat is the user's)
except ImportError:  # AutoGen is an extra: one line saying how to get it
    raise ImportError("bridge.autogen needs AutoGen (autogen-core is not installed): "
                      "pip install 'autogen-mcp-bridge[autogen]'") from None

from ..adapters import Framework, Source, toolset_for
from ..guards import Guards
from .sampling import sampling_from_model_client
from .tool import MCPTool
from .workbench import MCPWorkbench

__all__ = ["AUTOGEN", "AUTOGEN_WORKBENCH", "MCPTool", "MCPWorkbench", "sampling_from_model_client", "tools_for",
           "workbench_for"]

AUTOGEN = Framework("AutoGen's tools list")
"""``AssistantAgent(tools=...)`` keeps the list it was given."""

AUTOGEN_WORKBENCH = Framework("AutoGen's workbench", growing=True)
"""``AssistantAgent(workbench=...)`` asks for the tool list before every model call."""


async def tools_for(source: Source, agent: str | None = None, guards: Guards | None = None, *,
                    timeout: float | None = None, **guard_options: Any) -> list[MCPTool]:
    """The tools ``agent`` may use, as ``MCPTool``s for ``AssistantAgent(tools=...)``, guarded.

    A snapshot of what the model is offered now; for tools that follow tools/list_changed (and a
    deferred catalogue that grows as the model searches), use ``workbench_for``.

    Args:
        source, agent, guards, guard_options: the adapter contract's (``bridge.adapters.toolset_for``).
        timeout: seconds for each call (default: the connection's own).

    Raises:
        ConfigError: see ``bridge.adapters.toolset_for``; two servers offer the same tool name, or an
            approval rule names an alias.
    """
    toolset = toolset_for(source, AUTOGEN, agent, guards, **guard_options)
    return [MCPTool(toolset, entry, timeout=timeout) for entry in await toolset.tools()]


def workbench_for(source: Source, agent: str | None = None, guards: Guards | None = None, *,
                  timeout: float | None = None, **guard_options: Any) -> MCPWorkbench:
    """The tools ``agent`` may use, as an ``MCPWorkbench`` for ``AssistantAgent(workbench=...)``.

    The workbench answers from the cached catalogues and follows tools/list_changed, so the agent
    sees tools the server adds or removes while it runs. ``timeout``: seconds for each call
    (default: the connection's own).

    Raises:
        ConfigError: see ``bridge.adapters.toolset_for``.
    """
    return MCPWorkbench(toolset_for(source, AUTOGEN_WORKBENCH, agent, guards, **guard_options), timeout=timeout)
