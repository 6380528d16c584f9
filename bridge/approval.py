"""Human approval before a tool call reaches the server: a policy, an approver, one interceptor.

``ApprovalGate(policy, approver)`` is an ``Interceptor`` (``Guards`` builds it). Every adapter runs
interceptors after the arguments were validated against the tool's inputSchema and before the
MCP request is sent, so a reviewer always sees arguments the server would accept, and a denied
call never leaves the process: the model gets ``denied by reviewer: <reason>`` as an error
result and can carry on.

The policy decides *whether* to ask, keyed on the server's name and the tool's names: the MCP
name, the name the agent used (safe, maybe prefixed) and the MCP name as a reader takes it
(invisible characters dropped). Each name is looked up on its own and the strictest answer
wins, so a name can only add a reason to ask: ``send\u200b_email``, shown to the model as
``send_email``, is asked about under a ``send_*: always`` rule, and a laxer rule written for an
alias never exempts the tool behind it.

Default policy: ask for every tool not annotated read-only. Annotations come from the server
and are untrusted hints; a tool without them counts as destructive and is asked about.

The decision travels with the call as a typed value, ``ToolCall.approval`` (a ``Decision``),
passed on with ``dataclasses.replace``: the gate runs outside the audit trail (``Guards.open``
builds it so), so the trail finds the decision on every call it records, whatever happens to
it next. A call the gate stops never reaches the trail, so the gate tells its ``recorders``
(``record_unsent``): a denial, or a review that ended without a decision (cancelled, or a
policy that raised). A decision may also arrive with the call: a caller whose framework asked
a human already (Agent Framework) hands the answer in, and a denial given that way stands.
"""

from __future__ import annotations

import getpass
import inspect
import json
import logging
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any, Literal, Protocol, TextIO, runtime_checkable

import anyio
from anyio.lowlevel import RunVar

from .callbacks import console_input
from .connection import Handler, ToolCall
from .decisions import Decision
from .errors import ConfigError
from .results import CallResult
from .sanitize import as_seen, cell_width, framed, one_line
from .secrets import mask_data

__all__ = [
    "APPROVER_TYPES",
    "PROMPT",
    "ApprovalGate",
    "ApprovalPolicy",
    "Approver",
    "AutoApprove",
    "AutoDeny",
    "CallbackApprover",
    "ConsoleApprover",
    "Decision",
    "Recorder",
    "Rule",
    "approver_from_config",
    "tool_names",
]

logger = logging.getLogger("bridge.approval")

Mode = Literal["always", "never", "annotations"] | Callable[[ToolCall], "bool | Awaitable[bool]"]
"""``always`` ask; ``never`` ask; ``annotations`` ask unless the tool is annotated read-only;
or a callable deciding per call (return True to ask)."""

_MODES = ("always", "never", "annotations")


@dataclass(frozen=True)
class Rule:
    """One approval rule; ``tool``, ``server`` and ``agent`` are globs (``*`` matches anything).

    ``tool`` is matched against each name the call goes by (``tool_names``); the policy takes the
    strictest of what those names lead to.
    """

    mode: Mode
    tool: str = "*"
    server: str = "*"
    agent: str = "*"

    def matches(self, call: ToolCall, name: str | None = None) -> bool:
        """Whether this rule applies to ``call`` under ``name`` (default: any of its names), by
        server and agent."""
        names = tool_names(call) if name is None else (name,)
        return (any(fnmatchcase(n, self.tool) for n in names) and fnmatchcase(call.server, self.server)
                and fnmatchcase(call.agent or "", self.agent))


def tool_names(call: ToolCall) -> tuple[str, ...]:
    """Every name ``call``'s tool goes by: its MCP name, the name the agent used, and the MCP
    name as a reader takes it (``sanitize.as_seen``), without repeats."""
    return tuple(dict.fromkeys((call.mcp_name, call.tool, as_seen(call.mcp_name))))


def _check_mode(mode: Any, where: str) -> None:
    if not (callable(mode) or mode in _MODES):
        raise ConfigError(f"{where}: approval mode must be one of {', '.join(_MODES)} or a callable, not {mode!r}")


