"""In-process tests of the MultiMail stand-in's rules and argument checking (no server processes).

The end-to-end scenarios live in test_multimail_store.py; these cover the remaining behaviour
quickly by calling `Service.call_sync` against a real SQLite file.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.multimail.catalogue import SETUP_TOOL, TOOLS_BY_NAME
from fixtures.multimail.clock import iso, utcnow
from fixtures.multimail.seed import (
    AGENT_KEY,
    BILLING_MAILBOX_ADDRESS,
    BILLING_MAILBOX_ID,
    CONTACT_IDS,
    CUSTOMER_ADDRESS,
    MAILBOX_ADDRESS,
    MAILBOX_ID,
    OPERATOR_KEY,
    ORDER_EMAIL_IDS,
    OVERSIGHT_EMAIL,
    PARTNER_ADDRESS,
    open_store,
)
from fixtures.multimail.service import Config, Service
from fixtures.multimail.validation import argument_problems


class Clock:
    """A clock the test can move forward, so scheduled mail falls due without sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, hours: float) -> None:
        self.offset += timedelta(hours=hours)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Service:
    return Service(open_store(tmp_path / "mm.sqlite3"), Config(clock=clock))


def run(svc: Service, tool: str, api_key: str | None = AGENT_KEY, **args: Any) -> Any:
    """The JSON answer of a successful call (its last block: a setup_required block may lead)."""
    outcome = svc.call_sync(tool, args, api_key)
    assert not outcome.is_error, outcome.blocks
    return json.loads(outcome.blocks[-1])


def fail(svc: Service, tool: str, api_key: str | None = AGENT_KEY, **args: Any) -> str:
    outcome = svc.call_sync(tool, args, api_key)
    assert outcome.is_error, outcome.blocks
    assert len(outcome.blocks) == 1 and "\n" not in outcome.blocks[0]
    return outcome.blocks[0]


def last_code(svc: Service, kind: str) -> str:
    entries = run(svc, "get_audit_log", OPERATOR_KEY, limit=100)["entries"]
    return str(next(e["details"][f"{kind}_code"] for e in entries if f"{kind}_code" in e["details"]))


def outbox_for(svc: Service, email_id: str) -> list[tuple[str, str]]:
    return [(m["recipient"], m["role"]) for m in svc.store.outbox() if m["email_id"] == email_id]


def test_account_sign_up_with_proof_of_work_and_activation_code(svc: Service) -> None:
    puzzle = run(svc, "request_challenge", None)
    number = next(
        n
        for n in range(puzzle["maxnumber"] + 1)
        if hashlib.sha256(f"{puzzle['salt']}{n}".encode()).hexdigest() == puzzle["challenge"]
    )
    solution = {k: puzzle[k] for k in ("algorithm", "challenge", "salt", "signature")} | {"number": number}
    sign_up = {
        "operator_name": "Globex Robotics",
        "oversight_email": "boss@globex.example",
        "accepted_tos": True,
        "accepted_operator_agreement": True,
        "accepted_anti_spam_policy": True,
        "pow_solution": solution,
        "oversight_mode": "gated_all",
    }
    assert run(svc, "create_account", None, **sign_up) == {"status": "confirmation_sent"}
    reused = fail(svc, "create_account", None, **sign_up)
    assert reused.startswith("Account creation failed: challenge_expired_or_used")
    notice = svc.store.outbox("boss@globex.example")[-1]["markdown"]
    code = re.search(r"\*\*([A-Z0-9-]+)\*\*", notice)
    assert code is not None
    activated = run(svc, "activate_account", None, code=code[1].replace("-", " "))
    assert activated["mailbox_address"] == "agent@globex-robotics.multimail.dev"
    assert activated["oversight_mode"] == "gated_all"
    assert fail(svc, "activate_account", None, code=code[1]) == "Activation failed: invalid_or_expired_code"
    account = run(svc, "get_account", activated["api_key"])
    assert (account["status"], account["api_key"]["scopes"]) == ("active", ["read", "send", "contacts"])
    assert run(svc, "list_pending", activated["operator_api_key"]) == {"pending": [], "count": 0}
    # The new account sees none of the seed account's mail.
    assert (
        fail(svc, "read_email", activated["api_key"], email_id=ORDER_EMAIL_IDS[0]) == "API error 404: email_not_found"
    )


