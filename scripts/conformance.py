"""Run the official MCP client conformance suite against the bridge, one scenario at a time.

For each spec version (default 2025-11-25 and 2026-07-28) it asks the pinned suite
(``.third_party/bin/conformance``, installed by ``make third-party``) which client scenarios
apply, runs each as ``conformance client --scenario S --spec-version V --command
"<python> tests/conformance/bridge_client.py"``, prints one line per scenario and then
``<version>: N passed, M failed``.

Why not ``--suite all``: the suite starts every scenario at once, and on a small machine the
clients (a Python interpreter each) then time out; one scenario takes 2–5 s alone. ``--jobs``
allows a few at a time.

Scenarios listed in ``tests/conformance/expected_failures.yml`` are reported as expected
failures (with the reason); one that passes is reported as stale. Exit status: 0 when every
scenario passed or failed as expected, 1 otherwise, 2 when the suite is not installed.

Usage::

    .venv/bin/python scripts/conformance.py [--spec-version V ...] [--scenario S ...] [--jobs N]
        [--client tests/conformance/raw_probe_client.py] [--output DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / ".third_party" / "bin" / "conformance"
CLIENT = ROOT / "tests" / "conformance" / "bridge_client.py"
EXPECTED = ROOT / "tests" / "conformance" / "expected_failures.yml"
VERSIONS = ("2025-11-25", "2026-07-28")
# The suite's own per-scenario client timeout (ms); generous, because a loaded CI runner is slow
# and an OAuth scenario makes a dozen HTTP round trips.
SUITE_TIMEOUT_MS = 120_000
# Our hard stop for one scenario, should the suite itself hang.
HARD_TIMEOUT_S = 300.0

_SCENARIO_LINE = re.compile(r"^\s*-\s+(\S+)\s+\[([^\]]*)\]")
_PASSED = re.compile(r"Passed:\s*(\d+)/(\d+),\s*(\d+) failed(?:,\s*(\d+) warnings)?")
_EXPECTED_ENTRY = re.compile(r"^\s*-\s*['\"]?([^\s#'\"]+)['\"]?\s*(?:#\s*(.*))?$")


@dataclass(frozen=True)
class Outcome:
    version: str
    scenario: str
    returncode: int
    passed: int
    total: int
    failed: int
    warnings: int
    seconds: float
    log: str

    @property
    def ok(self) -> bool:
        # The suite exits 1 when a check failed *or* the client exited with an error.
        return self.returncode == 0 and self.failed == 0 and self.total > 0


def scenarios(version: str) -> list[str]:
    """The client scenarios that apply at ``version`` (the suite's own filter; no extensions)."""
    out = subprocess.run([str(SUITE), "list", "--client", "--spec-version", version], capture_output=True,
                         text=True, check=True).stdout
    return [m.group(1) for line in out.splitlines() if (m := _SCENARIO_LINE.match(line))]


def expected_failures(path: Path) -> dict[str, str]:
    """``scenario`` (or ``scenario:check``) -> reason, from the ``client:`` list of the baseline file.

    A line parser rather than a YAML dependency: the format is one ``- name  # reason`` per line.
    """
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    in_client = False
    for line in path.read_text().splitlines():
        if re.match(r"^\S", line):  # a top-level key (or a comment in column 0)
            if not line.startswith("#"):
                in_client = line.split(":", 1)[0].strip() == "client"
            continue
        m = _EXPECTED_ENTRY.match(line)
        if in_client and m:
            found[m.group(1)] = (m.group(2) or "no reason given").strip()
    return found


def run_scenario(version: str, scenario: str, command: str, output: Path) -> Outcome:
    argv = [str(SUITE), "client", "--spec-version", version, "--scenario", scenario,
            "--timeout", str(SUITE_TIMEOUT_MS), "--command", command, "-o", str(output)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=HARD_TIMEOUT_S, cwd=ROOT)
        log, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        # TimeoutExpired carries bytes even under text=True.
        partial = b"".join(part for part in (e.stdout, e.stderr) if isinstance(part, bytes))
        log = partial.decode(errors="replace") + f"\n[scripts/conformance.py: killed after {HARD_TIMEOUT_S:.0f} s]"
        code = -1
    seconds = time.perf_counter() - started
    m = _PASSED.search(log)
    passed, total, failed, warnings = (int(g or 0) for g in m.groups()) if m else (0, 0, 0, 0)
    return Outcome(version, scenario, code, passed, total, failed, warnings, seconds, log)


def _tail(log: str, lines: int = 25) -> str:
    return "\n".join("      " + line for line in log.rstrip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec-version", action="append", dest="versions", metavar="V",
                        help=f"a spec version to run (repeatable; default {' and '.join(VERSIONS)})")
    parser.add_argument("--scenario", action="append", dest="only", metavar="S",
                        help="run only this scenario (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="scenarios run at once (default 1; keep it small)")
    parser.add_argument("--client", type=Path, default=CLIENT, help="the client program (default: the bridge's)")
    parser.add_argument("--expected-failures", type=Path, default=EXPECTED, metavar="FILE")
    parser.add_argument("--output", type=Path, help="keep the suite's per-scenario results here")
    parser.add_argument("--verbose", action="store_true", help="show the log tail of every failing scenario")
    args = parser.parse_args(argv)

    if not SUITE.exists():
        print(f"conformance: {SUITE} missing; run `make third-party` first", file=sys.stderr)
        return 2
    # The suite splits --command on spaces (no shell quoting) and appends the server URL.
    parts = [sys.executable, str(args.client.resolve())]
    if any(" " in part for part in parts):
        print(f"conformance: the suite splits --command on spaces; {parts} must not contain any", file=sys.stderr)
        return 2
    command = " ".join(parts)
    expected = expected_failures(args.expected_failures)
    output = args.output or Path(tempfile.mkdtemp(prefix="conformance-"))
    versions = args.versions or list(VERSIONS)

    bad = 0
    started = time.perf_counter()
    for version in versions:
        names = [s for s in scenarios(version) if not args.only or s in args.only]
        print(f"== spec {version}: {len(names)} client scenarios, {args.jobs} at a time", flush=True)
        counts = {"passed": 0, "failed": 0, "expected": 0, "stale": 0, "checks": 0, "checks_total": 0}
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures: list[Future[Outcome]] = [
                pool.submit(run_scenario, version, name, command, output / version) for name in names]
            for future in futures:  # in scenario order, each as soon as it and those before it are done
                o = future.result()
                reason = expected.get(o.scenario)
                checks = f"{o.passed}/{o.total} checks" + (f", {o.warnings} warnings" if o.warnings else "")
                if o.returncode != 0 and o.failed == 0:
                    checks += f", exit {o.returncode}"  # the client (or the suite) failed outright
                if o.ok:
                    status, key = ("PASS", "passed") if reason is None else ("STALE", "stale")
                else:
                    status, key = ("FAIL", "failed") if reason is None else ("XFAIL", "expected")
                note = {"STALE": "  passes now: remove it from the expected failures",
                        "XFAIL": f"  expected: {reason}"}.get(status, "")
                counts[key] += 1
                counts["checks"] += o.passed
                counts["checks_total"] += o.total
                print(f"  {status:<5} {o.scenario:<40} {checks:<24} {o.seconds:5.1f} s{note}", flush=True)
                if key in ("failed", "stale") or (args.verbose and not o.ok):
                    print(_tail(o.log), flush=True)
        failed = counts["failed"] + counts["stale"]
        bad += failed
        extra = f", {counts['expected']} expected failures" if counts["expected"] else ""
        extra += f", {counts['stale']} stale baseline entries" if counts["stale"] else ""
        print(f"{version}: {counts['passed']} passed, {counts['failed']} failed{extra}"
              f" ({counts['checks']}/{counts['checks_total']} checks)", flush=True)
    print(f"conformance: {time.perf_counter() - started:.0f} s; results in {output}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
