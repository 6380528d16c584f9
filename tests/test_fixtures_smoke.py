"""Smoke tests for the fixture servers, driven as real subprocesses through the raw `mcp.Client`.

These prove the fixtures themselves behave (both protocol eras on stdio, SSE and Streamable HTTP,
pagination, result shapes, cancellation, list_changed) so that bridge tests built on top of them
can trust what they are talking to. The bridge is deliberately not used here.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp
import mcp_types as types
import pytest
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ToolsListChanged

from fixtures.bench_server import synthetic_tool
from fixtures.schema_zoo import DEFAULT_PAGE_SIZE, LONG_NAME, ZOO_SCHEMAS, ZOO_TOOLS

REPO_ROOT = Path(__file__).resolve().parent.parent
LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
TRANSPORTS = ("stdio", "sse", "http")
STARTUP_TIMEOUT = 30.0
BENCH_TOOLS = 250
NETWORK_SERVERS: tuple[tuple[str, ...], ...] = (
    ("fixtures.schema_zoo", "http"),
    ("fixtures.schema_zoo", "sse"),
    ("fixtures.bench_server", "http", "--tools", str(BENCH_TOOLS)),
)


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


class ServerProcess:
    """A fixture server started with ``--port 0``; its URL comes from the LISTENING line on stderr."""

    def __init__(self, module: str, transport: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--transport", transport, "--port", "0", *extra],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr_lines: list[str] = []
        self.url: str | None = None
        self._listening = threading.Event()
        # Keep draining stderr after the LISTENING line: a server that logs (tracebacks from the
        # error-raising tools) must never block on a full pipe.
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.module = module

    def wait_ready(self) -> str:
        if not self._listening.wait(STARTUP_TIMEOUT) or self.url is None:
            self.stop()
            raise AssertionError(f"{self.module} never reported LISTENING; stderr:\n{self.stderr_text}")
        return self.url

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            if self.url is None and line.startswith("LISTENING "):
                self.url = line.split()[1]
                self._listening.set()
        self._listening.set()

    @property
    def stderr_text(self) -> str:
        return "".join(self.stderr_lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode


def stdio_target(module: str, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", module, *extra], cwd=str(REPO_ROOT))


def client_for(transport: str, target: str | StdioServerParameters, mode: str, **kwargs: Any) -> mcp.Client:
    if transport == "sse":
        assert isinstance(target, str)
        server: Any = sse_client(target)
    else:
        server = target
    # cache=None: a cached first page would hide list changes from the assertions below.
    return mcp.Client(server, mode=mode, cache=None, read_timeout_seconds=15.0, **kwargs)


class ServerPool:
    """Network fixture servers shared by the tests of this module, started on first use.

    Sharing one process per (module, transport) keeps the suite fast and also proves that one
    process serves legacy and 2026-07-28 clients side by side.
    """

    def __init__(self) -> None:
        self._servers: dict[tuple[str, str, tuple[str, ...]], ServerProcess] = {}

    def start(self, module: str, transport: str, *extra: str) -> ServerProcess:
        key = (module, transport, extra)
        if key not in self._servers:
            self._servers[key] = ServerProcess(module, transport, *extra)
        return self._servers[key]

    def url(self, module: str, transport: str, *extra: str) -> str:
        return self.start(module, transport, *extra).wait_ready()

    def stop_all(self) -> dict[tuple[str, str, tuple[str, ...]], tuple[int, str]]:
        return {key: (server.stop(), server.stderr_text) for key, server in self._servers.items()}


@pytest.fixture(scope="module")
def pool() -> Iterator[ServerPool]:
    servers = ServerPool()
    # Start every network server up front: their startups (mostly imports) then overlap.
    for args in NETWORK_SERVERS:
        servers.start(*args)
    try:
        yield servers
    finally:
        outcomes = servers.stop_all()
    # SIGTERM must be a clean exit (status 0), not a signal death or a hang.
    unclean = {key: outcome for key, outcome in outcomes.items() if outcome[0] != 0}
    assert not unclean, unclean


def zoo_target(pool: ServerPool, transport: str) -> str | StdioServerParameters:
    if transport == "stdio":
        # Each stdio client spawns its own server process.
        return stdio_target("fixtures.schema_zoo")
    url = pool.url("fixtures.schema_zoo", transport)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp" if transport == "http" else "/sse")
    return url


class ListChangedWatcher:
    """Collects legacy tools/list_changed notifications delivered to a client's message handler."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.count = 0

    async def on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.count += 1
            self.event.set()

    def rearm(self) -> None:
        self.event = anyio.Event()


