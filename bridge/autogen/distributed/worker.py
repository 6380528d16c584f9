"""A worker process and the host: the agents a worker serves, how it answers, how it stays alive.

A worker loads its agents from component configs (``agent_components``), registers them with
the host, and serves until told to stop: a ``TeamAgent`` per agent for team runs, one
``CallRunner`` for single tool calls. Every call goes through the agent's ``MCPWorkbench`` and
so through its guards; the worker's name is written into every audit record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent, ToolCallRequestEvent
from autogen_core import CancellationToken, MessageContext, RoutedAgent, TopicId, TypeSubscription, message_handler

from ...audit import AuditLog, AuditRecord, AuditTrail
from ...errors import ConfigError
from ...registry import close_shared_connections
from ..workbench import MCPWorkbench
from .messages import (
    COORDINATOR_TOPIC,
    HEARTBEAT_SECONDS,
    HOST_TIMEOUT,
    CallEvent,
    CallJob,
    CallState,
    Heartbeat,
    Ping,
    Report,
    Task,
    ToolUse,
    calls_topic,
    grpc_host,
    grpc_runtime,
    task_topic,
)

__all__ = ["CallRunner", "HostLost", "TeamAgent", "agent_components", "serve_host", "serve_worker"]

Components = Mapping[str, Mapping[str, Any]]
"""agent name -> ``{"agent": AssistantAgent config, "workbench": MCPWorkbench config}``."""


class HostLost(Exception):
    """The host stopped relaying this worker's messages."""


def agent_components(agent: AssistantAgent, workbench: MCPWorkbench) -> dict[str, Any]:
    """One agent's entry of the component file a worker loads: the agent, and its workbench for single calls.

    Both configs hold no secret: server credentials and the audit password are ``${VAR}``
    references (the workbench's dump), and the model client's API key is left out, so the loaded
    client reads it from the worker's environment (``OPENAI_API_KEY`` for OpenAI clients) rather
    than from the masked value a dump writes.
    """
    dumped = agent.dump_component().model_dump(mode="json")
    dumped["config"].get("model_client", {}).get("config", {}).pop("api_key", None)
    return {"agent": dumped, "workbench": workbench.dump_component().model_dump(mode="json")}


class _TimedLog:
    """An audit log that measures how long each write takes."""

    def __init__(self, inner: AuditLog, samples: deque[float]) -> None:
        self._inner = inner
        self._samples = samples

    async def append(self, record: AuditRecord) -> None:
        started = time.perf_counter()
        try:
            await self._inner.append(record)
        finally:
            self._samples.append(time.perf_counter() - started)

    def records(self, *, agent: str | None = None, tool: str | None = None,
                since: datetime | None = None) -> list[AuditRecord]:
        return self._inner.records(agent=agent, tool=tool, since=since)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _time_audit(workbench: MCPWorkbench, samples: deque[float]) -> None:
    for interceptor in workbench.toolset.chain:
        if isinstance(interceptor, AuditTrail):
            interceptor.log = _TimedLog(interceptor.log, samples)


def _tool_uses(messages: Sequence[Any]) -> list[ToolUse]:
    asked: dict[str, dict[str, Any]] = {}
    uses: list[ToolUse] = []
    for message in messages:
        if isinstance(message, ToolCallRequestEvent):
            for call in message.content:
                with contextlib.suppress(ValueError):
                    asked[call.id] = json.loads(call.arguments or "{}")
        elif isinstance(message, ToolCallExecutionEvent):
            uses += [ToolUse(tool=r.name, arguments=asked.get(r.call_id, {}), result=r.content,
                             is_error=bool(r.is_error)) for r in message.content]
    return uses


