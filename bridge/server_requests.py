"""Guards on what a server asks of the client: sampling (the user's model) and elicitation (the user).

A server given ``sampling`` can make the user's model write for it, and every request spends
the user's money and quota; one given ``elicitation`` can put questions to the person. Neither
passes through the tool-call path (no approval gate, no audit trail), and either can come at any
time, also while no call is running. ``ServerRequestGuard`` wraps the callbacks that answer them,
once per connection (``Options.server_requests``; ``connect()`` and ``open_servers()`` apply the
defaults when it is not set), whatever answers them (any framework's model client):

* **a budget per connection**: at most ``sampling_requests`` sampling requests and
  ``sampling_tokens`` tokens over the connection's life (reconnects included). A request's cost
  is its prompt (estimated at four characters a token) plus the ``maxTokens`` it is granted.
  A request over budget is answered with an MCP error and never reaches the model.
* **``maxTokens`` capped**: at ``max_tokens``, and the granted value is what the model client is
  asked for (a callback receives the capped request).
* **an approval policy**: ``"allow"`` (default) answers within budget unasked; ``"ask"`` shows the
  request to the approver first (the same ``Approver`` as for tool calls), framed as the
  server's, as a call of ``sampling/createMessage`` on the server's label.
* **an audit record** per sampling request (``tool="sampling/createMessage"``: ``ok``,
  ``denied`` by the approver, ``refused`` over budget, ``exception`` when the model failed) and
  per elicitation answer (``tool="elicitation/create"``: ``ok`` when accepted, ``denied`` when
  declined or dismissed), in ``audit`` (a path, an ``AuditLog``, or the ``AuditTrail`` the
  connection's agents write to). The guard only describes it: a path or URL is opened for each
  record and closed after it (these requests are few, budgeted and slow: a model answers each),
  so nothing stays open past the record; a store object is used as given, and closed by whoever
  holds it (the owner of the agents' toolsets, for their trail's store).

The records hold the request's text (secrets masked) so a reviewer can tell what the server
made the model write, or what it asked the person.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, TypeAlias, get_args

import anyio
import mcp_types as types
from mcp.client.session import ClientRequestContext, ElicitationFnT, SamplingFnT

from .approval import Approver, ConsoleApprover, Decision
from .audit import AuditLog, AuditRecord, AuditTrail, Outcome, current_worker, open_audit_log
from .audit.postgres import is_postgres_url
from .audit.stores import close_audit_log
from .catalogue import Annotations
from .connection import ToolCall
from .errors import ConfigError
from .options import ClientCallbacks
from .sanitize import one_line
from .secrets import mask_data

__all__ = ["ELICITATION", "SAMPLING", "SamplingApproval", "ServerRequestGuard"]

logger = logging.getLogger("bridge.server_requests")

SAMPLING = "sampling/createMessage"
"""The ``tool`` of a sampling request's audit record and approval call."""

ELICITATION = "elicitation/create"
"""The ``tool`` of an elicitation answer's audit record."""

_Sampled: TypeAlias = types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData

SamplingApproval = Literal["allow", "ask"]
"""``allow``: answer within budget unasked; ``ask``: the approver decides each request."""

# Deliberately generous for English prose: an estimate that errs high only spends the budget sooner.
_CHARS_PER_TOKEN = 4
# Text kept per field in a record or shown to a reviewer; the full length is noted past it.
_SHOWN_CHARS = 4_000
# JSON-RPC has no code for "refused by policy"; the spec's own example of a user rejecting a
# sampling request uses -1.
_REFUSED = -1


