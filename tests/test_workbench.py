"""MCPWorkbench: cached catalogue, tools/list_changed, selection on calls, AssistantAgent end to end."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from agent_script import calls, script
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core import CancellationToken
from autogen_core.tools import Workbench
from helpers import fixture_env, module_cmd

from bridge import AutoApprove, Server, ToolFilter, connect
from bridge.audit import query as query_audit
from bridge.autogen import MCPWorkbench
from bridge.registry import shared_connections

pytestmark = pytest.mark.anyio


def count_listings(server: Server) -> list[int]:
    """Count tools/list walks on this session (a counter around the real method, nothing faked)."""
    counter = [0]
    real = server.session.list_tools

    async def counted() -> Any:
        counter[0] += 1
        return await real()

    server.session.list_tools = counted  # type: ignore[method-assign]
    return counter


async def wait_for_tool(workbench: Workbench, name: str, present: bool = True) -> None:
    with anyio.fail_after(10):
        while (name in [t["name"] for t in await workbench.list_tools()]) != present:
            await anyio.sleep(0.02)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_running_agent_sees_added_tool_without_relisting_per_model_call(zoo_url: str, mode: str) -> None:
    fresh = f"fresh_{uuid.uuid4().hex[:8]}"
    async with connect(zoo_url, mode=mode) as zoo:
        listings = count_listings(zoo)
        workbench = zoo.workbench_for("builder", exclude=["zoo_remove_tool"], approver=AutoApprove())
        model = script(
            calls(("stats", {"numbers": [1, 2, 3]})),
            calls(("text_blocks", {"count": 2})),
            "looked",
            calls(("zoo_add_tool", {"name": fresh, "description": "added at runtime"})),
            "added",
            calls((fresh, {"anything": 1})),
            "used it",
        )
        agent = AssistantAgent("builder", model_client=model, workbench=workbench, max_tool_iterations=4)
        await agent.run(task="look around")
        # Three model calls and two tool calls, each preceded by list_tools: not one tools/list.
        assert listings[0] == 0
        await agent.run(task="add a tool")
        await wait_for_tool(workbench, fresh)
        assert listings[0] == 1  # exactly one re-list, after the server's list_changed
        second = await agent.run(task="use it")
    results = [r for m in second.messages if isinstance(m, ToolCallExecutionEvent) for r in m.content]
    assert [(r.name, r.is_error) for r in results] == [(fresh, False)]
    assert f'"tool":"{fresh}"' in results[0].content.replace(" ", "")


async def test_removed_tool_disappears_and_selection_is_enforced_on_calls(zoo_url: str) -> None:
    name = f"gone_{uuid.uuid4().hex[:8]}"
    async with connect(zoo_url) as zoo:
        await zoo.call("zoo_add_tool", {"name": name})
        workbench = zoo.workbench_for("reader", read_only=True)
        admin = zoo.workbench_for("admin", approval=False)
        await wait_for_tool(admin, name)
        names = [t["name"] for t in await workbench.list_tools()]
        assert "stats" in names and "sleep" not in names and name not in names
        # Not selected means not callable, whatever the name used.
        for alias in ("sleep", "repo_status", "repo/status"):
            result = await workbench.call_tool(alias, {"seconds": 0})
            assert result.is_error and f"unknown tool {alias!r}" in result.to_text()
        await admin.call_tool("zoo_remove_tool", {"name": name})
        await wait_for_tool(admin, name, present=False)
        gone = await admin.call_tool(name, {})
        assert gone.is_error


async def test_call_results_errors_and_cancellation(zoo_url: str) -> None:
    async with connect(zoo_url) as zoo:
        workbench = zoo.workbench_for("bot", approval=False)
        schema = {t["name"]: t for t in await workbench.list_tools()}["files_read"]
        assert schema["parameters"]["required"] == ["path"] and schema.get("strict") is False
        ok = await workbench.call_tool("image_result", {})
        assert not ok.is_error and ok.to_text() == "a 4x4 orange PNG follows\n[image: image/png, 73 bytes]"
        bad = await workbench.call_tool("sleep", {"seconds": "soon"})
        assert bad.is_error and "seconds" in bad.to_text()
        failed = await workbench.call_tool("error_result", {"message": "nope"})
        assert failed.is_error and failed.to_text() == "Error: nope"  # bridge.adapters.error_text
        await zoo.call("cancelled_count", {"reset": True})
        token = CancellationToken()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                async def cancel_soon() -> None:
                    await anyio.sleep(0.3)
                    token.cancel()
                tg.start_soon(cancel_soon)
                with pytest.raises(asyncio.CancelledError):
                    await workbench.call_tool("sleep", {"seconds": 30}, cancellation_token=token)
            # The server heard about it (notifications/cancelled), so nothing keeps running there.
            while (await zoo.call("cancelled_count", {})).structured["cancelled"] < 1:
                await anyio.sleep(0.05)
        assert (await workbench.save_state())["type"] == "MCPWorkbenchState"


async def test_loaded_workbench_opens_and_releases_its_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    audit = tmp_path / "audit.db"
    # Every env value is dumped as a ${VAR} reference, so the loading side must have it set.
    monkeypatch.setenv("PYTHONPATH", fixture_env()["PYTHONPATH"])
    async with connect(module_cmd("fixtures.schema_zoo"), env=fixture_env()) as zoo:
        original = zoo.workbench_for("loader", include=["stats", "sleep"], approver=AutoApprove(), audit=audit,
                                     timeout=5)
        config = original.dump_component()
    assert config.provider == "bridge.autogen.MCPWorkbench" and config.config["timeout"] == 5
    assert config.config["guards"]["select"] == {"include": ["stats", "sleep"]}
    assert [i["kind"] for i in config.config["guards"]["chain"]] == ["audit", "approval"]
    loaded = MCPWorkbench.load_component(config)
    assert isinstance(loaded, MCPWorkbench) and loaded.agent == "loader" and loaded.timeout == 5
    registry = shared_connections()
    async with loaded:
        assert len(registry) == 1
        assert sorted(t["name"] for t in await loaded.list_tools()) == ["sleep", "stats"]
        assert not (await loaded.call_tool("sleep", {"seconds": 0})).is_error
        assert loaded.connections[0].info.name == "schema-zoo"
    assert len(registry) == 0 and loaded.connections == []
    assert [(r.agent, r.tool, r.decision) for r in query_audit(audit)] == [("loader", "sleep", "approved")]
    assert isinstance(ToolFilter.from_config(config.config["guards"]["select"]), ToolFilter)
