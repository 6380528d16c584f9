"""The one sanitiser for text a server or a model wrote, wherever it meets a human. Pure.

Anything foreign (descriptions, titles, instructions, results, error texts, arguments,
elicitation messages) may carry characters that act on the reader's screen instead of being
read: C0 and C1 controls (cursor moves, erase, conceal), bidi overrides and isolates that
reorder what is shown, and zero-width or other invisible characters that hide words from the
reviewer while the model reads them. Every such character becomes a visible escape
(``\\x1b``, ``\\u202e``, ``\\U000e0041``), so the person sees exactly what the text holds.

* ``visible(text)``: multi-line text (newline and tab kept) for a terminal or a page.
* ``one_line(text)``: the same, with newline, carriage return and tab escaped too, for a
  table cell or a prompt line that must stay one line.
* ``html_text(text)``: ``visible`` then HTML-escaped, for the web page (one rule for both).
* ``invisible_chars(text)``: the escapes of the characters ``visible`` would rewrite, for
  flagging a name a reviewer cannot read as written.
* ``quoted(source, text)``: foreign text framed as its author's, so it cannot pass for the
  bridge's own prompt (``server 'mail' says: ...``).
* ``framed(text, width)``: foreign text behind a gutter on every row, cut to the screen's width
  so the terminal never wraps it onto a row of its own.
* ``json_text(document)``: a JSON document with the same characters given as JSON ``\\u``
  escapes: the same value, parseable, and inert on a screen.
* ``as_seen(text)``: the text with its hidden characters dropped (and compatibility forms
  folded): what a reader takes a name to be, for matching rules against it.
* ``cell_width(text)``: how many terminal columns ``text`` takes.
* ``cut(text, width)``: ``text`` cut to ``width`` columns, an ellipsis saying so.
* ``InertFormatter``: a logging formatter for a screen: each record's line ``one_line``, a
  traceback ``visible`` (libraries log what servers sent).

The escapes are plain ASCII: nothing the sanitiser emits can itself be a control.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata

__all__ = ["InertFormatter", "as_seen", "cell_width", "cut", "framed", "html_text", "invisible_chars", "json_text",
           "one_line", "quoted", "visible"]

# Characters that change how text is drawn or hide text, beyond the Cc/Cf categories:
# line and paragraph separators break a "one line" view, the Hangul fillers and the
# braille blank draw as nothing.
_EXTRA = frozenset("\u2028\u2029\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180e")
# Variation selectors draw as nothing, and a run of them after one character carries any bytes
# (one selector per byte) that a model reads and a reviewer never sees. Only the emoji and text
# presentation selectors, right after a non-ASCII character that is no selector, are what a
# reader expects (the red heart's U+FE0F); every other one is shown as an escape.
_PRESENTATION = "\ufe0e\ufe0f"


def _selector(ch: str) -> bool:
    return "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef"


def _hidden(ch: str) -> bool:
    if ch in _EXTRA:
        return True
    category = unicodedata.category(ch)
    # Cc: C0, DEL and C1 controls; Cf: format characters (bidi marks, overrides and isolates,
    # zero-width space/joiners, word joiner, invisible operators, BOM, soft hyphen, tags);
    # Co/Cn: private-use and unassigned code points, which fonts draw as anything or nothing.
    return category in ("Cc", "Cf", "Co", "Cn", "Zl", "Zp")


def _hidden_at(text: str, i: int) -> bool:
    """Whether ``text[i]`` is hidden, its neighbour considered (see ``_PRESENTATION``)."""
    ch = text[i]
    if not _selector(ch):
        return _hidden(ch)
    if ch not in _PRESENTATION or i == 0:
        return True
    before = text[i - 1]
    return before.isascii() or _selector(before) or _hidden(before)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


# Fast rejection for plain text: printable ASCII plus newline and tab needs no character walk.
_PLAIN = re.compile(r"[\t\n\x20-\x7e]*\Z")
_PLAIN_LINE = re.compile(r"[\x20-\x7e]*\Z")


def _rewrite(text: str, keep: str) -> str:
    return "".join(_escape(ch) if ch not in keep and (ch in "\t\n\r" or _hidden_at(text, i)) else ch
                   for i, ch in enumerate(text))


def visible(text: str) -> str:
    """``text`` with every control, bidi and invisible character shown as an escape; newline and
    tab are kept."""
    if _PLAIN.match(text):
        return text
    return _rewrite(text, "\n\t")


def one_line(text: str) -> str:
    """``visible(text)`` with newline, carriage return and tab escaped as well."""
    if _PLAIN_LINE.match(text):
        return text
    return _rewrite(text, "")


def html_text(text: str) -> str:
    """``visible(text)``, HTML-escaped (quotes included): safe as element text and attribute value."""
    return html.escape(visible(text), quote=True)


def invisible_chars(text: str) -> list[str]:
    """The escapes of the characters in ``text`` a reader would not see as written (newline and
    tab count: a name has no business holding them); empty when there are none."""
    return [_escape(ch) for ch in dict.fromkeys(ch for i, ch in enumerate(text)
                                                if ch in "\t\n\r" or _hidden_at(text, i))]


GUTTER = "    | "
"""What starts every row of foreign text in a frame: nothing the author wrote starts a row."""


def cell_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide (East Asian) characters two, combining marks none,
    a tab up to eight. An estimate that errs wide, which only makes rows shorter."""
    if _PLAIN_LINE.match(text):
        return len(text)
    total = 0
    for ch in text:
        if ch == "\t":
            total += 8
        elif unicodedata.combining(ch):
            continue
        else:
            total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def _rows(line: str, room: int) -> list[str]:
    """``line`` cut into pieces of at most ``room`` columns (at least one piece, maybe empty)."""
    if cell_width(line) <= room:
        return [line]
    rows: list[str] = []
    current: list[str] = []
    used = 0
    for ch in line:
        size = cell_width(ch)
        if current and used + size > room:
            rows.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += size
    rows.append("".join(current))
    return rows


