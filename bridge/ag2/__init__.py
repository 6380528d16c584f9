"""The AG2 adapter (AG2 Classic 0.14, ``import autogen``): MCP tools for ``ConversableAgent``s.

The only part of the bridge that imports ``autogen``. A thin layer over the adapter contract
(``bridge.adapters``): ``tools_for`` is the entry point every adapter has and returns the
``MCPFunction``s ready to register; ``register_tools`` is AG2's idiom, the same plus registering
them with a caller (its model is offered the tools) and an executor (it runs them).

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

import asyncio
from typing import Any

from autogen import ConversableAgent

from ..adapters import Framework, Source, toolset_for
from ..guards import Guards
from ..toolset import Toolset
from .approval import HumanInputApprover
from .tool import MCPFunction, check_caller, register

__all__ = ["AG2", "HumanInputApprover", "MCPFunction", "register", "register_tools", "tools_for"]

AG2 = Framework("AG2")
"""AG2 fixes an agent's tools when they are registered."""


async def tools_for(source: Source, agent: str | None = None, guards: Guards | None = None, *,
                    timeout: float | None = None, **guard_options: Any) -> list[MCPFunction]:
    """The tools ``agent`` may use, as ``MCPFunction``s ready for ``register(functions, caller, executor)``.

    Must be awaited on the event loop that owns the sessions (inside ``async with connect(...)``):
    calls are sent from that loop.

    Args:
        source, agent, guards, guard_options: the adapter contract's (``bridge.adapters.toolset_for``).
        timeout: seconds for each call (default: the connection's own).

    Raises:
        ConfigError: see ``bridge.adapters.toolset_for``; two servers offer the same name.
        ConnectError: a server of a loaded toolset could not be opened.
    """
    toolset = toolset_for(source, AG2, agent, guards, **guard_options)
    loop = asyncio.get_running_loop()
    return [MCPFunction(toolset, entry, loop, timeout=timeout) for entry in await toolset.tools()]


async def register_tools(source: Source, *, caller: ConversableAgent, executor: ConversableAgent | None = None,
                         agent: str | None = None, guards: Guards | None = None, timeout: float | None = None,
                         **guard_options: Any) -> list[str]:
    """``tools_for`` registered at once: schemas with ``caller`` (for its model), functions with ``executor``.

    Args:
        source: a ``Server``, a ``ServerGroup``, or a prepared non-growing ``Toolset``.
        caller: the agent whose model is offered the tools (it needs an ``llm_config``).
        executor: the agent that runs them (default: ``caller``); it runs only calls ``caller`` proposed.
        agent: named in approvals and audit records (default: ``caller.name``, or a prepared toolset's own).
        guards, guard_options, timeout: as ``tools_for``.

    Returns:
        The registered tool names.

    Raises:
        ConfigError: as ``tools_for``, or ``caller`` without ``llm_config``.
    """
    check_caller(caller)  # before anything is opened
    name = agent if agent is not None or isinstance(source, Toolset) else caller.name
    functions = await tools_for(source, name, guards, timeout=timeout, **guard_options)
    return register(functions, caller, executor)
