"""``mcp-bridge verify SERVER --lock FILE``: do the live tools and instructions still match the lock file?"""

from __future__ import annotations

from ...errors import ConfigError
from ..context import Command, Context
from ..status import ExitCode

__all__ = ["COMMAND"]


async def run(ctx: Context) -> ExitCode:
    """Compare every live tool and the server's instructions with their pins; print the drift, and
    what an older lock file does not pin yet; ``DRIFT`` (6) if anything differs.

    Raises:
        ConfigError: no ``--lock``, or the lock file is missing, malformed or does not pin this server.
    """
    from ...lock import LockFile, compare

    path = getattr(ctx.args, "lock", None)
    if not path:
        raise ConfigError("verify needs --lock FILE (create one with 'mcp-bridge lock')")
    lock = LockFile.load(path)
    # Unguarded: the whole report is the point, even under --lock-policy strict.
    async with ctx.server(guarded=False) as server:
        listing = await server.listing()
        drift = compare(lock.pin(server.name), listing.tools, instructions=listing.instructions, server=server.name)
        if ctx.out.json_mode:
            ctx.out.json({"file": str(path), "drift": bool(drift), **drift.to_json()})
            return ExitCode.DRIFT if drift else ExitCode.OK
        if drift:
            ctx.out.plain(drift.report())
        else:
            ctx.out.plain(f"server {server.name!r}: all tools match {path}")
        if drift.unpinned:
            # Not drift: nothing changed that was reviewed, but part of what the model reads was never pinned.
            ctx.out.plain(drift.unpinned_report())
    return ExitCode.DRIFT if drift else ExitCode.OK


COMMAND = Command(
    name="verify",
    summary="check a server's tools and instructions against a lock file; exit 6 on drift (for CI)",
    description="Connect, list every tool and compare it, and the server's instructions, with the lock file "
                "written by 'mcp-bridge lock': new, removed and changed tools and changed instructions are "
                "reported, each change with a diff. Exits 0 when everything matches and 6 on any drift. What a "
                "lock file of an older version does not pin (titles, instructions, ...) is reported as \"not "
                "pinned yet\", not as drift; 'mcp-bridge lock' pins it.",
    run=run,
    lock_option="required",
    exits=(ExitCode.OK, ExitCode.USAGE, ExitCode.AUTH, ExitCode.UNREACHABLE, ExitCode.DRIFT, ExitCode.INTERRUPTED),
)
