"""Code mode: the model writes one Python program against typed stubs of its tools, run in a
sandbox whose only way out is the agent's guarded call path.

* ``bridge.code.stubs``: the stubs, from the schema layer, with every server-written part escaped.
* ``bridge.code.sandbox``: pydantic-monty's worker pool, imported on first use only.
* ``bridge.code.program``: one run, each tool call through the routes (validation, selection,
  pins, approval per call, audit with the program's hash and the call's position).
* ``bridge.code.mode``: the ``run_python`` tool a toolset offers with ``Guards(code=True)``.
"""

from __future__ import annotations

from .mode import CodeMode
from .program import RUN_PYTHON
from .sandbox import INSTALL_HINT
from .stubs import Stubs, render_stubs

__all__ = ["INSTALL_HINT", "RUN_PYTHON", "CodeMode", "Stubs", "render_stubs"]
