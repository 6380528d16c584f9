"""Server death and reconnection: stdio servers killed mid-call, HTTP servers restarted or gone.

Every test runs real server processes (fixtures/chaos.py) and checks that nothing leaks:
no child process, no asyncio task, no file descriptor outlives the connection.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from helpers import PY, ROOT, fixture_env, module_cmd, until
from leaks import Baseline

from bridge import ConnectError, ConnectionLost, Server, connect
from fixtures.chaos import journal_entries

pytestmark = pytest.mark.anyio


def calls(journal: Path, tool: str) -> int:
    return sum(1 for e in journal_entries(journal) if e.get("tool") == tool)


def entries(journal: Path, **match: Any) -> list[dict[str, Any]]:
    return [e for e in journal_entries(journal) if all(e.get(k) == v for k, v in match.items())]



def connected(server: Server) -> bool:
    """The bridge still believes in its current connection (it has not noticed a death)."""
    gen = server.session._gen
    return gen is not None and gen.alive


def dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def kill_once_sleeping(journal: Path, pid: int, killed: list[float]) -> None:
    """SIGKILL the server as soon as it has journalled the start of its sleep: the call is in flight."""
    await until(lambda: calls(journal, "sleep") == 1, "the server started the sleep")
    os.kill(pid, signal.SIGKILL)
    killed.append(time.time())


def failed_mid_sleep(journal: Path, killed: list[float], failed_at: float) -> None:
    """The call failed after the kill and long before the server's sleep could have ended."""
    (sleep,) = entries(journal, tool="sleep")
    assert killed, "the call failed before the server was killed"
    assert killed[0] <= failed_at < sleep["until"]


@asynccontextmanager
async def stdio_chaos(journal: Path, *args: str, **kwargs: Any) -> AsyncIterator[Server]:
    """A chaos server over stdio, checked for leaks after it is closed."""
    baseline = Baseline()
    async with connect(module_cmd("fixtures.chaos", "--journal", str(journal), *args), env=fixture_env(),
                       cwd=ROOT, call_timeout=20, **kwargs) as server:
        yield server
    await baseline.assert_back()


class HttpChaos:
    """A chaos server over HTTP that a test can kill and restart on the same port.

    Its stderr goes to a file, not a pipe, so the test process holds no descriptor for it
    and the bridge's own descriptors can be counted exactly.
    """

    def __init__(self, journal: Path, transport: str = "http") -> None:
        self.journal = journal
        self.transport = transport
        self.log = journal.with_suffix(".log")
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [PY, "-m", "fixtures.chaos", "--transport", self.transport, "--port", str(self.port),
                 "--journal", str(self.journal)],
                cwd=ROOT, env={**os.environ, **fixture_env()}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while not (match := re.search(r"LISTENING (http://127.0.0.1:(\d+)/(mcp|sse))", self.log.read_text())):
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the HTTP chaos server did not start"
            time.sleep(0.02)
        self.url, self.port = match.group(1), int(match.group(2))

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-whatever, as in a crash."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


@contextmanager
def http_chaos(journal: Path, transport: str = "http") -> Iterator[HttpChaos]:
    server = HttpChaos(journal, transport)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# -- stdio ------------------------------------------------------------------------------------------


async def test_stdio_server_killed_mid_call_fails_that_call_then_respawns(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    async with stdio_chaos(journal) as server:
        pid = int((await server.call("pid")).text)
        version = server.session.tools_version
        killed: list[float] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_once_sleeping, journal, pid, killed)
            # 60 s of sleep against a 20 s call timeout: only the death can end this call as ConnectionLost.
            with pytest.raises(ConnectionLost, match=r"^server 'fixtures\.chaos', tool 'sleep': .*lost"):
                await server.call("sleep", {"seconds": 60})  # not idempotent: never re-sent
            failed_at = time.time()
        failed_mid_sleep(journal, killed, failed_at)
        # The kernel closes a killed process's pipes before it turns zombie, so the call can fail a
        # moment before the process is reaped; on a loaded machine that moment is visible.
        await until(lambda: dead(pid), "the killed server was reaped")
        assert calls(journal, "sleep") == 1

        # The next call respawns, re-initialises and re-lists, transparently.
        new_pid = int((await server.call("pid")).text)
        assert new_pid != pid
        assert server.session.tools_version > version
        assert len(await server.tools()) == 14


