"""Deferred catalogues on the fixed-list frameworks: AG2 and Agent Framework reach found tools through
``call_tool``, with the found tool's schema from ``find_tools`` and every guard in force.

Each test drives the framework's real OpenAI client against the scripted model server and the
MultiMail stand-in, and checks what the model was offered and what reached the server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import test_ag2 as ag2t
import test_agent_framework as aft

from bridge import AutoApprove, CallbackApprover
from bridge.ag2 import register_tools
from bridge.agent_framework import tools_for
from bridge.approval import Decision
from bridge.audit import query
from bridge.connection import ToolCall
from fixtures.multimail.catalogue import TOOLS as MULTIMAIL_TOOLS
from fixtures.openai_compat import ScriptedModel, text, tool_call

pytestmark = pytest.mark.anyio

ALLOWED = ["check_inbox", "read_email", "search_contacts", "add_contact"]
CONTACT = {"name": "Jo Park", "email": "jo.park@globex.example"}


def script() -> list[Any]:
    return [tool_call("find_tools", {"query": "add someone to my contacts", "limit": 2}),
            tool_call("call_tool", {"name": "delete_mailbox", "arguments": {}}),  # outside the agent's set
            tool_call("call_tool", {"name": "add_contact", "arguments": CONTACT}),
            text("Added Jo. TERMINATE")]


def check(model: ScriptedModel, audit: Path, asked: list[ToolCall]) -> None:
    assert set(model.tools_sent(0)) == {"find_tools", "call_tool"}
    found = json.loads(ag2t.last_result(model, 1))["matches"]
    assert [m["name"] for m in found][:1] == ["add_contact"]
    # The found tool's full, unchanged inputSchema: what the model needs to call it right.
    assert found[0]["inputSchema"] == next(t.input_schema for t in MULTIMAIL_TOOLS if t.name == "add_contact")
    assert "delete_mailbox" in ag2t.last_result(model, 2)
    # The gated call was asked about with exactly the model's arguments, and reached the server with them.
    assert [(c.mcp_name, dict(c.arguments), c.agent) for c in asked] == [("add_contact", CONTACT, "contacts")]
    records = [(r.agent, r.tool, r.arguments, r.outcome) for r in query(audit)]
    # The attempt outside the agent's set is recorded as refused; it never reached the server.
    assert records == [("contacts", "delete_mailbox", {}, "refused"), ("contacts", "add_contact", CONTACT, "ok")]


def approver(asked: list[ToolCall]) -> CallbackApprover:
    def ok(call: ToolCall) -> Decision:
        asked.append(call)
        return Decision(True, "test")

    return CallbackApprover(ok)


async def test_ag2_reaches_found_tools_through_call_tool(db: Path) -> None:
    audit, asked = db.parent / "audit.jsonl", []
    async with ag2t.mail(db) as server:
        with ScriptedModel(script()) as model:
            agent, human = ag2t.assistant("contacts", model), ag2t.Human(mode="NEVER")
            names = await register_tools(server, caller=agent, executor=human, include=ALLOWED,
                                         catalogue="deferred", approver=approver(asked), audit=audit)
            assert names == ["find_tools", "call_tool"]
            await human.a_initiate_chat(agent, message="Add Jo Park to the address book.", max_turns=4)
    check(model, audit, asked)


async def test_agent_framework_reaches_found_tools_through_call_tool(db: Path) -> None:
    audit, asked = db.parent / "audit.jsonl", []
    async with aft.mail(db) as server:
        tools = await tools_for(server, agent="contacts", include=ALLOWED, catalogue="deferred",
                                approver=approver(asked), audit=audit)
        assert [t.name for t in tools] == ["find_tools", "call_tool"]
        with ScriptedModel(script()) as model:
            async with aft.agent_of(model, "contacts", tools) as agent:
                await agent.run("Add Jo Park to the address book.")
    check(model, audit, asked)


async def test_unattended_deferred_search_needs_no_approval(db: Path) -> None:
    async with aft.mail(db) as server:
        tools = await tools_for(server, agent="t", include=ALLOWED, catalogue="deferred", approver=AutoApprove())
        find = next(t for t in tools if t.name == "find_tools")
        assert find.approval_mode == "never_require"
