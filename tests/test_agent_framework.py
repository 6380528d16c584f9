"""The Agent Framework adapter against real processes: the MultiMail stand-in and the schema zoo over stdio,
Agent Framework's own ``OpenAIChatCompletionClient`` talking HTTP to a scripted model server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from agent_framework import Agent, AgentResponse, Message
from agent_framework.openai import OpenAIChatCompletionClient
from helpers import PY, ROOT, canonical, fixture_env, module_cmd
from test_thirdparty import offered as offered_tools
from test_thirdparty import wire_listing
from thirdparty import servers

from bridge import ApprovalPolicy, AutoApprove, CallbackApprover, ConfigError, Server, connect
from bridge.agent_framework import FrameworkApprovals, MCPFunctionTool, answer, tools_for
from bridge.audit import query as query_audit
from bridge.connection import ToolCall
from bridge.lock import LockFile, ServerPin
from fixtures.multimail.catalogue import TOOLS as MULTIMAIL_TOOLS
from fixtures.multimail.seed import ACCOUNT_ID, AGENT_KEY, ORDER_EMAIL_IDS, open_store
from fixtures.openai_compat import ScriptedModel, text, tool_call
from fixtures.schema_zoo import ZOO_SCHEMAS

pytestmark = pytest.mark.anyio

EMAIL = ORDER_EMAIL_IDS[0]
REPLY = "Hi Maria, a replacement ships today. Acme Support"


def mail(db: Path, **options: Any) -> Server:
    return connect(module_cmd("fixtures.multimail", "--db", str(db)), env=fixture_env(MULTIMAIL_API_KEY=AGENT_KEY),
                   cwd=ROOT, name="multimail", **options)


def zoo() -> Server:
    return connect(module_cmd("fixtures.schema_zoo", "--transport", "stdio"), env=fixture_env(), cwd=ROOT,
                   name="zoo")


@asynccontextmanager
async def agent_of(model: ScriptedModel, name: str, tools: Sequence[MCPFunctionTool]) -> AsyncIterator[Agent]:
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", base_url=model.base_url, api_key="test")
    try:
        yield Agent(client=client, name=name, instructions=f"You are {name}. You work the support inbox.",
                    tools=list(tools))
    finally:
        # Closed on this loop: its HTTP pool would otherwise be collected after the loop is gone.
        await client.client.close()


def outgoing(db: Path) -> tuple[list[str], list[int]]:
    """What the stand-in holds for sending: ids in the approval queue and of the delivered mail."""
    store = open_store(db)
    try:
        with store.read() as tx:
            queued = [str(e["id"]) for e in tx.pending_emails(ACCOUNT_ID)]
        return queued, [int(e["id"]) for e in store.outbox()]
    finally:
        store.close()


def newest_result(model: ScriptedModel, index: int = -1) -> str:
    return list(model.tool_results(index).values())[-1]


# -- what the model is sent ----------------------------------------------------------------------


async def test_every_multimail_tool_reaches_the_model_with_its_own_schema(db: Path) -> None:
    async with mail(db) as server:
        tools = await tools_for(server, agent="mail", approver=AutoApprove())
        with ScriptedModel([text("Inbox looks fine.")]) as model:
            async with agent_of(model, "mail", tools) as agent:
                await agent.run("Check the mail.")
        assert len(tools) == len(MULTIMAIL_TOOLS) == 46
        offered = {t["function"]["name"]: t["function"] for t in model.requests[0]["tools"]}
        assert set(offered) == {t.name for t in MULTIMAIL_TOOLS}
        for spec in MULTIMAIL_TOOLS:
            assert canonical(offered[spec.name]["parameters"]) == canonical(spec.input_schema)
            assert offered[spec.name]["description"] == spec.description
        listed = {t.name: t.input_schema for t in await server.session.list_tools()}
        assert {n: canonical(f["parameters"]) for n, f in offered.items()} == \
            {n: canonical(s) for n, s in listed.items()}
        # The bridge's own approver asks, so the framework is not told to.
        assert {t.approval_mode for t in tools} == {"never_require"}


async def test_zoo_schemas_reach_the_model_unchanged_under_safe_names() -> None:
    async with zoo() as server:
        tools = await tools_for(server, agent="zoo", approval=False, warn_unguarded=False)
        with ScriptedModel([text("Nothing to do.")]) as model:
            async with agent_of(model, "zoo", tools) as agent:
                await agent.run("Look around.")
        assert len(tools) == len(ZOO_SCHEMAS)
        offered = model.tools_sent(0)
        assert set(offered) == {t.name for t in tools}
        for t in tools:
            assert canonical(offered[t.name]) == canonical(ZOO_SCHEMAS[t.mcp_name]), t.mcp_name
        assert any(t.name != t.mcp_name for t in tools)  # the long and non-ASCII names were made safe


async def test_server_everything_schemas_reach_the_model_as_the_server_sent_them(tmp_path: Path) -> None:
    launch = servers.SERVERS["everything"].launch(tmp_path)
    _, listed = await asyncio.to_thread(wire_listing, launch)  # raw JSON-RPC, no SDK in between
    wire = {t["name"]: t for t in listed}
    async with connect(launch.argv, env=launch.env, cwd=launch.cwd) as server:
        tools = await tools_for(server, agent="everything", approver=AutoApprove())
        with ScriptedModel([text("Nothing to do.")]) as model:
            async with agent_of(model, "everything", tools) as agent:
                await agent.run("Look around.")
    offered = model.tools_sent(0)
    assert set(offered) == {t.name for t in tools} and tools
    # Every tool the server listed, the one that runs only as an MCP task included.
    assert {t.mcp_name for t in tools} == set(offered_tools(wire)) and len(tools) == len(wire)
    for t in tools:
        assert canonical(offered[t.name]) == canonical(wire[t.mcp_name]["inputSchema"]), t.mcp_name


# -- a run -----------------------------------------------------------------------------------------


async def test_a_run_calls_tools_and_the_next_request_carries_results_and_errors(db: Path) -> None:
    audit = db.parent / "audit.jsonl"
    script = [tool_call("check_inbox", {"status": "unread", "limit": 2}),
              tool_call("get_thread", {"thread_id": 17}),  # breaks the schema: never sent
              tool_call("get_thread", {"thread_id": "thr_nope"}),  # the server's own isError
              text("Two unread.")]
    async with mail(db) as server:
        tools = await tools_for(server, agent="triage", read_only=True, audit=audit)
        assert all(t.approval_mode == "never_require" for t in tools)
        with ScriptedModel(script) as model:
            async with agent_of(model, "triage", tools) as agent:
                response = await agent.run("Triage the inbox.")
        assert json.loads(newest_result(model, 1))["count"] == 2
        invalid = newest_result(model, 2)
        assert invalid.startswith("Error: ") and "thread_id" in invalid
        missing = newest_result(model, 3)
        assert missing.startswith("Error: ") and "thread_not_found" in missing
        assert response.text == "Two unread."
    records = query_audit(audit)
    assert {r.agent for r in records} == {"triage"}
    # The schema-breaking call is recorded as refused (never sent); the other two as they ended.
    assert [(r.tool, r.outcome, r.call_id) for r in records] == [
        ("check_inbox", "ok", "call_1"), ("get_thread", "refused", "call_2"), ("get_thread", "tool_error", "call_3")]
    assert records[1].reason == "invalid arguments"


# -- approval through the framework's own requests --------------------------------------------------


async def gated_run(db: Path, approved: bool, *, use_answer: bool = True) -> tuple[AgentResponse, ScriptedModel]:
    audit = db.parent / "audit.jsonl"
    seeded = outgoing(db)
    async with mail(db) as server:
        tools = await tools_for(server, agent="drafter", include=["get_thread", "reply_email"], audit=audit)
        assert {t.name: t.approval_mode for t in tools} == {"get_thread": "never_require",
                                                            "reply_email": "always_require"}
        with ScriptedModel([tool_call("reply_email", {"email_id": EMAIL, "markdown": REPLY}),
                            text("Reply handled.")]) as model:
            async with agent_of(model, "drafter", tools) as agent:
                session = agent.create_session()
                first = await agent.run("Reply to the order email.", session=session)
                requests = first.user_input_requests
                assert len(requests) == 1 and requests[0].function_call.name == "reply_email"
                assert len(model.requests) == 1  # paused for the caller: nothing ran yet
                assert outgoing(db) == seeded
                if use_answer:
                    replies = [await answer(r, approved, tools=tools, reviewer="alice",
                                            reason="checked" if approved else "wrong tone") for r in requests]
                else:
                    replies = [r.to_function_approval_response(approved) for r in requests]
                final = await agent.run(Message("user", replies), session=session)
    return final, model


async def test_an_approved_request_runs_once_and_the_audit_names_the_reviewer(db: Path) -> None:
    seeded = outgoing(db)
    final, model = await gated_run(db, approved=True)
    held = json.loads(newest_result(model))
    assert held["status"] == "pending_send_approval"
    assert outgoing(db) == ([*seeded[0], held["id"]], seeded[1])  # MultiMail's gated_send holds it
    assert final.text == "Reply handled."
    [record] = query_audit(db.parent / "audit.jsonl")
    assert (record.agent, record.tool, record.outcome) == ("drafter", "reply_email", "ok")
    assert (record.decision, record.reviewer, record.reason) == ("approved", "alice", "checked")


async def test_a_denied_request_never_reaches_the_server_and_is_audited(db: Path) -> None:
    seeded = outgoing(db)
    _, model = await gated_run(db, approved=False)
    assert newest_result(model).startswith("Error: ")
    assert outgoing(db) == seeded
    store = open_store(db)
    try:
        with store.read() as tx:
            assert "reply_email" not in [e["action"] for e in tx.audit_entries(ACCOUNT_ID, None, 1000)]
    finally:
        store.close()
    [record] = query_audit(db.parent / "audit.jsonl")
    assert (record.tool, record.outcome, record.reviewer, record.reason) == ("reply_email", "denied", "alice",
                                                                            "wrong tone")


async def test_the_frameworks_plain_approval_response_is_recorded_as_the_callers(db: Path) -> None:
    await gated_run(db, approved=True, use_answer=False)
    [record] = query_audit(db.parent / "audit.jsonl")
    assert (record.decision, record.reviewer) == ("approved", "agent_framework:caller")


async def test_a_gated_tool_invoked_outside_a_run_is_denied(db: Path) -> None:
    seeded = outgoing(db)
    async with mail(db) as server:
        [reply] = await tools_for(server, agent="drafter", include=["reply_email"])
        [content] = await reply.invoke(arguments={"email_id": EMAIL, "markdown": REPLY})
        assert content.text is not None and content.text.startswith("Error: denied by reviewer: no Agent Framework")
    assert outgoing(db) == seeded


async def test_the_bridges_own_approver_asks_instead(db: Path) -> None:
    asked: list[ToolCall] = []
    seeded = outgoing(db)

    def reviewer(call: ToolCall) -> bool:
        asked.append(call)
        return False

    async with mail(db) as server:
        tools = await tools_for(server, agent="drafter", include=["reply_email"],
                                approver=CallbackApprover(reviewer, reviewer="slack"))
        assert [t.approval_mode for t in tools] == ["never_require"]
        with ScriptedModel([tool_call("reply_email", {"email_id": EMAIL, "markdown": REPLY}), text("ok")]) as model:
            async with agent_of(model, "drafter", tools) as agent:
                response = await agent.run("Reply.")
        assert not response.user_input_requests
        assert newest_result(model, 1) == "Error: denied by reviewer: rejected"
        assert [(c.agent, c.mcp_name, c.call_id) for c in asked] == [("drafter", "reply_email", "call_1")]
    assert outgoing(db) == seeded


async def test_policy_is_evaluated_per_tool_up_front(db: Path) -> None:
    policy = ApprovalPolicy("never", tools={"get_thread": "always"}, agents={"auditor": lambda call: True})
    async with mail(db) as server:
        tools = await tools_for(server, agent="drafter", include=["get_thread", "reply_email"], approval=policy,
                                warn_unguarded=False)
        assert {t.name: t.approval_mode for t in tools} == {"get_thread": "always_require",
                                                            "reply_email": "never_require"}
        # A callable mode decides per call, so the framework asks for every tool it covers.
        audited = await tools_for(server, agent="auditor", include=["reply_email"], approval=policy)
        assert [t.approval_mode for t in audited] == ["always_require"]
        with pytest.raises(ConfigError, match="carries its agent"):
            await tools_for(server.toolset("x"), agent="y")
        with pytest.raises(ConfigError, match="growing=False"):
            await tools_for(server.toolset("x", growing=True))


def test_framework_approvals_fail_closed_without_a_bound_decision() -> None:
    import anyio

    call = ToolCall(server="s", tool="t", mcp_name="t", arguments={}, call_id="call_9")
    decision = anyio.run(FrameworkApprovals().review, call)
    assert not decision.approved and decision.reviewer == "agent_framework:caller"


# -- pins ---------------------------------------------------------------------------------------------


async def test_a_drifted_tool_is_withheld_under_pinned_only(db: Path, tmp_path: Path) -> None:
    async with mail(db) as server:
        listed = await server.session.list_tools()
    pin = ServerPin.of(listed)
    tools = {name: dict(definition) for name, definition in pin.tools.items()}
    tools["reply_email"]["description"] = "Reply to an email (as reviewed last month)."
    lock = tmp_path / "mcp-tools.lock"
    LockFile({"multimail": ServerPin(tools)}).save(lock)
    async with mail(db, lock=lock, lock_policy="pinned-only") as server:
        offered = {t.name for t in await tools_for(server, agent="drafter", approver=AutoApprove())}
        assert "reply_email" not in offered and "get_thread" in offered and len(offered) == 45
        assert "reply_email" in server.withheld


# -- the example ---------------------------------------------------------------------------------------


def test_the_example_runs_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    run = subprocess.run([PY, str(ROOT / "examples" / "agent_framework_email.py"), "--workdir", str(tmp_path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Approve? [y/N]: y   (scripted human)" in run.stdout
    assert "Delivered to jonas.berg@fjord.example" in run.stdout
