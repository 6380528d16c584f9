"""Where the CLI writes: stdout for results, stderr for errors and progress, secrets masked in both.

Everything a command prints goes through ``Output``. Three rules are enforced here rather
than in each command:

- server-supplied text is never interpreted as rich markup or emoji codes (the consoles
  have markup, emoji and highlighting off; styles are applied only to text we build);
- nothing a server or a model wrote acts on the screen: ``text``/``line`` show its control,
  bidi and invisible characters as escapes (``bridge.sanitize``) before rich lays it out, and
  both consoles escape whatever content still holds one when it is rendered, so a renderable
  built without ``text`` cannot carry a cursor move, an erase or a conceal either; ``json``
  writes such characters as JSON escapes;
- a secret (an ``--env``/config environment value, a secret header value) never reaches
  either stream: both consoles write through a masking stream, and commands mask strings
  before putting them in tables, where wrapping could split a secret across lines.

stdout carries only the command's result, so it can be piped; spinners, warnings and
errors go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from ..sanitize import InertFormatter, json_text, one_line, visible
from ..secrets import Secrets

if TYPE_CHECKING:  # rich costs ~50 ms to import: loaded on first output, never for --help
    from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderableType, RenderHook, RenderResult
    from rich.status import Status
    from rich.text import Text

__all__ = ["Output", "Spinner"]


class _MaskingStream:
    """A text stream that masks secrets on the way through; looks like the stream it wraps."""

    def __init__(self, inner: IO[str], mask: Secrets) -> None:
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


class Spinner:
    """What ``Output.status`` yields: a line to update while work goes on (a no-op off a terminal)."""

    def __init__(self, output: Output, status: Status | None) -> None:
        self._output = output
        self._status = status

    def update(self, message: str) -> None:
        """Replace the spinner's text (masked, never markup, one row: see ``Output.status``)."""
        if self._status is not None:
            self._status.update(self._output.row(message))


