"""The main job, offline: inspect and drive the MultiMail stand-in with ``mcp-bridge`` (``make demo``).

Each step runs the real ``mcp-bridge`` command line as a subprocess against
``python -m fixtures.multimail`` over stdio, on a fresh temporary database, so the demo
needs no account, no model provider key and no network, and gives the same result every
time. The API key travels as ``--env MULTIMAIL_API_KEY`` (taken from this process's
environment), so it never appears on a command line or in the output.

Steps: the catalogue, ``show send_email``, then the support agent checks the inbox, reads
the thread, replies (the reply is held for approval), and the operator lists what waits.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fixtures.multimail.seed import AGENT_KEY, INJECTION_EMAIL_ID, OPERATOR_KEY, THREAD_ID  # noqa: E402

REPLY = "Hi Maria, sorry about the torn rain fly: a replacement ships today and reaches you before Friday."


def _cli() -> list[str]:
    """The installed console script next to this interpreter, else the module."""
    script = Path(sys.executable).parent / "mcp-bridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bridge.cli"]


def _style(code: str, text: str) -> str:
    # Plain text when piped (e.g. into the README), colours on a terminal.
    return f"\033[{code}m{text}\033[0m" if sys.stdout.isatty() else text


def _heading(number: int, title: str, why: str) -> None:
    print("\n" + _style("1", f"{'━' * 100}\n {number}. {title}") + "\n " + _style("2", why), flush=True)


def _run(number: int, title: str, why: str, args: list[str], server: list[str], *, key: str,
         expect: int = 0) -> None:
    _heading(number, title, why)
    shown = ["mcp-bridge", *args, "--env", "MULTIMAIL_API_KEY", "--", "python", "-m", "fixtures.multimail",
             *server[3:]]
    print(" " + _style("36", f"$ {shlex.join(shown)}") + "\n", flush=True)
    env = {**os.environ, "MULTIMAIL_API_KEY": key, "PYTHONPATH": str(ROOT)}
    command = [*_cli(), *args, "--env", "MULTIMAIL_API_KEY", "--", *server]
    code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    if code != expect:
        print(f"\ndemo step {number} exited with {code}, expected {expect}", file=sys.stderr)
        raise SystemExit(1)
    if expect:
        print(" " + _style("2", f"(exit status {code}, as expected)"), flush=True)


def main() -> int:
    """Run the demo steps in order; exit non-zero if any step does not behave as shown."""
    workdir = Path(tempfile.mkdtemp(prefix="mcp-bridge-demo-"))
    try:
        db = workdir / "multimail.sqlite3"
        server = [sys.executable, "-m", "fixtures.multimail", "--db", str(db)]
        agent, operator = AGENT_KEY, OPERATOR_KEY
        _run(1, "The catalogue, as AutoGen will see it",
             "46 tools with their AutoGen names, titles, hints and required arguments (fresh database).",
             ["tools"], [*server, "--reset"], key=agent)
        _run(2, "One tool in full: send_email",
             "The server's inputSchema, the Python signature the bridge generated, the schema the model is sent, "
             "and the fidelity verdict.",
             ["show", "send_email"], server, key=agent)
        _run(3, "The agent checks its inbox", "Arguments are validated against the inputSchema before the call.",
             ["call", "check_inbox", "--arg", "status=unread", "--arg", "limit=3"], server, key=agent)
        _run(4, "The agent reads the thread", "Three emails from a customer about a damaged order.",
             ["call", "get_thread", "--arg", f"thread_id={THREAD_ID}"], server, key=agent)
        _run(5, "A bad call never leaves the machine",
             "A reply without its body is refused locally, naming the argument and the rule, as for an agent.",
             ["call", "reply_email", "--arg", f"email_id={INJECTION_EMAIL_ID}"], server, key=agent, expect=1)
        _run(6, "The agent replies", "The mailbox is gated_send, so the reply waits for a human.",
             ["call", "reply_email", "--arg", f"email_id={INJECTION_EMAIL_ID}", "--arg", f"markdown={REPLY}"],
             server, key=agent)
        _run(7, "The operator lists what waits for approval",
             "Same server, operator key (oversight scope): the agent's reply is pending.",
             ["call", "list_pending"], server, key=operator)
        print("\nDone: every step ran offline against the local MultiMail stand-in.")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
