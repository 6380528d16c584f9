"""The AG2 adapter (AG2 Classic 0.14, ``import autogen``): MCP tools for ``ConversableAgent``s.

The only part of the bridge that imports ``autogen``. A thin layer over
``bridge.toolset.Toolset``: each allowed tool's schema goes to the caller's model unchanged, and
the executor runs it through the core's one call path (validation, approval, audit).

```python
from bridge import connect
from bridge.ag2 import register_tools

async with connect(cmd) as server:
    await register_tools(server, caller=assistant, executor=user_proxy, agent="triage", read_only=True)
    await user_proxy.a_initiate_chat(assistant, message="Triage the inbox.")
```

A sync ``initiate_chat`` works from a worker thread (``await asyncio.to_thread(user_proxy.initiate_chat, ...)``);
``HumanInputApprover(user_proxy)`` asks approvals through the proxy's human input.
"""

from __future__ import annotations

from typing import Any

from autogen import ConversableAgent

from ..guards import Guards
from ..toolset import Toolset
from .approval import HumanInputApprover
from .tool import MCPFunction, tool_signature
from .toolkit import Toolkit, ToolSource

__all__ = ["HumanInputApprover", "MCPFunction", "ToolSource", "Toolkit", "register_tools", "tool_signature"]


async def register_tools(source: Toolset | ToolSource, *, caller: ConversableAgent,
                         executor: ConversableAgent | None = None, agent: str | None = None,
                         guards: Guards | None = None, timeout: float | None = None, **guard_options: Any) -> list[str]:
    """Register the tools ``agent`` may use: schemas with ``caller`` (for its model), functions with ``executor``.

    Args:
        source: a ``Server``, a ``ServerGroup``, or a prepared non-growing ``Toolset``.
        caller: the agent whose model is offered the tools (it needs an ``llm_config``).
        executor: the agent that runs them (default: ``caller``); it runs only calls ``caller`` proposed.
        agent: named in approvals and audit records (default: ``caller.name``).
        guards, guard_options: see ``Guards`` (include, exclude, read_only, select, approval, approver,
            audit, interceptors, catalogue, always, ...).
        timeout: seconds for each call (default: the connection's own).

    Returns:
        The registered tool names.

    Raises:
        ConfigError: malformed guard options, a growing toolset, ``caller`` without ``llm_config``,
            or two servers offering the same name.
    """
    name = agent if agent is not None else (None if isinstance(source, Toolset) else caller.name)
    kit = Toolkit.of(source, agent=name, guards=guards, timeout=timeout, **guard_options)
    return await kit.register(caller, executor)
