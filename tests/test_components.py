"""MCPTool and MCPWorkbench as AutoGen components: no secrets in dumps, one session per server on load."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from agent_script import calls, script
from autogen_agentchat.agents import AssistantAgent
from helpers import PY, ROOT, fixture_env, module_cmd

from bridge import ApprovalPolicy, AutoApprove, CallResult, ConsoleApprover, connect
from bridge.audit import query as query_audit
from bridge.autogen import MCPTool
from bridge.connection import Handler, ToolCall
from bridge.registry import ServerSpec
from bridge.targets import HttpTarget
from fixtures.multimail.seed import AGENT_KEY, open_store

pytestmark = pytest.mark.anyio

LOADER = textwrap.dedent('''
    import asyncio, json, sys
    import psutil
    from autogen_agentchat.agents import AssistantAgent
    from autogen_core import CancellationToken
    from bridge.autogen import MCPTool

    def servers():
        return [p.pid for p in psutil.Process().children(recursive=True) if "fixtures.multimail" in p.cmdline()]

    async def main():
        dumped = json.load(open(sys.argv[1]))
        tools = [MCPTool.load_component(c) for c in dumped["tools"]]
        seen = {"before": servers()}
        by_name = {t.name: t for t in tools}
        first = await by_name["check_inbox"].run_json({"limit": 1}, CancellationToken())
        seen["after_first"] = servers()
        await by_name["check_inbox"].run_json({"limit": 2}, CancellationToken())
        contact = await by_name["add_contact"].run_json({"name": "Jo", "email": "jo@new.example"},
                                                        CancellationToken())
        seen["after_three"] = servers()
        agent = AssistantAgent.load_component(dumped["agent"])
        result = await agent.run(task="look")
        seen["after_agent"] = servers()
        seen["agent_said"] = result.messages[-1].content
        seen["first"] = json.loads(first.text)["mailbox_id"]
        seen["contact"] = json.loads(contact.text)["email"]
        print(json.dumps(seen))

    asyncio.run(main())
''')


@pytest.fixture
def mail_cmd(tmp_path: Path) -> list[str]:
    db = tmp_path / "mail.db"
    open_store(db).close()
    return module_cmd("fixtures.multimail", "--db", str(db))


async def test_dump_has_no_secrets_and_loads_into_one_session_per_server(tmp_path: Path, mail_cmd: list[str]) -> None:
    audit = tmp_path / "audit.jsonl"
    async with connect(mail_cmd, env=fixture_env(MULTIMAIL_API_KEY=AGENT_KEY)) as mail:
        tools = await mail.tools_for("clerk", include=["check_inbox", "add_contact"], audit=audit,
                                     approval=ApprovalPolicy(tools={"add_contact": "always"}),
                                     approver=AutoApprove("ci"))
        workbench = mail.workbench_for("scout", include=["check_inbox"], approval=False, audit=audit)
        agent = AssistantAgent("scout", workbench=workbench,
                               model_client=script(calls(("check_inbox", {"limit": 1}))))
        dumped = {"tools": [t.dump_component().model_dump(mode="json") for t in tools],
                  "agent": agent.dump_component().model_dump(mode="json")}
    text = json.dumps(dumped)
    assert AGENT_KEY not in text and "${MULTIMAIL_API_KEY}" in text
    tool_config = dumped["tools"][0]
    assert tool_config["provider"] == "bridge.autogen.MCPTool"
    assert tool_config["config"]["agent"] == "clerk"
    assert [i["kind"] for i in tool_config["config"]["guards"]["chain"]] == ["audit", "approval"]
    (dump_file := tmp_path / "components.json").write_text(text)
    (script_file := tmp_path / "loader.py").write_text(LOADER)

    # A fresh process: the secret comes from its environment, as it would in production.
    env = {**os.environ, **fixture_env(), "MULTIMAIL_API_KEY": AGENT_KEY}
    proc = subprocess.run([PY, str(script_file), str(dump_file)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["before"] == []  # loading connects nothing
    assert len(seen["after_first"]) == 1
    # Three calls from two loaded tools and a loaded agent's workbench: still that one process.
    assert seen["after_three"] == seen["after_first"] == seen["after_agent"]
    assert (seen["first"], seen["contact"]) == ("mbx_agent", "jo@new.example")
    assert '"mailbox_id": "mbx_agent"' in seen["agent_said"]  # the loaded agent's real tool call
    assert [(r.agent, r.tool, r.decision, r.reviewer) for r in query_audit(audit)] == [
        ("clerk", "check_inbox", "not_required", "policy"),
        ("clerk", "check_inbox", "not_required", "policy"),
        ("clerk", "add_contact", "approved", "ci"),
        ("scout", "check_inbox", None, None),
    ]


async def test_loaded_tool_matches_the_original_without_connecting(mail_cmd: list[str]) -> None:
    async with connect(mail_cmd, env=fixture_env(MULTIMAIL_API_KEY=AGENT_KEY)) as mail:
        tool = (await mail.tools_for("x", include=["send_email"], approver=ConsoleApprover(reviewer="console:ops")))[0]
        config = tool.dump_component()
    loaded = MCPTool.load_component(config)
    assert (loaded.name, loaded.description, loaded.schema) == (tool.name, tool.description, tool.schema)
    assert loaded.agent == "x" and loaded.annotations == tool.annotations
    (gate,) = [i for i in loaded.interceptors if getattr(i, "kind", None) == "approval"]
    assert gate.to_config()["approver"] == {"type": "console", "reviewer": "console:ops"}
    with pytest.raises(Exception, match="connects on its first call"):
        _ = loaded.connection


def test_secret_headers_become_references() -> None:
    target = HttpTarget("https://mail.example/mcp", headers={"Authorization": f"Bearer {AGENT_KEY}",
                                                            "X-Api-Key": AGENT_KEY, "Accept-Language": "en"})
    spec = ServerSpec(name="mail", target=target.to_config())
    text = spec.model_dump_json()
    assert AGENT_KEY not in text and "Accept-Language" in text and '"en"' in text


async def test_unserialisable_guards_refuse_to_dump(mail_cmd: list[str]) -> None:
    async def tag(call: ToolCall, call_next: Handler) -> CallResult:
        return await call_next(call)

    async with connect(mail_cmd, env=fixture_env(MULTIMAIL_API_KEY=AGENT_KEY)) as mail:
        plain = (await mail.tools_for("x", include=["check_inbox"], approval=False, interceptors=[tag]))[0]
        with pytest.raises(ValueError, match="tag cannot be written"):
            plain.dump_component()
        lambda_policy = (await mail.tools_for("x", include=["check_inbox"], approver=AutoApprove(),
                                              approval=ApprovalPolicy(lambda c: True)))[0]
        with pytest.raises(ValueError, match="callable"):
            lambda_policy.dump_component()
