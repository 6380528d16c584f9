"""The console approver and the examples' operator prompts at a real terminal (a pseudo-terminal).

A small program (``CONSOLE_SCRIPT``) gates one unannotated tool of the scriptable server behind
``ConsoleApprover`` and runs under a pty whose line discipline turns ``\\x03`` into SIGINT for the
foreground process group, as a person's Ctrl-C does. Ctrl-C at the prompt must end the run at
once (the program maps ``KeyboardInterrupt`` to exit 130, as the CLI does), with the server
stopped, nothing sent, no traceback and no process left; nothing may wait for an Enter that
never comes (a reader thread would keep the interpreter alive). An answer typed at the terminal
is read without a thread; with a queue beside the console, whichever answers first decides.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import psutil
import pytest
from helpers import PY, ROOT, status_of

from bridge.approval import PROMPT, ConsoleApprover
from bridge.approvals import SqliteApprovalStore
from bridge.callbacks import console_input
from bridge.catalogue import Annotations
from bridge.cli import main as cli_main
from bridge.connection import ToolCall

HANG = 90.0
"""Only turns a hang into a named failure."""

SEND = {"name": "send_email", "description": "Send an email.",
        "inputSchema": {"type": "object", "properties": {"to": {"type": "string"}}}}

CONSOLE_SCRIPT = '''
import asyncio, json, os, sys
from bridge import ConsoleApprover, connect
from bridge.approvals import QueueApprover

async def main() -> None:
    store = os.environ.get("QUEUE")
    approver = ConsoleApprover(reviewer="console:ann", queue=QueueApprover(store) if store else None)
    env = {k: os.environ[k] for k in ("PYTHONPATH", "HOSTILE_SCRIPT")}
    async with connect([sys.executable, "-m", "fixtures.hostile"], env=env, cwd=os.environ["ROOT"],
                       name="mail") as server:
        result = await server.toolset("drafter", approver=approver).call("send_email", {"to": "ann@example.com"})
        print("RESULT", json.dumps({"error": result.is_error, "text": result.text}), flush=True)

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)
'''


def hostile_env(journal: Path, **extra: str) -> dict[str, str]:
    script = {"tools": [SEND], "calls": {"send_email": [{"result": {"content": [{"type": "text", "text": "sent"}]}}]},
              "journal": str(journal)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return {**env, "PYTHONPATH": str(ROOT), "ROOT": str(ROOT), "HOSTILE_SCRIPT": json.dumps(script), **extra}


def calls_sent(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    messages = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    return [m["params"]["arguments"] for m in messages if m.get("method") == "tools/call"]


def _controlling_terminal() -> None:
    # In the child, after setsid: the pty (its stdin) becomes the session's terminal, so the
    # line discipline sends SIGINT to this process group on ^C; SIGINT as a foreground job has it.
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Terminal:
    """A process on a pseudo-terminal: what it printed so far, and a way to type."""

    proc: subprocess.Popen[bytes]
    master: int
    screen: bytearray = field(default_factory=bytearray)

    def read_until(self, text: str, limit: float = HANG) -> str:
        deadline = time.monotonic() + limit
        while text.encode() not in self.screen:
            assert time.monotonic() < deadline, f"never shown: {text!r}\n{self.text()[-3000:]}"
            if not self._pump(0.2):
                assert text.encode() in self.screen, f"exited before showing {text!r}:\n{self.text()[-3000:]}"
        return self.text()

    def _pump(self, seconds: float) -> bool:
        import select

        ready, _, _ = select.select([self.master], [], [], seconds)
        if ready:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every slave end is closed
                return False
            if not chunk:
                return False
            self.screen.extend(chunk)
        return True

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self, limit: float = HANG) -> int:
        """Wait for the process to exit (reading what it prints meanwhile); its status."""
        deadline = time.monotonic() + limit
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running after {limit:g} s:\n{self.text()[-3000:]}"
            self._pump(0.1)
        while self._pump(0.05):
            pass
        return self.proc.returncode

    def text(self) -> str:
        return self.screen.decode("utf-8", errors="replace").replace("\r\n", "\n")


@contextmanager
def on_terminal(argv: list[str], env: dict[str, str]) -> Iterator[Terminal]:
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, preexec_fn=_controlling_terminal)
    os.close(slave)
    try:
        yield Terminal(proc, master)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def ctrl_c_at_the_prompt(term: Terminal, prompt: str) -> tuple[int, str, list[int]]:
    """Wait for ``prompt``, note the process tree, press Ctrl-C; (status, screen, survivors)."""
    term.read_until(prompt)
    tree = [p.pid for p in psutil.Process(term.proc.pid).children(recursive=True)]
    assert tree, "the server should be running under the program"
    term.type(b"\x03")
    status = term.finish()
    return status, term.text(), alive(tree)


def test_ctrl_c_at_the_console_prompt_ends_the_run_at_once(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with on_terminal([PY, "-c", CONSOLE_SCRIPT], hostile_env(journal)) as term:
        status, screen, survivors = ctrl_c_at_the_prompt(term, PROMPT.strip())
    assert status == 130, screen
    assert "interrupted" in screen and "Traceback" not in screen, screen
    assert "RESULT" not in screen
    assert survivors == []  # the server was stopped, nothing was left waiting on the terminal
    assert calls_sent(journal) == []


CTRL_C_AS_THE_PROMPT_SHOWS = """
import asyncio, os, signal, sys
from bridge.callbacks import console_input

