"""One program run: the sandbox driven call by call, every tool call through the agent's guarded path.

The program pauses at each call it makes; the call is answered here by the routes (the same path
a direct call takes: validation, selection, pins, approval by hints with the exact arguments,
audit under the agent's name, timeouts), its ``Step`` carrying the program's hash and the call's
position in it. What comes back into the program:

* the result: its structured content when the tool has some, else its text;
* an ``isError`` result: ``ToolError`` (a ``RuntimeError``), its text as the message;
* a denial: ``PermissionError("denied by reviewer: ...")``;
* a refused argument: ``ValueError`` naming the argument and the rule;
* a tool this agent does not have: ``NameError``; one the lock file withholds: ``PermissionError``.

The program may catch any of them and carry on. A limit ends it (tool calls, CPU time, wall
time, memory, recursion), as does cancellation, which kills the worker mid-turn; the model reads
one line saying what stopped it and which calls went out before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types

from ..code_limits import CodeLimits
from ..decisions import Decision
from ..errors import BridgeError, CallTimeout, CatalogueDrift, InvalidArguments, ToolNotFound
from ..results import CallResult, block_text, render
from ..routes import Routes
from ..steps import Step
from .sandbox import Sandbox, monty
from .stubs import CALL_TOOL, FIND_TOOLS, Stubs

__all__ = ["DENIED", "RUN_PYTHON", "Program"]

RUN_PYTHON = "run_python"
DENIED = "denied by reviewer:"
"""How a denial's text starts (``bridge.approval``): it becomes a ``PermissionError`` in the program."""

# Defined in the session before the program, so ``except ToolError`` works (the sandbox has no
# exception subclasses of its own; a tool's error arrives as this RuntimeError).
_PRELUDE = "ToolError = RuntimeError"
_UNSUPPORTED = ("the sandbox runs a subset of Python (no class inheritance, generators or yield, match, "
                "imports beyond json, re, math, datetime, asyncio and typing); rewrite that part")


@dataclass
class _Call:
    position: int
    tool: str
    outcome: str = "pending"


class _Stopped(Exception):
    """The program was ended by a limit (the message says which)."""