def test_gated_all_holds_inbound_mail_until_the_operator_decides(svc: Service) -> None:
    run(svc, "update_mailbox", OPERATOR_KEY, mailbox_id=BILLING_MAILBOX_ID, oversight_mode="gated_all")
    held = svc.receive(BILLING_MAILBOX_ADDRESS, "vendor@supplier.example", "Invoice", "Pay me")
    assert held["status"] == "pending_inbound_approval"
    blocked = fail(svc, "read_email", email_id=held["id"], mailbox_id=BILLING_MAILBOX_ID)
    assert blocked == "API error 409: email_not_available: it is pending_inbound_approval and awaits the operator"
    assert [p["id"] for p in run(svc, "list_pending", OPERATOR_KEY)["pending"]] == [held["id"]]
    assert run(svc, "decide_email", OPERATOR_KEY, email_id=held["id"], action="approve")["status"] == "unread"
    metadata, body = svc.call_sync(
        "read_email", {"email_id": held["id"], "mailbox_id": BILLING_MAILBOX_ID}, AGENT_KEY
    ).blocks
    assert json.loads(metadata)["status"] == "read" and "Pay me" in body


def test_mail_between_mailboxes_stays_in_one_thread(svc: Service) -> None:
    question = run(svc, "send_email", to=[BILLING_MAILBOX_ADDRESS], subject="Refund?", markdown="May I refund?")
    run(svc, "decide_email", OPERATOR_KEY, email_id=question["id"], action="approve")
    arrived = run(svc, "check_inbox", mailbox_id=BILLING_MAILBOX_ID, status="unread")["emails"][0]
    assert (arrived["from"], arrived["thread_id"]) == (MAILBOX_ADDRESS, question["thread_id"])
    answer = run(svc, "reply_email", email_id=arrived["id"], markdown="Yes.", mailbox_id=BILLING_MAILBOX_ID)
    run(svc, "decide_email", OPERATOR_KEY, email_id=answer["id"], action="approve")
    thread = run(svc, "get_thread", thread_id=question["thread_id"])
    assert [(m["direction"], m["subject"]) for m in thread["messages"]] == [
        ("outbound", "Refund?"),
        ("inbound", "Re: Refund?"),
    ]
    assert thread["has_unanswered_inbound"] is True


def test_monitored_mode_delivers_and_copies_the_oversight_address(svc: Service) -> None:
    run(svc, "update_mailbox", OPERATOR_KEY, oversight_mode="monitored")
    sent = run(svc, "send_email", to=[PARTNER_ADDRESS], cc=[CUSTOMER_ADDRESS], subject="Hi", markdown="Hello")
    assert sent["status"] == "sent"
    assert outbox_for(svc, sent["id"]) == [
        (PARTNER_ADDRESS, "to"),
        (CUSTOMER_ADDRESS, "cc"),
        (OVERSIGHT_EMAIL, "oversight_copy"),
    ]


def test_read_only_refuses_sends_and_downgrades_need_no_code(svc: Service) -> None:
    assert run(svc, "configure_mailbox", oversight_mode="read_only")["oversight_mode"] == "read_only"
    refused = fail(svc, "send_email", to=[PARTNER_ADDRESS], subject="s", markdown="m")
    assert refused.startswith("API key lacks required scope for this operation. mailbox_read_only")
    assert run(svc, "check_inbox", limit=1)["count"] == 1


def test_bounce_suppresses_the_address_and_suppressed_mail_fails(svc: Service) -> None:
    run(svc, "update_mailbox", OPERATOR_KEY, oversight_mode="autonomous")
    bounced = run(svc, "send_email", to=["nobody@acme.example"], subject="?", markdown="?")
    assert (bounced["status"], bounced["delivery"]["bounced"]) == ("send_failed", ["nobody@acme.example"])
    listed = run(svc, "check_suppression")["suppressions"]
    assert [(s["email_address"], s["reason"]) for s in listed] == [("nobody@acme.example", "hard_bounce")]
    again = run(svc, "send_email", to=["nobody@acme.example", PARTNER_ADDRESS], subject="?", markdown="?")
    assert again["delivery"] == {"delivered": [PARTNER_ADDRESS], "suppressed": ["nobody@acme.example"], "bounced": []}
    assert fail(svc, "remove_suppression", email_address="nobody@acme.example").startswith("API key lacks required")
    assert run(svc, "remove_suppression", OPERATOR_KEY, email_address="Nobody@acme.example")["removed"] is True
    assert run(svc, "check_suppression")["suppressions"] == []


