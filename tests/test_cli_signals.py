"""Ctrl-C during a call: ``mcp-bridge`` exits 130 with one line, and the server it started is gone.

The CLI runs as a real process with a real stdio server under it (the chaos server, which
journals a call before it starts sleeping), so SIGINT lands while the call is provably in
flight. Two deliveries: to the CLI alone, and to the whole process group, as a terminal's Ctrl-C
does. The server is stubborn (it ignores SIGINT and outlives its stdin), so only a CLI that
actually stops it, not one that merely exits, leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from helpers import PY, ROOT

from fixtures.chaos import journal_entries


def dead(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def interruptible() -> None:
    """A terminal's foreground job takes SIGINT by default; a job started in the background by a
    non-interactive shell (as CI runners and ``cmd &`` do) inherits it ignored, and Python keeps that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_sleep(journal: Path, cli: subprocess.Popen[str], limit: float = 60.0) -> dict[str, object]:
    """The chaos server's journal entry for the sleep, once the call has reached it."""
    deadline = time.monotonic() + limit
    while True:
        sleeping = [e for e in journal_entries(journal) if e.get("tool") == "sleep"]
        if sleeping:
            return sleeping[0]
        assert cli.poll() is None, f"the CLI exited early ({cli.returncode}): {cli.communicate()}"
        assert time.monotonic() < deadline, "the call never reached the server"
        time.sleep(0.05)


@pytest.mark.parametrize("delivery", ["cli-only", "process-group"])
def test_ctrl_c_mid_call_exits_130_and_leaves_no_process(tmp_path: Path, delivery: str) -> None:
    journal = tmp_path / "journal.jsonl"
    cli = subprocess.Popen(
        [PY, "-m", "bridge.cli", "call", "sleep", "--arg", "seconds=600", "--env", f"PYTHONPATH={ROOT}",
         "--", PY, "-m", "fixtures.chaos", "--stubborn", "--journal", str(journal)],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, so a group-wide SIGINT cannot reach pytest
        preexec_fn=interruptible)
    try:
        sleep = wait_for_sleep(journal, cli)
        tree = psutil.Process(cli.pid).children(recursive=True)
        assert sleep["pid"] in {p.pid for p in tree}  # the sleeping server is the CLI's own child

        if delivery == "cli-only":
            os.kill(cli.pid, signal.SIGINT)
        else:
            os.killpg(cli.pid, signal.SIGINT)
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()

    assert cli.returncode == 130, err
    assert out == ""
    assert err.splitlines() == ["mcp-bridge: error: interrupted"]
    # Not "will be gone soon": the CLI waited for its server before it exited.
    assert [p.pid for p in tree if not dead(p)] == []
