"""The MetaGPT adapter against real processes, run in ``.venv-metagpt`` (MetaGPT cannot share ``.venv``).

Two ``.venv-metagpt/bin/python`` processes run once per module, side by side:
``tests/metagpt_scripts/scenarios.py`` (the MultiMail stand-in over stdio, a scripted
OpenAI-compatible model on 127.0.0.1, every scenario; a JSON report) and
``examples/metagpt_comms.py`` (the team, end to end). The tests assert on what they report, on the
stand-in's own stores and on the bridge's audit files.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, canonical

from bridge.multimail import ACCOUNT_TOOLS
from bridge.schema import compile_schema
from fixtures.multimail.catalogue import TOOLS as MULTIMAIL_TOOLS
from fixtures.multimail.seed import ACCOUNT_ID, AGENT_KEY, ORDER_EMAIL_IDS, THREAD_ID, open_store

METAGPT_PY = ROOT / ".venv-metagpt" / "bin" / "python"
SPECS = {t.name: t for t in MULTIMAIL_TOOLS}
# Both processes import MetaGPT (~10-25 s on a busy machine) before anything else.
DEADLINE = 240


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class Outcome:
    report: dict[str, Any]
    example: Run
    workdir: Path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    if not METAGPT_PY.exists():
        pytest.fail(f"{METAGPT_PY.relative_to(ROOT)} is missing: build it with `make metagpt`", pytrace=False)
    out = tmp_path_factory.mktemp("metagpt")
    workdir = out / "example"
    procs = {
        "scenarios": subprocess.Popen([str(METAGPT_PY), "tests/metagpt_scripts/scenarios.py", str(out)], cwd=ROOT,
                                      env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        "example": subprocess.Popen([str(METAGPT_PY), "examples/metagpt_comms.py", "--workdir", str(workdir)],
                                    cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    }
    runs: dict[str, Run] = {}
    started = time.monotonic()
    try:
        for name, proc in procs.items():
            left = max(1.0, DEADLINE - (time.monotonic() - started))
            stdout, stderr = proc.communicate(timeout=left)
            runs[name] = Run(proc.returncode, stdout, stderr)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    scenarios = runs["scenarios"]
    report_file = out / "report.json"
    if scenarios.code != 0 or not report_file.exists():
        pytest.fail(f"scenarios.py exited {scenarios.code}:\n{scenarios.stderr[-3000:]}", pytrace=False)
    yield Outcome(json.loads(report_file.read_text()), runs["example"], workdir)


def section(outcome: Outcome, name: str) -> dict[str, Any]:
    data = outcome.report[name]
    if "error" in data:
        pytest.fail(f"scenario {name} failed in .venv-metagpt:\n{data['error']}", pytrace=False)
    return dict(data)


def server_audit(db: str | Path) -> list[str]:
    """The tools the stand-in itself logged, oldest first (what reached the server)."""
    store = open_store(db)
    try:
        with store.read() as tx:
            return [str(e["action"]) for e in reversed(tx.audit_entries(ACCOUNT_ID, None, 1000))]
    finally:
        store.close()


def pending(db: str | Path) -> list[dict[str, Any]]:
    store = open_store(db)
    try:
        with store.read() as tx:
            return [dict(e) for e in tx.pending_emails(ACCOUNT_ID)]
    finally:
        store.close()


def params(signature: Any) -> list[list[str]]:
    return [[p.name, p.kind.name, str(p.annotation), repr(p.default)] for p in signature.parameters.values()]


# -- the generated classes -----------------------------------------------------------------------


def test_one_action_class_per_multimail_tool_named_documented_and_typed(outcome: Outcome) -> None:
    data = section(outcome, "classes")
    tools = data["tools"]
    assert len(tools) == len(MULTIMAIL_TOOLS) == 46
    assert set(tools) == set(SPECS)
    for name, cls in tools.items():
        spec = SPECS[name]
        assert cls["class"] == cls["qualname"] == cls["name"] == camel(name)
        assert cls["path"] == f"bridge.metagpt.actions.{camel(name)}"
        assert cls["is_action"]
        assert cls["doc"] == cls["desc"] == spec.description
        # run(history=None, /, *, <the core's signature>): the same parameters, kinds, types and defaults.
        assert cls["history"] == ["history", "POSITIONAL_ONLY", "list[Message] | None", "None"]
        assert cls["params"] == cls["core"] == params(compile_schema(spec.input_schema, name=name).signature)
        assert cls["typed"]
    assert [p[0] for p in tools["send_email"]["params"][:3]] == ["to", "subject", "markdown"]
    assert all(p[1] == "KEYWORD_ONLY" for cls in tools.values() for p in cls["params"])
    assert len({cls["path"] for cls in tools.values()}) == 46
    # A clash with a taken name: the server's name in front, then a number.
    assert data["clash"] == ["MultimailSendEmail", "MultimailSendEmail2"]


def test_direct_run_with_typed_keywords_goes_through_the_core(outcome: Outcome) -> None:
    data = section(outcome, "direct")
    assert not data["is_error"]
    assert data["content"] == data["str"] == data["result_text"]
    assert json.loads(data["content"])["emails"][0]["id"] == ORDER_EMAIL_IDS[2]
    assert len(json.loads(data["content"])["emails"]) == 2
    assert data["last_result_is_result"]
    assert data["info"] == {"tool": "check_inbox", "server": "multimail", "is_error": False, "structured": None,
                            "arguments": {"limit": 2}}
    assert data["instruct_type"] == "NoneType"  # a text-only result keeps the Message's text
    assert data["invalid"].startswith("InvalidArguments: ") and "'limit'" in data["invalid"]
    assert data["unknown"] == "InvalidArguments: unexpected keyword argument 'bogus'"
    # The attempt the core refused is recorded as such (an unknown keyword never binds to the
    # action's signature, so it never becomes an attempt); the one call as it ended.
    refused = [r for r in data["audit"] if r["outcome"] == "refused"]
    assert [(r["tool"], r["reason"], r["arguments"]) for r in refused] == [
        ("check_inbox", "invalid arguments", {"limit": "two"})]
    (record,) = [r for r in data["audit"] if r["outcome"] != "refused"]
    assert record["agent"] == "comms" and record["tool"] == "check_inbox" and record["outcome"] == "ok"
    assert record["arguments"] == {"limit": 2}
    assert record["call_id"].startswith("CheckInbox:")
    assert server_audit(data["db"]) == ["check_inbox"]  # the invalid calls never left the process
    assert "key *** was" in data["repr"] and AGENT_KEY[:8] not in data["repr"], data["repr"]


def test_llm_fills_the_arguments_from_the_unchanged_input_schema_and_retries_once(outcome: Outcome) -> None:
    data = section(outcome, "llm_filled")
    reqs = data["requests"]
    assert len(reqs) == 4
    spec = SPECS["get_thread"]
    for request in reqs[:2]:
        (tool,) = request["tools"]
        assert canonical(tool) == canonical({"type": "function", "function": {
            "name": "get_thread", "description": spec.description, "parameters": spec.input_schema}})
        assert request["tool_choice"] == {"type": "function", "function": {"name": "get_thread"}}
    assert canonical(reqs[2]["tools"][0]["function"]["parameters"]) == canonical(SPECS["read_email"].input_schema)
    first = reqs[0]["messages"]
    assert first[0]["role"] == "system" and "named comms" in first[0]["content"]
    assert f"Read the thread {THREAD_ID}" in first[-1]["content"]
    # The retry shows the model its arguments and the validation error.
    retry = reqs[1]["messages"]
    assert retry[:2] == first
    assert retry[2] == {"role": "assistant", "content": '{"thread_id": 4417}'}
    assert "4417 is not of type 'string'" in retry[3]["content"]
    reply = data["reply"]
    assert json.loads(reply["content"])["thread_id"] == THREAD_ID
    assert reply["content"] == reply["last_result_text"]
    assert reply["role"] == "comms(Communications Manager)"
    assert reply["cause_by"] == "bridge.metagpt.actions.GetThread"
    refused = data["refused"]
    # The second refusal reads as any refusal reads to a model (bridge.adapters.error_text).
    assert refused["content"].startswith("Error: ") and "read_email" in refused["content"]
    assert "'email_id' is a required property" in refused["content"]
    assert refused["last_result"] is None
    assert server_audit(data["db"]) == ["get_thread"]


def test_a_role_denied_a_tool_never_reaches_the_server(outcome: Outcome) -> None:
    data = section(outcome, "denied")
    read_only = [n for n, s in SPECS.items() if s.read_only and n not in ACCOUNT_TOOLS]
    assert data["engineer"] == [camel(n) for n in SPECS if n in read_only]
    assert "ReplyEmail" not in data["engineer"] and "SendEmail" not in data["engineer"]
    assert len(data["engineer_states"]) == len(data["engineer"])
    # Outside its set: not found, whatever the server has.
    assert data["outside"].startswith("ToolNotFound: unknown tool 'reply_email'")
    # Inside a set but refused by the approver: denied before it is sent.
    assert data["denied"] == {"content": "Error: denied by reviewer: rejected", "is_error": True}
    (asked,) = data["asked"]
    assert asked.startswith("comms:reply_email:ReplyEmail:")
    # The attempt outside the engineer's set is recorded as refused, the denial as denied.
    (attempt,) = [r for r in data["audit"] if r["outcome"] == "refused"]
    assert (attempt["agent"], attempt["tool"]) == ("engineer", "reply_email")
    (record,) = [r for r in data["audit"] if r["outcome"] != "refused"]
    assert (record["agent"], record["tool"], record["decision"], record["reviewer"]) == \
        ("comms", "reply_email", "denied", "team-lead")
    assert record["call_id"].startswith("ReplyEmail:")
    assert data["shared_session"]  # two roles, two permission sets, one session
    assert server_audit(data["db"]) == []


def test_a_quota_error_reaches_the_role_as_a_message_and_the_team_carries_on(outcome: Outcome) -> None:
    data = section(outcome, "quota")
    quota_text = "Monthly email quota exceeded. Upgrade your plan for more sends."
    assert data["history"] is not None  # Team.run returns None when a role raised
    assert quota_text in data["history"]
    assert data["memory"] == ["Tell Ann her order ships today.", f"Error: {quota_text}"]
    assert data["last_result_error"]
    assert data["requests"] == 1
    assert server_audit(data["db"]) == ["send_email"]


# -- the example, end to end -----------------------------------------------------------------------


def test_the_example_is_quiet_and_its_history_readable(outcome: Outcome) -> None:
    run = outcome.example
    assert run.code == 0, run.stderr[-3000:]
    assert run.stderr == ""  # neither MetaGPT's INFO lines nor qianfan's redis warning
    history = run.stdout.split("Team history (one line per message):\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert history[0] == "  Human: Work the new mail in the support inbox."
    assert history[1].startswith("  comms(Communications Manager): id=em_")
    assert "status=pending_send_approval" in history[1]
    assert all(len(line) <= 140 and not line.lstrip().startswith(('"', "{", "}")) for line in history), history


def test_the_comms_team_queues_the_reply_for_approval_and_the_audit_names_each_role(outcome: Outcome) -> None:
    run = outcome.example
    assert run.code == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    out = run.stdout
    assert "   comms: CheckInbox, GetThread, ReplyEmail" in out
    assert "[approval needed] agent comms wants to call" in out and "tool:   reply_email" in out
    assert "is held in MultiMail's gated_send queue for the operator." in out
    db = outcome.workdir / "mail.db"
    (held,) = pending(db)
    assert held["status"] == "pending_send_approval"
    assert held["subject"] == "Re: Tent pole snapped on the first night"
    assert f"Operator sees pending {held['id']} to jonas.berg@fjord.example" in out
    lines = [json.loads(line) for line in (outcome.workdir / "audit.jsonl").read_text().splitlines()]
    records = [r for r in lines if r.get("phase") != "started"]  # each call's outcome (its full record)
    trail = [(r["agent"], r["tool"], r["decision"], r["call_id"].split(":")[0]) for r in records]
    assert trail == [("comms", "check_inbox", "not_required", "CheckInbox"),
                     ("comms", "get_thread", "not_required", "GetThread"),
                     ("comms", "reply_email", "approved", "ReplyEmail"),
                     ("engineer", "get_thread", "not_required", "GetThread")]
    assert records[2]["reviewer"] == "team-lead"
    assert server_audit(db) == ["check_inbox", "get_thread", "reply_email", "get_thread", "list_pending"]
