"""End-to-end tests of the MultiMail stand-in, driven as real server processes through the raw SDK client.

Each test gets its own SQLite file. Servers run as subprocesses over stdio or Streamable HTTP (with
bearer keys, so one HTTP server serves an agent and its operator); several processes share a file
where the scenario is about sharing. The catalogue is checked against the interface note itself.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp
import mcp_types as types
import pytest
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from fixtures.multimail.clock import iso, utcnow
from fixtures.multimail.seed import (
    AGENT_KEY,
    AGENT_KEY_ID,
    ATTACHMENT_EMAIL_ID,
    ATTACHMENT_NAME,
    BILLING_MAILBOX_ADDRESS,
    BILLING_MAILBOX_ID,
    CUSTOMER_ADDRESS,
    INJECTION_EMAIL_ID,
    INJECTION_LINE,
    MAILBOX_ADDRESS,
    MAILBOX_ID,
    OPERATOR_KEY,
    OPERATOR_KEY_ID,
    ORDER_EMAIL_IDS,
    PARTNER_ADDRESS,
    THREAD_ID,
)
from fixtures.multimail.store import Store

ROOT = Path(__file__).resolve().parents[1]
# The interface note lives in the team's shared notes beside the repo; a recorded copy under
# fixtures/ keeps the test meaningful where shared/ is absent (and must match it where present).
SHARED_NOTE = ROOT.parent / "shared" / "notes" / "multimail-tools.md"
RECORDED_NOTE = ROOT / "fixtures" / "recorded" / "multimail-tools.md"
NOTE = SHARED_NOTE if SHARED_NOTE.exists() else RECORDED_NOTE
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
STARTUP_TIMEOUT = 60.0
CALL_TIMEOUT = 60.0


# -- running servers --------------------------------------------------------------------------------


def _server_argv(db: Path, *extra: str) -> list[str]:
    return ["-m", "fixtures.multimail", "--db", str(db), *extra]


def stdio(db: Path, key: str | None, *extra: str, **env: str) -> mcp.Client:
    """A client that starts its own server process over stdio (stopped when the client exits)."""
    variables = {"PYTHONPATH": str(ROOT), **env}
    if key is not None:
        variables["MULTIMAIL_API_KEY"] = key
    params = StdioServerParameters(command=sys.executable, args=_server_argv(db, *extra), env=variables, cwd=ROOT)
    return mcp.Client(params, mode="legacy", read_timeout_seconds=CALL_TIMEOUT)


@dataclass
class HttpServer:
    url: str
    stderr: list[str] = field(default_factory=list)


@contextmanager
def http_server(db: Path, *extra: str) -> Iterator[HttpServer]:
    """A Streamable HTTP server process with no key of its own; clients bring bearer keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTIMAIL_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, *_server_argv(db, "--transport", "http", "--port", "0", *extra)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = HttpServer(url="")
    listening = threading.Event()

    def pump() -> None:
        # Drain stderr for the whole run, so a chatty server can never block on a full pipe.
        assert proc.stderr is not None
        for line in proc.stderr:
            server.stderr.append(line)
            match = re.search(r"LISTENING (http://\S+)", line)
            if match:
                server.url = match.group(1)
                listening.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not listening.wait(STARTUP_TIMEOUT):
            raise RuntimeError(f"server did not start: {''.join(server.stderr)[-2000:]}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=5)


@asynccontextmanager
async def http(url: str, key: str | None = None) -> AsyncIterator[mcp.Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(CALL_TIMEOUT)) as session:
        transport = streamable_http_client(url, http_client=session)
        async with mcp.Client(transport, mode="legacy", read_timeout_seconds=CALL_TIMEOUT) as client:
            yield client


# -- reading results --------------------------------------------------------------------------------


def text(result: types.CallToolResult) -> str:
    assert len(result.content) == 1, result.content
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def ok(result: types.CallToolResult) -> Any:
    """The JSON payload of a successful single-block result."""
    assert not result.is_error, text(result)
    return json.loads(text(result))


def failure(result: types.CallToolResult) -> str:
    assert result.is_error, result.content
    return text(result)


async def call(client: mcp.Client, tool: str, **arguments: Any) -> types.CallToolResult:
    return await client.call_tool(tool, arguments)


# -- the interface note as expected schemas ---------------------------------------------------------


@dataclass
class NoteTool:
    annotations: dict[str, bool]
    schema: dict[str, Any]


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{("
        depth -= char in "]})"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _note_type(spec: str) -> dict[str, Any]:
    spec = spec.strip()
    as_type_array = spec.endswith("(type array)")
    spec = spec.removesuffix("(type array)").strip()
    nullable = spec.endswith("|null")
    schema = _note_base(spec.removesuffix("|null").strip())
    if not nullable:
        return schema
    if as_type_array:
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _note_base(spec: str) -> dict[str, Any]:
    if match := re.fullmatch(r"(.+) (\d+)\.\.(\d+)", spec):
        return {**_note_base(match[1]), "minimum": int(match[2]), "maximum": int(match[3])}
    if match := re.fullmatch(r"(.+) const true", spec):
        return {**_note_base(match[1]), "const": True}
    if match := re.fullmatch(r"(.+) maxLength (\d+)", spec):
        return {**_note_base(match[1]), "maxLength": int(match[2])}
    if spec.startswith("[") and spec.endswith("]"):
        return {"type": "array", "items": _note_base(spec[1:-1])}
    if spec.startswith("{") and spec.endswith("}"):
        inner = spec[1:-1]
        all_required = inner.endswith(" all required")
        properties = _note_fields(inner.removesuffix(" all required"), {})
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if all_required:
            schema["required"] = list(properties)
        return {**schema, "additionalProperties": False}
    if spec.startswith("enum[") and spec.endswith("]"):
        return {"type": "string", "enum": spec[5:-1].split(",")}
    if spec == "map":
        return {"type": "object", "additionalProperties": {"type": "string"}}
    if match := re.fullmatch(r"s\((email|uri)\)", spec):
        return {"type": "string", "format": match[1]}
    return {"type": {"s": "string", "i": "integer", "n": "number", "b": "boolean"}[spec]}


def _note_fields(text: str, inherited: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if text.strip() == "-":
        return fields
    for item in _split_top_level(text):
        name, _, spec = item.partition(":")
        name = name.removesuffix("(as send_email)").strip()
        # A bare name ("cc, bcc, attachments (as send_email)") repeats send_email's definition.
        fields[name] = _note_type(spec) if spec else inherited[name]
    return fields


def test_recorded_note_matches_the_shared_one() -> None:
    if not SHARED_NOTE.exists():
        pytest.skip(f"no shared notes beside the repo ({SHARED_NOTE.parent}); the recorded copy stands in")
    assert RECORDED_NOTE.read_text() == SHARED_NOTE.read_text(), "re-copy the note into fixtures/recorded/"


def parse_note() -> dict[str, NoteTool]:
    assert NOTE.exists(), f"the interface note is expected at {NOTE}"
    tools: dict[str, NoteTool] = {}
    line_re = re.compile(r"^- (\w+) \| ([TF])/([TF-])/([TF]) \| (.*?) \| (.*?)(?:\s{2,}\(.*\))?$")
    for line in NOTE.read_text().splitlines():
        match = line_re.match(line)
        if not match:
            continue
        name, ro, destructive, idem, required, optional = match.groups()
        inherited = {**tools["send_email"].schema["properties"]} if "send_email" in tools else {}
        required_fields = _note_fields(required, inherited)
        properties = {**required_fields, **_note_fields(optional, inherited)}
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required_fields:
            schema["required"] = list(required_fields)
        schema.update({"additionalProperties": False, "$schema": DRAFT_07})
        annotations = {"readOnlyHint": ro == "T", "idempotentHint": idem == "T"}
        if destructive != "-":
            annotations["destructiveHint"] = destructive == "T"
        tools[name] = NoteTool(annotations, schema)
    return tools


def without_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_descriptions(v) for k, v in value.items() if k != "description" or not isinstance(v, str)}
    if isinstance(value, list):
        return [without_descriptions(v) for v in value]
    return value


# -- the tests --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_catalogue_matches_the_note_tool_for_tool(db: Path) -> None:
    expected = parse_note()
    assert len(expected) == 46
    async with stdio(db, AGENT_KEY) as client:
        listed = (await client.list_tools()).tools
        capabilities = client.server_capabilities
    assert capabilities.tools is not None and capabilities.tools.list_changed
    assert capabilities.prompts is None and capabilities.resources is None
    assert [tool.name for tool in listed] == list(expected)
    for tool in listed:
        wire = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
        note = expected[tool.name]
        assert wire["inputSchema"]["$schema"] == DRAFT_07
        assert without_descriptions(wire["inputSchema"]) == note.schema, tool.name
        assert wire["annotations"] == note.annotations, tool.name
        assert tool.title and tool.description, tool.name
        assert "outputSchema" not in wire


@pytest.mark.anyio
async def test_triage_reply_pending_operator_approves_delivered(db: Path) -> None:
    async with stdio(db, AGENT_KEY) as agent, stdio(db, OPERATOR_KEY) as operator:
        # Triage: the customer's three unread emails, newest first, and the thread in order.
        unread = ok(await call(agent, "check_inbox", status="unread"))
        assert [e["id"] for e in unread["emails"]] == list(reversed(ORDER_EMAIL_IDS))
        thread = ok(await call(agent, "get_thread", thread_id=THREAD_ID))
        assert [m["id"] for m in thread["messages"]] == list(ORDER_EMAIL_IDS)
        assert thread["participants"] == [CUSTOMER_ADDRESS, MAILBOX_ADDRESS]
        assert thread["has_unanswered_inbound"] is True

        read = await call(agent, "read_email", email_id=INJECTION_EMAIL_ID)
        assert not read.is_error and len(read.content) == 2
        metadata_block, body_block = (b.text for b in read.content if isinstance(b, types.TextContent))
        assert json.loads(metadata_block)["status"] == "read"
        assert INJECTION_LINE not in metadata_block
        assert body_block.startswith("--- BEGIN UNTRUSTED EMAIL BODY")
        assert body_block.endswith("--- END UNTRUSTED EMAIL BODY ---")
        assert INJECTION_LINE in body_block

        photo = ok(await call(agent, "download_attachment", email_id=ATTACHMENT_EMAIL_ID, filename=ATTACHMENT_NAME))
        assert base64.b64decode(photo["content_base64"]).startswith(b"\x89PNG")

        # Draft: a reply is held; repeating it with the same idempotency key sends nothing new.
        draft = {"email_id": ORDER_EMAIL_IDS[0], "markdown": "A new rain fly ships today.", "idempotency_key": "r-4417"}
        reply = ok(await agent.call_tool("reply_email", draft))
        assert reply["status"] == "pending_send_approval"
        assert reply["thread_id"] == THREAD_ID
        assert ok(await agent.call_tool("reply_email", draft)) == reply

        # The agent cannot approve its own mail; nothing has left yet.
        refused = failure(await call(agent, "decide_email", email_id=reply["id"], action="approve"))
        assert refused.startswith("API key lacks required scope for this operation.")
        assert Store(db).outbox(CUSTOMER_ADDRESS) == []

        # The operator sees exactly one held email and approves it: delivered, once.
        pending = ok(await call(operator, "list_pending"))
        assert [p["id"] for p in pending["pending"]] == [reply["id"]]
        assert pending["pending"][0]["markdown"] == "A new rain fly ships today."
        decided = ok(await call(operator, "decide_email", email_id=reply["id"], action="approve", reason="fine"))
        assert decided["status"] == "sent"
        again = failure(await call(operator, "decide_email", email_id=reply["id"], action="approve"))
        assert again == "API error 409: email_not_pending: it is sent"

        delivered = Store(db).outbox(CUSTOMER_ADDRESS)
        assert [(m["email_id"], m["subject"], m["role"]) for m in delivered] == [
            (reply["id"], "Re: Order #4417 arrived damaged", "to")
        ]
        assert delivered[0]["headers"]["In-Reply-To"] == f"<{ORDER_EMAIL_IDS[0]}@customer.example>"

        thread = ok(await call(agent, "get_thread", thread_id=THREAD_ID))
        assert [m["id"] for m in thread["messages"]] == [*ORDER_EMAIL_IDS, reply["id"]]
        assert thread["messages"][-1]["status"] == "sent"
        assert thread["has_unanswered_inbound"] is False

        # The audit log names the key behind each step, refusals included.
        log = ok(await call(operator, "get_audit_log", limit=100))["entries"]
        steps = {(e["action"], e["key_id"], e["outcome"]) for e in log if e["target"] == reply["id"]}
        assert ("reply_email", AGENT_KEY_ID, "ok") in steps
        assert ("decide_email", OPERATOR_KEY_ID, "ok") in steps
        assert any(
            e["action"] == "decide_email" and e["key_id"] == AGENT_KEY_ID and e["outcome"] == "denied" for e in log
        )


@pytest.mark.anyio
async def test_streamable_http_reject_cancel_scheduled_and_upgrade_with_code(db: Path) -> None:
    with http_server(db, "--print-codes") as server:
        async with http(server.url) as anonymous:
            assert [t.name for t in (await anonymous.list_tools()).tools] == ["setup_multimail"]
            assert "MULTIMAIL_API_KEY" in text(await call(anonymous, "setup_multimail"))
            missing = failure(await call(anonymous, "check_inbox"))
            assert missing == "MCP error -32602: Tool check_inbox not found"
        async with http(server.url, "mm_test_not_a_key") as stranger:
            assert len((await stranger.list_tools()).tools) == 46
            invalid = failure(await call(stranger, "check_inbox"))
            assert invalid == "Invalid API key. Check MULTIMAIL_API_KEY environment variable."

        async with http(server.url, AGENT_KEY) as agent, http(server.url, OPERATOR_KEY) as operator:
            # Reject: the email stays home.
            offer = ok(await call(agent, "send_email", to=[PARTNER_ADDRESS], subject="Discount", markdown="50% off!"))
            assert offer["status"] == "pending_send_approval"
            rejected = ok(await call(operator, "decide_email", email_id=offer["id"], action="reject", reason="no"))
            assert rejected["status"] == "rejected"
            listed = ok(await call(agent, "check_inbox", status="rejected"))
            assert [e["id"] for e in listed["emails"]] == [offer["id"]]
            assert not [m for m in Store(db).outbox() if m["email_id"] == offer["id"]]

            # Cancel a scheduled email (schedule_first: scheduled now, gated when due).
            later = iso(utcnow() + timedelta(hours=1))
            scheduled = ok(
                await call(
                    agent,
                    "schedule_email",
                    to=[CUSTOMER_ADDRESS],
                    subject="Reminder",
                    markdown="Your replacement ships Friday.",
                    send_at=later,
                    gate_timing="schedule_first",
                )
            )
            assert (scheduled["status"], scheduled["send_at"]) == ("scheduled", later)
            edited = ok(await call(agent, "edit_scheduled_email", email_id=scheduled["id"], subject="Reminder: Friday"))
            assert (edited["subject"], edited["status"]) == ("Reminder: Friday", "scheduled")
            cancelled = ok(await call(agent, "cancel_message", email_id=scheduled["id"]))
            assert (cancelled["status"], cancelled["previous_status"]) == ("cancelled", "scheduled")
            assert ok(await call(agent, "cancel_message", email_id=scheduled["id"]))["status"] == "cancelled"
            too_late = failure(await call(agent, "edit_scheduled_email", email_id=scheduled["id"], subject="x"))
            assert too_late == "API error 409: email_not_scheduled: it is cancelled"
            assert not [m for m in Store(db).outbox() if m["email_id"] == scheduled["id"]]

            # Upgrade: the agent may ask, not take; the operator's one-time code makes the change.
            asked = ok(await call(agent, "request_upgrade", target_mode="autonomous"))
            assert (asked["status"], asked["current_mode"]) == ("pending_operator_approval", "gated_send")
            grab = failure(await call(agent, "configure_mailbox", oversight_mode="autonomous"))
            assert grab.startswith("API key lacks required scope for this operation. mode_upgrade_requires_approval")
            guess = failure(await call(agent, "apply_upgrade", code="UPG-AAAA-AAAA"))
            assert guess.startswith("API error 400: invalid_upgrade_code")
            log = ok(await call(operator, "get_audit_log"))["entries"]
            code = next(e["details"]["upgrade_code"] for e in log if e["action"] == "request_upgrade")
            assert re.fullmatch(r"UPG-[A-Z0-9]{4}-[A-Z0-9]{4}", code)
            assert any(line.startswith("CODE upgrade") and line.rstrip().endswith(code) for line in server.stderr)
            notice = [m for m in Store(db).outbox("oversight@acme-ops.example") if code in m["markdown"]]
            assert len(notice) == 1

            applied = ok(await call(agent, "apply_upgrade", code=code.replace("-", "").lower()))
            assert (applied["previous_mode"], applied["oversight_mode"]) == ("gated_send", "autonomous")
            assert failure(await call(agent, "apply_upgrade", code=code)).startswith(
                "API error 400: invalid_upgrade_code"
            )

            direct = ok(await call(agent, "send_email", to=[PARTNER_ADDRESS], subject="Terms", markdown="Agreed."))
            assert direct["status"] == "sent"
            assert [m["recipient"] for m in Store(db).outbox() if m["email_id"] == direct["id"]] == [PARTNER_ADDRESS]

            # Going back down needs no code.
            lowered = ok(await call(agent, "configure_mailbox", oversight_mode="gated_send"))
            assert lowered["oversight_mode"] == "gated_send"


@pytest.mark.anyio
async def test_quota_scope_and_argument_errors(db: Path) -> None:
    quota = 3
    async with stdio(db, AGENT_KEY, "--quota", str(quota), "--unconfigured") as agent:
        # An unconfigured mailbox leads check_inbox with a setup_required block until configured.
        first = await call(agent, "check_inbox", limit=1)
        assert len(first.content) == 2 and isinstance(first.content[0], types.TextContent)
        assert json.loads(first.content[0].text)["setup_required"] is True
        assert ok(await call(agent, "configure_mailbox", display_name="Acme Help"))["mcp_configured"] is True
        assert len((await call(agent, "check_inbox", limit=1)).content) == 1

        used = ok(await call(agent, "get_usage"))["quota_used"]
        sent = 0
        while True:
            result = await call(agent, "send_email", to=[PARTNER_ADDRESS], subject=f"n{sent}", markdown="hi")
            if result.is_error:
                break
            sent += 1
            assert sent <= quota
        assert text(result) == "Monthly email quota exceeded. Upgrade your plan for more sends."
        assert sent == quota - used
        usage = ok(await call(agent, "get_usage"))
        assert (usage["quota_used"], usage["quota_remaining"], usage["monthly_quota"]) == (quota, 0, quota)
        assert ok(await call(agent, "get_account"))["sending_enabled"] is False

        scope = failure(await call(agent, "list_api_keys"))
        assert scope == (
            "API key lacks required scope for this operation. "
            "list_api_keys needs the admin scope; this key has read, send, contacts."
        )
        bad_address = failure(await call(agent, "send_email", to=["not-an-email"], subject="s", markdown="m"))
        assert bad_address == (
            "MCP error -32602: Input validation error: Invalid arguments for tool send_email: Invalid email at to[0]"
        )
        too_short = failure(await call(agent, "wait_for_email", timeout_seconds=1))
        assert too_short.endswith("Number must be greater than or equal to 5 at timeout_seconds")
        assert failure(await call(agent, "read_email", email_id="em_nope")) == "API error 404: email_not_found"


@pytest.mark.anyio
async def test_wait_for_email_is_woken_by_mail_from_another_mailbox_in_another_process(db: Path) -> None:
    with http_server(db) as server:
        async with http(server.url, OPERATOR_KEY) as operator:
            # The operator (admin) lets the billing mailbox send without approval.
            raised = ok(
                await call(operator, "update_mailbox", mailbox_id=BILLING_MAILBOX_ID, oversight_mode="autonomous")
            )
            assert raised["oversight_mode"] == "autonomous"
        store = Store(db)

        def agent_key_last_used() -> str | None:
            with store.read() as tx:
                key = tx.api_key(AGENT_KEY_ID)
                return key["last_used_at"] if key else None

        async with stdio(db, AGENT_KEY) as waiter, http(server.url, AGENT_KEY) as sender:
            before = agent_key_last_used()
            outcome: dict[str, Any] = {}

            async def wait() -> None:
                outcome["began"] = time.monotonic()
                outcome["result"] = await call(
                    waiter, "wait_for_email", timeout_seconds=60, filter={"subject_contains": "Refund"}
                )
                outcome["woke_at"] = time.monotonic()

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                # The wait has taken its baseline once its key use is recorded (same transaction).
                with anyio.fail_after(STARTUP_TIMEOUT):
                    while agent_key_last_used() == before:
                        await anyio.sleep(0.05)
                noise = ok(
                    await call(
                        sender,
                        "send_email",
                        mailbox_id=BILLING_MAILBOX_ID,
                        to=[MAILBOX_ADDRESS],
                        subject="Lunch?",
                        markdown="Not what the waiter wants.",
                    )
                )
                assert noise["status"] == "sent"
                sending_at = time.monotonic()
                sent = ok(
                    await call(
                        sender,
                        "send_email",
                        mailbox_id=BILLING_MAILBOX_ID,
                        to=[MAILBOX_ADDRESS],
                        subject="Refund approved for #4417",
                        markdown="Go ahead.",
                    )
                )
            found = ok(outcome["result"])
            assert found["found"] is True
            assert [(e["from"], e["subject"], e["thread_id"]) for e in found["emails"]] == [
                (BILLING_MAILBOX_ADDRESS, "Refund approved for #4417", sent["thread_id"])
            ]
            # Woken by that mail: not before it was sent, and before the wait's own 60 s could run out.
            assert sending_at <= outcome["woke_at"] < outcome["began"] + 60


@pytest.mark.anyio
async def test_two_server_processes_write_the_same_database_concurrently(db: Path) -> None:
    unique_per_process, shared_keys = 8, 3
    with http_server(db) as first, http_server(db) as second:
        servers = (first, second)
        shared: list[list[str]] = [[], []]

        async def send_all(index: int) -> None:
            async with http(servers[index].url, AGENT_KEY) as agent:
                for n in range(unique_per_process):
                    subject = f"concurrent p{index} #{n}"
                    ok(await call(agent, "send_email", to=[PARTNER_ADDRESS], subject=subject, markdown="x"))
                    if n < shared_keys:
                        # Both processes send under the same key: exactly one email may result.
                        again = await call(
                            agent,
                            "send_email",
                            to=[PARTNER_ADDRESS],
                            subject=f"concurrent shared #{n}",
                            markdown="x",
                            idempotency_key=f"shared-{n}",
                        )
                        shared[index].append(ok(again)["id"])

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_all, 0)
            tg.start_soon(send_all, 1)

        with Store(db).read() as tx:
            emails = tx.search_emails(MAILBOX_ID, direction="outbound", subject_contains="concurrent", limit=1000)
        assert len(emails) == 2 * unique_per_process + shared_keys
        assert len({e["id"] for e in emails}) == len(emails)
        # Whichever process won each shared key, both were answered with the same single email.
        assert shared[0] == shared[1]
        assert set(shared[0]) == {e["id"] for e in emails if "shared" in e["subject"]}

        # Both operators approve every held email at once: each is delivered exactly once.
        async with http(first.url, OPERATOR_KEY) as op:
            held = [p["id"] for p in ok(await call(op, "list_pending"))["pending"]]
        assert len(held) == len(emails)
        outcomes: list[str] = []

        async def approve_all(server: HttpServer) -> None:
            async with http(server.url, OPERATOR_KEY) as operator:
                for email_id in held:
                    result = await call(operator, "decide_email", email_id=email_id, action="approve")
                    outcomes.append("error" if result.is_error else ok(result)["status"])

        async with anyio.create_task_group() as tg:
            tg.start_soon(approve_all, first)
            tg.start_soon(approve_all, second)

    assert outcomes.count("sent") == len(held)
    assert outcomes.count("error") == len(held)
    delivered = [m["email_id"] for m in Store(db).outbox(PARTNER_ADDRESS) if m["email_id"] in held]
    assert sorted(delivered) == sorted(held)


def test_stores_opening_one_fresh_file_at_once_all_open(tmp_path: Path) -> None:
    # The first opener turns the file into WAL; SQLite refuses the others rather than making them wait.
    for round_ in range(40):
        path = tmp_path / f"fresh{round_}.db"
        start = threading.Barrier(3)
        failures: list[BaseException] = []
        threads = [threading.Thread(target=open_store_with_others, args=(path, start, failures)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        with Store(path).read() as tx:
            assert tx.search_emails(MAILBOX_ID, direction="outbound", limit=1) == []


def open_store_with_others(path: Path, start: threading.Barrier, failures: list[BaseException]) -> None:
    start.wait()
    try:
        Store(path)
    except BaseException as exc:
        failures.append(exc)


@pytest.mark.anyio
async def test_restart_keeps_state(db: Path) -> None:
    async with stdio(db, AGENT_KEY) as before:
        held = ok(await call(before, "send_email", to=[CUSTOMER_ADDRESS], subject="Kept?", markdown="Yes."))
        contact = ok(
            await call(before, "add_contact", name="Ravi Patel", email="ravi@supplier.example", tags=["vendor"])
        )
        ok(await call(before, "tag_email", email_id=ORDER_EMAIL_IDS[0], action="set", tags={"priority": "high"}))
        assert (await call(before, "read_email", email_id=ORDER_EMAIL_IDS[0])).is_error is False
        ok(await call(before, "update_mailbox", display_name="Acme Helpdesk", signature_block="Acme Helpdesk"))
    async with stdio(db, AGENT_KEY) as after:
        pending = ok(await call(after, "check_inbox", status="pending_send_approval"))
        assert [e["id"] for e in pending["emails"]] == [held["id"]]
        assert ok(await call(after, "search_contacts", query="vendor"))["contacts"][0]["id"] == contact["id"]
        tags = ok(await call(after, "tag_email", email_id=ORDER_EMAIL_IDS[0], action="get"))
        assert tags["tags"] == {"priority": "high"}
        read = ok(await call(after, "check_inbox", status="read"))
        assert ORDER_EMAIL_IDS[0] in [e["id"] for e in read["emails"]]
        mailboxes = ok(await call(after, "list_mailboxes"))["mailboxes"]
        agent_box = next(m for m in mailboxes if m["id"] == MAILBOX_ID)
        assert (agent_box["display_name"], agent_box["signature_block"]) == ("Acme Helpdesk", "Acme Helpdesk")
