"""``AuditTrail``: the interceptor that writes a call's record before its request leaves and its outcome
after, whatever happens to it, and one record per attempt the guards stopped before it was sent.

The approval decision is read from the call itself (``ToolCall.approval``, set by the approval
gate outside the trail), so every record of a call that went on carries it, however the call
ended; the gate tells the trail of the calls it stopped (``record_unsent``), and the toolset of
the attempts it refused (``record_refusal``)."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal, get_args

import anyio

from ..connection import Handler, ToolCall
from ..errors import AuditError, CallTimeout, ConfigError
from ..results import CallResult
from ..task_calls import related_task
from .postgres import PostgresAuditLog
from .records import AuditLog, AuditRecord, Outcome, Phase, current_worker, new_record_id
from .stores import open_audit_log

__all__ = ["AuditTrail", "OnAuditFailure", "audit_interceptor"]

OnAuditFailure = Literal["refuse", "continue"]
"""After a record could not be written: refuse further calls until one can be (``"refuse"``, the
default), or keep calling with the failure only logged (``"continue"``)."""

logger = logging.getLogger("bridge.audit")


class AuditTrail:
    """The audit ``Interceptor``: records every call that passes through it, whatever happens.

    Write-ahead: a call is recorded as ``started`` before its request leaves the process, and
    ``finished`` with its outcome (``ok``, ``tool_error``, ``exception``, ``cancelled``,
    ``timeout``) after; a process killed in between leaves the started record, which readers show
    as "no outcome". If the started record cannot be written, the call is not sent (with
    ``on_failure="refuse"``): a call with effects never leaves unrecorded.

    A record of the outcome that cannot be written is logged as an error and the call's result is still
    returned: by then the call has happened, and failing it would make the model retry a
    call that already had its effect (a second email, say). Then the trail fails closed: with
    ``on_failure="refuse"`` every further call is refused (``AuditError``, naming the trail)
    before it is sent, and recorded as ``refused`` if the trail can take that record, which
    also shows the trail works again, so the calls after it pass.

    Attempts refused before they reach the chain (an unknown tool, one outside the agent's
    selection or withheld, arguments the schema refuses) are recorded through ``record_refusal``;
    calls the approval gate stopped (a denial, a review that never ended) through ``record_unsent``.
    Put the trail inside the approval gate (``Guards.open`` does), so calls carry their decision.

    Args:
        log: where records go.
        redact_keys: a regex of further argument names to redact.
        worker: the ``worker`` written into records (default ``current_worker()`` at each call).
        on_failure: what a failed write does to the calls after it (``OnAuditFailure``).

    Raises:
        ConfigError: an unknown ``on_failure``.
    """

    kind = "audit"

    def __init__(self, log: AuditLog, *, redact_keys: str | None = None, worker: str | None = None,
                 on_failure: OnAuditFailure = "refuse") -> None:
        if on_failure not in get_args(OnAuditFailure):
            raise ConfigError(f"on_audit_failure must be one of {', '.join(get_args(OnAuditFailure))}, "
                              f"not {on_failure!r}")
        self.log = log
        self.redact_keys = redact_keys
        self.worker = worker
        self.on_failure = on_failure
        self.failure: str | None = None
        """Why the last write failed, while the trail has not written a record since (else ``None``)."""
        self._extra = re.compile(redact_keys, re.IGNORECASE) if redact_keys else None

    @property
    def location(self) -> str:
        """Where the records go, for messages (a URL's password masked by the store)."""
        return str(getattr(self.log, "location", type(self.log).__name__))

    async def __call__(self, call: ToolCall, call_next: Handler) -> CallResult:
        if self.failure is not None and self.on_failure == "refuse":
            await self._refuse_while_failing(call)
        started = time.perf_counter()
        # Masked here, once: the outcome's record changes only what a masked record lacks.
        opening = self._record(call, "started", None, None, phase="started")
        await self._write(opening)
        if self.failure is not None and self.on_failure == "refuse":
            raise self._failing(call)  # not sent: nothing would show it ever was
        try:
            result = await call_next(call)
        except BaseException as e:
            outcome, error = _failure(e)
            await self._write(self._finished(opening, outcome, error, started))
            raise
        ended: Outcome = "tool_error" if result.is_error else "ok"
        finished = self._finished(opening, ended, result.text if result.is_error else None, started)
        if (task := related_task(result.meta)) is not None:  # the MCP task it ran as, kept with the step
            finished = finished.amend(self._extra, step={**(finished.step or {}), "task": task})
        await self._write(finished)
        return result

    def _record(self, call: ToolCall, outcome: Outcome, error: str | None, started: float | None, *,
                reason: str | None = None, phase: Phase | None = None) -> AuditRecord:
        """The masked record of ``call`` with ``outcome`` (``started``: when the bridge took it, for
        its duration; ``reason``: why it was refused, else the decision's reason)."""
        d = call.approval
        return AuditRecord(time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), agent=call.agent,
                           server=call.server, tool=call.mcp_name,
                           alias=call.tool if call.tool != call.mcp_name else None, arguments=call.arguments,
                           outcome=outcome, error=error,
                           duration=round(time.perf_counter() - started, 6) if started is not None else 0.0,
                           decision=d.status if d else None, reviewer=d.reviewer if d else None,
                           reason=reason or ((d.reason or None) if d else None), call_id=call.call_id,
                           worker=self.worker or current_worker(), step=call.step.to_json() if call.step else None,
                           phase=phase).masked(self._extra)

    def _finished(self, opening: AuditRecord, outcome: Outcome, error: str | None, started: float) -> AuditRecord:
        return opening.amend(self._extra, record_id=new_record_id(), phase="finished", ref=opening.record_id,
                             outcome=outcome, error=error, duration=round(time.perf_counter() - started, 6))

    async def record_refusal(self, call: ToolCall, reason: str, error: BaseException | str) -> None:
        """Record an attempt refused before it became a call (outcome ``refused``).

        Args:
            call: the attempt as far as it got (its arguments may break the schema).
            reason: why, in the bridge's words (``"unknown tool"``, ``"invalid arguments"``, ...).
            error: what the caller was told.
        """
        await self._write(self._record(call, "refused", str(error) or type(error).__name__, None,
                                       reason=reason))

    async def record_unsent(self, call: ToolCall, outcome: Literal["denied", "exception"], error: str) -> None:
        """Record a call the approval gate stopped before it was sent: ``denied`` (the decision in
        ``call.approval``) or ``exception`` (its review ended without a decision).

        Args:
            call: the call as the gate had it.
            outcome: ``denied`` or ``exception``.
            error: what the caller was told.
        """
        await self._write(self._record(call, outcome, error, None))

    def _failing(self, call: ToolCall) -> AuditError:
        return AuditError(f"audit trail {self.location} could not write a record ({self.failure}), so calls are "
                          "refused until it can; repair it, or set on_audit_failure='continue' to call unrecorded",
                          server=call.server, tool=call.mcp_name)

    async def _refuse_while_failing(self, call: ToolCall) -> None:
        error = self._failing(call)
        # Recorded if the trail can take it now, which shows it works again: the calls after this pass.
        await self.record_refusal(call, "the audit trail could not write a record", error)
        raise error

    async def _write(self, record: AuditRecord) -> None:
        # Shielded: a cancelled call is exactly the kind of event the trail must not lose.
        with anyio.CancelScope(shield=True):
            try:
                await self.log.append(record)
            except Exception as e:
                logger.error("could not write audit record for %s/%s to %s: %s", record.server, record.tool,
                             getattr(self.log, "location", type(self.log).__name__), e,
                             exc_info=logger.isEnabledFor(logging.DEBUG))
                self.failure = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            else:
                self.failure = None

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs (a PostgreSQL password as a ``${VAR}`` reference).

        Raises:
            ValueError: the log type cannot be written down.
        """
        to_config = getattr(self.log, "to_config", None)
        if to_config is None:
            raise ValueError(f"audit log {type(self.log).__name__} cannot be serialised")
        out = {"kind": self.kind, "log": to_config()}
        if self.redact_keys:
            out["redact_keys"] = self.redact_keys
        if self.worker:
            out["worker"] = self.worker
        if self.on_failure != "refuse":
            out["on_failure"] = self.on_failure
        return out

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> AuditTrail:
        """Inverse of ``to_config``.

        Raises:
            ConfigError: malformed log settings, or an unset ``${VAR}`` in a log URL.
        """
        log = data.get("log") or {}
        if log.get("type") == PostgresAuditLog.kind or "url" in log:
            opened: AuditLog = PostgresAuditLog.from_config(log)
        elif "path" in log:
            opened = open_audit_log(log["path"], log.get("type"))
        else:
            raise ConfigError("audit config needs log.path (a file) or log.url (a PostgreSQL URL)")
        return cls(opened, redact_keys=data.get("redact_keys"), worker=data.get("worker"),
                   on_failure=data.get("on_failure", "refuse"))

    def __repr__(self) -> str:
        return f"AuditTrail({self.log!r})"


def _failure(e: BaseException) -> tuple[Outcome, str]:
    """The outcome and error text of a call that raised ``e``."""
    if isinstance(e, anyio.get_cancelled_exc_class()):
        return "cancelled", "cancelled"
    return "timeout" if isinstance(e, CallTimeout) else "exception", str(e) or type(e).__name__


def audit_interceptor(log: AuditLog | str | os.PathLike[str], *, redact_keys: str | None = None,
                      worker: str | None = None, on_failure: OnAuditFailure = "refuse") -> AuditTrail:
    """The audit interceptor, writing to ``log`` (an ``AuditLog``, or a path or PostgreSQL URL
    for ``open_audit_log``).

    Args:
        redact_keys: a regex of further argument names to redact, beyond the built-in
            password/token/secret/api_key/authorization/... set.
        worker: names this process in records (default ``$MCP_BRIDGE_WORKER``, else hostname:pid).
        on_failure: after a failed write, refuse further calls (default) or ``"continue"``.

    Raises:
        ConfigError: ``redact_keys`` is not a valid regex, an unknown ``on_failure``, or the log
            cannot be opened.
    """
    if not isinstance(log, AuditLog):
        log = open_audit_log(log)
    try:
        return AuditTrail(log, redact_keys=redact_keys, worker=worker, on_failure=on_failure)
    except re.error as e:
        raise ConfigError(f"redact_keys is not a valid regular expression: {e}") from None
