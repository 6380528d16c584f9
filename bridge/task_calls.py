"""Tool calls that run as MCP tasks: create the task, poll it at the server's pace, cancel, resume.

A server may answer a long ``tools/call`` with a task handle instead of the result; the client
then polls until the task ends. Both protocol eras are spoken:

- 2025-11-25 (experimental tasks): the client asks for a task by adding ``task: {ttl}`` to
  ``tools/call`` when the tool's ``execution.taskSupport`` allows it; it polls ``tasks/get``,
  fetches the outcome with ``tasks/result`` (which also carries the server's own requests,
  elicitation say, while the task waits for input) and cancels with ``tasks/cancel``.
- 2026-07-28, the ``io.modelcontextprotocol/tasks`` extension (SEP-2663): the client declares the
  extension on every request and the server decides per call; a ``tools/call`` may answer
  ``resultType: "task"``, ``tasks/get`` carries the result or error inline, input the task waits
  for is answered with ``tasks/update``, and ``tasks/cancel`` cancels.

``TaskRun`` drives one call's task, whichever era: it honours ``pollIntervalMs``, reports each
status change as progress, treats a task past its TTL as gone (one line naming the task), and
sends ``tasks/cancel`` when the call is cancelled or outlives its timeout. It keeps the task id, so
a session whose connection dropped mid-task resumes polling the same task instead of calling
the tool again. The result reaches the caller as an ordinary ``CallToolResult`` whose ``_meta``
names the task (``io.modelcontextprotocol/related-task``), so everything above sees one call.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.shared.dispatcher import CallOptions, ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ConfigDict, TypeAdapter

from .errors import CallTimeout, ProtocolError
from .sanitize import one_line
from .secrets import clip, dataclass_repr

__all__ = ["RELATED_TASK", "TASKS_EXTENSION", "TERMINAL", "TaskRun", "TaskState", "TasksExtension", "cancel_task",
           "get_task", "related_task", "task_wanted"]

logger = logging.getLogger("bridge.task_calls")

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
"""The 2026-07-28 tasks extension's identifier (SEP-2663)."""

RELATED_TASK = "io.modelcontextprotocol/related-task"
"""The ``_meta`` key naming the task a result came from (both eras)."""

TERMINAL = frozenset({"completed", "failed", "cancelled"})

# A server that suggests no interval (or a silly one) is polled at this pace, within these bounds.
_DEFAULT_POLL = 1.0
_MIN_POLL = 0.05
_MAX_POLL = 30.0
# ``tasks/cancel`` on the way out of a cancelled call gets this long, shielded.
_CANCEL_SECONDS = 5.0


_INPUT_REQUEST: TypeAdapter[types.InputRequest] = TypeAdapter(types.InputRequest)

# -- the wire ------------------------------------------------------------------------------------

class _TaskIdParams(types.RequestParams):
    task_id: str


