"""The approval request: what was asked, bound to its exact arguments, and how it was decided.

A request is made from a ``ToolCall`` the policy flagged. It carries the arguments twice: masked
for display (``bridge.secrets.mask_data``: a reviewer, a log or a webhook never sees a secret),
and as the SHA-256 of their canonical JSON (keys sorted, no spaces, UTF-8), which is what an
approval is bound to: a call whose arguments differ in any way has another hash, so it is
another request. The hash is of the real arguments, so it survives a restart (the same
arguments give the same hash in every process).

Life of a request::

    pending ──decide──> approved | denied ──consume──> (used once: consumed is set)
       ├──────────────> expired     (nobody decided before ``expires``)
       └──────────────> cancelled   (the waiting call was cancelled)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, get_args

from ..audit.records import current_worker
from ..secrets import mask_data

if TYPE_CHECKING:
    from ..connection import ToolCall

__all__ = [
    "DECIDED",
    "STATUSES",
    "ApprovalRequest",
    "Status",
    "argument_hash",
    "canonical_json",
    "check_status",
    "duplicate_key",
    "iso",
    "request_for",
    "why_asked",
]

Status = Literal["pending", "approved", "denied", "expired", "cancelled"]
STATUSES: tuple[str, ...] = get_args(Status)
DECIDED = ("approved", "denied")
"""The statuses a reviewer sets; only these are consumed by a call."""


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no insignificant whitespace, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def argument_hash(arguments: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of the canonical JSON of ``arguments``: what an approval is bound to."""
    return hashlib.sha256(canonical_json(dict(arguments)).encode("utf-8")).hexdigest()


def duplicate_key(server: str, tool: str, arguments: Mapping[str, Any], fields: Sequence[str] | None = None) -> str:
    """What two requests share when one may duplicate the other: the server, the tool and the
    arguments (all of them, or only ``fields``, such as recipients and subject), hashed."""
    chosen = dict(arguments) if fields is None else {f: arguments.get(f) for f in fields}
    return hashlib.sha256(canonical_json([server, tool, chosen]).encode("utf-8")).hexdigest()


def why_asked(call: ToolCall) -> str:
    """Why the policy asks about ``call``, from the tool's hints (the server's claims)."""
    hints = call.annotations
    if hints.effective_read_only:
        return "a rule asks about this tool (it is annotated read-only)"
    if hints.destructive:
        return "the tool is annotated destructive"
    if hints.read_only is None and hints.destructive is None:
        return "the tool has no read-only or destructive hint, so it counts as destructive"
    return "the tool is not annotated read-only"


def iso(seconds: float | None) -> str:
    """A stored time (epoch seconds) as an ISO 8601 UTC string; empty for none."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ApprovalRequest:
    """One request for a human's decision, as stored.

    Attributes:
        id: the store's number for it (0 before it is stored).
        agent: the agent that proposed the call (None: the server's own request).
        server: the server's name (the user's, never its ``serverInfo``).
        tool: the MCP name of the tool; ``alias`` the name the agent used.
        arguments: the arguments, masked for display.
        arguments_sha256: the hash of the real arguments the approval is bound to.
        hints: the tool's annotations as the server sent them (wire names).
        why: why the policy asked.
        created, expires: epoch seconds; nobody can approve after ``expires``.
        duplicate_key: what a possible duplicate shares with this one (see ``duplicate_key``).
        duplicate_of: the id of a pending or approved request this one may duplicate.
        worker: the process that proposed it (``hostname:pid``, or ``$MCP_BRIDGE_WORKER``).
        status: see the module docstring; ``reviewer``, ``reason``, ``decided`` say who, why, when.
        consumed: when a call used the decision (at most once).
    """

    id: int
    agent: str | None
    server: str
    tool: str
    alias: str
    arguments: Mapping[str, Any]
    arguments_sha256: str
    hints: Mapping[str, Any]
    why: str
    created: float
    expires: float
    duplicate_key: str = ""
    duplicate_of: int | None = None
    worker: str = ""
    status: Status = "pending"
    reviewer: str | None = None
    reason: str | None = None
    decided: float | None = None
    consumed: float | None = None

    @property
    def expired(self) -> bool:
        """Pending past its expiry (the store marks it so the next time it is touched)."""
        return self.status == "pending" and time.time() >= self.expires

    @property
    def shown_status(self) -> str:
        """The status as a reviewer should read it: a pending request past its expiry is expired."""
        return "expired" if self.expired else self.status

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (times as ISO strings beside the epoch seconds)."""
        data = asdict(self)
        data["arguments"] = dict(self.arguments)
        data["hints"] = dict(self.hints)
        for name in ("created", "expires", "decided", "consumed"):
            data[f"{name}_at"] = iso(data[name])
        return data


def request_for(call: ToolCall, *, expires_after: float, fields: Sequence[str] | None = None,
                now: float | None = None) -> ApprovalRequest:
    """A new pending request for ``call`` (not stored yet: ``id`` 0).

    ``fields``: the argument fields that make a possible duplicate of this tool (None: all).
    """
    created = time.time() if now is None else now
    return ApprovalRequest(
        id=0, agent=call.agent, server=call.server, tool=call.mcp_name, alias=call.tool,
        arguments=mask_data(dict(call.arguments)), arguments_sha256=argument_hash(call.arguments),
        hints=call.annotations.to_wire(), why=why_asked(call), created=created, expires=created + expires_after,
        duplicate_key=duplicate_key(call.server, call.mcp_name, call.arguments, fields), worker=current_worker())


def check_status(value: str) -> Status:
    """``value`` as a ``Status``; a store holding anything else is not an approval store."""
    if value not in STATUSES:
        raise ValueError(f"unknown approval status {value!r}")
    return value  # type: ignore[return-value]