@dataclass(frozen=True)
class ServerRequestGuard:
    """Limits, approval and audit for the requests a server sends back (sampling, elicitation).

    Attributes:
        sampling_requests: most sampling requests one connection may have answered (0: none).
        sampling_tokens: most tokens one connection may spend through sampling: each request's
            prompt (estimated, four characters a token) plus the ``maxTokens`` it is granted.
        max_tokens: the most ``maxTokens`` one request is granted; a larger ask is lowered to
            this, and the model client is asked for exactly what was granted.
        sampling_approval: ``"allow"`` or ``"ask"`` (``SamplingApproval``).
        approver: who answers under ``"ask"`` (default ``ConsoleApprover()``).
        audit: where each sampling request and elicitation answer is recorded: an ``AuditTrail``
            (e.g. the one your agents' ``Guards`` write to), an ``AuditLog``, or a path or URL for
            ``open_audit_log``; ``None`` records nothing.

    Raises:
        ConfigError: a limit that is not a whole number of 0 or more (``max_tokens``: 1 or more),
            an unknown approval mode, or ``approver`` without ``sampling_approval="ask"``.
    """

    sampling_requests: int = 20
    sampling_tokens: int = 100_000
    max_tokens: int = 4_096
    sampling_approval: SamplingApproval = "allow"
    approver: Approver | None = None
    audit: AuditTrail | AuditLog | str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        for name, least in (("sampling_requests", 0), ("sampling_tokens", 0), ("max_tokens", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"server_requests.{name} must be a whole number of {least} or more, not {value!r}")
        if self.sampling_approval not in get_args(SamplingApproval):
            raise ConfigError(f"server_requests.sampling_approval must be one of "
                              f"{', '.join(get_args(SamplingApproval))}, not {self.sampling_approval!r}")
        if self.approver is not None and self.sampling_approval != "ask":
            raise ConfigError("server_requests.approver is given but sampling_approval is 'allow'; "
                              "set sampling_approval='ask' to have it asked")
        if self.audit is not None and not isinstance(self.audit, AuditTrail | AuditLog | str | os.PathLike):
            raise ConfigError(f"server_requests.audit must be a path, a postgresql:// URL, an AuditLog or an "
                              f"AuditTrail, not {type(self.audit).__name__}")
        if isinstance(self.audit, str) and is_postgres_url(self.audit):
            open_audit_log(self.audit)  # a malformed URL or missing psycopg fails here; nothing connects

    def bind(self, server: str, callbacks: ClientCallbacks) -> ClientCallbacks:
        """``callbacks`` for one connection to the server labelled ``server``: sampling and
        elicitation wrapped in this guard, with a fresh budget (kept across reconnects by the
        session, which binds once)."""
        if callbacks.sampling is None and callbacks.elicitation is None:
            return callbacks
        guarded = _Guarded(self, server)
        return dataclasses.replace(
            callbacks,
            sampling=guarded.sampling(callbacks.sampling) if callbacks.sampling is not None else None,
            elicitation=guarded.elicitation(callbacks.elicitation) if callbacks.elicitation is not None else None,
        )


@asynccontextmanager
async def _opened(audit: AuditTrail | AuditLog | str | os.PathLike[str]) -> AsyncIterator[AuditLog]:
    """The store ``audit`` names: a given one as it is; one opened from a path or URL, closed after."""
    if isinstance(audit, AuditTrail | AuditLog):
        yield audit.log if isinstance(audit, AuditTrail) else audit
        return
    log = open_audit_log(audit)
    try:
        yield log
    finally:
        await anyio.to_thread.run_sync(close_audit_log, log)


class _Budget:
    """What one connection has left. Taking is synchronous (no await between the check and the
    charge), so concurrent requests can never overdraw it."""

    def __init__(self, requests: int, tokens: int) -> None:
        self.requests, self.tokens = requests, tokens
        self.requests_used = self.tokens_used = 0

    def take(self, cost: int) -> str | None:
        """Charge one request of ``cost`` tokens, or say why it does not fit (nothing charged)."""
        if self.requests_used >= self.requests:
            return f"the connection has used its budget of {self.requests} sampling request(s)"
        if self.tokens_used + cost > self.tokens:
            return (f"the request would cost about {cost} token(s) and the connection has "
                    f"{self.tokens - self.tokens_used} of its {self.tokens} left")
        self.requests_used += 1
        self.tokens_used += cost
        return None


class _Guarded:
    """The guard bound to one connection: its label, its budget, its approver and trail."""

    def __init__(self, guard: ServerRequestGuard, server: str) -> None:
        self.guard = guard
        self.server = server
        self.budget = _Budget(guard.sampling_requests, guard.sampling_tokens)
        self.refused = 0
        self.approver: Approver | None = (guard.approver or ConsoleApprover()) \
            if guard.sampling_approval == "ask" else None

    # -- sampling ----------------------------------------------------------------------------

    def sampling(self, answer: SamplingFnT) -> SamplingFnT:
        async def guarded(context: ClientRequestContext, params: types.CreateMessageRequestParams
                          ) -> _Sampled:
            return await self._sample(answer, context, params)

        return guarded

    async def _sample(self, answer: SamplingFnT, context: ClientRequestContext,
                      params: types.CreateMessageRequestParams) -> _Sampled:
        started = time.perf_counter()
        granted = min(params.max_tokens, self.guard.max_tokens)
        request, limits = _sampling_view(params), _limits(params, granted)
        over = self.budget.take(_prompt_tokens(params) + granted)
        if over is not None:
            message = f"sampling refused by the client: {over}"
            await self._record(SAMPLING, request, "refused", started, plain=limits, error=message)
            # Once per connection: a flood must not flood the log as well (the trail has each one).
            logger.log(logging.DEBUG if self.refused else logging.WARNING, "server %s: %s", one_line(self.server),
                       message)
            self.refused += 1
            return types.ErrorData(code=_REFUSED, message=message)
        decision = await self._review({**request, **limits}) if self.approver is not None else None
        if decision is not None and not decision.approved:
            reason = decision.reason or "no reason given"
            await self._record(SAMPLING, request, "denied", started, plain=limits, decision=decision)
            return types.ErrorData(code=_REFUSED, message=f"sampling denied by the client's reviewer: {reason}")
        try:
            result = await answer(context, params.model_copy(update={"max_tokens": granted}))
        except Exception as e:  # the model failing is the server's answer to get, not a crash here
            result = types.ErrorData(code=types.INTERNAL_ERROR, message=f"sampling failed: {e}")
        if isinstance(result, types.ErrorData):
            await self._record(SAMPLING, request, "exception", started, plain=limits, decision=decision,
                               error=result.message)
        else:
            await self._record(SAMPLING, request, "ok", started, plain=limits, decision=decision)
        return result

    async def _review(self, request: Mapping[str, Any]) -> Decision:
        assert self.approver is not None
        framing = {"from": f"server {self.server!r}, for your model (the text is the server's)"}
        call = ToolCall(server=self.server, tool=SAMPLING, mcp_name=SAMPLING, arguments={**framing, **request},
                        annotations=Annotations(destructive=False), meta={"bridge.server_request": SAMPLING})
        try:
            return await self.approver.review(call)
        except Exception as e:
            # A broken approver fails closed, as it does for tool calls.
            logger.exception("approver failed on a sampling request of server %s", one_line(self.server))
            return Decision(False, type(self.approver).__name__, f"the approver failed: {e}")

    # -- elicitation -------------------------------------------------------------------------

    def elicitation(self, answer: ElicitationFnT) -> ElicitationFnT:
        async def guarded(context: ClientRequestContext, params: types.ElicitRequestParams
                          ) -> types.ElicitResult | types.ErrorData:
            started = time.perf_counter()
            request = _elicitation_view(params)
            try:
                result = await answer(context, params)
            except BaseException as e:
                error = "cancelled" if isinstance(e, anyio.get_cancelled_exc_class()) else str(e) or type(e).__name__
                await self._record(ELICITATION, request, "exception", started, error=error)
                raise
            if isinstance(result, types.ErrorData):
                await self._record(ELICITATION, request, "exception", started, error=result.message)
            elif result.action == "accept":
                await self._record(ELICITATION, {**request, "answer": dict(result.content or {})}, "ok", started)
            else:
                await self._record(ELICITATION, request, "denied", started,
                                   reason="declined" if result.action == "decline" else "dismissed")
            return result

        return guarded

    # -- the trail ---------------------------------------------------------------------------

    async def _record(self, tool: str, request: Mapping[str, Any], outcome: Outcome, started: float, *,
                      plain: Mapping[str, Any] | None = None, decision: Decision | None = None,
                      reason: str | None = None, error: str | None = None) -> None:
        """Write one record: ``request`` (what the server or the person wrote) masked like tool
        arguments, ``plain`` (figures the bridge computed, e.g. ``maxTokens``) as they are."""
        where = self.guard.audit
        if where is None:
            return
        record = AuditRecord(
            time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), agent=None, server=self.server,
            tool=tool, arguments={**mask_data(dict(request)), **(plain or {})}, outcome=outcome,
            decision=decision.status if decision is not None else None,
            reviewer=decision.reviewer if decision is not None else None,
            reason=(decision.reason or None) if decision is not None else reason,
            error=error, duration=round(time.perf_counter() - started, 6), worker=current_worker())
        # Shielded: a request the server gave up on is exactly the kind the trail must keep.
        with anyio.CancelScope(shield=True):
            try:
                async with _opened(where) as log:
                    await log.append(record)
            except Exception as e:
                logger.error("could not write the audit record of %s from server %s to %s: %s", tool,
                             one_line(self.server), _location(where), e)


