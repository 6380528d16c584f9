"""The audit trail: one record per tool call through the bridge, in JSONL, SQLite or PostgreSQL.

``audit_interceptor(log)`` wraps every call. Put it outermost (``tools_for`` does) so it also
records calls the approval gate denied and calls that raised. Each record holds: time, worker
(the process that made the call), agent, server, tool (MCP name, plus the name the agent used),
arguments with secrets redacted, the approval decision and reviewer, the outcome, error text,
duration and a unique ``record_id``.

Outcomes: ``ok``; ``tool_error`` (the tool answered ``isError``); ``denied`` (a reviewer said no;
the server never saw the call); ``exception`` (the call could not complete: lost connection,
timeout, cancellation, ...; the exception is re-raised after recording); ``refused`` (stopped
before anything was approved or sent: an unknown tool, one outside the agent's selection or
withheld, invalid arguments, or a trail that could not write; ``reason`` says which).

Storage is chosen by the developer: ``JsonlAuditLog(path)`` appends one JSON object per line
(easy to ship to a log pipeline); ``SqliteAuditLog(path)`` keeps a real SQLite file in WAL mode
(safe with several agent processes on one machine writing at once, and queryable);
``PostgresAuditLog(url)`` keeps the same table in PostgreSQL, for workers on many machines.
``open_audit_log`` picks one from a path or URL; ``query(path_or_url, ...)`` reads any of them.
Writes run on worker threads so the event loop never waits on the disk or the network.

Modules: ``records`` (the record, the ``AuditLog`` protocol, worker names), ``jsonl``,
``sqlite``, ``postgres`` (the stores), ``stores`` (``open_audit_log``), ``trail`` (the
interceptor), ``query`` (reading, filtering and rendering).
"""

from .jsonl import JsonlAuditLog
from .postgres import PostgresAuditLog
from .query import parse_since, query, render_table
from .records import WORKER_ENV, AuditLog, AuditRecord, Outcome, current_worker
from .sqlite import SqliteAuditLog
from .stores import open_audit_log
from .trail import AuditTrail, audit_interceptor

__all__ = [
    "WORKER_ENV",
    "AuditLog",
    "AuditRecord",
    "AuditTrail",
    "JsonlAuditLog",
    "Outcome",
    "PostgresAuditLog",
    "SqliteAuditLog",
    "audit_interceptor",
    "current_worker",
    "open_audit_log",
    "parse_since",
    "query",
    "render_table",
]
