"""The main job (``make demo``): an AutoGen email team on the MultiMail stand-in, then the catalogue.

Part one is ``examples/email_team.py``: triage, drafter and contacts ``AssistantAgent``s with
AutoGen's real OpenAI client, their tools from the bridge (guarded, audited, named per agent),
working the stand-in's inbox over stdio. Offline the model is a scripted OpenAI-compatible server
on 127.0.0.1; ``--model NAME`` (with ``OPENAI_API_KEY`` set, and ``OPENAI_BASE_URL`` for another
endpoint) runs the same team on a real model. The drafter's reply passes the team's reviewer, is
held by MultiMail's gated_send, the operator approves it, and the audit trail is printed.

Part two runs the real ``mcp-bridge`` command line against the same server: the catalogue as
AutoGen sees it, and one tool in full with the fidelity verdict. The API key travels as
``--env MULTIMAIL_API_KEY`` (taken from this process's environment), so it never appears on a
command line or in the output.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "examples"))

from fixtures.multimail.seed import AGENT_KEY  # noqa: E402


def _cli() -> list[str]:
    """The installed console script next to this interpreter, else the module."""
    script = Path(sys.executable).parent / "mcp-bridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bridge.cli"]


def _style(code: str, text: str) -> str:
    # Plain text when piped (e.g. into the README), colours on a terminal.
    return f"\033[{code}m{text}\033[0m" if sys.stdout.isatty() else text


def _width() -> int:
    """The terminal's width (``COLUMNS`` when set), at most 100: every line the demo draws fits it."""
    return min(100, shutil.get_terminal_size().columns)


def _heading(number: int, title: str, why: str) -> None:
    rule = "━" * _width()
    why = textwrap.fill(why, _width() - 1, initial_indent=" ", subsequent_indent=" ")
    print("\n" + _style("1", f"{rule}\n {number}. {title}") + "\n" + _style("2", why), flush=True)


def _run(number: int, title: str, why: str, args: list[str], server: list[str], *, key: str,
         expect: int = 0) -> None:
    _heading(number, title, why)
    shown = ["mcp-bridge", *args, "--env", "MULTIMAIL_API_KEY", "--", "python", "-m", "fixtures.multimail",
             *server[3:]]
    # A command line that fits: broken between words with the shell's own continuation.
    lines = textwrap.wrap(f"$ {shlex.join(shown)}", _width() - 4, subsequent_indent="    ", break_long_words=False,
                          break_on_hyphens=False)
    print(" " + _style("36", " \\\n ".join(lines)) + "\n", flush=True)
    env = {**os.environ, "MULTIMAIL_API_KEY": key, "PYTHONPATH": str(ROOT)}
    command = [*_cli(), *args, "--env", "MULTIMAIL_API_KEY", "--", *server]
    code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    if code == 130:  # Ctrl-C reached the CLI too (one process group): the run ends here, quietly
        raise KeyboardInterrupt
    if code != expect:
        print(f"\ndemo step {number} exited with {code}, expected {expect}", file=sys.stderr)
        raise SystemExit(1)
    if expect:
        print(" " + _style("2", f"(exit status {code}, as expected)"), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the team, then the CLI steps; exit non-zero if any step does not behave as shown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="run the team on this real model (needs OPENAI_API_KEY or OPENAI_BASE_URL)")
    args = parser.parse_args(argv)
    from _mailroom import live

    if args.model:
        if not live():
            print("demo: --model needs OPENAI_API_KEY (or OPENAI_BASE_URL for another endpoint)", file=sys.stderr)
            return 2
        os.environ["OPENAI_MODEL"] = args.model
    import email_team

    workdir = Path(tempfile.mkdtemp(prefix="mcp-bridge-demo-"))
    try:
        _heading(1, "An AutoGen team works the inbox",
                 "triage reads, drafter replies (reviewed, then held by gated_send), contacts files the customer; "
                 "the operator approves the held reply. " + ("A real model drives the agents." if live()
                                                             else "Offline: a scripted OpenAI-compatible model."))
        asyncio.run(email_team.main(workdir, interactive=False))
        db = workdir / "mail.db"
        server = [sys.executable, "-m", "fixtures.multimail", "--db", str(db)]
        _run(2, "The catalogue, as AutoGen will see it",
             "46 tools with their AutoGen names, titles, hints and required arguments.",
             ["tools"], server, key=AGENT_KEY)
        _run(3, "One tool in full: send_email",
             "The server's inputSchema, the Python signature the bridge generated, the schema the model is sent, "
             "and the fidelity verdict.",
             ["show", "send_email"], server, key=AGENT_KEY)
        print("\nDone: a real AutoGen team and the CLI, against the local MultiMail stand-in.")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    from _mailroom import exit_if_the_model_failed, fit_to_terminal, quiet_interrupts

    quiet_interrupts()
    fit_to_terminal()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Ctrl-C (also during `make demo`): one line, no traceback; the servers stop with the run.
        print("\ndemo: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:
        exit_if_the_model_failed("demo", error)  # a wrong --model, key or endpoint: one line
        raise