def _location(where: AuditTrail | AuditLog | str | os.PathLike[str]) -> str:
    """Where records go, for messages (a URL's password masked by the store)."""
    if isinstance(where, AuditTrail):
        return where.location
    if isinstance(where, AuditLog):
        return str(getattr(where, "location", type(where).__name__))
    try:
        return str(getattr(open_audit_log(where), "location", where))
    except ConfigError:
        return "the audit log"


# -- what a request holds ----------------------------------------------------------------------


def _shown(text: str) -> str:
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}[... {len(text) - _SHOWN_CHARS} more characters]"


def _blocks(content: Any) -> list[Any]:
    return content if isinstance(content, list) else [content]


def _block_text(block: Any) -> str:
    if isinstance(block, types.TextContent):
        return block.text
    return f"[{getattr(block, 'type', 'non-text')} content]"


def _prompt_tokens(params: types.CreateMessageRequestParams) -> int:
    """The request's prompt in tokens, estimated from its size: text by its characters, other
    blocks (images, audio, tool results) by their serialised length."""
    chars = len(params.system_prompt or "")
    for message in params.messages:
        for block in _blocks(message.content):
            chars += len(block.text) if isinstance(block, types.TextContent) else len(block.model_dump_json())
    return math.ceil(chars / _CHARS_PER_TOKEN)


