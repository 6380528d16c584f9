"""Run every ``benchmarks/bench_*.py`` and print one combined markdown table (the README's).

    python benchmarks/run_all.py [--quick] [--only overhead cli ...]

Each benchmark runs in its own process (so one's memory and event loop cannot colour another's,
and a crash costs only its rows) with a time limit, writing ``bench-results/<name>.json``. The
combined table goes to stdout and to ``bench-results/summary.md``; ``summary.json`` keeps
everything. The autogen-ext comparison venv is installed first when missing
(``scripts/install_bench_env.sh``, a no-op when up to date).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    RESULTS,
    ROOT,
    Report,
    describe_machine,
    fmt_load,
    load_average,
    machine,
    markdown_table,
)

HERE = Path(__file__).resolve().parent
# The order; any other bench_*.py runs afterwards, alphabetically.
ORDER = ["overhead", "discovery", "concurrency", "agent_turn", "cli"]
# Generous per-benchmark limits; together they keep a hung run well bounded.
LIMITS = {"overhead": 420, "discovery": 480, "concurrency": 240, "agent_turn": 300, "cli": 300}
DEFAULT_LIMIT = 300


def scripts() -> dict[str, Path]:
    found = {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}
    return {name: found[name] for name in ORDER if name in found} | {
        n: p for n, p in found.items() if n not in ORDER}


def ensure_bench_env() -> str | None:
    """Install the autogen-ext venv if needed; returns a problem to report, or None."""
    try:
        subprocess.run(["bash", str(ROOT / "scripts" / "install_bench_env.sh")], check=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as e:
        return f"could not install the autogen-ext comparison venv ({e}); its rows are missing"
    return None


def combined(reports: list[Report], before: list[float], after: list[float], seconds: float,
             failures: list[str]) -> str:
    rows = [row for report in reports for row in report.markdown_rows()]
    m = reports[0].machine if reports else machine()
    lines = [
        "## Benchmarks",
        "",
        f"`make bench`, {datetime_now()}: {describe_machine(m)}.",
        f"Load average {fmt_load(before)} before the run, {fmt_load(after)} after "
        f"(1 / 5 / 15 min; a shared machine); {seconds / 60:.1f} min in all.",
        "",
        markdown_table(rows),
        "",
        "Medians over rounds in which the variants alternate (IQR in brackets). Ratios against each benchmark's "
        "baseline: the median of per-round ratios where both ran in every round (overhead, discovery, CLI), "
        "else median / median.",
        "",
    ]
    for report in reports:
        lines += [f"- **{report.title}**: {' '.join(report.notes)}"]
    lines += [f"- **FAILED**: {failure}" for failure in failures]
    return "\n".join(lines) + "\n"


def datetime_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (a smoke run)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these (overhead, discovery, ...)")
    opts = parser.parse_args(argv)
    started = time.perf_counter()
    before = load_average()
    RESULTS.mkdir(exist_ok=True)
    # The benchmarks append their autogen-ext drivers' stderr here; one run's worth is enough.
    (RESULTS / "autogen-ext-driver.log").unlink(missing_ok=True)
    failures: list[str] = []
    problem = ensure_bench_env()
    if problem:
        failures.append(problem)
    reports: list[Report] = []
    for name, script in scripts().items():
        if opts.only is not None and name not in opts.only:
            continue
        out = RESULTS / f"{name}.json"
        out.unlink(missing_ok=True)
        limit = LIMITS.get(name, DEFAULT_LIMIT)
        command = [sys.executable, str(script), "--json", str(out), *(["--quick"] if opts.quick else [])]
        print(f"== {script.name} (limit {limit} s)", flush=True)
        t0 = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, timeout=limit, check=False)
            code: int | str = done.returncode
        except subprocess.TimeoutExpired:
            code = f"timed out after {limit} s"
        if code != 0 or not out.exists():
            failures.append(f"{script.name}: exit {code}")
            continue
        reports.append(Report.from_json(json.loads(out.read_text())))
        print(f"== {script.name}: {time.perf_counter() - t0:.0f} s\n", flush=True)
    text = combined(reports, before, load_average(), time.perf_counter() - started, failures)
    (RESULTS / "summary.md").write_text(text)
    (RESULTS / "summary.json").write_text(json.dumps(
        {"reports": [r.to_json() for r in reports], "failures": failures, "load_before": before,
         "load_after": load_average(), "seconds": time.perf_counter() - started}, indent=2))
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
