"""CLI cold start: ``mcp-bridge tools`` against the MCP Inspector CLI on the same server.

Both list server-everything's tools over stdio from a fresh process (our CLI under this venv's
Python, the Inspector under the pinned Node), output captured and discarded; wall time from
spawn to exit, in rotating rounds. For scale, ``mcp-bridge --help`` (start-up alone, no server)
and ``python -X importtime`` of ``bridge.cli`` show where our start-up goes.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import anyio
from _common import (
    EVERYTHING,
    INSPECTOR,
    NODE,
    ROOT,
    Report,
    bench_parser,
    everything_argv,
    finish,
    paired,
    require,
    rounds,
)

MCP_BRIDGE = Path(sys.executable).with_name("mcp-bridge")


async def timed(argv: list[str], expect: str | None) -> float:
    """Seconds from spawn to exit; fails loudly if the command did not do its job."""
    started = time.perf_counter()
    done = await anyio.run_process(argv, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    out = done.stdout.decode(errors="replace")
    if done.returncode != 0 or (expect is not None and expect not in out):
        tail = (done.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{argv[:3]}... exited {done.returncode} (expected {expect!r} in its output): {tail}")
    return wall


def import_breakdown() -> list[tuple[str, float]]:
    """Cumulative import time (ms) of the heaviest top-level packages behind ``bridge.cli``.

    A package's time includes whatever it imported first (so the figures overlap).
    """
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import bridge.cli"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120).stderr
    totals: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)$", line)
        if m and "." not in m.group(2) and m.group(2) != "bridge":
            totals[m.group(2)] = int(m.group(1)) / 1e3
    return sorted(totals.items(), key=lambda kv: -kv[1])[:6]


async def main(argv: list[str] | None = None) -> Path:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds (default 7)")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.rounds = 2
    require(NODE, EVERYTHING, INSPECTOR, MCP_BRIDGE)
    started = time.perf_counter()
    report = Report("cli", "CLI cold start: list server-everything's tools (stdio)",
                    params=vars(opts) | {"json": str(opts.json)})
    server = everything_argv()
    commands = {
        "inspector": ([str(NODE), str(INSPECTOR), "--cli", *server, "--method", "tools/list"], '"echo"'),
        "bridge": ([str(MCP_BRIDGE), "tools", "--", *server], "echo"),
        "bridge-help": ([str(MCP_BRIDGE), "--help"], None),
    }
    variants = {name: (lambda _r, a=argv_, e=expect: timed(a, e)) for name, (argv_, expect) in commands.items()}
    results = await rounds(variants, opts.rounds, budget=150)
    ms = {name: [x * 1e3 for x in xs] for name, xs in results.items()}
    base = report.add("MCP Inspector CLI (--cli ... --method tools/list)", ms["inspector"], "ms", is_baseline=True,
                      note=f"inspector {report.machine['inspector']}, node {report.machine['node']}")
    report.add("mcp-bridge tools", ms["bridge"], "ms", baseline=base, paired=paired(ms["bridge"], ms["inspector"]),
               note="table output, captured")
    heavy = ", ".join(f"{name} {t:,.0f} ms" for name, t in import_breakdown())
    report.add("mcp-bridge --help (start-up alone, no server)", ms["bridge-help"], "ms", group="for scale",
               note=f"imports (cumulative, overlapping): {heavy}")
    report.notes.append(f"{len(ms['bridge'])} rotating rounds; a fresh process per run, server-everything spawned by "
                        "each CLI, output captured and checked for the echo tool; the ratio is the median of per-round "
                        "ratios.")
    return finish(report, started, opts.json)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
