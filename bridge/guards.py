"""What an agent may do with a server's tools: one frozen ``Guards`` value, accepted as is by every adapter.

A ``Guards`` holds the selection (which tools), the approval gate (when a human must say yes, and
who answers), the audit trail, any further interceptors, and how the catalogue is presented to
the model (all at once, or deferred behind a search tool). Every framework adapter takes one,
or the same fields as keywords (``Guards.of(base, read_only=True)``), and hands it to a
``bridge.toolset.Toolset``, which applies it identically for AutoGen, AG2, MetaGPT and Agent
Framework.

Defaults fail safe: every tool not annotated read-only needs a human's approval
(``ApprovalPolicy()``), asked at the console (``ConsoleApprover()``, which denies when nobody can
answer). ``approver=AutoApprove()`` is for unattended runs; ``approval=False`` drops the gate.

A ``Guards`` only describes: the audit destination is a path, URL or store object, nothing is
opened here. ``open(resources)`` puts it to work for one owner (a toolset opens it over its
connection's ``Resources``), holding the audit store open there, shared by every agent of that
connection naming the same file or URL, and closed with the connection, or earlier when the last
toolset using it stops. The chain runs, outermost first: telemetry's span, approval, telemetry's
trace context for the request, audit, then ``interceptors``.
The gate decides first so the trail finds the decision on the call (``ToolCall.approval``) however
the call ends; the gate tells the trail of the calls it stopped (a denial), and the toolset of
the attempts it refused, so the trail has every attempt.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol, get_args

from . import approvals as _approvals  # noqa: F401  (loaded so configs can name a "queue" approver)
from .approval import ApprovalGate, ApprovalPolicy, Approver
from .audit import AuditLog, AuditTrail, hold_audit_log, open_audit_log
from .audit.postgres import is_postgres_url
from .audit.trail import OnAuditFailure
from .code_limits import CodeLimits
from .connection import Interceptor, ToolCall
from .errors import BridgeError, ConfigError
from .profiles import PROFILES
from .resources import Resources
from .secrets import dataclass_repr
from .selection import ToolFilter
from .telemetry import Telemetry, otel_available

__all__ = ["DEFAULT_DEFER_OVER", "CatalogueMode", "Guards", "OpenGuards", "RefusalRecorder", "register_interceptor"]

CatalogueMode = Literal["full", "deferred", "auto"]
"""``full``: every allowed tool's schema goes to the model; ``deferred``: only ``always`` tools plus a
search tool; ``auto``: deferred once the allowed tools' schemas exceed ``defer_over`` bytes."""

DEFAULT_DEFER_OVER = 20_000
"""Bytes of tool JSON past which ``catalogue="auto"`` defers (about 5,000 tokens per request)."""

# How the catalogue is presented; written to a config only where it differs from these.
_PRESENTATION: dict[str, Any] = {"catalogue": "full", "always": (), "defer_over": DEFAULT_DEFER_OVER,
                                 "warn_unguarded": True, "schema_profile": None, "telemetry": None,
                                 "trace_content": False, "resources": None}