class TeamAgent(RoutedAgent):
    """A team member on a worker: runs its ``AssistantAgent`` on each ``Task``, reports to the
    coordinator and hands its answer to the next agent named in the task (not after an error)."""

    def __init__(self, worker: str, config: Mapping[str, Any]) -> None:
        super().__init__(f"{config['config']['name']} on {worker}")
        self._worker = worker
        self._assistant = AssistantAgent.load_component(dict(config))
        self._busy = asyncio.Lock()  # an AssistantAgent runs one task at a time

    @message_handler
    async def on_task(self, message: Task, ctx: MessageContext) -> None:
        async with self._busy:
            await self._assistant.on_reset(CancellationToken())
            try:
                result = await self._assistant.run(task=message.text)
            except Exception as e:  # reported: the coordinator would otherwise wait for its timeout
                report = Report(job=message.job, agent=message.agent, worker=self._worker, text="",
                                error=f"{type(e).__name__}: {e}")
            else:
                report = Report(job=message.job, agent=message.agent, worker=self._worker,
                                text=result.messages[-1].to_text(), tools=_tool_uses(result.messages))
        if message.then and report.error is None:
            nxt = message.then[0]
            await self.publish_message(Task(job=message.job, agent=nxt, text=f"{message.agent} says: {report.text}",
                                            then=message.then[1:]), TopicId(task_topic(nxt), message.job))
        await self.publish_message(report, TopicId(COORDINATOR_TOPIC, message.job))


class CallRunner(RoutedAgent):
    """Makes single tool calls for the coordinator, through the named agent's workbench (its guards).

    Each ``CallJob`` is answered with ``started`` and then ``done`` or ``failed``; the job id is
    the call id of the agent's audit record. ``echoed`` is told of each of the worker's own
    pings that came back through the host.
    """

    def __init__(self, worker: str, workbenches: Mapping[str, MCPWorkbench], echoed: Callable[[int], None]) -> None:
        super().__init__(f"tool calls on {worker}")
        self._worker = worker
        self._workbenches = workbenches
        self._echoed = echoed

    @message_handler
    async def on_ping(self, message: Ping, ctx: MessageContext) -> None:
        self._echoed(message.seq)

    @message_handler
    async def on_call(self, message: CallJob, ctx: MessageContext) -> None:
        workbench = self._workbenches.get(message.agent)
        if workbench is None:
            await self._tell(message, "failed", text=f"no agent {message.agent!r} here")
            return
        await self._tell(message, "started")
        try:
            result = await workbench.call_tool(message.tool, message.arguments, call_id=message.job)
        except Exception as e:  # an answer of some kind, or the coordinator would wait for its timeout
            await self._tell(message, "failed", text=f"{type(e).__name__}: {e}")
            return
        text = "".join(getattr(part, "content", "") for part in result.result)
        await self._tell(message, "done", text=text, is_error=result.is_error)

    async def _tell(self, job: CallJob, state: CallState, *, text: str = "", is_error: bool = False) -> None:
        event = CallEvent(job=job.job, attempt=job.attempt, worker=self._worker, state=state, text=text,
                          is_error=is_error)
        await self.publish_message(event, TopicId(COORDINATOR_TOPIC, job.job))


def _check_components(name: str, agents: Sequence[str], team: Sequence[str], components: Components) -> None:
    missing = [a for a in (*agents, *team) if a not in components]
    if missing:
        raise ConfigError(f"worker {name}: no component config for {', '.join(sorted(set(missing)))} "
                          f"(the file has: {', '.join(sorted(components)) or 'none'}); "
                          "write one with agent_components()")
    outside = [a for a in team if a not in agents]
    if outside:
        raise ConfigError(f"worker {name}: team agents {', '.join(outside)} are not among its agents "
                          f"({', '.join(agents)}); name them in both")


async def _retry_safe(workbenches: Mapping[str, MCPWorkbench]) -> dict[str, list[str]]:
    """Per agent, the tools its server annotates read-only or idempotent: those a coordinator may re-send."""
    safe: dict[str, list[str]] = {}
    for agent, workbench in workbenches.items():
        entries = await workbench.toolset.tools()
        safe[agent] = sorted(e.mcp_name for e in entries
                             if e.annotations.effective_read_only or e.annotations.idempotent)
    return safe


