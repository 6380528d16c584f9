"""The approval gate: policies, approvers, and denials that never reach the server."""

from __future__ import annotations

import io
import json

import anyio
import pytest
from agent_script import calls, script
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core import CancellationToken

from bridge import (
    ApprovalPolicy,
    AutoApprove,
    AutoDeny,
    CallbackApprover,
    ConfigError,
    ConsoleApprover,
    InvalidArguments,
    ToolError,
    connect,
)
from bridge.approval import ApprovalGate, Decision, Rule, approver_from_config
from bridge.catalogue import Annotations
from bridge.connection import ToolCall
from bridge.secrets import evidence
from bridge.secrets import mask_data as redact

pytestmark = pytest.mark.anyio

READ_ONLY = Annotations(read_only=True)
UNANNOTATED = Annotations()


def make_call(tool: str = "send_email", *, server: str = "mail", agent: str | None = "drafter",
              annotations: Annotations = UNANNOTATED, alias: str | None = None, **arguments: object) -> ToolCall:
    return ToolCall(server=server, tool=alias or tool, mcp_name=tool, arguments=arguments, annotations=annotations,
                    agent=agent)


# -- policy ------------------------------------------------------------------------------------


async def test_default_policy_asks_unless_annotated_read_only() -> None:
    policy = ApprovalPolicy()
    assert not await policy.requires_approval(make_call("check_inbox", annotations=READ_ONLY))
    # Annotations are untrusted hints: none at all means "treat as destructive".
    assert await policy.requires_approval(make_call("send_email"))
    assert await policy.requires_approval(make_call("x", annotations=Annotations(read_only=False, destructive=False)))


async def test_rule_precedence_rules_then_exact_tool_then_glob_then_agent_then_default() -> None:
    policy = ApprovalPolicy(
        "always",
        tools={"delete_*": "always", "delete_contact": "never", "check_inbox": "always"},
        agents={"auditor": "never"},
        rules=[Rule("never", tool="send_email", agent="drafter", server="mail")],
    )
    assert policy.mode_for(make_call("send_email")) == "never"                       # qualified rule
    assert policy.mode_for(make_call("send_email", server="other")) == "always"      # server must match
    assert policy.mode_for(make_call("delete_contact")) == "never"                   # exact beats glob
    assert policy.mode_for(make_call("delete_account")) == "always"                  # glob
    assert policy.mode_for(make_call("list_mailboxes", agent="auditor")) == "never"  # agent default
    assert policy.mode_for(make_call("check_inbox", agent="auditor")) == "always"    # tool beats agent


async def test_rules_match_the_mcp_name_never_the_alias() -> None:
    policy = ApprovalPolicy("never", tools={"files.read": "always"})
    aliased = make_call("files.read", alias="zoo_files_read", annotations=READ_ONLY)
    assert await policy.requires_approval(aliased)
    # A rule written against the alias does not match (and so cannot be used to exempt it).
    lax = ApprovalPolicy("always", tools={"zoo_files_read": "never"})
    assert await lax.requires_approval(aliased)


async def test_callable_modes_sync_and_async() -> None:
    async def big_batches(call: ToolCall) -> bool:
        return len(call.arguments.get("to", [])) > 2  # type: ignore[arg-type]

    policy = ApprovalPolicy(lambda call: call.agent != "trusted", tools={"send_email": big_batches})
    assert not await policy.requires_approval(make_call("send_email", to=["a@x.io"]))
    assert await policy.requires_approval(make_call("send_email", to=["a@x.io", "b@x.io", "c@x.io"]))
    assert await policy.requires_approval(make_call("other"))
    assert not await policy.requires_approval(make_call("other", agent="trusted"))
    with pytest.raises(ValueError, match="callable"):
        policy.to_config()


