"""Proves that code mode's sandbox never takes the process down at exit: N start/stop cycles.

Each cycle is a fresh Python process that starts the sandbox the way code mode does
(``bridge.code.sandbox``: the sync pool, sessions driven from worker threads, closed by ``atexit``),
runs a program that pauses at an external call and is resumed, and exits. The parent counts the
exits that were not a clean 0 (a negative code is the signal that killed the child: -6 is SIGABRT).

``--interface async`` runs the same cycle with ``pydantic_monty.AsyncMonty`` instead, left open at
exit as a program that forgets to close it would, for comparison with the reported aborts.

Usage: python scripts/monty_exit_cycles.py [--cycles 200] [--parallel 2] [--interface bridge|async]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BRIDGE_CYCLE = """
import anyio
from bridge.code.sandbox import Sandbox, monty

async def main() -> None:
    m = monty()
    box = Sandbox({"max_memory": 16_000_000}, None)
    await box.open()
    snap = await box.turn(lambda: box.session.feed_start("x = await tool(a=1)\\nx + 1"))
    snap = await box.turn(lambda: snap.resume({"future": ...}))
    snap = await box.turn(lambda: snap.resume({snap.pending_call_ids[0]: {"return_value": 41}}))
    assert isinstance(snap, m.MontyComplete) and snap.output == 42, snap
    await box.close()

anyio.run(main)
"""

ASYNC_CYCLE = """
import asyncio
import pydantic_monty as m

async def main() -> None:
    pool = m.AsyncMonty(min_processes=1)
    await pool.__aenter__()
    async with pool.checkout() as session:
        async def tool(a: int) -> int:
            return 41
        assert await session.feed_run("x = await tool(a=1)\\nx + 1", external_lookup={"tool": tool}) == 42
    # the pool is left for interpreter exit, as a program that never closes it

asyncio.run(main())
"""


def cycle(source: str) -> int:
    done = subprocess.run([sys.executable, "-c", source], cwd=ROOT, capture_output=True, timeout=120, check=False)
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--interface", choices=["bridge", "async"], default="bridge")
    args = parser.parse_args()
    source = BRIDGE_CYCLE if args.interface == "bridge" else ASYNC_CYCLE
    started = time.perf_counter()
    with ThreadPoolExecutor(args.parallel) as pool:
        codes = Counter(pool.map(cycle, [source] * args.cycles))
    bad = sum(n for code, n in codes.items() if code != 0)
    print(f"{args.interface}: {args.cycles} cycles in {time.perf_counter() - started:.0f} s; exit codes "
          f"{dict(sorted(codes.items()))}; {bad} not clean")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
