"""How catalogues, tools and verdicts look: rich renderables for people, plain dicts for ``--json``.

Every string that came from a server goes through ``Output.text`` or ``Output.line`` (masked,
no markup, controls shown as escapes); styles are applied only to labels we write. JSON views
give such characters as JSON escapes. JSON documents are masked as data before
rendering, because a table or panel may wrap a long string across lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from ..catalogue import Annotations, Catalogue, ToolEntry
from ..sanitize import json_text, visible
from ..session import ServerInfo
from .fidelity import Fidelity
from .output import Output

__all__ = [
    "INSTRUCTIONS_HEADING",
    "catalogue_json",
    "catalogue_table",
    "fidelity_view",
    "findings_view",
    "fit_table",
    "hints",
    "hints_legend",
    "instructions_view",
    "json_view",
    "narrow",
    "print_findings",
    "server_header",
    "server_json",
    "tool_view",
]

_HINTS = (("read_only", "read-only"), ("destructive", "destructive"), ("idempotent", "idempotent"),
          ("open_world", "open-world"))


def server_json(info: ServerInfo) -> dict[str, Any]:
    """The server's self-description as JSON (``label`` is the user's name for it; ``name`` its claim)."""
    out: dict[str, Any] = {"label": info.label, "name": info.name, "version": info.version,
                           "protocolVersion": info.protocol_version, "transport": info.transport}
    if info.title:
        out["title"] = info.title
    if info.instructions:
        out["instructions"] = info.instructions
    out["capabilities"] = dict(info.capabilities)
    return out


def tool_json(entry: ToolEntry) -> dict[str, Any]:
    """One catalogue entry: the tool as the server listed it, plus the name AutoGen uses."""
    return {"autogenName": entry.name, **entry.to_wire()}


def catalogue_json(info: ServerInfo, catalogue: Catalogue, list_seconds: float,
                   withheld: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The whole catalogue for ``tools --json``, and what was withheld from it (name -> why)."""
    return {"server": server_json(info), "listSeconds": round(list_seconds, 4), "toolCount": len(catalogue),
            "tools": [tool_json(e) for e in catalogue], "withheld": dict(withheld or {})}


def server_header(out: Output, info: ServerInfo, tool_count: int, list_seconds: float) -> Text:
    """``label  serverInfo: name version (title)`` then ``protocol P · transport · N tools · listed in S``.

    The label is the user's name for the server (what rules and audit records use); what follows
    it is the server's own claim, shown as such.
    """
    text = out.line(info.label or "(unnamed server)", style="bold")
    text += out.line(f"  serverInfo: {info.name or '(no name)'}")
    if info.version:
        text += out.line(f" {info.version}")
    if info.title and info.title != info.name:
        text += out.line(f" ({info.title})", style="dim")
    noun = "tool" if tool_count == 1 else "tools"
    details = [f"protocol {info.protocol_version}", info.transport, f"{tool_count} {noun}",
               f"listed in {_seconds(list_seconds)}"]
    return text + Text("\n" + "  ·  ".join(details), style="dim")


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def hints(annotations: Annotations) -> list[str]:
    """The hints the server declared true, in the spec's order."""
    return [label for attr, label in _HINTS if getattr(annotations, attr) is True]


def _required(entry: ToolEntry) -> tuple[list[str], int]:
    props = entry.input_schema.get("properties")
    names = [str(k) for k in props] if isinstance(props, Mapping) else []
    declared = entry.input_schema.get("required")
    required = [str(r) for r in declared] if isinstance(declared, list) else []
    return required, len([n for n in names if n not in required])


# Hints as a narrow terminal shows them (a legend under the table spells them out).
_SHORT_HINTS = {"read-only": "R", "destructive": "D", "idempotent": "I", "open-world": "O"}
_WIDE = 120
_TITLE_MIN = 16
"""Below this many columns, tables abbreviate what they can (hints) before wrapping anything."""


