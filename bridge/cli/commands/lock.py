"""``mcp-bridge lock SERVER [-o FILE]``: pin the server's tools and instructions in a lock file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import ConfigError
from ..context import Command, Context
from ..status import ExitCode

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...lock import DEFAULT_LOCK_FILE

    parser.add_argument("-o", "--output", metavar="FILE",
                        help=f"the lock file to write (default: {DEFAULT_LOCK_FILE}); pins of other "
                             "servers in it are kept")


async def run(ctx: Context) -> ExitCode:
    """List the tools (unguarded), pin them and the server's instructions under the server's name, and
    write the file (an entry from an older lock file is upgraded: it then pins everything).

    Raises:
        ConfigError: an existing lock file is malformed (it is never overwritten then), or the file
            cannot be written there.
    """
    from ...lock import DEFAULT_LOCK_FILE, LockFile, ServerPin

    path = Path(ctx.args.output or DEFAULT_LOCK_FILE)
    # Checked before the server starts: found at the write, the listing would have been for nothing.
    if path.is_dir():
        raise ConfigError(f"-o {path}: a directory; give the lock file's path, e.g. {path / DEFAULT_LOCK_FILE}")
    if not path.parent.is_dir():
        raise ConfigError(f"-o {path}: there is no directory {path.parent}; create it first")
    lock = LockFile.load(path) if path.exists() else LockFile()
    async with ctx.server(guarded=False) as server:
        # Unvetted: the point is to record what the server says now.
        listing = await server.listing()
        pin = ServerPin.of(listing.tools, listing.instructions)
        previous = lock.servers.get(server.name)
        lock.servers[server.name] = pin
        try:
            lock.save(path)
        except OSError as e:
            raise ConfigError(f"cannot write the lock file {path}: {e.strerror}") from None
        if ctx.out.json_mode:
            ctx.out.json({"file": str(path), "server": server.name, **pin.to_json()})
            return ExitCode.OK
        verb = "re-pinned" if previous is not None else "pinned"
        unchanged = " (unchanged)" if previous is not None and previous == pin else ""
        ctx.out.plain(f"{verb} {len(pin.tools)} tool(s) of server {server.name!r} in {path}{unchanged}")
        ctx.out.plain(f"catalogue hash {pin.hash}")
        ctx.out.plain("instructions: " + (f"pinned ({len(pin.instructions)} characters)" if pin.instructions
                                          else "the server gives none (pinned as none)"))
        if previous is not None and previous.unpinned:
            ctx.out.plain(f"upgraded from an older lock file: now also pins {', '.join(previous.unpinned)}")
        for tool in listing.skipped:
            ctx.out.note(f"not pinned: {tool.name!r} has an invalid definition ({tool.reason})")
    return ExitCode.OK


COMMAND = Command(
    name="lock",
    summary="pin a server's tools (every field: names, titles, descriptions, schemas, annotations) and "
            "instructions in a lock file",
    description="Connect, list every tool and record the whole definition (name, title, description, "
                "inputSchema, outputSchema, annotations, execution, icons, _meta) with a stable hash, and the "
                "server's instructions, under the server's name. Commit the file; 'mcp-bridge verify' and "
                "connect(lock=...) / --lock then notice anything that changes after review (a rug pull). Run "
                "again on a lock file written by an older version to pin what it did not.",
    add_arguments=_add_arguments,
    run=run,
    lock_option="none",
    exits=(ExitCode.OK, ExitCode.USAGE, ExitCode.AUTH, ExitCode.UNREACHABLE, ExitCode.INTERRUPTED),
)