class ApprovalPolicy:
    """Decides per call whether a human must approve it.

    For each name the tool goes by (its MCP name, the name the agent used, the MCP name with
    invisible characters dropped) the first matching rule wins, looked up in this order:
    ``rules`` (in the order given), then ``tools`` (an exact name before a glob), then
    ``agents``, then ``default``. When the names lead to different modes the strictest governs
    (``always``, then ``annotations`` and callables (asked when any of them asks), then
    ``never``): a name can add a reason to ask, never take one away.

    ```python
    ApprovalPolicy(tools={"send_email": "always", "check_inbox": "never"},
                   agents={"auditor": "never"},
                   rules=[Rule("always", tool="reply_email", agent="drafter")])
    ```

    Args:
        default: the mode when nothing else matches (``"annotations"``: ask unless read-only).
        tools: MCP name (or glob) -> mode, on every server.
        agents: agent name (or glob) -> mode, for every tool that agent calls.
        rules: fully qualified rules (tool, server, agent), checked first.

    Raises:
        ConfigError: an unknown mode.
    """

    def __init__(self, default: Mode = "annotations", *, tools: Mapping[str, Mode] | None = None,
                 agents: Mapping[str, Mode] | None = None, rules: Sequence[Rule] = ()) -> None:
        _check_mode(default, "default")
        self.default = default
        self.rules = tuple(rules)
        exact = [Rule(m, tool=t) for t, m in (tools or {}).items() if not _is_glob(t)]
        globbed = [Rule(m, tool=t) for t, m in (tools or {}).items() if _is_glob(t)]
        self.tools = dict(tools or {})
        self.agents = dict(agents or {})
        self._chain = (*self.rules, *exact, *globbed, *(Rule(m, agent=a) for a, m in self.agents.items()))
        for rule in self._chain:
            _check_mode(rule.mode, f"rule for tool {rule.tool!r}, agent {rule.agent!r}")

    def mode_for(self, call: ToolCall) -> Mode:
        """The mode governing ``call``: the strictest of those its names lead to (a callable
        asking when any of theirs asks, when more than one could ask)."""
        modes = list({id(m): m for m in (self._mode_for_name(call, n) for n in tool_names(call))}.values())
        if "always" in modes:
            return "always"
        modes = [m for m in modes if m != "never"] or ["never"]
        return modes[0] if len(modes) == 1 else _Strictest(tuple(modes))

    def _mode_for_name(self, call: ToolCall, name: str) -> Mode:
        for rule in self._chain:
            if rule.matches(call, name):
                return rule.mode
        return self.default

    async def requires_approval(self, call: ToolCall) -> bool:
        """Whether ``call`` must be approved before it is sent."""
        return await _asks(self.mode_for(call), call)

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs.

        Raises:
            ValueError: a mode is a callable, which cannot be written down.
        """
        def mode(m: Mode) -> str:
            if not isinstance(m, str):
                raise ValueError("an ApprovalPolicy with callable modes cannot be serialised")
            return m

        out: dict[str, Any] = {"default": mode(self.default)}
        if self.tools:
            out["tools"] = {k: mode(v) for k, v in self.tools.items()}
        if self.agents:
            out["agents"] = {k: mode(v) for k, v in self.agents.items()}
        if self.rules:
            out["rules"] = [{"mode": mode(r.mode), "tool": r.tool, "server": r.server, "agent": r.agent}
                            for r in self.rules]
        return out

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> ApprovalPolicy:
        """Inverse of ``to_config``.

        Raises:
            ConfigError: unknown modes or malformed rules.
        """
        try:
            rules = [Rule(**r) for r in data.get("rules", [])]
        except TypeError as e:
            raise ConfigError(f"malformed approval rule: {e}") from None
        return cls(data.get("default", "annotations"), tools=data.get("tools"), agents=data.get("agents"),
                   rules=rules)

    def __repr__(self) -> str:
        return f"ApprovalPolicy(default={self.default!r}, tools={self.tools!r}, agents={self.agents!r})"


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


async def _asks(mode: Mode, call: ToolCall) -> bool:
    """Whether ``mode`` asks about ``call``."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    if mode == "annotations":
        return not call.annotations.effective_read_only
    assert callable(mode)
    answer = mode(call)
    if inspect.isawaitable(answer):
        answer = await answer
    return bool(answer)


@dataclass(frozen=True)
class _Strictest:
    """Several modes as one: asks when any of them asks (a call's names led to each)."""

    modes: tuple[Mode, ...]

    async def __call__(self, call: ToolCall) -> bool:
        for mode in self.modes:
            if await _asks(mode, call):
                return True
        return False


# -- approvers ---------------------------------------------------------------------------------


@runtime_checkable
class Approver(Protocol):
    """Someone (or something) who decides on a call the policy flagged."""

    async def review(self, call: ToolCall) -> Decision:
        """Approve or deny ``call``. Exceptions count as a denial."""
        ...