class Shows:  # Ctrl-C the moment the prompt is on the screen, before anything is read
    def write(self, text):
        sys.stdout.write(text)
        os.kill(os.getpid(), signal.SIGINT)
    def flush(self):
        sys.stdout.flush()

async def main():
    # Like a framework's runtime: the prompt runs in a task of its own, and a cancelled main task
    # goes on waiting for its tool calls to finish.
    task = asyncio.ensure_future(console_input("approve? ", Shows()))
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            continue

asyncio.run(main())
"""


def test_ctrl_c_as_soon_as_the_prompt_shows_ends_the_run() -> None:
    silent, kept_open = os.pipe()  # nobody types, and stdin never ends
    try:
        done = subprocess.run([PY, "-c", CTRL_C_AS_THE_PROMPT_SHOWS], cwd=ROOT, stdin=silent, capture_output=True,
                              text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        pytest.fail("Ctrl-C as the prompt showed left the prompt waiting")
    finally:
        os.close(silent)
        os.close(kept_open)
    assert done.returncode != 0 and done.stderr.rstrip().endswith("KeyboardInterrupt"), done.stderr


def test_an_answer_typed_at_the_terminal_is_read(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with on_terminal([PY, "-c", CONSOLE_SCRIPT], hostile_env(journal)) as term:
        term.read_until(PROMPT.strip())
        term.type(b"y\r")
        assert term.finish() == 0, term.text()
    result = json.loads(term.text().split("RESULT ", 1)[1].splitlines()[0])
    assert result == {"error": False, "text": "sent"}
    assert calls_sent(journal) == [{"to": "ann@example.com"}]


def _pending_id(db: Path) -> int:
    """The id of the request the program put on the queue, once it is there."""
    async def go() -> int:
        store = SqliteApprovalStore(db)
        try:
            with anyio.fail_after(HANG):
                while not (db.exists() and (found := await store.list(statuses=("pending",)))):
                    await anyio.sleep(0.05)
                return found[0].id
        finally:
            await store.aclose()

    return anyio.run(go)


def test_with_a_queue_a_decision_from_elsewhere_closes_the_console_prompt(tmp_path: Path) -> None:
    journal, db = tmp_path / "journal.jsonl", tmp_path / "approvals.db"
    with on_terminal([PY, "-c", CONSOLE_SCRIPT], hostile_env(journal, QUEUE=str(db))) as term:
        term.read_until(PROMPT.strip())
        rid = _pending_id(db)
        assert cli_main(["approvals", "approve", str(rid), "--store", str(db), "--reviewer", "alice",
                         "--reason", "checked elsewhere"]) == 0
        assert term.finish() == 0, term.text()
    screen = term.text()
    assert "decided in the queue: approved by alice: checked elsewhere" in screen
    assert '"text": "sent"' in screen and calls_sent(journal) == [{"to": "ann@example.com"}]
    assert status_of(db, rid) == ("approved", "alice")


def test_with_a_queue_a_console_answer_withdraws_the_queued_request(tmp_path: Path) -> None:
    journal, db = tmp_path / "journal.jsonl", tmp_path / "approvals.db"
    with on_terminal([PY, "-c", CONSOLE_SCRIPT], hostile_env(journal, QUEUE=str(db))) as term:
        term.read_until(PROMPT.strip())
        rid = _pending_id(db)
        term.type(b"not to ann\r")
        assert term.finish() == 0, term.text()
    assert "denied by reviewer: not to ann" in term.text()
    assert calls_sent(journal) == []
    assert status_of(db, rid)[0] == "cancelled"  # nobody can approve it later


def test_with_a_queue_ctrl_c_cancels_the_queued_request_too(tmp_path: Path) -> None:
    journal, db = tmp_path / "journal.jsonl", tmp_path / "approvals.db"
    with on_terminal([PY, "-c", CONSOLE_SCRIPT], hostile_env(journal, QUEUE=str(db))) as term:
        term.read_until(PROMPT.strip())
        rid = _pending_id(db)
        status, screen, survivors = ctrl_c_at_the_prompt(term, PROMPT.strip())
    assert status == 130 and "Traceback" not in screen, screen
    assert survivors == []
    assert status_of(db, rid)[0] == "cancelled"


@pytest.mark.parametrize("stdin", [b"", b"y\n"], ids=["closed", "piped"])
def test_without_a_terminal_a_closed_stdin_denies_and_a_pipe_is_read(tmp_path: Path, stdin: bytes) -> None:
    journal = tmp_path / "journal.jsonl"
    done = subprocess.run([PY, "-c", CONSOLE_SCRIPT], cwd=ROOT, env=hostile_env(journal), input=stdin,
                          capture_output=True, timeout=HANG)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.decode().split("RESULT ", 1)[1].splitlines()[0])
    if stdin:
        assert result == {"error": False, "text": "sent"}
    else:
        assert result["error"] and "no reviewer at the console (stdin closed)" in result["text"]


def _call() -> ToolCall:
    return ToolCall(server="mail", tool="send_email", mcp_name="send_email", arguments={"to": "a@example.com"},
                    annotations=Annotations(destructive=True), agent="drafter")


@pytest.fixture
def pipe_as_stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[BinaryIO]:
    """stdin replaced by a pipe's read end; yields the write end."""
    read, write = os.pipe()
    monkeypatch.setattr("sys.stdin", os.fdopen(read, "r"))
    with os.fdopen(write, "wb", buffering=0) as writer:
        yield writer


