"""The adapter contract's runs through MetaGPT, run by ``.venv-metagpt/bin/python`` for
``tests/test_adapter_contract.py``.

``python tests/metagpt_scripts/contract.py OUT_DIR`` reads ``OUT_DIR/scenario.json`` (the server's
command, the agent, and each run's guard options and model calls), runs every run through
``bridge.metagpt.tools_for`` and MetaGPT's own OpenAI provider against a scripted model server on
127.0.0.1, and writes ``OUT_DIR/observed.json`` with the observations every adapter reports:
the functions the model was offered, the tool results it read (by call label), who the approver
was asked about, and the audit records.

MetaGPT asks its model for one action's arguments at a time, with that tool alone offered: every
action is run once with a text answer (what each tool is offered as), then each call of the
scenario is one action run with the role's history, the model answering with the scenario's
arguments (twice, when the first answer is refused, as a model would retry).
"""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from metagpt.logs import define_log_level  # noqa: E402

define_log_level("WARNING")

from metagpt.config2 import Config  # noqa: E402
from metagpt.schema import Message  # noqa: E402

from bridge import CallbackApprover, connect  # noqa: E402
from bridge.approvals import QueueApprover  # noqa: E402
from bridge.connection import ToolCall  # noqa: E402
from bridge.metagpt import tools_for  # noqa: E402
from fixtures.openai_compat import Body, ScriptedModel, TurnLike, text, tool_call  # noqa: E402

OUT = Path(sys.argv[1])


def llm_config(model: ScriptedModel) -> Config:
    return Config.from_llm_config({"api_type": "openai", "model": "gpt-4o-mini", "base_url": model.base_url,
                                   "api_key": "sk-offline", "calc_usage": False})


async def one(scenario: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    asked: list[list[str | None]] = []
    guards = dict(run["guards"])
    if run["approver"]:
        def review(call: ToolCall) -> bool:
            asked.append([call.agent, call.server, call.mcp_name])
            return call.arguments.get("message") != "deny me"

        guards["approver"] = CallbackApprover(review, reviewer="contract-reviewer")
    if run.get("queue"):
        guards["approver"] = QueueApprover(run["queue"], expires_after=240)
    answer: list[TurnLike] = [text("no")]  # what the model answers now: the current call's arguments

    def model_turn(body: Body) -> TurnLike:
        return answer[0]

    results: dict[str, str] = {}
    async with connect(run.get("command") or scenario["command"], cwd=ROOT, name=scenario["server"]) as server:
        with ScriptedModel([model_turn] * 200) as model:
            config = llm_config(model)
            actions = {cls.tool_name: cls for cls in await tools_for(server, agent=scenario["agent"], **guards)}
            history = [Message(content="Go.", role="user")]
            # What the model is offered for every tool: each action asks; an answer that is no JSON
            # object is refused before it becomes an attempt (nothing called, nothing recorded).
            for cls in actions.values():
                await cls(config=config).run(history)
            for label, (name, arguments) in run["calls"].items():
                answer[0] = tool_call(name, arguments, id=label)
                output = await actions[name](config=config).run(history)
                results[label] = output.content
            offered: dict[str, Any] = {}
            for index in range(len(model.requests)):
                offered.update(model.tool_definitions(index))
    audit = Path(run["guards"]["audit"]) if "audit" in run["guards"] else None
    lines = [json.loads(line) for line in audit.read_text().splitlines()] if audit and audit.exists() else []
    records = [r for r in lines if r.get("phase") != "started"]  # a call's outcome record is complete
    return {"offered": offered, "results": results, "asked": asked, "audit": records}


async def main() -> None:
    scenario = json.loads((OUT / "scenario.json").read_text())
    observed = {run["name"]: await one(scenario, run) for run in scenario["runs"]}
    (OUT / "observed.json").write_text(json.dumps(observed, indent=1, default=str))


if __name__ == "__main__":
    asyncio.run(main())