def catalogue_table(out: Output, catalogue: Iterable[ToolEntry], *, name_header: str = "Tool (AutoGen name)",
                    prefix: str = "", withheld: Mapping[str, str] | None = None) -> Table:
    """Tool | Title | Hints | Required | Optional, one row per tool in server order, fitted to the
    terminal (see ``fit_table``); on a narrow one the hints are abbreviated (``hints_legend``).
    The MCP name is shown under a name that differs from it by more than the server's ``prefix``.
    Tools ``withheld`` from agents (MCP name -> why) follow, marked, each with its reason."""
    from ..catalogue import safe_names

    entries = list(catalogue)
    head = safe_names(["x"], prefix=prefix)["x"][:-1]  # the prefix as names carry it ("zoo_"), or ""
    renamed = {e.mcp_name for e in entries if e.name != head + e.mcp_name}
    short = narrow(out)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    # A name is what a user copies into the next command: never wrapped or cut, whatever the
    # width; titles and argument lists wrap between words instead.
    longest = max([len(e.name) for e in entries]
                  + [len(out.line("MCP: " + e.mcp_name)) for e in entries if e.mcp_name in renamed]
                  + [len(out.line(name)) for name in withheld or {}] + [10])
    table.add_column(name_header, no_wrap=True, min_width=longest)
    # An argument name is copied too: its column is at least as wide as the longest one.
    widest_argument = max((len(name) for e in entries for name in _required(e)[0]), default=0)
    required_width = min(widest_argument + 1, 30)  # + its comma
    # Rich shrinks every wrapping column alike; the titles give way first, so names stay whole,
    # and on a narrow terminal the count of optional arguments goes before the titles get cramped.
    # Each column but the edges has a space of padding either side, and one between columns.
    title_width = out.out.width - longest - 5 - required_width - 3 * 2 - 3 if short else None
    with_optional = title_width is None or title_width - 7 >= _TITLE_MIN
    if title_width is not None and with_optional:
        title_width -= 7
    table.add_column("Title", ratio=1, max_width=max(_TITLE_MIN, title_width) if title_width is not None else None)
    table.add_column("Hints")
    table.add_column("Required", ratio=1, min_width=required_width)
    if with_optional:
        table.add_column("Opt.", justify="right", no_wrap=True)
    for entry in entries:
        name = out.line(entry.name, style="cyan")
        if entry.mcp_name in renamed:
            name += Text("\n") + out.line(f"MCP: {entry.mcp_name}", style="dim")
        required, optional = _required(entry)
        shown = "".join(_SHORT_HINTS[h] for h in hints(entry.annotations)) if short \
            else " ".join(hints(entry.annotations))
        cells = [name, out.line(entry.title or ""), Text(shown, style="yellow"), out.line(", ".join(required))]
        table.add_row(*cells, *([str(optional) if optional else ""] if with_optional else []))
    for mcp_name, reason in sorted((withheld or {}).items()):
        by, _, why = reason.partition(": ")
        # Not offered to any agent: the row says so where the name would be read.
        cells = [out.line(mcp_name, style="red") + Text("\n(withheld)", style="bold red"),
                 Text(f"withheld {by}: ", style="red") + out.line(why), Text(), Text()]
        table.add_row(*cells, *([""] if with_optional else []))
    return fit_table(out, table)


def narrow(out: Output) -> bool:
    """The output is a terminal (or ``COLUMNS``) narrower than ``_WIDE``: abbreviate."""
    return not out.piped and out.out.width < _WIDE


def hints_legend() -> Text:
    """What the abbreviated hints of a narrow ``catalogue_table`` stand for."""
    return Text("hints: " + ", ".join(f"{short} {long}" for long, short in _SHORT_HINTS.items()), style="dim")


