"""OpenTelemetry for tool calls: one span per call, the approval wait as its child, metrics, and the
W3C trace context sent to the server.

``Telemetry`` follows the OpenTelemetry semantic conventions for generative-AI tool execution and
for MCP (both in development): a CLIENT span named ``tools/call {tool}`` with
``gen_ai.operation.name=execute_tool``, ``gen_ai.tool.name``, ``gen_ai.tool.call.id`` (the model's
id, ``ToolCall.step``, else the caller's call id), ``mcp.method.name=tools/call`` and, for a call
that did not end well, ``error.type`` (``tool_error``, ``denied``, ``cancelled``, or the exception's
class). The span is a child of whatever span is current when the call is made (AutoGen's runtime,
Agent Framework's agent span), and the request carries its context in ``params._meta``
(``traceparent``, ``tracestate``), as the MCP conventions recommend, so the server's spans join the
same trace (an MCP SDK that traces its own requests sends its span's context instead: a child of
this one). The approval wait is the child span ``approval {tool}`` with the decision and reviewer.
Metrics: the histogram ``mcp.client.operation.duration`` (seconds) and the counter
``bridge.tool.errors``, by server, tool and outcome.

Arguments and results never go on a span unless asked for (``Telemetry(record_content=True)``, or
``Guards(trace_content=True)``), and then only masked (``bridge.secrets``): secret-named values
and credential shapes as evidence marks, every open session's secrets as ``***``.

It costs nothing without OpenTelemetry: ``opentelemetry-api`` is imported at the first call (the
``otel`` extra installs it with the SDK and the OTLP/HTTP exporter), and while no tracer or meter
provider is configured each call only checks that. ``Guards.open`` puts it in every chain unless
``Guards(telemetry=False)``; it has two halves around the approval gate (``TelemetryStart`` before
it, ``TelemetrySent`` after), which share the call's spans through a context variable, as
OpenTelemetry shares its own current span.
"""

from __future__ import annotations

import json
import time
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Literal

import anyio

from .connection import Handler, ToolCall
from .results import CallResult
from .secrets import clip, mask_data, mask_known, mask_shapes

__all__ = ["CONTENT_LIMIT", "Telemetry", "TelemetrySent", "TelemetryStart", "otel_available"]

CONTENT_LIMIT = 4000
"""Characters of masked arguments or result text a span keeps when content is recorded."""

_SCOPE = "bridge"
_METHOD = "tools/call"


@dataclass
class _Spans:
    call: Any
    wait: Any
    started: float
    passed: bool = False
    """The approval gate passed the call on (so the approval span has ended)."""


_CURRENT: ContextVar[_Spans | None] = ContextVar("bridge_telemetry_spans", default=None)

_api: tuple[Any, Any, Any] | Literal[False] | None = None


def _otel() -> tuple[Any, Any, Any] | None:
    """``(trace, metrics, propagate)`` of ``opentelemetry-api``, or ``None`` when it is not installed."""
    global _api
    if _api is None:
        try:
            from opentelemetry import metrics, propagate, trace
        except ImportError:
            _api = False
        else:
            _api = (trace, metrics, propagate)
    return _api or None


def otel_available() -> bool:
    """Whether ``opentelemetry-api`` can be imported (the ``otel`` extra)."""
    return _otel() is not None