async def test_idempotent_call_is_retried_once_after_reconnect_and_others_never(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    async with stdio_chaos(journal) as server:
        # Declared idempotent: the server dies on the first call, the bridge reconnects and re-sends.
        result = await server.call("die_once_idempotent")
        assert result.text == "survived (call 2)"
        assert calls(journal, "die_once_idempotent") == 2

        # Not idempotent: the call may have had its effect before the server died, so it is not re-sent.
        with pytest.raises(ConnectionLost, match=r"tool 'die_once': .*exited \(stderr: chaos: dying during die_once\)"):
            await server.call("die_once")
        assert calls(journal, "die_once") == 1
        assert (await server.call("die_once")).text == "survived (call 2)"  # only because we asked again


async def test_read_only_call_is_resent_after_a_death_and_an_unhinted_one_never(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    async with stdio_chaos(journal, "--listing", "retry-hints") as server:
        hints = {t.mcp_name: t.annotations for t in await server.tools()}
        assert hints["die_once_read_only"].read_only and hints["die_once_read_only"].idempotent is None
        assert hints["die_once_unhinted"] == type(hints["die_once_unhinted"])()  # no hint at all

        # Read-only implies nothing to repeat: the bridge respawns the server and sends it again.
        assert (await server.call("die_once_read_only")).text == "survived (call 2)"
        first, second = entries(journal, tool="die_once_read_only")
        assert first["pid"] != second["pid"]  # the second copy went to the respawned server

        # No hints: the spec's defaults (not read-only, not idempotent), so it is never re-sent.
        with pytest.raises(ConnectionLost, match=r"tool 'die_once_unhinted': .*exited \(stderr: chaos: dying during "
                                                 r"die_once_unhinted\)"):
            await server.call("die_once_unhinted")
        assert calls(journal, "die_once_unhinted") == 1


async def test_server_dying_while_idle_is_replaced_before_the_next_call(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    async with stdio_chaos(journal) as server:
        pid = int((await server.call("pid")).text)
        os.kill(pid, signal.SIGKILL)
        await until(lambda: not connected(server), "the bridge noticed the death")
        # Even a non-idempotent call goes through: the death was noticed before it was sent.
        assert (await server.call("counter")).text == "1"
        assert calls(journal, "counter") == 1


async def test_reconnection_backs_off_then_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    flag = tmp_path / "refuse-to-start"
    async with stdio_chaos(journal, "--fail-if-exists", str(flag), reconnect_attempts=3,
                           reconnect_backoff=0.2) as server:
        pid = int((await server.call("pid")).text)
        flag.touch()
        os.kill(pid, signal.SIGKILL)
        await until(lambda: not connected(server), "the bridge noticed the death")
        with pytest.raises(ConnectError, match=r"gave up after 3 reconnect attempts: .*refusing to start") as info:
            await server.call("pid")
        assert "server 'fixtures.chaos'" in str(info.value)
        # Three attempts, no more, each spawn later than the one before by at least the backoff
        # (0.2 s, then 0.4 s): a slow machine only widens the gaps.
        starts = [e["at"] for e in entries(journal, event="refused-start")]
        assert len(starts) == 3
        assert starts[1] - starts[0] >= 0.2 and starts[2] - starts[1] >= 0.4

        flag.unlink()  # the server can start again: the next request reconnects
        assert int((await server.call("pid")).text) != pid


async def test_reconnection_disabled_reports_the_lost_connection(tmp_path: Path) -> None:
    async with stdio_chaos(tmp_path / "j.jsonl", reconnect_attempts=0) as server:
        os.kill(int((await server.call("pid")).text), signal.SIGKILL)
        await until(lambda: not connected(server), "the bridge noticed the death")
        with pytest.raises(ConnectionLost, match="reconnection is disabled"):
            await server.call("pid")


# -- HTTP -------------------------------------------------------------------------------------------


async def test_http_server_restart_reconnects_and_resends_only_what_never_ran(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with http_chaos(journal) as http:
        baseline = Baseline()
        # legacy: a stateful session the restarted server no longer knows (it answers 404, so the
        # request provably never ran and is re-sent on a new session); auto: 2026-07-28, stateless.
        async with connect(http.url, mode="legacy", timeout=10, call_timeout=20, name="legacy") as legacy, \
                connect(http.url, mode="auto", timeout=10, call_timeout=20, name="auto") as auto:
            assert legacy.info.protocol_version == "2025-11-25" and auto.info.protocol_version == "2026-07-28"
            assert (await legacy.call("counter")).text == "1"
            assert (await auto.call("counter")).text == "2"
            http.restart()
            assert (await legacy.call("counter")).text == "1"  # a fresh process counts from 1
            assert (await auto.call("counter")).text == "2"
            assert calls(journal, "counter") == 4  # each call ran exactly once
        assert http.proc is not None
        await baseline.assert_back(allow=[http.proc.pid])


async def test_http_server_killed_mid_call_fails_fast_and_is_not_resent(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with http_chaos(journal) as http:
        baseline = Baseline()
        async with connect(http.url, mode="legacy", timeout=5, call_timeout=30, reconnect_backoff=0.1) as server:
            assert http.proc is not None
            killed: list[float] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_once_sleeping, journal, http.proc.pid, killed)
                with pytest.raises(ConnectionLost, match="tool 'sleep'"):
                    await server.call("sleep", {"seconds": 60})
                failed_at = time.time()
            failed_mid_sleep(journal, killed, failed_at)
            assert calls(journal, "sleep") == 1
            http.kill()

            # Still down: bounded attempts with backoff, then a clear error.
            with pytest.raises(ConnectError, match="gave up after 3 reconnect attempts: cannot reach the server"):
                await server.call("pid")

            http.start()
            assert (await server.call("pid")).text.isdigit()
        assert http.proc is not None
        await baseline.assert_back(allow=[http.proc.pid])


async def test_sse_server_killed_mid_call_then_restarted(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with http_chaos(journal, "sse") as sse:
        baseline = Baseline()
        async with connect(sse.url, timeout=10, call_timeout=30, reconnect_backoff=0.1) as server:
            assert server.info.transport == "sse"
            assert sse.proc is not None
            killed: list[float] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_once_sleeping, journal, sse.proc.pid, killed)
                with pytest.raises(ConnectionLost, match="tool 'sleep'"):
                    await server.call("sleep", {"seconds": 60})
                failed_at = time.time()
            failed_mid_sleep(journal, killed, failed_at)
            sse.restart()
            assert (await server.call("counter")).text == "1"
            assert calls(journal, "sleep") == 1 and calls(journal, "counter") == 1
        assert sse.proc is not None
        await baseline.assert_back(allow=[sse.proc.pid])
