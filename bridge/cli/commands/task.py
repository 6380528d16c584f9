"""``mcp-bridge task SERVER get|cancel ID``: resume or cancel an MCP task a call left running."""

from __future__ import annotations

import argparse
import shlex
import time

from ...errors import ConfigError, ToolError
from ...sanitize import one_line
from ...targets import StdioTarget
from ..context import Command, Context
from ..status import ExitCode

__all__ = ["COMMAND", "left_running"]

_ACTIONS = ("get", "cancel")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("task")
    group.add_argument("--output-dir", metavar="DIR", default=".",
                       help="where images, audio and binary resources of the result are saved (default: the current "
                            "directory)")


def left_running(ctx: Context, running: list[str]) -> None:
    """Tell the user which tasks an interrupted or timed-out call left on the server, and how to resume them."""
    # A stdio server is stopped as the call ends: its task outlives it only if it keeps its tasks
    # across a restart (in a file or a service), which the bridge cannot know.
    where = ("was running when its server stopped with this call; if the server keeps tasks across a restart, "
             if isinstance(ctx.target, StdioTarget) else "is still running on the server; ")
    for task_id in running:
        # The id is the server's: one line, and quoted for the shell the user pastes the command into.
        shown = shlex.quote(one_line(task_id))
        ctx.out.note(f"task {shown} {where}resume it with: mcp-bridge task SERVER get {shown} (or cancel it: "
                     f"mcp-bridge task SERVER cancel {shown})")


async def run(ctx: Context) -> ExitCode:
    """``get``: wait for the task to end (its status on the spinner) and print its result like ``call``;
    ``cancel``: send ``tasks/cancel``. Exits 5 when the result is an error.

    Raises:
        ConfigError: an action other than ``get`` or ``cancel``.
        ProtocolError: the server does not know the task, or it failed or was cancelled.
        CallTimeout: it did not end within ``--timeout`` or its time-to-live.
    """
    from ...results import CallResult
    from .call import _MediaWriter, print_result

    action, task_id = ctx.operands["action"], ctx.operands["id"]
    if action not in _ACTIONS:
        raise ConfigError(f"unknown task action {action!r}; use 'get' or 'cancel'")
    async with ctx.server(calls=True) as server:
        session = server.session
        if action == "cancel":
            await session.cancel_task(task_id)
            ctx.out.note(f"asked the server to cancel task {task_id}")
            return ExitCode.OK
        with ctx.out.status(f"Waiting for task {task_id}…") as spinner:

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                spinner.update(f"Waiting… {message or ''}".rstrip())

            started = time.perf_counter()
            try:
                raw = await session.follow_task(task_id, timeout=ctx.call_timeout, progress=on_progress)
            except BaseException:
                left_running(ctx, list(session.running_tasks))
                raise
        result = CallResult.from_mcp(raw, server=server.name, tool=f"task {task_id}",
                                     duration=time.perf_counter() - started, max_chars=server.max_result_chars)
        if ctx.out.json_mode:
            ctx.out.json(result.to_wire())
        elif not result.is_error:
            print_result(ctx.out, result, _MediaWriter(ctx.args.output_dir, "task"))
        if result.is_error:
            raise ToolError(result.text or "the tool reported an error", result=result, server=server.name)
    return ExitCode.OK


COMMAND = Command(
    name="task",
    summary="resume (get) or cancel an MCP task a call left running",
    description="A tool that runs as an MCP task outlives an interrupted `mcp-bridge call`, which prints the "
                "task's id. `task SERVER get ID` waits for it to end (its status on the spinner) and prints its "
                "result like `call`; `task SERVER cancel ID` asks the server to stop it. Exits 5 when the result "
                "is an error.",
    operands=("action", "id"),
    add_arguments=add_arguments,
    run=run,
    calls_tools=True,
    exits=(ExitCode.OK, ExitCode.USAGE, ExitCode.AUTH, ExitCode.UNREACHABLE, ExitCode.TOOL_ERROR, ExitCode.DRIFT,
           ExitCode.INTERRUPTED),
    operand_help="SERVER get|cancel ID: the server the task runs on, what to do, and the task's id "
                 "(printed by an interrupted `mcp-bridge call`)",
)
