"""Where the CLI writes: stdout for results, stderr for errors and progress, secrets masked in both.

Everything a command prints goes through ``Output``. Two rules are enforced here rather
than in each command:

- server-supplied text is never interpreted as rich markup or emoji codes (the consoles
  have markup, emoji and highlighting off; styles are applied only to text we build);
- a secret (an ``--env``/config environment value, a secret header value) never reaches
  either stream: both consoles write through a masking stream, and commands mask strings
  before putting them in tables, where wrapping could split a secret across lines.

stdout carries only the command's result, so it can be piped; spinners, warnings and
errors go to stderr.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.text import Text

__all__ = ["MASK", "Masker", "Output"]

MASK = "***"

class Masker:
    """Replaces every known secret value in a string with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secret values (each also in its JSON-escaped spelling)."""
        for value in secrets:
            if value:
                self._secrets.add(value)
                self._secrets.add(json.dumps(value)[1:-1])
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def __bool__(self) -> bool:
        return bool(self._secrets)


class _MaskingStream:
    """A text stream that masks secrets on the way through; looks like the stream it wraps."""

    def __init__(self, inner: IO[str], mask: Masker) -> None:
        self._inner = inner
        self._mask = mask

    def write(self, text: str) -> int:
        self._inner.write(self._mask(text))
        return len(text)

    def flush(self) -> None:
        self._inner.flush()

    def isatty(self) -> bool:
        return self._inner.isatty()

    def fileno(self) -> int:
        return self._inner.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._inner, "encoding", "utf-8") or "utf-8"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Output:
    """The CLI's two streams, with secret masking and plain (markup-free) text.

    Args:
        json_mode: results are printed as plain JSON instead of tables.
        stdout, stderr: streams to write to (default: the process's own).
    """

    def __init__(self, *, json_mode: bool = False, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None) -> None:
        self.json_mode = json_mode
        self.mask = Masker()
        self._raw_out = stdout or sys.stdout
        self._raw_err = stderr or sys.stderr
        self.out = self._console(self._raw_out)
        self.err = self._console(self._raw_err)

    def _console(self, stream: IO[str]) -> Console:
        # markup/emoji/highlight off: servers' text is shown exactly as sent, never interpreted.
        return Console(file=_MaskingStream(stream, self.mask), markup=False, emoji=False, highlight=False)  # type: ignore[arg-type]

    # -- stdout ------------------------------------------------------------------------

    def text(self, value: str, style: str = "") -> Text:
        """A rich ``Text`` of server-supplied (or any) text: masked, never parsed for markup."""
        return Text(self.mask(value), style=style)

    def print(self, *renderables: RenderableType, soft_wrap: bool = False) -> None:
        """Print to stdout. ``soft_wrap`` leaves long lines intact (for server text)."""
        self.out.print(*renderables, soft_wrap=soft_wrap)

    def plain(self, value: str) -> None:
        """Print server text exactly as sent (masked), without wrapping or styling."""
        self.out.print(self.text(value), soft_wrap=True)

    def json(self, value: Any) -> None:
        """Print ``value`` as indented JSON, byte-for-byte parseable (no rich rendering)."""
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        self._raw_out.write(self.mask(text) + "\n")
        self._raw_out.flush()

    # -- stderr ------------------------------------------------------------------------

    def error(self, message: str) -> None:
        """One line on stderr: ``mcp-bridge: error: <message>``."""
        line = " ".join(message.split())
        self.err.print(Text("mcp-bridge: error: ", style="bold red") + self.text(line), soft_wrap=True)

    def note(self, message: str) -> None:
        """A dim informational line on stderr (never on stdout, which may be piped)."""
        self.err.print(self.text(message, style="dim"), soft_wrap=True)

    def status(self, message: str) -> AbstractContextManager[Any]:
        """A transient spinner on stderr, only when stderr is a terminal."""
        if not self.err.is_terminal:
            return nullcontext()
        return self._spinner(message)

    @contextmanager
    def _spinner(self, message: str) -> Iterator[None]:
        with self.err.status(self.text(message), spinner="dots"):
            yield
