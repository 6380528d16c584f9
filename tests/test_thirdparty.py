"""Real third-party MCP servers, pinned and installed by ``make third-party``, driven through the bridge.

Every server runs as its own process (stdio, and server-everything also over SSE and Streamable
HTTP on 127.0.0.1); nothing here mocks the protocol. For each server:

- every tool converts to an ``MCPTool`` (a ``FunctionTool``) whose AutoGen schema is the
  inputSchema *as the server sent it on the wire*: ``wire_listing`` reads ``tools/list`` over
  raw JSON-RPC, without the SDK, so a lossy parse anywhere in the stack would show;
- a representative call goes through ``MCPTool.run_json``, as an AutoGen agent makes it;
- server-everything's result shapes (image, resource links, embedded resources, structured
  output, annotations, progress) and its server-to-client requests: sampling answered by an
  AutoGen model client, elicitation by a callback or the console, roots from configuration.

Plus a smoke run of three official conformance scenarios (``make conformance`` runs them all).

Skips only when ``.third_party`` is absent outside CI (``make test`` installs it first); a
partial or outdated install fails, and so does an absent one under ``CI``.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from autogen_core import CancellationToken
from autogen_core.tools import FunctionTool
from autogen_ext.models.replay import ReplayChatCompletionClient
from thirdparty import servers

from bridge import CallResult, Server, ToolError, connect
from bridge.autogen import MCPTool
from bridge.callbacks import console_elicitation, elicitation_from

pytestmark = [pytest.mark.thirdparty, pytest.mark.anyio]

# Capabilities the bridge declares when given sampling, elicitation and roots callbacks; the raw
# listing declares the same, since server-everything lists some tools only for such clients.
CALLBACK_CAPABILITIES: dict[str, Any] = {
    "sampling": {}, "elicitation": {"form": {}, "url": {}}, "roots": {"listChanged": True}}
EVERYTHING_CALLBACK_TOOLS = {"trigger-sampling-request", "trigger-elicitation-request", "trigger-url-elicitation",
                             "get-roots-list"}
# What each pinned server negotiates under connect()'s default mode="auto": both protocol eras.
PROTOCOL = {"everything": "2025-11-25", "filesystem": "2025-11-25", "memory": "2025-11-25",
            "sequential-thinking": "2025-11-25", "github": "2024-11-05", "time": "2026-07-28", "git": "2026-07-28"}
TOOL_COUNT = {"everything": 13, "filesystem": 14, "memory": 9, "sequential-thinking": 1, "github": 26, "time": 2,
              "git": 12}


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    """Module-scoped so that it runs before the module-scoped server fixtures."""
    reason = servers.skip_reason()
    if reason is None:
        return
    if not servers.THIRD_PARTY.exists() and not os.environ.get("CI"):
        pytest.skip(f"{reason} (or `make test`, which installs them first)")
    pytest.fail(reason)  # installed wrongly, or missing where it must run


# -- helpers -----------------------------------------------------------------------------------------


def wire_listing(launch: servers.Launch, capabilities: Mapping[str, Any] | None = None,
                 timeout: float = 30.0) -> tuple[str, list[dict[str, Any]]]:
    """``(protocolVersion, tools)`` exactly as a stdio server sends them: raw JSON-RPC, no SDK.

    Blocking (run it in a thread). Server requests (roots/list) get empty answers.
    """
    env = {k: os.environ[k] for k in ("HOME", "PATH", "USER") if k in os.environ} | launch.env
    proc = subprocess.Popen(launch.argv, env=env, cwd=launch.cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, encoding="utf-8")
    assert proc.stdin is not None and proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout

    def pump() -> None:  # a thread, so that a silent server fails the get() timeout instead of hanging
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()

    def answer(request_id: int) -> dict[str, Any]:
        while True:
            message = json.loads(lines.get(timeout=timeout))
            if message.get("id") == request_id and "method" not in message:
                assert "result" in message, message
                result: dict[str, Any] = message["result"]
                return result
            if "method" in message and "id" in message:
                reply: dict[str, Any] = {"roots": []} if message["method"] == "roots/list" else {}
                send({"jsonrpc": "2.0", "id": message["id"], "result": reply})

    try:
        send({"jsonrpc": "2.0", "id": 0, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": dict(capabilities or {}),
                         "clientInfo": {"name": "wire-listing", "version": "0"}}})
        version = str(answer(0)["protocolVersion"])
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for request_id in range(1, 1000):
            send({"jsonrpc": "2.0", "id": request_id, "method": "tools/list",
                  "params": {"cursor": cursor} if cursor else {}})
            page = answer(request_id)
            tools += page["tools"]
            cursor = page.get("nextCursor")
            if not cursor:
                break
        return version, tools
    finally:
        proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def assert_lossless(tools: Sequence[MCPTool], wire: Sequence[Mapping[str, Any]]) -> None:
    """Every listed tool became a FunctionTool presenting the server's own name, description and schema."""
    by_name = {tool.mcp_name: tool for tool in tools}
    assert sorted(by_name) == sorted(t["name"] for t in wire)
    for listed in wire:
        tool = by_name[listed["name"]]
        assert isinstance(tool, FunctionTool)
        assert tool.schema["parameters"] == listed["inputSchema"], listed["name"]
        assert tool.description == listed.get("description", ""), listed["name"]
        assert tool.output_schema == listed.get("outputSchema"), listed["name"]
        # A typed Python signature for every tool with parameters (a parameterless schema stays open).
        compiled = tool.entry.compiled
        assert compiled.typed or compiled.reason == "no declared properties", (listed["name"], compiled.reason)


