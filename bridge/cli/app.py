"""``mcp-bridge``: parse the command line, run one registered command, map the outcome to an exit status.

``main`` never raises and never calls ``sys.exit``: it returns an ``ExitCode``. Every
exception a command lets through is turned into one line on stderr and a status here,
in ``_fail``, using ``status.exit_status``; ``--debug`` adds the traceback and logging.

The command line is ``mcp-bridge COMMAND [SERVER] OPERANDS... [options] [-- SERVER-COMMAND...]``.
Everything after the first ``--`` is the stdio server's command line, verbatim; it is split
off before argparse sees the rest, so the server's own options can never be mistaken for ours.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import sys
import textwrap
from collections.abc import Iterator, Sequence
from typing import NoReturn

from .. import __version__
from ..errors import BridgeError, CallTimeout, ConfigError, ServerStartError, ToolError
from ..secrets import env_secrets, header_secrets
from .commands import COMMANDS, by_name
from .context import Command, Context
from .output import Output
from .server_args import add_server_options, choose_server
from .status import ExitCode, exit_status, exit_status_help

__all__ = ["ExitCode", "build_parser", "main", "run"]

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport on 3.10
    from exceptiongroup import BaseExceptionGroup

_ABOUT = "Inspect, explain and call any MCP server's tools, as AutoGen agents will see them."
_SERVER_HELP = """\
A server is named by
  a URL             mcp-bridge tools https://host/mcp --header 'X-Api-Key: ...'
  a command (last)  mcp-bridge tools --env API_KEY=... -- npx -y @scope/server
  a config entry    mcp-bridge tools --config mcp.json [--server NAME]
(the mcpServers JSON of Claude Desktop, Cursor and VS Code; ${VAR} and
${VAR:-default} are expanded). A command after -- always comes last."""


class _Exit(Exception):
    """argparse finished early (``--help``); carries its status instead of exiting the process."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so ``main`` owns every exit status."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see '{self.prog} --help')")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


def _usage(command: Command) -> str:
    if command.usage:
        return command.usage
    ops = " ".join(o.upper() for o in command.operands)
    ops = f" {ops}" if ops else ""
    if not command.uses_server:
        return f"mcp-bridge {command.name}{ops} [options]"
    need = " --lock FILE" if command.lock_option == "required" else ""
    return (f"mcp-bridge {command.name} SERVER{ops}{need} [options]\n"
            f"       mcp-bridge {command.name}{ops}{need} [options] -- COMMAND [ARG...]\n"
            f"       mcp-bridge {command.name}{ops}{need} --config FILE [--server NAME] [options]")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's layout at the terminal's width (``COLUMNS`` when set), never breaking an option
    name such as ``--lock-policy`` at its hyphen."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_help_width(), max_help_position=26)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _help_width() -> int:
    import shutil

    return min(100, max(40, shutil.get_terminal_size().columns - 1))


def _fill(text: str) -> str:
    return "\n".join(textwrap.fill(paragraph, _help_width(), break_on_hyphens=False)
                     for paragraph in text.split("\n"))


def _operand_help(command: Command) -> str:
    if command.operand_help:
        return command.operand_help
    names = " and ".join(o.strip("[]").upper() for o in command.operands)
    return "the server: a URL (or give it after --, or with --config)" + (f"; then {names}" if names else "")


def build_parser(command: Command) -> argparse.ArgumentParser:
    """The parser of one command: its operands, the common and server options, and its own."""
    epilog = (_SERVER_HELP + "\n\n" if command.uses_server else "") + exit_status_help(command.exits)
    parser = _Parser(prog=f"mcp-bridge {command.name}", usage=_usage(command),
                     description=_fill(command.description), epilog=epilog,
                     formatter_class=_HelpFormatter, allow_abbrev=False)
    # Optional operands are explained by the help text (and the usage lines), not the metavar.
    names = " ".join(o.upper() for o in command.operands if not (command.usage and o.startswith("[")))
    parser.add_argument("operands", nargs="*", metavar=("SERVER " + names).strip() if command.uses_server else names,
                        help=_operand_help(command))
    common = parser.add_argument_group("output")
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common.add_argument("--debug", action="store_true",
                        help="log every protocol message and show tracebacks on stderr" if command.uses_server
                        else "show tracebacks on stderr")
    if command.uses_server:
        add_server_options(parser, calls_tools=command.calls_tools, lock_option=command.lock_option)
    command.add_arguments(parser)
    return parser