async def test_policy_config_round_trip_and_bad_modes() -> None:
    policy = ApprovalPolicy("annotations", tools={"send_email": "always"}, agents={"bot": "never"},
                            rules=[Rule("never", tool="t", server="s", agent="a")])
    again = ApprovalPolicy.from_config(json.loads(json.dumps(policy.to_config())))
    assert again.to_config() == policy.to_config()
    with pytest.raises(ConfigError, match="approval mode"):
        ApprovalPolicy("sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="approval mode"):
        ApprovalPolicy(tools={"x": "maybe"})  # type: ignore[dict-item]


# -- approvers ---------------------------------------------------------------------------------


async def test_console_approver_shows_the_call_and_reads_the_answer() -> None:
    out = io.StringIO()
    answers = iter(["y", "", "not to customers on a Sunday"])
    approver = ConsoleApprover(input_fn=lambda prompt: next(answers), output=out, reviewer="console:alice")
    call = make_call("send_email", to=["maria@customer.example"], subject="Re: order", api_key="sk-live-1234567890")
    assert await approver.review(call) == Decision(True, "console:alice", "approved at the console")
    shown = out.getvalue()
    for part in ("agent drafter", "server: mail", "tool:   send_email", '"maria@customer.example"',
                 "may be destructive (no annotations)"):
        assert part in shown
    assert "sk-live-1234567890" not in shown and '"api_key": "***[' in shown
    denied = await approver.review(call)
    assert (denied.approved, denied.reason) == (False, "denied at the console")
    reasoned = await approver.review(call)
    assert (reasoned.approved, reasoned.reason) == (False, "not to customers on a Sunday")


async def test_console_approver_async_input_escapes_and_closed_stdin() -> None:
    out = io.StringIO()

    async def answer(prompt: str) -> str:
        return "yes"

    approver = ConsoleApprover(input_fn=answer, output=out)
    call = make_call("evil\x1b[2Jtool", alias="evil_tool", agent="a\x1b[31mgent")
    assert (await approver.review(call)).approved
    assert "\x1b" not in out.getvalue() and "called as evil_tool" in out.getvalue()

    def closed(prompt: str) -> str:
        raise EOFError

    decision = await ConsoleApprover(input_fn=closed, output=io.StringIO()).review(call)
    assert not decision.approved and "stdin closed" in decision.reason


async def test_console_prompts_are_asked_one_at_a_time() -> None:
    active = 0
    peak = 0

    async def slow_answer(prompt: str) -> str:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.02)
        active -= 1
        return "y"

    approver = ConsoleApprover(input_fn=slow_answer, output=io.StringIO())
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(approver.review, make_call())
    assert peak == 1


async def test_callback_auto_approvers_and_their_configs() -> None:
    async def by_domain(call: ToolCall) -> Decision:
        ok = all(str(a).endswith("@acme.example") for a in call.arguments.get("to", []))  # type: ignore[union-attr]
        return Decision(ok, "policy-bot", "" if ok else "external recipient")

    assert (await CallbackApprover(by_domain).review(make_call(to=["x@acme.example"]))).approved
    assert (await CallbackApprover(by_domain).review(make_call(to=["x@evil.example"]))).reason == "external recipient"
    sync = CallbackApprover(lambda call: False, reviewer="nope")
    assert await sync.review(make_call()) == Decision(False, "nope", "rejected")
    assert (await AutoApprove().review(make_call())).approved
    assert not (await AutoDeny("read-only deployment").review(make_call())).approved
    for approver in (AutoApprove("ci"), AutoDeny("no"), ConsoleApprover(reviewer="console:bob")):
        again = approver_from_config(approver.to_config())
        assert type(again) is type(approver) and again.to_config() == approver.to_config()
    with pytest.raises(ConfigError):
        approver_from_config({"type": "telepathy"})


