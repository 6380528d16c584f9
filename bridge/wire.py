"""The message layer between a transport and the SDK session: bookkeeping and leniency.

A ``Wire`` is the ``TransportObserver`` of one connection generation: its transport tells it
every JSON-RPC message both ways (``bridge.transports``). It does what the SDK cannot do for
us:

* **End of stream.** It records when the read side ends (a stdio server exited, an
  HTTP transport gave up), so the session knows the generation is dead without waiting
  for a request to fail.
* **Requests that never arrived.** The transport reports requests it knows the server
  never processed (``reject``: HTTP 404 for a forgotten session, a refused connection,
  a write to a closed stream) and requests refused for bad credentials (``refuse``: 401,
  403). ``requests_sent`` collects the ids one operation sent, so the session can tell "never
  ran, safe to re-send" from "may have run", and an auth failure from a protocol error.
* **Lenient parsing.** Responses to ``tools/list`` and ``tools/call`` pass through the
  repairs of ``bridge.repair`` (a bad tool or content block no longer fails the whole
  result). Everything else reaches the SDK untouched.
* **Implicit ``resultType``.** From 2026-07-28 on, a result without ``resultType`` is
  ``"complete"`` (the spec: clients MUST assume so), but the SDK's models require the
  field and would fail the call; the wire fills it in before the SDK looks.
* **Malformed messages.** A message that is not JSON-RPC but carries the id of a request
  we are waiting for is that request's answer: it becomes an error answer at once, instead
  of a wait for the timeout. Other malformed lines are counted and described, so a request
  that then times out can say what the server sent instead.
* **Answers the SDK's JSON parser refuses as a whole.** Its parser stops at a fixed nesting
  depth, so one tool whose inputSchema nests deeper fails the entire ``tools/list`` page before
  any repair could look at it. Such a message is read again with Python's parser: in a
  listing, the tools nested too deep are dropped (and reported, like other invalid tools) and
  the rest delivered; any other answer fails its request at once, saying why.
* **Sizes and a lost connection.** The size of every ``tools/list`` answer is added up
  (``listing_bytes``), so a listing can be bounded as its pages arrive; a transport that
  closed the connection on purpose says why (``lost``), which failed requests then quote.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import pydantic_core
from mcp.shared.message import SessionMessage
from mcp_types import (
    INTERNAL_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    jsonrpc_message_adapter,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from .repair import SkippedTool, ordinary_call_result, repair_call_result, repair_listing
from .secrets import clip, head

__all__ = ["Wire", "WireReport", "requests_sent"]

logger = logging.getLogger("bridge.wire")

# The SDK's own fallback before (and without) a negotiated version.
_DEFAULT_VERSION = "2025-11-25"
# Outstanding request methods kept per generation; a request that never gets an answer
# (timed out) must not grow this forever.
_MAX_TRACKED = 4096

requests_sent: contextvars.ContextVar[list[RequestId] | None] = contextvars.ContextVar("bridge_requests_sent",
                                                                                      default=None)
"""Set it to a list and every request the task sends through any wire appends its id there, so the
caller can later ask ``never_arrived`` / ``refused`` about exactly the requests it sent."""


def _describe_malformed(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        found = first["input"]
        # A refused message may be megabytes long: only its start is worth a repr.
        preview = head(found, 80) if isinstance(found, str) else \
            found[:80] if isinstance(found, bytes | bytearray) else found
        # Masked before it is cut: a cut first could leave part of a secret readable.
        return f"{first['msg']} (got {clip(repr(preview), 80)})"
    return clip((str(exc) or type(exc).__name__).splitlines()[0], 200)


def _reread(exc: Exception) -> dict[str, Any] | None:
    """The message the SDK's JSON parser refused, read by Python's (deeper-nesting) parser, if it can."""
    if not isinstance(exc, ValidationError):
        return None
    errors = exc.errors()
    if len(errors) != 1 or errors[0]["type"] != "json_invalid":
        return None
    raw = errors[0]["input"]
    if not isinstance(raw, str | bytes | bytearray):
        return None
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


def _claimed_id(exc: Exception, reread: Mapping[str, Any] | None) -> RequestId | None:
    """The request id a malformed message carries, if it parsed as JSON with one."""
    found_in: list[Any] = [reread] if reread is not None else []
    if isinstance(exc, ValidationError):
        found_in += [error["input"] for error in exc.errors()]
    for found in found_in:
        if isinstance(found, Mapping) and isinstance(found.get("id"), str | int):
            request_id: RequestId = found["id"]
            return request_id
    return None


def _depth(value: Any) -> int:
    """How deep ``value`` nests (a scalar is 0, ``{}`` and ``[]`` are 1), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _sdk_parses(message: Mapping[str, Any]) -> bool:
    """Whether the SDK's own JSON parser reads ``message`` (as its transport would receive it)."""
    try:
        pydantic_core.from_json(json.dumps(message))
    except (ValueError, RecursionError):
        return False
    return True


