"""An MCP tool as an AutoGen ``FunctionTool``: the server's schema, a typed signature, one session.

``MCPTool`` presents the server's inputSchema to the model unchanged (``schema`` is
overridden; AutoGen's own derivation from the signature would be lossy), validates
arguments with jsonschema before anything is sent, sends only the arguments the model
gave (an explicit ``null`` stays ``null``), and runs every call through the interceptor
chain of the agent it is bound to.

A tool is an AutoGen component: ``dump_component()`` writes its server (secrets as ``${VAR}``
references), the tool as listed and its serialisable interceptors; ``load_component()`` in
another process rebuilds it without connecting, and its first call opens one persistent
session shared by every loaded tool of that server (see ``components``).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, cast

import anyio
import mcp_types as types
from autogen_core import CancellationToken
from autogen_core._function_utils import args_base_model_from_signature, get_typed_signature
from autogen_core.tools import BaseTool, FunctionTool, ToolSchema
from pydantic import BaseModel
from typing_extensions import Self

from ..catalogue import ToolEntry
from ..connection import Connection, Interceptor, run_chain
from ..errors import ConnectError, ToolError
from ..results import CallResult
from ..schema import OMIT
from .components import ServerSpec, ToolComponentConfig, dump_interceptors, load_interceptors, shared_connections

__all__ = ["MCPTool", "run_guarded"]

logger = logging.getLogger("bridge.tool")


class MCPTool(FunctionTool):
    """One MCP tool, callable by AutoGen agents over the server's persistent session.

    Build these with ``Server.tools()``, not directly. The MCP metadata stays reachable:
    ``mcp_name``, ``title``, ``annotations``, ``input_schema``, ``output_schema``,
    ``icons``, ``meta``, and ``entry`` for all of it.

    ``run_json`` returns a ``CallResult``; an ``isError`` result raises ``ToolError``
    (AutoGen turns it into a tool result with ``is_error=True``, and the agent carries on).

    ``connection`` is a live connection, or a ``ServerSpec`` for a tool loaded from a
    component config (connected lazily through the shared registry on its first call).
    """

    component_provider_override = "bridge.autogen.MCPTool"
    component_config_schema = ToolComponentConfig  # type: ignore[assignment]

    def __init__(self, connection: Connection | ServerSpec, entry: ToolEntry, *, agent: str | None = None,
                 interceptors: Sequence[Interceptor] = ()) -> None:
        if isinstance(connection, ServerSpec):
            self._connection: Connection | None = None
            self._spec: ServerSpec | None = connection
        else:
            self._connection, self._spec = connection, None
        self._entry = entry
        self._agent = agent
        self._interceptors = tuple(interceptors)
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
    def connection(self) -> Connection:
        """The live connection.

        Raises:
            ConnectError: a loaded tool that has not been called yet has none.
        """
        if self._connection is None:
            raise ConnectError("this tool connects on its first call", server=self._spec.name if self._spec else None)
        return self._connection

    @property
    def interceptors(self) -> tuple[Interceptor, ...]:
        """The wrappers run around every call, outermost first."""
        return self._interceptors

    @property
    def agent(self) -> str | None:
        """The agent this tool set is bound to (used by approvals and the audit trail)."""
        return self._agent

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
    def schema(self) -> ToolSchema:
        """The server's inputSchema as ``parameters``, unchanged (a copy, so callers cannot mutate ours)."""
        return ToolSchema(name=self.name, description=self.description,
                          parameters=cast(Any, copy.deepcopy(dict(self._entry.input_schema))), strict=False)

    def bind(self, *, agent: str | None = None, interceptors: Sequence[Interceptor] | None = None) -> MCPTool:
        """A copy of this tool bound to another agent and/or interceptor chain."""
        source: Connection | ServerSpec | None = self._connection or self._spec
        assert source is not None
        return type(self)(source, self._entry, agent=agent if agent is not None else self._agent,
                          interceptors=self._interceptors if interceptors is None else interceptors)

    # -- calling -----------------------------------------------------------------------

    def _build_function(self, *, typed: bool) -> Any:
        compiled = self._entry.compiled
        tool = self

        async def call_mcp_tool(**kwargs: Any) -> CallResult:
            return await tool._invoke(compiled.to_wire(kwargs) if typed else dict(kwargs), None)

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

    async def _live(self) -> Connection:
        if self._connection is None:
            assert self._spec is not None
            # Held for the life of the event loop: a tool has no stop hook to release it.
            self._connection = await shared_connections().acquire(self._spec)
        return self._connection

    async def _invoke(self, arguments: Mapping[str, Any], call_id: str | None) -> CallResult:
        """Validate, run the interceptor chain, and raise ``ToolError`` on an error result."""
        connection = await self._live()
        result = await run_guarded(connection, self._entry.mcp_name, arguments, agent=self._agent, call_id=call_id,
                                   interceptors=self._interceptors)
        if result.is_error:
            raise ToolError(result.text or "the tool reported an error", result=result,
                            server=connection.name, tool=self._entry.mcp_name)
        return result

    async def run_json(self, args: Mapping[str, Any], cancellation_token: CancellationToken,
                       call_id: str | None = None) -> Any:
        """Run with the model's JSON arguments as-is (no pydantic round trip, nothing added)."""
        return await self._cancellable(self._invoke(dict(args), call_id), cancellation_token)

    async def _cancellable(self, call: Awaitable[CallResult], token: CancellationToken) -> CallResult:
        """Await ``call`` so that cancelling ``token`` cancels it (the server gets notifications/cancelled).

        A cancel scope rather than AutoGen's ``link_future`` on a new task: the task would cost
        two extra event-loop wake-ups on every call.

        Raises:
            asyncio.CancelledError: the token was cancelled, as for AutoGen's own linked futures.
        """
        if token.is_cancelled():  # nothing may reach the server
            if inspect.iscoroutine(call):
                call.close()
            raise asyncio.CancelledError(f"tool {self.name!r} cancelled by its CancellationToken")
        with anyio.CancelScope() as scope:
            token.add_callback(scope.cancel)
            return await call
        raise asyncio.CancelledError(f"tool {self.name!r} cancelled by its CancellationToken")

    async def run(self, args: BaseModel, cancellation_token: CancellationToken) -> Any:
        """Run from the args model AutoGen built from the signature (only fields actually set are sent)."""
        dumped = args.model_dump(exclude_unset=True)
        if self._typed:
            wire = self._entry.compiled.to_wire({k: v for k, v in dumped.items() if v is not OMIT})
        else:  # the untyped signature is (**arguments), which pydantic models as one field
            wire = dict(dumped.get("arguments") or {})
        return await self._cancellable(self._invoke(wire, None), cancellation_token)

    def return_value_as_string(self, value: Any) -> str:
        """What the model sees: the rendered result text, never a Python repr."""
        if isinstance(value, CallResult):
            return value.text
        return super().return_value_as_string(value)

    # -- component -----------------------------------------------------------------------

    def _to_config(self) -> ToolComponentConfig:  # type: ignore[override]
        """Server (secrets as ``${VAR}``), tool as listed, agent, interceptors.

        Raises:
            ValueError: an interceptor cannot be serialised.
        """
        spec = self._spec if self._spec is not None else ServerSpec.of(self.connection)
        return ToolComponentConfig(server=spec, tool=self._entry.to_wire(), name=self._entry.name, agent=self._agent,
                                   interceptors=dump_interceptors(self._interceptors))

    @classmethod
    def _from_config(cls, config: ToolComponentConfig) -> Self:  # type: ignore[override]
        """A tool that connects on its first call (no I/O here).

        Raises:
            ConfigError: an unknown interceptor kind.
        """
        entry = ToolEntry.from_mcp(types.Tool.model_validate(config.tool), config.name)
        return cls(config.server, entry, agent=config.agent, interceptors=load_interceptors(config.interceptors))


async def run_guarded(connection: Connection, name: str, arguments: Mapping[str, Any], *, agent: str | None = None,
                      call_id: str | None = None, interceptors: Sequence[Interceptor] = ()) -> CallResult:
    """Look up and validate, then run ``interceptors`` around the MCP call; never raises on ``isError``.

    Validation comes first, so approvers and the audit trail only ever see calls the
    server's schema accepts.

    Raises:
        ToolNotFound, InvalidArguments: before any interceptor runs.
        ConnectionLost, CallTimeout, ProtocolError, ConnectError: the call could not complete.
    """
    call = await connection.prepare(name, arguments, agent=agent, call_id=call_id)
    return await run_chain(interceptors, connection.invoke)(call)
