"""The core bridge against the schema zoo, over stdio, SSE and Streamable HTTP, on both protocol eras."""

from __future__ import annotations

import base64
import functools
import inspect
import json
import logging
import os
import re
import typing
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import pytest
import typing_extensions
from autogen_core import CancellationToken
from helpers import ROOT, children_of, fixture_env, http_server, module_cmd, until

from bridge import CallResult, CallTimeout, InvalidArguments, ProtocolError, Server, ToolError, ToolNotFound, connect
from bridge.autogen import MCPTool
from bridge.schema import OMIT
from fixtures.schema_zoo import (
    BLOB_BYTES,
    LONG_NAME,
    PHOTO_BYTES,
    PNG_BYTES,
    WAV_BYTES,
    ZOO_RESOURCES,
    ZOO_SCHEMAS,
    ZOO_TOOLS,
)

pytestmark = pytest.mark.anyio

SAFE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MATRIX = [(t, m) for t in ("stdio", "http", "sse") for m in ("legacy", "auto")]
# Every MCP name the zoo lists that is not already OpenAI-safe, and what the model calls it (README:
# transliterated, or 8 hex digits of the name's SHA-256 where that collides or passes 64 characters).
RENAMED = {"files.read": "files_read", "repo/status": "repo_status", "send mail": "send_mail",
           "café_menu": "cafe_menu", "a.b": "a_b_2e7336dc",
           LONG_NAME: "zoo_tool_with_a_deliberately_long_name_that_goes_past_t_92701a5e"}



async def counters(server: Server, tool: str) -> dict[str, int]:
    """What the zoo has seen of ``tool``'s calls: started, completed, cancelled."""
    by_tool = (await server.call("cancelled_count", {})).structured["by_tool"]
    return dict(by_tool.get(tool, {"started": 0, "completed": 0, "cancelled": 0}))


@pytest.fixture(scope="module")
def zoo_sse() -> Iterator[str]:
    with http_server("fixtures.schema_zoo", transport="sse") as url:
        yield url


