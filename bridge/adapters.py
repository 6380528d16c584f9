"""The one shape every framework adapter fills, framework-neutral.

Each adapter (``bridge.autogen``, ``bridge.ag2``, ``bridge.metagpt``, ``bridge.agent_framework``)
exposes the same entry point, ``tools_for(source, agent=..., guards=None, **guard_options)``,
returning that framework's tool objects, and builds it from three things written here once:

* ``toolset_for(source, framework, agent, guards, **guard_options)``: a ``Server``, a
  ``ServerGroup`` or a prepared ``Toolset`` plus the agent's name and guards become the agent's
  ``Toolset``. A prepared ``Toolset`` already carries its agent and guards; a framework that fixes
  its tools up front (``Framework(growing=False)``) refuses a growing one.
* ``ModelTool.of(toolset, entry)``: what the model is told about one tool (name, description, the
  inputSchema after ``Guards.schema_profile``, ``strict``), rendered as OpenAI function JSON by
  ``function_json()``. No adapter builds a schema itself.
* ``reply_text(outcome)``: what the model reads back for a call, the result's text (media as
  short placeholders, never base64), or ``error_text(failure)`` when the call gave no result (an
  ``isError`` result, a denial, which is one, or a ``BridgeError``: a refusal, a timeout, a lost
  connection), ``Error: <text>`` in every framework.

Every entry point also takes ``timeout``, seconds for each call (default: the connection's own),
handed to ``Toolset.call``.

``tests/test_adapter_contract.py`` runs one set of assertions against every adapter: a new
adapter passes it by using these, and one more row in its table.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from .catalogue import ToolEntry
from .errors import BridgeError, ConfigError
from .guards import Guards
from .profiles import apply_profile
from .results import CallResult
from .toolset import Toolset

__all__ = ["NO_ERROR_TEXT", "Framework", "ModelTool", "Source", "ToolSource", "error_text", "flagged", "reply_text",
           "toolset_for"]

NO_ERROR_TEXT = "the tool reported an error"
"""What the model reads for an ``isError`` result that carries no text."""


class ToolSource(Protocol):
    """Anything that builds a ``Toolset`` for an agent: a ``Server`` or a ``ServerGroup``."""

    def toolset(self, agent: str | None = None, guards: Guards | None = None, *, growing: bool = False,
                **guard_options: Any) -> Toolset: ...


Source: TypeAlias = "Toolset | ToolSource"
"""What every adapter's ``tools_for`` accepts: a ``Server``, a ``ServerGroup`` or a prepared ``Toolset``."""


@dataclass(frozen=True)
class Framework:
    """How a framework holds its tools, as far as the contract cares.

    Attributes:
        name: shown in errors ("AG2 fixes ...").
        growing: the framework re-reads its tool list before every model call (AutoGen's workbench),
            so tools a deferred search found can join it; otherwise the list is fixed when the tools
            are handed over, and a growing ``Toolset`` is refused.
    """

    name: str
    growing: bool = False


def toolset_for(source: Source, framework: Framework, agent: str | None = None, guards: Guards | None = None,
                **guard_options: Any) -> Toolset:
    """The ``Toolset`` of ``agent`` over ``source``, as ``framework`` needs it.

    Args:
        source: a ``Server``, a ``ServerGroup``, or a prepared ``Toolset`` (non-growing unless the
            framework re-reads its tool list).
        framework: the adapter's name and whether it re-reads its tool list every model call.
        agent: named in approvals and audit records.
        guards, guard_options: see ``Guards`` (include, exclude, read_only, select, approval, approver,
            audit, interceptors, catalogue, always, schema_profile, ...).

    Raises:
        ConfigError: malformed guard options; no agent named for a ``Server`` or ``ServerGroup``; a
            prepared ``Toolset`` given with guards or another agent's name, or growing when
            ``framework`` is not.
    """
    if isinstance(source, Toolset):
        if guards is not None or guard_options or (agent is not None and agent != source.agent):
            raise ConfigError("a Toolset already carries its agent and guards; pass them to "
                              "server.toolset(...) instead")
        if source.growing and not framework.growing:
            raise ConfigError(f"{framework.name} fixes an agent's tools up front: growing toolsets are refused; "
                              "build the Toolset with growing=False")
        return source
    if not agent:
        raise ConfigError(f"{framework.name}: name the agent (tools_for(source, agent=...)); approvals and audit "
                          "records show it")
    return source.toolset(agent, guards, growing=framework.growing, **guard_options)


@dataclass(frozen=True)
class ModelTool:
    """One tool as the model is told about it.

    Attributes:
        name: the agent-facing (OpenAI-safe) name.
        description: the server's description.
        parameters: the server's inputSchema, unchanged unless the guards name a ``schema_profile``
            (then rewritten for that provider, see ``bridge.profiles``); never mutate it.
        strict: the schema follows OpenAI's strict-mode rules (``schema_profile="openai-strict"``).
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    strict: bool = False

    @classmethod
    def of(cls, toolset: Toolset, entry: ToolEntry) -> ModelTool:
        """The view of ``entry``, one of ``toolset``'s tools, under its guards' schema profile."""
        profile = toolset.guards.schema_profile
        parameters = entry.input_schema if profile is None else apply_profile(entry.input_schema, profile)[0]
        return cls(entry.name, entry.description, parameters, strict=profile == "openai-strict")

    def schema(self) -> dict[str, Any]:
        """``parameters`` as a fresh copy, for a framework to keep (it cannot mutate the catalogue's)."""
        return copy.deepcopy(dict(self.parameters))

    def function_json(self) -> dict[str, Any]:
        """The tool as OpenAI Chat Completions function JSON; ``strict`` appears only when set."""
        function: dict[str, Any] = {"name": self.name, "description": self.description, "parameters": self.schema()}
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}


def reply_text(outcome: CallResult | BridgeError) -> str:
    """What the model reads back for a call: a result's text, else ``error_text(outcome)``."""
    if isinstance(outcome, CallResult) and not outcome.is_error:
        return outcome.text
    return error_text(outcome)


def error_text(failure: CallResult | BridgeError) -> str:
    """What the model reads for a call that gave no result: the ``isError`` result's text (a denial
    is such a result), or the bridge error's one line, ``flagged``."""
    if isinstance(failure, CallResult):
        return flagged(failure.text or NO_ERROR_TEXT)
    return flagged(str(failure))


def flagged(text: str) -> str:
    """A failure's text as the model reads it, ``Error: <text>``: the model has no other way to tell
    a failed call from a result (a tool message carries no error flag on the wire)."""
    return f"Error: {text}"