def test_redaction_by_key_and_by_value() -> None:
    import bridge.multimail  # noqa: F401 - registers the mm_live_ key shape, whatever ran before
    data = {"to": ["a@b.co"], "Authorization": "Bearer abc", "nested": {"client_secret": "s", "note": "Bearer xyz"},
            "password": "hunter2", "approval_code": "123456", "list": [{"token": "t"}], "subject": "hello",
            "key": "mm_live_abcdefghijkl"}
    # Only the secret itself is masked, as an evidence mark (length, keyed hash); the text around stays.
    assert redact(data) == {"to": ["a@b.co"], "Authorization": evidence("Bearer abc"),
                            "nested": {"client_secret": evidence("s"), "note": f"Bearer {evidence('xyz')}"},
                            "password": evidence("hunter2"), "approval_code": evidence("123456"),
                            "list": [{"token": evidence("t")}], "subject": "hello",
                            "key": evidence("mm_live_abcdefghijkl", "mm_")}


# -- the gate on a real server -----------------------------------------------------------------


async def test_denied_call_never_reaches_the_server(zoo_url: str) -> None:
    reviewed: list[ToolCall] = []

    def deny(call: ToolCall) -> Decision:
        reviewed.append(call)
        return Decision(False, "ops", "no sleeping on the job")

    async with connect(zoo_url) as zoo:
        await zoo.call("cancelled_count", {"reset": True})
        gate = ApprovalGate(ApprovalPolicy(), CallbackApprover(deny))
        result = await zoo.call("sleep", {"seconds": 0}, interceptors=[gate])
        assert result.is_error and result.text == "denied by reviewer: no sleeping on the job"
        counters = (await zoo.call("cancelled_count", {})).structured
        assert "sleep" not in counters["by_tool"]
        # Read-only tools pass unasked under the default policy.
        assert not (await zoo.call("stats", {"numbers": [1, 2]}, interceptors=[gate])).is_error
        assert [c.mcp_name for c in reviewed] == ["sleep"]


async def test_arguments_are_validated_before_anyone_is_asked(zoo_url: str) -> None:
    asked: list[ToolCall] = []
    async with connect(zoo_url) as zoo:
        tools = {t.mcp_name: t for t in await zoo.tools_for(
            "bot", approver=CallbackApprover(lambda c: asked.append(c) or True))}
        with pytest.raises(InvalidArguments):
            await tools["sleep"].run_json({"seconds": -1}, CancellationToken())
        assert asked == []
        await tools["sleep"].run_json({"seconds": 0}, CancellationToken())
        assert [c.agent for c in asked] == ["bot"]


async def test_alias_and_prefix_cannot_bypass_a_rule(zoo_url: str) -> None:
    policy = ApprovalPolicy("never", tools={"files.read": "always"})
    async with connect(zoo_url, prefix="zoo") as zoo:
        tools = {t.mcp_name: t for t in await zoo.tools_for("reader", approval=policy,
                                                            approver=AutoDeny("files are private"))}
        tool = tools["files.read"]
        assert tool.name == "zoo_files_read"
        with pytest.raises(ToolError, match="denied by reviewer: files are private"):
            await tool.run_json({"path": "/etc/passwd"}, CancellationToken())
        gate = ApprovalGate(policy, AutoDeny("files are private"))
        for name in ("files.read", "zoo_files_read"):
            assert (await zoo.call(name, {"path": "x"}, interceptors=[gate])).is_error
        # A rule written with the alias would never match; tools_for says so instead of ignoring it.
        with pytest.raises(ConfigError, match=r"alias of 'files\.read'"):
            await zoo.tools_for("reader", approval=ApprovalPolicy(tools={"zoo_files_read": "always"}))


async def test_agent_gets_the_denial_as_an_error_result_and_carries_on(zoo_url: str) -> None:
    async with connect(zoo_url) as zoo:
        tools = await zoo.tools_for("drafter", include=["sleep", "stats"], approver=AutoDeny("not now"))
        model = script(calls(("sleep", {"seconds": 0}), ("stats", {"numbers": [3]})), "done")
        agent = AssistantAgent("drafter", model_client=model, tools=tools)  # type: ignore[arg-type]
        result = await agent.run(task="work")
    events = [m for m in result.messages if isinstance(m, ToolCallExecutionEvent)]
    by_name = {r.name: r for r in events[0].content}
    assert by_name["sleep"].is_error and by_name["sleep"].content == "Error: denied by reviewer: not now"
    assert not by_name["stats"].is_error
