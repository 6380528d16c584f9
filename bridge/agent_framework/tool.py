"""An MCP tool as an Agent Framework ``FunctionTool``: the server's schema, one session, one call path.

``MCPFunctionTool`` gives the framework the adapter contract's ``ModelTool`` (the server's
inputSchema, unchanged unless the guards name a schema profile): its schema is the tool's JSON-schema
``input_model``, and its function JSON is what the chat client sends the model. Arguments are
checked once, by the core, against the server's schema: the framework's own lightweight checks
for schema-supplied tools are skipped, because they reject valid JSON (``2.0`` for an
``integer``) and answer with a bare "Argument parsing failed". Every call goes through the
agent's ``Toolset`` (validation, approval, audit naming the agent, reconnection, timeouts).

What the model reads back is the contract's ``reply_text``: the rendered result text, or for an
``isError`` result or a ``BridgeError`` its ``error_text``, returned rather than raised, because
the framework turns a raised exception into "Function failed." with the detail dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Literal

from agent_framework import FunctionInvocationContext, FunctionTool

from ..adapters import ModelTool, reply_text
from ..approval import Decision
from ..catalogue import ToolEntry
from ..errors import BridgeError
from ..steps import Step
from ..toolset import Toolset
from .approval import FrameworkApprovals

__all__ = ["MCPFunctionTool"]

logger = logging.getLogger("bridge.agent_framework")

ApprovalMode = Literal["always_require", "never_require"]

# The model's id for the call being run: the framework passes it to invoke(), not to the function.
_CALL_ID: ContextVar[str | None] = ContextVar("bridge_agent_framework_call_id", default=None)


class MCPFunctionTool(FunctionTool):
    """One MCP tool for Agent Framework agents, over its server's persistent session.

    Build these with ``bridge.agent_framework.tools_for``. ``entry`` keeps the MCP metadata
    (``mcp_name``, ``annotations``, ``input_schema``, ...), ``toolset`` the agent's guards.

    Args:
        toolset: the agent's tools; every call goes through ``toolset.call``.
        entry: the tool as listed.
        approval_mode: ``"always_require"`` when the framework asks the caller before each call.
        approvals: the ``FrameworkApprovals`` that reports the caller's answers to the gate, when
            the framework asks (``None``: the bridge's own approver asks, or nobody).
        timeout: seconds for each call (default: the connection's own).
    """

    def __init__(self, toolset: Toolset, entry: ToolEntry, *, approval_mode: ApprovalMode = "never_require",
                 approvals: FrameworkApprovals | None = None, timeout: float | None = None) -> None:
        self.toolset = toolset
        self.entry = entry
        self.approvals = approvals
        self.timeout = timeout
        self.model_tool = ModelTool.of(toolset, entry)
        self._decisions: dict[str, Decision] = {}

        # The context parameter makes the framework hand over its FunctionInvocationContext (the
        # agent session's id is the call's run) on every path, middleware or not; the server's
        # schema stays the tool's input model, so the model never sees it.
        async def call_mcp_tool(bridge_invocation: FunctionInvocationContext | Any = None, **arguments: Any) -> str:
            if isinstance(bridge_invocation, FunctionInvocationContext):
                # Its arguments are the call's, whole: a tool argument named like this parameter too.
                given = bridge_invocation.arguments
                return await self._call(dict(given) if isinstance(given, Mapping) else arguments, bridge_invocation)
            if bridge_invocation is not None:  # a tool argument of that name, passed without a context
                arguments = {"bridge_invocation": bridge_invocation, **arguments}
            return await self._call(arguments, None)

        call_mcp_tool.__name__ = entry.name.replace("-", "_")
        super().__init__(name=entry.name, description=entry.description, approval_mode=approval_mode,
                         func=call_mcp_tool, input_model=self.model_tool.schema(),
                         additional_properties={"mcp_name": entry.mcp_name})

    def to_json_schema_spec(self) -> dict[str, Any]:
        """What the chat client sends the model: the contract's function JSON (``strict`` included)."""
        return self.model_tool.function_json()

    @property
    def mcp_name(self) -> str:
        """The tool's name on the wire."""
        return self.entry.mcp_name

    @property
    def agent(self) -> str | None:
        """The agent named in approvals and audit records."""
        return self.toolset.agent

    # The core validates against the full inputSchema; see the module docstring.
    def _prepare_arguments(self, arguments: Any) -> dict[str, Any]:
        if arguments is None:
            return {}
        if isinstance(arguments, Mapping):
            return dict(arguments)
        return super()._prepare_arguments(arguments)

    async def invoke(self, *, arguments: Any = None, context: Any = None, tool_call_id: str | None = None,  # type: ignore[override]
                     **kwargs: Any) -> Any:
        """Run the tool as the framework does, with the model's call id kept for audit and approval."""
        token = _CALL_ID.set(tool_call_id)
        try:
            return await super().invoke(arguments=arguments, context=context, tool_call_id=tool_call_id, **kwargs)
        finally:
            _CALL_ID.reset(token)

    def _framework_decision(self, call_id: str | None) -> Decision | None:
        # The framework runs a tool marked always_require only for a model's tool call whose
        # approval request the caller approved; a call without a call id was not asked about.
        if call_id is None:
            return None
        remembered = self._decisions.pop(call_id, None)
        if self.approvals is None or self.approval_mode != "always_require":
            return None
        return remembered or self.approvals.approved()

    def remember(self, call_id: str, decision: Decision) -> None:
        """Keep the caller's decision on an approval request for when the framework runs the call."""
        self._decisions[call_id] = decision

    async def record_denial(self, call_id: str, arguments: Mapping[str, Any], decision: Decision) -> None:
        """Run a denied call through the guards so the audit trail records it; it never reaches the server."""
        try:
            await self.toolset.call(self.entry.name, arguments, call_id=call_id, timeout=self.timeout,
                                    approval=decision, step=Step("agent_framework", tool_call_id=call_id))
        except BridgeError as e:  # e.g. arguments the schema refuses: nothing was sent either way
            logger.info("denied call of %s not recorded: %s", self.entry.name, e)

    async def _call(self, arguments: Mapping[str, Any], context: FunctionInvocationContext | None) -> str:
        try:
            # The caller's answer to the framework's approval request goes with the call (ToolCall.approval).
            call_id = _CALL_ID.get()
            session = context.session if context is not None else None
            step = Step("agent_framework", tool_call_id=call_id, run_id=session.session_id if session else None)
            result = await self.toolset.call(self.entry.name, arguments, call_id=call_id, timeout=self.timeout,
                                             approval=self._framework_decision(call_id), step=step)
        except BridgeError as e:
            return reply_text(e)
        return reply_text(result)

    def __repr__(self) -> str:
        return f"MCPFunctionTool({self.name!r}, agent={self.agent!r}, approval_mode={self.approval_mode!r})"
