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

USAGE = README[README.index("## Usage"):]
FIRST_USAGE = next(m.group(1) for m in re.finditer(r"```python\n(.*?)```", USAGE, re.S))


def test_the_usage_example_runs_as_pasted() -> None:
    """The Usage section's first block, byte for byte, piped into the venv's python from the repo
    root with no key and no PYTHONPATH: offline, nothing to add, and it calls its own main."""
    assert "asyncio.run(main())" in FIRST_USAGE
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "PYTHONPATH"}
    audit_file = ROOT / ".data" / "audit.jsonl"  # where the snippet says it writes (a git-ignored folder)
    before = audit_file.stat().st_size if audit_file.exists() else 0
    # From the repo root, with bare "python" in the snippet: it must be this interpreter, not the system's.
    proc = subprocess.run([sys.executable, "-"], input=FIRST_USAGE, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "Maria Lopez wrote 3 times (order #4417)."  # the scripted model's answer after the tool ran
    assert lines[-1].endswith(" False")  # the direct call's text, then is_error
    with audit_file.open(encoding="utf-8") as f:
        f.seek(before)
        started, record = [json.loads(line) for line in f.read().splitlines()][:2]
    assert (started["phase"], record["ref"]) == ("started", started["record_id"])
    assert (record["agent"], record["tool"], record["arguments"]) == ("mail", "check_inbox", {"status": "unread"})


def test_every_snippet_compiles_and_its_imports_resolve() -> None:
    assert len(BLOCKS) >= 3
    by_python: dict[str, list[str]] = {}
    for block in BLOCKS:
        # Fragments use top-level await; inside an async def they must at least compile.
        tree = ast.parse("async def _snippet():\n" + textwrap.indent(block, "    "))
        imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
        code = "\n".join(ast.unparse(node) for node in imports)
        # MetaGPT's snippets run where MetaGPT lives: its own venv (make metagpt).
        python = str(METAGPT_PYTHON if "metagpt" in code else sys.executable)
        by_python.setdefault(python, []).append(code)
    for python, codes in by_python.items():
        assert Path(python).exists(), f"{python} is missing: build it with make metagpt"
        # One interpreter per venv (imports are what cost), each snippet's imports run on their own.
        script = "import sys, traceback\nfailed = 0\n" + "".join(
            f"try:\n    exec({code!r}, {{}})\nexcept Exception:\n    failed += 1\n"
            f"    print({code!r}, file=sys.stderr); traceback.print_exc()\n" for code in codes) + "sys.exit(failed)\n"
        done = subprocess.run([python, "-c", script], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr[-3000:]