def test_spam_reports_file_later_mail_from_the_sender(svc: Service) -> None:
    run(svc, "report_spam", email_id=ORDER_EMAIL_IDS[0])
    assert ORDER_EMAIL_IDS[0] not in [e["id"] for e in run(svc, "check_inbox")["emails"]]
    later = svc.receive(MAILBOX_ADDRESS, CUSTOMER_ADDRESS, "Still waiting", "Hello?")
    assert [e["id"] for e in run(svc, "list_spam")["emails"]] == [later["id"], ORDER_EMAIL_IDS[0]]
    run(svc, "not_spam", email_id=ORDER_EMAIL_IDS[0])
    assert (
        fail(svc, "not_spam", email_id=ORDER_EMAIL_IDS[0])
        == "API error 409: not_in_spam: the email is not filed as spam"
    )
    assert svc.receive(MAILBOX_ADDRESS, CUSTOMER_ADDRESS, "Hello", "again")["is_spam"] == 0


def test_contacts_and_tags(svc: Service) -> None:
    added = run(svc, "add_contact", name="Ravi Patel", email="ravi@supplier.example", tags=["vendor"])
    assert fail(svc, "add_contact", name="Ravi", email="RAVI@supplier.example").startswith(
        "API error 409: contact_exists"
    )
    assert [c["id"] for c in run(svc, "search_contacts", query="billing")["contacts"]] == [CONTACT_IDS[1]]
    assert len(run(svc, "search_contacts")["contacts"]) == 3
    run(svc, "delete_contact", contact_id=added["id"])
    assert fail(svc, "delete_contact", contact_id=added["id"]) == "API error 404: contact_not_found"
    assert fail(svc, "search_contacts", OPERATOR_KEY).startswith("API key lacks required scope")

    run(svc, "tag_email", email_id=ORDER_EMAIL_IDS[0], action="set", tags={"priority": "high", "case": "4417"})
    run(svc, "tag_email", email_id=ORDER_EMAIL_IDS[0], action="set", tags={"priority": "low"})
    assert run(svc, "tag_email", email_id=ORDER_EMAIL_IDS[0], action="delete", key="case")["tags"] == {
        "priority": "low"
    }
    assert fail(svc, "tag_email", email_id=ORDER_EMAIL_IDS[0], action="set") == "tags object required for 'set' action"


def test_null_clears_a_field_and_omission_leaves_it(svc: Service) -> None:
    run(svc, "update_mailbox", auto_cc="audit@acme-ops.example", signature_block="Acme", display_name="Support")
    cleared = run(svc, "update_mailbox", auto_cc=None)
    assert (cleared["auto_cc"], cleared["signature_block"], cleared["display_name"]) == (None, "Acme", "Support")
    assert run(svc, "update_account", OPERATOR_KEY, physical_address=None)["physical_address"] is None
    assert run(svc, "get_account")["name"] == "Acme Outdoor Co."


def test_admin_actions_need_an_operator_approval_code(svc: Service) -> None:
    first = run(svc, "create_api_key", OPERATOR_KEY, name="reporting", scopes=["read"])
    assert first["status"] == "approval_required"
    code = last_code(svc, "approval")
    widened = fail(svc, "create_api_key", OPERATOR_KEY, name="reporting", scopes=["read", "admin"], approval_code=code)
    assert widened.startswith("API error 400: invalid_approval_code")
    created = run(svc, "create_api_key", OPERATOR_KEY, name="reporting", scopes=["read"], approval_code=code)
    assert run(svc, "get_account", created["key"])["api_key"]["scopes"] == ["read"]
    run(svc, "revoke_api_key", OPERATOR_KEY, key_id=created["id"])
    assert fail(svc, "get_account", created["key"]) == "Invalid API key. Check MULTIMAIL_API_KEY environment variable."
    both = fail(svc, "create_api_key", OPERATOR_KEY, name="x", scopes=["send", "oversight"])
    assert both.startswith("API error 400: scope_conflict")

    assert fail(svc, "create_webhook", OPERATOR_KEY, url="http://hooks.example/x", events=["message.sent"]).startswith(
        "API error 400: invalid_url"
    )
    hook = {"url": "https://hooks.example/mm", "events": ["message.received"]}
    assert run(svc, "create_webhook", OPERATOR_KEY, **hook)["status"] == "approval_required"
    made = run(svc, "create_webhook", OPERATOR_KEY, **hook, approval_code=last_code(svc, "approval"))
    assert made["secret"].startswith("whsec_")
    assert run(svc, "list_webhooks")["webhooks"][0]["id"] == made["id"]
    assert "secret" not in run(svc, "list_webhooks")["webhooks"][0]

    run(svc, "create_mailbox", OPERATOR_KEY, address_local_part="sales")
    box = run(svc, "create_mailbox", OPERATOR_KEY, address_local_part="sales", approval_code=last_code(svc, "approval"))
    assert (box["address"], box["oversight_mode"]) == ("sales@acme.example", "gated_send")

    assert run(svc, "upgrade_plan", OPERATOR_KEY, plan="pro")["monthly_quota"] == 25_000
    run(svc, "cancel_subscription", OPERATOR_KEY)
    done = run(svc, "cancel_subscription", OPERATOR_KEY, approval_code=last_code(svc, "approval"))
    assert (done["plan"], done["subscription_status"]) == ("starter", "cancelled")