@pytest.fixture(params=MATRIX, ids=[f"{t}-{m}" for t, m in MATRIX])
def zoo_target(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    transport, mode = request.param
    if transport == "stdio":
        return transport, mode, ""
    url = request.getfixturevalue("zoo_url" if transport == "http" else "zoo_sse")
    return transport, mode, url


def zoo_stdio(**kwargs: typing.Any) -> Server:
    return connect(module_cmd("fixtures.schema_zoo"), env=fixture_env(), cwd=ROOT, **kwargs)


@asynccontextmanager
async def open_zoo(transport: str, mode: str, url: str = "", **kwargs: typing.Any) -> AsyncIterator[Server]:
    server = zoo_stdio(mode=mode, **kwargs) if transport == "stdio" else connect(url, mode=mode, **kwargs)
    async with server:
        yield server


async def test_every_zoo_tool_converts_losslessly(zoo_target: tuple[str, str, str]) -> None:
    transport, mode, url = zoo_target
    async with open_zoo(transport, mode, url) as server:
        expected_era = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert server.info.protocol_version == expected_era
        assert server.info.transport == transport
        tools = await server.tools()
        by_mcp = {t.mcp_name: t for t in tools}
        # Paged (7 per page) through to the last cursor: nothing missing, nothing extra, in order.
        assert [t.mcp_name for t in tools] == list(ZOO_TOOLS)
        for name, schema in ZOO_SCHEMAS.items():
            tool, served = by_mcp[name], ZOO_TOOLS[name]
            assert tool.schema["parameters"] == schema, name
            assert tool.name == RENAMED.get(name, name) and SAFE.match(tool.name), tool.name
            assert tool.description == served.description, name
            assert tool.title == served.title, name
            assert tool.output_schema == served.output_schema, name

        # One representative call per era/transport: wire name used, integers kept, omitted stays omitted.
        echoed = await by_mcp["echo_types"].run_json({"count": 3, "ratio": 0.5}, CancellationToken())
        assert isinstance(echoed, CallResult)
        assert echoed.structured == {"arguments": {"count": 3, "ratio": 0.5},
                                     "types": {"count": "integer", "ratio": "number"}}
        result = await server.call("files.read", {"path": "a.txt"})
        assert (result.is_error, result.text) == (False, '{"arguments": {"path": "a.txt"}, "tool": "files.read"}')


async def test_structured_content_violating_its_output_schema_is_a_protocol_error(
        zoo_target: tuple[str, str, str]) -> None:
    # README: structured content is checked against outputSchema; a violation is the server's fault.
    transport, mode, url = zoo_target
    async with open_zoo(transport, mode, url) as server:
        with pytest.raises(ProtocolError) as violated:
            await server.call("structured_invalid", {})
        assert re.fullmatch(rf"server '{server.name}', tool 'structured_invalid': (\w+: )?Invalid structured content "
                            r"returned by tool structured_invalid: 'three' is not of type 'integer'",
                            str(violated.value)), str(violated.value)
        # Through an agent's tool it fails the same way, and the session is still usable.
        tool = {t.mcp_name: t for t in await server.tools()}["structured_invalid"]
        with pytest.raises(ProtocolError, match="'three' is not of type 'integer'"):
            await tool.run_json({}, CancellationToken())
        stats = await server.call("stats", {"numbers": [2]})
        assert stats.structured == {"count": 1, "sum": 2.0, "mean": 2.0, "extremes": {"min": 2.0, "max": 2.0}}


async def test_names_are_safe_unique_and_deterministic() -> None:
    async with zoo_stdio() as server:
        first = {t.mcp_name: t.name for t in await server.tools()}
    async with zoo_stdio(mode="legacy") as server:
        second = {t.mcp_name: t.name for t in await server.tools()}
    assert first == second
    assert first == {name: RENAMED.get(name, name) for name in ZOO_TOOLS}  # a safe name is kept as is
    assert len(first[LONG_NAME]) == 64


async def test_signatures_are_typed_and_keyword_names_work() -> None:
    async with zoo_stdio() as server:
        tools = {t.mcp_name: t for t in await server.tools()}
        sig = tools["keyword_args"].signature
        # README: from -> from_, schema -> schema_, model_config -> model_config_, data-type -> data_type,
        # 2fa -> arg_2fa; json and self clash with pydantic/AutoGen; filter is safe as it is.
        assert list(sig.parameters) == ["from_", "class_", "filter", "schema_", "model_config_", "json_", "self_",
                                        "data_type", "arg_2fa"]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())
        assert {n: p.default for n, p in sig.parameters.items()} == {
            n: inspect.Parameter.empty if n in ("from_", "class_") else OMIT for n in sig.parameters}
        assert sig.parameters["from_"].annotation == typing.Annotated[str, "Python keyword."]

        assert _annotations(tools["const_enum"]) == {
            "api_version": typing.Literal["v2"], "colour": typing.Literal["red", "green", "blue"],
            "level": typing.Any,  # 3.5 is no valid Literal value, so the mixed enum is Any
            "mode": typing.Literal["fast"]}
        assert _annotations(tools["type_arrays"]) == {
            "nickname": typing.Optional[str], "age": typing.Optional[int],  # noqa: UP045 - how the bridge spells it
            "amount": typing.Union[float, str], "scores": list[typing.Optional[float]]}  # noqa: UP007, UP045

        typed_map = _annotations(tools["typed_map"])
        assert typed_map["counts"] == dict[str, int]
        assert typing.get_origin(typed_map["people"]) is dict
        person = typing.get_args(typed_map["people"])[1]
        assert typing_extensions.is_typeddict(person)
        assert (person.__required_keys__, person.__optional_keys__) == ({"age"}, {"email"})

        (company,) = _annotations(tools["nested_objects"]).values()
        assert typing_extensions.is_typeddict(company) and company.__required_keys__ == {"name", "hq"}
        hq = typing.get_type_hints(company)["hq"]
        assert hq.__required_keys__ == {"city"} and hq.__optional_keys__ == {"geo"}
        assert typing.get_type_hints(hq)["geo"].__required_keys__ == {"lat", "lon"}

        # Calling through the generated Python function maps names back to the wire.
        result = await tools["keyword_args"]._func(from_="x", class_="y", data_type="z")
        assert isinstance(result, CallResult)
        assert json.loads(result.text) == {"tool": "keyword_args",
                                           "arguments": {"from": "x", "class": "y", "data-type": "z"}}