class AutoApprove:
    """Approves everything (for unattended runs where the audit trail is the control)."""

    def __init__(self, reviewer: str = "auto") -> None:
        self.reviewer = reviewer

    async def review(self, call: ToolCall) -> Decision:
        """Approve ``call``."""
        return Decision(True, self.reviewer, "auto-approved")

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form (see ``approver_from_config``)."""
        return {"type": "auto_approve", "reviewer": self.reviewer}


class AutoDeny:
    """Denies everything the policy flags (e.g. a read-only deployment)."""

    def __init__(self, reason: str = "this deployment does not allow that tool", reviewer: str = "auto") -> None:
        self.reason = reason
        self.reviewer = reviewer

    async def review(self, call: ToolCall) -> Decision:
        """Deny ``call`` with the configured reason."""
        return Decision(False, self.reviewer, self.reason)

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form (see ``approver_from_config``)."""
        return {"type": "auto_deny", "reviewer": self.reviewer, "reason": self.reason}


ReviewFn = Callable[[ToolCall], "bool | Decision | Awaitable[bool | Decision]"]


class CallbackApprover:
    """Asks a function: sync or async, returning ``True``/``False`` or a full ``Decision``.

    ```python
    async def ask_slack(call: ToolCall) -> bool: ...
    approver = CallbackApprover(ask_slack, reviewer="slack")
    ```
    """

    def __init__(self, fn: ReviewFn, reviewer: str | None = None) -> None:
        self.fn = fn
        self.reviewer: str = reviewer or str(getattr(fn, "__name__", "callback"))

    async def review(self, call: ToolCall) -> Decision:
        """Ask the function; a bare ``False`` becomes the reason "rejected"."""
        answer = self.fn(call)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, Decision):
            return answer
        return Decision(bool(answer), self.reviewer, "" if answer else "rejected")


InputFn = Callable[[str], "str | Awaitable[str]"]

PROMPT = "Approve? [y/N, or type a reason to deny]: "
"""The question every console approval ends with; nothing a server or model wrote can start a
row of the request shown above it, so nothing of theirs can pose as this line."""