class Telemetry:
    """What to emit for tool calls; ``start()`` and ``sent()`` are its two interceptors.

    Args:
        record_content: put the masked arguments and result text on spans
            (``gen_ai.tool.call.arguments``, ``gen_ai.tool.call.result``).
    """

    kind = "telemetry"

    def __init__(self, *, record_content: bool = False) -> None:
        self.record_content = record_content
        self._instruments: tuple[Any, Any, Any] | None = None

    def start(self) -> TelemetryStart:
        """The half that goes before the approval gate."""
        return TelemetryStart(self)

    def sent(self) -> TelemetrySent:
        """The half that goes after the approval gate."""
        return TelemetrySent(self)

    # -- providers -----------------------------------------------------------------------------

    def tracer(self) -> Any | None:
        """A tracer when a tracer provider is configured, else ``None`` (nothing to do)."""
        api = _otel()
        if api is None:
            return None
        trace = api[0]
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            return None
        return provider.get_tracer(_SCOPE)

    def instruments(self) -> tuple[Any, Any] | None:
        """The duration histogram and error counter when a meter provider is configured."""
        api = _otel()
        if api is None:
            return None
        metrics = api[1]
        provider = metrics.get_meter_provider()
        if isinstance(provider, metrics.NoOpMeterProvider) or type(provider).__name__ == "_ProxyMeterProvider":
            return None
        if self._instruments is None or self._instruments[0] is not provider:
            meter = provider.get_meter(_SCOPE)
            duration = meter.create_histogram("mcp.client.operation.duration", unit="s",
                                              description="Duration of MCP tool calls as the client saw them")
            errors = meter.create_counter("bridge.tool.errors", unit="{call}",
                                          description="Tool calls that did not end well, by outcome")
            self._instruments = (provider, duration, errors)
        return self._instruments[1], self._instruments[2]

    # -- spans -----------------------------------------------------------------------------------

    def attributes(self, call: ToolCall) -> dict[str, Any]:
        """The span's attributes known before the call is sent."""
        attributes: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": call.mcp_name,
                                      "gen_ai.tool.type": "extension", "mcp.method.name": _METHOD,
                                      "bridge.server.name": call.server}
        # Ids the model, its framework or the server chose: a known secret in one is masked (by value
        # only, as in audit records: a random-looking id is the evidence that leads back to the step).
        call_id = (call.step.tool_call_id if call.step else None) or call.call_id
        if call_id:
            attributes["gen_ai.tool.call.id"] = mask_known(call_id)
        if call.agent:
            attributes["gen_ai.agent.name"] = call.agent
        if call.protocol_version:
            attributes["mcp.protocol.version"] = call.protocol_version
        if call.session_id:
            attributes["mcp.session.id"] = mask_known(call.session_id)
        if call.step is not None:
            if call.step.run_id:
                attributes["bridge.step.run_id"] = mask_known(call.step.run_id)
            if call.step.framework:
                attributes["bridge.step.framework"] = call.step.framework
        if call.tool != call.mcp_name:
            attributes["bridge.tool.alias"] = call.tool
        if self.record_content:
            arguments = json.dumps(mask_data(dict(call.arguments)), ensure_ascii=False, default=str)
            attributes["gen_ai.tool.call.arguments"] = clip(arguments, CONTENT_LIMIT)
        return attributes

    def finish(self, spans: _Spans, call: ToolCall, outcome: str, error_type: str | None,
               result: CallResult | None) -> None:
        """End the call's spans and count it."""
        api = _otel()
        if not spans.passed:
            self.decided(spans.wait, call)
            spans.wait.end()
        span = spans.call
        span.set_attribute("bridge.outcome", outcome)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            if api is not None and outcome != "denied":
                span.set_status(api[0].Status(api[0].StatusCode.ERROR, error_type))
        if self.record_content and result is not None and result.text:
            span.set_attribute("gen_ai.tool.call.result", clip(mask_shapes(mask_known(result.text)), CONTENT_LIMIT))
        span.end()
        measured = self.instruments()
        if measured is not None:
            duration, errors = measured
            labels = {"mcp.method.name": _METHOD, "gen_ai.tool.name": call.mcp_name, "bridge.server.name": call.server,
                      "bridge.outcome": outcome}
            if error_type is not None:
                labels["error.type"] = error_type
            duration.record(time.perf_counter() - spans.started, labels)
            if outcome != "ok":
                errors.add(1, labels)

    @staticmethod
    def decided(wait: Any, call: ToolCall) -> None:
        """Put the approval decision on the approval span."""
        decision = call.approval
        if decision is not None:
            wait.set_attribute("bridge.approval.decision", decision.status)
            wait.set_attribute("bridge.approval.reviewer", decision.reviewer)

    def __repr__(self) -> str:
        return f"Telemetry(record_content={self.record_content})"


class TelemetryStart:
    """Before the approval gate: opens the call's span (a child of the current one) and its
    approval span, and ends both with the call's outcome."""

    kind = "telemetry"

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    async def __call__(self, call: ToolCall, call_next: Handler) -> CallResult:
        tracer = self.telemetry.tracer()
        if tracer is None:
            measured = self.telemetry.instruments()
            if measured is None:
                return await call_next(call)
        api = _otel()
        assert api is not None
        trace = api[0]
        if tracer is None:
            tracer = trace.NoOpTracer()
        span = tracer.start_span(f"{_METHOD} {call.mcp_name}", kind=trace.SpanKind.CLIENT,
                                 attributes=self.telemetry.attributes(call))
        inside = trace.set_span_in_context(span)
        wait = tracer.start_span(f"approval {call.mcp_name}", context=inside)
        spans = _Spans(span, wait, time.perf_counter())
        token = _CURRENT.set(spans)
        try:
            # Current while the call runs: spans made below it (the MCP SDK's own) are its children.
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = await call_next(call)
        except BaseException as e:
            cancelled = isinstance(e, anyio.get_cancelled_exc_class())
            kind = "cancelled" if cancelled else type(e).__name__
            self.telemetry.finish(spans, call, "cancelled" if cancelled else "exception", kind, None)
            raise
        finally:
            _CURRENT.reset(token)
        outcome = "denied" if not spans.passed else "tool_error" if result.is_error else "ok"
        self.telemetry.finish(spans, call, outcome, None if outcome == "ok" else outcome, result)
        return result

    async def record_unsent(self, call: ToolCall, outcome: Literal["denied", "exception"], error: str) -> None:
        """Told by the approval gate of a call it stopped: the decision goes on the approval span."""
        spans = _CURRENT.get()
        if spans is not None and not spans.passed:
            Telemetry.decided(spans.wait, call)

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form (``Guards`` writes it as ``telemetry``/``trace_content``)."""
        return {"kind": self.kind, "record_content": self.telemetry.record_content}


class TelemetrySent:
    """After the approval gate: ends the approval span with the decision, and sends the call's
    trace context to the server in ``params._meta``."""

    kind = "telemetry"

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    async def __call__(self, call: ToolCall, call_next: Handler) -> CallResult:
        spans = _CURRENT.get()
        if spans is None:
            return await call_next(call)
        Telemetry.decided(spans.wait, call)
        spans.wait.end()
        spans.passed = True
        api = _otel()
        assert api is not None
        trace, _, propagate = api
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(spans.call))
        if carrier:
            call = replace(call, request_meta={**call.request_meta, **carrier})
        return await call_next(call)

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form (``Guards`` writes it as ``telemetry``/``trace_content``)."""
        return {"kind": self.kind, "record_content": self.telemetry.record_content}