@dataclass(frozen=True)
class WireReport:
    """What a wire saw of one operation's requests, for the error the operation raises."""

    refused: int | None
    """The HTTP status (401/403) with which the server refused our credentials, if it did."""
    never_arrived: str | None
    """Why none of the requests reached the server, or ``None`` if any may have run."""
    lost_reason: str | None
    """Why the transport closed the connection on purpose, if it did."""
    ended: bool
    """The read side has ended: no answer will come."""
    malformed: int
    """Messages that were not JSON-RPC, answered no known request, and arrived during the operation."""
    last_malformed: str


class Wire:
    """Per-generation message bookkeeping; ``streams`` wraps a transport's stream pair.

    Args:
        server: label for log messages.
        version: returns the negotiated protocol version (None before the handshake).
    """

    def __init__(self, server: str, version: Callable[[], str | None]) -> None:
        self.server = server
        self._negotiated = version
        self._known_version: str | None = None
        self.eof = anyio.Event()
        self.ended = False
        """The read side has ended (``eof`` is set); a plain flag for hot paths."""
        self._methods: OrderedDict[RequestId, str] = OrderedDict()
        self._rejected: dict[RequestId, str] = {}
        self._refused: dict[RequestId, int] = {}
        self.malformed = 0
        """Messages from the server that were not valid JSON-RPC and answered no known request."""
        self.last_malformed = ""
        self.skipped_tools: list[SkippedTool] = []
        """Tools dropped from listings since ``skipped_tools`` was last cleared."""
        self.listing_bytes = 0
        """Bytes of ``tools/list`` answers received since it was last set to 0."""
        self.lost_reason: str | None = None
        """Why the transport closed the connection on purpose (``lost``), if it did."""
        self.session_id: str | None = None
        """The session the server keeps for us (HTTP ``Mcp-Session-Id``), once it named one."""

    def session(self, session_id: str) -> None:
        """The server named its session (called by the HTTP transport)."""
        self.session_id = session_id

    # -- requests that never arrived -------------------------------------------------

    def reject(self, request_id: RequestId, reason: str) -> None:
        """The transport knows the server never processed this request (called by transports)."""
        self._rejected[request_id] = reason
        if len(self._rejected) > _MAX_TRACKED:
            self._rejected.pop(next(iter(self._rejected)))

    def refuse(self, request_id: RequestId, status: int) -> None:
        """The server refused our credentials for this request (called by transports)."""
        self._refused[request_id] = status
        if len(self._refused) > _MAX_TRACKED:
            self._refused.pop(next(iter(self._refused)))

    def refused(self, ids: list[RequestId] | None = None) -> int | None:
        """The HTTP status (401/403) of a refused request among ``ids`` (any request if None)."""
        if ids is None:
            return next(reversed(self._refused.values()), None)
        return next((self._refused[i] for i in ids if i in self._refused), None)

    def never_arrived(self, ids: list[RequestId]) -> str | None:
        """Why none of ``ids`` reached the server, or None if any may have run."""
        if not ids or any(i not in self._rejected for i in ids):
            return None
        return self._rejected[ids[-1]]

    def report(self, ids: list[RequestId], *, malformed_before: int) -> WireReport:
        """What this wire saw of the requests ``ids`` (``malformed_before``: ``malformed`` when they began)."""
        return WireReport(refused=self.refused(ids), never_arrived=self.never_arrived(ids),
                          lost_reason=self.lost_reason, ended=self.ended,
                          malformed=self.malformed - malformed_before, last_malformed=self.last_malformed)

    def end(self) -> None:
        """The read side ended: no answer will come on this wire any more."""
        self.ended = True
        self.eof.set()

    def lost(self, reason: str) -> None:
        """The transport closed the connection on purpose; failed requests say ``reason``."""
        logger.warning("server %s: %s", self.server, reason)
        self.lost_reason = reason
        self.end()

    # -- messages (a ``bridge.transports.TransportObserver``) -----------------------------

    def sending(self, message: Any) -> None:
        """A message is about to be written, in the sending task."""
        if isinstance(message, JSONRPCRequest):
            self._methods[message.id] = message.method
            if len(self._methods) > _MAX_TRACKED:
                self._methods.popitem(last=False)
            ids = requests_sent.get()
            if ids is not None:
                ids.append(message.id)

    def received(self, item: Any, size: int | None = None) -> Any:
        """Bookkeeping for one inbound item of ``size`` bytes (when the transport knows); returns the
        item the SDK should see."""
        if isinstance(item, Exception):
            return self._failed(item, size)
        message = item.message
        if isinstance(message, JSONRPCResponse):
            method = self._methods.pop(message.id, None)
            if method is not None:
                result = message.result
                if "resultType" not in result and self._modern():
                    result["resultType"] = "complete"
                if method == "tools/call":
                    if not ordinary_call_result(result):
                        self._repair_call(result)
                elif method == "tools/list":
                    # Over HTTP the SDK read the body: measured again, compactly (a tenth of parsing it).
                    self.listing_bytes += size if size is not None else len(pydantic_core.to_json(result))
                    self._repair_listing(result)
        elif isinstance(message, JSONRPCError) and message.id is not None:
            self._methods.pop(message.id, None)
        return item

    def _failed(self, item: Exception, size: int | None) -> Any:
        if not isinstance(item, ValueError):
            # A transport failure (e.g. a stream cut mid-body), not something the server said.
            logger.info("transport error from %s: %s", self.server, str(item).splitlines()[0] if str(item) else item)
            return item
        description = _describe_malformed(item)
        reread = _reread(item)
        request_id = _claimed_id(item, reread)
        if request_id is not None and request_id in self._methods:
            if reread is not None and self._methods[request_id] == "tools/list":
                repaired = self._without_deep_tools(reread)
                if repaired is not None:
                    return self.received(repaired, size)
            method = self._methods.pop(request_id)
            # Valid JSON that only the SDK's parser refuses (e.g. nested past its depth limit) is not
            # "invalid JSON-RPC": say who refused it.
            what = "cannot be read by the MCP SDK" if reread is not None else "is not valid JSON-RPC"
            logger.warning("server %s answered %s with a message that %s: %s", self.server, method, what, description)
            error = ErrorData(code=INTERNAL_ERROR, message=f"the answer {what}: {description}")
            return SessionMessage(JSONRPCError(jsonrpc="2.0", id=request_id, error=error))
        self.malformed += 1
        self.last_malformed = description
        # Once loudly, then quietly: a server spewing garbage must not flood the log.
        log = logger.warning if self.malformed == 1 else logger.debug
        log("server %s sent a message that is not valid JSON-RPC (%d so far): %s", self.server,
            self.malformed, description)
        return item

    def _modern(self) -> bool:
        return self._version() in MODERN_PROTOCOL_VERSIONS

    def _version(self) -> str | None:
        # A generation negotiates once and keeps its version; asked on every answer, so remembered.
        if self._known_version is None:
            self._known_version = self._negotiated()
        return self._known_version

    def _repair_listing(self, result: dict[str, Any]) -> None:
        skipped = repair_listing(result, self._version() or _DEFAULT_VERSION)
        for tool in skipped:
            logger.warning("server %s: tool %r skipped, its definition is invalid (%s)", self.server, tool.name,
                           tool.reason)
        self.skipped_tools.extend(skipped)

    def _without_deep_tools(self, message: dict[str, Any]) -> SessionMessage | None:
        """A listing answer the SDK's parser refused, without the tools nested too deep for it; None
        when that does not make it readable (it is then refused as a whole)."""
        result = message.get("result")
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(result, dict) or not isinstance(tools, list):
            return None
        kept: list[Any] = []
        skipped: list[SkippedTool] = []
        for tool in tools:
            # Tried in the same envelope, so the depth the parser sees is the depth it would see.
            if _sdk_parses({**message, "result": {"tools": [tool]}}):
                kept.append(tool)
                continue
            name = tool.get("name") if isinstance(tool, dict) else None
            skipped.append(SkippedTool(str(name) if name is not None else "<unnamed>",
                                       f"its definition nests {_depth(tool)} levels deep, more than the MCP SDK's "
                                       "JSON parser accepts"))
        repaired = {**message, "result": {**result, "tools": kept}}
        if not skipped or not _sdk_parses(repaired):
            return None
        try:
            parsed = SessionMessage(jsonrpc_message_adapter.validate_python(repaired, by_name=False))
        except ValidationError:
            return None
        for tool in skipped:
            logger.warning("server %s: tool %r skipped, %s", self.server, tool.name, tool.reason)
        self.skipped_tools.extend(skipped)
        return parsed

    def _repair_call(self, result: dict[str, Any]) -> None:
        replaced = repair_call_result(result, self._version() or _DEFAULT_VERSION)
        if replaced:
            logger.warning("server %s returned %d content block(s) of an unknown type; shown as placeholders",
                           self.server, replaced)
