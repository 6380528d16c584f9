"""The durable approval queue: how soon a decision reaches the waiting call, and a busy queue.

    python benchmarks/bench_approvals.py [--quick]

- **Decision to resume**: a ``QueueApprover`` waits on a request; the decision is written by the
  CLI's own code path (``mcp-bridge approvals approve ID --store ...``, run in-process on a
  worker thread); measured from the moment the store recorded the decision (its ``decided``
  time) to the moment the waiting call resumed. SQLite (polling) and PostgreSQL
  (LISTEN/NOTIFY); median and p95 over >= 50 requests each.
- **Busy queue**: 10 agents (each with a store connection of its own) propose 10 calls each, all
  pending at once; a reviewer decides all 100 (approve and deny alternately). Every call must
  get exactly its own decision, and every request must be decided and used exactly once.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import anyio
from _common import Report, bench_parser, finish

from bridge.approvals import ApprovalStore, QueueApprover, open_approval_store
from bridge.catalogue import Annotations
from bridge.cli import main as cli_main
from bridge.connection import ToolCall


def call(agent: str, n: int) -> ToolCall:
    return ToolCall(server="mail", tool="send_email", mcp_name="send_email",
                    arguments={"to": f"{agent}-{n}@example.com", "subject": f"#{n}"},
                    annotations=Annotations(destructive=True), agent=agent)


async def pending(store: ApprovalStore, count: int, limit: float = 120.0) -> list[int]:
    with anyio.fail_after(limit):
        while True:
            found = await store.list(statuses=("pending",), limit=1000)
            if len(found) >= count:
                return sorted(r.id for r in found)
            await anyio.sleep(0.01)


async def latencies(where: str, requests: int) -> list[float]:
    """Seconds from the decision being stored to the waiting call resuming, per request."""
    approver = QueueApprover(where, expires_after=600, duplicate_window=0)
    view = open_approval_store(where)
    out: list[float] = []
    for n in range(requests):
        resumed: list[float] = []

        async def wait(n: int = n, resumed: list[float] = resumed) -> None:
            decision = await approver.review(call("bench", n))
            resumed.append(time.time())
            assert decision.approved

        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            (rid,) = await pending(view, 1)
            status = await anyio.to_thread.run_sync(
                cli_main, ["approvals", "approve", str(rid), "--store", where, "--reviewer", "bench", "--json"])
            assert status == 0
        decided = (await view.get(rid)).decided
        assert decided is not None
        out.append(resumed[0] - decided)
    await view.aclose()
    await approver.store.aclose()
    return out


async def busy(where: str, agents: int = 10, each: int = 10) -> tuple[float, str]:
    """Decide ``agents * each`` concurrent requests; the seconds it took, and what went wrong (if anything)."""
    approvers = {f"agent{a}": QueueApprover(open_approval_store(where), expires_after=600, duplicate_window=0)
                 for a in range(agents)}
    view = open_approval_store(where)
    results: dict[tuple[str, int], bool] = {}

    async def propose(agent: str, n: int) -> None:
        results[(agent, n)] = (await approvers[agent].review(call(agent, n))).approved

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for agent in approvers:
            for n in range(each):
                group.start_soon(propose, agent, n)
        ids = await pending(view, agents * each)
        expected: dict[tuple[str, int], bool] = {}
        for i, rid in enumerate(ids):
            request = await view.get(rid)
            key = (request.agent or "", int(str(request.arguments["subject"]).lstrip("#")))
            expected[key] = i % 2 == 0
            await view.decide(rid, i % 2 == 0, "bench")
    seconds = time.perf_counter() - start
    final = [await view.get(rid) for rid in ids]
    problems = []
    if results != expected:
        problems.append(f"{sum(results.get(k) != v for k, v in expected.items())} calls got another decision")
    if len(results) != agents * each:
        problems.append(f"{agents * each - len(results)} calls lost")
    if any(r.consumed is None for r in final) or any(r.status not in ("approved", "denied") for r in final):
        problems.append("a request was not decided and used exactly once")
    for approver in approvers.values():
        await approver.store.aclose()
    await view.aclose()
    return seconds, "; ".join(problems)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def main() -> None:
    args = bench_parser(__doc__ or "").parse_args()
    started = time.perf_counter()
    requests = 10 if args.quick else 50
    report = Report("approvals", "Approval queue: decision to resume, and 100 concurrent requests",
                    params={"requests": requests, "agents": 10, "calls_per_agent": 10})
    from fixtures.postgres import PostgresUnavailable, TempPostgres

    stores: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-approvals-"))
    postgres = TempPostgres()
    try:
        postgres.start()
        import psycopg

        for purpose in ("latency", "busy"):
            name = f"approvals_{purpose}_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(postgres.url(), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            stores[f"postgres-{purpose}"] = postgres.url(name)
    except PostgresUnavailable as e:
        report.notes.append(f"PostgreSQL rows missing: {e}")
    stores["sqlite-latency"] = str(tmp / "latency.db")
    stores["sqlite-busy"] = str(tmp / "busy.db")
    try:
        for kind in ("sqlite", "postgres"):
            where = stores.get(f"{kind}-latency")
            if where is None:
                continue
            samples = anyio.run(latencies, where, requests)
            report.add(f"{kind}: decision to resume", [s * 1000 for s in samples], "ms",
                       note=f"p95 {p95(samples) * 1000:.0f} ms over {len(samples)} requests", group="latency",
                       p95_ms=p95(samples) * 1000)
            seconds, problems = anyio.run(busy, stores[f"{kind}-busy"])
            report.add(f"{kind}: 100 pending from 10 agents, all decided", [seconds], "s",
                       note=problems or "none lost, none decided or used twice", group="busy",
                       ok=not problems)
            if problems:
                print(f"{kind}: {problems}", file=sys.stderr)
    finally:
        postgres.stop()
    finish(report, started, args.json)


if __name__ == "__main__":
    main()
