"""The audit trail's cost: records per second per store, the latency it adds to a call, and telemetry's cost.

    python benchmarks/bench_audit.py [--quick]

Every variant of a section is measured in the same run, in rounds whose order rotates
(``_common.rounds``), so a load spike hits them all; a row is the median over rounds.

- **Records per second**: one writer appending hash-chained records one after another (each
  awaited, as the trail does) to JSONL, SQLite (WAL, ``synchronous=NORMAL``) and PostgreSQL.
- **Added latency per call**: the audit trail around a call that does nothing, against the same
  call without it in the same round: the write-ahead record before the call and its outcome
  after, both awaited. The goal is at most 0.5 ms per call for SQLite in WAL mode with a single
  writer. Beside it, the same SQLite store with every row handed to its writer thread (no row
  written on the event loop's thread), and written through ``anyio.to_thread.run_sync`` (a pool
  thread per write, as the stores did before each got its writer thread): what each step saves.
- **Telemetry without a provider**: ``bridge.telemetry``'s two interceptors around a call that
  does nothing, with no tracer or meter provider configured (the default), against none.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import anyio
from _common import Report, bench_parser, finish, rounds

from bridge.audit import AuditLog, AuditRecord, AuditTrail, JsonlAuditLog, PostgresAuditLog, SqliteAuditLog
from bridge.audit.stores import close_audit_log
from bridge.connection import Handler, Interceptor, ToolCall, run_chain
from bridge.results import CallResult
from bridge.telemetry import Telemetry

CALL = ToolCall(server="mail", tool="send_email", mcp_name="send_email",
                arguments={"to": "ana@example.com", "subject": "Re: tent pole", "body": "On its way."}, agent="bench")
RESULT = CallResult.error("", server="mail", tool="send_email")
GOAL_MS = 0.5


def record(n: int) -> AuditRecord:
    return AuditRecord(time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), agent="bench",
                       server="mail", tool="send_email", arguments={"n": n, "to": "ana@example.com"}, outcome="ok")


class ThreadOnly(SqliteAuditLog):
    """The SQLite store with every row handed to its writer thread (no write on the calling thread)."""

    def _write_now(self, record: AuditRecord) -> bool:
        return False


class ToThread:
    """``log`` written on anyio's worker threads, one hop per record (the stores' former design)."""

    def __init__(self, log: SqliteAuditLog) -> None:
        self.log = log

    async def append(self, record: AuditRecord) -> None:
        await anyio.to_thread.run_sync(self.log.write, record.masked())

    def records(self, **filters: object) -> list[AuditRecord]:
        return self.log.records()


async def append_rate(log: AuditLog, count: int) -> float:
    """Records per second appending ``count`` records one after another."""
    started = time.perf_counter()
    for n in range(count):
        await log.append(record(n))
    return count / (time.perf_counter() - started)


async def _nothing(call: ToolCall) -> CallResult:
    return RESULT


async def per_call(interceptors: Sequence[Interceptor], calls: int) -> list[float]:
    """Seconds per call through ``interceptors`` around a call that does nothing, one sample per call."""
    return await _timed(run_chain(interceptors, _nothing), calls)


async def _timed(handler: Handler, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        await handler(CALL)
        out.append(time.perf_counter() - started)
    return out


async def measure_rates(logs: dict[str, AuditLog], count: int, repeats: int) -> dict[str, list[float]]:
    for log in logs.values():
        await log.append(record(-1))  # connect and create the table outside the clock
    variants: dict[str, Callable[[int], Awaitable[float]]] = {
        kind: (lambda _, log=log: append_rate(log, count)) for kind, log in logs.items()}
    return await rounds(variants, repeats)


async def measure_latency(chains: dict[str, Sequence[Interceptor]], calls: int,
                          repeats: int) -> dict[str, list[float]]:
    """Per round, each variant's median seconds per call."""
    handlers = {name: run_chain(chain, _nothing) for name, chain in chains.items()}
    for handler in handlers.values():
        await _timed(handler, 5)  # open files and connections outside the clock

    async def median_of(handler: Handler) -> float:
        return statistics.median(await _timed(handler, calls))

    variants: dict[str, Callable[[int], Awaitable[float]]] = {
        name: (lambda _, h=handler: median_of(h)) for name, handler in handlers.items()}
    return await rounds(variants, repeats)


def added(samples: list[float], bare: list[float], scale: float) -> list[float]:
    """Per round, what a variant adds over the bare call in the same round, in ``1/scale`` seconds."""
    return [(s - b) * scale for s, b in zip(samples, bare, strict=True)]


def main() -> None:
    args = bench_parser(__doc__ or "").parse_args()
    started = time.perf_counter()
    count, calls, repeats = (200, 100, 5) if args.quick else (1000, 500, 9)
    report = Report("audit", "Audit trail: records per second, added latency per call, telemetry's cost",
                    params={"records": count, "calls": calls, "rounds": repeats})
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    from fixtures.postgres import PostgresUnavailable, TempPostgres

    postgres = TempPostgres()
    logs: dict[str, AuditLog] = {"jsonl": JsonlAuditLog(tmp / "rate.jsonl"), "sqlite": SqliteAuditLog(tmp / "rate.db")}
    try:
        postgres.start()
        logs["postgres"] = PostgresAuditLog(postgres.new_database("bench_audit"))
    except PostgresUnavailable as e:
        report.notes.append(f"PostgreSQL rows missing: {e}")
    stores: list[AuditLog] = list(logs.values())
    try:
        rates = anyio.run(measure_rates, logs, count, repeats)
        for kind, samples in rates.items():
            report.add(f"{kind}: chained records per second, one writer", samples, "records/s", group="rate")
        jsonl, sqlite, threaded, hopped = JsonlAuditLog(tmp / "calls.jsonl"), SqliteAuditLog(tmp / "calls.db"), \
            ThreadOnly(tmp / "thread.db"), SqliteAuditLog(tmp / "hop.db")
        stores += [jsonl, sqlite, threaded, hopped]
        telemetry = Telemetry()
        chains: dict[str, Sequence[Interceptor]] = {
            "bare": (), "jsonl": (AuditTrail(jsonl),), "sqlite": (AuditTrail(sqlite),),
            "sqlite, every row on its writer thread": (AuditTrail(threaded),),
            "sqlite via anyio.to_thread": (AuditTrail(ToThread(hopped)),),
            "telemetry": (telemetry.start(), telemetry.sent())}
        latency = anyio.run(measure_latency, chains, calls, repeats)
        bare = latency["bare"]
        for name in ("jsonl", "sqlite", "sqlite, every row on its writer thread", "sqlite via anyio.to_thread"):
            extra = added(latency[name], bare, 1000)
            note, goal = "", None
            if name == "sqlite":
                goal = statistics.median(extra) <= GOAL_MS
                note = f"goal <= {GOAL_MS} ms: {'met' if goal else 'missed'}"
            report.add(f"{name}: latency the trail adds per call (2 records)", extra, "ms", group="latency",
                       note=note, goal_met=goal)
        report.add("telemetry, no provider configured: added per call", added(latency["telemetry"], bare, 1e6), "µs",
                   group="telemetry")
    finally:
        for log in stores:
            close_audit_log(log)
        postgres.stop()
    finish(report, started, args.json)


if __name__ == "__main__":
    main()