class Program:
    """One run of ``code`` against the routes, with ``stubs`` naming what it may call.

    Args:
        code: the program.
        routes: the agent's routes (every tool call goes to ``routes.call``).
        stubs: the tools the program sees, by Python name.
        limits: what it may spend.
        find: answers ``find_tools(query, limit)`` (a deferred catalogue), else ``None``.
        step: the model's step that asked for the run; inner calls carry it with the program's hash.
        timeout: each inner call's timeout (the adapter's), ``None`` for the connection's default.
        max_chars: how much of the output the model is shown.
    """

    def __init__(self, code: str, *, routes: Routes, stubs: Stubs, limits: CodeLimits,
                 find: Any = None, step: Step | None = None, timeout: float | None = None,
                 max_chars: int) -> None:
        self.code = code
        self.routes = routes
        self.stubs = stubs
        self.limits = limits
        self.find = find
        self.hash = hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        self.step = dataclasses.replace(step or Step("code"), program=self.hash)
        self.timeout = timeout
        self.max_chars = max_chars
        self.calls: list[_Call] = []
        self._pending: dict[int, tuple[_Call | None, str, tuple[Any, ...], dict[str, Any]]] = {}
        self._m = monty()

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> CallResult:
        """Run the program to its end, a limit, or an error; never raises for what the program did.

        Raises:
            ConfigError: the sandbox is not installed.
        """
        m, limits = self._m, self.limits
        resource_limits: dict[str, Any] = {
            "max_feed_duration_secs": limits.cpu_seconds, "max_memory": limits.memory_mb * 1024 * 1024,
            "max_recursion_depth": limits.recursion, "max_suspensions": limits.tool_calls * 2 + 100}
        sandbox = Sandbox(resource_limits, self.stubs.checker if limits.type_check else None)
        out = m.CollectString(max_bytes=limits.output_bytes)
        value: Any = None
        failure: str | None = None
        try:
            with anyio.move_on_after(limits.wall_seconds if limits.wall_seconds else float("inf")) as wall:
                await sandbox.open()
                session = sandbox.session
                await sandbox.turn(lambda: session.feed_run(_PRELUDE, skip_type_check=True, print_callback=out))
                snap = await sandbox.turn(lambda: session.feed_start(self.code, print_callback=out))
                while not isinstance(snap, m.MontyComplete):
                    snap = await self._answer(sandbox, snap)
                value = snap.output
            if wall.cancelled_caught:
                sandbox.kill()
                failure = f"stopped: the wall-time limit ({limits.wall_seconds:g} s) was reached"
        except _Stopped as stop:
            failure = str(stop)
        except m.MontyError as e:
            failure = self._explain(e)
        finally:
            await sandbox.close()
        return self._result(out.output, value, failure)

    async def _answer(self, sandbox: Sandbox, snap: Any) -> Any:
        m = self._m
        if isinstance(snap, m.FunctionSnapshot):
            if snap.is_os_function:
                # Files, sockets, the clock's host calls: Monty's default answer (PermissionError,
                # ModuleNotFoundError ...). Nothing of the host is reachable from here.
                return await sandbox.turn(snap.resume_not_handled)
            name, args, kwargs = str(snap.function_name), tuple(snap.args), dict(snap.kwargs)
            call = None
            if name != FIND_TOOLS:
                if len(self.calls) >= self.limits.tool_calls:
                    raise _Stopped(f"stopped: the tool-call limit ({self.limits.tool_calls}) was reached "
                                   f"when the program asked for another call ({_called(name, args)})")
                call = _Call(len(self.calls), _called(name, args))
                self.calls.append(call)
            self._pending[snap.call_id] = (call, name, args, kwargs)
            return await sandbox.turn(lambda: snap.resume({"future": ...}))
        if isinstance(snap, m.FutureSnapshot):
            # One at a time, in the order the program asked: reviewers see calls in program order.
            results = {}
            for call_id in snap.pending_call_ids:
                results[call_id] = await self._perform(*self._pending.pop(call_id))
            return await sandbox.turn(lambda: snap.resume(results))
        # A name the program reads but never defined: it does not exist (tools are called, not read).
        return await sandbox.turn(snap.resume)

    # -- one call -----------------------------------------------------------------------------

    async def _perform(self, call: _Call | None, name: str, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> dict[str, Any]:
        if call is None:
            return self._find(args, kwargs)
        if name == CALL_TOOL and self.find is not None:
            try:
                tool, arguments = _call_tool_args(args, kwargs)
            except TypeError as e:
                return _raise(call, "TypeError", str(e))
        else:
            stubbed = self.stubs.tools.get(name)
            if stubbed is None:
                return _raise(call, "NameError", f"name {name!r} is not defined: call one of the tools in the stubs")
            if args:
                return _raise(call, "TypeError", f"{name}() takes keyword arguments only")
            tool = stubbed.entry.name
            wire = {p.py_name: p.name for p in stubbed.entry.compiled.parameters}
            arguments = {wire.get(k, k): v for k, v in kwargs.items()}
        step = dataclasses.replace(self.step, position=call.position)
        try:
            result = await self.routes.call(tool, arguments, timeout=self.timeout, step=step)
        except InvalidArguments as e:
            return _raise(call, "ValueError", str(e), "refused")
        except ToolNotFound as e:
            return _raise(call, "NameError", str(e), "not found")
        except CatalogueDrift as e:
            return _raise(call, "PermissionError", str(e), "withheld")
        except CallTimeout as e:
            return _raise(call, "TimeoutError", str(e), "timed out")
        except BridgeError as e:
            return _raise(call, "RuntimeError", str(e), "failed")
        if result.is_error:
            text = result.text or "the tool reported an error"
            if text.startswith(DENIED):
                return _raise(call, "PermissionError", text, "denied")
            return _raise(call, "RuntimeError", text, "error")
        call.outcome = "ok"
        value = result.structured if result.structured is not None else "\n".join(map(block_text, result.content))
        return {"return_value": value}

    def _find(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.find is None:
            return {"exc_type": "NameError", "message": f"name {FIND_TOOLS!r} is not defined"}
        query = kwargs.get("query", args[0] if args else "")
        limit = kwargs.get("limit", args[1] if len(args) > 1 else 5)
        if not isinstance(query, str) or not isinstance(limit, int) or not 1 <= limit <= 20:
            return {"exc_type": "TypeError", "message": "find_tools(query: str, limit: int = 5), limit 1..20"}
        return {"return_value": self.find(query, limit)}

    # -- what the model reads -----------------------------------------------------------------

    def _explain(self, e: Any) -> str:
        m, limits = self._m, self.limits
        if isinstance(e, m.MontySyntaxError):
            return f"{e.display('type-msg')}{_line(e)}: fix the program and run it again"
        if isinstance(e, m.MontyTypingError):
            return ("the program does not type-check against the tool stubs; fix these and run it again:\n"
                    + str(e.display()).strip())
        if isinstance(e, m.MontyCrashedError):
            return f"stopped: the sandbox ended ({e}); run the program again"
        inner = e.exception() if isinstance(e, m.MontyRuntimeError) else None
        message = str(inner) if inner is not None else str(e)
        if isinstance(inner, MemoryError) and "limit" in message:
            return f"stopped: the memory limit ({limits.memory_mb} MB) was exceeded"
        if isinstance(inner, TimeoutError) and "limit" in message:
            return f"stopped: the CPU-time limit ({limits.cpu_seconds:g} s) was exceeded"
        if isinstance(inner, RecursionError):
            return f"stopped: the recursion limit ({limits.recursion} frames) was exceeded{_line(e)}"
        if isinstance(inner, NotImplementedError) and "does not yet support" in message:
            return f"unsupported Python{_line(e)}: {message}; {_UNSUPPORTED}"
        shown = e.display("type-msg") if isinstance(e, m.MontyRuntimeError) else message
        return f"the program raised {shown}{_line(e)}"

    def _ran(self) -> str:
        if not self.calls:
            return "no tool call went out"
        # A call still pending when the program ended was cut off in flight (a limit, a cancellation).
        outcomes = [(c.tool, "cancelled" if c.outcome == "pending" else c.outcome) for c in self.calls]
        counts = Counter(tool + ("" if outcome == "ok" else f" ({outcome})") for tool, outcome in outcomes)
        listed = ", ".join(f"{k} x{n}" if n > 1 else k for k, n in counts.items())
        n = len(self.calls)
        return f"{n} tool call{'s' if n != 1 else ''} before it: {listed}"

    def _result(self, printed: str, value: Any, failure: str | None) -> CallResult:
        shown_value = _jsonable(value)
        shown = printed.rstrip("\n") if printed.strip() else ""
        # A failure comes first: adapters flag it ("Error: ..."), and the model reads why before what.
        if failure is not None:
            text = f"{failure} ({self._ran()}; program {self.hash})"
            text += f"\nprinted before it:\n{shown}" if shown else ""
        else:
            parts = [shown] if shown else []
            if shown_value is not None:
                parts.append("result: " + json.dumps(shown_value, ensure_ascii=False, default=str))
            text = "\n".join(parts) or "(the program printed nothing and returned None)"
        content = (types.TextContent(type="text", text=text),)
        structured = {"output": printed, "value": shown_value, "program": self.hash,
                      "calls": [{"position": c.position, "tool": c.tool,
                                 "outcome": "cancelled" if c.outcome == "pending" else c.outcome} for c in self.calls]}
        if failure is not None:
            structured["error"] = failure
        return CallResult(server="bridge", tool=RUN_PYTHON, content=content, structured=structured,
                          is_error=failure is not None, text=render(content, max_chars=self.max_chars))


def _called(name: str, args: tuple[Any, ...]) -> str:
    if name == CALL_TOOL and args and isinstance(args[0], str):
        return args[0]
    return name


def _raise(call: _Call, exc_type: str, message: str, outcome: str = "refused") -> dict[str, Any]:
    call.outcome = outcome
    return {"exc_type": exc_type, "message": message}


def _call_tool_args(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    given = dict(zip(("name", "arguments"), args, strict=False)) | dict(kwargs)
    name, arguments = given.get("name"), given.get("arguments", {})
    if not isinstance(name, str) or not isinstance(arguments, dict) or set(given) - {"name", "arguments"}:
        raise TypeError("call_tool(name: str, arguments: dict)")
    return name, arguments


def _line(e: Any) -> str:
    try:
        frames = e.traceback()
    except Exception:
        return ""
    return f" (line {int(frames[-1].line)})" if frames else ""


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return repr(value)


def denied_result(decision: Decision) -> CallResult:
    """``run_python`` refused as a whole by a framework's own approval request."""
    return CallResult.error(f"{DENIED} {decision.reason or 'no reason given'}", server="bridge", tool=RUN_PYTHON)