def _patterns(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Guards:
    """Selection, approval, audit and catalogue presentation for one agent's tools.

    Attributes:
        include, exclude: globs on MCP or agent-facing names; exclusion wins.
        read_only: keep only tools annotated read-only (True) or only the others (False).
        select: a prepared ``ToolFilter`` the shorthands above are merged into (e.g. with
            ``opt_in=bridge.multimail.ACCOUNT_TOOLS``).
        approval: when to ask (default ``ApprovalPolicy()``: every tool not read-only); ``False``
            for no approval gate.
        approver: who answers (default ``ConsoleApprover()``).
        audit: an ``AuditTrail``, an ``AuditLog``, or a path or URL for ``open_audit_log`` (``.jsonl``,
            ``.db``, ``postgresql://``).
        on_audit_failure: after an audit record could not be written, ``"refuse"`` further calls
            until one can be (the default) or ``"continue"`` calling unrecorded; for a prepared
            ``AuditTrail``, its own ``on_failure`` holds unless this is given.
        interceptors: further wrappers, run inside the approval gate (only on approved calls).
        catalogue: ``"full"``, ``"deferred"`` or ``"auto"`` (see ``CatalogueMode``).
        always: globs of tools that stay loaded in a deferred catalogue.
        defer_over: the byte threshold of ``catalogue="auto"``.
        warn_unguarded: warn once when destructive tools are handed out with no approval gate.
        schema_profile: rewrite what the model is sent for a provider that refuses parts of JSON
            Schema (``bridge.profiles``: ``"openai-strict"``, ``"gemini"``); ``None`` sends it unchanged.
        telemetry: OpenTelemetry spans and metrics for every call (``bridge.telemetry``): ``None``
            (the default) when ``opentelemetry-api`` is installed, ``True`` requires it, ``False``
            never. Nothing is emitted until the application configures a tracer or meter provider.
        trace_content: put the masked arguments and result text on spans (off: never).
        resources: URI globs (``"docs://*"``) of the server resources the agent may read: each
            server that offers resources gets a ``read_resource`` tool (``bridge.resource_tools``),
            reading only URIs the server lists or templates that match one of these. ``None`` (the
            default): no such tool.
        code: code mode (``bridge.code``): the model is offered one tool, ``run_python``, whose
            programs call these tools, each call through these guards. ``True`` for the default
            ``CodeLimits``, or a ``CodeLimits``; ``False`` (the default): the tools themselves.

    Raises:
        ConfigError: malformed patterns, ``approver`` with ``approval=False``, an unknown mode.
    """

    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    read_only: bool | None = None
    select: ToolFilter | None = None
    approval: ApprovalPolicy | Literal[False] | None = None
    approver: Approver | None = None
    audit: AuditTrail | AuditLog | str | os.PathLike[str] | None = None
    on_audit_failure: OnAuditFailure | None = None
    interceptors: tuple[Interceptor, ...] = ()
    catalogue: CatalogueMode = "full"
    always: tuple[str, ...] = ()
    defer_over: int = DEFAULT_DEFER_OVER
    warn_unguarded: bool = True
    schema_profile: str | None = None
    telemetry: bool | None = None
    trace_content: bool = False
    resources: tuple[str, ...] | None = None
    code: bool | CodeLimits = False
    _filter: ToolFilter | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "include", _patterns(self.include))
        object.__setattr__(self, "exclude", _patterns(self.exclude))
        object.__setattr__(self, "always", _patterns(self.always) or ())
        object.__setattr__(self, "resources", _patterns(self.resources))
        object.__setattr__(self, "code", CodeLimits.from_config(self.code) if self.code is not False and not
                           isinstance(self.code, CodeLimits) else self.code)
        object.__setattr__(self, "interceptors", tuple(self.interceptors))
        if self.catalogue not in get_args(CatalogueMode):
            raise ConfigError(f"catalogue must be one of {', '.join(get_args(CatalogueMode))}, "
                              f"not {self.catalogue!r}")
        if self.schema_profile is not None and self.schema_profile not in PROFILES:
            raise ConfigError(f"unknown schema profile {self.schema_profile!r}; known: {', '.join(PROFILES)}")
        if self.approval is False and self.approver is not None:
            raise ConfigError("approver= given but approval=False disables the approval gate")
        if self.approval is not None and self.approval is not False and not isinstance(self.approval, ApprovalPolicy):
            raise ConfigError(f"approval must be an ApprovalPolicy or False, not {self.approval!r}")
        self._check_audit()
        if self.telemetry is True and not otel_available():
            raise ConfigError("telemetry=True needs OpenTelemetry: pip install 'autogen-mcp-bridge[otel]'")
        chosen = self.select
        if self.include is not None or self.exclude is not None or self.read_only is not None:
            chosen = ToolFilter.of(self.include, self.exclude, self.read_only, base=self.select)
        object.__setattr__(self, "_filter", chosen)

    def __repr__(self) -> str:
        # ``audit`` may be a URL with its password in it (postgresql://user:PASSWORD@host/db).
        return dataclass_repr(self)

    def _check_audit(self) -> None:
        # Checked here, opened by the owner: a malformed destination should fail where it is written.
        audit = self.audit
        if isinstance(audit, AuditTrail):
            if self.on_audit_failure is not None and self.on_audit_failure != audit.on_failure:
                raise ConfigError(f"on_audit_failure={self.on_audit_failure!r} contradicts the AuditTrail's "
                                  f"on_failure={audit.on_failure!r}; set it in one place")
        elif audit is not None and not isinstance(audit, AuditLog | str | os.PathLike):
            raise ConfigError(f"audit must be a path, a postgresql:// URL, an AuditLog or an AuditTrail, "
                              f"not {type(audit).__name__}")
        if self.on_audit_failure is not None and self.on_audit_failure not in get_args(OnAuditFailure):
            raise ConfigError(f"on_audit_failure must be one of {', '.join(get_args(OnAuditFailure))}, "
                              f"not {self.on_audit_failure!r}")

    def open(self, resources: Resources) -> OpenGuards:
        """These guards at work for the owner of ``resources``: the chain every call runs through,
        with the audit store held open in ``resources`` (shared with every other holder of the same
        file or URL there) until ``OpenGuards.close()`` or the owner closes.

        Raises:
            ConfigError: the audit destination cannot be opened (a malformed URL, psycopg missing).
        """
        trail: AuditTrail | None = None
        keys: tuple[Hashable, ...] = ()
        if isinstance(self.audit, AuditTrail):
            trail = self.audit
            keys = (hold_audit_log(resources, trail.log)[1],)
        elif self.audit is not None:
            log, key = hold_audit_log(resources, self.audit)
            trail, keys = AuditTrail(log, on_failure=self.on_audit_failure or "refuse"), (key,)
        chain: list[Interceptor] = []
        telemetry = Telemetry(record_content=self.trace_content) \
            if self.telemetry or (self.telemetry is None and otel_available()) else None
        start = telemetry.start() if telemetry is not None else None
        if start is not None:
            chain.append(start)
        if self.approval is not False:
            recorders = tuple(r for r in (trail, start) if r is not None)
            chain.append(ApprovalGate(self.approval, self.approver, recorders=recorders))
        if telemetry is not None:
            chain.append(telemetry.sent())
        if trail is not None:
            chain.append(trail)
        chain.extend(self.interceptors)
        return OpenGuards(tuple(chain), trail, resources, keys)

    @classmethod
    def of(cls, base: Guards | None = None, /, **overrides: Any) -> Guards:
        """``base`` (default: the safe defaults) with ``overrides`` applied; ``None`` values are ignored.

        Raises:
            ConfigError: an override names no guard, or a value is malformed.
        """
        known = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown guard option {', '.join(map(repr, unknown))}; "
                              f"known: {', '.join(sorted(known))}")
        given = {k: v for k, v in overrides.items() if v is not None and not (k == "interceptors" and not v)}
        if base is None:
            return cls(**given)
        return dataclasses.replace(base, **given) if given else base

    @property
    def selection(self) -> ToolFilter | None:
        """The effective ``ToolFilter`` (``None``: every tool)."""
        return self._filter

    @property
    def gate(self) -> ApprovalGate | None:
        """The approval gate these guards describe (``None`` with ``approval=False``)."""
        return None if self.approval is False else ApprovalGate(self.approval, self.approver)

    @property
    def gated(self) -> bool:
        """Whether calls pass an approval gate."""
        return self.approval is not False

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs: every guard, or an error naming what cannot be written.

        Raises:
            ValueError: a predicate, callable approval mode, an approver or audit log without a
                config form, or an interceptor without ``to_config``.
        """
        out: dict[str, Any] = {}
        if self._filter is not None:
            out["select"] = self._filter.to_config()
        for interceptor in self._described():
            to_config = getattr(interceptor, "to_config", None)
            if to_config is None:
                name = getattr(interceptor, "__qualname__", type(interceptor).__name__)
                raise ValueError(f"interceptor {name} cannot be written to a config; give it a to_config() and "
                                 "register a loader with bridge.guards.register_interceptor, or build it in code")
            out.setdefault("chain", []).append(dict(to_config()))
        for name, default in _PRESENTATION.items():
            value = getattr(self, name)
            if value != default:
                out[name] = list(value) if isinstance(value, tuple) else value
        if isinstance(self.code, CodeLimits):
            out["code"] = self.code.to_config() or True
        return out

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> Guards:
        """Inverse of ``to_config``.

        Raises:
            ConfigError: unknown keys or interceptor kinds.
        """
        known = {"select", "chain", "code", *_PRESENTATION}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown guard keys in the config: {', '.join(unknown)}")
        select = ToolFilter.from_config(data["select"]) if data.get("select") is not None else None
        audit: AuditTrail | str | None = None
        # The chain is the whole truth: a config without an approval entry had no gate.
        approval: ApprovalPolicy | Literal[False] | None = False
        approver: Approver | None = None
        extra: list[Interceptor] = []
        on_failure: OnAuditFailure | None = None
        for item in data.get("chain", []):
            kind = str(item.get("kind"))
            if kind == AuditTrail.kind:
                audit, on_failure = _audit_from_config(item)
            elif kind == ApprovalGate.kind:
                gate = ApprovalGate.from_config(item)
                approval, approver = gate.policy, gate.approver
            elif kind in _LOADERS:
                extra.append(_LOADERS[kind](item))
            else:
                raise ConfigError(f"unknown interceptor kind {kind!r}; known: "
                                  f"{', '.join([AuditTrail.kind, ApprovalGate.kind, *_LOADERS])}")
        presentation: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                        for k, v in data.items() if k in _PRESENTATION}
        return cls(select=select, approval=approval, approver=approver, audit=audit, on_audit_failure=on_failure,
                   interceptors=tuple(extra), code=data.get("code", False), **presentation)

    def _described(self) -> list[Any]:
        """The chain as written to a config (audit first, as configs have always listed it): built
        from the description, nothing opened (a store object connects on first use only)."""
        out: list[Any] = []
        if isinstance(self.audit, AuditTrail):
            out.append(self.audit)
        elif self.audit is not None:
            log = self.audit if isinstance(self.audit, AuditLog) else open_audit_log(self.audit)
            out.append(AuditTrail(log, on_failure=self.on_audit_failure or "refuse"))
        gate = self.gate
        if gate is not None:
            out.append(gate)
        out.extend(self.interceptors)
        return out


class RefusalRecorder(Protocol):
    """Keeps a record of attempts refused before they became calls (``AuditTrail.record_refusal``)."""

    async def __call__(self, call: ToolCall, reason: str, error: BaseException | str) -> None: ...


class OpenGuards:
    """A ``Guards`` at work for one owner (``Guards.open``): the chain, outermost first, and the
    audit store it writes to, held in the owner's ``Resources`` until ``close()``.

    Attributes:
        chain: the interceptors every call runs through.
        trail: the audit trail in it (``None`` without audit).
        recorders: told of attempts refused before they became calls.
    """

    def __init__(self, chain: tuple[Interceptor, ...], trail: AuditTrail | None, resources: Resources,
                 keys: tuple[Hashable, ...]) -> None:
        self.chain = chain
        self.trail = trail
        hooks = [getattr(i, "record_refusal", None) for i in chain]
        self.recorders: tuple[RefusalRecorder, ...] = tuple(hook for hook in hooks if callable(hook))
        self._resources = resources
        self._keys = keys

    async def close(self) -> None:
        """Let go of the audit store (closed when nothing else in the owner holds it)."""
        keys, self._keys = self._keys, ()
        for key in keys:
            await self._resources.release(key)


def _audit_from_config(item: Mapping[str, Any]) -> tuple[AuditTrail | str, OnAuditFailure | None]:
    """An audit config as a destination to open (a plain path or URL), or, when it carries
    settings of its own (redaction, a worker name, a log type its path does not imply), a trail."""
    log = item.get("log") or {}
    plain = set(item) <= {"kind", "log", "on_failure"} and set(log) <= {"type", "path", "url"}
    where = log.get("url") if is_postgres_url(log.get("url")) else log.get("path")
    if plain and isinstance(where, str):
        try:
            implied = getattr(open_audit_log(where), "kind", None)
        except BridgeError:
            implied = None
        if log.get("type") in (None, implied):
            return where, item.get("on_failure")
    trail = AuditTrail.from_config(item)
    return trail, None



_LOADERS: dict[str, Callable[[Mapping[str, Any]], Interceptor]] = {}


def register_interceptor(kind: str, loader: Callable[[Mapping[str, Any]], Interceptor]) -> None:
    """Let ``Guards.from_config`` rebuild interceptors whose ``to_config()`` writes ``{"kind": kind, ...}``."""
    _LOADERS[kind] = loader

