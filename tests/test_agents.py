"""Per-agent tool sets on the MultiMail stand-in: selection, binding, both approval layers, waiting."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from agent_script import calls, script
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core import CancellationToken
from helpers import http_server

from bridge import AutoApprove, CallbackApprover, ConfigError, ConsoleApprover, Server, ToolFilter, connect
from bridge.audit import query as query_audit
from bridge.catalogue import Catalogue, ToolEntry
from bridge.connection import ToolCall
from bridge.multimail import ACCOUNT_TOOLS as MULTIMAIL_ACCOUNT_TOOLS
from bridge.multimail import DecisionTimeout, wait_for_decision
from fixtures.multimail.seed import AGENT_KEY, CUSTOMER_ADDRESS, OPERATOR_KEY, ORDER_EMAIL_IDS, open_store
from fixtures.multimail.store import Store

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One stand-in over Streamable HTTP; agent and operator differ by bearer key, as in production."""
    db = tmp_path_factory.mktemp("mail") / "multimail.sqlite3"
    open_store(db).close()
    with http_server("fixtures.multimail", "--db", str(db), transport="http") as url:
        yield url, db


def as_agent(url: str, **kw: object) -> Server:
    return connect(url, headers={"Authorization": f"Bearer {AGENT_KEY}"}, name="multimail", **kw)  # type: ignore[arg-type]


def as_operator(url: str) -> Server:
    return connect(url, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}, name="multimail")


def entry(name: str, read_only: bool | None = None) -> ToolEntry:
    hints = types.ToolAnnotations(read_only_hint=read_only)
    tool = types.Tool(name=name, input_schema={"type": "object"}, annotations=hints)
    return next(iter(Catalogue([tool], prefix="mail")))


# -- ToolFilter (pure) -------------------------------------------------------------------------


def test_filter_globs_match_mcp_and_safe_names_and_exclusion_wins() -> None:
    send, check = entry("send_email"), entry("check_inbox", read_only=True)
    assert send.name == "mail_send_email"
    assert ToolFilter(include=("send_*",)).selects(send)
    assert ToolFilter(include=("mail_send_email",)).selects(send)
    assert not ToolFilter(include=("*",), exclude=("*send*",)).selects(send)
    assert ToolFilter(read_only=True).apply([send, check]) == [check]
    assert ToolFilter(read_only=False).apply([send, check]) == [send]
    assert ToolFilter(destructive=True).apply([send, check]) == [send]  # no annotations: destructive
    assert not ToolFilter(servers=("github",)).selects(send, "multimail")
    assert ToolFilter(predicate=lambda e: "inbox" in e.mcp_name).apply([send, check]) == [check]


def test_opt_in_tools_need_their_exact_name() -> None:
    delete, key, send = entry("delete_account"), entry("create_api_key"), entry("send_email")
    guarded = ToolFilter(opt_in=MULTIMAIL_ACCOUNT_TOOLS)
    assert guarded.apply([delete, key, send]) == [send]
    assert ToolFilter(include=("*",), opt_in=MULTIMAIL_ACCOUNT_TOOLS).apply([delete, key, send]) == [send]
    assert ToolFilter(include=("*_account", "create_*"), opt_in=MULTIMAIL_ACCOUNT_TOOLS).apply([delete, key]) == []
    named = ToolFilter.of(include=["*", "create_api_key"], base=guarded)
    assert named.apply([delete, key, send]) == [key, send]


def test_filter_config_round_trip_and_errors() -> None:
    f = ToolFilter.of(include="check_*", exclude=["x"], read_only=True, base=ToolFilter(opt_in=("delete_*",)))
    assert f.to_config() == {"include": ["check_*"], "exclude": ["x"], "opt_in": ["delete_*"], "read_only": True}
    assert ToolFilter.from_config(f.to_config()) == f
    with pytest.raises(ValueError, match="predicate"):
        ToolFilter(predicate=lambda e: True).to_config()
    with pytest.raises(ConfigError):
        ToolFilter(include=("",))
    with pytest.raises(ConfigError, match="unknown tool filter keys"):
        ToolFilter.from_config({"inclde": ["x"]})


# -- tools_for on the stand-in -----------------------------------------------------------------