async def list_all_tools(client: mcp.Client) -> tuple[list[types.Tool], int]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await client.list_tools(cursor=cursor)
        pages += 1
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            return tools, pages


def text_json(result: types.CallToolResult, index: int = 0) -> Any:
    block = result.content[index]
    assert isinstance(block, types.TextContent)
    return json.loads(block.text)


# --------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------


def test_zoo_catalogue_covers_the_awkward_names() -> None:
    names = set(ZOO_TOOLS)
    for expected in ("files.read", "repo/status", "send mail", "café_menu", "a.b", "a_b", LONG_NAME):
        assert expected in names
    assert len(LONG_NAME) > 64
    assert all(schema.get("type") == "object" for schema in ZOO_SCHEMAS.values())
    assert len(ZOO_TOOLS) > 3 * DEFAULT_PAGE_SIZE


async def exercise_zoo(client: mcp.Client) -> None:
    """What every (transport, era) pair must get right against the zoo."""
    tools_capability = client.server_capabilities.tools
    assert tools_capability is not None and tools_capability.list_changed is True

    tools, pages = await list_all_tools(client)
    assert pages == -(-len(ZOO_TOOLS) // DEFAULT_PAGE_SIZE)
    assert [tool.name for tool in tools] == list(ZOO_TOOLS)
    # Schemas must arrive exactly as written, vendor keys and all.
    assert {tool.name: tool.input_schema for tool in tools} == ZOO_SCHEMAS

    typed = await client.call_tool("echo_types", {"count": 3, "ratio": 1.5, "flag": True, "nothing": None})
    assert text_json(typed)["types"] == {"count": "integer", "ratio": "number", "flag": "boolean", "nothing": "null"}

    cleared = await client.call_tool("nullable_clears", {"title": None, "priority": 2})
    assert text_json(cleared)["received_keys"] == ["priority", "title"]
    assert text_json(cleared)["null_keys"] == ["title"]

    weird = await client.call_tool("keyword_args", {"from": "a", "class": "b", "2fa": "123456"})
    assert text_json(weird)["arguments"] == {"from": "a", "class": "b", "2fa": "123456"}

    stats = await client.call_tool("stats", {"numbers": [1, 2, 3]})
    assert stats.structured_content == {"count": 3, "sum": 6.0, "mean": 2.0, "extremes": {"min": 1.0, "max": 3.0}}

    image = await client.call_tool("image_result", {})
    picture = image.content[1]
    assert isinstance(picture, types.ImageContent) and picture.mime_type == "image/png"
    assert base64.b64decode(picture.data).startswith(b"\x89PNG\r\n\x1a\n")

    failed = await client.call_tool("error_result", {})
    assert failed.is_error is True

    with pytest.raises(MCPError) as raised:
        await client.call_tool("protocol_error", {"code": -32602, "message": "nope"})
    assert raised.value.code == -32602

    reported: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    await client.call_tool("progress", {"steps": 3, "interval": 0.0}, progress_callback=on_progress)
    assert reported == [1.0, 2.0, 3.0]

    # Cancelling the calling scope must reach the server (notifications/cancelled on legacy, a
    # closed stream or cancel on 2026); the zoo counts what it saw.
    await client.call_tool("cancelled_count", {"reset": True})
    with anyio.move_on_after(0.15):
        await client.call_tool("sleep", {"seconds": 10})
    with anyio.fail_after(5):
        while text_json(await client.call_tool("cancelled_count", {}))["cancelled"] < 1:
            await anyio.sleep(0.05)


async def exercise_own_list_changed(client: mcp.Client, watcher: ListChangedWatcher, name: str) -> None:
    """The client that changes the catalogue is itself told, in whichever way its era allows."""
    if client.protocol_version == MODERN_VERSION:
        async with client.listen(tools_list_changed=True) as subscription:
            await client.call_tool("zoo_add_tool", {"name": name})
            with anyio.fail_after(5):
                async for event in subscription:
                    assert isinstance(event, ToolsListChanged)
                    break
    else:
        watcher.rearm()
        await client.call_tool("zoo_add_tool", {"name": name})
        with anyio.fail_after(5):
            await watcher.event.wait()
    names = [tool.name for tool in (await list_all_tools(client))[0]]
    assert name in names
    assert text_json(await client.call_tool(name, {"text": "hi"}))["arguments"] == {"text": "hi"}
    await client.call_tool("zoo_remove_tool", {"name": name})
    with pytest.raises(MCPError):
        await client.call_tool(name, {})


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_zoo_serves_both_eras(pool: ServerPool, transport: str) -> None:
    for mode, expected_version in (("legacy", LEGACY_VERSION), ("auto", MODERN_VERSION)):
        watcher = ListChangedWatcher()
        async with client_for(transport, zoo_target(pool, transport), mode, message_handler=watcher.on_message) as c:
            assert c.protocol_version == expected_version, (transport, mode)
            await exercise_zoo(c)
            await exercise_own_list_changed(c, watcher, f"dyn_{transport}_{mode}")


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ("sse", "http"))
async def test_zoo_list_changed_reaches_every_client_on_both_eras(pool: ServerPool, transport: str) -> None:
    url = zoo_target(pool, transport)
    watcher = ListChangedWatcher()
    async with (
        client_for(transport, url, "legacy", message_handler=watcher.on_message) as bystander,
        client_for(transport, url, "auto") as listener,
        client_for(transport, url, "legacy") as actor,
    ):
        assert listener.protocol_version == MODERN_VERSION
        # The server learns about a legacy connection from its first request.
        await bystander.list_tools()
        name = f"shared_{transport}"
        async with listener.listen(tools_list_changed=True) as subscription:
            await actor.call_tool("zoo_add_tool", {"name": name})
            with anyio.fail_after(5):
                async for event in subscription:
                    assert isinstance(event, ToolsListChanged)
                    break
                await watcher.event.wait()
        assert name in [tool.name for tool in (await list_all_tools(listener))[0]]

        watcher.rearm()
        await actor.call_tool("zoo_remove_tool", {"name": name})
        with anyio.fail_after(5):
            await watcher.event.wait()
        assert name not in [tool.name for tool in (await list_all_tools(bystander))[0]]


@pytest.mark.anyio
async def test_bench_server_pages_and_calls(pool: ServerPool) -> None:
    # HTTP only: stdio is the same runner code path, already covered by the zoo tests.
    count = BENCH_TOOLS
    url = pool.url("fixtures.bench_server", "http", "--tools", str(count))
    for mode in ("legacy", "auto"):
        async with client_for("http", url, mode) as client:
            tools, pages = await list_all_tools(client)
            assert pages == 3
            assert len(tools) == count + 2
            assert tools[2].input_schema == synthetic_tool(0).input_schema
            echoed = await client.call_tool("echo", {"n": 1, "nested": {"a": [1, 2]}})
            assert echoed.structured_content == {"n": 1, "nested": {"a": [1, 2]}}
            await client.call_tool("sleep", {"seconds": 0})
            found = await client.call_tool(tools[-1].name, {"query": "printer", "limit": 2})
            assert len(text_json(found)["results"]) == 2
