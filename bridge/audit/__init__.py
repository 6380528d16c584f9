"""The audit trail: every tool call through the bridge, in JSONL, SQLite or PostgreSQL, hash-chained.

``audit_interceptor(log)`` wraps every call. Put it inside the approval gate (``Guards.open``
does): each call then carries its decision (``ToolCall.approval``) into the record, and the gate
tells the trail of the calls it denied. Each record holds: time, worker
(the process that made the call), agent, server, tool (MCP name, plus the name the agent used),
arguments with secrets redacted, the approval decision and reviewer, the outcome, error text,
duration, a unique ``record_id`` and the model's step that asked for the call (``step``: the
framework's tool-call id, run, role/action; ``bridge.steps.Step``).

A call that goes to a server is recorded before its request leaves (``phase="started"``) and
again with its outcome (``phase="finished"``, ``ref`` naming the first): a process killed in
between leaves a call with "no outcome". Readers (``query``, ``records()``) merge the two into
one record per call. Every record is hash-chained (``chain``: one chain per file or SQLite
database, one per writer on PostgreSQL; HMAC-keyed with ``$MCP_BRIDGE_AUDIT_KEY``), and
``verify_log`` names the first record edited, deleted, inserted or reordered.

Outcomes: ``ok``; ``tool_error`` (the tool answered ``isError``); ``denied`` (a reviewer said no;
the server never saw the call); ``exception`` (the call could not complete: lost connection,
a protocol error, ...; the exception is re-raised after recording); ``timeout`` and ``cancelled``
(likewise); ``started`` (no outcome: the call's process died while it was in flight); ``refused`` (stopped
before anything was approved or sent: an unknown tool, one outside the agent's selection or
withheld, invalid arguments, or a trail that could not write; ``reason`` says which).

Storage is chosen by the developer: ``JsonlAuditLog(path)`` appends one JSON object per line
(easy to ship to a log pipeline); ``SqliteAuditLog(path)`` keeps a real SQLite file in WAL mode
(safe with several agent processes on one machine writing at once, and queryable);
``PostgresAuditLog(url)`` keeps the same table in PostgreSQL, for workers on many machines.
``open_audit_log`` picks one from a path or URL (it connects on first use; an owner closes it:
``hold_audit_log`` holds it in a connection's ``Resources``); ``query(path_or_url, ...)`` reads any of them.
Each store writes on a thread of its own (``writer``), so the event loop never waits on the disk,
another process's lock or the network. A record is masked once, where it is made
(``AuditRecord.masked``/``amend``), and each store masks whatever else it is given.

Modules: ``records`` (the record, the ``AuditLog`` protocol, worker names, ``merge``), ``chain``
(hashing and verification), ``jsonl``, ``sqlite``, ``postgres`` (the stores), ``writer`` (their
writer thread), ``stores`` (``open_audit_log``), ``trail`` (the interceptor), ``query`` (reading,
filtering, verifying and rendering).
"""

from .chain import KEY_ENV, Verification, verify
from .jsonl import JsonlAuditLog
from .postgres import PostgresAuditLog
from .query import parse_since, query, render_table, verify_log
from .records import WORKER_ENV, AuditLog, AuditRecord, Outcome, current_worker
from .sqlite import SqliteAuditLog
from .stores import AuditDestination, hold_audit_log, open_audit_log
from .trail import AuditTrail, audit_interceptor

__all__ = [
    "KEY_ENV",
    "WORKER_ENV",
    "AuditDestination",
    "AuditLog",
    "AuditRecord",
    "AuditTrail",
    "JsonlAuditLog",
    "Outcome",
    "PostgresAuditLog",
    "SqliteAuditLog",
    "Verification",
    "audit_interceptor",
    "current_worker",
    "hold_audit_log",
    "open_audit_log",
    "parse_since",
    "query",
    "render_table",
    "verify",
    "verify_log",
]
