"""``mcp-bridge call SERVER TOOL --arg k=v ...``: one tool call, validated like an agent's."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError, InvalidArguments, ToolError
from ..arguments import argument_problems, load_args_object, parse_arguments, parse_pairs, undeclared_names
from ..context import Command, Context
from ..output import Output
from ..status import ExitCode
from .task import left_running

if TYPE_CHECKING:
    from ...results import CallResult

__all__ = ["COMMAND"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("call")
    group.add_argument("--arg", metavar="K=V", action="append", default=[],
                       help="one argument (repeatable); V is parsed as JSON when it parses, else taken as a string")
    group.add_argument("--args", metavar="JSON", help="all arguments as a JSON object, @file.json, or @- for stdin; "
                                                      "--arg values are applied over it")
    group.add_argument("--output-dir", metavar="DIR", default=".",
                       help="where images, audio and binary resources are saved (default: the current directory)")
    group.add_argument("--no-validate", action="store_true",
                       help="send the arguments without checking them against the tool's inputSchema first")


# Types the mimetypes table lacks (or maps to an odd extension) but servers commonly send.
_EXTENSIONS = {"audio/wav": ".wav", "audio/wave": ".wav", "audio/ogg": ".ogg", "audio/webm": ".weba",
               "video/webm": ".webm"}


def _extension(mime_type: str | None) -> str:
    mime = (mime_type or "").split(";")[0].strip().lower()
    return _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ".bin"


class _MediaWriter:
    """Saves media blocks as ``<tool>-<n>.<ext>`` in one directory, never overwriting a file."""

    def __init__(self, directory: str, stem: str) -> None:
        self.directory = Path(directory)
        self.stem = stem
        self.count = 0

    def save(self, data_b64: str, mime_type: str | None) -> tuple[Path, int]:
        try:
            data = base64.b64decode(data_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"the server sent media that is not valid base64 ({mime_type})") from None
        ext = _extension(mime_type)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"--output-dir {self.directory}: {e.strerror}") from None
        while True:
            self.count += 1
            path = self.directory / f"{self.stem}-{self.count}{ext}"
            try:
                with path.open("xb") as f:  # "x": an existing file is never overwritten
                    f.write(data)
                return path, len(data)
            except FileExistsError:
                continue


def _print_text(out: Output, text: str) -> None:
    from ..render import json_view

    # JSON text blocks (common: MultiMail answers in JSON) are easier to read indented.
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        try:
            out.print(json_view(out, json.loads(stripped)), soft_wrap=True)
            return
        except ValueError:
            pass
    out.plain(text)


def _print_block(out: Output, block: Any, media: _MediaWriter) -> None:
    import mcp_types as types

    from ...results import block_text

    if isinstance(block, types.TextContent):
        _print_text(out, block.text)
    elif isinstance(block, types.ImageContent | types.AudioContent):
        path, size = media.save(block.data, block.mime_type)
        out.plain(f"[{block.type} {block.mime_type}, {size} bytes saved to {path}]")
    elif isinstance(block, types.EmbeddedResource):
        res = block.resource
        if isinstance(res, types.TextResourceContents):
            out.plain(f"[resource <{res.uri}>]")
            _print_text(out, res.text)
        else:
            path, size = media.save(res.blob, res.mime_type)
            out.plain(f"[resource <{res.uri}> {res.mime_type or 'binary'}, {size} bytes saved to {path}]")
    else:
        # Resource links and kinds without a file to save read as the model reads them.
        out.plain(block_text(block))


def print_result(out: Output, result: CallResult, media: _MediaWriter) -> None:
    """Text blocks as sent, JSON pretty-printed, media saved to files whose paths are printed."""
    from ...results import repeats_structured
    from ..render import json_view

    for block in result.content:
        if not repeats_structured(block, result.structured):
            _print_block(out, block, media)
    if result.structured is not None and not _wraps_the_text(result):
        out.print(json_view(out, result.structured), soft_wrap=True)


def _wraps_the_text(result: CallResult) -> bool:
    """Structured content that only repeats the text blocks, wrapped in an object (server-filesystem
    answers ``{"content": <the text>}``): printing it again would show the result twice."""
    import mcp_types as types

    structured = result.structured
    if not (isinstance(structured, dict) and len(structured) == 1):
        return False
    (value,) = structured.values()
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    return isinstance(value, str) and bool(texts) and value.strip() == "\n".join(texts).strip()


def _progress_line(tool: str, progress: float, total: float | None, message: str | None) -> str:
    done = f"{progress:g}/{total:g}" if total else f"{progress:g}"
    return f"Calling {tool}… {done} {message or ''}".rstrip()


async def run(ctx: Context) -> ExitCode:
    """Call the tool once; exit 5 when it reports an error.

    Raises:
        ConfigError: malformed ``--arg``/``--args`` (before any server starts).
        InvalidArguments: every argument that breaks the inputSchema, in one line.
        ToolError: the tool returned an error result (after printing it with ``--json``).
    """
    args = ctx.args
    # Bad --arg/--args are reported before a server is started for nothing.
    pairs = parse_pairs(args.arg)
    base = load_args_object(args.args) if args.args is not None else {}
    if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        # Found out only once the tool had answered, the call would have gone out for nothing.
        raise ConfigError(f"--output-dir {args.output_dir}: not a directory; give a directory (created if missing)")
    async with ctx.server(calls=True) as server:
        entry = await server.entry(ctx.operands["tool"])
        arguments = parse_arguments(pairs, base, entry.input_schema)
        if not args.no_validate and (problems := argument_problems(entry.input_schema, arguments)):
            raise InvalidArguments(problems.message, argument=problems.first.argument, rule=problems.first.rule,
                                   server=server.name, tool=entry.mcp_name)
        for given, meant in undeclared_names(entry.input_schema, arguments).items():
            # The schema lets other names through, so it is sent; a typo would be silently ignored.
            ctx.out.note(f"note: {entry.name} declares no argument {given!r}; did you mean {meant!r}? (sent as "
                         "given: the schema allows other names)")
        with ctx.out.status(f"Calling {entry.name}…") as spinner:

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                spinner.update(_progress_line(entry.name, progress, total, message))

            try:
                result = await server.call(entry.mcp_name, arguments, validate=not args.no_validate,
                                           progress=on_progress)
            except BaseException:  # Ctrl-C or a timeout: a task the call ran as can still be resumed
                left_running(ctx, list(server.session.running_tasks))
                raise
        # Printed here, before the server is shut down (which may take a moment).
        if ctx.out.json_mode:
            ctx.out.json(result.to_wire())
        elif not result.is_error:
            print_result(ctx.out, result, _MediaWriter(args.output_dir, entry.name))
        if result.is_error:
            raise ToolError(result.text or "the tool reported an error", result=result, server=server.name,
                            tool=entry.mcp_name)
    return ExitCode.OK


COMMAND = Command(
    name="call",
    summary="call one tool and print its result",
    description="Call a tool with arguments validated against its inputSchema, as an agent's call would be "
                "(every invalid argument is reported at once). Text blocks are printed as sent (JSON indented), "
                "structured content as JSON, and images, audio and binary resources are saved to files whose "
                "paths are printed. Exits 5 when the tool reports an error.",
    operands=("tool",),
    add_arguments=add_arguments,
    run=run,
    calls_tools=True,
    exits=(ExitCode.OK, ExitCode.USAGE, ExitCode.AUTH, ExitCode.UNREACHABLE, ExitCode.TOOL_ERROR, ExitCode.DRIFT,
           ExitCode.INTERRUPTED),
)
