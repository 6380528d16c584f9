"""``mcp-bridge read SERVER URI``: one resource, as an agent's ``read_resource`` would get it."""

from __future__ import annotations

from ..context import Command, Context
from ..status import ExitCode
from .resources import EXITS

__all__ = ["COMMAND"]


async def run(ctx: Context) -> ExitCode:
    """Read a URI the server lists or templates; print its text (bounded, controls escaped) and
    binary contents as a summary, or ``--json``."""
    from mcp_types import TextResourceContents

    from ...inspection import suspicious_text
    from ..render import print_findings

    async with ctx.server() as server:
        read = await server.read_resource(ctx.operands["uri"])
        if ctx.out.json_mode:
            ctx.out.json({"server": server.name, "uri": read.uri, "text": read.text,
                          "contents": [{k: v for k, v in c.model_dump(by_alias=True, mode="json",
                                                                      exclude_none=True).items()
                                        if k not in ("text", "blob")} for c in read.contents]})
            return ExitCode.OK
        ctx.out.plain(read.text)
        findings = [found for c in read.contents if isinstance(c, TextResourceContents)
                    for found in suspicious_text(c.text)]
        print_findings(ctx.out, "Possible prompt injection in the resource (read it before giving it to a model):",
                       findings)
    return ExitCode.OK


COMMAND = Command(
    name="read",
    summary="read one resource (a URI the server lists or templates)",
    description="Connect and read URI, which must be one the server lists or matches one of its URI templates; a "
                "URI with a '..' segment is refused. Text is printed with its control characters escaped and cut "
                "past the result bound with a note; binary contents are summarised (type and size). --json prints "
                "the same text and each content's URI and type.",
    run=run,
    exits=EXITS,
    lock_option="none",
    operand_help="URI: a resource the server lists, or one its URI templates match",
    operands=("uri",),
)
