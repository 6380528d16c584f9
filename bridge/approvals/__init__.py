"""A durable approval queue: requests wait in a store until a reviewer decides, from anywhere.

``QueueApprover(store, expires_after=..., notify=...)`` is an ``Approver`` (``Guards(approver=...)``,
``server.tools_for(..., approver=...)``) that puts every call the policy flags on the queue and
waits for the decision; ``mcp-bridge approvals`` lists and decides requests, and
``mcp-bridge approvals serve`` shows them on a web page. The store is a SQLite file (one
machine) or PostgreSQL (many machines), chosen by ``open_approval_store``.

Modules: ``requests`` (the request record, the argument hash), ``store`` (the store protocol, its
errors, how calls wait), ``sql`` (the statements both stores run), ``sqlite`` and ``postgres``
(the stores), ``stores`` (``open_approval_store``), ``approver`` (``QueueApprover``), ``webhook``
(POSTing new requests), ``web`` (the reviewers' page).
"""

from .approver import QueueApprover
from .postgres import PostgresApprovalStore
from .requests import ApprovalRequest, Status, argument_hash
from .sqlite import SqliteApprovalStore
from .store import AlreadyDecided, ApprovalError, ApprovalStore, StoreUnavailable, UnknownRequest
from .stores import open_approval_store
from .webhook import Webhook

__all__ = [
    "AlreadyDecided",
    "ApprovalError",
    "ApprovalRequest",
    "ApprovalStore",
    "PostgresApprovalStore",
    "QueueApprover",
    "SqliteApprovalStore",
    "Status",
    "StoreUnavailable",
    "UnknownRequest",
    "Webhook",
    "argument_hash",
    "open_approval_store",
]
