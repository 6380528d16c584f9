"""``Webhook``: tell someone elsewhere that a request waits, by POSTing it as JSON.

The body is ``{"text": ..., "event": "approval_requested", "request": {...}}``: ``text`` is one
Slack-compatible line (an incoming-webhook URL of Slack, Mattermost or Rocket.Chat shows it as
is), ``request`` the stored request (``ApprovalRequest.to_json``). Only masked arguments ever
leave: the request holds nothing else, and known secrets are masked once more on the way out.
A failed delivery (no connection, a 5xx or 429 answer) is retried a few times with growing
pauses; a 4xx answer is not retried. Delivery never decides anything: a request nobody was told
about still waits, and expires.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio

from ..sanitize import one_line
from ..secrets import mask_known, mask_url
from .requests import ApprovalRequest

__all__ = ["Webhook", "summary"]

logger = logging.getLogger("bridge.approvals")

_ARGUMENTS_SHOWN = 300


def summary(request: ApprovalRequest) -> str:
    """One line saying what waits for a decision (foreign text escaped, arguments masked)."""
    who = f"agent {request.agent}" if request.agent else "the server itself"
    args = json.dumps(dict(request.arguments), ensure_ascii=False, sort_keys=True, default=str)
    if len(args) > _ARGUMENTS_SHOWN:
        args = args[:_ARGUMENTS_SHOWN] + "…"
    dup = f" (possible duplicate of #{request.duplicate_of})" if request.duplicate_of else ""
    return one_line(mask_known(f"approval #{request.id} needed{dup}: {who} wants {request.server}/{request.tool} "
                               f"{args}"))


class Webhook:
    """POSTs each new request to ``url`` (see the module docstring).

    Args:
        url: where to POST (``http://`` or ``https://``).
        attempts: deliveries tried at most.
        backoff: seconds before the second attempt, doubled for each further one.
        timeout: seconds one attempt may take.
        decide_hint: a line added to ``text`` saying how to decide (a CLI command, a page URL).
    """

    def __init__(self, url: str, *, attempts: int = 4, backoff: float = 0.5, timeout: float = 10.0,
                 decide_hint: str = "") -> None:
        self.url = url
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout
        self.decide_hint = decide_hint

    def body(self, request: ApprovalRequest) -> dict[str, Any]:
        """What is POSTed for ``request``."""
        text = summary(request) + (f"\n{self.decide_hint}" if self.decide_hint else "")
        payload = {"text": text, "event": "approval_requested", "request": request.to_json()}
        return json.loads(mask_known(json.dumps(payload, ensure_ascii=False, default=str)))  # type: ignore[no-any-return]

    async def __call__(self, request: ApprovalRequest) -> bool:
        """Deliver ``request``; True once an attempt got a 2xx answer (failures are logged)."""
        import httpx2

        body = self.body(request)
        pause = self.backoff
        async with httpx2.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            for attempt in range(1, self.attempts + 1):
                try:
                    answer = await client.post(self.url, json=body)
                    if answer.is_success:
                        return True
                    problem = f"HTTP {answer.status_code}"
                    retry = answer.status_code >= 500 or answer.status_code == 429
                except httpx2.HTTPError as e:
                    problem, retry = f"{type(e).__name__}: {e}", True
                if not retry or attempt == self.attempts:
                    logger.warning("approval webhook %s: request #%s not delivered (%s)",
                                   mask_url(self.url), request.id, mask_known(problem))
                    return False
                await anyio.sleep(pause)
                pause *= 2
        return False

    def __repr__(self) -> str:
        return f"Webhook({mask_url(self.url)!r})"
