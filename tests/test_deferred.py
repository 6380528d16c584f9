"""Deferred catalogues: the model sees a search tool, finds what it needs, and every guard still holds.

Driven through AutoGen's real OpenAI client against the scripted model server, so each assertion
is about the HTTP requests the model actually received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_ext.models.openai import OpenAIChatCompletionClient
from helpers import fixture_env, http_server, module_cmd

from bridge import ApprovalPolicy, CallbackApprover, Guards, connect
from bridge.approval import Decision
from bridge.audit import query
from bridge.connection import ToolCall
from bridge.toolset import FIND_TOOLS
from fixtures.multimail.seed import AGENT_KEY
from fixtures.openai_compat import ScriptedModel, text, tool_call

pytestmark = pytest.mark.anyio

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture(scope="module")
def mail_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("deferred") / "multimail.sqlite3"
    with http_server("fixtures.multimail", "--db", str(db), transport="http") as url:
        yield url


def client(model: ScriptedModel) -> OpenAIChatCompletionClient:
    return OpenAIChatCompletionClient(model=MODEL, base_url=model.base_url, api_key="test")


def found(model: ScriptedModel, request: int) -> list[str]:
    answer = json.loads(next(iter(model.tool_results(request).values())))
    return [m["name"] for m in answer["matches"]]


async def test_the_workbench_offers_search_then_the_found_tool_with_its_real_schema(mail_url: str,
                                                                                    tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    script = [tool_call(FIND_TOOLS, {"query": "reply to the customer in the same thread", "limit": 3}),
              tool_call("get_thread", {"thread_id": "thr_nope"}), text("done")]
    async with connect(mail_url, headers={"Authorization": f"Bearer {AGENT_KEY}"}) as mail:
        catalogue = {e.name: e for e in await mail.catalogue()}
        bench = mail.workbench_for("drafter", catalogue="deferred", always=["check_inbox"], approval=False,
                                   audit=audit)
        with ScriptedModel(script) as model:
            model_client = client(model)
            agent = AssistantAgent("drafter", model_client=model_client, workbench=bench, max_tool_iterations=3)
            await agent.run(task="Answer the latest customer email.")
            # Closed on this loop: its HTTP pool would otherwise be collected after the loop is gone.
            await model_client.close()
        first = model.tools_sent(0)
        assert list(first) == ["check_inbox", FIND_TOOLS]
        assert first["check_inbox"] == dict(catalogue["check_inbox"].input_schema)
        hits = found(model, 1)
        assert "reply_email" in hits[:3] and "get_thread" in hits
        # From the next model call on, the found tools are offered with their unchanged schemas.
        second = model.tools_sent(1)
        assert set(second) == {"check_inbox", FIND_TOOLS, *hits}
        assert all(second[n] == dict(catalogue[n].input_schema) for n in hits)
    records = query(audit)
    assert [(r.agent, r.tool, r.arguments) for r in records] == [("drafter", "get_thread", {"thread_id": "thr_nope"})]


async def test_fixed_lists_reach_found_tools_through_call_tool_with_every_guard(mail_url: str) -> None:
    asked: list[ToolCall] = []

    def deny(call: ToolCall) -> Decision:
        asked.append(call)
        return Decision(False, "test", "not today")

    guards = Guards(include=["check_inbox", "read_email", "send_email", "reply_email"], catalogue="deferred",
                    approval=ApprovalPolicy(), approver=CallbackApprover(deny))
    async with connect(mail_url, headers={"Authorization": f"Bearer {AGENT_KEY}"}) as mail:
        toolset = mail.toolset("triage", guards)
        assert [e.name for e in await toolset.tools()] == ["find_tools", "call_tool"]
        hits = json.loads((await toolset.call("find_tools", {"query": "send an email"})).text)["matches"]
        assert hits[0]["name"] == "send_email" and hits[0]["inputSchema"]["required"] == ["to", "subject", "markdown"]
        # A tool outside the agent's set is neither found nor callable.
        assert all(m["name"] != "delete_mailbox" for m in json.loads(
            (await toolset.call("find_tools", {"query": "delete mailbox", "limit": 20})).text)["matches"])
        with pytest.raises(Exception, match="unknown tool 'delete_mailbox'"):
            await toolset.call("call_tool", {"name": "delete_mailbox", "arguments": {}})
        # The core validates the inner arguments exactly as a direct call.
        with pytest.raises(Exception, match="subject"):
            await toolset.call("call_tool", {"name": "send_email", "arguments": {"to": ["a@b.example"],
                                                                                  "markdown": "x"}})
        # A gated tool found by search still asks, and a denial never reaches the server.
        sent: dict[str, Any] = {"to": ["jo@globex.example"], "subject": "hi", "markdown": "hello"}
        result = await toolset.call("call_tool", {"name": "send_email", "arguments": sent})
        assert result.is_error and result.text == "denied by reviewer: not today"
        assert [(c.mcp_name, dict(c.arguments), c.agent) for c in asked] == [("send_email", sent, "triage")]
        inbox = await mail.call_checked("check_inbox", {"direction": "outbound"})
        assert "jo@globex.example" not in inbox.text


async def test_auto_defers_past_the_threshold_and_follows_list_changed() -> None:
    async with connect(module_cmd("fixtures.schema_zoo"), env=fixture_env()) as zoo:
        small = zoo.toolset("a", catalogue="auto", defer_over=10**9, approval=False, warn_unguarded=False)
        assert not [e for e in await small.tools() if e.name == FIND_TOOLS]
        big = zoo.toolset("b", catalogue="auto", defer_over=1000, approval=False, warn_unguarded=False)
        assert [e.name for e in await big.tools()] == ["find_tools", "call_tool"]
        assert big.deferred
        new = "zoo_searchable_weather_report"
        assert not json.loads(big.find("weather").text)["matches"]
        await zoo.call_checked("zoo_add_tool", {"name": new, "description": "A weather report for any city."})
        with anyio.fail_after(30):  # a bound on the wait for the announcement, not a measurement
            while new not in await big.routes():
                await anyio.sleep(0.05)
        hits = json.loads(big.find("weather").text)["matches"]
        assert [m["name"] for m in hits][:1] == [new]