class ConsoleApprover:
    """Asks at the terminal and reads the answer without a thread (``bridge.callbacks.console_input``).

    Shows agent, server, tool, its read-only/destructive hints and the arguments as indented
    JSON (secret-looking values redacted), then reads an answer: ``y``/``yes`` approves;
    an empty line or ``n`` denies; any other text denies with that text as the reason.
    Prompts are serialised across every console approver, so parallel tool calls (and several
    agents) are asked one at a time. When there is no one to ask (stdin closed, at its end or
    not a file) the call is denied. Ctrl-C at the prompt cancels the wait like any other await:
    the run ends at once (``KeyboardInterrupt`` from ``asyncio.run``, exit 130 from the CLI).

    With ``queue`` (an approver too, typically ``QueueApprover``), the request is also put on
    the approval queue while the console waits, so a reviewer elsewhere (another terminal, the
    web page) can decide: whichever answers first decides, and the other is withdrawn (the
    console prompt is closed with a line saying who decided; the queued request is marked
    cancelled). Without anybody at the console, the queue alone decides.

    Everything a server or the model wrote (the tool's names, the arguments) has its control,
    bidi and invisible characters shown as escapes (``bridge.sanitize``), and the arguments stand
    behind a ``|`` gutter cut to the terminal's width, so no row of theirs can pose as the
    bridge's own (a forged ``Approve?`` line, an argument drawn over another).

    Args:
        input_fn: the line reader, sync or async (default: ``console_input``, which prints the
            prompt to ``output``).
        output: where the request is printed (default: stderr, so piped stdout stays clean).
        reviewer: recorded as the reviewer (default ``console:<login name>``).
        width: the screen's columns (default: the terminal's, asked each time).
        queue: asked at the same time as the console; the first answer wins.
    """

    def __init__(self, input_fn: InputFn | None = None, output: TextIO | None = None,
                 reviewer: str | None = None, width: int | None = None, *, queue: Approver | None = None) -> None:
        self._input = input_fn
        self._output = output
        self.reviewer = reviewer or f"console:{_login()}"
        self.width = width
        self.queue = queue

    def describe(self, call: ToolCall) -> str:
        """The text shown to the reviewer."""
        width = self.width or shutil.get_terminal_size().columns
        hints = []
        a = call.annotations
        if a.effective_read_only:
            hints.append("read-only")
        elif a.effective_destructive:
            hints.append("destructive" if a.destructive else "may be destructive (no annotations)")
        alias = f" (called as {one_line(call.tool)})" if call.tool != call.mcp_name else ""
        tool = f"{one_line(call.mcp_name)}{alias}{'  [' + ', '.join(hints) + ']' if hints else ''}"
        args = json.dumps(mask_data(call.arguments), indent=2, ensure_ascii=False, sort_keys=True, default=str)
        # A request with no agent behind it is the server's own (sampling): say whose words these are.
        who, author = (f"agent {one_line(call.agent)}", "model") if call.agent else ("the server itself", "server")
        elsewhere = "  (also queued: a reviewer elsewhere may decide first)\n" if self.queue is not None else ""
        return (f"\n[approval needed] {who} wants to call\n"
                f"{_field('server: ', call.server, width)}\n{_field('tool:   ', tool, width)}\n"
                f"  arguments (as the {author} wrote them):\n{framed(args, width)}\n{elsewhere}")

    async def review(self, call: ToolCall) -> Decision:
        """Show the call and read the reviewer's answer (one prompt on the terminal at a time);
        with a ``queue``, the first of the console and the queue to answer decides."""
        async with _terminal_lock():
            out = self._output or sys.stderr
            out.write(self.describe(call))
            out.flush()
            if self.queue is None:
                return await self._ask(out)
            return await self._race(call, self.queue, out)

    async def _ask(self, out: TextIO) -> Decision:
        try:
            answer = await self._read(PROMPT, out)
        except (EOFError, OSError):
            return Decision(False, self.reviewer, "no reviewer at the console (stdin closed)")
        return self._decision(answer)

    async def _race(self, call: ToolCall, queue: Approver, out: TextIO) -> Decision:
        decided: list[tuple[str, Decision]] = []
        async with anyio.create_task_group() as group:

            async def console() -> None:
                try:
                    answer = await self._read(PROMPT, out)
                except (EOFError, OSError):
                    out.write("\n  nobody at the console: waiting for the queue\n")
                    out.flush()
                    return  # the queue alone decides
                decided.append(("console", self._decision(answer)))
                group.cancel_scope.cancel()

            async def queued() -> None:
                decided.append(("queue", await queue.review(call)))
                group.cancel_scope.cancel()

            group.start_soon(console)
            group.start_soon(queued)
        where, decision = decided[0]
        if where == "queue":
            verdict = "approved" if decision.approved else "denied"
            out.write(f"\n  decided in the queue: {verdict} by {one_line(decision.reviewer)}"
                      f"{': ' + one_line(decision.reason) if decision.reason else ''}\n")
            out.flush()
        return decision

    def _decision(self, answer: str) -> Decision:
        text = answer.strip()
        if text.lower() in ("y", "yes"):
            return Decision(True, self.reviewer, "approved at the console")
        if text.lower() in ("", "n", "no"):
            return Decision(False, self.reviewer, "denied at the console")
        return Decision(False, self.reviewer, text)

    async def _read(self, prompt: str, out: TextIO) -> str:
        if self._input is None:
            return await console_input(prompt, out)
        answer = self._input(prompt)
        if inspect.isawaitable(answer):
            answer = await answer
        return str(answer)

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form (a custom ``input_fn``/``output`` and the ``queue`` are not kept)."""
        return {"type": "console", "reviewer": self.reviewer}


_TERMINAL: RunVar[anyio.Lock] = RunVar("bridge_console_lock")


def _terminal_lock() -> anyio.Lock:
    # One terminal, so one lock for every ConsoleApprover (per event loop: anyio locks are
    # not shared across loops), or two agents' prompts would interleave.
    try:
        return _TERMINAL.get()
    except LookupError:
        lock = anyio.Lock()
        _TERMINAL.set(lock)
        return lock


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "operator"


def _field(label: str, value: str, width: int) -> str:
    """``  label value`` on one row, or, when the value would not fit, the label alone and the
    value behind the gutter (a terminal wrapping it would start a row with foreign text)."""
    row = f"  {label}{one_line(value)}"
    if cell_width(row) <= width:
        return row
    return f"  {label.rstrip()}\n{framed(one_line(value), width)}"


APPROVER_TYPES: dict[str, Callable[[Mapping[str, Any]], Approver]] = {}
"""Approver types of modules above this one, by ``to_config`` type: how ``approver_from_config``
rebuilds them (``queue``: ``bridge.approvals.QueueApprover``, added when that package loads)."""


def approver_from_config(data: Mapping[str, Any]) -> Approver:
    """Rebuild an approver written by its ``to_config``.

    Raises:
        ConfigError: an unknown approver type (callbacks cannot be serialised).
    """
    kind = data.get("type")
    if isinstance(kind, str) and kind in APPROVER_TYPES:
        return APPROVER_TYPES[kind](data)
    if kind == "auto_approve":
        return AutoApprove(str(data.get("reviewer", "auto")))
    if kind == "auto_deny":
        return AutoDeny(str(data.get("reason", "this deployment does not allow that tool")),
                        str(data.get("reviewer", "auto")))
    if kind == "console":
        return ConsoleApprover(reviewer=data.get("reviewer"))
    raise ConfigError(f"unknown approver type {kind!r}; expected auto_approve, auto_deny, console"
                      f"{''.join(', ' + k for k in APPROVER_TYPES)}")


# -- the interceptor ---------------------------------------------------------------------------


@runtime_checkable
class Recorder(Protocol):
    """Keeps a record of attempts the gate stopped before they were sent (the audit trail is one)."""

    async def record_unsent(self, call: ToolCall, outcome: Literal["denied", "exception"], error: str) -> None:
        """Record ``call``, stopped by the gate: ``denied`` (``call.approval`` says by whom and why)
        or ``exception`` (its review ended without a decision; ``error`` says how)."""
        ...


class ApprovalGate:
    """The approval ``Interceptor``: asks when the policy says so; a denial never reaches the server.

    The decision goes on with the call (``ToolCall.approval``). A call that arrives already
    denied is denied without asking anyone; one that arrives approved is still reviewed (only
    an approver that reports a caller's own answer, like Agent Framework's, takes it as given).

    Args:
        policy: when to ask (default ``ApprovalPolicy()``).
        approver: who answers (default ``ConsoleApprover()``).
        recorders: told of every call the gate stops (``Guards.open`` passes the audit trail).
    """

    kind = "approval"

    def __init__(self, policy: ApprovalPolicy | None = None, approver: Approver | None = None, *,
                 recorders: Sequence[Recorder] = ()) -> None:
        self.policy = policy or ApprovalPolicy()
        self.approver: Approver = approver if approver is not None else ConsoleApprover()
        self.recorders = tuple(recorders)

    async def __call__(self, call: ToolCall, call_next: Handler) -> CallResult:
        try:
            decision = await self.decide(call)
        except BaseException as e:
            # Stopped before anyone decided (cancelled while a reviewer thought, a policy that raised).
            error = "cancelled" if isinstance(e, anyio.get_cancelled_exc_class()) else f"{e}" or type(e).__name__
            await self._tell(call, "exception", f"no approval decision: {error}")
            raise
        call = replace(call, approval=decision)
        if decision.approved:
            return await call_next(call)
        result = CallResult.error(f"denied by reviewer: {decision.reason or 'no reason given'}",
                                  server=call.server, tool=call.mcp_name)
        await self._tell(call, "denied", result.text)
        return result

    async def decide(self, call: ToolCall) -> Decision:
        """The decision on ``call``: the denial it arrived with, ``not required`` by the policy, or
        the approver's answer (an approver that raises denies: a broken approver fails closed)."""
        if call.approval is not None and not call.approval.approved:
            return call.approval
        if not await self.policy.requires_approval(call):
            return Decision(True, "policy", "not required", required=False)
        try:
            return await self.approver.review(call)
        except Exception as e:
            # The model should learn why, and the call must not pass.
            logger.exception("approver failed on %s/%s", call.server, call.mcp_name)
            return Decision(False, type(self.approver).__name__, f"the approver failed: {e}")

    async def _tell(self, call: ToolCall, outcome: Literal["denied", "exception"], error: str) -> None:
        # Shielded: a call cancelled while under review is exactly what the trail must keep.
        with anyio.CancelScope(shield=True):
            for recorder in self.recorders:
                await recorder.record_unsent(call, outcome, error)

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs.

        Raises:
            ValueError: the policy or approver holds callables.
        """
        to_config = getattr(self.approver, "to_config", None)
        if to_config is None:
            raise ValueError(f"approver {type(self.approver).__name__} cannot be serialised; "
                             "use ConsoleApprover, AutoApprove or AutoDeny in component configs")
        return {"kind": self.kind, "policy": self.policy.to_config(), "approver": to_config()}

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> ApprovalGate:
        """Inverse of ``to_config``.

        Raises:
            ConfigError: malformed policy or approver.
        """
        return cls(ApprovalPolicy.from_config(data.get("policy", {})), approver_from_config(data.get("approver", {})))

    def __repr__(self) -> str:
        return f"ApprovalGate({self.policy!r}, {type(self.approver).__name__})"
