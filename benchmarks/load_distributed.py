"""Load across processes: N gRPC workers x M concurrent tool calls, one PostgreSQL audit table.

Run from the repo root (loopback only; bounded in calls and time)::

    python benchmarks/load_distributed.py                       # 2 workers x 25 concurrent, 300 calls each
    python benchmarks/load_distributed.py --workers 4 --concurrency 50 --calls 500
    python benchmarks/load_distributed.py --json bench-results/load_distributed.json

What runs: the MultiMail stand-in over Streamable HTTP, a gRPC host and N worker processes
(``python -m bridge.autogen.distributed``), each loading the ``triage`` agent's workbench from
its component config (selection, approval policy, audit log; ``fixtures.mail_team``) and a
throwaway PostgreSQL server (fsync on unless ``--fast-db``). A ``Coordinator`` sends every worker
``--calls`` ``check_inbox`` calls, ``--concurrency`` at a time, through the host.

Reported: calls/s over the timed phase, call latency as the coordinator sees it (p50/p95),
audit write latency measured inside the workers around each insert (p50/p95), and the audit
table checked against the calls made: every call has exactly one record, from the worker that
made it. The exit status is 1 when a call failed or a record is missing or doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # scripts run by path; `fixtures` lives at the root

from bridge.audit import query as query_audit  # noqa: E402
from bridge.autogen.distributed import HEARTBEAT_SECONDS, CallOutcome, Coordinator  # noqa: E402
from fixtures.mail_team import ROLES, add_agent_keys, build_components, mail_proc, model_at, worker_env  # noqa: E402
from fixtures.postgres import PostgresUnavailable, TempPostgres  # noqa: E402
from fixtures.processes import Proc, address, host_proc, ready, stop_all, worker_proc  # noqa: E402

TOOL, ARGUMENTS = "check_inbox", {"limit": 1}
TIMED_PHASE_LIMIT = 600.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile ``q`` (0..1); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def drive(team: Coordinator, workers: Sequence[str], calls: int, concurrency: int
                ) -> tuple[list[CallOutcome], list[float], float]:
    """Every worker gets ``calls`` calls, ``concurrency`` in flight at a time; returns the outcomes,
    each call's latency and the wall time."""
    outcomes: list[CallOutcome] = []
    latencies: list[float] = []

    async def lane(worker: str, count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            outcomes.append(await team.call("triage", TOOL, ARGUMENTS, worker=worker, timeout=120))
            latencies.append(time.perf_counter() - started)

    lanes = [lane(w, calls // concurrency + (1 if i < calls % concurrency else 0))
             for w in workers for i in range(concurrency)]
    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*lanes), TIMED_PHASE_LIMIT)
    return outcomes, latencies, time.perf_counter() - started


