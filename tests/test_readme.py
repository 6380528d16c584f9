"""The README's Python works as written: the usage example runs, every other snippet compiles and imports.

A newcomer copies these first, so a renamed export or a changed signature must fail here, not on
their machine.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
METAGPT_PYTHON = ROOT / ".venv-metagpt" / "bin" / "python"
BLOCKS = [m.group(1) for m in re.finditer(r"```python\n(.*?)```", README, re.S)]

RUN_USAGE = textwrap.dedent('''
    import asyncio, json, sys
    from autogen_ext.models.openai import OpenAIChatCompletionClient
    from fixtures.openai_compat import ScriptedModel, text, tool_call

    namespace = {}
    exec(compile(sys.stdin.read(), "README.md", "exec"), namespace)
    with ScriptedModel([tool_call("check_inbox", {"limit": 2}), text("Two unread emails.")]) as model:
        client = OpenAIChatCompletionClient(model="gpt-4o-mini-2024-07-18", base_url=model.base_url, api_key="t")
        asyncio.run(namespace["main"](client))
        print("OFFERED", len(model.tools_sent(0)))
''')


def test_the_usage_example_runs_as_written(tmp_path: Path) -> None:
    usage = next(b for b in BLOCKS if "async def main(model_client)" in b)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "PYTHONPATH"}
    audit_file = ROOT / "audit.jsonl"  # where the snippet writes it: the repo root it says to run from
    kept = tmp_path / "kept.jsonl"
    if audit_file.exists():
        audit_file.rename(kept)
    try:
        # From the repo root, with bare "python" in the snippet: it must be this interpreter, not the system's.
        proc = subprocess.run([sys.executable, "-c", RUN_USAGE], input=usage, cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "OFFERED 46" in proc.stdout
        started, record = [json.loads(line) for line in audit_file.read_text(encoding="utf-8").splitlines()]
        assert (started["phase"], record["ref"]) == ("started", started["record_id"])
        assert (record["agent"], record["tool"], record["arguments"]) == ("mail", "check_inbox", {"limit": 2})
    finally:
        audit_file.unlink(missing_ok=True)
        if kept.exists():
            kept.rename(audit_file)


def test_every_snippet_compiles_and_its_imports_resolve() -> None:
    assert len(BLOCKS) >= 3
    for block in BLOCKS:
        # Fragments use top-level await; inside an async def they must at least compile.
        tree = ast.parse("async def _snippet():\n" + textwrap.indent(block, "    "))
        imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
        code = "\n".join(ast.unparse(node) for node in imports)
        # MetaGPT's snippets run where MetaGPT lives: its own venv (make metagpt).
        python = METAGPT_PYTHON if "metagpt" in code else sys.executable
        assert Path(python).exists(), f"{python} is missing: build it with make metagpt"
        done = subprocess.run([str(python), "-c", code], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, f"{code}\n{done.stderr[-2000:]}"
