"""The examples' shared scenario: a new customer writes to the MultiMail stand-in's support inbox.

Every email-team example (AutoGen, AG2, MetaGPT, the distributed one) works this same mail (from
``fixtures.mailroom``, which the tests share) and starts the stand-in the way this module does.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bridge.errors import interrupted  # noqa: E402
from bridge.sanitize import one_line  # noqa: E402
from bridge.secrets import mask_data  # noqa: E402

# The mail itself and how it arrives are shared with the tests and benchmarks.
from fixtures.mailroom import BODY, CUSTOMER, CUSTOMER_NAME, REPLY, SUBJECT, receive_new_mail  # noqa: E402

__all__ = [
    "BODY",
    "CUSTOMER",
    "CUSTOMER_NAME",
    "REPLY",
    "ROOT",
    "SUBJECT",
    "cli_reviewer",
    "env",
    "example_parser",
    "fit_to_terminal",
    "live",
    "quiet_interrupts",
    "receive_new_mail",
    "run_example",
    "server",
]


def server(db: Path) -> list[str]:
    """The stand-in over stdio, on ``db``."""
    return [sys.executable, "-m", "fixtures.multimail", "--db", str(db)]


def env(key: str) -> dict[str, str]:
    """The stand-in's environment: the API key it authenticates, and where its package is."""
    return {"MULTIMAIL_API_KEY": key, "PYTHONPATH": str(ROOT)}


def example_parser(doc: str | None,
                   interactive: str = "answer the approval prompts yourself") -> argparse.ArgumentParser:
    """The options every email example takes: ``--workdir`` and ``--interactive``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep mail.db and audit.jsonl here (default: a temp dir)")
    parser.add_argument("--interactive", action="store_true", help=interactive)
    return parser


def run_example(name: str, workdir: Path | None, main: Callable[[Path], Coroutine[Any, Any, int | None]]) -> None:
    """Run an example's ``main`` in its folder (``workdir``, else a fresh temp dir) and exit with its
    status: a real model announced when one is configured, output fitted to the terminal, and
    Ctrl-C one line and exit 130 instead of a traceback."""
    import asyncio

    folder = workdir or Path(tempfile.mkdtemp(prefix=f"{name}-"))
    folder.mkdir(parents=True, exist_ok=True)
    if live():
        print("Using a real model (OPENAI_API_KEY / OPENAI_BASE_URL is set).\n")
    quiet_interrupts()
    fit_to_terminal()
    try:
        status = asyncio.run(main(folder))
    except BaseException as error:
        if interrupted(error):  # also when a task group wrapped it
            print(f"{name}: interrupted", file=sys.stderr)
            sys.exit(130)
        if isinstance(error, Exception):
            exit_if_the_model_failed(name, error)
        raise
    sys.exit(status or 0)


def model_failure(error: BaseException | None) -> str | None:
    """The model provider's own error behind ``error`` (a wrong key, model name or endpoint), as
    ``"Type: message"``, if there is one."""
    try:
        import openai
    except ImportError:
        return None
    names = {n for n, v in vars(openai).items() if isinstance(v, type) and issubclass(v, openai.APIError)}
    while error is not None:
        if isinstance(error, openai.APIError):
            return f"{type(error).__name__}: {error}"
        # An AutoGen team re-raises an agent's error as RuntimeError("Type: message\nTraceback: ...").
        head = str(error).split("\n", 1)[0]
        if isinstance(error, RuntimeError) and head.split(":", 1)[0] in names:
            return head
        error = error.__cause__ or error.__context__
    return None


def exit_if_the_model_failed(name: str, error: BaseException) -> None:
    """One line and exit 1 when the real model could not be used: nothing in the bridge failed."""
    failed = model_failure(error)
    if failed is not None:
        # The provider's words: one inert line, a key it quotes (an OpenAI 401 does) masked by its shape.
        print(f"{name}: the model did not answer: {one_line(mask_data(failed))} (check OPENAI_BASE_URL, "
              "OPENAI_API_KEY and the model name)", file=sys.stderr)
        sys.exit(1)


def fit_to_terminal() -> None:
    """On a terminal, wrap every line this program prints between words at the terminal's width,
    whoever prints it (the team, the operator's step, the approval prompts). Piped output is left
    whole, for the tools and tests that read it. Styled lines (rich's own layout) pass as they are."""
    import shutil

    if sys.stdout.isatty() and not isinstance(sys.stdout, _Fitted):
        sys.stdout = _Fitted(sys.stdout, shutil.get_terminal_size().columns - 1)


class _Fitted:
    """A text stream that wraps each finished line at ``width``; a partial line (a prompt) is
    written as it is on ``flush``."""

    def __init__(self, inner: Any, width: int) -> None:
        self._inner = inner
        self._width = width
        self._pending = ""

    def write(self, text: str) -> int:
        import textwrap

        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if len(line) > self._width and "\x1b" not in line:
                line = textwrap.fill(line, self._width, break_long_words=False, break_on_hyphens=False)
            self._inner.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._inner.write(self._pending)
            self._pending = ""
        self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def live() -> bool:
    """Whether a real model is configured (a key, or an OpenAI-compatible endpoint): the examples
    use it instead of their scripted model turns."""
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


async def cli_reviewer(store: str, reviewer: str = "scripted-reviewer", poll: float = 0.2) -> None:
    """A reviewer who approves every request on the approval queue through the CLI, as a person
    at another terminal would (``mcp-bridge approvals approve ID``); runs until cancelled."""
    import asyncio

    from bridge.approvals import open_approval_store

    queue = open_approval_store(store)
    seen: set[int] = set()
    try:
        while True:
            for request in reversed(await queue.list(statuses=("pending",))):
                if request.id in seen:
                    continue
                seen.add(request.id)
                command = ["approvals", "approve", str(request.id), "--store", store, "--reviewer", reviewer,
                           "--reason", "read and approved"]
                print(f"(scripted reviewer) $ mcp-bridge {' '.join(command[:3])} ...", flush=True)
                cli = await asyncio.create_subprocess_exec(sys.executable, "-m", "bridge.cli", *command,
                                                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
                await cli.wait()
            await asyncio.sleep(poll)
    finally:
        await queue.aclose()




def quiet_interrupts() -> None:
    """One line for Ctrl-C instead of a page: AutoGen's runtime logs every one of its tasks that
    the interrupt cancels with a full traceback; records caused by a ``KeyboardInterrupt``, or by
    the model provider's error (reported once, in one line, as the example ends) and its echoes
    to the other agents, are dropped, every other warning is printed as before."""
    import logging

    def caused_by_ctrl_c(record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        # The team's error reaches every agent; those with no handler for it log it again.
        if model_failure(error) is not None or "GroupChatError" in str(error):
            return False
        while error is not None:
            if isinstance(error, KeyboardInterrupt):
                return False
            error = error.__cause__ or error.__context__
        return True

    handler = logging.StreamHandler()
    handler.addFilter(caused_by_ctrl_c)
    logging.getLogger().addHandler(handler)
