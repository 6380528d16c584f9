"""The MetaGPT adapter's scenarios, run by ``.venv-metagpt/bin/python`` for ``tests/test_metagpt.py``.

``python tests/metagpt_scripts/scenarios.py OUT_DIR`` starts the MultiMail stand-in over stdio (a
seeded SQLite store per scenario, in OUT_DIR) and a scripted OpenAI-compatible model server on
127.0.0.1, runs every scenario, and writes ``OUT_DIR/report.json``: one object per scenario with
what it observed (or ``"error"``, the traceback). The main suite asserts on the report and on the
stores, so importing MetaGPT (~10-20 s) is paid once.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import traceback
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from metagpt.logs import define_log_level  # noqa: E402

define_log_level("WARNING")

from metagpt.actions import Action  # noqa: E402
from metagpt.config2 import Config  # noqa: E402
from metagpt.roles import Role  # noqa: E402, F401  (metagpt.team needs Role defined first)
from metagpt.team import Team  # noqa: E402

from bridge import Server, connect  # noqa: E402
from bridge.audit import query  # noqa: E402
from bridge.errors import BridgeError  # noqa: E402
from bridge.metagpt import AutoApprove, CallbackApprover, ToolRole, equip, tools_for  # noqa: E402
from bridge.multimail import account_filter  # noqa: E402
from fixtures.multimail.seed import AGENT_KEY, ORDER_EMAIL_IDS, THREAD_ID, open_store  # noqa: E402
from fixtures.openai_compat import ScriptedModel, tool_call  # noqa: E402

OUT = Path(sys.argv[1])


def store(name: str, *args: str) -> tuple[Path, list[str]]:
    """A fresh seeded database and the stand-in's command for it."""
    db = OUT / f"{name}.db"
    open_store(db).close()
    return db, [sys.executable, "-m", "fixtures.multimail", "--db", str(db), *args]


def mail(cmd: list[str], key: str = AGENT_KEY) -> Server:
    return connect(cmd, env={"MULTIMAIL_API_KEY": key, "PYTHONPATH": str(ROOT)}, cwd=ROOT, name="multimail")


def llm_config(model: ScriptedModel) -> Config:
    return Config.from_llm_config({"api_type": "openai", "model": "gpt-4o-mini", "base_url": model.base_url,
                                   "api_key": "sk-offline", "calc_usage": False})


def requests(model: ScriptedModel) -> list[dict[str, Any]]:
    return [{k: body.get(k) for k in ("messages", "tools", "tool_choice", "stream")} for body in model.requests]


def params(signature: inspect.Signature) -> list[list[str]]:
    return [[p.name, p.kind.name, str(p.annotation), repr(p.default)] for p in signature.parameters.values()]


async def classes() -> dict[str, Any]:
    _, cmd = store("classes")
    async with mail(cmd) as server:
        generated = await tools_for(server, agent="comms", approver=AutoApprove())
        out: dict[str, Any] = {"tools": {}}
        for cls in generated:
            action = cls()
            run = inspect.signature(action.run)
            out["tools"][cls.tool_name] = {
                "class": cls.__name__, "qualname": cls.__qualname__, "path": f"{cls.__module__}.{cls.__qualname__}",
                "doc": cls.__doc__, "desc": action.desc, "name": action.name, "is_action": issubclass(cls, Action),
                "history": params(run)[0], "params": params(run)[1:],
                "core": params(cls.entry.compiled.signature), "typed": cls.entry.compiled.typed}
        # A clash with a name already taken: the server's name goes in front, then a number.
        again = await tools_for(server, agent="comms", include=["send_email"], taken=["SendEmail"],
                                approver=AutoApprove())
        third = await tools_for(server, agent="comms", include=["send_email"],
                                taken=["SendEmail", "MultimailSendEmail"], approver=AutoApprove())
        out["clash"] = [again[0].__name__, third[0].__name__]
    return out


async def direct() -> dict[str, Any]:
    db, cmd = store("direct")
    audit = OUT / "direct.audit.jsonl"
    async with mail(cmd) as server:
        (check_inbox,) = await tools_for(server, agent="comms", include=["check_inbox"], audit=str(audit))
        action = check_inbox()
        output = await action.run(limit=2)
        invalid = None
        try:
            await action.run(limit="two")
        except BridgeError as e:
            invalid = f"{type(e).__name__}: {e}"
        unknown = None
        try:
            await action.run(bogus=1)
        except BridgeError as e:
            unknown = f"{type(e).__name__}: {e}"
        # A result quoting the server's key, as a role's log would show it.
        quoting = type(output)(f"upstream said: key {AGENT_KEY} was refused", output.info, None)
        return {"content": output.content, "str": str(output), "is_error": output.is_error, "repr": repr(quoting),
                "info": output.info.model_dump(), "result_text": output.result.text,
                "last_result_is_result": action.last_result is output.result,
                "instruct_type": type(output.instruct_content).__name__, "invalid": invalid, "unknown": unknown,
                "audit": [r.to_json() for r in query(audit)], "db": str(db)}


