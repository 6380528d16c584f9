"""``mcp-bridge show SERVER TOOL``: one tool in full, and whether the bridge kept it intact."""

from __future__ import annotations

from ..context import Command, Context
from ..status import ExitCode

__all__ = ["COMMAND"]


async def run(ctx: Context) -> ExitCode:
    """Print the tool's description, hints, schemas, generated signature and fidelity verdict."""
    from rich.text import Text

    from ...inspection import suspicious_tool
    from ..fidelity import check_fidelity
    from ..pytypes import format_function
    from ..render import server_json, tool_json, tool_view

    async with ctx.server() as server:
        entry = await server.entry(ctx.operands["tool"])
        # The tool exactly as AutoGen gets it from Server.tools(), not a re-derivation.
        tool = next(t for t in await server.tools() if t.mcp_name == entry.mcp_name)
        model_schema = dict(tool.schema)
        signature = format_function(tool.name.replace("-", "_"), tool.signature)
        fidelity = check_fidelity(entry, model_schema, tool.signature)
        findings = suspicious_tool(entry.to_wire())
        if ctx.out.json_mode:
            ctx.out.json({"server": server_json(server.info), "tool": tool_json(entry), "signature": signature,
                          "autogenSchema": model_schema, "fidelity": fidelity.to_json(),
                          "suspicious": findings})
        else:
            ctx.out.print(tool_view(ctx.out, entry, signature, model_schema, fidelity))
            if findings:
                ctx.out.print(Text("Possible prompt injection (read the text above before approving):",
                                   style="bold yellow"))
                for finding in findings:
                    ctx.out.print(Text("  ! ", style="bold yellow") + ctx.out.text(finding), soft_wrap=True)
    return ExitCode.OK


COMMAND = Command(
    name="show",
    summary="show one tool: schemas, generated signature, and a fidelity verdict",
    description="Print a tool's description and annotations, the inputSchema the server sent, the Python "
                "signature the bridge generated, the tool schema AutoGen sends to the model, and whether "
                "anything differs (each difference with its JSON pointer and the reason).",
    operands=("tool",),
    run=run,
)
