"""Every example runs offline, as a user would run it, and leaves the state it claims to."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers import PY, ROOT

from bridge.audit import query as query_audit
from bridge.multimail import ACCOUNT_TOOLS as MULTIMAIL_ACCOUNT_TOOLS
from fixtures.multimail.seed import AGENT_KEY_ID, MAILBOX_ID, OPERATOR_KEY_ID
from fixtures.multimail.store import Store

EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}  # offline, whatever the shell has
    proc = subprocess.run([PY, str(EXAMPLES / name), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_quickstart() -> None:
    proc = run_example("quickstart.py")
    assert proc.stdout.strip().splitlines()[-1] == "Maria Lopez wrote 3 times (order #4417)."
    assert len([line for line in (EXAMPLES / "quickstart.py").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith(("#", '"""'))]) <= 20


def test_email_team(tmp_path: Path) -> None:
    proc = run_example("email_team.py", "--workdir", str(tmp_path))
    out = proc.stdout
    assert "wait_for_decision: sent (approved=True)" in out
    assert out.count("(scripted reviewer)") == 2

    store = Store(tmp_path / "mail.db")
    try:
        with store.read() as tx:
            contact = tx.contact_by_email("acct_acme", "jonas.berg@fjord.example")
            inbound = tx.search_emails(MAILBOX_ID, sender="jonas.berg", limit=10)
            replies = tx.search_emails(MAILBOX_ID, direction="outbound", subject_contains="Tent pole", limit=10)
        outbox = store.outbox("jonas.berg@fjord.example")
    finally:
        store.close()
    # The contacts agent added the customer; triage read the mail.
    assert contact is not None and contact["name"] == "Jonas Berg" and "customer" in contact["tags"]
    assert [e["status"] for e in inbound] == ["read"]
    # Exactly one reply, written by the agent's key, approved by the operator's, delivered once.
    (reply,) = replies
    assert (reply["status"], reply["created_by_key"], reply["decided_by_key"]) == ("sent", AGENT_KEY_ID,
                                                                                    OPERATOR_KEY_ID)
    assert reply["thread_id"] == inbound[0]["thread_id"]
    assert len(outbox) == 1 and outbox[0]["email_id"] == reply["id"] and "replacement" in outbox[0]["markdown"]

    records = query_audit(tmp_path / "audit.jsonl")
    assert sorted((r.agent or "", r.tool, r.decision or "", r.reviewer or "", r.outcome) for r in records) == sorted([
        ("triage", "check_inbox", "not_required", "policy", "ok"),
        ("triage", "get_thread", "not_required", "policy", "ok"),
        ("triage", "read_email", "not_required", "policy", "ok"),
        ("drafter", "reply_email", "approved", "console:team-lead", "ok"),
        ("contacts", "search_contacts", "not_required", "policy", "ok"),
        ("contacts", "add_contact", "approved", "console:team-lead", "ok"),
        ("operator", "list_pending", "", "", "ok"),
        ("operator", "decide_email", "", "", "ok"),
    ])
    agents_calls = {r.tool for r in records if r.agent != "operator"}
    assert not agents_calls & set(MULTIMAIL_ACCOUNT_TOOLS)
    # The table was printed, and printed no secrets.
    assert f"$ mcp-bridge audit {tmp_path / 'audit.jsonl'}" in out and "8 calls · server multimail" in out
    assert "mm_test_" not in out


def test_the_demo_runs_a_real_agent_team_then_the_cli() -> None:
    import subprocess
    import sys

    from helpers import ROOT

    env = {k: v for k, v in __import__("os").environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    proc = subprocess.run([sys.executable, "examples/demo.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for step in ("1. An AutoGen team works the inbox", "2. The catalogue, as AutoGen will see it",
                 "3. One tool in full: send_email"):
        assert step in out
    assert "is held in MultiMail's gated_send queue for the operator" in out
    assert "wait_for_decision: sent (approved=True)" in out
    assert "Delivered to jonas.berg@fjord.example: 'Re: Tent pole snapped on the first night'" in out
    assert "Fidelity: lossless" in out
    assert readme_demo_lines_missing(out) == []


def readme_demo_lines_missing(out: str) -> list[str]:
    """The README's abridged `make demo` output, line by line, that the demo did not print, in order
    (``…`` stands for anything; a line of only ``…`` for lines left out)."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("What `make demo` shows"):].split("```text\n", 1)[1].split("```", 1)[0]
    printed = [line.rstrip() for line in out.splitlines()]
    missing, at = [], 0
    for line in block.splitlines():
        if line.strip() in ("", "…"):
            continue
        pattern = re.compile(".*?".join(re.escape(part) for part in line.rstrip().split("…")))
        found = next((i for i in range(at, len(printed)) if pattern.fullmatch(printed[i])), None)
        if found is None:
            missing.append(line)
        else:
            at = found + 1
    return missing


def test_code_mode(tmp_path: Path) -> None:
    proc = run_example("code_mode.py", "--workdir", str(tmp_path))
    assert "support is offered: run_python (" in proc.stdout
    assert proc.stdout.count("wait_for_decision: sent (approved=True)") == 2
    store = Store(tmp_path / "mail.db")
    try:
        with store.read() as tx:
            contact = tx.contact_by_email("acct_acme", "jonas.berg@fjord.example")
            replies = tx.search_emails(MAILBOX_ID, direction="outbound", limit=10)
    finally:
        store.close()
    assert contact is not None and contact["name"] == "Jonas Berg"
    # One reply per customer who wrote about an order, each held by gated_send and approved by the operator.
    customers = {"jonas.berg@fjord.example", "maria.lopez@customer.example"}
    ours = [r for r in replies if set(r["to_addrs"]) & customers]
    assert sorted(r["to_addrs"][0] for r in ours) == sorted(customers)
    assert {(r["status"], r["created_by_key"], r["decided_by_key"]) for r in ours} == {
        ("sent", AGENT_KEY_ID, OPERATOR_KEY_ID)}
    # Every inner call is in the trail under the agent, with the one program's hash and its position.
    inner = [r for r in query_audit(tmp_path / "audit.jsonl") if r.agent == "support"]
    assert len({r.step["program"] for r in inner if r.step}) == 1
    assert [r.step["position"] for r in inner if r.step] == list(range(len(inner))) and len(inner) == 12
    assert [(r.tool, r.decision) for r in inner if r.decision == "approved"] == [
        ("reply_email", "approved"), ("add_contact", "approved"), ("reply_email", "approved")]
