"""Code mode for one toolset: the ``run_python`` tool the model is offered, and its runs.

The model sees one tool whose description carries the typed stubs of the agent's allowed tools
(with a deferred catalogue: the ``always`` tools plus ``find_tools``/``call_tool``, so a large
catalogue costs no more than a small one). ``run`` runs a program against them (``Program``).
"""

from __future__ import annotations

from typing import Any

import mcp_types as types

from ..catalogue import ToolEntry
from ..code_limits import CodeLimits
from ..decisions import Decision
from ..deferred import DeferredCatalogue
from ..errors import InvalidArguments
from ..options import DEFAULT_MAX_CHARS
from ..results import CallResult
from ..steps import Step
from .program import RUN_PYTHON, Program, denied_result
from .stubs import Stubs, render_stubs, stub_of

__all__ = ["CodeMode"]

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "string", "description": "The Python program to run."}},
    "required": ["code"],
    "additionalProperties": False,
}


def _intro(limits: CodeLimits) -> str:
    return (
        "Run a Python program that calls this agent's tools; use it to do several steps in one go and "
        "print only what you need to see. Call a tool with `await name(arg=...)` (keyword arguments, "
        "typed by the stubs below; the program is type-checked against them). Each call is validated, "
        "approved and recorded exactly like a direct tool call: a denial raises PermissionError, an "
        "error result raises ToolError, a refused argument raises ValueError; catch them to carry on. "
        "A tool without a declared result type returns its text (json.loads it if it is JSON). The "
        "sandbox has no files, network or imports beyond json, re, math, datetime, asyncio and typing, "
        "and runs a subset of Python (no class inheritance, generators or match). You get back what "
        "the program printed and the value of its last expression. Limits: "
        f"{limits.tool_calls} tool calls, {limits.cpu_seconds:g} s of CPU, {limits.memory_mb} MB.\n\n"
    )


class CodeMode:
    """The ``run_python`` tool of one toolset.

    Args:
        limits: what a program may spend.
        catalogue: the toolset's catalogue (its routes and, when deferred, its search).
    """

    def __init__(self, limits: CodeLimits, catalogue: DeferredCatalogue) -> None:
        self.limits = limits
        self.catalogue = catalogue
        self._built: tuple[int, bool, Stubs, ToolEntry] | None = None

    async def stubs(self) -> Stubs:
        """The stubs of what the program may call now (the current catalogue)."""
        return (await self._build())[2]

    async def entry(self) -> ToolEntry:
        """``run_python``, described with the current stubs."""
        return (await self._build())[3]

    async def _build(self) -> tuple[int, bool, Stubs, ToolEntry]:
        table = await self.catalogue.table()
        deferred = self.catalogue.deferred
        version = self.catalogue.routes.version
        if self._built is None or self._built[:2] != (version, deferred):
            if deferred:
                shown = [r.entry for r in table.values() if r.entry.name in
                         {e.name for e in await self.catalogue.tools()}]
            else:
                shown = [r.entry for r in table.values()]
            stubs = render_stubs(shown, search=deferred)
            tool = types.Tool(name=RUN_PYTHON, description=_intro(self.limits) + "```python\n" + stubs.source
                              + "```", input_schema=_SCHEMA)
            self._built = (version, deferred, stubs, ToolEntry.from_mcp(tool, RUN_PYTHON))
        return self._built

    async def run(self, arguments: Any, *, step: Step | None = None, timeout: float | None = None,
                  approval: Decision | None = None) -> CallResult:
        """Run the program in ``arguments`` (``{"code": ...}``).

        ``approval``: a framework's own decision on the whole run: a denial stands (nothing runs);
        an approval does not carry over to the calls inside, which are each approved on their own.

        Raises:
            InvalidArguments: no ``code`` string (recorded like any refused attempt).
            ConfigError: the sandbox is not installed.
        """
        _, deferred, stubs, entry = await self._build()
        given = dict(arguments or {})
        try:
            entry.compiled.validate(given)
        except InvalidArguments as refusal:
            await self.catalogue.routes.refused(RUN_PYTHON, given, None, refusal, server="bridge", step=step)
            raise
        if approval is not None and not approval.approved:
            return denied_result(approval)
        program = Program(str(given["code"]), routes=self.catalogue.routes, stubs=stubs, limits=self.limits,
                          find=self._find if deferred else None, step=step, timeout=timeout,
                          max_chars=DEFAULT_MAX_CHARS)
        return await program.run()

    def _find(self, query: str, limit: int) -> list[dict[str, str]]:
        found = self.catalogue.find(query, limit)
        table = self.catalogue.routes.latest
        matches = (found.structured or {}).get("matches", [])
        return [{"name": m["name"], "description": m["description"], "stub": stub_of(table[m["name"]].entry)}
                for m in matches if m["name"] in table]