def _top_help() -> str:
    width = max(len(c.name) for c in COMMANDS)
    lines = ["usage: mcp-bridge COMMAND [SERVER] [ARGS...] [options] [-- SERVER-COMMAND...]", "", _fill(_ABOUT), "",
             "commands:"]
    lines += [textwrap.fill(c.summary, _help_width(), initial_indent=f"  {c.name:<{width}}  ",
                            subsequent_indent=" " * (width + 4), break_on_hyphens=False) for c in COMMANDS]
    lines += ["", _SERVER_HELP, "", "Run 'mcp-bridge COMMAND --help' for a command's options.", "",
              exit_status_help()]
    return "\n".join(lines) + "\n"


def _split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    if "--" not in argv:
        return argv, None
    i = argv.index("--")
    return argv[:i], argv[i + 1:]


def _raw_secrets(args: argparse.Namespace) -> list[str]:
    # Taken from the raw options before they are validated, so even an error about a
    # malformed option cannot echo a credential. A bare ``--env NAME`` passes the caller's value.
    found = [s for item in getattr(args, "env", [])
             for s in env_secrets(item.partition("=")[2] if "=" in item else os.environ.get(item, ""))]
    for item in getattr(args, "header", []):
        name, _, value = item.partition(":")
        found += header_secrets(name.strip(), value.strip())
    return found


def _bind_operands(command: Command, operands: list[str]) -> dict[str, str]:
    expected = command.operands
    # An operand written "[name]" may be left out (only trailing ones are).
    required = [o for o in expected if not o.startswith("[")]
    if len(operands) < len(required):
        missing = expected[len(operands)].upper()
        raise ConfigError(f"missing {missing} (usage: {_usage(command).splitlines()[0]})")
    if len(operands) > len(expected):
        extra = operands[len(expected)]
        if not command.uses_server:
            raise ConfigError(f"unexpected argument {extra!r} (usage: {_usage(command)})")
        raise ConfigError(f"unexpected argument {extra!r}; the server is named once "
                          "(as SERVER, after --, or with --config)")
    return {name.strip("[]"): value for name, value in zip(expected, operands, strict=False)}


