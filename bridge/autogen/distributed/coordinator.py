"""The coordinator: one process's connection to the host, from which it starts team runs,
sends single tool calls to workers and watches the workers' heartbeats.

What it guarantees when a worker dies with a call in flight (``Coordinator.call``):

* A worker is taken as dead once no heartbeat came from it for ``dead_after`` seconds.
* The call is sent again, to another live worker serving the same agent, only when the dead
  worker's catalogue annotates the tool read-only or idempotent. Running such a call twice does
  no harm, and a dead worker may well have made it already: its result just never came back.
* Any other call is reported lost (``CallOutcome.lost``, with the reason), never sent again: the
  worker may have made it before dying (the email sent, the contact added), and the coordinator
  cannot know, so a second run could do it twice.
* A call a worker answered it could not make (``failed``: no such agent there, an exception
  before an answer) is lost with the worker's reason, not re-sent: the worker is alive and a
  second one would fail alike.

The job id of a call is the call id of its audit record, on whichever worker finished it. A
worker killed mid-call writes no record for that call: the trail holds finished calls (the
server's own log shows the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autogen_core import MessageContext, RoutedAgent, TopicId, TypeSubscription, message_handler

from .messages import (
    COORDINATOR_TOPIC,
    HEARTBEAT_SECONDS,
    CallEvent,
    CallJob,
    Heartbeat,
    Report,
    Task,
    calls_topic,
    grpc_runtime,
    task_topic,
)

if TYPE_CHECKING:
    from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntime

__all__ = ["CallOutcome", "Coordinator", "WorkerSeen"]

logger = logging.getLogger(__name__)


@dataclass
class WorkerSeen:
    """A worker as its heartbeats describe it."""

    name: str
    agents: list[str]
    retry_safe: dict[str, list[str]]
    """Per agent, the tools that may be sent again after this worker died with them in flight."""
    last_seen: float
    """``time.monotonic()`` of its last heartbeat."""
    alive: bool = True


@dataclass
class CallOutcome:
    """How a ``Coordinator.call`` ended: done on ``worker`` after ``attempts``, or ``lost`` (``reason`` says why)."""

    job: str
    agent: str
    tool: str
    worker: str | None
    attempts: int
    text: str = ""
    is_error: bool = False
    lost: bool = False
    reason: str = ""
    workers: list[str] = field(default_factory=list)
    """Every worker the call was sent to, in order."""


@dataclass
class _InFlight:
    worker: str
    attempt: int
    done: asyncio.Event = field(default_factory=asyncio.Event)
    event: CallEvent | None = None


class _Inbox(RoutedAgent):
    def __init__(self, coordinator: Coordinator) -> None:
        super().__init__("the coordinator's inbox")
        self._coordinator = coordinator

    @message_handler
    async def on_report(self, message: Report, ctx: MessageContext) -> None:
        self._coordinator._on_report(message)

    @message_handler
    async def on_call_event(self, message: CallEvent, ctx: MessageContext) -> None:
        self._coordinator._on_call_event(message)

    @message_handler
    async def on_heartbeat(self, message: Heartbeat, ctx: MessageContext) -> None:
        self._coordinator._on_heartbeat(message)


class Coordinator:
    """The connection to the host at ``host`` (``HOST:PORT``): ``async with Coordinator(host) as team``.

    See the module's docstring for what ``call`` guarantees when a worker dies. ``audit_seconds``
    collects, per worker, the audit write times its heartbeats report (for load measurements;
    clear it at will).
    """

    def __init__(self, host: str, *, dead_after: float = 10.0) -> None:
        self.host = host
        self.dead_after = dead_after
        # Unique: the host drops a departed client's registrations only once it notices it left.
        self.name = f"coordinator-{uuid.uuid4().hex[:8]}"
        self.workers: dict[str, WorkerSeen] = {}
        self.audit_seconds: dict[str, list[float]] = {}
        self._runtime: GrpcWorkerAgentRuntime | None = None
        self._reports: dict[str, list[Report]] = {}
        self._report_arrived = asyncio.Condition()
        self._calls: dict[str, _InFlight] = {}
        self._changed = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None
        self._next = 0

    async def __aenter__(self) -> Coordinator:
        """Connect to the host and start listening to workers.

        Raises:
            ConfigError: AutoGen's gRPC runtime is not installed.
        """
        self._runtime = grpc_runtime(self.host)
        await self._runtime.start()
        await _Inbox.register(self._runtime, self.name, lambda: _Inbox(self))
        await self._runtime.add_subscription(TypeSubscription(topic_type=COORDINATOR_TOPIC, agent_type=self.name))
        self._watch = asyncio.get_running_loop().create_task(self._watchdog())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._runtime is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runtime.stop(), 10)

    @property
    def runtime(self) -> GrpcWorkerAgentRuntime:
        if self._runtime is None:
            raise RuntimeError("the coordinator is not connected: use `async with Coordinator(host) as team`")
        return self._runtime

    # -- events from workers

    def _on_heartbeat(self, beat: Heartbeat) -> None:
        seen = self.workers.get(beat.worker)
        if seen is None or not seen.alive:
            self.workers[beat.worker] = WorkerSeen(beat.worker, beat.agents, beat.retry_safe, time.monotonic())
            self._changed.set()
        else:
            seen.last_seen = time.monotonic()
        self.audit_seconds.setdefault(beat.worker, []).extend(beat.audit_seconds)

    def _on_report(self, report: Report) -> None:
        self._reports.setdefault(report.job, []).append(report)
        asyncio.get_running_loop().create_task(self._notify_report())

    async def _notify_report(self) -> None:
        async with self._report_arrived:
            self._report_arrived.notify_all()

    def _on_call_event(self, event: CallEvent) -> None:
        flight = self._calls.get(event.job)
        if flight is None or flight.attempt != event.attempt:
            return  # an answer from an attempt already given up on
        if event.state != "started":
            flight.event = event
            flight.done.set()

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS / 2)
            now = time.monotonic()
            for seen in self.workers.values():
                if seen.alive and now - seen.last_seen > self.dead_after:
                    seen.alive = False
                    logger.warning("worker %s is silent for %.1fs: taken as dead", seen.name, now - seen.last_seen)
                    for flight in self._calls.values():
                        if flight.worker == seen.name:
                            flight.done.set()
                    self._changed.set()

    # -- what the coordinator does

    def alive(self, agent: str | None = None) -> list[str]:
        """Live workers (serving ``agent``, when given)."""
        return [w.name for w in self.workers.values() if w.alive and (agent is None or agent in w.agents)]

    async def wait_for(self, workers: Iterable[str], timeout: float = 60.0) -> None:
        """Until every named worker has sent a heartbeat.

        Raises:
            TimeoutError: some did not, within ``timeout``.
        """
        wanted = set(workers)
        deadline = time.monotonic() + timeout
        while not wanted <= set(self.alive()):
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"workers not up after {timeout:.0f}s: {sorted(wanted - set(self.alive()))}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, HEARTBEAT_SECONDS))

    async def run_chain(self, agents: Sequence[str], text: str, *, timeout: float = 180.0) -> list[Report]:
        """Give ``text`` to ``agents[0]``; each hands its answer to the next. Returns every report,
        up to and including the first with an ``error`` (the chain stops there).

        Raises:
            TimeoutError: the chain did not finish within ``timeout``.
        """
        job = uuid.uuid4().hex
        await self.runtime.publish_message(Task(job=job, agent=agents[0], text=text, then=list(agents[1:])),
                                           TopicId(task_topic(agents[0]), job))

        def finished() -> bool:
            reports = self._reports.get(job, [])
            return len(reports) >= len(agents) or any(r.error for r in reports)

        async with self._report_arrived:
            await asyncio.wait_for(self._report_arrived.wait_for(finished), timeout)
        return self._reports.pop(job)

    async def call(self, agent: str, tool: str, arguments: Mapping[str, Any] | None = None, *,
                   worker: str | None = None, timeout: float = 120.0) -> CallOutcome:
        """Have a worker serving ``agent`` call ``tool``, through that agent's guards.

        A tool error is an answer (``is_error``), not a loss. When the worker dies with the call in
        flight, the call goes to another live worker only if the tool is retry-safe (see the
        module's docstring); otherwise the outcome is ``lost``.

        Args:
            worker: the worker to use first (default: the live ones in turn).

        Raises:
            TimeoutError: no answer within ``timeout`` while the worker stayed alive.
        """
        job = uuid.uuid4().hex
        outcome = CallOutcome(job=job, agent=agent, tool=tool, worker=None, attempts=0)
        deadline = time.monotonic() + timeout
        while True:
            target = worker or self._pick(agent, exclude=outcome.workers)
            if target is None:
                outcome.lost, outcome.reason = True, f"no live worker serves {agent}"
                return outcome
            worker = None
            event = await self._attempt(outcome, target, arguments, deadline)
            if event is not None and event.state == "done":
                outcome.worker, outcome.text, outcome.is_error = target, event.text, event.is_error
                return outcome
            if event is not None:  # the worker could not make the call; it says why
                outcome.lost, outcome.reason = True, f"worker {target}: {event.text}"
                return outcome
            if tool not in self.workers[target].retry_safe.get(agent, []):
                outcome.lost = True
                outcome.reason = (f"worker {target} died with the call in flight; {tool} is not annotated "
                                  "read-only or idempotent, so it is not sent again")
                return outcome
            logger.warning("worker %s died with %s in flight; %s is retry-safe: sending it again", target, job, tool)

    async def _attempt(self, outcome: CallOutcome, target: str, arguments: Mapping[str, Any] | None,
                       deadline: float) -> CallEvent | None:
        """Send the call to ``target``; its answer, or None once ``target`` is taken as dead."""
        outcome.attempts += 1
        outcome.workers.append(target)
        flight = self._calls[outcome.job] = _InFlight(target, outcome.attempts)
        await self.runtime.publish_message(
            CallJob(job=outcome.job, agent=outcome.agent, tool=outcome.tool, arguments=dict(arguments or {}),
                    attempt=flight.attempt),
            TopicId(calls_topic(target), outcome.job))
        try:
            await asyncio.wait_for(flight.done.wait(), max(0.0, deadline - time.monotonic()))
        finally:
            self._calls.pop(outcome.job, None)
        return flight.event

    def _pick(self, agent: str, exclude: Sequence[str] = ()) -> str | None:
        live = [w for w in self.alive(agent) if w not in exclude]
        if not live:
            return None
        self._next += 1
        return live[self._next % len(live)]