async def run(tool: MCPTool, arguments: Mapping[str, Any]) -> CallResult:
    """Call as AutoGen does: JSON arguments through ``run_json``; the model would see ``text``."""
    result = await tool.run_json(dict(arguments), CancellationToken())
    assert isinstance(result, CallResult)
    assert tool.return_value_as_string(result) == result.text
    return result


def texts(result: CallResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


@asynccontextmanager
async def stdio(name: str, workdir: Path, **options: Any) -> AsyncIterator[Server]:
    launch = servers.SERVERS[name].launch(workdir)
    async with connect(launch.argv, env=launch.env, cwd=launch.cwd, **options) as server:
        yield server


def offered(wire: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The listed tools the bridge offers: every one (those that run only as MCP tasks are called as tasks)."""
    return dict(wire)


async def tools_of(server: Server, count: int) -> dict[str, MCPTool]:
    """The server's tools once it lists ``count`` of them, following tools/list_changed."""
    with anyio.fail_after(15):
        while len(tools := await server.tools()) < count:
            await server.session.wait_tools_changed()
    return {tool.mcp_name: tool for tool in tools}


def replay_model(text: str) -> ReplayChatCompletionClient:
    return ReplayChatCompletionClient([text])


def console_answers(asked: list[str]) -> Any:
    """An ``input()`` stand-in for the console form: fills three fields, Enter for the rest."""
    answers = {"String": "Grace Hopper", "Boolean": "yes", "Integer": "7"}

    def answer(prompt: str) -> str:
        asked.append(prompt)
        label = re.split(r" \(| \[|:", prompt.strip(), maxsplit=1)[0]
        return answers.get(label, "")

    return answer


@pytest.fixture(scope="module")
def everything_wire(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """server-everything's full listing (callback tools included), as sent over stdio."""
    launch = servers.SERVERS["everything"].launch(tmp_path_factory.mktemp("everything-wire"))
    _, tools = wire_listing(launch, CALLBACK_CAPABILITIES)
    return {tool["name"]: tool for tool in tools}


async def check_callbacks(tools: Mapping[str, MCPTool], *, sampled: str, roots: Mapping[str, Path]) -> None:
    """Sampling and roots requests the server sends back mid-call reach our configuration."""
    result = await run(tools["trigger-sampling-request"], {"prompt": "Say something", "maxTokens": 20})
    assert "LLM sampling result" in result.text
    assert json.loads(result.text.split("\n", 1)[1])["content"] == {"type": "text", "text": sampled}

    listing = (await run(tools["get-roots-list"], {})).text
    assert f"Current MCP Roots ({len(roots)} total)" in listing
    for name, path in roots.items():
        assert f"URI: {path.resolve().as_uri()}" in listing
        if name:
            assert name in listing


# -- server-everything ----------------------------------------------------------------------------


async def test_everything_stdio_catalogue_and_callbacks(tmp_path: Path,
                                                        everything_wire: dict[str, dict[str, Any]]) -> None:
    """Declared callbacks unlock four tools, announced by tools/list_changed; each request is answered."""
    seen: list[tuple[str, Mapping[str, Any]]] = []

    def fill_form(message: str, schema: Mapping[str, Any]) -> dict[str, Any]:
        seen.append((message, schema))
        return {"name": "Ada Lovelace", "check": True}

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    async with stdio("everything", tmp_path, mode="legacy", sampling=replay_model("replayed: 42"),
                     elicitation=elicitation_from(fill_form), roots={"workspace": workspace}) as server:
        task_only = {n for n, t in everything_wire.items()
                     if (t.get("execution") or {}).get("taskSupport") == "required"}
        assert task_only == {"simulate-research-query"}
        tools = await tools_of(server, len(offered(everything_wire)))
        with anyio.fail_after(10):  # the catalogue moved past its first listing by notification
            while server.session.tools_version < 2:
                await server.session.wait_tools_changed()
        assert server.info.protocol_version == PROTOCOL["everything"]
        assert set(tools) >= EVERYTHING_CALLBACK_TOOLS
        assert_lossless(list(tools.values()), list(offered(everything_wire).values()))

        await check_callbacks(tools, sampled="replayed: 42", roots={"workspace": workspace})

        result = await run(tools["trigger-elicitation-request"], {})
        assert "User provided the requested information" in result.text
        assert "- Name: Ada Lovelace" in result.text and "- Agreed to terms: true" in result.text
        [(message, schema)] = seen
        assert message and schema["required"] == ["name"] and "email" in schema["properties"]

        # Runs only as an MCP task: offered like any tool (tests/test_mcp_tasks.py calls it).
        assert "simulate-research-query" in tools and not server.withheld
        assert (await run(tools["echo"], {"message": "still here"})).text == "Echo: still here"


async def test_everything_result_shapes(tmp_path: Path, everything_wire: dict[str, dict[str, Any]]) -> None:
    async with stdio("everything", tmp_path) as server:
        assert server.info.transport == "stdio"
        tools = {tool.mcp_name: tool for tool in await server.tools()}
        # Without callbacks the capability-gated tools are simply not offered; the task-only one is.
        assert len(tools) == TOOL_COUNT["everything"] and not set(tools) & EVERYTHING_CALLBACK_TOOLS
        assert_lossless(list(tools.values()), [everything_wire[name] for name in tools])

        assert (await run(tools["echo"], {"message": "hi"})).text == "Echo: hi"
        assert (await run(tools["get-sum"], {"a": 2, "b": 3.5})).text == "The sum of 2 and 3.5 is 5.5."

        image = await run(tools["get-tiny-image"], {})
        kinds = [type(block) for block in image.content]
        assert kinds == [types.TextContent, types.ImageContent, types.TextContent]
        assert image.content[1].mime_type == "image/png" and len(image.content[1].data) > 1000
        assert re.search(r"\[image: image/png, [\d.]+ KB\]", image.text)  # the model gets a placeholder

        annotated = await run(tools["get-annotated-message"], {"messageType": "error", "includeImage": True})
        first, picture = annotated.content
        assert first.text == "Error: Operation failed"
        assert first.annotations.priority == 1.0 and first.annotations.audience == ["user", "assistant"]
        assert isinstance(picture, types.ImageContent)
        debug = await run(tools["get-annotated-message"], {"messageType": "debug"})
        assert debug.content[0].annotations.audience == ["assistant"]

        links = await run(tools["get-resource-links"], {"count": 3})
        linked = [block for block in links.content if isinstance(block, types.ResourceLink)]
        assert len(linked) == 3 and all(link.uri.startswith("demo://resource/") for link in linked)
        assert links.text.count("[resource link:") == 3

        text_ref = await run(tools["get-resource-reference"], {"resourceType": "Text", "resourceId": 1})
        [embedded] = [block for block in text_ref.content if isinstance(block, types.EmbeddedResource)]
        assert isinstance(embedded.resource, types.TextResourceContents)
        assert embedded.resource.uri == "demo://resource/dynamic/text/1" and embedded.resource.text in text_ref.text
        blob_ref = await run(tools["get-resource-reference"], {"resourceType": "Blob", "resourceId": 2})
        [embedded] = [block for block in blob_ref.content if isinstance(block, types.EmbeddedResource)]
        assert isinstance(embedded.resource, types.BlobResourceContents) and embedded.resource.blob

        weather = await run(tools["get-structured-content"], {"location": "New York"})
        assert set(weather.structured) == {"temperature", "conditions", "humidity"}
        output_schema = tools["get-structured-content"].output_schema
        assert output_schema is not None and output_schema["required"] == ["temperature", "conditions", "humidity"]
        assert json.loads(texts(weather)[0]) == weather.structured

        # Progress notifications reach a progress callback; the result arrives as usual.
        reported: list[tuple[float, float | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            reported.append((progress, total))

        slow = await server.call("trigger-long-running-operation", {"duration": 0.6, "steps": 3}, progress=on_progress)
        assert not slow.is_error and "Long running operation completed" in slow.text
        assert reported == [(1, 3), (2, 3), (3, 3)]
        slow = await run(tools["trigger-long-running-operation"], {"duration": 0.3, "steps": 2})
        assert "Steps: 2" in slow.text


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
async def test_everything_over_http(transport: servers.Transport, tmp_path: Path,
                                    everything_wire: dict[str, dict[str, Any]]) -> None:
    """The same server over SSE and Streamable HTTP, server-to-client requests included; console elicitation."""
    asked: list[str] = []
    printed: list[str] = []
    elicitation = console_elicitation(input_fn=console_answers(asked), print_fn=printed.append)
    with servers.serve_http(servers.SERVERS["everything"], transport, tmp_path) as url:
        async with connect(url, mode="legacy", sampling=replay_model(f"over {transport}"), elicitation=elicitation,
                           roots=[tmp_path]) as server:
            assert server.info.transport == ("sse" if transport == "sse" else "http")
            tools = await tools_of(server, len(offered(everything_wire)))
            assert_lossless(list(tools.values()), list(offered(everything_wire).values()))
            assert (await run(tools["echo"], {"message": transport})).text == f"Echo: {transport}"
            assert (await run(tools["get-sum"], {"a": 40, "b": 2})).text == "The sum of 40 and 2 is 42."
            await check_callbacks(tools, sampled=f"over {transport}", roots={"": tmp_path})

            result = await run(tools["trigger-elicitation-request"], {})
        # Framed as the server's own words, under the user's name for it.
        assert len(printed) == 1 and printed[0].startswith("server '")
        assert printed[0].endswith("' asks:\n    | Please provide inputs for the following fields:")
        content = json.loads(result.text.split("Raw result:", 1)[1])["content"]
        # Typed answers, and Enter took each field's default (or left an optional one out).
        assert content["name"] == "Grace Hopper" and content["check"] is True and content["integer"] == 7
        assert content["firstLine"] == "It was a dark and stormy night." and content["number"] == 3.14
        assert "email" not in content and content["untitledMultipleSelectEnum"] == ["Guitar"]


# -- the other servers ----------------------------------------------------------------------------


async def _filesystem(tools: dict[str, MCPTool], workdir: Path) -> None:
    target = workdir / "root" / "note.txt"
    await run(tools["write_file"], {"path": str(target), "content": "written through AutoGen"})
    assert target.read_text() == "written through AutoGen"
    read = await run(tools["read_text_file"], {"path": str(target)})
    assert read.structured == {"content": "written through AutoGen"}


async def _memory(tools: dict[str, MCPTool], workdir: Path) -> None:
    entity = {"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]}
    created = await run(tools["create_entities"], {"entities": [entity]})
    assert created.structured == {"entities": [entity]}
    graph = await run(tools["read_graph"], {})
    assert graph.structured == {"entities": [entity], "relations": []}
    assert "wrote the first program" in (workdir / "memory.jsonl").read_text()


async def _sequential_thinking(tools: dict[str, MCPTool], workdir: Path) -> None:
    step = await run(tools["sequentialthinking"], {"thought": "Split the problem.", "thoughtNumber": 1,
                                                   "totalThoughts": 2, "nextThoughtNeeded": True})
    assert step.structured["thoughtNumber"] == 1 and step.structured["thoughtHistoryLength"] == 1


async def _github(tools: dict[str, MCPTool], workdir: Path) -> None:
    """Listing only: every call would go to api.github.com."""
    assert {"create_issue", "search_repositories", "get_file_contents"} <= set(tools)


async def _time(tools: dict[str, MCPTool], workdir: Path) -> None:
    now = await run(tools["get_current_time"], {"timezone": "UTC"})
    assert now.structured["timezone"] == "UTC"
    stamp = datetime.fromisoformat(now.structured["datetime"])
    assert abs((stamp - datetime.now(timezone.utc)).total_seconds()) < 300


async def _git(tools: dict[str, MCPTool], workdir: Path) -> None:
    repo = workdir / "repo"
    (repo / "new.txt").write_text("untracked\n")
    status = await run(tools["git_status"], {"repo_path": str(repo)})
    assert "On branch main" in status.text and "new.txt" in status.text


EXERCISES = {"filesystem": _filesystem, "memory": _memory, "sequential-thinking": _sequential_thinking,
             "github": _github, "time": _time, "git": _git}


@pytest.mark.parametrize("name", list(EXERCISES))
async def test_server(name: str, tmp_path: Path) -> None:
    """Lossless catalogue and one representative call, over the protocol version the server picks."""
    launch = servers.SERVERS[name].launch(tmp_path)
    _, wire = await anyio.to_thread.run_sync(wire_listing, launch)
    async with stdio(name, tmp_path) as server:
        assert server.info.protocol_version == PROTOCOL[name]
        tools = {tool.mcp_name: tool for tool in await server.tools()}
        assert len(tools) == TOOL_COUNT[name]
        assert_lossless(list(tools.values()), wire)
        await EXERCISES[name](tools, tmp_path)


async def test_filesystem_roots_from_configuration(tmp_path: Path) -> None:
    """A client that declares roots replaces the directories on the command line with its own."""
    granted = tmp_path / "granted"
    granted.mkdir()
    async with stdio("filesystem", tmp_path, roots=[granted]) as server:
        tools = {tool.mcp_name: tool for tool in await server.tools()}
        with anyio.fail_after(10):  # the server asks for roots after the handshake, asynchronously
            while str(granted.resolve()) not in (allowed := (await run(tools["list_allowed_directories"], {})).text):
                await anyio.sleep(0.1)
        assert str((tmp_path / "root").resolve()) not in allowed

        await run(tools["write_file"], {"path": str(granted / "inside.txt"), "content": "ok"})
        assert (granted / "inside.txt").read_text() == "ok"
        with pytest.raises(ToolError, match="outside allowed directories"):
            await run(tools["write_file"], {"path": str(tmp_path / "root" / "outside.txt"), "content": "no"})
        assert not (tmp_path / "root" / "outside.txt").exists()


def test_every_pinned_server_is_covered() -> None:
    """A server added to the pins must get a test here too."""
    assert set(servers.SERVERS) == {"everything", *EXERCISES} == set(PROTOCOL) == set(TOOL_COUNT)