def test_rate_limit_answers_with_the_real_text(tmp_path: Path) -> None:
    svc = Service(open_store(tmp_path / "mm.sqlite3"), Config(rate_limit_per_minute=2))
    for n in range(2):
        run(svc, "send_email", to=[PARTNER_ADDRESS], subject=f"{n}", markdown="x")
    limited = fail(svc, "send_email", to=[PARTNER_ADDRESS], subject="2", markdown="x")
    match = re.fullmatch(r"Rate limit exceeded\. Retry after (\d+) seconds\.", limited)
    assert match is not None and 1 <= int(match[1]) <= 60


def test_scheduled_mail_is_released_once_when_due(svc: Service, clock: Clock) -> None:
    run(svc, "update_mailbox", OPERATOR_KEY, oversight_mode="autonomous")
    later = iso(clock() + timedelta(hours=1))
    scheduled = run(svc, "send_email", to=[PARTNER_ADDRESS], subject="Later", markdown="x", send_at=later)
    assert scheduled["status"] == "scheduled"
    assert outbox_for(svc, scheduled["id"]) == []
    clock.advance(hours=2)
    # Any request releases due mail; a second one must not deliver it again.
    run(svc, "check_inbox", limit=1)
    run(svc, "get_usage")
    assert outbox_for(svc, scheduled["id"]) == [(PARTNER_ADDRESS, "to")]
    past = fail(svc, "send_email", to=[PARTNER_ADDRESS], subject="x", markdown="x", send_at="2001-01-01T00:00:00Z")
    assert past == "API error 400: send_at_in_past: send_at must be in the future"


def test_gated_scheduling_asks_before_or_when_due(svc: Service, clock: Clock) -> None:
    later = iso(clock() + timedelta(hours=1))
    gate_first = run(svc, "schedule_email", to=[PARTNER_ADDRESS], subject="A", markdown="x", send_at=later)
    assert gate_first["status"] == "pending_send_approval"
    assert run(svc, "decide_email", OPERATOR_KEY, email_id=gate_first["id"], action="approve")["status"] == "scheduled"
    # Changing what was approved sends it back to the operator.
    edited = run(svc, "edit_scheduled_email", email_id=gate_first["id"], to=[CUSTOMER_ADDRESS])
    assert edited["status"] == "pending_send_approval"

    schedule_first = run(
        svc,
        "schedule_email",
        to=[PARTNER_ADDRESS],
        subject="B",
        markdown="x",
        send_at=later,
        gate_timing="schedule_first",
    )
    assert schedule_first["status"] == "scheduled"
    clock.advance(hours=2)
    assert run(svc, "check_inbox", status="pending_send_approval")["count"] == 2
    assert run(svc, "decide_email", OPERATOR_KEY, email_id=schedule_first["id"], action="approve")["status"] == "sent"


