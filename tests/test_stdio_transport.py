"""The bridge's stdio transport: whole lines both ways under concurrency, a bounded stop, a clean child.

Real processes (fixtures/chaos.py, hand-written JSON-RPC over stdio): the sending task writes
each line into the pipe itself, so many concurrent senders with lines far larger than the
pipe's buffer must neither interleave nor lose a byte; leaving the connection must stop a
server that ignores the end of its stdin, and must not wait out the grace for one that exits.
"""

from __future__ import annotations

import json
import time

import anyio
import psutil
import pytest
from helpers import PY, ROOT, fixture_env, module_cmd
from leaks import Baseline

from bridge import CallResult, connect, transports
from bridge.stdio import stdio_streams
from bridge.targets import StdioTarget
from bridge.transports import StderrCapture
from bridge.wire import Wire

pytestmark = pytest.mark.anyio


async def test_concurrent_calls_with_lines_larger_than_the_pipe_each_get_their_own_answer() -> None:
    baseline = Baseline()
    # Multi-byte characters, so reads split them across chunk boundaries; ~600 KB per line each way.
    texts = [f"{i:03d}:" + chr(0x4E00 + i) * 200_000 for i in range(12)]
    results: dict[int, CallResult] = {}
    async with connect(module_cmd("fixtures.chaos"), env=fixture_env(), cwd=ROOT, call_timeout=60) as server:

        async def one(i: int) -> None:
            results[i] = await server.call("echo", {"text": texts[i]})

        async with anyio.create_task_group() as tg:
            for i in range(len(texts)):
                tg.start_soon(one, i)
        after = await server.call("echo", {"text": "still in step"})
    assert {i: json.loads(r.content[0].text) for i, r in results.items()} == {
        i: {"text": t} for i, t in enumerate(texts)}
    assert json.loads(after.content[0].text) == {"text": "still in step"}
    await baseline.assert_back()


async def test_a_server_that_outlives_its_stdin_is_stopped_after_the_grace() -> None:
    async with connect(module_cmd("fixtures.chaos", "--stubborn"), env=fixture_env(), cwd=ROOT,
                       exit_grace=0.2) as server:
        pid = int((await server.call("pid")).text)
        assert psutil.pid_exists(pid)
    # Stopped through its process group and reaped before the connection's exit returned.
    assert not psutil.pid_exists(pid)


async def test_a_server_that_exits_with_its_stdin_is_not_kept_waiting_for_the_grace() -> None:
    async with connect(module_cmd("fixtures.chaos"), env=fixture_env(), cwd=ROOT, exit_grace=120) as server:
        pid = int((await server.call("pid")).text)
        started = time.monotonic()
    # A generous bound: it only has to tell "exited by itself" from "waited out 120 s".
    assert time.monotonic() - started < 60
    assert not psutil.pid_exists(pid)


async def test_the_child_gets_the_minimal_environment_and_each_line_reaches_the_wire(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_PARENT_SECRET", "not-for-children")
    notice = ("{'jsonrpc': '2.0', 'method': 'notifications/message', "
              "'params': {'level': 'info', 'data': dict(os.environ)}}")
    script = f"import json, os; print('not json'); print(); print(json.dumps({notice}), flush=True)"
    wire = Wire("env", lambda: None)
    stderr = StderrCapture()
    try:
        async with stdio_streams(StdioTarget(PY, ("-c", script), env={"SERVER_TOKEN": "t0k"}), stderr=stderr.file,
                                 observer=wire, grace=5) as (read, _write):
            garbage = await read.receive()
            message = await read.receive()
            with pytest.raises(anyio.EndOfStream):
                await read.receive()
    finally:
        stderr.close()
    assert isinstance(garbage, ValueError) and wire.malformed == 1  # the blank line is no message
    env = message.message.params["data"]
    assert env["SERVER_TOKEN"] == "t0k" and "BRIDGE_PARENT_SECRET" not in env
    # The SDK's minimal set, and the locale Python itself may set (PEP 538).
    assert set(env) - {"SERVER_TOKEN"} <= {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LC_CTYPE"}
    assert wire.ended


async def test_the_sdk_transport_that_serves_windows_reports_to_the_wire_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where the bridge's own transport does not run, the SDK's is watched through stream wrappers:
    # the calls work, and the wire still counts the garbage the server prints before each answer.
    monkeypatch.setattr(transports, "_OWN_STDIO", False)
    async with connect(module_cmd("fixtures.chaos", "--start", "garbage"), env=fixture_env(), cwd=ROOT) as server:
        result = await server.call("echo", {"text": "through the SDK's stdio_client"})
        gen = server.session._gen
        assert gen is not None and gen.wire.malformed >= 1
    assert json.loads(result.content[0].text) == {"text": "through the SDK's stdio_client"}