async def llm_filled() -> dict[str, Any]:
    db, cmd = store("filled")
    async with mail(cmd) as server:
        script = [tool_call("get_thread", {"thread_id": 4417}),        # the wrong type: retried with the error
                  tool_call("get_thread", {"thread_id": THREAD_ID}),
                  tool_call("read_email", {"email_id": 5}),            # wrong twice: given up, nothing sent
                  tool_call("read_email", {"id": ORDER_EMAIL_IDS[0]})]
        with ScriptedModel(script) as model:
            role = ToolRole(name="comms", profile="Communications Manager", goal="answer customers",
                            config=llm_config(model))
            await equip(role, server, include=["get_thread"], approver=AutoApprove())
            reply = await role.run(f"Read the thread {THREAD_ID} about Maria's damaged order.")
            reader = ToolRole(name="reader", profile="Reader", goal="read mail", config=llm_config(model))
            await equip(reader, server, include=["read_email"], approver=AutoApprove())
            refused = await reader.run("Read Maria's first email.")
            return {"requests": requests(model), "db": str(db),
                    "reply": {"content": reply.content, "role": reply.role, "cause_by": reply.cause_by,
                              "instruct_content": reply.instruct_content,
                              "last_result_text": role.actions[0].last_result.text},
                    "refused": {"content": refused.content, "last_result": reader.actions[0].last_result}}


async def denied() -> dict[str, Any]:
    db, cmd = store("denied")
    audit = OUT / "denied.audit.jsonl"
    async with mail(cmd) as server:
        engineer = ToolRole(name="engineer", profile="Engineer", goal="look things up")
        read_only = await equip(engineer, server, read_only=True, select=account_filter(), audit=str(audit))
        outside = None
        try:
            await read_only[0].toolset.call("reply_email", {"email_id": ORDER_EMAIL_IDS[0], "markdown": "hi"})
        except BridgeError as e:
            outside = f"{type(e).__name__}: {e}"
        asked: list[str] = []

        def team_lead(call: Any) -> bool:
            asked.append(f"{call.agent}:{call.mcp_name}:{call.call_id}")
            return False

        (reply_email,) = await tools_for(server, agent="comms", include=["reply_email"], audit=str(audit),
                                         approver=CallbackApprover(team_lead, reviewer="team-lead"))
        output = await reply_email().run(email_id=ORDER_EMAIL_IDS[0], markdown="A replacement ships today.")
        shared = read_only[0].toolset.connections[0] is reply_email.toolset.connections[0]
        return {"engineer": [c.__name__ for c in read_only], "engineer_states": list(engineer.states),
                "outside": outside, "denied": {"content": output.content, "is_error": output.is_error},
                "asked": asked, "shared_session": shared, "db": str(db),
                "audit": [r.to_json() for r in query(audit)]}


async def quota() -> dict[str, Any]:
    db, cmd = store("quota", "--quota", "0")
    async with mail(cmd) as server:
        script = [tool_call("send_email", {"to": ["ann@example.com"], "subject": "Your order",
                                           "markdown": "It ships today."})]
        with ScriptedModel(script) as model:
            comms = ToolRole(name="comms", profile="Communications Manager", goal="email customers",
                             config=llm_config(model))
            await equip(comms, server, include=["send_email"], approver=AutoApprove())
            team = Team()
            team.hire([comms])
            history = await team.run(n_round=2, idea="Tell Ann her order ships today.", auto_archive=False)
            memory = [m.content for m in comms.get_memories()]
            return {"history": history, "memory": memory, "requests": len(model.requests),
                    "last_result_error": comms.actions[0].last_result.is_error, "db": str(db)}


SCENARIOS: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "classes": classes, "direct": direct, "llm_filled": llm_filled, "denied": denied, "quota": quota}


async def main() -> None:
    report: dict[str, Any] = {}
    for name, scenario in SCENARIOS.items():
        try:
            report[name] = await scenario()
        except Exception:
            report[name] = {"error": traceback.format_exc()}
    (OUT / "report.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    asyncio.run(main())