class _GetTask(types.Request[_TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: _TaskIdParams
    name_param = "taskId"  # the 2026 wire mirrors it into Mcp-Name


class _CancelTask(types.Request[_TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: _TaskIdParams
    name_param = "taskId"


class _TaskPayload(types.Request[_TaskIdParams, Literal["tasks/result"]]):
    method: Literal["tasks/result"] = "tasks/result"
    params: _TaskIdParams


class _UpdateParams(_TaskIdParams):
    input_responses: dict[str, Any]


class _UpdateTask(types.Request[_UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: _UpdateParams
    name_param = "taskId"


class _WireTask(types.Result):
    """A task as either era sends it (2025: ``ttl``/``pollInterval``; 2026: ``ttlMs``/``pollIntervalMs``)."""

    model_config = ConfigDict(extra="allow")

    task_id: str
    status: str
    status_message: str | None = None
    ttl: int | None = None
    ttl_ms: int | None = None
    poll_interval: int | None = None
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = None


class CreatedTask(types.Result):
    """A 2026 ``tools/call`` answered with a task (``resultType: "task"``): the claim's model."""

    model_config = ConfigDict(extra="allow")

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    status_message: str | None = None
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


@dataclass(frozen=True)
class TaskState:
    """What the server last said about a task.

    ``ttl`` and ``poll_interval`` are seconds (``None``: unlimited / not suggested).
    """

    task_id: str
    status: str
    message: str | None = None
    ttl: float | None = None
    poll_interval: float | None = None

    __repr__ = dataclass_repr  # the server's status message may quote a secret a session knows

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def describe(self) -> str:
        """``task ID: status (message)`` for a human, the server's words made safe."""
        # Masked, then cut (a cut first could leave part of a secret readable), then escaped (a cut
        # never splits an escape): the server's words stay one inert line.
        said = f" ({one_line(clip(self.message, 200))})" if self.message else ""
        return f"task {one_line(clip(self.task_id, 80))}: {one_line(clip(self.status, 40)).replace('_', ' ')}{said}"


def _state(task: _WireTask | CreatedTask | types.Task) -> TaskState:
    ttl = getattr(task, "ttl_ms", None)
    if ttl is None:
        ttl = getattr(task, "ttl", None)
    poll = getattr(task, "poll_interval_ms", None)
    if poll is None:
        poll = getattr(task, "poll_interval", None)
    return TaskState(task.task_id, task.status, task.status_message,
                     ttl / 1000 if isinstance(ttl, int | float) else None,
                     poll / 1000 if isinstance(poll, int | float) else None)


def _modern(session: ClientSession) -> bool:
    return session.protocol_version in MODERN_PROTOCOL_VERSIONS


async def get_task(session: ClientSession, task_id: str, *, timeout: float | None = None) -> _WireTask:
    """``tasks/get``: the task's state (and, on 2026 connections, its outcome once it ended)."""
    return await session.send_request(_GetTask(params=_TaskIdParams(task_id=task_id)), _WireTask,
                                      request_read_timeout_seconds=timeout)


async def cancel_task(session: ClientSession, task_id: str, *, timeout: float | None = None) -> None:
    """``tasks/cancel``: ask the server to stop the task (cooperative: it may still finish)."""
    await session.send_request(_CancelTask(params=_TaskIdParams(task_id=task_id)), types.EmptyResult,
                               request_read_timeout_seconds=timeout)


async def task_outcome(session: ClientSession, task: _WireTask, *, timeout: float | None, server: str | None = None,
                       tool: str | None = None) -> types.CallToolResult:
    """The ``CallToolResult`` of an ended (or, 2025, input-waiting) task.

    Raises:
        MCPError: the task failed with a JSON-RPC error.
        ProtocolError: the task was cancelled, or ended without a result.
    """
    if task.status == "cancelled":
        raise ProtocolError(f"{_state(task).describe()}: the task was cancelled before it finished",
                            code=types.INTERNAL_ERROR, server=server, tool=tool)
    if not _modern(session):
        # tasks/result blocks until the task ends, and carries the server's requests meanwhile.
        result = await session.send_request(_TaskPayload(params=_TaskIdParams(task_id=task.task_id)),
                                            types.CallToolResult, request_read_timeout_seconds=timeout)
    elif task.status == "failed":
        error = task.error or {}
        code = error.get("code")
        raise MCPError(code if isinstance(code, int) else types.INTERNAL_ERROR,
                       str(error.get("message") or f"task {task.task_id} failed"))
    elif task.result is None:
        raise ProtocolError(f"{_state(task).describe()}: the task ended without a result", code=types.INTERNAL_ERROR,
                            server=server, tool=tool)
    else:
        result = types.CallToolResult.model_validate(task.result, by_name=False)
    meta = dict(result.meta or {})
    meta[RELATED_TASK] = {"taskId": task.task_id}
    return result.model_copy(update={"meta": meta})


# -- one call's task -----------------------------------------------------------------------------

class TaskRun:
    """One tool call that may become a task: creates it (2025) or adopts it (2026), then follows it.

    Args:
        server, tool: for messages.
        timeout: seconds the whole call may take, polls included; then the task is cancelled.
        request_timeout: seconds each ``tasks/*`` request may take.
        progress: told of every status change, as ``(polls, None, "task ID: status (message)")``.
        cancel: send ``tasks/cancel`` when the call is cancelled or times out (else the task is
            left running, to be resumed by its id).
        running: the session's table of tasks in flight, by id (kept current by this run).
    """

    def __init__(self, server: str, tool: str | None, *, timeout: float, request_timeout: float,
                 progress: ProgressFnT | None = None, cancel: bool = True,
                 running: dict[str, TaskState] | None = None) -> None:
        self.server = server
        self.tool = tool
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.progress = progress
        self.cancel = cancel
        self.running = running if running is not None else {}
        self.state: TaskState | None = None
        self.deadline = time.monotonic() + timeout  # the event loop's clock too (asyncio, trio)
        self._ttl_start: float | None = None
        self._polls = 0
        self._answered: set[str] = set()

    @property
    def task_id(self) -> str | None:
        return self.state.task_id if self.state is not None else None

    async def _seen(self, state: TaskState) -> None:
        changed = self.state is None or (state.status, state.message) != (self.state.status, self.state.message)
        if self._ttl_start is None:
            self._ttl_start = time.monotonic()
        self.state = state
        if state.done:
            self.running.pop(state.task_id, None)
        else:
            self.running[state.task_id] = state
        if changed and self.progress is not None:
            self._polls += 1
            await self.progress(float(self._polls), None, state.describe())

    def _error(self, detail: str) -> CallTimeout:
        return CallTimeout(detail, timeout=self.timeout, server=self.server, tool=self.tool)

    def _check_time(self) -> None:
        state = self.state
        now = time.monotonic()
        assert state is not None
        if state.ttl is not None and self._ttl_start is not None and now > self._ttl_start + state.ttl:
            raise self._error(f"{state.describe()}: its time-to-live of {state.ttl:g}s passed before it finished; "
                              "the server may have discarded it")
        if now >= self.deadline:
            raise TimeoutError  # follow() cancels the task and says so

    def _pause(self) -> float:
        assert self.state is not None
        suggested = self.state.poll_interval
        pause = _DEFAULT_POLL if suggested is None or not math.isfinite(suggested) else suggested
        return min(max(pause, _MIN_POLL), _MAX_POLL, max(self.deadline - time.monotonic(), 0.0))

    async def adopt(self, created: CreatedTask | types.Task) -> None:
        """The server answered the call with this task."""
        state = _state(created)
        logger.info("server %s runs %s as task %s", self.server, self.tool, state.task_id)
        await self._seen(state)

    async def resume(self, session: ClientSession, task_id: str) -> types.CallToolResult:
        """Follow a task known only by its id (one an earlier call or process left running).

        Raises:
            as ``follow``; ``MCPError`` from ``tasks/get`` when the server does not know the task.
        """
        task = await get_task(session, task_id, timeout=self.request_timeout)
        await self._seen(_state(task))
        return await self.follow(session, task)

    async def follow(self, session: ClientSession, first: _WireTask | None = None) -> types.CallToolResult:
        """Poll the adopted task until it ends and return its result (cancelling it on the way
        out when the call is cancelled or times out, if ``cancel``). ``first``: its state just read.

        Raises:
            CallTimeout: the call's timeout or the task's TTL passed first.
            ProtocolError: the task was cancelled or ended without a result.
            MCPError: the task failed, or a ``tasks/*`` request did (translated by the session).
        """
        try:
            with anyio.fail_after(max(self.deadline - time.monotonic(), 0.0)):
                return await self._poll(session, first)
        except TimeoutError:
            await self._cancel(session)
            assert self.state is not None
            raise self._error(f"{self.state.describe()}: not finished within {self.timeout:g}s") from None
        except CallTimeout:  # its TTL passed: the server may have discarded it already
            if self.state is not None:
                self.running.pop(self.state.task_id, None)
            raise
        except anyio.get_cancelled_exc_class():
            await self._cancel(session)
            raise

    async def _poll(self, session: ClientSession, task: _WireTask | None) -> types.CallToolResult:
        assert self.state is not None
        while True:
            if task is not None and (task.status in TERMINAL or (task.status == "input_required"
                                                                   and not _modern(session))):
                return await task_outcome(session, task, timeout=max(self.deadline - time.monotonic(), 0.01),
                                          server=self.server, tool=self.tool)
            if task is not None and task.status == "input_required" and task.input_requests:
                await self._answer(session, task)
            self._check_time()
            await anyio.sleep(self._pause())
            task = await get_task(session, self.state.task_id, timeout=self.request_timeout)
            await self._seen(_state(task))

    async def _answer(self, session: ClientSession, task: _WireTask) -> None:
        """Answer what a 2026 task waits for through the client's callbacks (each key once)."""
        responses: dict[str, Any] = {}
        for key, raw in (task.input_requests or {}).items():
            if key in self._answered:
                continue
            self._answered.add(key)
            request: types.InputRequest = _INPUT_REQUEST.validate_python(raw, by_name=False)
            context = ClientRequestContext(session=session, request_id=key,
                                           meta=request.params.meta if request.params else None)
            answer = await session.dispatch_input_request(context, request)
            responses[key] = answer.model_dump(by_alias=True, mode="json", exclude_none=True)
        if responses:
            await session.send_request(_UpdateTask(params=_UpdateParams(task_id=task.task_id,
                                                                       input_responses=responses)),
                                       types.EmptyResult, request_read_timeout_seconds=self.request_timeout)

    async def _cancel(self, session: ClientSession) -> None:
        state = self.state
        if state is None or state.done:
            return
        if not self.cancel:
            logger.info("left %s running on server %s", state.describe(), self.server)
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(min(_CANCEL_SECONDS, self.request_timeout)):
            try:
                await cancel_task(session, state.task_id, timeout=self.request_timeout)
                self.running.pop(state.task_id, None)
                logger.info("cancelled %s on server %s", state.describe(), self.server)
            except Exception as e:  # the call's own outcome matters more than the courtesy
                logger.info("could not cancel %s on server %s: %r", state.describe(), self.server, e)


current_run: contextvars.ContextVar[TaskRun | None] = contextvars.ContextVar("bridge_task_run", default=None)
"""The task run of the call being made in this context, for the 2026 claim to adopt a task into."""


async def create_task(session: ClientSession, run: TaskRun, name: str, arguments: Mapping[str, Any],
                      meta: Mapping[str, Any] | None) -> types.CallToolResult:
    """A 2025-11-25 ``tools/call`` asking for a task, followed to its end.

    The SDK types the experimental ``task`` parameter but does not drive it (its ``tools/call``
    answer would be read as a plain result), so the request goes out on its dispatcher with the
    session's usual stamp. A server that answers with a plain result is taken at its word.
    """
    params = types.CallToolRequestParams(name=name, arguments=dict(arguments),
                                         task=types.TaskMetadata(ttl=int(run.timeout * 1000)),
                                         _meta=dict(meta) if meta else None)  # type: ignore[arg-type]
    data = types.CallToolRequest(params=params).model_dump(by_alias=True, mode="json", exclude_none=True)
    opts: CallOptions = {"timeout": run.timeout}
    session._stamp(data, opts)  # the SDK's per-era headers and _meta
    raw = await session._dispatcher.send_raw_request(data["method"], data["params"], opts)
    if isinstance(raw, Mapping) and "task" in raw:
        created = types.CreateTaskResult.model_validate(raw, by_name=False)
        await run.adopt(created.task)
        return await run.follow(session)
    result = types.CallToolResult.model_validate(raw, by_name=False)
    if not result.is_error:
        await session.validate_tool_result(name, result)
    return result


async def _resolve(created: CreatedTask, ctx: ClaimContext) -> types.CallToolResult:
    run = current_run.get()
    if run is None:  # a call made outside a session's call path: follow it all the same
        timeout = ctx.read_timeout_seconds or 180.0
        run = TaskRun("", ctx.tool_name, timeout=timeout, request_timeout=timeout)
    await run.adopt(created)
    return await run.follow(ctx.session)


class TasksExtension(ClientExtension):
    """Declares the 2026 tasks extension and follows every task a ``tools/call`` answers with."""

    identifier = TASKS_EXTENSION

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return (ResultClaim(result_type="task", model=CreatedTask, resolve=_resolve),)


def task_wanted(tool: types.Tool | None, opted_in: Sequence[str], server_offers: bool) -> bool:
    """Whether a 2025-11-25 call of ``tool`` should ask for a task.

    A tool whose ``execution.taskSupport`` is ``"required"`` always does (it runs no other way);
    an ``"optional"`` one when its name matches one of ``opted_in`` (``fnmatch`` globs, ``"*"``
    for all) and the server declares task-augmented ``tools/call``.
    """
    support = tool.execution.task_support if tool is not None and tool.execution is not None else None
    if support == "required":
        return True
    return (support == "optional" and server_offers and tool is not None
            and any(fnmatchcase(tool.name, pattern) for pattern in opted_in))


def offers_tool_tasks(capabilities: types.ServerCapabilities | None) -> bool:
    """The server declares (2025-11-25) that ``tools/call`` may be task-augmented."""
    tasks = getattr(capabilities, "tasks", None) if capabilities is not None else None
    requests = getattr(tasks, "requests", None)
    tools = getattr(requests, "tools", None)
    return getattr(tools, "call", None) is not None



def related_task(meta: Mapping[str, Any] | None) -> str | None:
    """The id of the task a result came from (its ``_meta`` names it), else ``None``."""
    related = (meta or {}).get(RELATED_TASK)
    task_id = related.get("taskId") if isinstance(related, Mapping) else None
    return task_id if isinstance(task_id, str) else None