async def test_an_exotic_schema_still_registers_with_its_raw_schema() -> None:
    async with zoo_stdio() as server:
        tool = {t.mcp_name: t for t in await server.tools()}["exotic_any_of"]
        assert tool.schema["parameters"] == ZOO_SCHEMAS["exotic_any_of"]  # the model sees it unchanged
        assert str(tool.signature) == "(**arguments: Any) -> bridge.results.CallResult"
        assert str(inspect.signature(tool._func)).startswith("(**arguments: Any)")
        assert json.loads((await tool.run_json({"id": 7}, CancellationToken())).text)["arguments"] == {"id": 7}
        with pytest.raises(InvalidArguments):  # untyped, still validated against the raw schema
            await tool.run_json({"email": "nope"}, CancellationToken())


async def test_an_exotic_schema_is_logged_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        async with zoo_stdio() as server:
            tool = {t.mcp_name: t for t in await server.tools()}["exotic_any_of"]
            assert not tool.entry.compiled.typed
    assert [r.getMessage() for r in caplog.records if "exotic_any_of" in r.getMessage()], caplog.text


def _annotations(tool: MCPTool) -> dict[str, typing.Any]:
    """Wire name -> Python type of each parameter, without description metadata."""
    return {p.name: _strip(tool.signature.parameters[p.py_name].annotation) for p in tool.entry.compiled.parameters}


def _strip(annotation: typing.Any) -> typing.Any:
    """Drop Annotated[...] description metadata."""
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation


async def test_omitted_is_not_sent_and_null_is_sent() -> None:
    async with zoo_stdio() as server:
        tool = {t.mcp_name: t for t in await server.tools()}["nullable_clears"]
        props = list(ZOO_SCHEMAS["nullable_clears"]["properties"])
        keep, clear = props[0], props[1]
        result = await tool.run_json({clear: None}, CancellationToken())
        assert result.structured["received_keys"] == [clear]
        assert result.structured["null_keys"] == [clear]
        # Through the typed Python function: OMIT is dropped, None is sent.
        py = {p.name: p.py_name for p in tool.entry.compiled.parameters}
        result = await tool._func(**{py[clear]: None})
        assert result.structured["received_keys"] == [clear] and keep not in result.structured["received_keys"]


async def test_invalid_arguments_never_reach_the_server() -> None:
    async with zoo_stdio() as server:
        tools = {t.mcp_name: t for t in await server.tools()}
        token = CancellationToken()
        with pytest.raises(InvalidArguments) as bad_email:
            await tools["formats"].run_json({"email": "not-an-email"}, token)
        assert bad_email.value.argument == "email" and bad_email.value.rule == "format"
        assert "'email'" in str(bad_email.value) and "format" in str(bad_email.value)

        with pytest.raises(InvalidArguments) as extra:
            await tools["closed_object"].run_json({"surprise": 1, **_required_sample("closed_object")}, token)
        assert extra.value.rule == "additionalProperties"

        with pytest.raises(InvalidArguments) as missing:
            await server.call("array_of_objects", {})
        assert missing.value.rule == "required" and missing.value.argument

        # validated_order checks server-side too: a valid call passes both, an invalid one is stopped by us.
        with pytest.raises(InvalidArguments):
            await tools["validated_order"].run_json({}, token)
        counts = await server.call("cancelled_count", {})
        assert "validated_order" not in counts.structured["by_tool"]


