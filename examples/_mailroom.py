"""The examples' shared scenario: a new customer writes to the MultiMail stand-in's support inbox.

Every email-team example (AutoGen, AG2, MetaGPT, the distributed one) works this same mail, so the
mail itself, how it arrives, and how the stand-in is started live here once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CUSTOMER_NAME = "Jonas Berg"
CUSTOMER = "jonas.berg@fjord.example"
SUBJECT = "Tent pole snapped on the first night"
BODY = ("Hello Acme,\n\none of the poles of my new Fjell 2 tent snapped on the first night out. "
        "Can you send a replacement pole to the address on my order #5120?\n\nThanks,\nJonas")
REPLY = ("Hi Jonas,\n\nsorry about the broken pole. A replacement for your Fjell 2 ships today to the address "
         "on order #5120.\n\nAcme Support")


def receive_new_mail(db: Path) -> dict[str, str]:
    """The customer's email arrives from outside the stand-in; returns its ``id`` and ``thread_id``."""
    from fixtures.multimail.seed import MAILBOX_ADDRESS, open_store
    from fixtures.multimail.service import Service

    store = open_store(db)
    try:
        email = Service(store).receive(MAILBOX_ADDRESS, CUSTOMER, SUBJECT, BODY, from_name=CUSTOMER_NAME)
    finally:
        store.close()
    return {"id": email["id"], "thread_id": email["thread_id"]}


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