async def run(workdir: Path, audit: str, workers: int, calls: int, concurrency: int) -> dict[str, Any]:
    db = workdir / "mail.db"
    keys = add_agent_keys(db, [ROLES["triage"]])
    names = [f"w{i + 1}" for i in range(workers)]
    procs: list[Proc] = []
    try:
        mail, host = mail_proc(db), host_proc()
        procs += [mail, host]
        mail_url, host_address = address(mail), address(host)
        # No team runs here: the model is never asked.
        components = build_components(audit, model_at("http://127.0.0.1:9/v1", "unused"))
        dump = workdir / "agents.json"
        dump.write_text(json.dumps(components))
        env = worker_env(["triage"], keys, mail_url, model_key="unused")
        started = [worker_proc(host_address, name, ["triage"], dump, env, team=[]) for name in names]
        procs += started
        for proc in started:
            ready(proc)
        async with Coordinator(host_address, dead_after=30) as team:
            await team.wait_for(names)
            await drive(team, names, 5, 5)  # warm: sessions open, catalogues read, pools filled
            await asyncio.sleep(2 * HEARTBEAT_SECONDS)
            team.audit_seconds.clear()
            outcomes, latencies, seconds = await drive(team, names, calls, concurrency)
            # The last audit timings travel with the next heartbeats.
            await asyncio.sleep(3 * HEARTBEAT_SECONDS)
            audit_times = [t for samples in team.audit_seconds.values() for t in samples]
    finally:
        stop_all([p for p in procs if p.name.startswith("worker")])
        stop_all([p for p in procs if not p.name.startswith("worker")])

    records = [r for r in query_audit(audit) if r.call_id is not None]
    by_job = Counter(r.call_id for r in records)
    jobs = {o.job: o for o in outcomes}
    missing = [j for j in jobs if by_job[j] == 0]
    doubled = [j for j, n in by_job.items() if n > 1 and j in jobs]
    wrong_worker = [r.call_id for r in records if r.call_id in jobs and r.worker != jobs[r.call_id].worker]
    failed = [o for o in outcomes if o.lost or o.is_error]
    return {
        "workers": workers, "concurrency_per_worker": concurrency, "calls": len(outcomes), "seconds": seconds,
        "calls_per_second": len(outcomes) / seconds if seconds else 0.0,
        "call_p50_ms": percentile(latencies, 0.5) * 1000, "call_p95_ms": percentile(latencies, 0.95) * 1000,
        "audit_writes": len(audit_times),
        "audit_p50_ms": percentile(audit_times, 0.5) * 1000, "audit_p95_ms": percentile(audit_times, 0.95) * 1000,
        "failed_calls": len(failed), "first_failure": (failed[0].reason or failed[0].text)[:300] if failed else "",
        "records_missing": len(missing), "records_doubled": len(doubled), "records_wrong_worker": len(wrong_worker),
        "per_worker": dict(Counter(o.worker or "-" for o in outcomes)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--concurrency", type=int, default=25, help="calls in flight per worker (default 25)")
    parser.add_argument("--calls", type=int, default=300, help="calls per worker (default 300)")
    parser.add_argument("--audit", metavar="URL", help="a postgresql:// URL (default: a throwaway server)")
    parser.add_argument("--fast-db", action="store_true", help="the throwaway server without fsync")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    args = parser.parse_args(argv)
    if min(args.workers, args.concurrency, args.calls) < 1:
        parser.error("--workers, --concurrency and --calls must be at least 1")

    workdir = Path(tempfile.mkdtemp(prefix="load-distributed-"))
    server: TempPostgres | None = None
    if args.audit is None:
        server = TempPostgres(durable=not args.fast_db)
        try:
            server.start()
        except PostgresUnavailable as e:
            print(f"load_distributed: {e}", file=sys.stderr)
            return 1
    audit = args.audit if server is None else server.url()
    try:
        result = asyncio.run(run(workdir, audit, args.workers, args.calls, args.concurrency))
    finally:
        if server is not None:
            server.stop()
    result["audit_database"] = "throwaway, fsync " + ("off" if args.fast_db else "on") if server else "given"

    print(f"{result['workers']} workers x {result['concurrency_per_worker']} concurrent, "
          f"{result['calls']} calls in {result['seconds']:.1f} s: {result['calls_per_second']:.0f} calls/s")
    print(f"call latency p50 {result['call_p50_ms']:.0f} ms, p95 {result['call_p95_ms']:.0f} ms "
          f"(coordinator -> host -> worker -> MultiMail -> back)")
    print(f"audit writes {result['audit_writes']}: p50 {result['audit_p50_ms']:.1f} ms, "
          f"p95 {result['audit_p95_ms']:.1f} ms (PostgreSQL, {result['audit_database']})")
    print(f"records: {result['records_missing']} lost, {result['records_doubled']} doubled, "
          f"{result['records_wrong_worker']} naming the wrong worker; {result['failed_calls']} failed calls; "
          f"load average {result['load_average']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    problems = result["failed_calls"] + result["records_missing"] + result["records_doubled"] + \
        result["records_wrong_worker"]
    if result["failed_calls"]:
        print(f"PROBLEM: first failed call: {result['first_failure']}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
