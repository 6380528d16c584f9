"""``Decision``: the outcome of an approval step, a typed value that travels with the call.

It lives below the call path (``bridge.connection``) because ``ToolCall.approval`` carries it:
the approval gate passes its decision on with ``dataclasses.replace``, and a caller whose
framework asked a human already (Agent Framework) hands that answer in with the call.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Decision"]


@dataclass(frozen=True)
class Decision:
    """The outcome of an approval step.

    Attributes:
        approved: the call may proceed.
        reviewer: who decided (``console:alice``, ``auto``, ``policy``, a callback's name).
        reason: why; shown to the model on denial.
        required: False when the policy did not ask anyone (the call passed unreviewed).
    """

    approved: bool
    reviewer: str
    reason: str = ""
    required: bool = True

    @property
    def status(self) -> str:
        """``approved``, ``denied`` or ``not_required`` (as written to the audit trail)."""
        if not self.required:
            return "not_required"
        return "approved" if self.approved else "denied"