def cut(text: str, width: int, mark: str = "…") -> str:
    """``text`` in at most ``width`` terminal columns: cut, ``mark`` at its end, when it is wider."""
    if cell_width(text) <= width:
        return text
    room = max(width - cell_width(mark), 0)
    return _rows(text, room)[0] + mark if room else mark


_MIN_ROOM = 16


def framed(text: str, width: int | None = None, gutter: str = GUTTER) -> str:
    """``visible(text)`` with ``gutter`` before each of its lines. With ``width`` (the screen's
    columns), a line too long for one row is cut and continued behind the gutter: a terminal
    that wrapped it would start a row with the author's text, which could then pose as the
    bridge's own line (padding decides where a wrap falls)."""
    lines = visible(text).split("\n")
    if width is not None:
        room = max(_MIN_ROOM, width - cell_width(gutter))
        lines = [row for line in lines for row in _rows(line, room)]
    return "\n".join(gutter + line for line in lines)


def quoted(source: str, text: str, verb: str = "says", width: int | None = None) -> str:
    """Foreign ``text`` framed as written by ``source`` (``server 'mail' asks: ...``), each of its
    lines behind a gutter (see ``framed``), so it can never stand at the start of a row the
    bridge itself printed."""
    return f"{one_line(source)} {verb}:\n{framed(text, width)}"


def json_text(document: str) -> str:
    """``document`` (JSON, e.g. from ``json.dumps(ensure_ascii=False)``) with every character
    ``visible`` would rewrite given as a JSON ``\\uXXXX`` escape instead: still the same JSON
    value, but nothing in it acts on a screen. Such characters can only stand inside JSON
    strings (the syntax around them is ASCII), where the escape means the same character."""
    if _PLAIN.match(document):
        return document
    return "".join(_json_escape(ch) if ch not in "\t\n" and _hidden_at(document, i) else ch
                   for i, ch in enumerate(document))


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP, JSON spells a character as its UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def as_seen(text: str) -> str:
    """``text`` as a reader takes it: hidden characters dropped and compatibility forms folded
    (NFKC: fullwidth letters, ligatures). ``send\\u200b_email`` is ``send_email`` to a reader,
    so a rule written for that name must reach it."""
    if _PLAIN_LINE.match(text):
        return text
    return unicodedata.normalize("NFKC", "".join(ch for i, ch in enumerate(text) if not _hidden_at(text, i)))


class InertFormatter(logging.Formatter):
    """A ``logging.Formatter`` for a screen: the record's line (its message included) on one line
    with its controls escaped (``one_line``), a traceback with its controls escaped (``visible``)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))
