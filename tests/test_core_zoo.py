"""The core bridge against the schema zoo, over stdio, SSE and Streamable HTTP, on both protocol eras."""

from __future__ import annotations

import inspect
import json
import os
import re
import typing
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import pytest
import typing_extensions
from autogen_core import CancellationToken
from conftest import ROOT, children_of, fixture_env, http_server, module_cmd

from bridge.schema import OMIT
from bridge import CallResult, CallTimeout, InvalidArguments, ProtocolError, Server, ToolError, ToolNotFound, connect
from bridge.autogen import MCPTool
from fixtures.schema_zoo import LONG_NAME, ZOO_SCHEMAS

pytestmark = pytest.mark.anyio

SAFE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MATRIX = [(t, m) for t in ("stdio", "http", "sse") for m in ("legacy", "auto")]


@pytest.fixture(scope="module")
def zoo_http() -> Iterator[str]:
    with http_server("fixtures.schema_zoo", transport="http") as url:
        yield url


@pytest.fixture(scope="module")
def zoo_sse() -> Iterator[str]:
    with http_server("fixtures.schema_zoo", transport="sse") as url:
        yield url


@pytest.fixture(params=MATRIX, ids=[f"{t}-{m}" for t, m in MATRIX])
def zoo_target(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    transport, mode = request.param
    if transport == "stdio":
        return transport, mode, ""
    url = request.getfixturevalue("zoo_http" if transport == "http" else "zoo_sse")
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
        # Paged (7 per page) through to the last cursor: nothing missing, nothing extra.
        assert set(ZOO_SCHEMAS) <= set(by_mcp)
        for name, schema in ZOO_SCHEMAS.items():
            tool = by_mcp[name]
            assert tool.schema["parameters"] == schema, name
            assert SAFE.match(tool.name), tool.name
            assert tool.description
        assert len({t.name for t in tools}) == len(tools)

        # One representative call per era/transport: wire name used, integers kept, omitted stays omitted.
        echoed = await by_mcp["echo_types"].run_json({"count": 3, "ratio": 0.5}, CancellationToken())
        assert isinstance(echoed, CallResult)
        assert echoed.structured["types"] == {"count": "integer", "ratio": "number"}
        result = await server.call("files.read", {"path": "a.txt"})
        assert not result.is_error


async def test_names_are_safe_unique_and_deterministic() -> None:
    async with zoo_stdio() as server:
        first = {t.mcp_name: t.name for t in await server.tools()}
    async with zoo_stdio(mode="legacy") as server:
        second = {t.mcp_name: t.name for t in await server.tools()}
    assert first == second
    assert first["a_b"] == "a_b"  # already safe: kept as is
    assert first["a.b"] != "a_b" and first["a.b"].startswith("a_b_")
    assert first["files.read"] == "files_read"
    assert first["repo/status"] == "repo_status"
    assert first["send mail"] == "send_mail"
    assert first["café_menu"] == "cafe_menu"
    assert len(first[LONG_NAME]) <= 64


async def test_signatures_are_typed_and_keyword_names_work() -> None:
    async with zoo_stdio() as server:
        tools = {t.mcp_name: t for t in await server.tools()}
        sig = tools["keyword_args"].signature
        names = set(sig.parameters)
        for py in ("from_", "class_", "filter", "schema_", "model_config_", "data_type", "arg_2fa"):
            assert py in names, (py, names)
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())

        const_enum = tools["const_enum"].signature.parameters
        assert any(typing.get_origin(_strip(p.annotation)) is typing.Literal for p in const_enum.values())

        typed_map = tools["typed_map"].signature.parameters
        assert any(_strip(p.annotation) == dict[str, int] for p in typed_map.values()), typed_map

        nullable = tools["type_arrays"].signature.parameters
        assert any(type(None) in typing.get_args(_strip(p.annotation)) for p in nullable.values())

        nested = tools["nested_objects"].signature.parameters
        assert any(typing_extensions.is_typeddict(_strip(p.annotation)) for p in nested.values())

        # Optional parameters default to OMIT (not None: None means an explicit null).
        assert all(p.default is OMIT for p in sig.parameters.values() if p.default is not inspect.Parameter.empty)

        # Calling through the generated Python function maps names back to the wire.
        args = {name: "x" for name, p in sig.parameters.items() if p.default is inspect.Parameter.empty}
        result = await tools["keyword_args"]._func(**args)
        assert isinstance(result, CallResult)
        assert not result.is_error


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
    async with zoo_stdio() as server:
        blocks = await server.call("text_blocks", {"count": 3})
        assert blocks.text == "block 1 of 3\nblock 2 of 3\nblock 3 of 3"
        image = await server.call("image_result", {})
        assert re.search(r"\[image: image/png, \d+ bytes\]", image.text)
        assert any(getattr(b, "type", "") == "image" for b in image.content)  # bytes kept on the full result
        audio = await server.call("audio_result", {})
        assert "[audio: audio/wav" in audio.text
        link = await server.call("resource_link_result", {})
        assert "zoo://" in link.text and "resource link" in link.text
        embedded = await server.call("embedded_resource_result", {})
        assert "[resource <" in embedded.text
        stats = await server.call("stats", {"numbers": [1, 2, 3]})
        assert stats.structured is not None
        assert json.loads(stats.text) == stats.structured  # shown once, compact JSON
        for r in (blocks, image, audio, link, embedded, stats):
            assert "TextContent(" not in r.text and "ImageContent(" not in r.text


