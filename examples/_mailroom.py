"""The examples' shared scenario: a new customer writes to the MultiMail stand-in's support inbox.

Every email-team example (AutoGen, AG2, MetaGPT, the distributed one) works this same mail (from
``fixtures.mailroom``, which the tests share) and starts the stand-in the way this module does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The mail itself and how it arrives are shared with the tests and benchmarks.
from fixtures.mailroom import BODY, CUSTOMER, CUSTOMER_NAME, REPLY, SUBJECT, receive_new_mail  # noqa: E402

__all__ = ["BODY", "CUSTOMER", "CUSTOMER_NAME", "REPLY", "ROOT", "SUBJECT", "env", "live", "receive_new_mail",
           "server"]


def server(db: Path) -> list[str]:
    """The stand-in over stdio, on ``db``."""
    return [sys.executable, "-m", "fixtures.multimail", "--db", str(db)]


def env(key: str) -> dict[str, str]:
    """The stand-in's environment: the API key it authenticates, and where its package is."""
    return {"MULTIMAIL_API_KEY": key, "PYTHONPATH": str(ROOT)}


def live() -> bool:
    """Whether a real model is configured (a key, or an OpenAI-compatible endpoint): the examples
    use it instead of their scripted model turns."""
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))
