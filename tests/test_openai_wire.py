"""What an AutoGen agent puts on the wire to an OpenAI-compatible model, through the scripted server.

The model client is AutoGen's real ``OpenAIChatCompletionClient`` over HTTP; the tools come from real
MCP server subprocesses. What the model was offered is compared with what the server lists.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import openai
import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import ModelClientStreamingChunkEvent, TextMessage, ToolCallExecutionEvent
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_ext.models.openai import OpenAIChatCompletionClient
from helpers import ROOT, canonical, fixture_env, http_server, module_cmd

from bridge import Server, connect
from bridge.autogen import MCPTool
from fixtures.multimail.catalogue import TOOLS as MULTIMAIL_TOOLS
from fixtures.multimail.seed import AGENT_KEY
from fixtures.openai_compat import (
    Body,
    ScriptedModel,
    ScriptError,
    fail,
    load_script,
    text,
    tool_call,
    tool_calls,
    tool_results,
)
from fixtures.schema_zoo import ZOO_SCHEMAS

pytestmark = pytest.mark.anyio

# A dated name: AutoGen resolves "gpt-4o-mini" to one and warns when the answer names another model.
MODEL = "gpt-4o-mini-2024-07-18"
NESTED = {"company": {"name": "Zoë & Co", "hq": {"city": "Zürich", "geo": {"lat": 47.37, "lon": 8}}}}


def model_client(model: ScriptedModel, **kwargs: Any) -> OpenAIChatCompletionClient:
    return OpenAIChatCompletionClient(model=MODEL, base_url=model.base_url, api_key="test", **kwargs)


async def assert_offered_as_listed(server: Server, tools: list[MCPTool], offered: dict[str, dict[str, Any]]) -> None:
    listed = {t.name: t for t in await server.session.list_tools()}
    assert len(offered) == len(tools) == len(listed)
    assert set(offered) == {t.name for t in tools}
    for tool in tools:
        function, raw = offered[tool.name], listed[tool.mcp_name]
        assert canonical(function["parameters"]) == canonical(raw.input_schema), tool.mcp_name
        assert function["description"] == tool.description
        if raw.description:
            assert function["description"] == raw.description


async def run_agent(agent: AssistantAgent, task: str) -> TaskResult:
    """``run``, but keeping the streaming chunk events too (``run`` drops them)."""
    events: list[Any] = []
    async for item in agent.run_stream(task=task):
        if isinstance(item, TaskResult):
            return TaskResult(messages=events, stop_reason=item.stop_reason)
        events.append(item)
    raise AssertionError("run_stream ended without a TaskResult")


# -- what the model is offered ----------------------------------------------------------------------


async def test_zoo_tools_reach_the_model_as_the_server_lists_them(zoo_url: str) -> None:
    async with connect(zoo_url) as server:
        tools = await server.tools()
        with ScriptedModel([text("Nothing to do.")]) as model:
            client = model_client(model)
            result = await run_agent(AssistantAgent("zoo", model_client=client, tools=tools), "Look around.")
            await client.close()
        assert isinstance(result.messages[-1], TextMessage) and result.messages[-1].content == "Nothing to do."
        assert len(model.requests) == 1 and model.ran_out == []
        offered = model.tool_definitions(0)
        await assert_offered_as_listed(server, tools, offered)
        # And as the zoo meant to list them, which no client code touched.
        for tool in tools:
            assert canonical(offered[tool.name]["parameters"]) == canonical(ZOO_SCHEMAS[tool.mcp_name])
        assert model.tools_sent(0) == {name: f["parameters"] for name, f in offered.items()}


async def test_all_multimail_tools_reach_the_model_as_the_server_lists_them(tmp_path: Path) -> None:
    env = fixture_env(MULTIMAIL_API_KEY=AGENT_KEY)
    async with connect(module_cmd("fixtures.multimail", "--db", str(tmp_path / "mail.sqlite3")), env=env,
                       cwd=ROOT) as server:
        tools = await server.tools()
        assert len(tools) == len(MULTIMAIL_TOOLS) == 46
        with ScriptedModel([text("Inbox looks fine.")]) as model:
            client = model_client(model)
            await run_agent(AssistantAgent("mail", model_client=client, tools=tools), "Check the mail.")
            await client.close()
        offered = model.tool_definitions(0)
        await assert_offered_as_listed(server, tools, offered)
        for spec in MULTIMAIL_TOOLS:
            assert canonical(offered[spec.name]["parameters"]) == canonical(spec.input_schema)
            assert offered[spec.name]["description"] == spec.description


# -- a tool call, there and back ----------------------------------------------------------------------


def echoed(content: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(content)
    return value


def summary(body: Body) -> str:
    """A final answer built from the tool results of the request, as a model would."""
    results = [echoed(r) for r in tool_results(body).values()]
    return "read " + ", ".join(r["tool"] for r in results)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_scripted_calls_reach_the_server_and_results_reach_the_model(zoo_url: str, stream: bool) -> None:
    async with connect(zoo_url) as server:
        tools = await server.tools()
        by_mcp = {t.mcp_name: t for t in tools}
        read, nested = by_mcp["files.read"], by_mcp["nested_objects"]
        assert read.name != read.mcp_name  # the model calls the safe name; the server must get its own
        script = [tool_calls((read.name, {"path": "notes/ünïcode.txt"}), (nested.name, NESTED)), summary]
        with ScriptedModel(script) as model:
            client = model_client(model, stream_options={"include_usage": True}) if stream else model_client(model)
            agent = AssistantAgent("reader", model_client=client, tools=tools, max_tool_iterations=3,
                                   model_client_stream=stream)
            result = await run_agent(agent, "Read the notes.")
            await client.close()
        assert len(model.requests) == 2 and model.ran_out == [] and model.remaining() == 0
        assert [bool(r.get("stream")) for r in model.requests] == [stream, stream]

        # What the MCP server received, as it echoed it: exactly the scripted arguments.
        executions = [e for e in result.messages if isinstance(e, ToolCallExecutionEvent)]
        assert len(executions) == 1
        received = {echoed(r.content)["tool"]: echoed(r.content)["arguments"] for r in executions[0].content}
        assert canonical(received) == canonical({"files.read": {"path": "notes/ünïcode.txt"}, "nested_objects": NESTED})

        # The next request carries each result as a tool message answering the call's id.
        calls = model.exchanges[0].response["choices"][0]["message"]["tool_calls"]
        assert [c["function"]["name"] for c in calls] == [read.name, nested.name]
        second = model.messages(1)
        assistant = next(m for m in second if m["role"] == "assistant")
        assert [c["id"] for c in assistant["tool_calls"]] == [c["id"] for c in calls]
        results = model.tool_results(1)
        assert list(results) == [c["id"] for c in calls]
        assert echoed(results[calls[0]["id"]]) == {"tool": "files.read", "arguments": {"path": "notes/ünïcode.txt"}}
        assert canonical(echoed(results[calls[1]["id"]])["arguments"]) == canonical(NESTED)

        final = result.messages[-1]
        assert isinstance(final, TextMessage) and final.content == "read files.read, nested_objects"
        chunks = [m for m in result.messages if isinstance(m, ModelClientStreamingChunkEvent)]
        if stream:
            assert "".join(c.content for c in chunks) == final.content and len(chunks) > 1
            assert final.models_usage is not None and final.models_usage.prompt_tokens > 0
        else:
            assert chunks == []


async def test_agents_of_a_group_each_follow_their_own_script(zoo_url: str) -> None:
    async with connect(zoo_url) as server:
        tools = await server.tools()
        read = next(t for t in tools if t.mcp_name == "files.read")
        scripts = {"alice": [tool_call(read.name, {"path": "draft.md"}), text("Draft read.")],
                   "bob": [text("Looks good to me.")]}
        with ScriptedModel(scripts) as model:
            clients = model_client(model), model_client(model)
            alice = AssistantAgent("alice", model_client=clients[0], tools=tools, max_tool_iterations=2,
                                   system_message="You are alice; bob reviews your work.")
            bob = AssistantAgent("bob", model_client=clients[1],
                                 system_message="You are bob and you review what alice writes.")
            result = await RoundRobinGroupChat([alice, bob], max_turns=2).run(task="Read the draft, then review it.")
            for client in clients:
                await client.close()
        assert [e.key for e in model.exchanges] == ["alice", "alice", "bob"]
        assert model.remaining("alice") == model.remaining("bob") == 0 and model.ran_out == []
        assert "tools" not in model.requests[2]
        assert [m.content for m in result.messages if isinstance(m, TextMessage)][-2:] == [
            "Draft read.", "Looks good to me."]


# -- the server itself ------------------------------------------------------------------------------


def test_wire_shapes_errors_and_running_out() -> None:
    def broken(body: Body) -> str:
        raise RuntimeError("no answer")

    script = [fail(400, "scripted refusal"), text("hi"), broken]
    with pytest.raises(ScriptError, match="no answer"):
        with ScriptedModel(script) as model:
            client = openai.OpenAI(base_url=model.base_url, api_key="test", max_retries=0)
            ask: dict[str, Any] = {"model": "local-model", "messages": [{"role": "user", "content": "hello"}]}
            with pytest.raises(openai.BadRequestError, match="scripted refusal"):
                client.chat.completions.create(**ask)
            answer = client.chat.completions.create(**ask)
            assert answer.model == "local-model" and answer.choices[0].finish_reason == "stop"
            assert answer.usage is not None and answer.usage.total_tokens > 0
            with pytest.raises(openai.BadRequestError, match="no answer"):
                client.chat.completions.create(**ask)
            streamed = list(client.chat.completions.create(**ask, stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "done"
            assert model.ran_out == [3]
            with pytest.raises(openai.NotFoundError, match="Unknown request URL"):
                client.embeddings.create(model="local-model", input="x")
            assert "local-model" in [m.id for m in client.models.list()]
            port = model.port
        # The client still holds its keep-alive connection: stopping must cut it, not wait for it.
        assert len(model.requests) == 4
    client.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("scripted-model")]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_as_a_process_with_a_json_script(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"tool_calls": [{"name": "check_inbox", "arguments": {"limit": 3}}]},
                                  "All caught up."]))
    assert len(load_script(str(script))) == 2
    record = tmp_path / "requests.jsonl"
    with http_server("fixtures.openai_compat", "--script", str(script), "--record", str(record)) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=0)
        first = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "mail?"}])
        call = first.choices[0].message.tool_calls
        assert first.choices[0].finish_reason == "tool_calls" and call is not None
        assert call[0].function.name == "check_inbox" and json.loads(call[0].function.arguments) == {"limit": 3}
        streamed = client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                  messages=[{"role": "user", "content": "and now?"}])
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "All caught up."
        client.close()
    bodies = [json.loads(line) for line in record.read_text().splitlines()]
    assert [b["messages"][0]["content"] for b in bodies] == ["mail?", "and now?"]