async def test_tool_errors_and_protocol_errors_are_distinct() -> None:
    async with zoo_stdio() as server:
        tools = {t.mcp_name: t for t in await server.tools()}
        raw = await server.call("error_result", {})
        assert raw.is_error and raw.text
        with pytest.raises(ToolError) as tool_error:
            await tools["error_result"].run_json({}, CancellationToken())
        assert str(tool_error.value) == raw.text
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
        with pytest.raises(CallTimeout) as timed_out:
            await server.call("sleep", {"seconds": 5}, timeout=0.3)
        assert "sleep" in str(timed_out.value)

        tool = {t.mcp_name: t for t in await server.tools()}["sleep"]
        token = CancellationToken()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:

                async def run() -> None:
                    with pytest.raises(BaseException):  # noqa: B017 - asyncio.CancelledError is a BaseException
                        await tool.run_json({"seconds": 5}, token)

                tg.start_soon(run)
                await anyio.sleep(0.3)
                token.cancel()
        # The server saw notifications/cancelled for both: the timeout and the token.
        with anyio.fail_after(5):
            while (await server.call("cancelled_count", {})).structured["cancelled"] < 2:
                await anyio.sleep(0.1)
        assert not (await server.call("sleep", {"seconds": 0.01})).is_error


async def test_calls_run_in_parallel_on_one_session() -> None:
    async with zoo_stdio() as server:
        before = len(children_of(os.getpid()))
        started = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(server.call, "sleep", {"seconds": 0.5})
        elapsed = anyio.current_time() - started
        assert elapsed < 5, elapsed  # sequential would be 10 s; loose bound, not a benchmark
        assert len(children_of(os.getpid())) == before  # one process, not one per call


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_list_changed_updates_the_catalogue(mode: str, zoo_http: str) -> None:
    for server_cm in (zoo_stdio(mode=mode), connect(zoo_http, mode=mode)):
        async with server_cm as server:
            name = f"dyn_{mode}_{server.info.transport}"
            assert name not in {t.mcp_name for t in await server.tools()}
            await server.call("zoo_add_tool", {"name": name})
            with anyio.fail_after(5):
                while name not in {t.mcp_name for t in await server.tools()}:
                    await anyio.sleep(0.05)
            await server.call("zoo_remove_tool", {"name": name})
            with anyio.fail_after(5):
                while name in {t.mcp_name for t in await server.tools()}:
                    await anyio.sleep(0.05)


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

    with anyio.move_on_after(0.5):
        async with zoo_stdio() as server:
            await server.call("sleep", {"seconds": 10})
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
        outcomes = {r.name: r for r in events[0].content}
        assert not outcomes["files_read"].is_error
        assert outcomes["error_result"].is_error
        assert outcomes["formats"].is_error and "format" in outcomes["formats"].content


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
