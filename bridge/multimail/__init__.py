"""What is specific to MultiMail's server: its account-level tools, its key shapes, and waiting for the operator.

The generic bridge names no product; a MultiMail deployment imports this package:

```python
from bridge import connect
from bridge.multimail import account_filter, wait_for_decision

async with connect(cmd, env={"MULTIMAIL_API_KEY": key}) as mail:
    drafter = await mail.tools_for("drafter", select=account_filter(), audit="audit.jsonl")
```

Importing it also teaches ``bridge.secrets`` the shape of MultiMail's keys (``mm_live_...``,
``mm_test_...``), so they are masked in approval prompts and audit records wherever they appear.
"""

from __future__ import annotations

from ..secrets import add_key_shapes
from ..selection import ToolFilter
from .decisions import APPROVED_STATUSES, PENDING_STATUSES, DecisionTimeout, EmailDecision, wait_for_decision

__all__ = [
    "ACCOUNT_TOOLS",
    "APPROVED_STATUSES",
    "KEY_SHAPES",
    "PENDING_STATUSES",
    "DecisionTimeout",
    "EmailDecision",
    "account_filter",
    "wait_for_decision",
]

ACCOUNT_TOOLS: tuple[str, ...] = (
    "create_account",
    "activate_account",
    "update_account",
    "delete_account",
    "list_api_keys",
    "create_api_key",
    "revoke_api_key",
    "get_audit_log",
    "upgrade_plan",
    "cancel_subscription",
    "get_billing_portal",
    "create_webhook",
    "delete_webhook",
    "delete_mailbox",
    "request_upgrade",
    "apply_upgrade",
    "decide_email",
)
"""MultiMail tools that act on the account, its keys, billing or oversight rather than on mail.

For ``ToolFilter(opt_in=...)`` or ``Guards(select=account_filter())``: no agent gets these unless
its ``include`` names them.
``decide_email`` is here because approving mail is the human operator's job, not an agent's.
"""

KEY_SHAPES: tuple[str, ...] = (r"^mm_(live|test)_[A-Za-z0-9_-]{8,}",)
"""MultiMail API keys, as ``bridge.secrets`` patterns."""

add_key_shapes(*KEY_SHAPES)


def account_filter(*named: str) -> ToolFilter:
    """Every tool except the account-level ones, plus those of them ``named`` explicitly."""
    return ToolFilter(include=("*", *named) if named else None, opt_in=ACCOUNT_TOOLS)
