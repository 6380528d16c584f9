"""The AutoGen adapter (autogen-agentchat 0.7): MCP tools as ``FunctionTool``s and a ``Workbench``.

The only part of the bridge that imports ``autogen_core``. Everything it offers is a thin layer
over ``bridge.toolset.Toolset``; ``Server.tools_for`` / ``workbench_for`` call in here.

```python
from bridge import connect
from bridge.autogen import tools_for

async with connect(cmd) as server:
    agent = AssistantAgent("triage", model_client=client, tools=await server.tools_for("triage", read_only=True))
```
"""

from __future__ import annotations

from ..toolset import Toolset
from .sampling import sampling_from_model_client
from .tool import MCPTool
from .workbench import MCPWorkbench, tool_schema

__all__ = ["MCPTool", "MCPWorkbench", "sampling_from_model_client", "tool_schema", "tools_for"]


async def tools_for(toolset: Toolset) -> list[MCPTool]:
    """The toolset's tools as ``MCPTool``s, for ``AssistantAgent(tools=...)``.

    A snapshot of what the model is offered now; for tools that follow tools/list_changed (and a
    deferred catalogue that grows as the model searches), use ``MCPWorkbench(toolset)``.

    Raises:
        ConfigError: two servers offer the same tool name, or an approval rule names an alias.
    """
    return [MCPTool(toolset, entry) for entry in await toolset.tools()]