async def serve_worker(host: str, name: str, agents: Sequence[str], components: Components, stop: asyncio.Event,
                       *, team: Sequence[str] | None = None, ready: Callable[[], None] | None = None,
                       host_timeout: float = HOST_TIMEOUT) -> None:
    """Register this worker's agents with the host at ``host`` and serve until ``stop`` is set.

    Every agent in ``agents`` takes single calls here; those in ``team`` (default: all) also take
    part in team runs. An agent type has one home on the host, so an agent served by several
    workers for single calls joins team runs on one of them only. ``name`` goes into every audit
    record (``MCP_BRIDGE_WORKER``) and names this worker to the coordinator. ``ready`` is called
    once everything is registered.

    Every ``HEARTBEAT_SECONDS`` the worker sends the coordinator a ``Heartbeat`` naming, per
    agent, the tools its server annotates read-only or idempotent (the catalogue is read at start,
    so a worker that cannot reach its server fails here, not mid-run), and a ``Ping`` to itself
    through the host.

    Raises:
        ConfigError: an agent has no component config, or the gRPC runtime is not installed.
        ConnectError: an agent's server cannot be reached.
        HostLost: no ping came back for ``host_timeout`` seconds. The runtime does not notice a
            vanished host, so the worker stops, for whatever supervises it to start a fresh one.
    """
    team = list(agents if team is None else team)
    _check_components(name, agents, team, components)
    os.environ["MCP_BRIDGE_WORKER"] = name
    samples: deque[float] = deque(maxlen=100_000)
    workbenches = {a: MCPWorkbench.load_component(components[a]["workbench"]) for a in agents}
    for workbench in workbenches.values():
        _time_audit(workbench, samples)
    retry_safe = await _retry_safe(workbenches)
    runtime = grpc_runtime(host)
    await runtime.start()
    try:
        for agent in team:
            config = components[agent]["agent"]
            await TeamAgent.register(runtime, agent, lambda c=config: TeamAgent(name, c))  # type: ignore[misc]
            await runtime.add_subscription(TypeSubscription(topic_type=task_topic(agent), agent_type=agent))
        runner = calls_topic(name)
        echo = {"at": time.monotonic()}

        def echoed(seq: int) -> None:
            echo["at"] = time.monotonic()

        await CallRunner.register(runtime, runner, lambda: CallRunner(name, workbenches, echoed))
        await runtime.add_subscription(TypeSubscription(topic_type=runner, agent_type=runner))
        if ready is not None:
            ready()
        seq = 0
        while not stop.is_set():
            if time.monotonic() - echo["at"] > host_timeout:
                raise HostLost(f"worker {name}: the host at {host} stopped relaying messages "
                               f"({host_timeout:.0f}s without an echo)")
            drained = [samples.popleft() for _ in range(len(samples))]
            await runtime.publish_message(Heartbeat(worker=name, agents=list(agents), retry_safe=retry_safe,
                                                    audit_seconds=drained), TopicId(COORDINATOR_TOPIC, name))
            seq += 1
            await runtime.publish_message(Ping(seq=seq), TopicId(runner, "ping"))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT_SECONDS)
    finally:
        # Bounded: a call blocked on the server must not keep a stopping worker alive.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runtime.stop(), 10)
        await close_shared_connections()


async def serve_host(port: int, stop: asyncio.Event, *, bind: str = "127.0.0.1",
                     listening: Callable[[str], None] | None = None) -> None:
    """The gRPC host on ``bind:port`` (``port`` 0: a free one) until ``stop`` is set.

    ``listening`` is called with the ``HOST:PORT`` workers and coordinators connect to.

    Raises:
        ConfigError: AutoGen's gRPC runtime is not installed.
    """
    address = f"{bind}:{port or _free_port(bind)}"
    host = grpc_host(address)
    host.start()
    await asyncio.sleep(0.2)  # the server starts in a task of its own
    if listening is not None:
        listening(address)
    try:
        await stop.wait()
    finally:
        await host.stop(grace=1)


def _free_port(bind: str) -> int:
    with socket.socket() as s:
        s.bind((bind, 0))
        return int(s.getsockname()[1])
