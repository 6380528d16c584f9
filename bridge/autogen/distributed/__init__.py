"""AutoGen agents on the distributed gRPC runtime: workers that serve them, a coordinator that drives them.

Needs AutoGen's gRPC runtime (``pip install 'autogen-mcp-bridge[grpc]'``); ``import bridge.autogen``
does not load this package, import it explicitly.

* A **host** (``serve_host``, or ``python -m bridge.autogen.distributed host``) relays every message.
* A **worker** (``serve_worker``, or ``python -m bridge.autogen.distributed worker``) loads its agents
  from a component file (``agent_components`` writes one entry per agent; the configs carry every
  guard and no secret) and serves them: team runs (each agent's ``AssistantAgent``) and single
  tool calls (through the agent's ``MCPWorkbench``, so through its guards). It names itself in
  every audit record and sends a heartbeat every ``HEARTBEAT_SECONDS``.
* The **coordinator** (``Coordinator``) starts team runs, sends single calls and watches the
  heartbeats. When a worker dies with a call in flight, the call is sent to another worker only
  if the tool is annotated read-only or idempotent; any other call is reported lost, never run
  twice (``bridge.autogen.distributed.coordinator`` has the full contract).

```python
from bridge.autogen.distributed import Coordinator

async with Coordinator("127.0.0.1:50051") as team:
    await team.wait_for(["w1", "w2"])
    reports = await team.run_chain(["triage", "drafter"], "Work the new mail.")
    outcome = await team.call("contacts", "search_contacts", {"query": "Jonas"})
```
"""

from __future__ import annotations

from .coordinator import CallOutcome, Coordinator, WorkerSeen
from .messages import HEARTBEAT_SECONDS, HOST_TIMEOUT, CallEvent, CallJob, Heartbeat, Report, Task, ToolUse
from .worker import CallRunner, HostLost, TeamAgent, agent_components, serve_host, serve_worker

__all__ = [
    "HEARTBEAT_SECONDS", "HOST_TIMEOUT", "CallEvent", "CallJob", "CallOutcome", "CallRunner", "Coordinator",
    "Heartbeat", "HostLost", "Report", "Task", "TeamAgent", "ToolUse", "WorkerSeen", "agent_components",
    "serve_host", "serve_worker",
]