async def test_each_agent_gets_its_own_selection(mail: tuple[str, Path]) -> None:
    url, _ = mail
    async with as_agent(url) as server:
        catalogue = await server.catalogue()
        triage = await server.tools_for("triage", read_only=True, select=ToolFilter(opt_in=MULTIMAIL_ACCOUNT_TOOLS))
        assert {t.mcp_name for t in triage} == {
            e.mcp_name for e in catalogue if e.annotations.read_only and e.mcp_name not in MULTIMAIL_ACCOUNT_TOOLS}
        assert {"check_inbox", "get_thread", "list_pending"} <= {t.name for t in triage}
        assert not {"send_email", "reply_email", "read_email"} & {t.name for t in triage}  # read_email marks mail read
        drafter = await server.tools_for("drafter", include=["reply_email", "send_*", "get_thread"])
        assert sorted(t.name for t in drafter) == ["get_thread", "reply_email", "send_email"]
        everyone = await server.tools_for("helper", select=ToolFilter(opt_in=MULTIMAIL_ACCOUNT_TOOLS))
        assert len(everyone) == len(catalogue) - len(MULTIMAIL_ACCOUNT_TOOLS)
        assert all(t.agent == "helper" for t in everyone)
        with pytest.raises(ConfigError, match="approval=False"):
            await server.tools_for("x", approval=False, approver=AutoApprove())


async def test_two_layers_chat_gate_then_gated_send_then_operator(mail: tuple[str, Path], tmp_path: Path) -> None:
    url, db = mail
    audit = tmp_path / "audit.jsonl"
    asked: list[ToolCall] = []
    answers = iter(["y"])

    def console(prompt: str) -> str:
        return next(answers)

    async with as_agent(url) as server, as_operator(url) as operator:
        tools = await server.tools_for("drafter", include=["get_thread", "reply_email"], audit=audit,
                                       approver=CallbackApprover(lambda c: asked.append(c) or True, reviewer="lead"))
        model = script(calls(("get_thread", {"thread_id": "thr_order_4417"})),
                       calls(("reply_email", {"email_id": ORDER_EMAIL_IDS[2],
                                              "markdown": "A replacement fly ships today."})),
                       "replied")
        agent = AssistantAgent("drafter", model_client=model, tools=tools, max_tool_iterations=3)  # type: ignore[arg-type]
        result = await agent.run(task="answer Maria")
        executed = [r for m in result.messages if isinstance(m, ToolCallExecutionEvent) for r in m.content]
        reply = json.loads(executed[-1].content)
        assert reply["status"] == "pending_send_approval"
        assert [c.mcp_name for c in asked] == ["reply_email"]  # get_thread is read-only: no one asked

        # Layer two: the email sits in MultiMail's queue until the operator decides.
        waiter_result: list[object] = []

        async def wait() -> None:
            waiter_result.append(await wait_for_decision(server, reply["id"], timeout=30, poll=0.05))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            pending = json.loads((await operator.call_checked("list_pending", {})).text)["pending"]
            assert [p["id"] for p in pending] == [reply["id"]]
            gate = await operator.tools_for("operator", include=["decide_email"],
                                            approver=ConsoleApprover(input_fn=console, output=io.StringIO()))
            await gate[0].run_json({"email_id": reply["id"], "action": "approve"}, CancellationToken())
        (decision,) = waiter_result
        assert decision.approved and decision.status == "sent"  # type: ignore[attr-defined]

    store = Store(db)
    try:
        delivered = [m for m in store.outbox(CUSTOMER_ADDRESS) if m["email_id"] == reply["id"]]
        assert len(delivered) == 1 and "replacement fly" in delivered[0]["markdown"]
    finally:
        store.close()
    records = query_audit(audit)
    assert [(r.agent, r.tool, r.decision, r.reviewer, r.outcome) for r in records] == [
        ("drafter", "get_thread", "not_required", "policy", "ok"),
        ("drafter", "reply_email", "approved", "lead", "ok"),
    ]


async def test_wait_for_decision_reports_rejection_and_times_out(mail: tuple[str, Path]) -> None:
    url, _ = mail
    async with as_agent(url) as server, as_operator(url) as operator:
        sent = await server.call_checked("send_email", {"to": ["sam.chen@partner.example"], "subject": "Hi",
                                                        "markdown": "Quick question"})
        email_id = json.loads(sent.text)["id"]
        with pytest.raises(DecisionTimeout, match="no decision") as info:
            await wait_for_decision(server, email_id, timeout=0.3, poll=0.05)
        assert info.value.status == "pending_send_approval"
        await operator.call_checked("decide_email", {"email_id": email_id, "action": "reject",
                                                     "reason": "tone"})
        decision = await wait_for_decision(server, email_id, timeout=5, poll=0.05)
        assert (decision.status, decision.approved, decision.reason) == ("rejected", False, "tone")
        # With only the oversight key, list_pending is all there is: decided, outcome unknown.
        decided = await wait_for_decision(operator, email_id, timeout=5, poll=0.05)
        assert (decided.status, decided.approved) == ("decided", None)
        # Cancelling the waiter stops it at once.
        other = json.loads((await server.call_checked("send_email", {"to": ["x@partner.example"], "subject": "s",
                                                                     "markdown": "m"})).text)["id"]
        with anyio.move_on_after(0.3) as scope:
            await wait_for_decision(server, other, timeout=60, poll=0.05)
        assert scope.cancelled_caught
