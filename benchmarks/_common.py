"""Shared plumbing for the ``bench_*.py`` benchmarks: paths, machine description, statistics,
interleaved repetitions, the autogen-ext driver client, and result reports.

Every benchmark is a script run by path (``python benchmarks/bench_x.py``), so this module is
imported as a sibling (``from _common import ...``). A benchmark builds a ``Report`` of ``Row``s;
``finish()`` prints it with rich, and writes it as JSON (and markdown) under ``bench-results/``
(git-ignored). ``run_all.py`` runs every benchmark and joins their JSON into one table.

Methodology shared by all of them:
- variants are measured side by side in one run, in rounds whose order rotates (A B C, B C A,
  C A B, ...), so a load spike on a shared machine hits every variant rather than one;
- numbers are medians over rounds, with the interquartile range; a ratio is median / median;
- the machine, its load average before and after, and every relevant version go with the result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = [
    "AUTOGEN_EXT_PY",
    "DRIVER",
    "EVERYTHING",
    "INSPECTOR",
    "NODE",
    "PROXY",
    "RESULTS",
    "ROOT",
    "AutogenExtDriver",
    "CpuClock",
    "Report",
    "Row",
    "Stats",
    "bench_parser",
    "bench_server_argv",
    "describe_machine",
    "everything_argv",
    "finish",
    "fmt_load",
    "fmt_ratio",
    "fmt_value",
    "load_average",
    "machine",
    "markdown_table",
    "optional_driver",
    "paired",
    "require",
    "rounds",
]

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # scripts run by path; `fixtures` (the repo's test servers) lives at the root
    sys.path.append(str(ROOT))
RESULTS = ROOT / "bench-results"
THIRD_PARTY = Path(os.environ.get("THIRD_PARTY_DIR") or ROOT / ".third_party")
NODE = THIRD_PARTY / "bin" / "node"
_NPM = THIRD_PARTY / "npm" / "node_modules" / "@modelcontextprotocol"
EVERYTHING = _NPM / "server-everything" / "dist" / "index.js"
INSPECTOR = _NPM / "inspector" / "clients" / "launcher" / "build" / "index.js"
AUTOGEN_EXT_VENV = THIRD_PARTY / "venvs" / "autogen-ext"
AUTOGEN_EXT_PY = AUTOGEN_EXT_VENV / "bin" / "python"
HERE = Path(__file__).resolve().parent
DRIVER = HERE / "_autogen_ext_driver.py"
PROXY = HERE / "_count_proxy.py"


def everything_argv() -> list[str]:
    """server-everything over stdio, under the pinned Node."""
    return [str(NODE), str(EVERYTHING), "stdio"]


def bench_server_argv(tools: int, page_size: int = 100) -> list[str]:
    """The repo's bench fixture over stdio; run it with ``cwd=ROOT`` (it is imported as ``fixtures``)."""
    return [sys.executable, "-m", "fixtures.bench_server", "--tools", str(tools), "--page-size", str(page_size)]


def require(*paths: Path) -> None:
    """Exit with a pointer to the installer when a third-party piece is missing."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `make third-party` (and scripts/install_bench_env.sh)")


# -- machine ----------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _venv_version(venv: Path, dist: str) -> str | None:
    # Read the other venv's dist-info rather than start its interpreter (that takes seconds).
    norm = dist.replace("-", "_")
    for info in sorted(venv.glob(f"lib/python*/site-packages/{norm}-*.dist-info")):
        return info.name[len(norm) + 1 : -len(".dist-info")]
    return None


def _node_version() -> str | None:
    try:
        return subprocess.run([str(NODE), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _npm_version(package: str) -> str | None:
    try:
        return str(json.loads((_NPM / package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """What the numbers were measured on; the load average matters on a shared machine."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "mcp": _version("mcp"),
        "autogen_core": _version("autogen-core"),
        "autogen_agentchat": _version("autogen-agentchat"),
        "bridge": _version("autogen-mcp-bridge"),
        "autogen_ext_venv": {"autogen_ext": _venv_version(AUTOGEN_EXT_VENV, "autogen-ext"),
                             "mcp": _venv_version(AUTOGEN_EXT_VENV, "mcp")},
        "node": _node_version(),
        "server_everything": _npm_version("server-everything"),
        "inspector": _npm_version("inspector"),
        "load_average": load_average(),
    }


def describe_machine(m: Mapping[str, Any]) -> str:
    """One line for a table caption."""
    ext = m.get("autogen_ext_venv") or {}
    return (f"{m['cpu']}, {m['usable_cores']}/{m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; "
            f"Python {m['python']}, mcp {m['mcp']}, autogen {m['autogen_core']}; "
            f"comparison venv: autogen-ext {ext.get('autogen_ext')} + mcp {ext.get('mcp')}; "
            f"node {m['node']}, server-everything {m['server_everything']}, inspector {m['inspector']}")