def _required_sample(tool: str) -> dict[str, typing.Any]:
    schema = ZOO_SCHEMAS[tool]
    samples = {"string": "x", "integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}}
    out: dict[str, typing.Any] = {}
    for key in schema.get("required", []):
        kind = schema["properties"][key].get("type", "string")
        if kind == "object":
            sub = schema["properties"][key]
            out[key] = {k: samples[sub["properties"][k].get("type", "string")] for k in sub.get("required", [])}
        else:
            out[key] = samples[kind if isinstance(kind, str) else kind[0]]
    return out


async def test_result_shapes_reach_the_model_as_text() -> None:
    # README, "What the model sees": each rendering exactly.
    async with zoo_stdio() as server:
        blocks = await server.call("text_blocks", {"count": 3})
        assert blocks.text == "block 1 of 3\nblock 2 of 3\nblock 3 of 3"

        image = await server.call("image_result", {})
        assert image.text == f"a 4x4 orange PNG follows\n[image: image/png, {len(PNG_BYTES)} bytes]"
        assert base64.b64decode(image.content[1].data) == PNG_BYTES  # the bytes stay on the full result
        photo = await server.call("photo_result", {})
        assert photo.text == "[image: image/png, 1.2 KB]"  # the README's own example
        assert base64.b64decode(photo.content[0].data) == PHOTO_BYTES
        audio = await server.call("audio_result", {})
        assert audio.text == f"[audio: audio/wav, {len(WAV_BYTES)} bytes]"

        link = await server.call("resource_link_result", {})
        assert link.text == ("see the linked resources\n"
                             "[resource link: Zoo README <zoo://docs/readme.md>, text/markdown]\n"
                             "[resource link: pixel <zoo://images/pixel.png>, image/png]")
        embedded = await server.call("embedded_resource_result", {})
        assert embedded.text == (f"[resource <zoo://docs/readme.md>]\n{ZOO_RESOURCES['zoo://docs/readme.md']}\n"
                                 f"[resource <zoo://blobs/bytes.bin>: application/octet-stream, {len(BLOB_BYTES)} "
                                 "bytes]")

        # Structured content: compact JSON, and the text block repeating it is shown once.
        stats = await server.call("stats", {"numbers": [1, 2, 3]})
        assert stats.structured == {"count": 3, "sum": 6.0, "mean": 2.0, "extremes": {"min": 1.0, "max": 3.0}}
        assert stats.text == '{"count":3,"sum":6.0,"mean":2.0,"extremes":{"min":1.0,"max":3.0}}'
        plain = await server.call("structured_no_schema", {})
        assert (plain.structured, plain.text) == ({"answer": 42, "unit": "none"}, '{"answer":42,"unit":"none"}')


async def test_tool_errors_and_protocol_errors_are_distinct() -> None:
    async with zoo_stdio() as server:
        tools = {t.mcp_name: t for t in await server.tools()}
        raw = await server.call("error_result", {})
        assert (raw.is_error, raw.text) == (True, "the tool failed on purpose")
        with pytest.raises(ToolError) as tool_error:
            await tools["error_result"].run_json({}, CancellationToken())
        assert str(tool_error.value) == f"Error: {raw.text}"  # what AutoGen shows the model (bridge.adapters)
        with pytest.raises(ProtocolError) as proto:
            await server.call("protocol_error", {})
        assert "protocol_error" in str(proto.value) and server.name in str(proto.value)
        with pytest.raises(ToolNotFound) as unknown:
            await server.call("text_blokcs", {})
        assert "text_blocks" in unknown.value.suggestions
        # The session is still healthy after all of that.
        assert not (await server.call("text_blocks", {"count": 1})).is_error


async def test_timeout_and_cancellation_leave_the_session_usable() -> None:
    async with zoo_stdio(call_timeout=30) as server:
        await server.call("cancelled_count", {"reset": True})
        with pytest.raises(CallTimeout, match=r"^server 'fixtures\.schema_zoo', tool 'sleep': no answer within 0\.3s$"):
            await server.call("sleep", {"seconds": 60}, timeout=0.3)

        tools = {t.mcp_name: t for t in await server.tools()}
        tool = tools["sleep"]
        token = CancellationToken()
        # One token serves a whole run of calls; it must not collect a callback per call.
        for _ in range(5):
            await tools["text_blocks"].run_json({"count": 1}, token)
        assert len(token._callbacks) == 1
        outcome: list[BaseException] = []

        async def run() -> None:
            try:
                await tool.run_json({"seconds": 60}, token)
            except BaseException as e:  # asyncio.CancelledError is a BaseException
                outcome.append(e)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            tg.start_soon(run)

            # Cancel once the server is running both calls, so there is something to cancel there.
            async def both_started() -> bool:
                return (await counters(server, "sleep"))["started"] == 3

            await until(both_started, "the server started both sleeps")
            token.cancel()
        assert len(outcome) == 2 and all("cancel" in type(o).__name__.lower() for o in outcome), outcome

        # The server saw notifications/cancelled for all three: the timeout and both under the token.
        async def all_cancelled() -> bool:
            return (await counters(server, "sleep")) == {"started": 3, "completed": 0, "cancelled": 3}

        await until(all_cancelled, "the server cancelled every sleep")
        assert json.loads((await server.call("sleep", {"seconds": 0.01})).text) == {"slept": 0.01}


async def test_calls_run_in_parallel_on_one_session() -> None:
    async with zoo_stdio() as server:
        before = len(children_of(os.getpid()))
        await server.call("cancelled_count", {"reset": True})
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(server.call, "sleep", {"seconds": 60})

            # All twenty are running on the server at once (none can have finished a 60 s sleep):
            # sequential calls would never get past one started.
            async def all_started() -> bool:
                return (await counters(server, "sleep"))["started"] == 20

            await until(all_started, "20 sleeps running at once")
            assert (await counters(server, "sleep"))["completed"] == 0
            assert len(children_of(os.getpid())) == before  # the one server process serves them all
            tg.cancel_scope.cancel()

        async def all_cancelled() -> bool:
            return (await counters(server, "sleep"))["cancelled"] == 20

        await until(all_cancelled, "the server cancelled all 20")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_list_changed_updates_the_catalogue(mode: str, zoo_url: str) -> None:
    for server_cm in (zoo_stdio(mode=mode), connect(zoo_url, mode=mode)):
        async with server_cm as server:
            name = f"dyn_{mode}_{server.info.transport}"
            assert name not in {t.mcp_name for t in await server.tools()}
            # The notification, not a re-list of our own, is what brings the new tool in.
            version = server.session.tools_version
            await server.call("zoo_add_tool", {"name": name})
            await until(functools.partial(_changed_since, server, version), f"tools/list_changed adding {name}")
            assert [t.mcp_name for t in await server.tools()] == [*ZOO_TOOLS, name]
            version = server.session.tools_version
            await server.call("zoo_remove_tool", {"name": name})
            await until(functools.partial(_changed_since, server, version), f"tools/list_changed removing {name}")
            assert [t.mcp_name for t in await server.tools()] == list(ZOO_TOOLS)


async def _changed_since(server: Server, version: int) -> bool:
    return server.session.tools_version > version


async def test_progress_is_reported() -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with zoo_stdio() as server:
        result = await server.call("progress", {"steps": 4}, progress=on_progress)
        assert not result.is_error
    assert seen == [1.0, 2.0, 3.0, 4.0]


async def test_no_orphan_process_on_any_exit_path() -> None:
    baseline = set(children_of(os.getpid()))
    async with zoo_stdio() as server:
        await server.tools()
        assert len(set(children_of(os.getpid())) - baseline) >= 1
    assert set(children_of(os.getpid())) == baseline

    with pytest.raises(RuntimeError):
        async with zoo_stdio() as server:
            raise RuntimeError("user code failed")
    assert set(children_of(os.getpid())) == baseline

    # Cancelled mid-call: the scope is cancelled once the server is running the sleep.
    with anyio.CancelScope() as scope:
        async with zoo_stdio() as server, anyio.create_task_group() as tg:

            async def sleeping() -> bool:
                return (await counters(server, "sleep"))["started"] == 1

            async def cancel_once_sleeping() -> None:
                await until(sleeping, "the server started the sleep")
                scope.cancel()

            tg.start_soon(cancel_once_sleeping)
            await server.call("sleep", {"seconds": 60})
    assert scope.cancelled_caught
    assert set(children_of(os.getpid())) == baseline


async def test_agent_uses_tools_and_keeps_running_on_error() -> None:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.messages import ToolCallExecutionEvent
    from autogen_core import FunctionCall
    from autogen_core.models import CreateResult, RequestUsage
    from autogen_ext.models.replay import ReplayChatCompletionClient

    def calls(*pairs: tuple[str, dict[str, typing.Any]]) -> CreateResult:
        return CreateResult(finish_reason="function_calls", usage=RequestUsage(0, 0), cached=False,
                            content=[FunctionCall(id=f"c{i}", name=n, arguments=json.dumps(a))
                                     for i, (n, a) in enumerate(pairs)])

    async with zoo_stdio() as server:
        tools: list[MCPTool] = await server.tools()
        client = ReplayChatCompletionClient(
            [calls(("files_read", {"path": "x"}), ("error_result", {}), ("formats", {"email": "nope"})), "done"],
            model_info={"function_calling": True, "vision": False, "json_output": False, "family": "unknown",
                        "structured_output": False})
        agent = AssistantAgent("zoo_agent", model_client=client, tools=tools)  # type: ignore[arg-type]
        result = await agent.run(task="use the tools")
        events = [m for m in result.messages if isinstance(m, ToolCallExecutionEvent)]
        outcomes = {r.name: (r.is_error, r.content) for r in events[0].content}
        assert outcomes == {
            "files_read": (False, '{"arguments": {"path": "x"}, "tool": "files.read"}'),
            "error_result": (True, "Error: the tool failed on purpose"),
            "formats": (True, "Error: server 'fixtures.schema_zoo', tool 'formats': invalid argument 'email': 'nope' "
                              "is not a 'email' (rule: format)"),
        }


async def test_agent_calls_report_progress_through_the_connection() -> None:
    seen: list[tuple[str, float, float | None]] = []

    async def on_progress(call: typing.Any, progress: float, total: float | None, message: str | None) -> None:
        seen.append((call.tool, progress, total))

    async with zoo_stdio(on_progress=on_progress) as server:
        tool = {t.mcp_name: t for t in await server.tools(agent="a")}["progress"]
        await tool.run_json({"steps": 3}, CancellationToken())
    assert seen == [("progress", 1.0, 3.0), ("progress", 2.0, 3.0), ("progress", 3.0, 3.0)]


async def test_a_cancelled_token_sends_nothing() -> None:
    async with zoo_stdio() as server:
        await server.call("cancelled_count", {"reset": True})
        tool = {t.mcp_name: t for t in await server.tools()}["sleep"]
        token = CancellationToken()
        token.cancel()
        with pytest.raises(BaseException) as err:  # asyncio.CancelledError is a BaseException
            await tool.run_json({"seconds": 5}, token)
        assert "cancelled" in repr(err.value).lower()
        counts = await server.call("cancelled_count", {})
        assert "sleep" not in counts.structured["by_tool"]  # never started on the server
