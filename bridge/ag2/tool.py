"""An MCP tool as an AG2 function: the contract's schema for the model, one call path for the executor.

AG2 keeps two things per tool: the function JSON in the caller's ``llm_config["tools"]`` (what the
model is offered) and a Python callable in the executor's ``function_map`` (what runs the call).
``MCPFunction`` is both: ``model_tool.function_json()`` is the first (``bridge.adapters.ModelTool``:
the server's inputSchema, unchanged unless the guards name a schema profile), and the function
itself is the second, a callable that sends every call through the agent's ``Toolset`` with the
model's tool call id (read from the message by the executor's reply hook; a fresh id when AG2 gave
none). ``register`` hands a list of them to a caller and an executor.

AG2 0.14 decides how to run a function by ``is_coroutine_callable``: an async function in a sync
chat is run on a fresh event loop in a new thread, where the MCP session (owned by the loop that
opened it) cannot be used. So ``MCPFunction`` is a sync callable that adapts to where it is called:

* on a thread with no running loop (``initiate_chat`` in a worker thread): the call is handed to
  the owning loop and waited for;
* on the owning loop (``a_initiate_chat``): it returns a coroutine, which ``a_execute_function``
  awaits there;
* on another running loop: it returns a coroutine that waits for the owning loop without blocking.

A blocking ``initiate_chat`` on the owning loop's own thread would wait for a loop it is blocking;
the call then fails with one line saying what to do instead, rather than deadlocking.

One executor may run tools for several callers (a ``UserProxyAgent`` serving a whole team), and a
group chat hands a tool call to whichever agent can execute that name. The function map therefore
holds a ``_Dispatch`` per name, which runs the call in the tool set of the agent that *proposed* it
(read from the message by a reply hook) and refuses a name outside that agent's set.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from autogen import Agent, ConversableAgent, GroupChatManager

from ..adapters import ModelTool, error_text, reply_text
from ..catalogue import ToolEntry
from ..errors import BridgeError, ConfigError, ConnectionLost
from ..steps import Step
from ..toolset import Toolset

__all__ = ["MCPFunction", "register"]

logger = logging.getLogger("bridge.ag2")

# How often a thread waiting for the owning loop checks that the loop is still alive.
_LIVENESS_CHECK = 0.5



@dataclass
class _Proposal:
    """The tool-call message the executor is answering: who proposed it, and its calls' ids."""

    proposer: str | None
    ids: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def take_id(self, name: str, arguments: Mapping[str, Any]) -> str | None:
        """The model's id of the call of ``name`` with ``arguments`` (each id is handed out once)."""
        waiting = self.ids.get((name, _key(arguments)))
        return waiting.pop(0) if waiting else None


_PROPOSAL: ContextVar[_Proposal | None] = ContextVar("bridge_ag2_proposal", default=None)
"""Set by the executor's reply hook before AG2 runs the message's tool calls."""


def _key(arguments: Any) -> str:
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)


def blocked_loop_error(name: str) -> ConfigError:
    """The one-line error for a blocking chat on the loop that owns the session."""
    return ConfigError(f"tool {name!r} was called from a blocking initiate_chat on the event loop that owns the MCP "
                       "session; use 'await agent.a_initiate_chat(...)', or run the sync chat in a thread: "
                       "'await asyncio.to_thread(agent.initiate_chat, ...)'")


class MCPFunction:
    """One MCP tool as the callable AG2 executes (``executor.function_map[name]``).

    Called with the model's JSON arguments as keywords; returns the rendered result text
    (``CallResult.text``), or on the owning event loop a coroutine of it (see the module docstring).
    An ``isError`` result or a bridge error comes back as ``bridge.adapters.error_text`` says, so
    the chat carries on. Build these with ``bridge.ag2.tools_for``.

    Args:
        toolset: the agent's tools (every call goes through ``toolset.call``).
        entry: the tool.
        loop: the event loop that owns the toolset's sessions.
        timeout: seconds for each call (default: the connection's own).
    """

    def __init__(self, toolset: Toolset, entry: ToolEntry, loop: asyncio.AbstractEventLoop, *,
                 timeout: float | None = None) -> None:
        self.toolset = toolset
        self.entry = entry
        self.loop = loop
        self.timeout = timeout
        self.__name__ = entry.name
        self.__qualname__ = entry.name
        self.__doc__ = entry.description
        self.model_tool = ModelTool.of(toolset, entry)

    @property
    def agent(self) -> str | None:
        """The agent named in approvals and audit records."""
        return self.toolset.agent

    def __call__(self, **arguments: Any) -> str | Awaitable[str]:
        proposal = _PROPOSAL.get()
        model_id = proposal.take_id(self.entry.name, arguments) if proposal else None
        call_id = model_id or f"ag2_{uuid.uuid4().hex}"
        step = Step("ag2", tool_call_id=model_id)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return self._wait(arguments, call_id, step)
        if running is self.loop:
            return self._on_loop(arguments, call_id, step)
        return self._from_other_loop(arguments, call_id, step)

    async def _run(self, arguments: Mapping[str, Any], call_id: str, step: Step) -> str:
        try:
            result = await self.toolset.call(self.entry.name, arguments, call_id=call_id, timeout=self.timeout,
                                             step=step)
        except BridgeError as e:
            return reply_text(e)
        return reply_text(result)

    async def _on_loop(self, arguments: Mapping[str, Any], call_id: str, step: Step) -> str:
        # Created on the owning loop's thread; AG2's sync path runs it on a loop of its own instead,
        # which means that thread is blocked in initiate_chat and the session cannot be reached.
        # AG2 loses an exception raised there (its helper thread), so the error is logged and
        # returned: the transcript and the model both show what to change.
        if asyncio.get_running_loop() is not self.loop:
            error = blocked_loop_error(self.entry.name)
            logger.error("%s", error)
            return error_text(error)
        return await self._run(arguments, call_id, step)

    async def _from_other_loop(self, arguments: Mapping[str, Any], call_id: str, step: Step) -> str:
        future = self._submit(arguments, call_id, step)
        return await asyncio.wrap_future(future)

    def _submit(self, arguments: Mapping[str, Any], call_id: str, step: Step) -> concurrent.futures.Future[str]:
        if self.loop.is_closed() or not self.loop.is_running():
            raise ConfigError(f"tool {self.entry.name!r}: the event loop that owns the MCP session is no longer "
                              "running; call tools inside the 'async with connect(...)' that registered them")
        return asyncio.run_coroutine_threadsafe(self._run(arguments, call_id, step), self.loop)

    def _wait(self, arguments: Mapping[str, Any], call_id: str, step: Step) -> str:
        future = self._submit(arguments, call_id, step)
        try:
            while True:
                try:
                    return future.result(_LIVENESS_CHECK)
                except concurrent.futures.TimeoutError:
                    if self.loop.is_closed() or not self.loop.is_running():
                        future.cancel()
                        return error_text(ConnectionLost("the event loop that owns the MCP session stopped "
                                                         "during the call", tool=self.entry.name))
        except BaseException:
            future.cancel()
            raise

    def __repr__(self) -> str:
        return f"MCPFunction({self.entry.name!r}, agent={self.agent!r})"


