"""An MCP tool as an AutoGen ``FunctionTool``: the server's schema, a typed signature, one session.

``MCPTool`` presents the tool to the model as the adapter contract's ``ModelTool`` says (the
server's inputSchema, unchanged unless the guards name a schema profile; ``schema`` is
overridden, AutoGen's own derivation from the signature would be lossy), validates
arguments with jsonschema before anything is sent, sends only the arguments the model
gave (an explicit ``null`` stays ``null``), and sends every call through its agent's
``Toolset`` (the guards: audit, approval, interceptors; the core's one call path).

AutoGen shows the model ``str()`` of whatever a tool raises, so every failure is raised with
the contract's one error text as its ``str()`` (``bridge.adapters.error_text``), keeping its
class (``InvalidArguments``, ``ToolError`` for an ``isError`` result or a denial, ...) for code
that catches it.

A tool is an AutoGen component: ``dump_component()`` writes its servers (secrets as ``${VAR}``
references, every connection option), the tool as listed and its agent's guards;
``load_component()`` in another process rebuilds it without connecting, and its first call
opens one persistent session shared by every loaded tool of that server
(``bridge.registry``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any, cast

import mcp_types as types
from autogen_core import CancellationToken, MessageHandlerContext
from autogen_core._function_utils import args_base_model_from_signature, get_typed_signature
from autogen_core.tools import BaseTool, FunctionTool, ToolSchema
from pydantic import BaseModel
from typing_extensions import Self

from ..adapters import NO_ERROR_TEXT, ModelTool, flagged
from ..catalogue import ToolEntry
from ..connection import Connection, Interceptor
from ..errors import BridgeError, ConnectError, ToolError
from ..guards import Guards
from ..results import CallResult
from ..schema import OMIT
from ..steps import Step
from ..tasks import linked_to
from ..toolset import Toolset
from .components import ToolComponentConfig, specs_of

__all__ = ["MCPTool"]

logger = logging.getLogger("bridge.tool")


def autogen_step(call_id: str | None) -> Step:
    """The model's step of an AutoGen call: the ``FunctionCall.id``, and as the run the key of the
    runtime agent handling the message (``MessageHandlerContext``): AutoGen's session key, which
    in an AgentChat team is the team's id (shared by its participants, kept across its runs) and
    under a ``TypeSubscription`` the topic's source. An agent run on its own, outside any
    runtime, has none."""
    try:
        run_id: str | None = MessageHandlerContext.agent_id().key
    except RuntimeError:
        run_id = None
    return Step("autogen", tool_call_id=call_id, run_id=run_id)


class MCPTool(FunctionTool):
    """One MCP tool, callable by AutoGen agents over the server's persistent session.

    Build these with ``server.tools_for(agent, ...)``, not directly. The MCP metadata stays reachable:
    ``mcp_name``, ``title``, ``annotations``, ``input_schema``, ``output_schema``,
    ``icons``, ``meta``, and ``entry`` for all of it.

    ``run_json`` returns a ``CallResult``; an ``isError`` result raises ``ToolError``
    (AutoGen turns it into a tool result with ``is_error=True``, and the agent carries on).

    ``toolset`` is the agent's tool set the call goes through; a tool loaded from a component
    config connects lazily through the shared registry on its first call. ``timeout``: seconds
    for each call (default: the connection's own).
    """

    component_provider_override = "bridge.autogen.MCPTool"
    component_config_schema = ToolComponentConfig  # type: ignore[assignment]

    def __init__(self, toolset: Toolset, entry: ToolEntry, *, timeout: float | None = None) -> None:
        self._toolset = toolset
        self._entry = entry
        self.timeout = timeout
        # What FunctionTool.__init__ sets, minus its pydantic args model: building that costs
        # ~2-3 ms a tool (seconds for a large catalogue) and neither run_json nor schema needs it,
        # so args_type() builds it on first use.
        self._untyped_fallback = False
        self._func_cache: Any = None
        self._signature_cache: inspect.Signature | None = None
        self._global_imports = []
        self._has_cancellation_support = False
        BaseTool.__init__(self, BaseModel, CallResult, entry.name, entry.description,  # type: ignore[type-var]
                          strict=False)
        self._args_model: type[BaseModel] | None = None
        self._what = f"tool {entry.name!r}"
        self._view: ModelTool | None = None

    def args_type(self) -> type[BaseModel]:
        """The pydantic model of the arguments, derived from the signature (built on first use)."""
        if self._args_model is None:
            try:
                model = args_base_model_from_signature(self.name + "args", self._signature)
            except Exception as e:  # pydantic could not model the derived types: keep the tool, drop the typing
                logger.warning("tool %r: signature too exotic for AutoGen (%s); typed as **arguments", self.name, e)
                self._untyped_fallback = True
                self._func_cache = self._signature_cache = None
                model = args_base_model_from_signature(self.name + "args", self._signature)
            self._args_model = self._args_type = model
        return self._args_model

    # The Python function and its signature are derived on first use too (large catalogues).
    @property
    def _typed(self) -> bool:
        return self._entry.compiled.typed and not self._untyped_fallback

    @property
    def _func(self) -> Any:  # type: ignore[override]  # FunctionTool assigns it; we derive it
        if self._func_cache is None:
            self._func_cache = self._build_function(typed=self._typed)
        return self._func_cache

    @property
    def _signature(self) -> inspect.Signature:  # type: ignore[override]
        if self._signature_cache is None:
            self._signature_cache = get_typed_signature(self._func)
        return self._signature_cache

    # -- metadata ----------------------------------------------------------------------

    @property
    def entry(self) -> ToolEntry:
        return self._entry

    @property
    def toolset(self) -> Toolset:
        """The agent's tool set every call goes through."""
        return self._toolset

    @property
    def connection(self) -> Connection:
        """The live connection serving this tool.

        Raises:
            ConnectError: a loaded tool that has not been called yet has none.
        """
        route = self._toolset.known_route(self._entry.name)
        if route is None:
            raise ConnectError("this tool connects on its first call",
                               server=self._toolset.specs[0].name if self._toolset.specs else None)
        return route.connection

    @property
    def interceptors(self) -> tuple[Interceptor, ...]:
        """The wrappers run around every call, outermost first."""
        return self._toolset.chain

    @property
    def agent(self) -> str | None:
        """The agent this tool set is bound to (used by approvals and the audit trail)."""
        return self._toolset.agent

    @property
    def mcp_name(self) -> str:
        return self._entry.mcp_name

    @property
    def title(self) -> str | None:
        return self._entry.title

    @property
    def annotations(self) -> Any:
        return self._entry.annotations

    @property
    def input_schema(self) -> Mapping[str, Any]:
        return self._entry.input_schema

    @property
    def output_schema(self) -> Mapping[str, Any] | None:
        return self._entry.output_schema

    @property
    def icons(self) -> tuple[Mapping[str, Any], ...]:
        return self._entry.icons

    @property
    def meta(self) -> Mapping[str, Any] | None:
        return self._entry.meta

    @property
    def signature(self) -> inspect.Signature:
        """The typed Python signature derived from the inputSchema."""
        return inspect.signature(self._func)

    @property
    def model_tool(self) -> ModelTool:
        """What the model is told about this tool (``bridge.adapters.ModelTool``)."""
        if self._view is None:
            self._view = ModelTool.of(self._toolset, self._entry)
        return self._view

    @property
    def schema(self) -> ToolSchema:
        """``model_tool`` as AutoGen's ``ToolSchema`` (a copy, so callers cannot mutate ours)."""
        view = self.model_tool
        return ToolSchema(name=view.name, description=view.description, parameters=cast(Any, view.schema()),
                          strict=view.strict)

    # -- calling -----------------------------------------------------------------------

    def _build_function(self, *, typed: bool) -> Any:
        compiled = self._entry.compiled
        tool = self

        async def call_mcp_tool(**kwargs: Any) -> CallResult:
            arguments = compiled.to_wire(kwargs) if typed else dict(kwargs)
            return await tool._call(arguments)

        if typed:
            call_mcp_tool.__signature__ = compiled.signature.replace(return_annotation=CallResult)  # type: ignore[attr-defined]
            call_mcp_tool.__annotations__ = {
                **{p.name: p.annotation for p in compiled.signature.parameters.values()}, "return": CallResult}
        else:
            params = [inspect.Parameter("arguments", inspect.Parameter.VAR_KEYWORD, annotation=Any)]
            call_mcp_tool.__signature__ = inspect.Signature(params, return_annotation=CallResult)  # type: ignore[attr-defined]
            call_mcp_tool.__annotations__ = {"arguments": Any, "return": CallResult}
        call_mcp_tool.__name__ = self._entry.name.replace("-", "_")
        call_mcp_tool.__qualname__ = call_mcp_tool.__name__
        call_mcp_tool.__doc__ = self._entry.description
        return call_mcp_tool

    async def _call(self, arguments: Mapping[str, Any], call_id: str | None = None) -> CallResult:
        """The result, or the failure raised as the model should read it (see the module docstring);
        an ``isError`` result raises ``ToolError``, which AutoGen reports to the model as an error."""
        try:
            result = await self._toolset.call(self._entry.name, arguments, call_id=call_id, timeout=self.timeout,
                                              step=autogen_step(call_id))
        except BridgeError as e:
            raise _read_by_the_model(e)  # noqa: B904 (the same error, re-raised)
        if result.is_error:
            error = ToolError(result.text or NO_ERROR_TEXT, result=result, server=result.server,
                              tool=self._entry.mcp_name)
            raise _read_by_the_model(error)
        return result

    async def run_json(self, args: Mapping[str, Any], cancellation_token: CancellationToken,
                       call_id: str | None = None) -> Any:
        """Run with the model's JSON arguments as-is (no pydantic round trip, nothing added)."""
        async with linked_to(cancellation_token, self._what):
            return await self._call(args, call_id)

    async def run(self, args: BaseModel, cancellation_token: CancellationToken) -> Any:
        """Run from the args model AutoGen built from the signature (only fields actually set are sent)."""
        dumped = args.model_dump(exclude_unset=True)
        if self._typed:
            wire = self._entry.compiled.to_wire({k: v for k, v in dumped.items() if v is not OMIT})
        else:  # the untyped signature is (**arguments), which pydantic models as one field
            wire = dict(dumped.get("arguments") or {})
        async with linked_to(cancellation_token, self._what):
            return await self._call(wire)

    def return_value_as_string(self, value: Any) -> str:
        """What the model sees: the rendered result text, never a Python repr."""
        if isinstance(value, CallResult):
            return value.text
        return super().return_value_as_string(value)

    # -- component -----------------------------------------------------------------------

    def _to_config(self) -> ToolComponentConfig:  # type: ignore[override]
        """Servers (secrets as ``${VAR}``, every option), the tool as listed, agent, guards.

        Raises:
            ValueError: a guard or option cannot be written down (it is refused, never dropped).
        """
        return ToolComponentConfig(servers=specs_of(self._toolset), tool=self._entry.to_wire(), name=self._entry.name,
                                   agent=self._toolset.agent, guards=self._toolset.guards.to_config(),
                                   timeout=self.timeout)

    @classmethod
    def _from_config(cls, config: ToolComponentConfig) -> Self:  # type: ignore[override]
        """A tool that connects on its first call (no I/O here).

        Raises:
            ConfigError: unknown guard keys or interceptor kinds.
        """
        entry = ToolEntry.from_mcp(types.Tool.model_validate(config.tool), config.name)
        toolset = Toolset(list(config.servers), agent=config.agent, guards=Guards.from_config(config.guards))
        return cls(toolset, entry, timeout=config.timeout)



_MODEL_FACING: dict[type[BridgeError], type[BridgeError]] = {}


def _model_facing(cls: type[BridgeError]) -> type[BridgeError]:
    # The same class for ``except`` clauses, reading as the text the model is shown; rendered
    # when shown, so the class's own masking still applies then.
    def __str__(self: BridgeError) -> str:
        return flagged(cls.__str__(self))

    if cls not in _MODEL_FACING:
        _MODEL_FACING[cls] = type(cls.__name__, (cls,), {"__str__": __str__, "__module__": cls.__module__,
                                                          "__qualname__": cls.__qualname__})
    return _MODEL_FACING[cls]


def _read_by_the_model(error: BridgeError) -> BridgeError:
    """``error``, its ``str()`` now the contract's error text (``bridge.adapters.error_text``)."""
    if type(error) not in _MODEL_FACING.values():
        error.__class__ = _model_facing(type(error))
    return error