@contextlib.contextmanager
def _debug_logging(out: Output) -> Iterator[None]:
    """Log to the masked stderr while a ``--debug`` run lasts; leave logging as it was after."""
    import logging

    handler = out.log_handler("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    root = logging.getLogger()
    loggers = [root, logging.getLogger("bridge"), logging.getLogger("mcp")]
    levels = [logger.level for logger in loggers]
    root.addHandler(handler)
    for logger, level in zip(loggers, (logging.INFO, logging.DEBUG, logging.DEBUG), strict=True):
        logger.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _quiet_logging(out: Output) -> Iterator[None]:
    """Without ``--debug``: the bridge's own warnings as one line each, other libraries' logs not
    at all (a failure they log reaches the user as the bridge's error line; a traceback the SDK
    logs while a connection closes is noise)."""
    import logging

    seen: set[str] = set()

    class _Warnings(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            # Once each: a listing that is read again (relisted, or once per protocol round) would
            # repeat the same warning.
            message = record.getMessage()
            if record.name.split(".")[0] == "bridge" and message not in seen:
                seen.add(message)
                out.note(f"warning: {message}")

    handler = _Warnings(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


class _RunState:
    """What ``_fail`` needs to know about how far a run got, and what was already reported."""

    def __init__(self) -> None:
        self.debug = False
        self.ctx: Context | None = None
        self.command: Command | None = None
        self.server_operand = False
        """The server was named by the first operand (not after -- or by --config)."""
        self.reported: BaseException | None = None
        self.status = ExitCode.USAGE

    @property
    def connected(self) -> bool:
        return self.ctx.connected if self.ctx is not None else False


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mcp-bridge`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    out = Output()
    state = _RunState()
    try:
        return int(_main(list(sys.argv[1:] if argv is None else argv), out, state))
    except _Exit as done:
        return done.status
    except BrokenPipeError:
        # The reader went away (`mcp-bridge tools --json | head`): not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not complain either.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
    except (Exception, KeyboardInterrupt) as exc:
        return int(_fail(exc, out, state))


def run() -> NoReturn:
    """The ``mcp-bridge`` console script (and ``python -m bridge.cli``): ``main()``, then exit.

    What the run wrote is flushed, and then the process ends without the interpreter's
    teardown: freeing the SDK's ~550 pydantic classes one by one takes ~0.15 s, on every run,
    and there is nothing left for it to do (sessions, servers and files are closed by then).
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def _main(argv: list[str], out: Output, state: _RunState) -> ExitCode:
    argv, server_command = _split_command(argv)
    if not argv or argv[0] in ("-h", "--help"):
        out.write(_top_help(), stderr=not argv)
        return ExitCode.OK if argv else ExitCode.USAGE
    if argv[0] == "--version":
        out.plain(f"mcp-bridge {__version__}")
        return ExitCode.OK
    commands = by_name()
    command = commands.get(argv[0])
    if command is None:
        close = difflib.get_close_matches(argv[0], list(commands), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; commands: {', '.join(commands)}"
        raise ConfigError(f"unknown command {argv[0]!r}{hint}")
    state.command = command
    args = build_parser(command).parse_intermixed_args(argv[1:])
    state.debug = args.debug
    out.json_mode = args.json
    out.mask.add(_raw_secrets(args))
    with _debug_logging(out) if args.debug else _quiet_logging(out):
        return _run(command, args, server_command, out, state)


def _run(command: Command, args: argparse.Namespace, server_command: list[str] | None, out: Output,
         state: _RunState) -> ExitCode:
    if server_command is not None and not server_command:
        raise ConfigError("nothing after --: give the server's command line there")
    operands = list(args.operands)
    target = None
    if command.uses_server:
        before = len(operands)
        target = choose_server(args, operands, server_command or [], verb=command.name,
                               several=command.several_servers)
        state.server_operand = len(operands) < before
        if target is not None:
            out.mask.add(target.secret_values())
    elif server_command:
        raise ConfigError(f"'{command.name}' takes no server command after --")
    state.ctx = Context(args=args, out=out, operands=_bind_operands(command, operands), target=target,
                        report=lambda exc: _report(exc, out, state))
    import anyio  # here, not at the top: --help and usage errors never need an event loop

    status: ExitCode = anyio.run(command.run, state.ctx)
    return status


def _leaf(exc: BaseException) -> BaseException:
    """The exception worth reporting inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        inner = list(exc.exceptions)
        exc = next((e for e in inner if isinstance(e, BridgeError | KeyboardInterrupt | BaseExceptionGroup)),
                   inner[0])
    return exc


def _start_message(exc: ServerStartError, state: _RunState) -> str:
    # The error already quotes the stderr lines that say why (``StderrCapture.tail`` chose them).
    text = str(exc)
    command = state.command
    if not (state.server_operand and command is not None and "command not found" in exc.detail):
        return text
    if "://" in exc.detail:
        return text + " (a server's URL starts with http:// or https://)"
    if command.operands:
        ops = " ".join(o.upper() for o in command.operands)
        return text + f" (the server goes first: mcp-bridge {command.name} SERVER {ops}, or a command after --)"
    return text + " (name the server by its http(s) URL, or give its command after --)"


def _timeout_hint(state: _RunState) -> str:
    """Which bound ran out, by the option that sets it: start-up or the call."""
    calls = state.command is not None and state.command.calls_tools
    if state.connected and calls:
        return "the call's bound is --timeout SECONDS"
    return f"the start-up bound is {'--start-timeout' if calls else '--timeout'} SECONDS"


def _message(exc: BaseException, state: _RunState) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, ToolError):
        where = f"server {exc.server!r}, tool {exc.tool!r}: " if exc.server else ""
        return f"{where}the tool returned an error: {exc.detail}"
    if isinstance(exc, ServerStartError):
        return _start_message(exc, state)
    if isinstance(exc, CallTimeout):
        return f"{exc}; {_timeout_hint(state)}"
    from ..group import ServerGroupError  # here: only a --config listing of several servers raises it

    if isinstance(exc, ServerGroupError):
        return f"{exc}; to see the others, name one with --server NAME"
    if isinstance(exc, BridgeError):
        return str(exc)
    hint = "" if state.debug else " (run with --debug for the traceback)"
    return f"internal error: {type(exc).__name__}: {exc}{hint}"


def _report(exc: BaseException, out: Output, state: _RunState) -> None:
    """Print the error line for ``exc`` and settle the exit status, once per run.

    Commands report through ``Context.report`` as soon as an error leaves a connected server's
    block, before the server is shut down, so a slow shutdown never delays the message.
    """
    if state.reported is not None:
        return
    leaf = _leaf(exc)
    state.reported = leaf
    if isinstance(leaf, BrokenPipeError):
        # The reader went away (`mcp-bridge tools | head`): not an error, nothing to say.
        state.status = ExitCode.OK
        return
    state.status = exit_status(leaf, connected=state.connected)
    out.error(_message(leaf, state))
    if state.debug and isinstance(leaf, ServerStartError) and leaf.stderr_tail:
        out.write("server stderr (the lines that say why):\n" + leaf.stderr_tail.rstrip() + "\n", stderr=True)


def _fail(exc: BaseException, out: Output, state: _RunState) -> ExitCode:
    """The single place where an exception becomes an error line and an exit status."""
    _report(exc, out, state)
    if state.debug:
        import traceback

        out.write("".join(traceback.format_exception(exc)), stderr=True)
    return state.status