class _Dispatch:
    """The ``function_map`` entry for one name on one executor: runs the proposing agent's tool."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__name__ = name
        self.__qualname__ = name
        self.routes: dict[str, MCPFunction] = {}

    def __call__(self, **arguments: Any) -> str | Awaitable[str]:
        proposal = _PROPOSAL.get()
        proposer = proposal.proposer if proposal is not None else None
        function = self.routes.get(proposer) if proposer is not None else None
        if function is None and proposer is None and len(self.routes) == 1:
            # Called outside a chat turn (directly, or by code that bypassed the reply hook).
            function = next(iter(self.routes.values()))
        if function is None:
            who = f"agent {proposer!r}" if proposer is not None else "an unnamed caller"
            return error_text(ConfigError(f"not among the tools of {who}", tool=self.name))
        return function(**arguments)


def _proposer_hook(recipient: ConversableAgent, messages: list[dict[str, Any]] | None = None,
                   sender: Agent | None = None, config: Any | None = None) -> tuple[bool, Any]:
    # Records who asked for the tool calls being answered, and their ids; never answers itself.
    message = messages[-1] if messages else {}
    proposer: str | None = None
    calls = message.get("tool_calls") or []
    if calls or message.get("function_call"):
        # A group chat names the speaker on the copies it relays; a speaker's own copy (it runs
        # its own tools) and a two-agent chat's messages carry no name: the speaker, or the sender.
        name = message.get("name")
        if isinstance(name, str) and name:
            proposer = name
        elif isinstance(sender, GroupChatManager):
            proposer = recipient.name
        else:
            proposer = sender.name if sender is not None else None
    proposal = _Proposal(proposer)
    for call in calls:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            continue  # AG2 answers broken JSON itself; nothing is called
        if call.get("id"):
            proposal.ids.setdefault((str(function.get("name")), _key(arguments)), []).append(str(call["id"]))
    _PROPOSAL.set(proposal)
    return False, None


def install(executor: ConversableAgent, caller: str, functions: Mapping[str, MCPFunction]) -> None:
    """Make ``executor`` run ``functions`` for calls that ``caller`` proposes (and only for those)."""
    hooked = executor.__dict__.setdefault("_bridge_ag2_dispatch", {})
    if not hooked:
        # Position 0: it must see every message before the reply that executes tool calls.
        executor.register_reply([Agent, None], _proposer_hook, position=0)
    updates: dict[str, Any] = {}
    for name, function in functions.items():
        dispatch = hooked.get(name)
        if dispatch is None or executor.function_map.get(name) is not dispatch:
            dispatch = hooked[name] = _Dispatch(name)
            updates[name] = dispatch
        dispatch.routes[caller] = function
    if updates:
        executor.register_function(updates, silent_override=True)



def register(functions: Sequence[MCPFunction], caller: ConversableAgent,
             executor: ConversableAgent | None = None) -> list[str]:
    """Offer ``functions`` to ``caller``'s model and let ``executor`` (default: ``caller``) run them,
    only for calls ``caller`` proposed.

    Returns:
        The registered (agent-facing) tool names.

    Raises:
        ConfigError: ``caller`` has no ``llm_config``.
    """
    config = caller.llm_config
    if not config:
        raise _no_model(caller)
    by_name = {f.entry.name: f for f in functions}
    signatures = [f.model_tool.function_json() for f in by_name.values()]
    if signatures:
        # Each update_tool_signature rebuilds the agent's OpenAI client (~0.1 s): all but the
        # last join the config directly, and one public update rebuilds the client once.
        kept = [t for t in (config.get("tools") or []) if t.get("function", {}).get("name") not in by_name]
        config["tools"] = kept + signatures[:-1]
        caller.update_tool_signature(signatures[-1], is_remove=False, silent_override=True)
    install(executor if executor is not None else caller, caller.name, by_name)
    return list(by_name)


def check_caller(caller: ConversableAgent) -> None:
    """Refuse a caller whose model cannot be offered tools.

    Raises:
        ConfigError: ``caller`` has no ``llm_config``.
    """
    if not caller.llm_config:
        raise _no_model(caller)


def _no_model(caller: ConversableAgent) -> ConfigError:
    return ConfigError(f"agent {caller.name!r} has no llm_config, so its model cannot be offered tools; "
                       "give it one, or register the tools with the agent that calls the model")