# -- statistics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Median and quartiles of a sample (quartiles equal the median below three values)."""

    n: int
    median: float
    q1: float
    q3: float
    low: float
    high: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        if not samples:
            raise ValueError("no samples")
        xs = sorted(samples)
        med = statistics.median(xs)
        if len(xs) >= 3:
            q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
        else:
            q1 = q3 = med
        return cls(len(xs), med, q1, q3, xs[0], xs[-1])

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def scaled(self, factor: float) -> Stats:
        return Stats(self.n, self.median * factor, self.q1 * factor, self.q3 * factor, self.low * factor,
                     self.high * factor)


def fmt_value(value: float, unit: str) -> str:
    if unit.startswith("requests"):
        return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    if ratio >= 100:
        return f"{ratio:,.0f}×"
    if ratio >= 10:
        return f"{ratio:.1f}×"
    return f"{ratio:.2f}×"


def paired(values: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Per-round ratios ``values[r] / baseline[r]`` (both lists in round order, same rounds)."""
    if len(values) != len(baseline):
        raise ValueError("paired ratios need one value per round on both sides")
    return [v / b for v, b in zip(values, baseline, strict=True) if b]


async def rounds(variants: Mapping[str, Callable[[int], Awaitable[Any]]], count: int, *,
                 budget: float | None = None, min_rounds: int = 3,
                 skip: Callable[[str, int], bool] | None = None) -> dict[str, list[Any]]:
    """Run every variant once per round, rotating the order each round; collect what each returns.

    ``budget`` (seconds) stops starting new rounds once spent, but never before ``min_rounds``;
    ``skip(name, round)`` leaves a variant out of some rounds (the slow ones).
    """
    names = list(variants)
    out: dict[str, list[Any]] = {name: [] for name in names}
    started = time.perf_counter()
    for r in range(count):
        if budget is not None and r >= min_rounds and time.perf_counter() - started > budget:
            break
        for name in names[r % len(names):] + names[: r % len(names)]:
            if skip is not None and skip(name, r):
                continue
            out[name].append(await variants[name](r))
    return out


# -- reports ----------------------------------------------------------------------------------


@dataclass
class Row:
    """One measured variant: a median with its spread, and how it compares with the baseline."""

    variant: str
    stats: Stats | None
    unit: str
    ratio: float | None = None
    baseline: str | None = None
    note: str = ""
    group: str = ""
    """A sub-heading within the benchmark (e.g. the catalogue size)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def value_text(self) -> str:
        if self.stats is None:
            return "n/a"
        s = self.stats
        text = f"{fmt_value(s.median, self.unit)} {self.unit}"
        if s.n >= 3 and s.iqr > 0 and not self.unit.startswith("requests"):  # counts: the note says why
            text += f" ({fmt_value(s.q1, self.unit)}–{fmt_value(s.q3, self.unit)})"
        return text

    def ratio_text(self) -> str:
        if self.ratio is None:
            return "baseline" if self.baseline is None and self.extra.get("is_baseline") else ""
        return fmt_ratio(self.ratio)


@dataclass
class Report:
    """What one benchmark measured, with the conditions it was measured under."""

    name: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine)
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    seconds: float = 0.0
    load_after: list[float] = field(default_factory=list)

    def add(self, variant: str, samples: Sequence[float] | Stats | None, unit: str, *, baseline: Row | None = None,
            unit_scale: float = 1.0, paired: Sequence[float] | None = None, note: str = "", group: str = "",
            is_baseline: bool = False, **extra: Any) -> Row:
        """Add a row. With ``baseline``, the ratio is the median of ``paired`` (this variant over
        the baseline within the same round: both saw the same machine load) when given, else
        median / median. ``unit_scale``: how many of the baseline's units one of this row's is
        (1000 for ms against µs; paired ratios are unitless already)."""
        stats = samples if isinstance(samples, Stats) or samples is None else Stats.of(samples)
        ratio = None
        if baseline is not None and paired:
            ratio = statistics.median(paired)
            extra["paired_ratios"] = list(paired)
        elif baseline is not None and baseline.stats is not None and stats is not None and baseline.stats.median:
            ratio = stats.median * unit_scale / baseline.stats.median
        if is_baseline:
            extra["is_baseline"] = True
        row = Row(variant, stats, unit, ratio, baseline.variant if baseline else None, note, group, extra)
        self.rows.append(row)
        return row

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        rows = [Row(**{**r, "stats": Stats(**r["stats"]) if r["stats"] else None}) for r in data["rows"]]
        return cls(**{**data, "rows": rows})

    def markdown_rows(self) -> list[list[str]]:
        """``[benchmark, variant, median (IQR), ratio, notes]`` per row."""
        out = []
        for row in self.rows:
            variant = f"{row.group}: {row.variant}" if row.group else row.variant
            out.append([self.title, variant, row.value_text(), row.ratio_text(), row.note])
        return out

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", markdown_table(self.markdown_rows(), with_bench=False), ""]
        lines += [f"- {note}" for note in self.notes]
        lines += ["", f"_{describe_machine(self.machine)}; load average {fmt_load(self.machine['load_average'])}"
                      f" before, {fmt_load(self.load_after)} after; {self.seconds:.0f} s._"]
        return "\n".join(lines) + "\n"


