"""``python -m bridge.cli``: the same as the ``mcp-bridge`` console script."""

from . import run

run()
