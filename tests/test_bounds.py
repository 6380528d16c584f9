"""Bounds with clear errors, against the scriptable hostile server (fixtures/hostile.py) over real stdio.

A listing that never ends (a cursor cycle, endless pages, too many tools or bytes) is an error naming
the server and what was read, never a silently partial catalogue; a stdio message past
``Options.max_message_bytes`` closes the connection at once with an error saying so; an answer the
MCP SDK's own JSON parser refuses as a whole fails (or, in a listing, skips the offending tool) at once
instead of waiting for the timeout.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import ROOT, fixture_env, module_cmd
from leaks import leak_checked

from bridge import CallTimeout, ConnectionLost, ProtocolError, Server, connect
from bridge.stdio import _read_lines
from bridge.wire import Wire

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


def hostile(script: dict[str, Any], *, script_file: Path | None = None, **options: Any) -> Server:
    """The hostile server playing ``script`` (from ``script_file`` when it is too large for the environment)."""
    options.setdefault("timeout", 20)
    options.setdefault("call_timeout", 20)
    options.setdefault("exit_grace", 0.5)  # a server left blocked on a full pipe is stopped sooner
    args: list[str] = []
    if script_file is not None:
        script_file.write_text(json.dumps(script), encoding="utf-8")
        args = ["--script", str(script_file)]
    return connect(module_cmd("fixtures.hostile", *args), env=fixture_env(HOSTILE_SCRIPT=json.dumps(script)
                                                                          if script_file is None else "{}"),
                   cwd=ROOT, name="h", **options)


def tool(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "description": f"The {name} tool.", "inputSchema": schema or {"type": "object"}}


def nested(levels: int) -> dict[str, Any]:
    """An object schema whose properties nest ``levels`` objects deep."""
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"inner": schema}}
    return schema


# -- listings ---------------------------------------------------------------------------------------


async def test_a_cursor_cycle_is_an_error_not_a_complete_catalogue() -> None:
    pages = {"": {"tools": [tool("a")], "nextCursor": "to-b"},
             "to-b": {"tools": [tool("b")], "nextCursor": "to-c"},
             "to-c": {"tools": [tool("c")], "nextCursor": "to-b"}}
    with pytest.raises(ProtocolError, match=r"^server 'h': tools/list pages run in a circle: the cursor 'to-b' came "
                                            r"back after 3 pages with 3 tools, [0-9.]+ (bytes|KiB), so the catalogue "
                                            r"would never be complete$"):
        async with leak_checked(hostile({"pages": pages})):
            pass


async def test_endless_one_tool_pages_stop_at_the_page_cap_with_an_error() -> None:
    # Formerly: connected with exactly 10,000 tools, silently. The timeout is only a hang guard.
    with pytest.raises(ProtocolError, match=r"^server 'h': tools/list did not end after 10,000 pages with 10,000 "
                                            r"tools, [0-9.]+ MiB: the server keeps sending a nextCursor$"):
        async with leak_checked(hostile({"endless": {"page_size": 1}}, timeout=300)):
            pass


async def test_endless_pages_stop_at_the_tools_cap() -> None:
    with pytest.raises(ProtocolError, match=r"^server 'h': tools/list offers more than 1,000 tools \(read 11 pages "
                                            r"with 1,100 tools, .*\); raise Options.max_listing_tools if the server "
                                            r"really has that many$"):
        async with leak_checked(hostile({"endless": {"page_size": 100}}, max_listing_tools=1000)):
            pass


async def test_endless_pages_stop_at_the_bytes_cap() -> None:
    # Each endless page of 100 tools is ~8 KB on the wire: 64 KiB are past after 9 pages.
    with pytest.raises(ProtocolError, match=r"^server 'h': tools/list answers exceed 64 KiB \(read 9 pages with 900 "
                                            r"tools, [67]\d\.\d KiB\); raise Options.max_listing_bytes"):
        async with leak_checked(hostile({"endless": {"page_size": 100}}, max_listing_bytes=64 * 1024)):
            pass


async def test_a_listing_timeout_says_how_far_it_got() -> None:
    # Formerly "no answer within 4s", although the server had answered every page.
    with pytest.raises(CallTimeout, match=r"^server 'h': tools/list did not finish within 4s \(read [1-9][0-9,]* "
                                          r"pages? with [0-9,]+ tools?, .*, and the listing had not ended\)$"):
        async with leak_checked(hostile({"endless": {"page_size": 1, "delay": 0.1}}, timeout=4)):
            pass


async def test_a_listing_within_the_caps_is_complete() -> None:
    pages = {"": {"tools": [tool("a"), tool("b")], "nextCursor": "2"}, "2": {"tools": [tool("c")]}}
    async with leak_checked(hostile({"pages": pages}, max_listing_tools=3)) as server:
        assert [e.mcp_name for e in await server.catalogue()] == ["a", "b", "c"]


# -- one answer the SDK's parser refuses as a whole ---------------------------------------------------


async def test_a_tool_nested_too_deep_for_the_sdk_is_skipped_not_waited_for() -> None:
    # The SDK's JSON parser stops at a fixed depth and refused the whole page: the bridge then waited the
    # full timeout (20 s here) and failed to connect. Now that one tool is skipped, the others kept.
    script = {"tools": [tool("shallow"), tool("deep", nested(110)), tool("also_shallow", nested(20))]}
    async with leak_checked(hostile(script)) as server:
        assert [e.mcp_name for e in await server.catalogue()] == ["shallow", "also_shallow"]
        [skipped] = server.session.skipped_tools
        assert skipped.name == "deep"
        assert skipped.reason == "its definition nests 222 levels deep, more than the MCP SDK's JSON parser accepts"


async def test_a_call_answer_nested_too_deep_fails_at_once() -> None:
    deep: dict[str, Any] = {}
    for _ in range(300):
        deep = {"inner": deep}
    script = {"tools": [tool("deep_answer"), tool("echo")],
              "calls": {"deep_answer": [{"result": {"content": [], "structuredContent": deep}}],
                        "echo": [{"result": {"content": [{"type": "text", "text": "still here"}]}}]}}
    async with leak_checked(hostile(script, call_timeout=60)) as server:
        with pytest.raises(ProtocolError, match=r"^server 'h', tool 'deep_answer': MCP error -32603: the answer cannot "
                                                r"be read by the MCP SDK: Invalid JSON: recursion limit exceeded"):
            await server.call("deep_answer")
        assert (await server.call("echo")).text == "still here"


# -- stdio messages ---------------------------------------------------------------------------------


def big_script(**calls: list[dict[str, Any]]) -> dict[str, Any]:
    calls.setdefault("echo", [{"result": {"content": [{"type": "text", "text": "still here"}]}}])
    return {"tools": [tool(name) for name in calls], "calls": calls}


async def test_a_50_mb_message_is_read_whole() -> None:
    # Linear reading: the whole buffer was rescanned for a newline on every 64 KiB read. Speed is a
    # benchmark's business; the generous timeout only turns a hang into a failure.
    async with leak_checked(hostile(big_script(big=[{"big_result": 50_000_000}]), call_timeout=120)) as server:
        result = await server.call("big")
        [block] = result.content
        assert len(block.text) == 50_000_000  # type: ignore[union-attr]


async def test_a_message_over_the_cap_fails_in_flight_calls_at_once_then_reconnects() -> None:
    script = big_script(big=[{"big_result": 2 * MiB}], slow=[{"sleep": 60}, {"result": {"content": []}}])
    expected = (r"^server 'h', tool '{}': the server sent a message larger than 1 MiB \(Options.max_message_bytes\); "
                r"the rest of the stream cannot be told apart from it, so the connection was closed; the next "
                r"request reconnects$")
    async with leak_checked(hostile(script, max_message_bytes=MiB, call_timeout=60)) as server:
        first = server.session._gen

        async def slow() -> None:
            with pytest.raises(ConnectionLost, match=expected.format("slow")):
                await server.call("slow")

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await anyio.sleep(0.2)
            with pytest.raises(ConnectionLost, match=expected.format("big")):
                await server.call("big")
        # The stream cannot be resynchronised: a new connection serves the next call.
        assert (await server.call("echo")).text == "still here"
        assert server.session._gen is not first


async def test_a_line_that_never_ends_fails_at_the_default_cap_not_at_the_timeout() -> None:
    # Formerly buffered whole until the call's timeout (20 s here), however long it grew.
    script = big_script(endless=[{"huge_line": 65 * MiB}, {"sleep": 60}])
    async with leak_checked(hostile(script)) as server:
        with pytest.raises(ConnectionLost, match=r"larger than 64 MiB \(Options.max_message_bytes\)"):
            await server.call("endless")
        assert (await server.call("echo")).text == "still here"


async def test_a_message_over_the_cap_while_connecting_names_the_cap(tmp_path: Path) -> None:
    line = json.dumps({"jsonrpc": "2.0", "id": 0, "result": {"tools": [tool("t" * 2 * MiB)]}})
    line = line.replace('"id": 0', '"id": {id}')
    with pytest.raises(ConnectionLost, match=r"^server 'h': the server sent a message larger than 1 MiB"):
        async with leak_checked(hostile({"listing_line": line}, script_file=tmp_path / "script.json",
                                        max_message_bytes=MiB)):
            pass


@pytest.mark.parametrize("chunk", [997, 65_536, 150_001])
async def test_lines_of_every_length_are_split_exactly_however_the_pipe_cuts_them(chunk: int) -> None:
    # The reader as the stdio transport runs it, on a real StreamReader and Wire: short and long lines
    # (a long one is handed over as the buffer itself) arrive whole and in order, however the reads cut them.
    sizes = [10, 300_000, 0, 20, 70_000, 5, 1_000_000, 3]
    lines = [json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                         "params": {"level": "info", "data": "x" * n}}).encode() for n in sizes]
    data = b"\n".join(lines[:2]) + b"\n\n" + b"\n".join(lines[2:]) + b"\n"  # a blank line is skipped
    reader = asyncio.StreamReader(limit=2 * MiB)

    async def pipe() -> None:
        for start in range(0, len(data), chunk):
            reader.feed_data(data[start:start + chunk])
            await anyio.sleep(0)  # the reader takes this chunk before the next arrives
        reader.feed_eof()

    wire = Wire("h", lambda: None)
    sink, received = anyio.create_memory_object_stream[Any](len(lines))
    with received:
        async with sink, anyio.create_task_group() as tg:
            tg.start_soon(pipe)
            await _read_lines(reader, sink, wire, limit=2 * MiB)
        got = [item async for item in received]
    assert [len(item.message.params["data"]) for item in got] == sizes
    assert wire.ended and wire.lost_reason is None
