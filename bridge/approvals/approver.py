"""``QueueApprover``: an ``Approver`` whose reviewers decide elsewhere, through a durable queue.

```python
approver = QueueApprover("approvals.db", expires_after=900, notify="https://hooks.slack.com/...")
tools = await server.tools_for("drafter", approver=approver)
```

For each call the policy flags it puts a request on the store (``bridge.approvals.stores``) and
waits, without holding a thread, until a reviewer decides (``mcp-bridge approvals approve ID``,
the web page of ``mcp-bridge approvals serve``, or anything calling ``store.decide``):

- **Bound to the exact arguments, used once.** A decision applies to the call whose arguments
  it was shown (by their hash) and is consumed by it. Before asking, the approver claims a
  decision nobody used yet for exactly this agent, server, tool and arguments, within its
  expiry: the one a reviewer gave while this process was down. A restarted team therefore
  resumes without asking again, and no decision is ever used twice (the claim is atomic in
  the store).
- **Expiry** denies the call with a reason the model can read, and marks the request expired.
- **Cancellation** of the waiting call marks the request cancelled, then propagates (a
  ``ConsoleApprover(queue=...)`` withdraws it so when the person at the console answers first);
  a decision that arrived as it was withdrawn is used up with it, never by a later call.
- **Duplicates**: a request sharing the tool and arguments (or, for tools named in
  ``duplicate_fields``, those fields) with one pending or approved in the last
  ``duplicate_window`` seconds is marked as its possible duplicate, for the reviewer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio

from ..approval import APPROVER_TYPES, Decision
from ..audit.postgres import is_postgres_url
from ..connection import ToolCall
from ..targets import expand_vars
from .requests import DECIDED, ApprovalRequest, request_for
from .store import ApprovalStore, deadline_for
from .stores import open_approval_store
from .webhook import Webhook

__all__ = ["DEFAULT_EXPIRY", "QueueApprover"]

logger = logging.getLogger("bridge.approvals")

DEFAULT_EXPIRY = 3600.0
"""Seconds a request waits for a decision by default."""

Notify = Callable[[ApprovalRequest], Awaitable[Any]]


def _span(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


class QueueApprover:
    """Puts each flagged call on an approval queue and waits for a reviewer's decision.

    Args:
        store: an ``ApprovalStore``, or where one is (a SQLite file, a ``postgresql://`` URL).
        expires_after: seconds a request waits before the call is denied as expired.
        notify: told of each new request: a webhook URL (``Webhook``) or an async callable
            taking the ``ApprovalRequest``. Its failures are logged, never decide.
        duplicate_window: seconds back a possible duplicate is looked for.
        duplicate_fields: tool (MCP name) -> the argument fields that make a duplicate of it
            (``{"send_email": ["to", "subject"]}``); other tools compare all arguments.

    Raises:
        ConfigError: a malformed store URL, or ``expires_after`` not positive.
    """

    def __init__(self, store: ApprovalStore | str | os.PathLike[str], *, expires_after: float = DEFAULT_EXPIRY,
                 notify: str | Notify | None = None, duplicate_window: float = 3600.0,
                 duplicate_fields: Mapping[str, Sequence[str]] | None = None) -> None:
        from ..errors import ConfigError

        if not expires_after > 0:
            raise ConfigError(f"expires_after must be a positive number of seconds, not {expires_after!r}")
        self.store: ApprovalStore = open_approval_store(store) if isinstance(store, str | os.PathLike) else store
        self._where = os.fspath(store) if isinstance(store, str | os.PathLike) else None
        self.expires_after = float(expires_after)
        self.notify_url = notify if isinstance(notify, str) else None
        self._notify: Notify | None = Webhook(notify) if isinstance(notify, str) else notify
        self.duplicate_window = float(duplicate_window)
        self.duplicate_fields = {k: tuple(v) for k, v in (duplicate_fields or {}).items()}

    async def review(self, call: ToolCall) -> Decision:
        """Use a decision already given for exactly this call, or ask and wait for one."""
        from .requests import argument_hash

        earlier = await self.store.claim(call.agent, call.server, call.mcp_name, argument_hash(call.arguments))
        if earlier is not None:
            return _decision(earlier)
        request = await self.store.submit(
            request_for(call, expires_after=self.expires_after, fields=self.duplicate_fields.get(call.mcp_name)),
            duplicate_window=self.duplicate_window)
        async with anyio.create_task_group() as group:
            if self._notify is not None:
                group.start_soon(self._tell, request)
            try:
                final = await self._wait(request)
            finally:
                group.cancel_scope.cancel()
        return final

    async def _tell(self, request: ApprovalRequest) -> None:
        assert self._notify is not None
        try:
            await self._notify(request)
        except Exception:
            logger.exception("approval request #%s: the notification failed", request.id)

    async def _wait(self, request: ApprovalRequest) -> Decision:
        try:
            final = await self.store.waiters.wait(request.id, deadline_for(request.expires),
                                       lambda: self.store.get(request.id))
            if final.status == "pending":
                final = await self.store.settle(request.id, "expired",
                                                f"no reviewer decided within {_span(self.expires_after)}")
        except BaseException:
            # Cancelled (or failed) while waiting: nobody may approve a call that is no longer made.
            with anyio.CancelScope(shield=True):
                try:
                    left = await self.store.settle(request.id, "cancelled",
                                                   "withdrawn: the call stopped waiting (cancelled, or decided at "
                                                   "the console first)")
                    if left.status in DECIDED:
                        # Decided as the call was withdrawn: used up with it, or a retry of the same
                        # call would claim it and run without anyone being asked (the console said no).
                        await self.store.consume(left.id)
                except Exception:
                    logger.exception("approval request #%s: could not mark it cancelled", request.id)
            raise
        if final.status in ("approved", "denied"):
            if not await self.store.consume(final.id):
                return Decision(False, final.reviewer or "queue",
                                f"approval request #{final.id} was already used by another identical call; "
                                "a decision is used once")
            return _decision(final)
        return Decision(False, "queue", _unanswered(final))

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs (``approver_from_config`` rebuilds it).

        Raises:
            ValueError: the store was given as an object, or a secret would be written down (a
                URL's literal password, a webhook URL): name it as a ``${VAR}`` reference instead.
        """
        if self._where is None:
            raise ValueError("a QueueApprover built on a store object cannot be written down; "
                             "give it the store's path or URL")
        password = urlsplit(self._where).password if is_postgres_url(self._where) else None
        if password and "${" not in password:
            raise ValueError("the approval store URL holds a literal password; write it as a ${VAR} "
                             "reference (postgresql://user:${PGPASSWORD}@host/db) to keep it out of the config")
        if self.notify_url is not None and "${" not in self.notify_url:
            raise ValueError("a webhook URL is a secret; write it as a ${VAR} reference to keep it out of the config")
        if self._notify is not None and self.notify_url is None:
            raise ValueError("a QueueApprover with a notify callable cannot be written down")
        out: dict[str, Any] = {"type": "queue", "store": self._where, "expires_after": self.expires_after,
                               "duplicate_window": self.duplicate_window}
        if self.notify_url is not None:
            out["notify"] = self.notify_url
        if self.duplicate_fields:
            out["duplicate_fields"] = {k: list(v) for k, v in self.duplicate_fields.items()}
        return out

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> QueueApprover:
        """Inverse of ``to_config`` (``${VAR}`` references are read now).

        Raises:
            ConfigError: no ``store``, or a malformed one.
        """
        from ..errors import ConfigError

        if not isinstance(data.get("store"), str):
            raise ConfigError("a queue approver's config needs 'store': the SQLite file or postgresql:// URL")
        notify = data.get("notify")
        return cls(data["store"], expires_after=float(data.get("expires_after", DEFAULT_EXPIRY)),
                   notify=expand_vars(notify, where="the approval webhook URL") if isinstance(notify, str) else None,
                   duplicate_window=float(data.get("duplicate_window", 3600.0)),
                   duplicate_fields=data.get("duplicate_fields"))

    def __repr__(self) -> str:
        return f"QueueApprover({self.store!r}, expires_after={self.expires_after:g})"


APPROVER_TYPES["queue"] = QueueApprover.from_config


def _decision(request: ApprovalRequest) -> Decision:
    reviewer = request.reviewer or "queue"
    if request.status == "approved":
        return Decision(True, reviewer, request.reason or f"approved in the queue (#{request.id})")
    return Decision(False, reviewer, request.reason or f"denied in the queue (#{request.id})")


def _unanswered(request: ApprovalRequest) -> str:
    if request.status == "expired":
        return (f"approval request #{request.id} expired: no reviewer decided in time, so the call was not made; "
                "tell the user it needs approval rather than retrying at once")
    return f"approval request #{request.id} was {request.status}: {request.reason or 'no reason given'}"
