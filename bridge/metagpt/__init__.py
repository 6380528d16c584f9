"""The MetaGPT adapter (MetaGPT 0.8.2): every MCP tool as a MetaGPT ``Action``, for roles and teams.

The only part of the bridge that imports ``metagpt``; it runs in the separate ``.venv-metagpt``
(``make metagpt``). A thin layer over ``bridge.toolset.Toolset``: one ``Action`` subclass per
allowed tool, generated at runtime (``bridge.metagpt.actions``), each call sent through the core's
one call path (validation, approval, audit naming the role, reconnection, timeouts).

```python
from bridge import connect
from bridge.metagpt import ToolRole, actions_for, equip

async with connect(cmd, env={"MULTIMAIL_API_KEY": key}) as mail:
    CheckInbox, *_ = await actions_for(mail, role="comms", include=["check_inbox"])
    print(await CheckInbox().run(limit=5))                 # a direct call, typed keywords

    comms = ToolRole(name="comms", profile="Communications Manager", config=config)
    await equip(comms, mail, include=["check_inbox", "get_thread", "reply_email"], approver=AutoApprove())
    engineer = ToolRole(name="engineer", profile="Engineer", config=config)
    await equip(engineer, mail, read_only=True)          # the same session, fewer tools
```

Roles get different tool sets from one ``Server`` (one session per server, shared); a role that
needs another key gets its own ``connect(...)`` with that key. Approvers: any ``bridge.approval``
one, e.g. ``CallbackApprover(fn)``, ``AutoApprove()`` or ``ConsoleApprover()`` (the console
prompt names the role as the agent).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any, Protocol

from ..approval import AutoApprove, CallbackApprover, ConsoleApprover
from ..errors import ConfigError
from ..guards import Guards
from ..toolset import Toolset
from .actions import MCPAction, ToolOutput, ToolResult, action_class, class_name, unique_class_names
from .role import ToolRole

__all__ = [
    "AutoApprove",
    "CallbackApprover",
    "ConsoleApprover",
    "MCPAction",
    "ToolOutput",
    "ToolResult",
    "ToolRole",
    "ToolSource",
    "action_class",
    "actions_for",
    "class_name",
    "equip",
    "toolset_for",
]


class ToolSource(Protocol):
    """Anything that builds a ``Toolset`` for an agent: a ``Server`` or a ``ServerGroup``."""

    def toolset(self, agent: str | None = None, guards: Guards | None = None, *, growing: bool = False,
                **guard_options: Any) -> Toolset: ...


def toolset_for(source: Toolset | ToolSource, role: str | None = None, guards: Guards | None = None,
                **guard_options: Any) -> Toolset:
    """The non-growing ``Toolset`` of ``role`` over ``source`` (MetaGPT fixes a role's actions up front).

    Raises:
        ConfigError: malformed guard options; a prepared ``Toolset`` that is growing, or given together
            with guards or another role name (it carries its own).
    """
    if isinstance(source, Toolset):
        if guards is not None or guard_options or (role is not None and role != source.agent):
            raise ConfigError("a Toolset already carries its agent and guards; "
                              "pass them to server.toolset(...) instead")
        if source.growing:
            raise ConfigError("MetaGPT fixes a role's actions when they are set: build the Toolset with growing=False")
        return source
    return source.toolset(role, guards, growing=False, **guard_options)


async def actions_for(source: Toolset | ToolSource, role: str | None = "comms", guards: Guards | None = None, *,
                      timeout: float | None = None, taken: Sequence[str] = (),
                      **guard_options: Any) -> list[type[MCPAction]]:
    """One ``Action`` subclass per tool ``role`` may use: in the order of the ``include`` patterns when
    given (a ``by_order`` role runs them so), else in catalogue order.

    Args:
        source: a ``Server``, a ``ServerGroup``, or a prepared non-growing ``Toolset``.
        role: the agent named in approvals and audit records (a role's ``name``); with a prepared
            ``Toolset``, ``None`` or the toolset's own agent (the default yields to it).
        guards, guard_options: see ``Guards`` (include, exclude, read_only, select, approval, approver,
            audit, interceptors, catalogue, always, ...).
        timeout: seconds for each call (default: the connection's own).
        taken: class names already in use (e.g. another server's actions), avoided.

    Returns:
        The classes; each class's ``tool_name`` is the agent-facing tool name.

    Raises:
        ConfigError: malformed guard options, two servers offering the same name, a bad ``Toolset``.
        ConnectError: a server of a loaded toolset could not be opened.
    """
    if isinstance(source, Toolset) and role == "comms" and source.agent != "comms":
        role = None  # the default name yields to a prepared toolset's own
    toolset = toolset_for(source, role, guards, **guard_options)
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


async def equip(role: Any, source: Toolset | ToolSource, guards: Guards | None = None, *,
                timeout: float | None = None, react_mode: str | None = None, max_react_loop: int | None = None,
                **guard_options: Any) -> list[type[MCPAction]]:
    """Give ``role`` (a MetaGPT ``Role``) its discovered actions in one call (``role.set_actions``).

    The agent named in approvals and audit records is ``role.name``. ``react_mode`` (``"by_order"``,
    ``"react"``, ``"plan_and_act"``) and ``max_react_loop`` are passed to ``role._set_react_mode``
    when given. Actions already on the role are replaced, as ``set_actions`` does.

    Raises:
        ConfigError: as ``actions_for``, or a role with no name.
    """
    name = getattr(role, "name", "") or None
    if name is None and not isinstance(source, Toolset):
        raise ConfigError("the role has no name, and the name is what approvals and audit records show")
    classes = await actions_for(source, None if isinstance(source, Toolset) else name, guards, timeout=timeout,
                                **guard_options)
    role.set_actions(classes)
    if react_mode is not None:
        role._set_react_mode(react_mode, max_react_loop=max_react_loop or 1)
    return classes
