"""Reading the trail back: ``query`` (any store), ``parse_since`` and ``render_table``."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..sanitize import json_text, one_line
from .postgres import is_postgres_url
from .records import AuditRecord, aware
from .stores import open_audit_log

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["parse_since", "query", "render_table"]

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|w|wk)s?\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "sec": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "hr": "hours",
          "d": "days", "day": "days", "w": "weeks", "wk": "weeks"}


def parse_since(value: str | datetime | None, *, now: datetime | None = None) -> datetime | None:
    """``1h``, ``30m``, ``2d``, ``45s``, ``1w`` ago, or an ISO 8601 time (naive means UTC).

    Raises:
        ConfigError: neither a duration nor an ISO time.
    """
    if value is None or isinstance(value, datetime):
        return aware(value) if value is not None else None
    m = _RELATIVE.match(value)
    if m:
        delta = timedelta(**{_UNITS[m.group(2).lower()]: float(m.group(1))})
        return (now or datetime.now(timezone.utc)) - delta
    try:
        return aware(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        raise ConfigError(f"--since {value!r}: give a duration like 30m, 1h, 2d or an ISO time like "
                          "2025-01-31T09:00") from None


def query(path: str | os.PathLike[str], *, agent: str | None = None, tool: str | None = None,
          since: str | datetime | None = None) -> list[AuditRecord]:
    """Records from an audit file (JSONL or SQLite, detected) or a ``postgresql://`` URL, oldest first.

    Args:
        agent: only this agent's calls.
        tool: only calls of this tool (MCP name or the name the agent used).
        since: only calls at or after this time (``parse_since`` formats).

    Raises:
        ConfigError: the file does not exist, is not an audit database, or ``since`` is malformed.
        AuthError, ServerUnreachable: a PostgreSQL server refused us or could not be reached.
    """
    after = parse_since(since)
    if not is_postgres_url(path) and not Path(path).exists():
        raise ConfigError(f"audit file not found: {Path(path)}")
    log = open_audit_log(path)
    try:
        records = log.records(agent=agent, tool=tool, since=after)
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"{path}: not a readable audit database ({e})") from None
    finally:
        close = getattr(log, "close", None)
        if close is not None:
            close()
    # Stored in completion order; parallel calls finish out of order, so sort by start time.
    return sorted(records, key=lambda r: r.at)


def render_table(records: Sequence[AuditRecord] | Iterable[AuditRecord], *, title: str | None = None,
                 arguments_width: int = 60) -> Table:
    """The records as a ``rich`` table. Cells are plain ``Text``: server- and model-supplied
    strings are never interpreted as rich markup, and their control, bidi and invisible
    characters are shown as escapes (an error text cannot move the cursor or erase the rows
    above it; arguments are JSON with JSON escapes). The server column is left out (and named in
    the title) when every record comes from the same server; the worker column appears only
    when records come from more than one worker."""
    from rich.table import Table
    from rich.text import Text

    rows = list(records)
    servers = {r.server for r in rows}
    one_server = len(servers) == 1
    several_workers = len({r.worker for r in rows}) > 1
    if one_server:
        server = one_line(next(iter(servers)))
        title = f"{title} · server {server}" if title else f"server {server}"
    table = Table(title=title, show_lines=False)
    # Names stay whole (a tool cut to "reply_…" is useless); the arguments take what is left.
    table.add_column("time (UTC)", no_wrap=True)
    if several_workers:
        table.add_column("worker", no_wrap=True)
    table.add_column("agent", no_wrap=True)
    if not one_server:
        table.add_column("server", no_wrap=True)
    table.add_column("tool", no_wrap=True)
    table.add_column("approval", overflow="fold")
    table.add_column("outcome", overflow="fold")
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("arguments", overflow="fold", ratio=1, min_width=12)
    styles = {"ok": "green", "tool_error": "yellow", "exception": "red", "denied": "magenta"}
    for r in rows:
        approval = r.decision or "-"
        if r.reviewer and r.decision not in (None, "not_required"):
            approval += f" by {r.reviewer}"
        args = json_text(json.dumps(r.arguments, ensure_ascii=False, separators=(",", ":"), default=str))
        if len(args) > arguments_width:
            args = args[: arguments_width - 1] + "…"
        outcome = Text(r.outcome, style=styles.get(r.outcome, ""))
        if r.error:
            outcome.append(f": {one_line(_first_line(r.error)[:60])}", style="dim")
        cells = [Text(r.at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))]
        if several_workers:
            cells.append(Text(one_line(r.worker or "-")))
        cells.append(Text(one_line(r.agent or "-")))
        if not one_server:
            cells.append(Text(one_line(r.server)))
        cells += [Text(one_line(r.tool)), Text(one_line(approval)), outcome, Text(f"{r.duration * 1000:.0f}"),
                  Text(args)]
        table.add_row(*cells)
    return table


def _first_line(text: str) -> str:
    # Only a newline ends the line shown: splitlines() would also end it at a carriage return or
    # a form feed, which is where an attacker would hide what follows; those are escaped instead.
    return text.split("\n", 1)[0]
