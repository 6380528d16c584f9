"""What workers and the coordinator say to each other through the gRPC host, and how they connect.

Every message is a pydantic model sent as JSON. Topics: a team run's ``Task`` for agent ``a``
goes to ``task.a``; a single call for worker ``w`` to ``calls.w``; everything meant for the
coordinator (reports, call events, heartbeats) to ``coordinator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from autogen_core import MessageSerializer, try_get_known_serializers_for_type
from pydantic import BaseModel, Field

from ...errors import ConfigError

if TYPE_CHECKING:
    from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntime, GrpcWorkerAgentRuntimeHost

__all__ = [
    "COORDINATOR_TOPIC", "GRPC_OPTIONS", "HEARTBEAT_SECONDS", "HOST_TIMEOUT", "MESSAGES", "CallEvent", "CallJob",
    "CallState", "Heartbeat", "Ping", "Report", "Task", "ToolUse", "calls_topic", "grpc_host", "grpc_runtime",
    "serializers", "task_topic",
]

COORDINATOR_TOPIC = "coordinator"
HEARTBEAT_SECONDS = 0.5
"""How often a worker says it is alive (and checks that the host still relays)."""
HOST_TIMEOUT = 15.0
"""Seconds without its own echo after which a worker takes the host as gone and stops."""
# gRPC turns SO_REUSEPORT on by default, which would let a second host bind a taken port silently.
GRPC_OPTIONS: list[tuple[str, Any]] = [("grpc.so_reuseport", 0), ("grpc.max_send_message_length", 16 << 20),
                                       ("grpc.max_receive_message_length", 16 << 20)]


class Task(BaseModel):
    """Work for one agent in a team run; ``then`` names who gets its answer next."""

    job: str
    agent: str
    text: str
    then: list[str] = Field(default_factory=list)


class ToolUse(BaseModel):
    """One tool call an agent made during a ``Task``, and what came back."""

    tool: str
    arguments: dict[str, Any]
    result: str
    is_error: bool


class Report(BaseModel):
    """What an agent did with a ``Task``, sent to the coordinator; ``error`` ends the run."""

    job: str
    agent: str
    worker: str
    text: str
    tools: list[ToolUse] = Field(default_factory=list)
    error: str | None = None


class CallJob(BaseModel):
    """One tool call for a worker to make on an agent's behalf (through that agent's guards).

    ``job`` is the call's id in the agent's audit record; ``attempt`` tells the answers of a
    re-sent call apart from those of the attempt given up on.
    """

    job: str
    agent: str
    tool: str
    arguments: dict[str, Any]
    attempt: int = 1


CallState = Literal["started", "done", "failed"]


class CallEvent(BaseModel):
    """A worker's word on a ``CallJob``: it ``started`` it, or it is ``done`` (an answer, perhaps a tool
    error) or ``failed`` (the worker could not make the call at all; ``text`` says why)."""

    job: str
    attempt: int
    worker: str
    state: CallState
    text: str = ""
    is_error: bool = False


class Heartbeat(BaseModel):
    """A worker is alive; which agents it serves, which of their tools may be re-sent, and the audit
    write times measured since the last beat."""

    worker: str
    agents: list[str]
    retry_safe: dict[str, list[str]]
    audit_seconds: list[float] = Field(default_factory=list)


class Ping(BaseModel):
    """A worker's message to itself through the host: its echo proves the host still relays."""

    seq: int


MESSAGES: tuple[type[BaseModel], ...] = (Task, Report, CallJob, CallEvent, Heartbeat, Ping)


def task_topic(agent: str) -> str:
    """The topic type a team run's ``Task`` for ``agent`` goes to."""
    return f"task.{agent}"


def calls_topic(worker: str) -> str:
    """The topic type (and agent type) of ``worker``'s single-call runner."""
    return f"calls.{worker}"


def serializers() -> list[MessageSerializer[Any]]:
    """JSON serializers for every message here, for ``runtime.add_message_serializer``."""
    return [s for m in MESSAGES for s in try_get_known_serializers_for_type(m)]


def grpc_runtime(host: str) -> GrpcWorkerAgentRuntime:
    """A ``GrpcWorkerAgentRuntime`` for the host at ``host`` (``HOST:PORT``) that knows these messages.

    Raises:
        ConfigError: AutoGen's gRPC runtime is not installed.
    """
    _require_grpc()
    from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntime

    runtime = GrpcWorkerAgentRuntime(host_address=host, extra_grpc_config=GRPC_OPTIONS)
    runtime.add_message_serializer(serializers())
    return runtime


def grpc_host(address: str) -> GrpcWorkerAgentRuntimeHost:
    """A ``GrpcWorkerAgentRuntimeHost`` to bind ``address`` (``HOST:PORT``), not started yet.

    Raises:
        ConfigError: AutoGen's gRPC runtime is not installed.
    """
    _require_grpc()
    from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntimeHost

    return GrpcWorkerAgentRuntimeHost(address=address, extra_grpc_config=GRPC_OPTIONS)


def _require_grpc() -> None:
    # Imported on first use: the grpc extra is optional, and `import bridge.autogen` must not need it.
    try:
        import autogen_ext.runtimes.grpc  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"AutoGen's gRPC runtime is not installed ({e}); "
                          "pip install 'autogen-mcp-bridge[grpc]'") from None