def test_attachments_travel_and_come_back(svc: Service) -> None:
    payload = {"name": "terms.txt", "content_base64": "SGVsbG8=", "content_type": "text/plain"}
    sent = run(
        svc, "send_email", to=[BILLING_MAILBOX_ADDRESS], subject="Terms", markdown="see file", attachments=[payload]
    )
    run(svc, "decide_email", OPERATOR_KEY, email_id=sent["id"], action="approve")
    arrived = run(svc, "check_inbox", mailbox_id=BILLING_MAILBOX_ID, has_attachments=True)["emails"][0]
    got = run(svc, "download_attachment", email_id=arrived["id"], filename="terms.txt", mailbox_id=BILLING_MAILBOX_ID)
    assert (got["content_base64"], got["size_bytes"]) == ("SGVsbG8=", 5)
    broken = fail(
        svc,
        "send_email",
        to=[PARTNER_ADDRESS],
        subject="x",
        markdown="x",
        attachments=[{**payload, "content_base64": "not base64!"}],
    )
    assert broken == "API error 400: invalid_attachment: terms.txt is not valid base64"


def test_send_without_a_configured_mailbox_leads_with_setup_required(tmp_path: Path) -> None:
    svc = Service(open_store(tmp_path / "mm.sqlite3", unconfigured=True))
    outcome = svc.call_sync("send_email", {"to": [PARTNER_ADDRESS], "subject": "s", "markdown": "m"}, AGENT_KEY)
    setup, result = (json.loads(block) for block in outcome.blocks)
    assert setup["setup_required"] is True and setup["current_settings"]["oversight_mode"] == "gated_send"
    assert result["status"] == "pending_send_approval"


def test_deleting_the_account_invalidates_its_keys(svc: Service) -> None:
    assert fail(svc, "delete_account").startswith("API key lacks required scope")
    run(svc, "delete_account", OPERATOR_KEY)
    assert fail(svc, "check_inbox") == "Invalid API key. Check MULTIMAIL_API_KEY environment variable."


def test_no_default_mailbox_means_the_real_servers_hint(tmp_path: Path) -> None:
    svc = Service(open_store(tmp_path / "mm.sqlite3"))
    with svc.store.write() as tx:
        tx.update_api_key("key_agent", {"default_mailbox_id": None})
    assert fail(svc, "check_inbox").startswith("No mailbox_id provided and MULTIMAIL_MAILBOX_ID is not set.")
    assert run(svc, "check_inbox", mailbox_id=MAILBOX_ID)["mailbox_id"] == MAILBOX_ID


@pytest.mark.parametrize(
    ("tool", "arguments", "problem"),
    [
        ("send_email", {"to": ["a@b.example"], "subject": "s"}, "Required at markdown"),
        ("send_email", {"to": "a@b.example", "subject": "s", "markdown": "m"}, "Expected array, received string at to"),
        (
            "send_email",
            {
                "to": ["a@b.example"],
                "subject": "s",
                "markdown": "m",
                "attachments": [{"name": "x", "content_base64": ""}],
            },
            "Required at attachments[0].content_type",
        ),
        ("update_mailbox", {"auto_cc": "nope"}, "Invalid email at auto_cc"),
        ("update_account", {"physical_address": 5}, "Expected string | null, received number at physical_address"),
        (
            "decide_email",
            {"email_id": "e", "action": "maybe"},
            "Invalid enum value. Expected 'approve' | 'reject', received 'maybe' at action",
        ),
        ("wait_for_email", {"filter": {"sender": "x", "to": "y"}}, "Unrecognized key(s) in object: 'to' at filter"),
        ("check_inbox", {"limit": 101}, "Number must be less than or equal to 100 at limit"),
        ("get_billing_portal", {"return_url": "not a url"}, "Invalid url at return_url"),
        ("setup_multimail", {"x": 1}, "Unrecognized key(s) in object: 'x'"),
    ],
)
def test_argument_problems_are_worded_like_the_real_server(tool: str, arguments: dict[str, Any], problem: str) -> None:
    spec = SETUP_TOOL if tool == SETUP_TOOL.name else TOOLS_BY_NAME[tool]
    assert argument_problems(spec, arguments) == [problem]


def test_create_account_literal_and_nested_paths() -> None:
    problems = argument_problems(
        TOOLS_BY_NAME["create_account"],
        {
            "operator_name": "x",
            "oversight_email": "x@y.example",
            "accepted_tos": False,
            "accepted_operator_agreement": True,
            "accepted_anti_spam_policy": True,
            "pow_solution": {"algorithm": "SHA-256", "challenge": "c", "salt": "s", "signature": "g"},
        },
    )
    assert problems == ["Invalid literal value, expected true at accepted_tos", "Required at pow_solution.number"]
    assert argument_problems(TOOLS_BY_NAME["update_mailbox"], {"auto_cc": None, "signature_block": None}) == []
