"""Several servers from one mcpServers config: prefixes, failures (fail or skip), one agent across all."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from agent_script import calls, script
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent
from helpers import ROOT, children_of

from bridge import AutoApprove, ConfigError, open_servers
from bridge.audit import query as query_audit
from bridge.group import ServerGroupError, ServerSkippedWarning
from fixtures.multimail.seed import AGENT_KEY, open_store

pytestmark = pytest.mark.anyio


def write_config(path: Path, servers: dict[str, object]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def mail_entry(db: Path) -> dict[str, object]:
    open_store(db).close()
    return {"command": sys.executable, "args": ["-m", "fixtures.multimail", "--db", str(db)],
            "env": {"MULTIMAIL_API_KEY": "${MM_KEY}", "PYTHONPATH": str(ROOT)}}


async def test_skip_mode_prefixes_names_and_serves_one_agent_across_servers(
        zoo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_KEY", AGENT_KEY)
    before = set(children_of(os.getpid()))
    config = write_config(tmp_path / "mcp.json", {
        "zoo": {"url": zoo_url},
        "mail": mail_entry(tmp_path / "mail.db"),
        "broken": {"command": "definitely-not-a-command-4711"},
    })
    with pytest.warns(ServerSkippedWarning, match="'broken' skipped: command not found"):
        group = await open_servers(config, on_error="skip").__aenter__()
    try:
        assert list(group) == ["zoo", "mail"] and len(set(children_of(os.getpid())) - before) == 1
        assert list(group.failed) == ["broken"] and "command not found" in str(group.failed["broken"])
        tools = await group.tools_for("assistant", include=["stats", "check_inbox"], approver=AutoApprove(),
                                      audit=tmp_path / "audit.jsonl")
        assert sorted(t.name for t in tools) == ["mail_check_inbox", "zoo_stats"]
        model = script(calls(("zoo_stats", {"numbers": [2, 4]}), ("mail_check_inbox", {"limit": 1})), "done")
        agent = AssistantAgent("assistant", model_client=model, tools=tools)  # type: ignore[arg-type]
        result = await agent.run(task="look")
        executed = {r.name: r for m in result.messages if isinstance(m, ToolCallExecutionEvent) for r in m.content}
        assert '"mean":3.0' in executed["zoo_stats"].content
        assert json.loads(executed["mail_check_inbox"].content)["mailbox_id"] == "mbx_agent"
        workbench = group.workbench_for("assistant", read_only=True)
        names = {t["name"] for t in await workbench.list_tools()}
        assert {"zoo_stats", "zoo_files_read", "mail_check_inbox", "mail_get_thread"} <= names
        assert all(n.startswith(("zoo_", "mail_")) for n in names)
    finally:
        await group.__aexit__(None, None, None)
    records = query_audit(tmp_path / "audit.jsonl")
    assert sorted((r.server, r.tool, r.alias) for r in records) == [
        ("mail", "check_inbox", "mail_check_inbox"), ("zoo", "stats", "zoo_stats")]
    assert set(children_of(os.getpid())) == before  # the stdio server was stopped


async def test_fail_mode_names_the_failing_server_and_stops_the_others(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_KEY", AGENT_KEY)
    before = set(children_of(os.getpid()))
    config = write_config(tmp_path / "mcp.json", {
        "mail": mail_entry(tmp_path / "mail.db"),
        "broken": {"command": "definitely-not-a-command-4711", "args": ["--stdio"]},
    })
    with pytest.raises(ServerGroupError) as info:
        async with open_servers(config):
            pytest.fail("the group must not open")
    assert str(info.value).startswith("server 'broken': failed to start: command not found")
    assert list(info.value.failures) == ["broken"]
    # A server cancelled mid-start is told to go (stdin closed, TERM) and exits moments later.
    with anyio.fail_after(10):
        while set(children_of(os.getpid())) != before:
            await anyio.sleep(0.1)
    assert set(children_of(os.getpid())) == before  # the server still starting was stopped
    # Everything failing is an error in skip mode too: there would be nothing to work with.
    with pytest.raises(ServerGroupError, match="failed to start"):
        async with open_servers({"mcpServers": {"a": {"command": "nope-4711"}}}, on_error="skip"):
            pass


async def test_names_never_collide(zoo_url: str) -> None:
    doc = {"mcpServers": {"left": {"url": zoo_url}, "right": {"url": zoo_url}}}
    async with open_servers(doc, prefix=False) as group:
        with pytest.raises(ConfigError, match="offered by both 'left' and 'right'"):
            await group.tools_for("x", include=["stats"], approval=False)
    async with open_servers(doc) as group:
        tools = await group.tools_for("x", include=["stats", "a.b", "a_b"], approval=False)
        names = [t.name for t in tools]
        assert len(set(names)) == len(names) == 6 and all(n.startswith(("left_", "right_")) for n in names)
    async with open_servers(doc, only=["left"]) as group:
        assert [t.name for t in await group.tools_for("x", include=["stats"], approval=False)] == ["stats"]
    with pytest.raises(ConfigError, match="no server named 'middle'"):
        open_servers(doc, only=["middle"])
    with pytest.raises(ConfigError, match="on_error"):
        open_servers(doc, on_error="ignore")  # type: ignore[arg-type]