def fit_table(out: Output, table: Table, *, drop: Iterable[str] = ()) -> Table:
    """Make ``table`` readable at the output's width, whatever built it.

    No cell is folded mid-word: cells wrap between words and a word longer than its column is
    ellipsized (an identifier is never split across lines); a header never wraps. When even that
    does not fit, the columns headed ``drop`` are removed, in that order, until it does. Piped
    output keeps every column (``Output.print_table`` prints it at its natural width).
    """
    from rich.cells import cell_len

    for column in table.columns:
        if column.overflow == "fold":
            column.overflow = "ellipsis"
        column.min_width = max(column.min_width or 0, cell_len(str(column.header)))
    if out.piped:
        return table
    console, options = out.out, out.out.options

    def fits() -> bool:
        # The widths rich will lay out at this width, against what each column needs: a no-wrap
        # column its whole cells (less is cropped), any other its header (a longer word is ellipsized).
        widths = table._calculate_column_widths(console, options.update_width(console.width - table._extra_width))
        if sum(widths) + table._extra_width > console.width:
            return False
        for width, column in zip(widths, table.columns, strict=True):
            needed = table._measure_column(console, options, column).minimum
            if not column.no_wrap:
                needed = min(needed, cell_len(str(column.header)) + 2)
            if width < needed:
                return False
        return True

    left_out = []
    for header in drop:
        if fits():
            break
        kept = [c for c in table.columns if str(c.header) != header]
        if len(kept) < len(table.columns):
            left_out.append(header)
        table.columns[:] = kept
    if left_out:
        out.note(f"not shown at {console.width} columns: {', '.join(left_out)} (--json shows every field)")
    return table


def _one_line(value: Any) -> str:
    # Characters that would act on a screen are given as JSON escapes: the same value, inert.
    return json_text(json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": ")))


def pretty_json(value: Any, width: int = 100, indent: int = 0, column: int | None = None) -> str:
    """Indented JSON that keeps any object or array fitting in ``width`` on one line.

    Far shorter than ``json.dumps(indent=2)`` for typical tool results (lists of short
    strings, small nested objects) while still parseable JSON. ``column`` is where the
    value starts on its line (after a key), ``indent`` where its closing bracket goes.
    """
    flat = _one_line(value)
    start = indent if column is None else column
    if start + len(flat) + 1 <= width or not isinstance(value, dict | list) or not value:
        return flat
    pad = " " * (indent + 2)
    items = []
    if isinstance(value, dict):
        for key, item in value.items():
            head = f"{pad}{_one_line(str(key))}: "
            items.append(head + pretty_json(item, width, indent + 2, len(head)))
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + pretty_json(item, width, indent + 2) for item in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def json_view(out: Output, value: Any, width: int | None = None) -> Text:
    """Pretty, highlighted JSON of server data (masked first; strings are never markup)."""
    masked = json.loads(out.mask(json.dumps(value, ensure_ascii=False, default=str)))
    text = Text(pretty_json(masked, width or max(40, out.out.width - 6)), overflow="fold")
    JSONHighlighter().highlight(text)
    return text


def _annotations_line(annotations: Annotations) -> Text:
    text = Text()
    for attr, label in _HINTS:
        value = getattr(annotations, attr)
        shown = "not given" if value is None else ("yes" if value else "no")
        style = "dim" if value is None else ("yellow" if value else "")
        if text:
            text += Text("  ·  ", style="dim")
        text += Text(f"{label}: ") + Text(shown, style=style)
    return text


