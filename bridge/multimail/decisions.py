"""Waiting for the human: follow an email held for approval until the operator decides.

MultiMail's second layer of control is server-side: under ``gated_send`` an agent's email waits
in a queue until a human with the oversight key approves or rejects it. ``wait_for_decision``
lets a workflow pause on that decision and resume with the outcome::

    sent = await server.call_checked("reply_email", {"email_id": eid, "markdown": text})
    outcome = await wait_for_decision(server, json.loads(sent.text)["id"], timeout=3600)
    if outcome.approved: ...

It polls with backoff: ``read_email`` (the agent key's ``read`` scope) gives the email's status;
with a key that can only oversee, ``list_pending`` is used instead (the email leaving the queue
means it was decided, though not how). Polling stops at ``timeout`` with ``DecisionTimeout``,
and cancelling the waiting task stops it at once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..connection import Connection
from ..errors import CallTimeout, ToolError

__all__ = ["APPROVED_STATUSES", "PENDING_STATUSES", "DecisionTimeout", "EmailDecision", "wait_for_decision"]

logger = logging.getLogger("bridge.multimail")

PENDING_STATUSES = frozenset({"pending_send_approval", "pending_inbound_approval"})
"""Statuses meaning "a human has not decided yet"."""

APPROVED_STATUSES = frozenset({"sent", "sending", "scheduled", "send_failed", "unread", "read", "archived"})
"""Statuses an email reaches only once approved (delivery may still fail: ``send_failed``)."""


class DecisionTimeout(CallTimeout):
    """No decision on the email within the timeout; ``status`` is the last one seen."""

    def __init__(self, email_id: str, timeout: float, status: str | None, *, server: str | None = None) -> None:
        self.email_id = email_id
        self.status = status
        super().__init__(f"no decision on email {email_id!r} within {timeout:g}s (still {status or 'pending'})",
                         timeout=timeout, server=server)


@dataclass(frozen=True)
class EmailDecision:
    """How the operator decided.

    Attributes:
        status: the email's status after the decision (``sent``, ``rejected``, ...), or
            ``decided`` when only ``list_pending`` could be consulted.
        approved: True once approved, False when rejected or cancelled, None when unknown.
        reason: the operator's reason, when the server reports one.
        detail: the email's metadata as last read (empty when unknown).
    """

    email_id: str
    status: str
    approved: bool | None
    reason: str | None = None
    waited: float = 0.0
    detail: Mapping[str, Any] = field(default_factory=dict)


async def wait_for_decision(source: Connection, email_id: str, *, timeout: float = 3600.0, poll: float = 1.0,
                            max_poll: float = 30.0, backoff: float = 1.5) -> EmailDecision:
    """Block until the held email ``email_id`` is approved or rejected.

    Args:
        source: a connection to the mail server (any key that can ``read`` or oversee).
        timeout: give up after this many seconds.
        poll: the first interval between checks; it grows by ``backoff`` up to ``max_poll``.

    Raises:
        DecisionTimeout: still undecided after ``timeout`` seconds.
        ToolError: the server does not know the email (or the key may neither read nor oversee).
        BridgeError: the connection failed (``ConnectionLost``, ``CallTimeout``, ...).
    """
    started = time.monotonic()
    deadline = started + timeout
    interval = poll
    use_pending = False
    status: str | None = None
    while True:
        if not use_pending:
            result = await source.call("read_email", {"email_id": email_id})
            if result.is_error and "scope" in result.text.lower():
                logger.debug("read_email not allowed for this key; watching list_pending instead")
                use_pending = True
            elif result.is_error:
                raise ToolError(result.text, result=result, server=source.name, tool="read_email")
            else:
                detail = _first_json(result.content)
                status = str(detail.get("status", ""))
                if status and status not in PENDING_STATUSES:
                    return _decided(email_id, status, detail, time.monotonic() - started)
        if use_pending:
            result = await source.call("list_pending", {})
            if result.is_error:
                raise ToolError(result.text, result=result, server=source.name, tool="list_pending")
            pending = _first_json(result.content).get("pending", [])
            if not any(isinstance(p, Mapping) and p.get("id") == email_id for p in pending):
                return EmailDecision(email_id, "decided", None, waited=time.monotonic() - started)
            status = "pending"
        now = time.monotonic()
        if now >= deadline:
            raise DecisionTimeout(email_id, timeout, status, server=source.name)
        await anyio.sleep(min(interval, deadline - now))
        interval = min(interval * backoff, max_poll)


def _decided(email_id: str, status: str, detail: Mapping[str, Any], waited: float) -> EmailDecision:
    decision = detail.get("decision")
    reason = decision.get("reason") if isinstance(decision, Mapping) else None
    approved = True if status in APPROVED_STATUSES else False if status in ("rejected", "cancelled") else None
    return EmailDecision(email_id, status, approved, reason, waited, dict(detail))


def _first_json(content: Any) -> dict[str, Any]:
    # MultiMail answers with a JSON text block first (read_email adds the fenced body after it).
    for block in content:
        text = getattr(block, "text", None)
        if not isinstance(text, str):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}
