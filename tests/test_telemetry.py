"""OpenTelemetry for tool calls (``bridge.telemetry``): spans captured by the SDK's in-memory exporter,
nested under the framework's own (an AutoGen team, an Agent Framework agent), the approval wait as a
child span, the trace context sent to the server in ``_meta``, metrics, an OTLP/HTTP export reaching
a real receiver on 127.0.0.1, and nothing secret (by default, no argument at all) on any span."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers import ROOT, fixture_env, module_cmd
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from bridge import CallbackApprover, Guards, Server, connect
from bridge.connection import ToolCall
from bridge.steps import Step
from bridge.telemetry import Telemetry
from fixtures.openai_compat import ScriptedModel, text, tool_call

pytestmark = pytest.mark.anyio

SECRET = "sk-live-9f8e7d6c5b4a39281706"
ARGUMENT = "meet-at-the-old-mill"
OK = {"result": {"content": [{"type": "text", "text": "done"}]}}
FAILED = {"result": {"content": [{"type": "text", "text": "it broke"}], "isError": True}}


def tool(name: str, read_only: bool = False) -> dict[str, Any]:
    return {"name": name, "description": f"{name}.", "annotations": {"readOnlyHint": read_only},
            "inputSchema": {"type": "object", "properties": {"note": {"type": "string"},
                                                               "api_key": {"type": "string"}}}}


def hostile(journal: Path) -> Server:
    script = {"tools": [tool("send"), tool("lookup", read_only=True), tool("broken")],
              "calls": {"send": [OK] * 10, "lookup": [OK] * 10, "broken": [FAILED] * 10}, "journal": str(journal)}
    return connect(module_cmd("fixtures.hostile"), env=fixture_env(HOSTILE_SCRIPT=json.dumps(script)), cwd=ROOT,
                   name="h")


def _reset_globals() -> None:
    # OpenTelemetry lets a process set its providers once; tests put them back (as its own test utilities do).
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    from opentelemetry.metrics import _internal as metrics_internal

    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None


class Captured:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name.startswith(prefix)]

    def ancestors(self, span: ReadableSpan) -> list[str]:
        by_id = {s.context.span_id: s for s in self.finished()}
        names = []
        parent = span.parent
        while parent is not None and parent.span_id in by_id:
            found = by_id[parent.span_id]
            names.append(found.name)
            parent = found.parent
        return names


@pytest.fixture
def otel() -> Iterator[Captured]:
    captured = Captured()
    _reset_globals()
    trace.set_tracer_provider(captured.tracer_provider)
    metrics.set_meter_provider(captured.meter_provider)
    try:
        yield captured
    finally:
        captured.tracer_provider.shutdown()
        captured.meter_provider.shutdown()
        _reset_globals()


def every_attribute(spans: list[ReadableSpan]) -> str:
    return json.dumps([{**dict(s.attributes or {}), "name": s.name} for s in spans], default=str)


def sent_meta(journal: Path) -> list[dict[str, Any]]:
    messages = [json.loads(line) for line in journal.read_text().splitlines()]
    return [m["params"].get("_meta") or {} for m in messages if m.get("method") == "tools/call"]


async def test_one_span_per_call_under_the_current_span_with_the_approval_wait_as_a_child(
        otel: Captured, tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"

    def review(call: ToolCall) -> bool:
        return call.mcp_name != "send" or call.arguments.get("note") != "no"

    approver = CallbackApprover(review, reviewer="alice")
    async with hostile(journal) as server:
        toolset = server.toolset("courier", approver=approver, warn_unguarded=False)
        with trace.get_tracer("test").start_as_current_span("agent turn") as turn:
            await toolset.call("send", {"note": ARGUMENT, "api_key": SECRET}, call_id="c1",
                               step=Step("autogen", tool_call_id="call_model_1", run_id="run-9"))
            await toolset.call("send", {"note": "no"}, call_id="c2")
            await toolset.call("lookup", {"note": ARGUMENT}, call_id="c3")
            await toolset.call("broken", {}, call_id="c4")
        version = server.info.protocol_version
    calls = otel.named("tools/call ")
    assert [s.name for s in calls] == ["tools/call send"] * 2 + ["tools/call lookup", "tools/call broken"]
    sent, denied, looked, broken = calls
    assert all(s.kind == trace.SpanKind.CLIENT and s.parent is not None
               and s.parent.span_id == turn.get_span_context().span_id for s in calls)
    assert dict(sent.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "send", "gen_ai.tool.type": "extension",
        "gen_ai.tool.call.id": "call_model_1", "gen_ai.agent.name": "courier", "mcp.method.name": "tools/call",
        "mcp.protocol.version": version, "bridge.server.name": "h", "bridge.step.run_id": "run-9",
        "bridge.step.framework": "autogen", "bridge.outcome": "ok"}  # stdio: no session id
    assert (denied.attributes or {})["bridge.outcome"] == "denied"
    assert (denied.attributes or {})["error.type"] == "denied"
    assert (denied.attributes or {})["gen_ai.tool.call.id"] == "c2"
    assert (broken.attributes or {})["error.type"] == "tool_error"
    assert broken.status.status_code == trace.StatusCode.ERROR
    # The approval wait: a child of each call's span, with the decision and who made it.
    waits = {s.parent.span_id: s for s in otel.named("approval ") if s.parent is not None}
    assert {k: dict(waits[c.context.span_id].attributes or {}) for k, c in
            {"sent": sent, "denied": denied, "looked": looked}.items()} == {
        "sent": {"bridge.approval.decision": "approved", "bridge.approval.reviewer": "alice"},
        "denied": {"bridge.approval.decision": "denied", "bridge.approval.reviewer": "alice"},
        "looked": {"bridge.approval.decision": "not_required", "bridge.approval.reviewer": "policy"}}
    # The server got each sent call's trace context; the denied call never left.
    # (The MCP SDK may trace its request itself: then the context is its span's, a child of ours.)
    by_id = {f"{s.context.span_id:016x}": s for s in otel.finished()}
    told = [str(m.get("traceparent")).split("-") for m in sent_meta(journal)]
    assert [trace_id for _, trace_id, _, _ in told] == [f"{turn.get_span_context().trace_id:032x}"] * 3
    for (_, _, span_id, _), ours in zip(told, (sent, looked, broken), strict=True):
        named = by_id[span_id]
        assert named is ours or (named.parent is not None and named.parent.span_id == ours.context.span_id)
    # Nothing secret, and by default no argument value, on any span.
    shown = every_attribute(otel.finished())
    assert SECRET not in shown and ARGUMENT not in shown and "gen_ai.tool.call.arguments" not in shown
    # Metrics: the duration of every call, and the ones that did not end well, by outcome.
    data = otel.metrics.get_metrics_data()
    assert data is not None
    points = {m.name: m.data.data_points for rm in data.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics}
    assert sum(p.count for p in points["mcp.client.operation.duration"]) == 4
    assert {(p.attributes or {})["bridge.outcome"]: p.value for p in points["bridge.tool.errors"]} == {
        "denied": 1, "tool_error": 1}


async def test_content_goes_on_spans_only_when_asked_and_masked(otel: Captured, tmp_path: Path) -> None:
    async with hostile(tmp_path / "journal.jsonl") as server:
        toolset = server.toolset("courier", Guards(approval=False, warn_unguarded=False, trace_content=True))
        await toolset.call("send", {"note": ARGUMENT, "api_key": SECRET})
    (span,) = otel.named("tools/call ")
    attributes = dict(span.attributes or {})
    arguments = json.loads(str(attributes["gen_ai.tool.call.arguments"]))
    assert arguments["note"] == ARGUMENT and arguments["api_key"].startswith("***[")
    assert attributes["gen_ai.tool.call.result"] == "done"
    assert SECRET not in every_attribute(otel.finished())


async def test_a_span_names_the_servers_http_session_and_protocol_version(otel: Captured, zoo_url: str) -> None:
    # The handshake era over Streamable HTTP: the server keeps a session and names it in a header.
    async with connect(zoo_url, mode="legacy") as server:
        toolset = server.toolset("courier", Guards(approval=False, warn_unguarded=False))
        await toolset.call("stats", {"numbers": [1, 2]})
        await toolset.call("stats", {"numbers": [3]})
        session_id = server.session.session_id
    assert session_id  # the stateful zoo named one
    spans = otel.named("tools/call ")
    assert [(dict(s.attributes or {})["mcp.session.id"], dict(s.attributes or {})["mcp.protocol.version"])
            for s in spans] == [(session_id, "2025-11-25")] * 2


async def test_nothing_is_emitted_or_sent_without_a_provider(tmp_path: Path) -> None:
    _reset_globals()
    journal = tmp_path / "journal.jsonl"
    async with hostile(journal) as server:
        toolset = server.toolset("courier", approval=False, warn_unguarded=False)
        assert {type(i).__name__ for i in toolset.chain} >= {"TelemetryStart", "TelemetrySent"}
        assert (await toolset.call("send", {})).text == "done"
    # Nothing to emit to: each call only checks that, and passes straight on.
    assert Telemetry().tracer() is None and Telemetry().instruments() is None


async def test_spans_nest_under_an_autogen_team(otel: Captured) -> None:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.conditions import MaxMessageTermination
    from autogen_agentchat.teams import RoundRobinGroupChat
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    from bridge.autogen import tools_for

    model = ScriptedModel([tool_call("stats", {"numbers": [1, 2]}, id="call_team_1"), text("Done.")]).start()
    try:
        async with connect(module_cmd("fixtures.schema_zoo", "--transport", "stdio"), env=fixture_env(), cwd=ROOT,
                           name="zoo") as server:
            tools = await tools_for(server, agent="analyst", include=["stats"], approval=False)
            client = OpenAIChatCompletionClient(model="gpt-4o-mini-2024-07-18", base_url=model.base_url,
                                                api_key="test")
            try:
                agent = AssistantAgent("analyst", model_client=client, tools=list[Any](tools))
                team = RoundRobinGroupChat([agent], termination_condition=MaxMessageTermination(3))
                await team.run(task="Count.")
            finally:
                await client.close()
    finally:
        model.stop()
    (span,) = otel.named("tools/call ")
    assert (span.attributes or {})["gen_ai.tool.call.id"] == "call_team_1"
    assert (span.attributes or {})["bridge.step.framework"] == "autogen"
    above = otel.ancestors(span)
    assert above and any("autogen" in name for name in above), above


async def test_spans_nest_under_an_agent_framework_agent(otel: Captured) -> None:
    from agent_framework import Agent
    from agent_framework.openai import OpenAIChatCompletionClient

    from bridge.agent_framework import tools_for

    model = ScriptedModel([tool_call("stats", {"numbers": [3]}, id="call_af_1"), text("Done.")]).start()
    try:
        async with connect(module_cmd("fixtures.schema_zoo", "--transport", "stdio"), env=fixture_env(), cwd=ROOT,
                           name="zoo") as server:
            tools = await tools_for(server, agent="analyst", include=["stats"], approval=False)
            client = OpenAIChatCompletionClient(model="gpt-4o-mini", base_url=model.base_url, api_key="test")
            try:
                await Agent(client=client, name="analyst", instructions="Use the tools.", tools=tools).run("Count.")
            finally:
                await client.client.close()
    finally:
        model.stop()
    (span,) = otel.named("tools/call ")
    assert (span.attributes or {})["gen_ai.tool.call.id"] == "call_af_1"
    above = otel.ancestors(span)
    assert any(name.startswith("invoke_agent") for name in above), above


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: decodes each export with the protobuf definitions."""

    received: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        Receiver.received.append((self.path, self.headers.get("Content-Type"), request))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


async def test_an_otlp_http_export_reaches_a_real_receiver(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received = []
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{server.server_address[1]}/v1/traces")))
    _reset_globals()
    trace.set_tracer_provider(provider)
    try:
        async with hostile(tmp_path / "journal.jsonl") as mcp:
            toolset = mcp.toolset("courier", approval=False, warn_unguarded=False)
            await toolset.call("send", {"note": ARGUMENT, "api_key": SECRET}, call_id="c-otlp")
        provider.force_flush()
    finally:
        provider.shutdown()
        _reset_globals()
        server.shutdown()
        server.server_close()
    spans = [(span.name, {a.key: a.value.string_value for a in span.attributes})
             for path, kind, request in Receiver.received if path == "/v1/traces" and kind == "application/x-protobuf"
             for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    calls = [attributes for name, attributes in spans if name == "tools/call send"]
    assert len(calls) == 1 and calls[0]["gen_ai.tool.call.id"] == "c-otlp"
    assert calls[0]["gen_ai.operation.name"] == "execute_tool" and calls[0]["mcp.method.name"] == "tools/call"
    assert SECRET not in json.dumps(spans) and ARGUMENT not in json.dumps(spans)
