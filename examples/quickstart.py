"""Quickstart: an AssistantAgent with the read-only tools of the MultiMail stand-in (offline unless OPENAI_API_KEY)."""

import asyncio
import sys
import tempfile
from pathlib import Path

from _models import calls, model_client
from autogen_agentchat.agents import AssistantAgent

from bridge import connect

ROOT = Path(__file__).resolve().parents[1]
SERVER = [sys.executable, "-m", "fixtures.multimail", "--db", str(Path(tempfile.mkdtemp()) / "mail.db")]
AGENT_KEY = "mm_test_agent_5f2c8e1b9d4a7c36"  # the stand-in's seeded test key


async def main() -> None:
    async with connect(SERVER, env={"MULTIMAIL_API_KEY": AGENT_KEY, "PYTHONPATH": str(ROOT)}) as mail:
        model = model_client(calls(("check_inbox", {"status": "unread"})), "Maria Lopez wrote 3 times (order #4417).")
        agent = AssistantAgent("assistant", model_client=model, reflect_on_tool_use=True,
                               tools=await mail.tools_for("assistant", read_only=True))
        result = await agent.run(task="What is waiting in my inbox?")
        print(result.messages[-1].content)


asyncio.run(main())
