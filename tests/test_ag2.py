"""The AG2 adapter against real processes: the MultiMail stand-in and the schema zoo as MCP servers,
AG2's own OpenAI client talking HTTP to a scripted model server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from autogen import AssistantAgent, GroupChat, GroupChatManager, UserProxyAgent
from helpers import PY, ROOT, canonical, fixture_env, module_cmd
from test_thirdparty import offered as offered_tools
from test_thirdparty import wire_listing
from thirdparty import servers

from bridge import ApprovalPolicy, AutoApprove, ConfigError, Server, connect
from bridge.ag2 import HumanInputApprover, register, register_tools, tools_for
from bridge.audit import query as query_audit
from bridge.multimail import account_filter, wait_for_decision
from fixtures.multimail.catalogue import TOOLS as MULTIMAIL_TOOLS
from fixtures.multimail.seed import ACCOUNT_ID, AGENT_KEY, CUSTOMER_ADDRESS, OPERATOR_KEY, ORDER_EMAIL_IDS, open_store
from fixtures.multimail.store import Store
from fixtures.openai_compat import ScriptedModel, text, tool_call
from fixtures.schema_zoo import ZOO_SCHEMAS

pytestmark = pytest.mark.anyio

EMAIL = ORDER_EMAIL_IDS[0]
REPLY = "Hi Maria, a replacement ships today. Acme Support"
REPLY_TO_JONAS = ("Hi Jonas,\n\nsorry about the broken pole. A replacement for your Fjell 2 ships today to the address "
                  "on order #5120.\n\nAcme Support")


def mail_cmd(db: Path) -> list[str]:
    return module_cmd("fixtures.multimail", "--db", str(db))


def mail(db: Path, key: str = AGENT_KEY) -> Server:
    return connect(mail_cmd(db), env=fixture_env(MULTIMAIL_API_KEY=key), cwd=ROOT, name="multimail")


def llm(model: ScriptedModel) -> dict[str, Any]:
    return {"config_list": [{"model": "gpt-4o-mini", "api_key": "test", "base_url": model.base_url}],
            "cache_seed": None}


def assistant(name: str, model: ScriptedModel, role: str = "You work the support inbox.") -> AssistantAgent:
    # The name comes first in the system message: the scripted model routes on it.
    return AssistantAgent(name, llm_config=llm(model), system_message=f"You are {name}. {role}",
                          is_termination_msg=lambda m: False)


class Human(UserProxyAgent):
    """A UserProxyAgent whose human types scripted answers (and whose prompts are kept)."""

    def __init__(self, name: str = "human", answers: tuple[str, ...] = (), mode: str = "TERMINATE") -> None:
        super().__init__(name, human_input_mode=mode, code_execution_config=False,  # type: ignore[arg-type]
                         is_termination_msg=lambda m: "TERMINATE" in str(m.get("content") or ""))
        self.answers = list(answers)
        self.prompts: list[str] = []

    def get_human_input(self, prompt: str, **kwargs: Any) -> str:
        self.prompts.append(prompt)
        return self.answers.pop(0) if self.answers else "exit"

    async def a_get_human_input(self, prompt: str, **kwargs: Any) -> str:
        return self.get_human_input(prompt)


def last_result(model: ScriptedModel, index: int) -> str:
    """The newest tool result request ``index`` carried (each request repeats the history)."""
    return list(model.tool_results(index).values())[-1]


def store_of(db: Path) -> Store:
    return open_store(db)


def audited_actions(db: Path) -> list[str]:
    store = store_of(db)
    try:
        with store.read() as tx:
            return [str(e["action"]) for e in tx.audit_entries(ACCOUNT_ID, None, 1000)]
    finally:
        store.close()


def pending(db: Path) -> list[dict[str, Any]]:
    store = store_of(db)
    try:
        with store.read() as tx:
            return [dict(e) for e in tx.pending_emails(ACCOUNT_ID)]
    finally:
        store.close()


# -- what the model is offered ------------------------------------------------------------------


async def test_every_multimail_tool_reaches_the_model_with_its_own_schema(db: Path) -> None:
    async with mail(db) as server:
        with ScriptedModel([text("Inbox looks fine.")]) as model:
            agent, human = assistant("mail", model), Human(mode="NEVER")
            names = await register_tools(server, caller=agent, executor=human, approver=AutoApprove())
            await human.a_initiate_chat(agent, message="Check the mail.", max_turns=1)
        assert len(names) == len(MULTIMAIL_TOOLS) == 46
        offered = {t["function"]["name"]: t["function"] for t in model.requests[0]["tools"]}
        assert set(offered) == {t.name for t in MULTIMAIL_TOOLS}
        for spec in MULTIMAIL_TOOLS:
            assert canonical(offered[spec.name]["parameters"]) == canonical(spec.input_schema)
            assert offered[spec.name]["description"] == spec.description
        # And as the server listed them on this very session.
        listed = {t.name: t.input_schema for t in await server.session.list_tools()}
        assert {n: canonical(f["parameters"]) for n, f in offered.items()} == \
            {n: canonical(s) for n, s in listed.items()}


async def test_zoo_schemas_reach_the_model_unchanged(zoo_url: str) -> None:
    async with connect(zoo_url) as server:
        with ScriptedModel([text("Nothing to do.")]) as model:
            agent, human = assistant("zoo", model), Human(mode="NEVER")
            names = await register_tools(server, caller=agent, executor=human, approver=AutoApprove())
            await human.a_initiate_chat(agent, message="Look around.", max_turns=1)
        entries = await server.toolset("zoo", approver=AutoApprove()).tools()
        assert names == [e.name for e in entries] and len(names) == len(ZOO_SCHEMAS)
        offered = model.tools_sent(0)
        for entry in entries:
            assert canonical(offered[entry.name]) == canonical(ZOO_SCHEMAS[entry.mcp_name])


async def test_server_everything_schemas_reach_the_model_as_the_server_sent_them(tmp_path: Path) -> None:
    launch = servers.SERVERS["everything"].launch(tmp_path)
    _, listed = await asyncio.to_thread(wire_listing, launch)  # raw JSON-RPC, no SDK in between
    async with connect(launch.argv, env=launch.env, cwd=launch.cwd) as server:
        with ScriptedModel([text("Nothing to do.")]) as model:
            agent, human = assistant("everything", model), Human(mode="NEVER")
            names = await register_tools(server, caller=agent, executor=human, approver=AutoApprove())
            await human.a_initiate_chat(agent, message="Look around.", max_turns=1)
        entries = {e.name: e for e in await server.toolset("everything", approver=AutoApprove()).tools()}
    offered = model.tools_sent(0)
    assert sorted(names) == sorted(offered) == sorted(entries)
    wire = {t["name"]: t for t in listed}
    # Every tool the server listed, the one that runs only as an MCP task included.
    assert {entries[n].mcp_name for n in names} == set(offered_tools(wire)) and len(names) == len(wire)
    for name in names:
        assert canonical(offered[name]) == canonical(wire[entries[name].mcp_name]["inputSchema"]), name


# -- two agents, sync and async ------------------------------------------------------------------------


async def test_a_initiate_chat_round_trip_and_errors_reach_the_model(db: Path) -> None:
    script = [tool_call("check_inbox", {"status": "unread", "limit": 2}),
              tool_call("get_thread", {"thread_id": 17}),  # breaks the schema: never sent
              tool_call("get_thread", {"thread_id": "thr_nope"}),  # the server's own isError
              text("Two unread. TERMINATE")]
    async with mail(db) as server:
        with ScriptedModel(script) as model:
            agent, human = assistant("triage", model), Human(mode="NEVER")
            await register_tools(server, caller=agent, executor=human, read_only=True, audit=db.parent / "a.jsonl")
            result = await human.a_initiate_chat(agent, message="Triage the inbox.", max_turns=5)
        inbox = json.loads(last_result(model, 1))
        assert inbox["count"] == 2
        invalid = last_result(model, 2)
        assert invalid.startswith("Error: ") and "thread_id" in invalid
        missing = last_result(model, 3)
        assert missing.startswith("Error: ") and "thread_not_found" in missing
        assert "Two unread." in str(result.summary)
    records = [json.loads(line) for line in (db.parent / "a.jsonl").read_text().splitlines()]
    assert {r["agent"] for r in records} == {"triage"}
    assert audited_actions(db).count("get_thread") == 1  # the invalid call never left the machine


async def test_sync_initiate_chat_in_a_thread_uses_the_same_session(db: Path) -> None:
    script = [tool_call("check_inbox", {"limit": 1}), text("One seen. TERMINATE"),
              tool_call("check_inbox", {"limit": 1}), text("Again. TERMINATE")]
    async with mail(db) as server:
        with ScriptedModel(script) as model:
            agent, human = assistant("triage", model), Human(mode="NEVER")
            await register_tools(server, caller=agent, executor=human, read_only=True)
            process = server.session
            await asyncio.to_thread(human.initiate_chat, agent, message="Check.", max_turns=3)
            assert json.loads(last_result(model, 1))["count"] == 1
            # A blocking chat on the loop that owns the session cannot reach it: one clear line, no deadlock.
            human.initiate_chat(agent, message="Check again.", max_turns=3)
            blocked = last_result(model, 3)
            assert blocked.startswith("Error: ") and "a_initiate_chat" in blocked and "to_thread" in blocked
            assert server.session is process


async def test_caller_and_executor_may_be_one_agent_and_errors_are_one_line(db: Path) -> None:
    async with mail(db) as server:
        with ScriptedModel([text("x")]) as model:
            solo = assistant("solo", model)
            names = await register_tools(server, caller=solo, include=["check_inbox"])
            assert names == ["check_inbox"] and solo.can_execute_function("check_inbox")
            assert json.loads(await solo.function_map["check_inbox"](limit=1))["count"] == 1
        with pytest.raises(ConfigError, match="llm_config"):
            await register_tools(server, caller=Human())
        with pytest.raises(ConfigError, match="growing toolsets are refused"):
            await tools_for(server.toolset("x", growing=True))
        with pytest.raises(ConfigError, match="unknown guard option"):
            await register_tools(server, caller=solo, colour="red")


# -- approval -----------------------------------------------------------------------------------------


async def test_a_denied_approval_never_reaches_the_server(db: Path) -> None:
    script = [tool_call("reply_email", {"email_id": EMAIL, "markdown": REPLY}), text("Not sent. TERMINATE")]
    async with mail(db) as server:
        with ScriptedModel(script) as model:
            drafter, human = assistant("drafter", model), Human(answers=("no, wrong tone",))
            await register_tools(server, caller=drafter, executor=human, include=["reply_email"],
                                 approver=HumanInputApprover(human))
            await human.a_initiate_chat(drafter, message="Reply to Maria.", max_turns=3)
        denied = last_result(model, 1)
        assert denied.startswith("Error: ") and "no, wrong tone" in denied
        assert "[approval needed]" in human.prompts[0] and "reply_email" in human.prompts[0]
    assert "reply_email" not in audited_actions(db)
    assert pending(db) == []


async def test_nobody_to_ask_denies_without_blocking_and_unattended_may_approve(db: Path) -> None:
    script = [tool_call("add_contact", {"name": "Ana", "email": "ana@x.example"}), text("TERMINATE"),
              tool_call("add_contact", {"name": "Bo", "email": "bo@x.example"}), text("TERMINATE")]
    async with mail(db) as server:
        with ScriptedModel(script) as model:
            agent, human = assistant("contacts", model), Human(mode="NEVER")
            functions = await tools_for(server, agent="contacts", include=["add_contact"],
                                        approver=HumanInputApprover(human))
            register(functions, agent, human)
            await human.a_initiate_chat(agent, message="Add Ana.", max_turns=2)
            assert "human_input_mode NEVER" in last_result(model, 1)
            other = Human("other", mode="NEVER")
            await register_tools(server, caller=agent, executor=other, include=["add_contact"],
                                 approver=HumanInputApprover(other, unattended="approve"))
            await other.a_initiate_chat(agent, message="Add Bo.", max_turns=2)
            assert not last_result(model, 3).startswith("Error")
        assert human.prompts == [] and other.prompts == []
    assert audited_actions(db).count("add_contact") == 1


# -- a team --------------------------------------------------------------------------------------------


async def test_group_chat_gives_each_agent_only_its_tools(db: Path) -> None:
    script = {
        # triage tries a tool it does not have, then uses its own
        "triage": [tool_call("reply_email", {"email_id": EMAIL, "markdown": "pwned"}),
                   tool_call("check_inbox", {"limit": 1}), text("One new email from Maria.")],
        "drafter": [tool_call("reply_email", {"email_id": EMAIL, "markdown": REPLY}), text("Reply queued.")],
    }
    async with mail(db) as server:
        with ScriptedModel(script) as model:
            human = Human(answers=("y",))
            triage = assistant("triage", model, "You read mail.")
            drafter = assistant("drafter", model, "You reply to mail.")
            common: dict[str, Any] = {"select": account_filter(), "approver": HumanInputApprover(human)}
            seen = {
                "triage": await register_tools(server, caller=triage, read_only=True, **common),
                "drafter": await register_tools(server, caller=drafter, include=["get_thread", "reply_email"],
                                                **common),
            }
            plan = iter([triage, drafter,  # triage's reply_email goes to the only agent that can run that name
                         triage, triage, drafter, drafter, drafter])

            def next_speaker(last: Any, chat: GroupChat) -> Any:
                return next(plan, None)

            chat = GroupChat([human, triage, drafter], messages=[], max_round=8, speaker_selection_method=next_speaker)
            manager = GroupChatManager(chat, llm_config=False)
            await human.a_initiate_chat(manager, message="Work the inbox.")
        offered = {key: set(offered_in(model, key)) for key in ("triage", "drafter")}
        assert offered == {k: set(v) for k, v in seen.items()}
        assert "reply_email" not in offered["triage"] and "check_inbox" not in offered["drafter"]
        results = [r for body in model.requests for r in tool_results_of(body)]
        assert "Error: tool 'reply_email': not among the tools of agent 'triage'" in results
        assert any(r.startswith("{") and '"count": 1' in r for r in results)
        assert len(human.prompts) == 1 and "agent drafter" in human.prompts[0]
    queued = pending(db)
    assert [e["markdown"] for e in queued] == [REPLY]


def offered_in(model: ScriptedModel, marker: str) -> list[str]:
    bodies = [b for b in model.requests if f"You are {marker}." in str(b["messages"][0].get("content"))]
    return sorted({t["function"]["name"] for b in bodies for t in b.get("tools") or ()})


def tool_results_of(body: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in body.get("messages") or () if m.get("role") == "tool"]


async def test_nested_chat_runs_tools_inside_the_inner_conversation(db: Path) -> None:
    script = {"triage": [tool_call("search_contacts", {"query": CUSTOMER_ADDRESS}), text("Maria is a customer.")],
              "coordinator": [text("unused")]}
    async with mail(db) as server:
        with ScriptedModel(script) as model:
            coordinator = assistant("coordinator", model, "You delegate.")
            triage = assistant("triage", model, "You look people up.")
            runner = Human("runner", mode="NEVER")
            await register_tools(server, caller=triage, executor=runner, include=["search_contacts"])
            coordinator.register_nested_chats(
                [{"sender": runner, "recipient": triage, "message": "Who is Maria?", "max_turns": 2,
                  "summary_method": "last_msg"}], trigger=lambda sender: sender is not runner)
            human = Human(mode="NEVER")
            result = await asyncio.to_thread(human.initiate_chat, coordinator, message="Look up Maria.", max_turns=1)
        found = json.loads(last_result(model, 1))
        assert CUSTOMER_ADDRESS in json.dumps(found)
        assert "Maria is a customer." in str(result.chat_history[-1]["content"])
        assert model.remaining("coordinator") == 1  # the nested chat answered, not the coordinator's model


# -- waiting for the operator --------------------------------------------------------------------------


async def test_the_conversation_resumes_after_an_operator_decides_in_another_process(db: Path) -> None:
    script = [tool_call("reply_email", {"email_id": EMAIL, "markdown": REPLY}), text("Queued. TERMINATE"),
              text("Great, it went out. TERMINATE")]
    async with mail(db) as server:
        with ScriptedModel(script) as model:
            drafter, human = assistant("drafter", model), Human(mode="NEVER")
            await register_tools(server, caller=drafter, executor=human, include=["reply_email"],
                                 approval=ApprovalPolicy(tools={"reply_email": "never"}))
            await human.a_initiate_chat(drafter, message="Reply to Maria.", max_turns=2)
            queued = json.loads(last_result(model, 1))
            assert queued["status"] == "pending_send_approval"
            waiting = asyncio.ensure_future(wait_for_decision(server, queued["id"], timeout=60, poll=0.05))
            operator = await asyncio.create_subprocess_exec(
                PY, "-m", "bridge.cli", "call", "decide_email", "--arg", f"email_id={queued['id']}",
                "--arg", "action=approve", "--env", "MULTIMAIL_API_KEY", "--", *mail_cmd(db), cwd=ROOT,
                env={**fixture_env(MULTIMAIL_API_KEY=OPERATOR_KEY), "PATH": "/usr/bin:/bin"},
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = await operator.communicate()
            assert operator.returncode == 0, err.decode()
            decision = await waiting
            assert decision.approved is True
            await human.a_initiate_chat(drafter, message=f"The operator decided: {decision.status}.", max_turns=1,
                                        clear_history=False)
        resumed = [m.get("content") for m in model.requests[-1]["messages"]]
        assert f"The operator decided: {decision.status}." in resumed and "Reply to Maria." in resumed
    store = store_of(db)
    try:
        assert [m["markdown"] for m in store.outbox(CUSTOMER_ADDRESS)] == [REPLY]
    finally:
        store.close()



# -- the example ---------------------------------------------------------------------------------------


def test_the_team_example_runs_offline(tmp_path: Path) -> None:
    offline = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    proc = subprocess.run([PY, str(ROOT / "examples" / "ag2_email_team.py"), "--workdir", str(tmp_path)], cwd=ROOT,
                          env=offline, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert "wait_for_decision: sent (approved=True)" in proc.stdout
    records = query_audit(tmp_path / "audit.jsonl")
    assert {(r.agent, r.tool) for r in records} == {
        ("triage", "check_inbox"), ("triage", "get_thread"), ("drafter", "reply_email"),
        ("contacts", "search_contacts"), ("contacts", "add_contact")}
    assert {r.tool: r.decision for r in records}["reply_email"] == "approved"
    store = store_of(tmp_path / "mail.db")
    try:
        assert [m["markdown"] for m in store.outbox("jonas.berg@fjord.example")] == [REPLY_TO_JONAS]
    finally:
        store.close()
