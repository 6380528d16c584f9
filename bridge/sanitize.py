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

The escapes are plain ASCII: nothing the sanitiser emits can itself be a control.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["html_text", "invisible_chars", "one_line", "quoted", "visible"]

# Characters that change how text is drawn or hide text, beyond the Cc/Cf categories:
# line and paragraph separators break a "one line" view, the Hangul fillers and the
# braille blank draw as nothing, and variation selectors outside emoji use hide data.
_EXTRA = frozenset("\u2028\u2029\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180e")


def _hidden(ch: str) -> bool:
    if ch in _EXTRA:
        return True
    category = unicodedata.category(ch)
    # Cc: C0, DEL and C1 controls; Cf: format characters (bidi marks, overrides and isolates,
    # zero-width space/joiners, word joiner, invisible operators, BOM, soft hyphen, tags);
    # Co/Cn: private-use and unassigned code points, which fonts draw as anything or nothing.
    return category in ("Cc", "Cf", "Co", "Cn", "Zl", "Zp")


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
    return "".join(_escape(ch) if ch not in keep and (_hidden(ch) or ch in "\t\n\r") else ch for ch in text)


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
    return [_escape(ch) for ch in dict.fromkeys(text) if _hidden(ch) or ch in "\t\n\r"]


def quoted(source: str, text: str, verb: str = "says") -> str:
    """Foreign ``text`` framed as written by ``source`` (``server 'mail' asks: ...``), each of its
    lines indented, so it can never stand at the start of a line the bridge itself printed."""
    body = visible(text).replace("\n", "\n    | ")
    return f"{one_line(source)} {verb}:\n    | {body}"