def test_cancelling_the_wait_leaves_no_thread_and_the_next_answer_is_read(pipe_as_stdin: BinaryIO) -> None:
    import io

    threads = threading.active_count()

    async def go() -> str:
        approver = ConsoleApprover(output=io.StringIO(), reviewer="console:ann")
        with anyio.move_on_after(0.3) as scope:
            await approver.review(_call())
        assert scope.cancelled_caught
        assert threading.active_count() == threads  # nothing left blocked on stdin
        pipe_as_stdin.write(b"y\n")
        return (await approver.review(_call())).reason

    assert anyio.run(go) == "approved at the console"


def test_console_input_reads_line_by_line_then_eof(pipe_as_stdin: BinaryIO) -> None:
    async def go() -> list[str]:
        pipe_as_stdin.write("y\nnon-ascii é\r\nlast".encode())
        pipe_as_stdin.close()
        lines = [await console_input() for _ in range(3)]
        with pytest.raises(EOFError):
            await console_input()
        return lines

    assert anyio.run(go) == ["y", "non-ascii é", "last"]


def example_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}


def test_ctrl_c_at_the_team_examples_reviewer_prompt_ends_it_at_once(tmp_path: Path) -> None:
    argv = [PY, str(ROOT / "examples" / "email_team.py"), "--interactive", "--workdir", str(tmp_path)]
    with on_terminal(argv, example_env()) as term:
        status, screen, survivors = ctrl_c_at_the_prompt(term, PROMPT.strip())
    assert status == 130, screen
    assert screen.rstrip().endswith("email_team: interrupted") and "Traceback" not in screen, screen
    assert survivors == []


def test_ctrl_c_at_the_team_examples_operator_prompt_ends_it_at_once(tmp_path: Path) -> None:
    argv = [PY, str(ROOT / "examples" / "email_team.py"), "--interactive", "--workdir", str(tmp_path)]
    with on_terminal(argv, example_env()) as term:
        for _ in range(2):  # the reply, then the new contact: approved at the terminal
            term.read_until(PROMPT.strip())
            seen = len(term.screen)
            term.type(b"y\r")
            deadline = time.monotonic() + HANG
            while PROMPT.strip().encode() not in term.screen[seen:] and b"Operator:" not in term.screen[seen:]:
                assert time.monotonic() < deadline, term.text()[-3000:]
                term._pump(0.1)
            del term.screen[:seen]
        status, screen, survivors = ctrl_c_at_the_prompt(term, "Operator: approve the reply?")
    assert status == 130, screen
    assert "email_team: interrupted" in screen and "Traceback" not in screen, screen
    assert survivors == []
