"""The ``mcp-bridge`` command line: inspect, explain, call, pin and audit any MCP server's tools, read
its resources and prompts, and decide the calls waiting for approval.

Layout (each module has one job):

- ``app``: argument parsing, dispatch, and the one place exceptions become exit statuses;
- ``status``: ``ExitCode`` and the exception -> status mapping;
- ``context``: ``Command`` (the registry's contract) and ``Context`` (what a command gets);
- ``commands``: the registry, one module per command: ``tools``, ``show``, ``find``, ``call``,
  ``code``, ``audit``, ``lock``, ``verify``, ``approvals``, ``resources``, ``read``, ``prompts``, ``prompt``
  and ``task``;
- ``server_args``: URL / ``-- command`` / ``--config`` options -> a ``Target``;
- ``arguments``: ``--arg``/``--args`` -> a tool's arguments object, and every invalid one at once;
- ``output``: stdout/stderr with secret masking and markup-free server text;
- ``render``: tables, panels and ``--json`` documents;
- ``fidelity``: server inputSchema vs. what AutoGen sees; ``pytypes``: signatures as source.
"""

from .app import main, run
from .status import ExitCode

__all__ = ["ExitCode", "main", "run"]