class Output:
    """The CLI's two streams, with secret masking and plain (markup-free) text.

    Off a terminal, stdout keeps its tables whole: ``print_table`` renders at the table's
    natural width, so a piped or redirected catalogue never wraps a name (set ``COLUMNS`` to
    choose a width instead).

    Args:
        json_mode: results are printed as plain JSON instead of tables.
        stdout, stderr: streams to write to (default: the process's own).
    """

    def __init__(self, *, json_mode: bool = False, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None) -> None:
        self.json_mode = json_mode
        # Values reach it already vetted (env_secrets, header_secrets), so none is too short.
        self.mask = Secrets(min_length=1)
        self._raw_out = stdout or sys.stdout
        self._raw_err = stderr or sys.stderr

    @cached_property
    def out(self) -> Console:
        return self._console(self._raw_out)

    @cached_property
    def err(self) -> Console:
        return self._console(self._raw_err)

    def _console(self, stream: IO[str], width: int | None = None) -> Console:
        from rich.console import Console

        # markup/emoji/highlight off: servers' text is shown exactly as sent, never interpreted.
        console = Console(file=_MaskingStream(stream, self.mask), markup=False, emoji=False, highlight=False,  # type: ignore[arg-type]
                          width=width)
        # rich turns a closed pipe into SystemExit(1) (exit status "usage"); main() ends a run whose
        # reader went away (`mcp-bridge tools | head`) with status 0 on BrokenPipeError.
        console.on_broken_pipe = _reader_gone  # type: ignore[method-assign]
        console.push_render_hook(_inert_hook())
        return console

    def write(self, text: str, *, stderr: bool = False) -> None:
        """Write ``text`` (masked, controls shown as escapes), without rich: help, usage, a
        server's stderr."""
        stream = self._raw_err if stderr else self._raw_out
        stream.write(visible(self.mask(text)))
        stream.flush()

    # -- stdout ------------------------------------------------------------------------

    def text(self, value: str, style: str = "") -> Text:
        """A rich ``Text`` of server-supplied (or any) text: masked, never parsed for markup, its
        control, bidi and invisible characters shown as escapes (newline and tab kept)."""
        from rich.text import Text

        return Text(visible(self.mask(value)), style=style)

    def line(self, value: str, style: str = "") -> Text:
        """``text`` for what must stay on one line (a name, a table cell): newlines escaped too."""
        from rich.text import Text

        return Text(one_line(self.mask(value)), style=style)

    def row(self, value: str) -> Text:
        """``line``, cut with an ellipsis where the screen ends: a spinner's text, which carries a
        server's progress messages and must never wrap onto a row of its own."""
        shown = self.line(value)
        shown.no_wrap, shown.overflow = True, "ellipsis"
        return shown

    def print(self, *renderables: RenderableType, soft_wrap: bool = False) -> None:
        """Print to stdout. ``soft_wrap`` leaves long lines intact (for server text)."""
        self.out.print(*renderables, soft_wrap=soft_wrap)

    @property
    def piped(self) -> bool:
        """stdout is not a terminal and no ``COLUMNS`` says how wide it is."""
        return not self.out.is_terminal and not os.environ.get("COLUMNS", "").isdigit()

    @property
    def frame_width(self) -> int | None:
        """The width ``bridge.sanitize.framed`` cuts foreign text to: the screen's, so a row the
        terminal would wrap is continued behind the gutter; none when piped (nothing wraps)."""
        return None if self.piped else self.out.width

    def print_table(self, table: RenderableType) -> None:
        """Print a table to stdout; when piped, at its natural width so no cell wraps."""
        if not self.piped:
            self.out.print(table)
            return
        from rich.measure import Measurement

        natural = Measurement.get(self.out, self.out.options.update_width(1_000_000), table).maximum
        # Console.print never renders wider than its console: a console of the table's width does.
        self._console(self._raw_out, width=max(natural, self.out.width)).print(table)

    def plain(self, value: str) -> None:
        """Print server text exactly as sent (masked), without wrapping or styling."""
        self.out.print(self.text(value), soft_wrap=True)

    def json(self, value: Any) -> None:
        """Print ``value`` as indented JSON, byte-for-byte parseable (no rich rendering); the
        characters that would act on a screen are written as JSON escapes (the same value)."""
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        self._raw_out.write(json_text(self.mask(text)) + "\n")
        self._raw_out.flush()

    # -- stderr ------------------------------------------------------------------------

    def log_handler(self, fmt: str, datefmt: str | None = None) -> logging.Handler:
        """A handler writing log records to stderr, masked like everything else and inert: libraries
        log what a server sent (``--debug`` logs every message received), so each record's line has
        its newlines and controls escaped, and a traceback its controls."""
        handler = logging.StreamHandler(_MaskingStream(self._raw_err, self.mask))
        handler.setFormatter(InertFormatter(fmt, datefmt))
        return handler

    def error(self, message: str) -> None:
        """One line on stderr: ``mcp-bridge: error: <message>``."""
        line = " ".join(message.split())
        self.err.print(self.text("mcp-bridge: error: ", style="bold red") + self.line(line), soft_wrap=True)

    def note(self, message: str) -> None:
        """A dim informational line on stderr (never on stdout, which may be piped)."""
        self.err.print(self.text(message, style="dim"), soft_wrap=True)

    @contextmanager
    def status(self, message: str) -> Iterator[Spinner]:
        """A transient spinner on stderr while the block runs, only when stderr is a terminal;
        the ``Spinner`` it yields takes updates (a server's progress reports) either way."""
        if not self.err.is_terminal:
            yield Spinner(self, None)
            return
        with self.err.status(self.row(message), spinner="dots") as status:
            yield Spinner(self, status)


def _reader_gone() -> None:
    raise BrokenPipeError


def _inert_hook() -> RenderHook:
    """A render hook that escapes controls in whatever content a renderable yields.

    The content of every segment (not rich's own control segments, and not the style codes
    rich adds around the content when it writes) goes through ``visible``. Text built with
    ``Output.text`` is escaped before layout already, so tables keep their columns; this catches
    what was built any other way (a plain string cell, a title, a syntax view).
    """
    from rich.console import RenderHook

    class InertHook(RenderHook):
        def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
            return [_Inert(r) for r in renderables]

    return InertHook()


class _Inert:
    """A renderable that renders another and escapes the controls in its content."""

    def __init__(self, inner: ConsoleRenderable) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.segment import Segment

        for segment in console.render(self.inner, options):
            if segment.control or _plain(segment.text):
                yield segment
            else:
                yield Segment(visible(segment.text), segment.style, segment.control)


def _plain(text: str) -> bool:
    return text.isascii() and text.isprintable()
