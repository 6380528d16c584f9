"""Load benchmark: many concurrent calls on one session, many sessions at once, and a soak mode.

Run from the repo root (loopback only; every phase is bounded in count and time)::

    python benchmarks/load.py                 # ~1 minute: the phases below, twice each
    python benchmarks/load.py --soak 600      # 10-minute soak: the phases in a loop
    python benchmarks/load.py --json bench-results/load.json

Phases, against fixtures/chaos.py (its hand-written stdio server answers each request on its
own thread, its HTTP server is the SDK's):

* ``stdio 1 session x 1000``: 1,000 concurrent ``echo`` calls on one stdio session.
* ``http 1 session x 1000``: the same over Streamable HTTP (2026-07-28, stateless).
* ``stdio 50 sessions x 20``: 50 stdio servers connected at once, 20 concurrent calls each.
* ``http 50 sessions x 20``: 50 sessions at once against one HTTP server.

Each phase reports throughput (calls/s), latency (p50/p99) and errors (an exception or an
``isError`` result; must be 0). After every round the process is checked against its state
before the first round: no extra child process, no extra file descriptor, and memory (RSS)
back within a margin once warmed up. The exit status is 1 when any of that fails.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anyio
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge import Server, connect  # noqa: E402

PY = sys.executable
PHASE_TIMEOUT = 120.0
# Python keeps freed memory in its arenas; after a warm-up round, growth past this is a leak.
RSS_MARGIN_MB = 25.0


@dataclass
class PhaseResult:
    name: str
    calls: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    first_error: str = ""

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


@dataclass
class Snapshot:
    children: int
    fds: int
    rss_mb: float

    @classmethod
    def take(cls) -> Snapshot:
        gc.collect()
        me = psutil.Process()
        live = [c for c in me.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]
        return cls(children=len(live), fds=me.num_fds(), rss_mb=me.memory_info().rss / 2**20)


@dataclass
class Report:
    phases: list[PhaseResult] = field(default_factory=list)
    snapshots: list[tuple[str, Snapshot]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _env() -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT)}


def stdio_server(name: str = "chaos") -> Server:
    return connect([PY, "-m", "fixtures.chaos"], env=_env(), cwd=ROOT, name=name, timeout=60, call_timeout=60)


class HttpServer:
    """The chaos SDK server on 127.0.0.1, started once for the HTTP phases."""

    def __init__(self) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="load-http-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen([PY, "-m", "fixtures.chaos", "--transport", "http", "--port", "0"], cwd=ROOT,
                                     env={**os.environ, **_env()}, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        self.log.close()
        deadline = time.monotonic() + 60
        while not (match := re.search(r"LISTENING (http://\S+)", Path(self.log.name).read_text())):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start: {Path(self.log.name).read_text()[-500:]}")
            time.sleep(0.05)
        self.url = match.group(1)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        os.unlink(self.log.name)


async def _calls(server: Server, count: int, latencies: list[float], errors: list[str]) -> None:
    async def one(i: int) -> None:
        started = time.perf_counter()
        try:
            result = await server.call("echo", {"text": f"call {i}"})
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
            return
        latencies.append(time.perf_counter() - started)
        if result.is_error or result.text != json.dumps({"text": f"call {i}"}):
            errors.append(f"unexpected result: {result.text[:200]}")

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(one, i)


def _result(name: str, calls: int, seconds: float, latencies: list[float], errors: list[str]) -> PhaseResult:
    ordered = sorted(latencies) or [0.0]
    return PhaseResult(name=name, calls=calls, errors=len(errors), seconds=seconds,
                       p50_ms=statistics.median(ordered) * 1000,
                       p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
                       first_error=errors[0] if errors else "")


async def one_session(name: str, open_server: Callable[[], Server], calls: int) -> PhaseResult:
    latencies: list[float] = []
    errors: list[str] = []
    async with open_server() as server:
        await server.call("echo", {"text": "warm-up"})
        started = time.perf_counter()
        await _calls(server, calls, latencies, errors)
        seconds = time.perf_counter() - started
    return _result(name, calls, seconds, latencies, errors)


async def many_sessions(name: str, open_server: Callable[[int], Server], sessions: int, calls: int) -> PhaseResult:
    latencies: list[float] = []
    errors: list[str] = []
    seconds = 0.0

    async def session(i: int, ready: anyio.Event, go: anyio.Event, done: list[int]) -> None:
        try:
            async with open_server(i) as server:
                done.append(i)
                if len(done) == sessions:
                    ready.set()
                await go.wait()
                await _calls(server, calls, latencies, errors)
        except Exception as e:
            errors.append(f"session {i}: {type(e).__name__}: {e}")
            ready.set()

    ready, go, done = anyio.Event(), anyio.Event(), []
    async with anyio.create_task_group() as tg:
        for i in range(sessions):
            tg.start_soon(session, i, ready, go, done)
        await ready.wait()  # all connected at once, then all call at once
        started = time.perf_counter()
        go.set()
    seconds = time.perf_counter() - started
    return _result(name, sessions * calls, seconds, latencies, errors)


def _check(report: Report, label: str, base: Snapshot, warm: Snapshot | None) -> None:
    now = Snapshot.take()
    report.snapshots.append((label, now))
    if now.children > base.children:
        report.problems.append(f"{label}: {now.children - base.children} child process(es) left running")
    if now.fds > base.fds:
        report.problems.append(f"{label}: {now.fds - base.fds} file descriptor(s) left open")
    if warm is not None and now.rss_mb > warm.rss_mb + RSS_MARGIN_MB:
        report.problems.append(f"{label}: memory grew {now.rss_mb - warm.rss_mb:.1f} MB since warm-up")


async def run(rounds: int, soak: float, calls: int, sessions: int, per_session: int) -> Report:
    report = Report()
    http = HttpServer()
    try:
        phases: list[tuple[str, Callable[[], Awaitable[PhaseResult]]]] = [
            (f"stdio 1 session x {calls}", lambda: one_session("stdio", stdio_server, calls)),
            (f"http 1 session x {calls}",
             lambda: one_session("http", lambda: connect(http.url, name="http", call_timeout=60), calls)),
            (f"stdio {sessions} sessions x {per_session}",
             lambda: many_sessions("stdio", lambda i: stdio_server(f"chaos{i}"), sessions, per_session)),
            (f"http {sessions} sessions x {per_session}",
             lambda: many_sessions("http", lambda i: connect(http.url, name=f"http{i}", timeout=60, call_timeout=60),
                                   sessions, per_session)),
        ]
        base = Snapshot.take()
        report.snapshots.append(("start", base))
        warm: Snapshot | None = None
        deadline = time.monotonic() + soak
        n = 0
        while n < rounds or time.monotonic() < deadline:
            n += 1
            for label, phase in phases:
                with anyio.fail_after(PHASE_TIMEOUT):
                    result = await phase()
                result.name = f"round {n}: {label}"
                report.phases.append(result)
                print(f"{result.name:<40} {result.throughput:8.0f} calls/s  p50 {result.p50_ms:7.1f} ms  "
                      f"p99 {result.p99_ms:7.1f} ms  errors {result.errors}"
                      + (f"  ({result.first_error})" if result.errors else ""), flush=True)
                if result.errors:
                    report.problems.append(f"{result.name}: {result.errors} error(s), first: {result.first_error}")
            await anyio.sleep(0.5)  # let closed sessions finish reaping before counting
            _check(report, f"after round {n}", base, warm)
            warm = warm or report.snapshots[-1][1]
            label, snap = report.snapshots[-1]
            print(f"{label:<40} children {snap.children}  fds {snap.fds}  rss {snap.rss_mb:.1f} MB", flush=True)
    finally:
        http.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all phases (default 2; the first warms up)")
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                        help="keep running rounds for this long (600 for the 10-minute soak)")
    parser.add_argument("--calls", type=int, default=1000, help="concurrent calls on one session (default 1000)")
    parser.add_argument("--sessions", type=int, default=50, help="sessions at once (default 50)")
    parser.add_argument("--per-session", type=int, default=20, help="concurrent calls per session (default 20)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    args = parser.parse_args(argv)

    started = time.monotonic()
    report = anyio.run(run, args.rounds, args.soak, args.calls, args.sessions, args.per_session)
    total_calls = sum(p.calls for p in report.phases)
    total_errors = sum(p.errors for p in report.phases)
    print(f"\n{len(report.phases)} phases, {total_calls} calls, {total_errors} errors, "
          f"{time.monotonic() - started:.0f} s")
    start, end = report.snapshots[0][1], report.snapshots[-1][1]
    print(f"children {start.children} -> {end.children}, fds {start.fds} -> {end.fds}, "
          f"rss {start.rss_mb:.1f} -> {end.rss_mb:.1f} MB")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "phases": [{**asdict(p), "throughput": p.throughput} for p in report.phases],
            "snapshots": [{"at": label, **asdict(s)} for label, s in report.snapshots],
            "problems": report.problems}, indent=2))
    for problem in report.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
