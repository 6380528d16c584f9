"""The audit trail's cost: records per second per store, the latency it adds to a call, and telemetry's cost.

    python benchmarks/bench_audit.py [--quick]

- **Records per second**: one writer appending hash-chained records one after another (each
  awaited, as the trail does) to JSONL, SQLite (WAL, ``synchronous=NORMAL``) and PostgreSQL.
- **Added latency per call**: the audit trail around a call that does nothing, against the same
  call without it: the write-ahead record before the call and its outcome after, both awaited.
  The goal is at most 0.5 ms per call for SQLite in WAL mode with a single writer.
- **Telemetry without a provider**: ``bridge.telemetry``'s two interceptors around a call that
  does nothing, with no tracer or meter provider configured (the default), against none.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import anyio
from _common import Report, bench_parser, finish

from bridge.audit import AuditLog, AuditRecord, AuditTrail, JsonlAuditLog, PostgresAuditLog, SqliteAuditLog
from bridge.audit.stores import close_audit_log
from bridge.connection import Interceptor, ToolCall, run_chain
from bridge.results import CallResult
from bridge.telemetry import Telemetry

CALL = ToolCall(server="mail", tool="send_email", mcp_name="send_email",
                arguments={"to": "ana@example.com", "subject": "Re: tent pole", "body": "On its way."}, agent="bench")
RESULT = CallResult.error("", server="mail", tool="send_email")


def record(n: int) -> AuditRecord:
    return AuditRecord(time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), agent="bench",
                       server="mail", tool="send_email", arguments={"n": n, "to": "ana@example.com"}, outcome="ok")


async def records_per_second(log: AuditLog, count: int) -> float:
    await log.append(record(-1))  # connect and create the table outside the clock
    started = time.perf_counter()
    for n in range(count):
        await log.append(record(n))
    return count / (time.perf_counter() - started)


async def _nothing(call: ToolCall) -> CallResult:
    return RESULT


async def per_call(interceptors: Sequence[Interceptor], calls: int) -> list[float]:
    """Seconds per call through ``interceptors`` around a call that does nothing, one sample per call."""
    handler = run_chain(interceptors, _nothing)
    await handler(CALL)
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        await handler(CALL)
        out.append(time.perf_counter() - started)
    return out


def added(with_it: list[float], without: list[float]) -> float:
    return statistics.median(with_it) - statistics.median(without)


def main() -> None:
    args = bench_parser(__doc__ or "").parse_args()
    started = time.perf_counter()
    count = 200 if args.quick else 2000
    calls = 200 if args.quick else 2000
    report = Report("audit", "Audit trail: records per second, added latency per call, telemetry's cost",
                    params={"records": count, "calls": calls})
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    from fixtures.postgres import PostgresUnavailable, TempPostgres

    postgres = TempPostgres()
    logs: dict[str, AuditLog] = {"jsonl": JsonlAuditLog(tmp / "rate.jsonl"), "sqlite": SqliteAuditLog(tmp / "rate.db")}
    try:
        postgres.start()
        logs["postgres"] = PostgresAuditLog(postgres.new_database("bench_audit"))
    except PostgresUnavailable as e:
        report.notes.append(f"PostgreSQL rows missing: {e}")
    try:
        for kind, log in logs.items():
            rate = anyio.run(records_per_second, log, count)
            report.add(f"{kind}: chained records per second, one writer", [rate], "records/s", group="rate")
            close_audit_log(log)
        bare = anyio.run(per_call, (), calls)
        for kind in ("jsonl", "sqlite"):
            log = JsonlAuditLog(tmp / f"calls.{kind}") if kind == "jsonl" else SqliteAuditLog(tmp / "calls.db")
            audited = anyio.run(per_call, (AuditTrail(log),), calls)
            extra = added(audited, bare) * 1000
            note = f"goal <= 0.5 ms: {'met' if extra <= 0.5 else 'missed'}" if kind == "sqlite" else ""
            report.add(f"{kind}: latency the trail adds per call (2 records)", [extra], "ms", group="latency",
                       note=note, goal_met=extra <= 0.5 if kind == "sqlite" else None)
            close_audit_log(log)
        telemetry = Telemetry()
        traced = anyio.run(per_call, (telemetry.start(), telemetry.sent()), calls)
        report.add("telemetry, no provider configured: added per call", [added(traced, bare) * 1e6], "µs",
                   group="telemetry")
    finally:
        postgres.stop()
    finish(report, started, args.json)


if __name__ == "__main__":
    main()