HEADER = ["Benchmark", "Variant", "Median (IQR)", "vs baseline", "Notes"]


def markdown_table(rows: Sequence[Sequence[str]], *, with_bench: bool = True) -> str:
    header = HEADER if with_bench else HEADER[1:]
    body = [list(r) if with_bench else list(r[1:]) for r in rows]
    if with_bench:  # the benchmark name once per block, like a sub-heading
        previous = None
        for r in body:
            r[0], previous = ("" if r[0] == previous else f"**{r[0]}**"), r[0]
    cells = [header, ["---"] * len(header), *body]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in cells)


def fmt_load(load: Sequence[float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load) if load else "n/a"


def print_report(report: Report) -> None:
    table = Table(title=report.title, title_justify="left")
    for col in HEADER[1:]:
        table.add_column(col, overflow="fold")
    for r in report.markdown_rows():
        table.add_row(*(Text(c) for c in r[1:]))  # Text, not markup: names may hold brackets
    console = Console()
    if not console.is_terminal:  # piped into a log: do not wrap at 80 columns
        console = Console(width=160)
    console.print(table)
    for line in [*(f"- {note}" for note in report.notes), describe_machine(report.machine),
                 f"load average {fmt_load(report.machine['load_average'])} before, "
                 f"{fmt_load(report.load_after)} after; {report.seconds:.0f} s"]:
        console.print(Text(f"  {line}"))


def bench_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes: ``--quick`` (a smoke run) and ``--json PATH``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls (a smoke run)")
    parser.add_argument("--json", type=Path, default=None,
                        help="write the report here (default: bench-results/<name>.json)")
    return parser


def finish(report: Report, started: float, json_path: Path | None) -> Path:
    """Stamp the report, print it, write JSON + markdown; returns the JSON path."""
    report.seconds = time.perf_counter() - started
    report.load_after = load_average()
    print_report(report)
    RESULTS.mkdir(exist_ok=True)
    path = json_path or RESULTS / f"{report.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2))
    (RESULTS / f"{report.name}.md").write_text(report.markdown())
    return path


# -- the autogen-ext side -----------------------------------------------------------------------


class AutogenExtDriver:
    """A long-lived ``_autogen_ext_driver.py`` in the autogen-ext venv, spoken to in JSON lines.

    Long-lived so that its import time (seconds) is paid once, and so its workbench session
    persists across rounds exactly like ours does.
    """

    def __init__(self, timeout: float = 300.0) -> None:
        self.timeout = timeout
        self._process: anyio.abc.Process | None = None
        self._buffer = b""
        self.versions: dict[str, Any] = {}
        self.log = RESULTS / "autogen-ext-driver.log"

    @staticmethod
    def available() -> bool:
        return AUTOGEN_EXT_PY.exists() and (AUTOGEN_EXT_VENV / ".stamp").exists()

    async def __aenter__(self) -> AutogenExtDriver:
        # Its stderr (and that of every server it spawns: server-everything greets on stderr)
        # goes to a log, so the benchmark output stays readable; failures quote its tail.
        RESULTS.mkdir(exist_ok=True)
        self.log = RESULTS / "autogen-ext-driver.log"
        with self.log.open("a") as log:
            self._process = await anyio.open_process([str(AUTOGEN_EXT_PY), str(DRIVER)], stderr=log, cwd=ROOT)
        self.versions = await self.request({"op": "versions"}, timeout=120)
        return self

    async def __aexit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(Exception):
                assert process.stdin is not None
                await process.stdin.aclose()  # EOF: the driver closes its sessions and exits
            with anyio.move_on_after(15):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()

    async def request(self, command: Mapping[str, Any], timeout: float | None = None) -> Any:
        """Send one command and wait for its one-line JSON answer.

        Raises:
            RuntimeError: the driver reported an error or died.
        """
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        await process.stdin.send(json.dumps(command).encode() + b"\n")
        with anyio.fail_after(timeout or self.timeout):
            while b"\n" not in self._buffer:
                try:
                    chunk = await process.stdout.receive()
                except anyio.EndOfStream:
                    tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
                    raise RuntimeError(f"autogen-ext driver exited during {command['op']!r}: {tail}") from None
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"autogen-ext driver, {command['op']!r}: {answer['error']}")
        return answer["result"]


@contextlib.asynccontextmanager
async def optional_driver(notes: list[str]) -> AsyncIterator[AutogenExtDriver | None]:
    """The driver, or ``None`` (with a note) when its venv is not installed."""
    if not AutogenExtDriver.available():
        notes.append("autogen-ext rows skipped: run scripts/install_bench_env.sh to create its venv")
        yield None
        return
    async with AutogenExtDriver() as driver:
        yield driver


class CpuClock:
    """Wall and CPU time of this process over a block (CPU time is what load cannot inflate)."""

    def __enter__(self) -> CpuClock:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
