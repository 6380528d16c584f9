"""Reading the trail back: ``query`` (any store: one record per call, each with its chain status),
``verify_log`` (``bridge.audit.chain.verify`` over a store), ``parse_since`` and ``render_table``."""

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
from .chain import Verification, audit_key, status_of, verify
from .jsonl import JsonlAuditLog
from .postgres import PostgresAuditLog, is_postgres_url
from .records import AuditRecord, aware, matches, merge
from .sqlite import SqliteAuditLog
from .stores import close_audit_log, open_audit_log

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["parse_since", "query", "render_table", "stored_entries", "verify_log"]

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
          since: str | datetime | None = None, open_only: bool = False) -> list[AuditRecord]:
    """Records from an audit file (JSONL or SQLite, detected) or a ``postgresql://`` URL, oldest
    first: one per call (a call's write-ahead and outcome records merged, ``merge``), each with its
    ``chain_status`` (``ok``, ``unchained``, ``unchecked`` without the key, ``broken``).

    Args:
        agent: only this agent's calls.
        tool: only calls of this tool (MCP name or the name the agent used).
        since: only calls at or after this time (``parse_since`` formats).
        open_only: only calls with no outcome (started, never finished: their process died).

    Raises:
        ConfigError: the file does not exist, is not an audit database, or ``since`` is malformed.
        AuthError, ServerUnreachable: a PostgreSQL server refused us or could not be reached.
    """
    after = parse_since(since)
    stored = stored_entries(path)
    report = verify(stored, audit_key())
    records = [r for r in merge(status_of(report, stored)) if matches(r, agent, tool, after)]
    if open_only:
        records = [r for r in records if r.open]
    # Stored in completion order; parallel calls finish out of order, so sort by start time.
    return sorted(records, key=lambda r: r.at)


def stored_entries(path: str | os.PathLike[str]) -> list[AuditRecord]:
    """Every record of an audit file or URL as stored, in stored order (nothing merged).

    Raises:
        ConfigError, AuthError, ServerUnreachable: as ``query``.
    """
    return _scan(path)[0]


def _scan(path: str | os.PathLike[str]) -> tuple[list[AuditRecord], list[int]]:
    """``stored_entries``, and the numbers of a JSONL file's lines that could not be read."""
    if not is_postgres_url(path) and not Path(path).exists():
        raise ConfigError(f"audit file not found: {Path(path)}")
    if not is_postgres_url(path) and Path(path).is_dir():
        raise ConfigError(f"{Path(path)} is a folder: give the audit log file in it")
    log = open_audit_log(path)
    try:
        if isinstance(log, JsonlAuditLog):
            return log.scan()
        if not isinstance(log, SqliteAuditLog | PostgresAuditLog):
            raise ConfigError(f"{path}: not an audit store this version can read")
        return log.entries(), []
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"{path}: not a readable audit database ({e})") from None
    finally:
        close_audit_log(log)


def verify_log(path: str | os.PathLike[str], key: bytes | None = None) -> Verification:
    """Check every hash chain of an audit file or URL (``bridge.audit.chain.verify``).

    Args:
        key: the HMAC key (default ``$MCP_BRIDGE_AUDIT_KEY``).

    Raises:
        ConfigError, AuthError, ServerUnreachable: as ``query``.
    """
    stored, unreadable = _scan(path)
    report = verify(stored, key if key is not None else audit_key())
    report.unreadable = unreadable
    return report


def render_table(records: Sequence[AuditRecord] | Iterable[AuditRecord], *, title: str | None = None,
                 arguments_width: int = 60) -> Table:
    """The records as a ``rich`` table. Cells are plain ``Text``: server- and model-supplied
    strings are never interpreted as rich markup, and their control, bidi and invisible
    characters are shown as escapes (an error text cannot move the cursor or erase the rows
    above it; arguments are JSON with JSON escapes). The server column is left out (and named in
    the title) when every record comes from the same server; the worker column appears only
    when records come from more than one worker; the step column (the model's tool-call id, or the
    action) only when a record names one. A call whose process died before it ended shows
    "no outcome"; the chain column shows each record's ``chain_status`` when a reader set it."""
    from rich.table import Table
    from rich.text import Text

    rows = list(records)
    servers = {r.server for r in rows}
    one_server = len(servers) == 1
    several_workers = len({r.worker for r in rows}) > 1
    with_steps = any(r.step for r in rows)
    with_chain = any(r.chain_status for r in rows)
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
    if with_steps:
        table.add_column("step", overflow="fold")
    table.add_column("approval", overflow="fold")
    table.add_column("outcome", overflow="fold")
    table.add_column("ms", justify="right", no_wrap=True)
    if with_chain:
        table.add_column("chain", no_wrap=True)
    table.add_column("arguments", overflow="fold", ratio=1, min_width=12)
    styles = {"ok": "green", "tool_error": "yellow", "exception": "red", "timeout": "red", "cancelled": "red",
              "denied": "magenta", "started": "bold red"}
    chain_styles = {"ok": "green", "broken": "bold red", "unchecked": "yellow", "unchained": "dim"}
    for r in rows:
        approval = r.decision or "-"
        if r.reviewer and r.decision not in (None, "not_required"):
            approval += f" by {r.reviewer}"
        args = json_text(json.dumps(r.arguments, ensure_ascii=False, separators=(",", ":"), default=str))
        if len(args) > arguments_width:
            args = args[: arguments_width - 1] + "…"
        outcome = Text("no outcome" if r.open else r.outcome, style=styles.get(r.outcome, ""))
        if r.error:
            outcome.append(f": {one_line(_first_line(r.error)[:60])}", style="dim")
        cells = [Text(r.at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))]
        if several_workers:
            cells.append(Text(one_line(r.worker or "-")))
        cells.append(Text(one_line(r.agent or "-")))
        if not one_server:
            cells.append(Text(one_line(r.server)))
        cells.append(Text(one_line(r.tool)))
        if with_steps:
            cells.append(Text(one_line(step_label(r.step))))
        cells += [Text(one_line(approval)), outcome, Text("-" if r.open else f"{r.duration * 1000:.0f}")]
        if with_chain:
            cells.append(Text(r.chain_status or "-", style=chain_styles.get(r.chain_status or "", "")))
        cells.append(Text(args))
        table.add_row(*cells)
    return table


def step_label(step: object) -> str:
    """A record's ``step`` in a few words: the model's tool-call id, else role/action, plus the run."""
    if not isinstance(step, dict) or not step:
        return "-"
    label = str(step.get("tool_call_id") or "/".join(str(step[k]) for k in ("role", "action") if step.get(k)) or "-")
    if step.get("message_id"):
        label += f" msg {step['message_id']}"
    if step.get("run_id"):
        label += f" run {step['run_id']}"
    if step.get("program"):
        label += f" program {str(step['program'])[:12]}#{step.get('position', '?')}"
    return label


def _first_line(text: str) -> str:
    # Only a newline ends the line shown: splitlines() would also end it at a carriage return or
    # a form feed, which is where an attacker would hide what follows; those are escaped instead.
    return text.split("\n", 1)[0]