def tool_view(out: Output, entry: ToolEntry, signature_source: str, model_schema: Mapping[str, Any],
              fidelity: Fidelity) -> Group:
    """Everything ``show`` prints for one tool, top to bottom."""
    title = out.line(entry.name, style="bold cyan")
    if entry.title:
        title += Text("  ") + out.line(entry.title, style="bold")
    parts: list[RenderableType] = [title]
    if entry.name != entry.mcp_name:
        parts.append(Text("MCP name: ", style="dim") + out.line(entry.mcp_name))
    parts += [Text(), out.text(entry.description), Text(),
              Text("Annotations  ", style="bold") + _annotations_line(entry.annotations)]
    if entry.annotations.title and entry.annotations.title != entry.title:
        parts.append(Text("Annotation title  ", style="bold") + out.line(entry.annotations.title))
    inner = out.out.width - 4  # a panel's borders and padding
    shown = dict(model_schema)
    if shown.get("parameters") == entry.input_schema:
        # Equal (the verdict below checks it): repeating a large schema would only hide the point.
        shown["parameters"] = "(the inputSchema above, unchanged)"
    parts += [
        Panel(json_view(out, entry.input_schema, inner), title="inputSchema (from the server)", title_align="left",
              box=box.ROUNDED),
        Panel(Syntax(visible(out.mask(signature_source)), "python", theme="ansi_dark", word_wrap=True,
                     background_color="default"),
              title="Python signature (generated by the bridge)", title_align="left", box=box.ROUNDED),
        Panel(json_view(out, shown, inner), title="Tool schema AutoGen sends to the model", title_align="left",
              box=box.ROUNDED),
    ]
    if entry.output_schema is not None:
        parts.append(Panel(json_view(out, entry.output_schema, inner), title="outputSchema", title_align="left",
                           box=box.ROUNDED))
    parts.append(fidelity_view(out, fidelity))
    return Group(*parts)


def fidelity_view(out: Output, fidelity: Fidelity) -> RenderableType:
    """The verdict: ``lossless``, or every difference with its JSON pointer and reason."""
    if fidelity.lossless:
        head = Text("Fidelity: ", style="bold") + Text("lossless", style="bold green")
        lines: list[RenderableType] = [
            head,
            Text("  the model is sent the inputSchema unchanged, under the tool's own name;", style="dim"),
            Text("  the Python signature carries every argument, named and typed as declared", style="dim")]
    else:
        count = len(fidelity.differences)
        head = Text("Fidelity: ", style="bold") + Text(f"{count} difference{'s' if count != 1 else ''}",
                                                       style="bold yellow")
        lines = [head]
        if not fidelity.of_view("model"):
            lines.append(Text("  the model is sent the inputSchema unchanged, under the tool's own name",
                              style="dim"))
        grid = Table.grid(padding=(0, 1), pad_edge=True)
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(style="cyan", overflow="fold", max_width=40)
        grid.add_column(ratio=1)
        # Places with the same change and reason share one row (a profile makes every optional
        # property nullable: one reason, many pointers).
        rows: dict[tuple[str, str, str], list[str]] = {}
        for diff in fidelity.differences:
            rows.setdefault((diff.view, diff.kind, diff.detail), []).append(diff.pointer or "(whole schema)")
        for (view, kind, detail), pointers in rows.items():
            grid.add_row(f" {view}", Text("\n").join(out.line(pointer) for pointer in pointers),
                         Text(f"{kind}: ", style="yellow") + out.text(detail))
        lines.append(grid)
    if fidelity.validated_keywords:
        lines.append(Text("  checked by validation before each call (no Python type expresses them): ",
                          style="dim") + Text(", ".join(fidelity.validated_keywords), style="dim"))
    return Group(Text(), *lines)


def instructions_view(out: Output, server: str, instructions: str) -> Text:
    """A server's instructions framed as its own words (``server 'x' gives the model these
    instructions:``, every line of theirs behind ``|``), sanitised, never markup."""
    from ..sanitize import quoted

    return out.text(quoted(f"server {server!r}", instructions, "gives the model these instructions", out.frame_width))


def findings_view(out: Output, heading: str, findings: Iterable[str]) -> Group:
    """Injection-heuristic findings (``bridge.inspection``) under a warning ``heading``, one ``!`` line each."""
    return Group(Text(heading, style="bold yellow"),
                 *(Text("  ! ", style="bold yellow") + out.text(finding) for finding in findings))


INSTRUCTIONS_HEADING = ("Possible prompt injection in the server's instructions (read them before putting them in a "
                        "system message):")


def print_findings(out: Output, heading: str, findings: Sequence[str]) -> None:
    """Print ``findings_view`` when there is anything to warn about."""
    if findings:
        out.print(findings_view(out, heading, findings), soft_wrap=True)
