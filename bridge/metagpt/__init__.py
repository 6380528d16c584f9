"""The MetaGPT adapter (MetaGPT 0.8.2): every MCP tool as a MetaGPT ``Action``, for roles and teams.

The only part of the bridge that imports ``metagpt``; it runs in the separate ``.venv-metagpt``
(``make metagpt``). A thin layer over the adapter contract (``bridge.adapters``): ``tools_for`` is
the entry point every adapter has and returns one ``Action`` subclass per allowed tool, generated
at runtime (``bridge.metagpt.actions``), each call sent through the core's one call path
(validation, approval, audit naming the role, reconnection, timeouts); ``equip`` is MetaGPT's
idiom, the same plus ``role.set_actions``.

```python
from bridge import connect
from bridge.metagpt import ToolRole, equip, tools_for

async with connect(cmd) as server:
    Search, *_ = await tools_for(server, agent="researcher", include=["search"])
    print(await Search().run(query="MCP"))                  # a direct call, typed keywords

    writer = ToolRole(name="writer", profile="Writer", config=config)
    await equip(writer, server, include=["search", "draft"], approver=AutoApprove())
    reviewer = ToolRole(name="reviewer", profile="Reviewer", config=config)
    await equip(reviewer, server, read_only=True)          # the same session, fewer tools
```

Roles get different tool sets from one ``Server`` (one session per server, shared). Approvers: any
``bridge.approval`` one, e.g. ``CallbackApprover(fn)``, ``AutoApprove()`` or ``ConsoleApprover()``
(the console prompt names the role as the agent).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from ..adapters import Framework, Source, toolset_for
from ..approval import AutoApprove, CallbackApprover, ConsoleApprover
from ..guards import Guards
from ..toolset import Toolset
from .actions import MCPAction, ToolOutput, ToolResult, action_class, class_name, unique_class_names
from .role import ToolRole

__all__ = [
    "METAGPT",
    "AutoApprove",
    "CallbackApprover",
    "ConsoleApprover",
    "MCPAction",
    "ToolOutput",
    "ToolResult",
    "ToolRole",
    "action_class",
    "actions_for",
    "class_name",
    "equip",
    "tools_for",
]

METAGPT = Framework("MetaGPT")
"""MetaGPT fixes a role's actions when they are set."""


async def tools_for(source: Source, agent: str | None = None, guards: Guards | None = None, *,
                    timeout: float | None = None, taken: Sequence[str] = (),
                    **guard_options: Any) -> list[type[MCPAction]]:
    """One ``Action`` subclass per tool ``agent`` may use: in the order of the ``include`` patterns when
    given (a ``by_order`` role runs them so), else in catalogue order.

    Args:
        source, agent, guards, guard_options: the adapter contract's (``bridge.adapters.toolset_for``);
            ``agent`` is the role's ``name``.
        timeout: seconds for each call (default: the connection's own).
        taken: class names already in use (e.g. another server's actions), avoided.

    Returns:
        The classes; each class's ``tool_name`` is the agent-facing tool name.

    Raises:
        ConfigError: see ``bridge.adapters.toolset_for``; two servers offer the same name.
        ConnectError: a server of a loaded toolset could not be opened.
    """
    toolset = toolset_for(source, METAGPT, agent, guards, **guard_options)
    entries = await toolset.tools()
    servers = {}
    for entry in entries:
        route = toolset.known_route(entry.name)
        servers[entry.name] = route.connection.name if route is not None else ""
    include = toolset.guards.include
    if include:
        # by_order roles run their actions in list order: the order the caller named them in.
        def rank(name: str) -> int:
            return next((i for i, p in enumerate(include) if fnmatchcase(name, p)), len(include))
        entries = sorted(entries, key=lambda e: min(rank(e.name), rank(e.mcp_name)))
    names = unique_class_names(entries, servers, set(taken))
    return [action_class(toolset, entry, names[entry.name], timeout=timeout) for entry in entries]


actions_for = tools_for
"""MetaGPT's word for ``tools_for``."""


async def equip(role: Any, source: Source, guards: Guards | None = None, *,
                timeout: float | None = None, react_mode: str | None = None, max_react_loop: int | None = None,
                **guard_options: Any) -> list[type[MCPAction]]:
    """Give ``role`` (a MetaGPT ``Role``) its discovered actions in one call (``role.set_actions``).

    The agent named in approvals and audit records is ``role.name``. ``react_mode`` (``"by_order"``,
    ``"react"``, ``"plan_and_act"``) and ``max_react_loop`` are passed to ``role._set_react_mode``
    when given. Actions already on the role are replaced, as ``set_actions`` does.

    Raises:
        ConfigError: as ``tools_for`` (a role with no name names no agent).
    """
    name = None if isinstance(source, Toolset) else getattr(role, "name", "") or None
    classes = await tools_for(source, name, guards, timeout=timeout, **guard_options)
    role.set_actions(classes)
    if react_mode is not None:
        role._set_react_mode(react_mode, max_react_loop=max_react_loop or 1)
    return classes