def _sampling_view(params: types.CreateMessageRequestParams) -> dict[str, Any]:
    """What a reviewer is shown and the trail keeps of a sampling request's text."""
    view: dict[str, Any] = {}
    if params.system_prompt:
        view["systemPrompt"] = _shown(params.system_prompt)
    view["messages"] = [{"role": m.role, "text": _shown("\n".join(_block_text(b) for b in _blocks(m.content)))}
                        for m in params.messages]
    return view


def _limits(params: types.CreateMessageRequestParams, granted: int) -> dict[str, Any]:
    """What the request was granted (and asked, when that differs), in tokens. Not named
    ``maxTokens``: a key naming tokens reads as a credential to every masking sink."""
    view: dict[str, Any] = {"replyLimit": granted}
    if params.max_tokens != granted:
        view["replyLimitAsked"] = params.max_tokens
    if params.include_context not in (None, "none"):
        view["includeContext"] = params.include_context
    return view


def _elicitation_view(params: types.ElicitRequestParams) -> dict[str, Any]:
    """What the trail keeps of an elicitation request: its message and what it asked for."""
    view: dict[str, Any] = {"message": _shown(params.message)}
    if isinstance(params, types.ElicitRequestURLParams):
        view["url"] = params.url
    else:
        properties = params.requested_schema.get("properties") if isinstance(params.requested_schema, Mapping) else None
        view["fields"] = sorted(map(str, properties)) if isinstance(properties, Mapping) else []
    return view
